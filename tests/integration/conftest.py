"""Real Airflow: a SQLite metastore made by ``airflow db migrate`` in the session's AIRFLOW_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> Path:
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
