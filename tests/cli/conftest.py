"""Fixtures for ``msads-authorize`` tests: an emulator whose app trusts a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.cli import free_port

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MSADS_* value or SSH hint from the developer's shell may leak into a run."""
    for name in ("MSADS_CLIENT_ID", "MSADS_CLIENT_SECRET", "MSADS_DEVELOPER_TOKEN", "MSADS_CUSTOMER_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MSADS_ACCOUNT_ID", raising=False)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)


@pytest.fixture
def redirect_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def emulator(redirect_uri: str) -> Iterator[MicrosoftAdsEmulator]:
    with MicrosoftAdsEmulator() as emu:
        emu.app.redirect_uris = [redirect_uri, "https://example.com/callback"]
        yield emu


@pytest.fixture(scope="session")
def cli_airflow_db(airflow_db: Path) -> Path:
    """The session's migrated metastore (tests/conftest.py), under this folder's historic name."""
    return airflow_db
