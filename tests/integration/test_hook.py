"""MicrosoftAdsHook with Airflow's own Connection handling, against the emulator on a socket."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from _support.airflow_compat import cipher_for

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.token_store import (
    FileTokenStore,
    MemoryTokenStore,
    VariableTokenStore,
    default_token_store,
    storage_key,
)

pytestmark = pytest.mark.integration


def test_init_only_stores_its_arguments(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AIRFLOW_CONN_MSADS_DEFAULT", raising=False)
    hook = MicrosoftAdsHook(msads_conn_id="does_not_exist")  # no lookup, no network
    assert hook.msads_conn_id == "does_not_exist"
    assert MicrosoftAdsHook().msads_conn_id == "msads_default"
    with pytest.raises(TypeError):
        MicrosoftAdsHook("msads_default")  # keyword-only, like Airflow's own hooks


def test_access_token_headers_and_client_against_the_emulator(msads_emulator, msads_conn, tmp_path: Path):
    store = FileTokenStore(tmp_path / "store")
    hook = MicrosoftAdsHook(token_store=store)
    token = hook.get_access_token()
    assert token == msads_emulator.issued_access_tokens[-1]
    headers = hook.get_auth_headers()
    assert headers == {
        "Authorization": f"Bearer {token}",
        "DeveloperToken": msads_emulator.developer_token,
        "CustomerId": msads_emulator.customer_id,
        "CustomerAccountId": msads_emulator.account.id,
    }
    with hook.get_conn() as client:
        user = client.post("User/Query", json={"UserId": None})
    assert user.status_code == 200
    assert user.json()["User"]["Id"] == msads_emulator.user_id
    assert msads_emulator.counters["token.refresh_token"] == 1

    path = tmp_path / "store" / f"{storage_key('msads_default')}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = path.read_text()
    assert token not in sealed
    state = cipher_for(msads_conn).open(sealed)
    assert state is not None
    assert state.refresh_token == msads_emulator.issued_refresh_tokens[-1]


def test_tokens_learnt_at_run_time_are_masked(msads_emulator, msads_conn):
    from airflow.providers.common.compat.sdk import redact

    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    token = hook.get_access_token()
    assert token not in str(redact(f"token is {token}"))
    rotated = msads_emulator.issued_refresh_tokens[-1]
    assert rotated not in str(redact(f"refresh is {rotated}"))


def test_expired_access_token_is_refreshed_once_and_request_resent(msads_emulator, msads_conn):
    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    with hook.get_conn() as client:
        assert client.post("User/Query", json={"UserId": None}).status_code == 200
        msads_emulator.expire_access_tokens()  # Microsoft now answers fault 109
        again = client.post("User/Query", json={"UserId": None})
    assert again.status_code == 200
    assert msads_emulator.counters["token.refresh_token"] == 2


def test_async_client_and_token(msads_emulator, msads_conn):
    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())

    async def main() -> tuple[str, int]:
        token = await hook.aget_access_token()
        async with hook.get_async_conn() as client:
            response = await client.post("Account/Query", json={"AccountId": msads_emulator.account.id})
        return token, response.status_code

    token, status = asyncio.run(main())
    assert token == msads_emulator.issued_access_tokens[-1]
    assert status == 200
    assert msads_emulator.counters["token.refresh_token"] == 1


def test_reset_token_store_forgets_state(msads_emulator, msads_conn):
    store = MemoryTokenStore()
    hook = MicrosoftAdsHook(token_store=store)
    hook.get_access_token()
    assert store.read(storage_key("msads_default"))
    hook.reset_token_store()
    assert store.read(storage_key("msads_default")) is None


def test_default_store_depends_on_the_process(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MSADS_TOKEN_STORE", raising=False)
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)  # dag.test() on Airflow 2 leaves it set
    assert isinstance(default_token_store(), FileTokenStore)  # a bare script
    from airflow import __version__ as airflow_version

    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "some_dag")  # what an Airflow 2 task exports
    expected = VariableTokenStore if airflow_version.startswith("2.") else FileTokenStore
    assert isinstance(default_token_store(), expected)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID")
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    assert isinstance(default_token_store(), VariableTokenStore)  # CLI / API server
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")
    assert isinstance(default_token_store(), MemoryTokenStore)
    monkeypatch.setenv("MSADS_TOKEN_STORE", "nonsense")
    from airflow_provider_msads.errors import TokenStoreError

    with pytest.raises(TokenStoreError, match="MSADS_TOKEN_STORE"):
        default_token_store()


def test_variable_store_in_a_server_process(airflow_db, msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch):
    from airflow.models.variable import Variable

    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    hook = MicrosoftAdsHook(msads_conn_id="msads_default")
    assert isinstance(hook.token_store, VariableTokenStore)
    hook.get_access_token()
    sealed = Variable.get(storage_key("msads_default"))
    state = cipher_for(msads_conn).open(sealed)
    assert state is not None
    assert state.refresh_token == msads_emulator.issued_refresh_tokens[-1]
    Variable.delete(storage_key("msads_default"))


def test_bare_script_uses_the_file_store(msads_emulator, msads_conn, tmp_path: Path):
    """A plain Python process with only the env-var connection: no metastore, file store."""
    import subprocess
    import sys

    env = {**os.environ, "MSADS_TOKEN_STORE_DIR": str(tmp_path)}
    env.pop("_AIRFLOW_PROCESS_CONTEXT", None)
    env.pop("AIRFLOW_CTX_DAG_ID", None)
    code = (
        "from airflow_provider_msads.hooks.msads import MicrosoftAdsHook\n"
        "hook = MicrosoftAdsHook()\n"
        "hook.get_access_token()\n"
        "print(type(hook.token_store).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "FileTokenStore"
    assert (tmp_path / f"{storage_key('msads_default')}.json").exists()
    for token in msads_emulator.issued_access_tokens + msads_emulator.issued_refresh_tokens:
        assert token not in out.stdout + out.stderr
