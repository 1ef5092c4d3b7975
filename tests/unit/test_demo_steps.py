"""The demo's scheduler steps against a recording stand-in for Airflow's REST API.

The real thing runs in tests/browser/test_browser_demo.py (four Airflow components); what that
test can hit only by chance is pinned here: the order of the calls that once let Airflow 3.3's
scheduler exit (a trigger for the logical date that unpausing makes the scheduler create), and
what the demo says when a component dies or a run never starts.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DEMO_PATH = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("msads_demo_script", DEMO_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class RecordingApi:
    """Airflow's answers for one producer run that succeeds and the consumer run it starts."""

    def __init__(self, producer_paused: bool = True, *, run_state: str = "success") -> None:
        self.calls: list[tuple[str, ...]] = []
        self.paused = {"msads_report_producer": producer_paused, "msads_report_consumer": True}
        self.run_state = run_state
        self.consumer_runs: list[dict[str, Any]] = []

    def dag(self, dag_id: str) -> dict[str, Any]:
        return {
            "dag_id": dag_id,
            "is_paused": self.paused[dag_id],
            "next_dagrun_logical_date": "2026-12-03T00:00:00Z",
            "next_dagrun_data_interval_start": "2026-12-03T00:00:00Z",
            "next_dagrun_data_interval_end": "2026-12-03T00:00:00Z",
        }

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.calls.append(("set_paused", dag_id, str(paused)))
        self.paused[dag_id] = paused

    def trigger(self, dag_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("trigger", dag_id, "paused" if self.paused[dag_id] else "unpaused"))
        return {
            "dag_id": dag_id,
            "dag_run_id": body["dag_run_id"],
            "state": "queued",
            "data_interval_end": body.get("data_interval_end"),
        }

    def newest_run(self, dag_id: str, started_after: str | None = None, run_type: str | None = None) -> Any:
        return self.consumer_runs[-1] if self.consumer_runs else None

    def refresh(self, run: dict[str, Any]) -> dict[str, Any]:
        if run["dag_id"] == "msads_report_producer" and self.run_state == "success" and not self.consumer_runs:
            self.consumer_runs.append(
                {"dag_id": "msads_report_consumer", "dag_run_id": "asset_triggered__1", "state": "success"}
            )
        return {**run, "state": self.run_state}

    def task_instances(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        task = "campaign_daily" if run["dag_id"] == "msads_report_producer" else "load"
        return [{"task_id": task, "map_index": -1, "state": "scheduled" if self.run_state == "queued" else "success"}]

    def fail_run(self, run: dict[str, Any]) -> None:
        self.calls.append(("fail_run", run["dag_id"]))

    def xcom(self, run: dict[str, Any], task_id: str, key: str = "return_value") -> Any:
        if task_id == "campaign_daily":
            return {"path": "/data/campaign_daily/2026-12-02.csv", "rows": 3}
        return [{"path": "/data/campaign_daily/2026-12-02.csv", "lines": 3}]


class FakeProcesses:
    def __init__(self, dead: list[str] | None = None) -> None:
        self.dead = dead or []

    def exited(self) -> list[str]:
        return self.dead


def test_the_producer_run_exists_before_its_dag_is_unpaused(demo: ModuleType, tmp_path: Path) -> None:
    api = RecordingApi()
    result = demo.run_asset_pair(api, FakeProcesses(), tmp_path, tmp_path / "scheduler.log", timeout=30)

    assert result.state == "success", result.lines
    pausing = [call for call in api.calls if call[0] in ("set_paused", "trigger")]
    assert pausing == [
        ("set_paused", "msads_report_consumer", "False"),  # Asset-triggered runs need an unpaused consumer
        ("trigger", "msads_report_producer", "paused"),  # the run first, so the scheduler sees it exists
        ("set_paused", "msads_report_producer", "False"),
        ("set_paused", "msads_report_producer", "True"),  # both paused again afterwards
        ("set_paused", "msads_report_consumer", "True"),
    ]


def test_the_ingestion_run_exists_before_its_dag_is_unpaused(demo: ModuleType, tmp_path: Path) -> None:
    api = RecordingApi()
    api.paused["msads_ingestion_example"] = True
    result = demo.run_scheduled(api, FakeProcesses(), tmp_path, tmp_path / "scheduler.log", timeout=30)

    assert result.lines[-1].startswith("the run succeeded but did not write")  # no file in this stand-in
    pausing = [call for call in api.calls if call[0] in ("set_paused", "trigger")]
    assert pausing[:2] == [
        ("trigger", "msads_ingestion_example", "paused"),
        ("set_paused", "msads_ingestion_example", "False"),
    ]


def test_a_component_that_exited_ends_the_wait_and_is_named(demo: ModuleType, tmp_path: Path) -> None:
    api = RecordingApi(run_state="queued")
    dead = ["scheduler exited (1); see /logs/scheduler.log"]
    started = time.monotonic()
    result = demo.run_asset_pair(api, FakeProcesses(dead), tmp_path, tmp_path / "scheduler.log", timeout=300)

    assert time.monotonic() - started < 60  # not the 300 s deadline
    assert result.state == "failed"
    assert "(scheduler exited (1); see /logs/scheduler.log)" in result.lines
    assert ("fail_run", "msads_report_producer") in api.calls


def test_a_run_that_never_starts_is_reported_with_its_task_states(demo: ModuleType, tmp_path: Path) -> None:
    api = RecordingApi(run_state="queued")
    run = {"dag_id": "msads_report_producer", "dag_run_id": "demo__1", "state": "queued"}
    run, note = demo.follow(api, run, time.monotonic() - 1, FakeProcesses())

    # The states before the run is failed: failing it turns every task not started into skipped.
    assert note == "(the run did not finish in time: run queued; campaign_daily: scheduled)"
    assert api.calls == [("fail_run", "msads_report_producer")]


def test_processes_name_the_component_that_exited(demo: ModuleType, tmp_path: Path) -> None:
    procs = demo.Processes(marker="test", log_dir=tmp_path)
    procs.start("scheduler", [sys.executable, "-c", "raise SystemExit(3)"], {})
    procs.start("emulator", [sys.executable, "-c", "raise SystemExit(4)"], {})  # not an Airflow component
    for _, process in procs.started:
        process.wait(timeout=30)

    assert procs.exited() == [f"scheduler exited (3); see {tmp_path / 'scheduler'}.log"]
    assert isinstance(procs.started[0][1], subprocess.Popen)
