"""``make demo`` end to end: ``scripts/demo.py`` brings Airflow up and checks; its *Authorize with
Microsoft* button is clicked through; SIGTERM (as Ctrl-C) stops it all.

Runs in its own AIRFLOW_HOME and on a free port, so it neither touches the repository's
``.demo/`` nor collides with a demo that a developer has running.

The health check runs in-process (``airflow dags test``), which would pass even if no task that the
scheduler hands to LocalExecutor could run (as when the Airflow processes signed and checked task
tokens with different JWT secrets: "Invalid auth token"); so the ingestion example's run through
the scheduler and triggerer is asserted too, down to the CSV it writes, and so is the data-aware
pair: the producer's Asset event makes the scheduler start the consumer, which reads the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants_alive(env_marker: str) -> list[str]:
    """Command lines of live processes whose environment still names the demo's home."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if env_marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def _log_problems(log_dir: Path, per_log: int = 12) -> str:
    """The last warnings and errors of each Airflow component, for a failure message: CI keeps
    only the test's output, not the demo's log folder."""
    lines = []
    for log in sorted(log_dir.glob("*.log")):
        with log.open(encoding="utf-8", errors="replace") as handle:
            problems = [
                line.rstrip()[:300]
                for line in handle
                if re.search(r"\b(warning|error|critical)\b|Traceback|Error: ", line, re.I)
            ]
        if problems:
            lines += [f"--- {log.name} (last {min(per_log, len(problems))} of {len(problems)} warnings/errors)"]
            lines += problems[-per_log:]
    return "\n" + "\n".join(lines)


