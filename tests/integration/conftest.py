"""Real Airflow tests. ``airflow_db``, ``dags_folder`` and ``msads_conn`` live in tests/conftest.py,
shared with the reliability, browser and CLI folders (one ``airflow db migrate`` per session);
``report_conn`` (the connection with Reporting) is shared by the report tests here, ``bulk_conn``
(the connection with Bulk, and a clock the test moves) by the Bulk tests."""

from __future__ import annotations

import importlib.util
import json

import pytest
from _support.s3 import s3_conn, s3_server  # noqa: F401 - fixtures: ONE moto server per session

# The S3 fixtures live here, once: a session fixture re-bound in several test modules starts one
# moto server per module, while Airflow's object-store cache keeps the first server's client for
# `aws_default` (the later modules' buckets then "do not exist").

# gs:// destinations need the google provider and the GCS emulator, which live in a venv of their own
# (.venv-gcs): `make test` runs that file there by name (a file named on the command line is never
# ignored); elsewhere a plain `pytest tests/integration` leaves it out instead of failing to import.
collect_ignore = [] if importlib.util.find_spec("gcp_storage_emulator") else ["test_destinations_gcs.py"]
# abfs:// destinations likewise (.venv-azure, `make test-azure`: the azure provider, adlfs, Azurite).
if importlib.util.find_spec("adlfs") is None:
    collect_ignore.append("test_destinations_azure.py")


@pytest.fixture
def report_conn(msads_emulator, monkeypatch: pytest.MonkeyPatch, airflow_db) -> dict:
    """``msads_default`` pointing at the emulator, Reporting included; tokens in memory (each test
    starts without a stored refresh token of an earlier test)."""
    conn = msads_emulator.connection_dict()
    conn["extra"]["reporting_url"] = msads_emulator.reporting_url
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    return conn


@pytest.fixture
def bulk_conn(msads_emulator, monkeypatch: pytest.MonkeyPatch, airflow_db) -> dict:
    """``msads_default`` pointing at the emulator's Bulk service; a clock the test moves."""
    from _support.emulator import FakeClock

    msads_emulator.clock = clock = FakeClock()
    conn = msads_emulator.connection_dict()
    conn["extra"]["bulk_url"] = msads_emulator.bulk_url
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    msads_emulator.bulk.set_tree(campaigns=2, ad_groups_per_campaign=2, keywords_per_ad_group=3, ads_per_ad_group=1)
    return {"conn": conn, "clock": clock}
