"""A local Airflow with the Microsoft Advertising provider, in one command (``make demo``).

What it does, in order:

1. uses ``.demo/`` in the repository as AIRFLOW_HOME (SQLite metastore, logs, token store) and the
   repository's ``dags_example/`` as the DAGs folder;
2. starts the bundled Microsoft emulator on loopback (its app registers the two redirect URIs the
   UI's *Authorize with Microsoft* offers, root and callback), or, when the six credentials are given as
   environment variables (MSADS_CLIENT_ID, MSADS_CLIENT_SECRET, MSADS_DEVELOPER_TOKEN,
   MSADS_REFRESH_TOKEN, MSADS_CUSTOMER_ID, MSADS_ACCOUNT_ID; optional MSADS_ENVIRONMENT), uses
   Microsoft itself;
3. migrates the metastore and writes the connection ``msads_default`` into it, with every form
   field's key in its extra (``environment`` included), so that the UI's *Edit* dialog shows
   every field;
4. starts Airflow: api-server (the UI, with the connection **Test** button enabled), scheduler,
   dag-processor and triggerer;
5. runs the ``msads_token_health_check`` DAG once (``airflow dags test``);
6. with the emulator, runs ``msads_ingestion_example`` once through the scheduler (triggered
   through the REST API, its files under ``<home>/msads_data``), which ``dags test`` cannot
   prove: that task processes get valid tokens for the API server and deferred tasks resume;
7. with the emulator, runs ``msads_report_producer`` once through the scheduler and waits for the
   run of ``msads_report_consumer`` that its Asset event makes the scheduler start (data-aware
   scheduling, which ``dags test`` cannot show either), and checks that the consumer read the
   file the producer wrote;
8. prints the UI address, the login, the health-check result and the scheduled runs' outcomes,
   then runs until Ctrl-C or SIGTERM, and stops everything it started. ``--check`` stops by
   itself after step 8 (exit 1 when the health check or a scheduled run failed).

Every process it starts runs in its own process group (so Ctrl-C reaches only the demo, which
then stops them in order) and carries a marker in its environment. On the way out the groups get
SIGTERM, then SIGKILL after a grace period; then every process of the tree read before the first
signal, and any process still carrying the marker, is killed: task processes put themselves in
groups of their own. The demo then checks that none is left and says so.

No credential is printed. ``--show-connection`` prints the emulator's connection JSON (fake
credentials, valid only against that emulator process); it refuses to with real credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = ROOT / "dags_example"
HEALTH_DAG = "msads_token_health_check"
INGESTION_DAG = "msads_ingestion_example"
PRODUCER_DAG = "msads_report_producer"  # and its consumer: dags_example/msads_report_assets_example.py
CONSUMER_DAG = "msads_report_consumer"
ASSETS_EXAMPLE = "msads_report_assets_example.py"
CONN_ID = "msads_default"
DEFAULT_PORT = 8790  # not 8080 (the OAuth redirect URI's port), not 8793/8794 (Airflow's log servers)
MARKER = "MSADS_DEMO_RUN"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
CREDENTIAL_VARS = {
    "MSADS_CLIENT_ID": "login",
    "MSADS_CLIENT_SECRET": "password",
    "MSADS_DEVELOPER_TOKEN": "developer_token",
    "MSADS_REFRESH_TOKEN": "refresh_token",
    "MSADS_CUSTOMER_ID": "customer_id",
    "MSADS_ACCOUNT_ID": "account_id",
}
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

# Writes the connection into the metastore. Runs in a child (Airflow reads its configuration at
# import), and gets the connection through an environment variable: never on a command line.
UPSERT_CONNECTION = """
import json, os
from airflow.utils import db
from airflow.models.connection import Connection
from airflow.utils.session import create_session
from airflow_provider_msads.compat.versions import port_for_a_connection_without_one

db.initdb()  # what `airflow db migrate` does (standalone uses it too)
data = json.loads(os.environ.pop("MSADS_DEMO_CONNECTION"))
with create_session() as session:
    session.query(Connection).filter(Connection.conn_id == data["conn_id"]).delete()
    session.add(Connection(conn_id=data["conn_id"], conn_type=data["conn_type"], login=data["login"],
                           password=data["password"], extra=json.dumps(data["extra"]),
                           port=port_for_a_connection_without_one(),  # the Test button on 3.3.0-3.3.2
                           description="Written by scripts/demo.py"))
