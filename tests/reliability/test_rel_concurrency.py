"""Concurrency: a cold start of 16 processes costs one token request; two machines share a Variable.

The processes run the token core (``TokenManager`` over a ``FileTokenStore``), which is exactly
what ``MicrosoftAdsHook.get_access_token()`` delegates to; importing Airflow in 16 children would
cost a minute of CPU on two cores and prove nothing more. The emulator's latency keeps the first
refresh in flight long enough for every other process to pile up behind the lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support.airflow_compat import cipher_for
from _support.reliability import REPO_ROOT, child_env

from airflow_provider_msads.testing.together import start_together
from airflow_provider_msads.token_store import storage_key

CHILD = str(Path(__file__).with_name("_rel_token_child.py"))


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, CHILD, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(env),
        cwd=str(REPO_ROOT),
    )


def _start_together(children: list[subprocess.Popen[str]], timeout: float = 120) -> list[dict]:
    """Wait until every child is ready, release them at once, collect their JSON answers."""
    return [json.loads(line) for line in start_together(children, timeout)]


def test_sixteen_processes_cold_store_one_token_request(msads_emulator, tmp_path: Path):
    conn = msads_emulator.connection_dict()
    msads_emulator.latency = 0.3
    store_dir = tmp_path / "store"
    env = {"MSADS_REL_CONN": json.dumps(conn), "MSADS_REL_CONN_ID": "msads_rel"}

    results = _start_together([_spawn(["get", str(store_dir), "3"], env) for _ in range(16)])

    tokens = {token for result in results for token in result["tokens"]}
    assert len({result["pid"] for result in results}) == 16
    assert msads_emulator.counters["token.refresh_token"] == 1
    assert tokens == {msads_emulator.issued_access_tokens[0]}

    # The store is whole: it opens, holds the rotated refresh token, and nothing else is lying around.
    files = sorted(p.name for p in store_dir.iterdir() if p.is_file())
    assert files == [f"{storage_key('msads_rel')}.json"]
    state = cipher_for(conn, "msads_rel").open((store_dir / files[0]).read_text())
    assert state is not None
    assert state.refresh_token == msads_emulator.issued_refresh_tokens[-1]
    assert state.access_token == msads_emulator.issued_access_tokens[0]
    assert msads_emulator.is_refresh_token_valid(state.refresh_token)


@pytest.mark.msads_emulator(strict_rotation=True)
def test_two_machines_racing_on_one_variable_both_end_valid(
    airflow_db, msads_emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two machines (no shared lock) refresh at once into the same Variable; strict rotation on."""
    from airflow.models.variable import Variable

    conn = msads_emulator.connection_dict()
    msads_emulator.latency = 1.0  # both refreshes are in flight at the same time, even on a busy machine
    key = storage_key("msads_race")
    Variable.delete(key)
    children = []
    for machine in ("a", "b"):
        tmp = tmp_path / f"machine-{machine}"
        tmp.mkdir(mode=0o700)
        env = {
            "MSADS_REL_CONN": json.dumps(conn),
            "MSADS_REL_CONN_ID": "msads_race",
            "_AIRFLOW_PROCESS_CONTEXT": "server",
            "TMPDIR": str(tmp),
            "XDG_RUNTIME_DIR": str(tmp),  # its own lock folder: nothing is shared but the Variable
        }
        children.append(_spawn(["variable", machine], env))

    results = _start_together(children, timeout=180)

    # A real race: both machines found the Variable empty and refreshed with the connection's token
    # at once (no cross-machine lock); then each refreshed once more, forced.
    presented = [req.get("refresh_token") for req in msads_emulator.token_requests]
    assert presented.count(conn["extra"]["refresh_token"]) == 2
    assert len(presented) == 4
    # Every access token handed out works against the API.
    msads_emulator.latency = 0.0
    import httpx

    with httpx.Client(base_url=msads_emulator.customer_management_url + "/") as client:
        for result in results:
            for token in (result["token"], result["forced"]):
                answer = client.post(
                    "User/Query",
                    json={"UserId": None},
                    headers={"Authorization": f"Bearer {token}", "DeveloperToken": conn["extra"]["developer_token"]},
                )
                assert answer.status_code == 200, answer.text
    # The Variable opens, and the refresh token it keeps is alive even under strict rotation.
    state = cipher_for(conn, "msads_race").open(Variable.get(key))
    assert state is not None
    assert msads_emulator.is_refresh_token_valid(state.refresh_token)
    # And a third process after the race refreshes from it.
    from airflow_provider_msads.connection.credentials import parse_credentials
    from airflow_provider_msads.token_store import VariableTokenStore
    from airflow_provider_msads.tokens.auth import TokenManager

    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    credentials = parse_credentials(
        conn_id="msads_race", login=conn["login"], password=conn["password"], extra=conn["extra"]
    )
    manager = TokenManager(credentials, store=VariableTokenStore())
    after = manager.get_token(force_refresh=True)
    assert after.access_token == msads_emulator.issued_access_tokens[-1]
    assert manager.info.used_fallback is False
    Variable.delete(key)
    assert os.environ.get("MSADS_TOKEN_STORE") is None
