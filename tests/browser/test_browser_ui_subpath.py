"""The UI plugin on an Airflow served under a sub-path, with Airflow's default ``[core] test_connection``.

A real ``airflow api-server`` with ``[api] base_url = http://127.0.0.1:<port>/airflow`` (Airflow's
app then has the ASGI ``root_path`` ``/airflow``): Microsoft's redirect to ``/airflow/`` or
``/airflow/msads/callback`` is caught, and every link of the pages stays under ``/airflow``.
Connection tests are left at Airflow's default (Disabled), so *Validate now* is refused and
hidden. Driven with httpx (the pages have no script), so no browser is needed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from _support.api_server import auth_token, simple_auth_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SUB_PATH = "/airflow"
PASSWORDS = {"admin": "admin-pw-sub"}


@pytest.fixture(scope="module")
def sub_path_server(browser_airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    env = {
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__TEST_CONNECTION": "Disabled",  # Airflow's default, whatever the environment says
    }
    with simple_auth_server(tmp_path_factory.mktemp("ui-sub-path"), PASSWORDS, env, sub_path=SUB_PATH) as server:
        assert urlsplit(server[0]).path == SUB_PATH
        yield server


@pytest.fixture
def sub_path_connection(browser_airflow_db: Path, msads_emulator: Any) -> Iterator[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_msads.cli import metastore

    conn_id = "msads_sub_path"
    metastore.save_connection(conn_id, msads_emulator.connection_dict(), replace=True, description="sub-path test")
    yield conn_id
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()


def _client(base_url: str) -> httpx.Client:
    token = auth_token(base_url, "admin", PASSWORDS["admin"])
    return httpx.Client(cookies={"_token": token}, timeout=60)


def _csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


@pytest.mark.parametrize("form", ["root", "callback"])
def test_authorize_under_a_sub_path(
    sub_path_server: tuple[str, Path], msads_emulator: Any, sub_path_connection: str, form: str
) -> None:
    base_url, log_path = sub_path_server
    redirect_uri = f"{base_url}/" if form == "root" else f"{base_url}/msads/callback"
    msads_emulator.app.redirect_uris = [redirect_uri]  # as registered for this deployment
    with _client(base_url) as client:
        index = client.get(f"{base_url}/msads/")
        assert index.status_code == 200, index.text
        assert f'action="{SUB_PATH}/msads/authorize"' in index.text
        assert f'href="{SUB_PATH}/"' in index.text and f'href="{SUB_PATH}/msads/health"' in index.text
        assert f"<code>{redirect_uri}</code>" in index.text
        start = client.post(
            f"{base_url}/msads/authorize",
            data={"conn_id": sub_path_connection, "csrf": _csrf_of(index.text), "redirect": form},
        )
        assert start.status_code == 303, start.text
        to_microsoft = client.get(start.headers["location"])
        assert to_microsoft.status_code == 302, to_microsoft.text
        answer = to_microsoft.headers["location"]
        assert answer.startswith(redirect_uri + "?"), answer
        done = client.get(answer)
    assert done.status_code == 200, done.text
    assert "<h1>Authorized; every credential is valid</h1>" in done.text
    from airflow_provider_msads.cli.metastore import find_connection

    stored = find_connection(sub_path_connection)
    assert stored is not None and stored.option("refresh_token") == msads_emulator.issued_refresh_tokens[-1]
    code = dict(p.split("=", 1) for p in urlsplit(answer).query.split("&"))["code"]
    assert code not in log_path.read_text(errors="replace")


def test_validate_now_follows_core_test_connection(
    sub_path_server: tuple[str, Path], msads_emulator: Any, sub_path_connection: str
) -> None:
    """Airflow keeps connection tests off the API server unless ``[core] test_connection = Enabled``:
    so does Validate now (no button, and a posted form is refused before anything is sent)."""
    base_url, _ = sub_path_server
    before = dict(msads_emulator.counters)
    with _client(base_url) as client:
        health = client.get(f"{base_url}/msads/health")
        assert health.status_code == 200, health.text
        assert f'<tr data-conn-id="{sub_path_connection}">' in health.text
        assert "Validate now</button>" not in health.text
        assert "[core] test_connection" in health.text
        refused = client.post(
            f"{base_url}/msads/validate",
            data={"conn_id": sub_path_connection, "csrf": _csrf_of_health(client, base_url)},
        )
    assert refused.status_code == 403, refused.text
    assert "Validate now is off" in refused.text and "[core] test_connection" in refused.text
    assert dict(msads_emulator.counters) == before  # nothing was sent to the token endpoint or the API


def _csrf_of_health(client: httpx.Client, base_url: str) -> str:
    """The form token of the session, from the index page (the health page shows no form now)."""
    return _csrf_of(client.get(f"{base_url}/msads/").text)