print("connection saved")
"""


# A process as (pid, start time in clock ticks): a pid that was reused is not the same process.
Pid = tuple[int, int]


class Stop(Exception):
    """Raised by the signal handler: Ctrl-C or SIGTERM."""


class DemoError(Exception):
    """A step failed; the message says which, and where its log is."""


def say(message: str = "") -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------ processes


@dataclass
class Processes:
    """Every process the demo starts, each the leader of its own process group."""

    marker: str
    log_dir: Path
    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    force: bool = False

    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, stdout: int | IO[bytes] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            process = subprocess.Popen(
                argv,
                stdout=log if stdout is None else stdout,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**env, MARKER: self.marker},
                start_new_session=True,  # own group: Ctrl-C reaches only us, we stop them in order
                cwd=ROOT,
            )
        finally:
            log.close()  # the child holds its own descriptor
        self.started.append((name, process))
        return process

    def exited(self) -> list[str]:
        """The Airflow components that have stopped, each with its exit code and log: a run they
        were to carry on would wait in vain."""
        return [
            f"{name} exited ({process.returncode}); see {self.log_dir / name}.log"
            for name, process in self.started
            if name in COMPONENTS and process.poll() is not None
        ]

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> int:
        """Run one command to completion (still stoppable by Ctrl-C); its output goes to its log."""
        process = self.start(name, argv, env)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                self.stop_group(process)
                raise DemoError(f"{name} did not finish within {timeout:.0f} s; see {self.log_dir / name}.log")
            time.sleep(0.2)
        return process.returncode

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    def stop_group(self, process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        self._signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        if process.poll() is None:
            self._signal_group(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def marked(self) -> set[Pid]:
        """Processes whose environment carries this run's marker (those that did not retitle
        themselves: ``setproctitle`` may overwrite the memory that /proc/PID/environ shows)."""
        needle = f"{MARKER}={self.marker}".encode()
        found = set()
        for pid in _pids():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    found.add(_identity(pid))
        return {pid for pid in found if pid is not None}

    def tree(self) -> set[Pid]:
        """Every live process the demo started, and all their descendants, wherever their group."""
        children: dict[int, list[int]] = {}
        for pid in _pids():
            info = _stat(pid)
            if info is not None:
                children.setdefault(info[0], []).append(pid)
        todo = [process.pid for _, process in self.started if process.poll() is None]
        found: set[Pid] = set()
        while todo:
            pid = todo.pop()
            identity = _identity(pid)
            if identity is not None and identity not in found:
                found.add(identity)
                todo += children.get(pid, [])
        return found | self.marked()

    def stop_all(self, grace: float = 15.0) -> set[Pid]:
        """Stop every group (newest first), then every descendant left; returns what still runs.

        Task processes put themselves in process groups of their own, so signalling our groups
        is not enough: the process tree is read before the first signal and swept at the end.
        """
        seen = self.tree()
        for _, process in reversed(self.started):
            if process.poll() is None:
                self._signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self.force:
            if all(process.poll() is not None for _, process in self.started) and not _alive(seen):
                break
            time.sleep(0.2)
        for _, process in self.started:
            if process.poll() is None:  # not reaped yet, so its group id cannot have been reused
                self._signal_group(process, signal.SIGKILL)
        for _ in range(3):  # descendants, including those in groups of their own
            left = _alive(seen) | self.tree()
            seen |= left
            for pid, _ in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for _, process in self.started:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            time.sleep(0.3)
        return _alive(seen) | self.marked()


def _pids() -> list[int]:
    return [
        int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and int(entry.name) != os.getpid()
    ]


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) from /proc/PID/stat, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[19]), fields[0]


def _identity(pid: int) -> Pid | None:
    info = _stat(pid)
    return None if info is None else (pid, info[1])


def _alive(processes: set[Pid]) -> set[Pid]:
    """Those still running (zombies count as gone: only their parent's wait is missing)."""
    alive = set()
    for pid, started in processes:
        info = _stat(pid)
        if info is not None and info[1] == started and info[2] != "Z":
            alive.add((pid, started))
    return alive


# ------------------------------------------------------------------------------------ settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def airflow_env(home: Path, port: int) -> dict[str, str]:
    """The environment of every Airflow process: everything lives in ``home``; the UI on loopback."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW_CONN_")}
    env.pop("_AIRFLOW_PROCESS_CONTEXT", None)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor keeps one worker process per slot
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            # The connection form's Test button (off by default since Airflow 2.7): it runs the
            # hook's test_connection() in the API server, against the demo's own emulator.
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # One secret for the tokens the scheduler gives tasks and the API server checks: without
            # it each process makes up its own and every scheduled task fails with "Invalid auth token".
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            # Internal log servers on free ports, so that another Airflow on this machine (8793,
            # 8794 by default) cannot break the demo.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "MSADS_TOKEN_STORE_DIR": str(home / "token-store"),
            # The ingestion example writes under this folder (a run may only name a sub-folder).
            "MSADS_EXAMPLE_DATA_DIR": str(home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("MSADS_TOKEN_STORE", None)  # inside Airflow: the Variable store, shared by all processes
    for name in CREDENTIAL_VARS:  # Airflow does not need them; the connection holds them
        env.pop(name, None)
    return env


def real_credentials() -> dict[str, Any] | None:
    """The connection for Microsoft itself when all six variables are set; None when none are."""
    given = {name: os.environ.get(name, "").strip() for name in CREDENTIAL_VARS}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise DemoError(
            "Set all six credential variables or none (none = the emulator). Missing: " + ", ".join(missing)
        )
    extra = {
        CREDENTIAL_VARS[name]: value
        for name, value in given.items()
        if CREDENTIAL_VARS[name] not in ("login", "password")
    }
    extra["environment"] = os.environ.get("MSADS_ENVIRONMENT", "production").strip() or "production"
    return {
        "conn_type": "msads",
        "login": given["MSADS_CLIENT_ID"],
        "password": given["MSADS_CLIENT_SECRET"],
        "extra": extra,
    }


# ------------------------------------------------------------------------------------- steps


def connection_payload(connection: dict[str, Any], conn_id: str = CONN_ID) -> str:
    """What ``UPSERT_CONNECTION`` reads: the connection, its extra holding every form field's key
    (Airflow 3.2+'s *Edit* dialog draws only those fields whose keys the saved extra holds)."""
    from airflow_provider_msads.cli.output import with_every_form_field

    return json.dumps({"conn_id": conn_id, **connection, "extra": with_every_form_field(connection["extra"])})


def ui_redirect_uris(base_url: str) -> list[str]:
    """The redirect URIs the UI's *Authorize with Microsoft* offers for this Airflow (its root and
    its callback), which the demo's app registers, as a user does in step 1 of the guide."""
    from airflow_provider_msads.ui.flow import callback_uri, root_redirect_uri

    return [root_redirect_uri(base_url), callback_uri(base_url)]


def start_emulator(
    procs: Processes, env: dict[str, str], redirect_uris: list[str], timeout: float = 60.0
) -> dict[str, Any]:
    """Start ``python -m airflow_provider_msads.testing``; returns its connection (fake credentials)."""
    registered = [arg for uri in redirect_uris for arg in ("--redirect-uri", uri)]
    process = procs.start(
        "emulator",
        [sys.executable, "-u", "-m", "airflow_provider_msads.testing", *registered],
        env,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        chunk = process.stdout.read() or b""
        buffer += chunk
        for line in buffer.decode(errors="replace").splitlines():
            if line.startswith("AIRFLOW_CONN_MSADS_DEFAULT='") and line.endswith("'"):
                connection = dict(json.loads(line.split("=", 1)[1][1:-1]))
                extra = connection["extra"]
                # Reports too go to the emulator (it serves Reporting v13 next to Customer Management).
                extra.setdefault("reporting_url", extra["token_url"].split("/common/")[0] + "/Reporting/v13")
                return connection
        time.sleep(0.1)
    raise DemoError(f"The emulator did not start; see {procs.log_dir / 'emulator.log'}")


def wait_for_api(base_url: str, procs: Processes, api: subprocess.Popen[bytes], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise DemoError(f"The API server exited ({api.returncode}); see {procs.log_dir / 'api-server.log'}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=3, trust_env=False).json()
            if health.get("metadatabase", {}).get("status") == "healthy":
                return
        time.sleep(0.5)
    raise DemoError(f"The API server was not healthy within {timeout:.0f} s; see {procs.log_dir / 'api-server.log'}")


def admin_password(home: Path, timeout: float = 30.0) -> str | None:
    """The password that the simple auth manager generated for ``admin`` (written at API start)."""
    path = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            password = json.loads(path.read_text()).get("admin")
            if password:
                return str(password)
        time.sleep(0.5)
    return None


@dataclass
class HealthResult:
    state: str  # success, failed, skipped
    lines: list[str] = field(default_factory=list)


class AirflowApi:
    """The few REST calls the demo makes, logged in as ``admin`` (Airflow 3 public API v2)."""

    def __init__(self, base_url: str, password: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url, timeout=15, trust_env=False)
        token = self.client.post("/auth/token", json={"username": "admin", "password": password})
        token.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def close(self) -> None:
        self.client.close()

    def newest_run(
        self, dag_id: str, started_after: str | None = None, run_type: str | None = None
    ) -> dict[str, Any] | None:
        """The newest run (by start, or by creation when a run type is asked for), or None."""
        params: dict[str, Any] = {"limit": 1, "order_by": "-start_date"}
        if started_after is not None:
            params["start_date_gte"] = started_after
        if run_type is not None:
            params.update(run_type=run_type, order_by="-id")
        got = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns", params=params)
        got.raise_for_status()
        runs = got.json()["dag_runs"]
        return dict(runs[0]) if runs else None

    def xcom(self, run: dict[str, Any], task_id: str, key: str = "return_value") -> Any:
        got = self.client.get(
            f"{self._run_path(run)}/taskInstances/{task_id}/xcomEntries/{key}", params={"deserialize": True}
        )
        got.raise_for_status()
        return got.json()["value"]

    def _run_path(self, run: dict[str, Any]) -> str:
        return f"/api/v2/dags/{run['dag_id']}/dagRuns/{quote(run['dag_run_id'], safe='')}"

    def task_states(self, run: dict[str, Any]) -> dict[str, str]:
        return {f"{ti['task_id']}[{ti['map_index']}]": str(ti["state"]) for ti in self.task_instances(run)}

    def fail_run(self, run: dict[str, Any]) -> None:
        self.client.patch(self._run_path(run), json={"state": "failed"}).raise_for_status()

    def reports(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        """The credential reports that the mapped ``validate`` tasks pushed (also when they failed)."""
        found = []
        for map_index in range(100):
            got = self.client.get(
                f"{self._run_path(run)}/taskInstances/validate/xcomEntries/report",
                params={"map_index": map_index, "deserialize": True},
            )
            if got.status_code == 404:
                break
            got.raise_for_status()
            found.append(dict(got.json()["value"]))
        return found

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as the metastore knows it, or None while the dag-processor has not parsed it."""
        got = self.client.get(f"/api/v2/dags/{dag_id}")
        if got.status_code == 404:
            return None
        got.raise_for_status()
        return dict(got.json())

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": paused}).raise_for_status()

    def trigger(self, dag_id: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """A new run of ``dag_id``; None when a run with that logical date exists already."""
        got = self.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if got.status_code == 409:
            return None
        got.raise_for_status()
        return dict(got.json())

    def refresh(self, run: dict[str, Any]) -> dict[str, Any]:
        got = self.client.get(self._run_path(run))
        got.raise_for_status()
        return dict(got.json())

    def task_instances(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        got = self.client.get(f"{self._run_path(run)}/taskInstances")
        got.raise_for_status()
        return [dict(ti) for ti in got.json()["task_instances"]]

    def failure_reason(self, run: dict[str, Any], ti: dict[str, Any]) -> str | None:
        """The last error a task logged (Airflow masks secrets in task logs), or None."""
        got = self.client.get(
            f"{self._run_path(run)}/taskInstances/{ti['task_id']}/logs/{max(int(ti.get('try_number') or 1), 1)}",
            params={"map_index": ti["map_index"], "full_content": True},
            headers={"Accept": "application/json"},
        )
        if got.status_code != 200:
            return None
        errors = []
        for entry in got.json().get("content") or []:
            if not isinstance(entry, dict) or str(entry.get("level", "")).lower() not in ("error", "critical"):
                continue
            text = str(entry.get("event") or "").strip()
            # "Task failed with exception" carries the exception itself in error_detail.
            raised = [d for d in entry.get("error_detail") or [] if isinstance(d, dict) and not d.get("is_cause")]
            if raised:
                text = f"{raised[-1].get('exc_type')}: {raised[-1].get('exc_value')}"
            errors.append(text)
        reason = next((text for text in reversed(errors) if text), None)
        return None if reason is None else reason.strip().splitlines()[0][:300]


def run_health_check(procs: Processes, env: dict[str, str], api: AirflowApi, timeout: float = 600) -> HealthResult:
    """``airflow dags test`` of the health check, watched through the API.

    A transient failure (Microsoft unreachable, throttling) puts ``validate`` into up_for_retry,
    and ``dags test`` would then wait out the DAG's 10-minute retry delay: the demo reports it at
    once instead, and marks that run failed.
    """
    import httpx

    started_after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    process = procs.start("health-check", [sys.executable, "-m", "airflow", "dags", "test", HEALTH_DAG], env)
    deadline = time.monotonic() + timeout
    run: dict[str, Any] | None = None
    note = ""
    while process.poll() is None:
        if time.monotonic() > deadline:
            note = f"(no result within {timeout:.0f} s)"
            break
        time.sleep(2)
        with contextlib.suppress(httpx.HTTPError, KeyError):
            run = run or api.newest_run(HEALTH_DAG, started_after)
            if run is not None and "up_for_retry" in api.task_states(run).values():
                note = "(a transient error: Airflow would retry in 10 minutes; the demo does not wait)"
                break
    if process.poll() is None:
        procs.stop_group(process)
        if run is not None:
            with contextlib.suppress(httpx.HTTPError):
                api.fail_run(run)
    try:
        run = api.newest_run(HEALTH_DAG, started_after)
        state = "failed" if note or run is None else str(run["state"])
        reports = api.reports(run) if run is not None else []
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return HealthResult("failed", [f"(could not read the result through the API: {type(exc).__name__})"])
    lines = [note] if note else []
    for report in reports:
        lines.append(str(report["summary"]))
        lines += [f"    {v['label']}: {v['status'].upper()} - {v['message']}" for v in report["verdicts"].values()]
    if not reports:
        lines.append("(the check stopped before validating a connection; see the health-check log)")
    return HealthResult(state, lines)


def executor_errors(log: Path, offset: int) -> list[str]:
    """The exceptions that ended tracebacks in ``log`` after ``offset`` (the last three, distinct).

    A task process that dies before its task starts (for example when the API server refuses its
    token) leaves no error in the task's own log; LocalExecutor logs the traceback in the
    scheduler's log.
    """
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    found: list[str] = []
    in_traceback = False
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and re.match(r"[A-Za-z_][\w.]*: \S", line):
            in_traceback = False
            if line not in found:
                found.append(line[:300])
    return found[-3:]


def wait_for_dag(api: AirflowApi, dag_id: str, deadline: float, *, scheduled: bool = True) -> dict[str, Any] | None:
    """The DAG once the dag-processor has parsed it (and, for a time-scheduled DAG, planned its
    next run), or None at the deadline."""
    import httpx

    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            dag = api.dag(dag_id)
            if dag is not None and (not scheduled or dag.get("next_dagrun_logical_date") is not None):
                return dag
        if time.monotonic() > deadline:
            return None
        time.sleep(1)


def trigger_as_scheduled(api: AirflowApi, dag: dict[str, Any], conf: dict[str, Any]) -> dict[str, Any] | None:
    """A run of ``dag`` with the logical date (and data interval) of its next scheduled run, so
    that unpausing the DAG for it makes the scheduler create no second run; None if refused."""
    body: dict[str, Any] = {
        "dag_run_id": f"demo__{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}_{uuid.uuid4().hex[:6]}",
        "logical_date": dag["next_dagrun_logical_date"],
        "conf": conf,
        "note": "Triggered by scripts/demo.py; run by the scheduler.",
    }
    if dag.get("next_dagrun_data_interval_start") and dag.get("next_dagrun_data_interval_end"):
        body["data_interval_start"] = dag["next_dagrun_data_interval_start"]
        body["data_interval_end"] = dag["next_dagrun_data_interval_end"]
    run = api.trigger(dag["dag_id"], body)
    if run is None:  # that logical date has a run already (an earlier demo today), which also
        # keeps the scheduler from making one: this run takes the current time instead.
        body.pop("data_interval_start", None)
        body.pop("data_interval_end", None)
        body["logical_date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        run = api.trigger(dag["dag_id"], body)
    return run


def follow(api: AirflowApi, run: dict[str, Any], deadline: float, procs: Processes) -> tuple[dict[str, Any], str]:
    """Wait for ``run`` to end; a task up for retry, or a component that exited, ends the wait at
    once (the next try would be minutes away; nobody would carry the run on) and the run is
    marked failed. Returns the run and why it was cut short, if so."""
    note = ""
    while True:
        run = api.refresh(run)
        if run["state"] in ("success", "failed"):
            break
        if dead := procs.exited():
            note = f"({'; '.join(dead)})"
            break
        if "up_for_retry" in {ti["state"] for ti in api.task_instances(run)}:
            note = "(a task failed and would be retried in minutes; the demo does not wait)"
            break
        if time.monotonic() > deadline:
            # The states before the run is failed (failing it skips every task not yet started).
            states = "; ".join(f"{ti['task_id']}: {ti['state']}" for ti in api.task_instances(run))
            note = f"(the run did not finish in time: run {run['state']}; {states or 'no task instances'})"
            break
        time.sleep(2)
    if note:
        api.fail_run(run)
    return run, note


def describe(
    api: AirflowApi, run: dict[str, Any], note: str, scheduler_log: Path, log_offset: int
) -> tuple[str, list[str]]:
    """The run's outcome and one line per task, with the error of each failed task."""
    import httpx

    state = "failed" if note else str(run["state"])
    lines = [f"run {run['dag_run_id']} of {run['dag_id']}"] + ([note] if note else [])
    unexplained = False
    for ti in api.task_instances(run):
        line = f"{ti['task_id']}: {ti['state']}"
        if ti["state"] in ("failed", "up_for_retry"):
            reason = None
            with contextlib.suppress(httpx.HTTPError, ValueError):
                reason = api.failure_reason(run, ti)
            unexplained = unexplained or reason is None
            line += f" - {reason or 'no error in its task log'}"
        lines.append(line)
    if unexplained or note:
        errors = executor_errors(scheduler_log, log_offset)
        lines += [f"the executor logged: {error}  ({scheduler_log})" for error in errors]
    return state, lines


@contextlib.contextmanager
def unpaused(api: AirflowApi, dags: list[dict[str, Any]]) -> Iterator[None]:
    """The DAGs unpaused for the demo's runs, and paused again after (if they were)."""
    import httpx

    paused = [dag["dag_id"] for dag in dags if dag["is_paused"]]
    try:
        for dag_id in paused:
            api.set_paused(dag_id, False)
        yield
    finally:
        for dag_id in paused:
            with contextlib.suppress(httpx.HTTPError):
                api.set_paused(dag_id, True)


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def run_scheduled(
    api: AirflowApi, procs: Processes, home: Path, scheduler_log: Path, timeout: float = 300
) -> HealthResult:
    """One run of the ingestion example that the scheduler runs, watched through the API.

    ``airflow dags test`` runs a DAG inside its own process; this run goes the way every scheduled
    run goes: the scheduler queues its tasks, LocalExecutor runs each in a task process that talks
    to the API server with a token the scheduler signed, and the deferrable tasks wait in the
    triggerer. The run takes the logical date (and data interval) of the DAG's next scheduled run,
    so that unpausing the DAG for it makes the scheduler create no second run (one that would write
    to the param's default folder, ``~/msads_data``); the DAG gets its paused state back afterwards.
    Its files go to ``<home>/msads_data``. A task up for retry is reported at once, as in the
    health check (the report task would wait 5 minutes before its next try).
    """
    import httpx

    deadline = time.monotonic() + timeout
    dag = wait_for_dag(api, INGESTION_DAG, deadline)
    if dag is None:
        return HealthResult("failed", [f"(Airflow has not loaded {INGESTION_DAG}; see dag-processor.log)"])
    log_offset = log_size(scheduler_log)
    out_dir = home / "msads_data"
    triggered_at = time.time()
    try:
        run = trigger_as_scheduled(api, dag, {"output_dir": out_dir.name})
        if run is None:
            return HealthResult("failed", ["(Airflow refused to create the run: it exists already)"])
        with unpaused(api, [dag]):
            run, note = follow(api, run, deadline, procs)
        state, lines = describe(api, run, note, scheduler_log, log_offset)
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return HealthResult("failed", [f"(could not follow the run through the API: {type(exc).__name__})"])
    if state == "success":
        # Named after the last day it holds: the day before the run (the example's default dates).
        last_day = datetime.date.fromisoformat(str(run["data_interval_end"])[:10]) - datetime.timedelta(days=1)
        csv = out_dir / "campaign_performance" / f"{last_day}.csv"
        try:
            if csv.stat().st_mtime < triggered_at - 1:  # an earlier demo's file
                raise FileNotFoundError(csv)
            with csv.open(encoding="utf-8") as handle:
                header = handle.readline().strip()
                rows = sum(1 for _ in handle)
            lines.append(f"{csv}: {rows} rows of {header}")
        except OSError:
            state = "failed"
            lines.append(f"the run succeeded but did not write {csv}")
    return HealthResult(state, lines)


def run_asset_pair(
    api: AirflowApi, procs: Processes, home: Path, scheduler_log: Path, timeout: float = 300
) -> HealthResult:
    """The data-aware pair through the scheduler: a run of the producer writes the report and
    records an Asset event; the scheduler then starts the consumer (run type ``asset_triggered``),
    whose task reads the file from the event's extra.

    Both DAGs are unpaused for it (the scheduler queues Asset-triggered runs only for unpaused
    consumers) and paused again after. The producer's run takes its next scheduled logical date,
    as the ingestion run does. Checked: the consumer's run succeeded and read the very file the
    producer wrote, with as many lines as the event's ``rows``.
    """
    import httpx

    deadline = time.monotonic() + timeout
    producer = wait_for_dag(api, PRODUCER_DAG, deadline)
    consumer = wait_for_dag(api, CONSUMER_DAG, deadline, scheduled=False)
    if producer is None or consumer is None:
        return HealthResult("failed", ["(Airflow has not loaded the Asset example; see dag-processor.log)"])
    log_offset = log_size(scheduler_log)
    lines: list[str] = []
    try:
        earlier = api.newest_run(CONSUMER_DAG, run_type="asset_triggered")
        # The order matters. The run exists before its DAG is unpaused: an unpaused DAG whose next
        # scheduled run is due makes the scheduler create that run, and a trigger for the same
        # logical date in the same second makes Airflow 3.3's scheduler exit (its insert fails
        # the dag_run unique key and the session is not rolled back; seen on CI). The consumer is
        # unpaused first: Airflow queues Asset-triggered runs only for unpaused consumers.
        with unpaused(api, [consumer]):
            run = trigger_as_scheduled(api, producer, {})
            if run is None:
                return HealthResult("failed", ["(Airflow refused to create the producer's run)"])
            with unpaused(api, [producer]):
                run, note = follow(api, run, deadline, procs)
            state, lines = describe(api, run, note, scheduler_log, log_offset)
            if state != "success":
                return HealthResult(state, lines)
            written = api.xcom(run, "campaign_daily")
            lines.append(f"{written['path']}: {written['rows']} rows; Asset event recorded")
            loader = None
            while loader is None or loader["dag_run_id"] == (earlier or {}).get("dag_run_id"):
                if time.monotonic() > deadline or procs.exited():
                    why = "; ".join(procs.exited()) or f"the scheduler started no run of {CONSUMER_DAG}"
                    return HealthResult("failed", [*lines, f"({why})"])
                time.sleep(1)
                loader = api.newest_run(CONSUMER_DAG, run_type="asset_triggered")
            loader, note = follow(api, loader, deadline, procs)
        state, more = describe(api, loader, note, scheduler_log, log_offset)
        lines += more
        if state == "success":
            landed = api.xcom(loader, "load")
            read = [(item["path"], item["lines"]) for item in landed]
            if read != [(written["path"], written["rows"])]:
                state = "failed"
                lines.append(f"the consumer read {read}, not {written['path']} with {written['rows']} rows")
            else:
                lines.append(f"load read {written['path']} from the event: {written['rows']} rows")
    except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
        return HealthResult("failed", [*lines, f"(could not follow the runs through the API: {type(exc).__name__})"])
    return HealthResult(state, lines)


# --------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="do everything, print, then stop (exit 1 on failure)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Airflow UI port (default {DEFAULT_PORT})")
    parser.add_argument("--home", type=Path, default=ROOT / ".demo", help="AIRFLOW_HOME (default .demo/)")
    parser.add_argument(
        "--show-connection",
        action="store_true",
        help="print the emulator's AIRFLOW_CONN_MSADS_DEFAULT line (fake credentials; emulator only)",
    )
    return parser.parse_args(argv)


def install_signal_handlers() -> None:
    """Ctrl-C and SIGTERM end the demo the same way: through ``finally``, which stops everything."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    started = time.monotonic()
    print(f"- {title} ...", end="", flush=True)
    try:
        yield
    except BaseException:
        say(" failed")
        raise
    say(f" done ({time.monotonic() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home: Path = args.home.resolve()
    log_dir = home / "logs" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = Processes(marker=uuid.uuid4().hex, log_dir=log_dir)
    install_signal_handlers()
    ok = False
    try:
        ok = run_demo(args, home, procs)
        if not args.check:
            say("\nAirflow is running. Press Ctrl-C to stop everything.")
            watch(procs)
    except Stop as why:
        say(f"\nStopping ({why}) ...")
    except DemoError as err:
        say(f"\nDEMO FAILED: {err}")
    finally:
        # While stopping, another Ctrl-C / SIGTERM skips the grace period instead of interrupting.
        signal.signal(signal.SIGINT, lambda *_: setattr(procs, "force", True))
        signal.signal(signal.SIGTERM, lambda *_: setattr(procs, "force", True))
        count = len(procs.started)
        leftovers = procs.stop_all()
        if leftovers:
            say(f"WARNING: processes still running after the stop: {sorted(pid for pid, _ in leftovers)}")
            ok = False
        elif count:
            say(f"Stopped the {count} processes the demo started, and their children; none is left running.")
    return 0 if ok else 1


def watch(procs: Processes) -> None:
    """Wait for Ctrl-C / SIGTERM; say so once if a component dies meanwhile."""
    reported: set[str] = set()
    while True:
        for name, process in procs.started:
            if name in COMPONENTS and process.poll() is not None and name not in reported:
                reported.add(name)
                say(f"WARNING: {name} exited ({process.returncode}); see {procs.log_dir / name}.log")
        time.sleep(1)


def scheduled_step(
    example: str, dag_id: str, emulated: bool, title: str, run: Callable[[], HealthResult]
) -> HealthResult:
    """One of the scheduled runs: skipped when its example file is missing, or with real
    credentials (the demo requests no report of a user's account)."""
    if not (DAGS_FOLDER / example).exists():
        return HealthResult("skipped", [f"dags_example/{example} is missing"])
    if not emulated:
        return HealthResult("skipped", [f"the demo requests no report of your account; trigger {dag_id} in the UI"])
    with step(title):
        return run()


def run_demo(args: argparse.Namespace, home: Path, procs: Processes) -> bool:
    """Steps 1-8 of the module docstring; True when Airflow is up, the health check passed and the
    scheduled runs succeeded (or were skipped: real credentials)."""
    connection = real_credentials()
    if not port_is_free(args.port):
        raise DemoError(f"Port {args.port} is in use (another demo or Airflow?); pick another with --port.")
    env = airflow_env(home, args.port)
    base_url = f"http://127.0.0.1:{args.port}"
    airflow = [sys.executable, "-m", "airflow"]
    say(f"Airflow home: {home}  (logs: {procs.log_dir})")

    target = "Microsoft (credentials from MSADS_* variables)"
    emulated = connection is None
    if connection is None:
        with step("Starting the Microsoft emulator on 127.0.0.1"):
            connection = start_emulator(procs, env, ui_redirect_uris(base_url))
        target = f"the emulator at {connection['extra']['token_url'].split('/common/')[0]}"
        if args.show_connection:
            say("  # FAKE credentials, valid only against this emulator process:")
            say(f"  AIRFLOW_CONN_MSADS_DEFAULT='{json.dumps(connection)}'")
    elif args.show_connection:
        say("  (--show-connection prints the emulator's fake connection only, never real credentials)")

    with step(f"Migrating the metastore and saving connection {CONN_ID!r} (-> {target})"):
        payload = connection_payload(connection)
        code = procs.run(
            "setup", [sys.executable, "-c", UPSERT_CONNECTION], {**env, "MSADS_DEMO_CONNECTION": payload}, 600
        )
        if code != 0:
            raise DemoError(f"Setting up the metastore failed; see {procs.log_dir / 'setup.log'}")

    with step("Starting Airflow: " + ", ".join(COMPONENTS)):
        api_server = procs.start(
            "api-server",
            [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"],
            env,
        )
        for name in COMPONENTS[1:]:
            procs.start(name, [*airflow, name], env)

    with step(f"Waiting for the Airflow UI at {base_url}"):
        wait_for_api(base_url, procs, api_server, timeout=300)
        password = admin_password(home)
    if password is None:
        raise DemoError(f"No admin password was generated; see {procs.log_dir / 'api-server.log'}")

    try:
        api = AirflowApi(base_url, password)
    except Exception as exc:  # httpx errors, or an unexpected answer
        raise DemoError(f"Could not log in to the Airflow API as admin ({type(exc).__name__})") from exc
    try:
        health_dag = DAGS_FOLDER / f"{HEALTH_DAG}.py"
        if health_dag.exists():
            with step(f"Running {HEALTH_DAG} once (airflow dags test)"):
                result = run_health_check(procs, env, api)
        else:
            say(f"- SKIPPED the health check: {health_dag.relative_to(ROOT)} does not exist yet.")
            result = HealthResult("skipped", [f"{health_dag.relative_to(ROOT)} is missing"])
        scheduler_log = procs.log_dir / "scheduler.log"
        scheduled = scheduled_step(
            f"{INGESTION_DAG}.py",
            INGESTION_DAG,
            emulated,
            f"Running {INGESTION_DAG} once through the scheduler",
            lambda: run_scheduled(api, procs, home, scheduler_log),
        )
        pair = scheduled_step(
            ASSETS_EXAMPLE,
            PRODUCER_DAG,
            emulated,
            f"Running {PRODUCER_DAG}, then the {CONSUMER_DAG} run its Asset event starts",
            lambda: run_asset_pair(api, procs, home, scheduler_log),
        )
    finally:
        api.close()

    say("")
    say("=" * 78)
    say(f"Airflow UI:     {base_url}   (also http://localhost:{args.port})")
    say(f"Authorize:      {base_url}/msads/   (Authorize with Microsoft; token health: {base_url}/msads/health)")
    say(f"Login:          admin / {password}")
    say(f"                (generated by Airflow, kept in {home / 'simple_auth_manager_passwords.json.generated'})")
    say(f"Connection:     {CONN_ID} -> {target}")
    say(f"Health check:   {result.state.upper()}  (log: {procs.log_dir / 'health-check.log'})")
    for line in result.lines:
        say(f"  {line}")
    say(f"Scheduled run:  {scheduled.state.upper()}  (scheduler, LocalExecutor, triggerer)")
    for line in scheduled.lines:
        say(f"  {line}")
    say(f"Asset pair:     {pair.state.upper()}  (producer -> Asset event -> consumer, by the scheduler)")
    for line in pair.lines:
        say(f"  {line}")
    say("DAGs:           dags_example/ (paused; unpause them in the UI to run on schedule)")
    dead = procs.exited()
    for line in dead:
        say(f"WARNING:        {line}")
    say("=" * 78)
    return not dead and result.state == "success" and all(r.state in ("success", "skipped") for r in (scheduled, pair))


if __name__ == "__main__":
    sys.exit(main())
