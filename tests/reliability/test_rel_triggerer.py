"""A real ``airflow triggerer`` process runs 100 deferred credential sensors at once (issue 10).

The triggerer runs every deferrable sensor of a deployment on one event loop, whose default
executor has min(32, cores + 4) threads. Before the async path became asyncio-native, more
callers on one connection than that pool has threads hung for good. Here the metastore holds
100 task instances deferred on ``MicrosoftAdsCredentialsTrigger`` (one connection, then ten
connections), exactly as the sensor leaves them, and a real triggerer process must fire every
trigger. Timings and token requests are printed (the README's reliability section quotes them).

Scheduler and executor are left out on purpose: they add minutes of task start-up and nothing
to what is under test, the triggerer's event loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support.triggerer import defer_run

DAG_SOURCE = """
from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_msads.sensors.msads import MicrosoftAdsCredentialsSensor

for dag_id, count, conns in (("msads_trig_one", 1, 1), ("msads_trig_100", 100, 1), ("msads_trig_100x10", 100, 10)):
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        for n in range(count):
            MicrosoftAdsCredentialsSensor(
                task_id=f"sensor_{n:03d}", msads_conn_id=f"msads_trig_{n % conns}", deferrable=True, poke_interval=5
            )
    globals()[dag_id] = dag
"""

pytestmark = pytest.mark.skipif(
    not __import__("airflow").__version__.startswith("3.3"), reason="metastore layout of Airflow 3.3"
)


def _defer_all(dag_id: str, conn_ids: dict[int, str]) -> int:
    """A DAG run whose task instances are deferred on the sensor's trigger, as the sensor leaves them."""
    from airflow_provider_msads.triggers.msads import MicrosoftAdsCredentialsTrigger

    def trigger(task_id: str) -> MicrosoftAdsCredentialsTrigger:
        index = int(task_id.rsplit("_", 1)[1])
        return MicrosoftAdsCredentialsTrigger(conn_ids[index], poke_interval=5.0, timeout=300)

    return defer_run(dag_id, trigger)


def _wait_all_fired(run_id: int, count: int, triggerer: subprocess.Popen, timeout: float) -> float:
    """Seconds until no task instance of the run is deferred any more (the triggerer fired them)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import TaskInstanceState

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert triggerer.poll() is None, "the triggerer process died"
        session = settings.Session()
        try:
            run = session.get(DagRun, run_id)
            tis = run.get_task_instances(session=session)
            assert len(tis) == count
            if all(ti.state != TaskInstanceState.DEFERRED for ti in tis):
                for ti in tis:
                    assert ti.state == TaskInstanceState.SCHEDULED, (ti.task_id, ti.state)
                    event = (ti.next_kwargs or {}).get("event") or {}
                    assert event.get("status") == "success", (ti.task_id, event)
                return time.monotonic() - started
        finally:
            session.close()
        time.sleep(0.2)  # polling the metastore for the outcome, not timing anything
    raise AssertionError(f"not every trigger fired within {timeout:.0f} s")


def test_a_real_triggerer_runs_100_deferred_sensors(
    airflow_db, dags_folder: Path, msads_emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (dags_folder / "msads_triggerer_dags.py").write_text(DAG_SOURCE)
    msads_emulator.latency = 0.05
    conns = {f"msads_trig_{n}": msads_emulator.connection_uri_json() for n in range(10)}
    env = {**os.environ, **{f"AIRFLOW_CONN_{cid.upper()}": uri for cid, uri in conns.items()}}
    env["MSADS_TOKEN_STORE_DIR"] = str(tmp_path / "store")
    env["AIRFLOW__TRIGGERER__DEFAULT_CAPACITY"] = "1000"
    env.pop("MSADS_TOKEN_STORE", None)
    log = (tmp_path / "triggerer.log").open("w")
    triggerer = subprocess.Popen(
        [sys.executable, "-m", "airflow", "triggerer"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    figures: dict[str, tuple[float, int]] = {}
    try:
        for dag_id, count, n_conns in (
            ("warm-up", 1, 1),
            ("msads_trig_one", 1, 1),
            ("msads_trig_100", 100, 1),
            ("msads_trig_100x10", 100, 10),
        ):
            msads_emulator.reset_counters()
            run_id = _defer_all(
                dag_id.replace("warm-up", "msads_trig_one"), {n: f"msads_trig_{n % n_conns}" for n in range(count)}
            )
            # The first run also waits for the triggerer to start (its import of Airflow).
            elapsed = _wait_all_fired(run_id, count, triggerer, timeout=300)
            figures[dag_id] = (elapsed, msads_emulator.counters["token.refresh_token"])
    finally:
        triggerer.terminate()
        try:
            triggerer.wait(60)
        except subprocess.TimeoutExpired:
            triggerer.kill()
        log.close()
    text = (tmp_path / "triggerer.log").read_text(errors="replace")
    for secret in [msads_emulator.app.client_secret, *msads_emulator.issued_refresh_tokens]:
        assert secret not in text
    one = figures["msads_trig_one"][0]
    with capsys.disabled():
        print()
        for dag_id, (elapsed, requests) in figures.items():
            print(f"triggerer: {dag_id}: all fired in {elapsed:.1f} s, token requests {requests}")
        for dag_id in ("msads_trig_100", "msads_trig_100x10"):
            print(f"triggerer: {dag_id} against one sensor: {figures[dag_id][0] / one:.1f}x")
    # One connection: validations that overlap share a refresh; the rest each prove it anew.
    assert figures["msads_trig_100"][1] <= 100
    assert figures["msads_trig_100x10"][1] >= 10