class RunningDemo:
    """``scripts/demo.py`` started as ``make demo`` starts it (no ``--check``): it prints its summary,
    says Airflow is running and waits; :meth:`stop` sends SIGTERM (as Ctrl-C) and returns its exit
    code and whole output. Its output is read by a thread, so nothing blocks on a full pipe."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self.up = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("Airflow is running."):
                self.up.set()
        self.up.set()  # exited: whoever waits sees it

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def wait_up(self, timeout: float) -> str:
        """The output up to "Airflow is running" (or the demo's end); fails when neither comes."""
        if not self.up.wait(timeout):
            self.stop()
            pytest.fail(f"The demo did not come up within {timeout:.0f} s:\n{self.out[-4000:]}")
        return self.out

    def stop(self) -> tuple[int, str]:
        """SIGTERM (the demo stops what it started), then its exit code and whole output."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        return self.process.returncode, self.out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDemo, Path, Path]]:
    """The demo, up (summary printed, Airflow running), in its own home; stopped at the end."""
    tmp_path = tmp_path_factory.mktemp("demo")
    home = tmp_path / "demo-home"
    user_home = tmp_path / "user-home"  # `~` of every process: the example's default output_dir
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "MSADS_", "_AIRFLOW"))}
    env["HOME"] = str(user_home)
    argv = [sys.executable, str(DEMO), "--home", str(home), "--port", str(_free_port())]
    running = RunningDemo(argv, env)
    try:
        running.wait_up(timeout=840)
        yield running, home, user_home
    finally:
        running.stop()


# Four Airflow components, a dags test and three scheduled runs: two to five minutes on a busy
# two-core machine, more than the suite's default limit (whichever test comes first starts it).
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_the_demos_authorize_button_reaches_authorized_for_either_redirect_uri(
    demo: tuple[RunningDemo, Path, Path], chromium: Any
) -> None:
    """The demo advertises ``/msads/``: its emulator's app registers both redirect URIs that page
    offers (the root and the callback), as a user registers them in step 1 of the guide, so
    *Authorize with Microsoft* ends in "Authorized" (not AADSTS50011) for either choice."""
    import httpx
    from playwright.sync_api import expect

    running, _, _ = demo
    out = running.out
    base_url = re.search(r"^Authorize: +(http://\S+)/msads/", out, re.M)
    password = re.search(r"^Login: +admin / (\S+)", out, re.M)
    assert base_url and password, out[-3000:]
    base = base_url.group(1)
    answer = httpx.post(
        f"{base}/auth/token", json={"username": "admin", "password": password.group(1)}, timeout=30, trust_env=False
    )
    assert answer.status_code in (200, 201), answer.text
    context = chromium.new_context()
    context.add_cookies([{"name": "_token", "value": answer.json()["access_token"], "url": base}])
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        for form in ("root", "callback"):
            page.goto(f"{base}/msads/")
            page.select_option("#conn_id", "msads_default")
            page.check(f"input[name='redirect'][value='{form}']")
            page.click("#authorize")
            expect(page.locator("h1")).to_have_text("Authorized; every credential is valid")
            assert "AADSTS" not in page.content()
    finally:
        context.close()


@pytest.mark.timeout(900)
def test_demo_runs_the_health_check_and_a_scheduled_run_and_leaves_nothing_running(
    demo: tuple[RunningDemo, Path, Path],
) -> None:
    running, home, user_home = demo
    returncode, out = running.stop()  # as Ctrl-C
    print(out)
    assert returncode == 0, out[-4000:] + _log_problems(home / "logs" / "demo")
    assert "Airflow is running. Press Ctrl-C to stop everything." in out
    assert "Health check:   SUCCESS" in out
    assert "msads_default: OK - credentials valid" in out
    assert "Login:          admin / " in out
    assert "none is left running" in out

    # The ingestion example ran through the scheduler: every task succeeded and the report is on disk.
    assert "Scheduled run:  SUCCESS" in out
    for task_id in ("credentials_guard", "fetch_accounts_info", "campaign_performance"):
        assert f"  {task_id}: success" in out
    reports = sorted((home / "msads_data" / "campaign_performance").glob("*.csv"))
    assert len(reports) == 1, reports
    header = reports[0].read_text(encoding="utf-8").splitlines()[0]
    assert header.replace('"', "").split(",") == [
        "TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend",
    ]  # fmt: skip
    assert f"{reports[0]}: " in out
    # The scheduled daily run asked for the days that have ended (yesterday plus the lookback),
    # never the day that had just begun: the file is named after its last day, and holds no later one.
    days = {line.split(",")[0].strip('"') for line in reports[0].read_text(encoding="utf-8").splitlines()[1:]}
    assert days and max(days) == reports[0].stem, (days, reports[0].name)
    assert list((home / "msads_data").glob("accounts_info_*.json"))
    # It was the only run of that DAG (the scheduler made none of its own when the demo unpaused
    # it, which would have written under ~), and the DAG is paused again.
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        runs = db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = 'msads_ingestion_example'").fetchall()
        paused = db.execute("SELECT is_paused FROM dag WHERE dag_id = 'msads_ingestion_example'").fetchone()
    assert len(runs) == 1 and runs[0][0].startswith("demo__") and runs[0][1] == "success", runs
    assert paused == (1,)

    # The data-aware pair ran through the scheduler too: the producer's run wrote the report and
    # recorded an Asset event, and the scheduler started the consumer for it (no one triggered it),
    # whose task read the very file the event names.
    assert "Asset pair:     SUCCESS" in out
    landed = sorted((home / "msads_data" / "campaign_daily").glob("*.csv"))
    assert len(landed) == 1, landed
    assert f"load read {landed[0]} from the event: " in out
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        runs_of = {
            dag_id: db.execute("SELECT run_type, state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
            for dag_id in ("msads_report_producer", "msads_report_consumer")
        }
        events = db.execute(
            "SELECT asset_event.extra FROM asset_event JOIN asset ON asset.id = asset_event.asset_id WHERE asset.uri LIKE ?",
            ("%/campaign_daily",),
        ).fetchall()
        assets = [uri for (uri,) in db.execute("SELECT uri FROM asset").fetchall()]
        paused_pair = db.execute(
            "SELECT dag_id, is_paused FROM dag WHERE dag_id IN ('msads_report_producer', 'msads_report_consumer')"
        ).fetchall()
    assert runs_of == {
        "msads_report_producer": [("manual", "success")],
        "msads_report_consumer": [("asset_triggered", "success")],
    }
    assert [json.loads(extra)["path"] for (extra,) in events] == [str(landed[0])]
    # The pair's Asset and the entities example's folder (Bulk files land in a sub-folder per run
    # below it); the ingestion example declares none (its folder is the deployment's, per run).
    assert sorted(assets) == [f"file://{home}/msads_data/campaign_daily", f"file://{home}/msads_data/entities"]
    # Named after the day it holds, as the event's dates say.
    days = {line.split(",")[0].strip('"') for line in landed[0].read_text(encoding="utf-8").splitlines()[1:]}
    assert days == {json.loads(events[0][0])["date_to"]} == {landed[0].stem}, (days, landed[0].name)
    assert sorted(paused_pair) == [("msads_report_consumer", 1), ("msads_report_producer", 1)]
    assert not (user_home / "msads_data").exists()

    # No credential of the emulator's connection is printed without --show-connection.
    assert "AIRFLOW_CONN_MSADS_DEFAULT" not in out
    assert '"password"' not in out and "refresh_token" not in out
    # Nothing the demo started survives it (its children carry AIRFLOW_HOME=<home>, unless retitled).
    assert _descendants_alive(f"AIRFLOW_HOME={home}") == []
    assert (home / "airflow.db").exists()
