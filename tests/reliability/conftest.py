"""Fixtures of the reliability suite (fault matrix, leak run, crash, concurrency, hostile input).

Fixtures are not shared across sibling test folders, so the few we need from
``tests/integration/conftest.py`` are repeated here. ``msads_emulator`` and
``msads_emulator_factory`` come from the package's pytest plugin, as users get them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metastore in the session's AIRFLOW_HOME (see tests/conftest.py)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return home


@pytest.fixture
def dags_folder(airflow_db: Path) -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


@pytest.fixture
def msads_conn(msads_emulator, monkeypatch: pytest.MonkeyPatch) -> dict:
    """``msads_default`` as an env-var connection pointing at the emulator."""
    conn = msads_emulator.connection_dict()
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", msads_emulator.connection_uri_json(conn["extra"]["refresh_token"]))
    return conn
