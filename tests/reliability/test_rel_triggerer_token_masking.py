"""A real ``airflow triggerer`` at DEBUG: no token learnt at run time appears in its output (issue 21).

The trigger runner is a child of the triggerer; it sends its log lines to the triggerer (its
supervisor), which redacts them with secrets it learnt from ``MaskSecret`` messages. The provider
masks its tokens itself, in the runner, before a line leaves it, and sends no ``MaskSecret``. A
probe trigger refreshes the token (forced), then deliberately logs it through the trigger's logger,
a plain logger at DEBUG and an exception, three cycles in a row; the credential sensor's trigger
runs beside it. Nothing of any token issued may appear in the triggerer's output or in the trigger
log files, and the probe's lines must be there, masked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support.triggerer import defer_run

pytestmark = pytest.mark.skipif(
    not __import__("airflow").__version__.startswith("3.3"), reason="metastore layout of Airflow 3.3"
)

PROBE_MODULE = """
from __future__ import annotations

import logging

from airflow.triggers.base import BaseTrigger, TriggerEvent


class TokenProbeTrigger(BaseTrigger):
    def __init__(self, msads_conn_id: str) -> None:
        super().__init__()
        self.msads_conn_id = msads_conn_id

    def serialize(self):
        return ("msads_token_probe.TokenProbeTrigger", {"msads_conn_id": self.msads_conn_id})

    async def run(self):
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        hook = MicrosoftAdsHook(msads_conn_id=self.msads_conn_id)
        report = await hook.avalidate_credentials()  # a forced refresh: two new tokens
        token = await hook.aget_access_token()
        self.log.info("PROBE-TRIGGER %s", token)
        logging.getLogger("msads_probe").debug("PROBE-DEBUG %s", token)
        try:
            raise RuntimeError(f"PROBE-EXCEPTION {token}")
        except RuntimeError:
            self.log.exception("PROBE-CAUGHT")
        yield TriggerEvent({"status": "success" if report.ok else "failed"})
"""

DAG_SOURCE = """
from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("msads_probe_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    EmptyOperator(task_id="probe_0")
    EmptyOperator(task_id="sensor_1")
"""


def _defer(probe_module: Path) -> int:
    """A DAG run whose two task instances wait on the probe trigger and the credential sensor's."""
    from airflow_provider_msads.triggers.msads import MicrosoftAdsCredentialsTrigger

    sys.path.insert(0, str(probe_module.parent))
    from msads_token_probe import TokenProbeTrigger  # type: ignore[import-not-found]

    def trigger(task_id: str) -> object:
        if task_id == "probe_0":
            return TokenProbeTrigger("msads_probe")
        return MicrosoftAdsCredentialsTrigger("msads_probe", poke_interval=5.0, timeout=300)

    return defer_run("msads_probe_dag", trigger)


def _wait_fired(run_id: int, triggerer: subprocess.Popen, timeout: float) -> None:
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.utils.state import TaskInstanceState

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert triggerer.poll() is None, "the triggerer process died"
        session = settings.Session()
        try:
            tis = session.get(DagRun, run_id).get_task_instances(session=session)
            if all(ti.state != TaskInstanceState.DEFERRED for ti in tis):
                for ti in tis:
                    event = (ti.next_kwargs or {}).get("event") or {}
                    assert event.get("status") == "success", (ti.task_id, event)
                return
        finally:
            session.close()
        time.sleep(0.2)  # polling the metastore for the outcome, not timing anything
    raise AssertionError(f"the triggers did not fire within {timeout:.0f} s")


def test_no_runtime_token_in_a_debug_triggerer(airflow_db, dags_folder: Path, msads_emulator, tmp_path: Path):
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "msads_token_probe.py").write_text(PROBE_MODULE)
    (dags_folder / "msads_probe_dag.py").write_text(DAG_SOURCE)
    conn = msads_emulator.connection_dict()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_CONN_MSADS_PROBE"] = msads_emulator.connection_uri_json(conn["extra"]["refresh_token"])
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "DEBUG"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(probe_dir), env.get("PYTHONPATH", "")]))
    env["MSADS_TOKEN_STORE_DIR"] = str(tmp_path / "store")
    env.pop("MSADS_TOKEN_STORE", None)
    log_path = tmp_path / "triggerer.log"
    with log_path.open("w") as log:
        triggerer = subprocess.Popen(
            [sys.executable, "-m", "airflow", "triggerer"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
        )
        try:
            for _ in range(3):
                _wait_fired(_defer(probe_dir / "msads_token_probe.py"), triggerer, timeout=300)
        finally:
            triggerer.terminate()
            try:
                triggerer.wait(60)
            except subprocess.TimeoutExpired:
                triggerer.kill()
    # Trigger logs go to each task instance's log file; the triggerer's own to its output.
    texts = [log_path.read_text(errors="replace")]
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs" / "dag_id=msads_probe_dag"
    texts += [path.read_text(errors="replace") for path in logs.rglob("*") if path.is_file()]
    text = "\n".join(texts)
    learnt = [t for t in msads_emulator.issued_access_tokens + msads_emulator.issued_refresh_tokens]
    assert len(msads_emulator.issued_access_tokens) >= 3  # a forced refresh per cycle at least
    probe_lines = [line for line in text.splitlines() if "PROBE-TRIGGER" in line or "PROBE-EXCEPTION" in line]
    assert len(probe_lines) >= 3 and all("***" in line for line in probe_lines), text[-4000:]
    for n, token in enumerate(learnt):
        lines = [line[:200] for line in text.splitlines() if token in line]
        assert lines == [], f"token {n} printed by the triggerer: {lines}"
    for secret in (conn["password"], conn["extra"]["developer_token"]):
        assert secret not in text
