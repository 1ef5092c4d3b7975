"""Fixtures of the reliability suite (fault matrix, leak run, crash, concurrency, hostile input).

``airflow_db``, ``dags_folder`` and ``msads_conn`` come from tests/conftest.py; ``msads_emulator``
and ``msads_emulator_factory`` from the package's pytest plugin, as users get them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from airflow_provider_msads.auth import clear_process_cache


@pytest.fixture(autouse=True)
def _fresh_process_cache() -> Iterator[None]:
    """Every test starts like a fresh worker: no access token cached in this process."""
    clear_process_cache()
    yield
    clear_process_cache()


@pytest.fixture(autouse=True)
def _fresh_secrets_masker() -> Iterator[None]:
    """Airflow's masker recompiles one regex of every secret ever masked on each new secret; the
    emulator mints new tokens in every test, so without a reset the suite slows down quadratically."""
    yield
    for name in (
        "airflow.sdk._shared.secrets_masker",
        "airflow._shared.secrets_masker",
        "airflow.sdk.execution_time.secrets_masker",
    ):
        module = sys.modules.get(name)
        reset = getattr(module, "reset_secrets_masker", None)
        if reset is not None:
            reset()
    legacy = sys.modules.get("airflow.utils.log.secrets_masker")  # Airflow 2.11: no reset function
    if legacy is not None:
        legacy._secrets_masker().patterns = set()
        legacy._secrets_masker().replacer = None
