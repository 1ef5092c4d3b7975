"""The hook in real Airflow tasks, against the emulator over a real socket."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _support.dags import load_dag

pytestmark = pytest.mark.integration

DAG_SOURCE = textwrap.dedent(
    """
    from __future__ import annotations

    import hashlib

    import pendulum
    from airflow.providers.common.compat.sdk import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
    def msads_three_tasks():
        @task
        def use_hook(n: int) -> dict:
            # Each task behaves like a fresh worker process: nothing cached in memory.
            from airflow_provider_msads.tokens.auth import clear_process_cache
            from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

            clear_process_cache()
            hook = MicrosoftAdsHook(msads_conn_id="msads_default")
            token = hook.get_access_token()
            headers = hook.get_auth_headers()
            with hook.get_conn() as client:
                user = client.post("User/Query", json={"UserId": None}).json()
            return {
                "token_digest": hashlib.sha256(token.encode()).hexdigest()[:16],
                "header_names": sorted(headers),
                "user_id": user["User"]["Id"],
            }

        use_hook.expand(n=[1, 2, 3])


    msads_three_tasks()
    """
)


def _run(dag) -> str:
    run = dag.test()
    return str(run.state)


def _state(conn: dict):
    from _support.airflow_compat import cipher_for
    from airflow.models.variable import Variable

    blob = Variable.get("msads_token_store__msads_default", default_var=None)
    assert blob, "the token state was not written to the Variable"
    return blob, cipher_for(conn).open(blob)


def test_tasks_share_one_token_and_rotation_is_persisted(dags_folder: Path, msads_emulator, msads_conn):
    from _support.airflow_compat import cipher_for
    from airflow.models.variable import Variable

    from airflow_provider_msads.token_store import TokenState
    from airflow_provider_msads.tokens.auth import clear_process_cache

    conn_refresh = msads_conn["extra"]["refresh_token"]
    path = dags_folder / "msads_three_tasks.py"
    path.write_text(DAG_SOURCE)
    dag = load_dag(path, "msads_three_tasks")

    assert _run(dag) == "success"
    assert msads_emulator.counters["token.refresh_token"] == 1
    assert msads_emulator.counters["api.GetUser"] == 3

    blob, state = _state(msads_conn)
    assert state is not None
    rotated = state.refresh_token
    assert rotated != conn_refresh
    assert rotated == msads_emulator.issued_refresh_tokens[-1]
    for token in msads_emulator.issued_refresh_tokens + msads_emulator.issued_access_tokens:
        assert token not in blob

    # Time passes: the shared access token expires. The next refresh must present the rotated token.
    expired = TokenState(
        refresh_token=state.refresh_token,
        access_token=state.access_token,
        access_expires_at=0.0,
        refresh_rotated_at=state.refresh_rotated_at,
        updated_at=state.updated_at,
        generation=state.generation,
    )
    Variable.set("msads_token_store__msads_default", cipher_for(msads_conn).seal(expired))
    clear_process_cache()

    assert _run(dag) == "success"
    assert msads_emulator.counters["token.refresh_token"] == 2
    assert msads_emulator.token_requests[-1]["refresh_token"] == rotated
    _, newer = _state(msads_conn)
    assert newer is not None
    assert newer.refresh_token == msads_emulator.issued_refresh_tokens[-1] != rotated
