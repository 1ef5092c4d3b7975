"""Fixtures of the reliability suite (fault matrix, leak run, crash, concurrency, hostile input).

``airflow_db``, ``dags_folder`` and ``msads_conn`` come from tests/conftest.py; ``msads_emulator``
and ``msads_emulator_factory`` from the package's pytest plugin, as users get them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _support.airflow_compat import reset_secrets_masker


@pytest.fixture(autouse=True)
def _fresh_secrets_masker() -> Iterator[None]:
    """Airflow's masker recompiles one regex of every secret ever masked on each new secret; the
    emulator mints new tokens in every test, so without a reset the suite slows down quadratically."""
    yield
    reset_secrets_masker()
