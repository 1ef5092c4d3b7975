"""A real CeleryExecutor deployment sharing one token per connection (``make test-celery``).

Started here, on loopback and free ports, and removed afterwards: Debian's ``redis-server`` as the
Celery broker, a throwaway PostgreSQL (Debian's package) as the metastore and result backend,
Airflow's api-server, scheduler, dag-processor and triggerer, and TWO ``airflow celery worker``
processes that are two hosts as far as the provider can tell: each has its own ``TMPDIR`` (where
the per-machine refresh lock lives by default), ``MSADS_TOKEN_STORE_DIR``, ``XDG_RUNTIME_DIR``
(0700) and host name. Five connections point at five emulators in strict rotation (a refresh token
dies once its successor is used), so a lost rotation shows as a failed task.

It runs ``msads_celery_fanout`` (100 mapped tasks over the 5 connections, each getting a token
through the hook and calling the API) and then the example health-check DAG over the same five
connections (a forced refresh each), and shows: every task succeeded; at most one token request
per connection per worker host during the fan-out (the figures are printed); each connection's
Variable holds a refresh token the emulator still accepts; no secret in any log.

Every wait is bounded and says what it waited for; on failure the component logs are printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.pg_metastore import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONNECTIONS = 5
WORKERS = 2
WORKER_CONCURRENCY = 4
FANOUT_DAG = "msads_celery_fanout"
HEALTH_DAG = "msads_token_health_check"
MARKER = "MSADS_DEPLOY_RUN"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float, on_fail: Callable[[], str] = lambda: "") -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    pytest.fail(f"Gave up after {timeout:.0f} s waiting for {what} (last: {last!r}).\n{on_fail()}", pytrace=False)


class Deployment:
    """Every process of the deployment, each in its own process group, all logging to ``logs``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.logs = base / "component-logs"
        self.logs.mkdir(parents=True)
        self.marker = uuid.uuid4().hex
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**env, MARKER: self.marker},
                start_new_session=True,
            )
        self.processes.append((name, process))
        return process

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 300) -> str:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        (self.logs / f"{name}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            pytest.fail(f"{name} exited {result.returncode}:\n{(result.stdout + result.stderr)[-3000:]}", pytrace=False)
        return result.stdout

    def dead(self) -> list[str]:
        return [f"{name} (exit {p.returncode})" for name, p in self.processes if p.poll() is not None]

    def tails(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(out)

    def _marked(self) -> list[int]:
        needle = f"{MARKER}={self.marker}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if needle in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
        return found

    def stop(self) -> list[int]:
        """SIGTERM every group (newest first), SIGKILL what is left, then any process carrying the
        marker (task processes may sit in groups of their own); returns pids still alive."""
        for _, process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(p.poll() is None for _, p in self.processes):
            time.sleep(0.3)
        for _, process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
        for _ in range(3):
            for pid in self._marked():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for _, process in self.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            time.sleep(0.3)
        return [pid for pid in self._marked() if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextlib.contextmanager
def _redis(base: Path) -> Iterator[int]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("make test-celery needs Debian's redis-server: apt-get install -y redis-server", pytrace=False)
    port = _free_port()
    folder = base / "redis"
    folder.mkdir()
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )

    def pong() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    try:
        _wait("redis-server to answer PING", pong, 30, lambda: (folder / "redis.log").read_text(errors="replace"))
        yield port
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        log.close()


def _emulators(count: int) -> Iterator[Any]:
    from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

    for _ in range(count):
        yield MicrosoftAdsEmulator(strict_rotation=True).start()


def _base_env(home: Path, sql: str, broker: str, api_port: int, fernet: str, conn_ids: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "MSADS_", "PYTEST"))}
    dags = home / "dags"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deploy_host.hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sql,
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the runs this test triggers
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "MSADS_DEPLOY_CONN_IDS": ",".join(conn_ids),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")])),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _worker_env(base_env: dict[str, str], base: Path, n: int) -> dict[str, str]:
    """A second host, as far as the provider can tell: its own temp, state and runtime folders."""
    host = base / f"host{n}"
    folders = {name: host / name for name in ("tmp", "token-store", "run")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    folders["run"].chmod(0o700)
    return {
        **base_env,
        "TMPDIR": str(folders["tmp"]),
        "MSADS_TOKEN_STORE_DIR": str(folders["token-store"]),
        "XDG_RUNTIME_DIR": str(folders["run"]),
        "MSADS_DEPLOY_HOST": f"worker{n}",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
    }


SAVE_CONNECTIONS = """
import json, os
from airflow.models.connection import Connection
from airflow.utils.session import create_session
with create_session() as session:
    for data in json.loads(os.environ.pop("MSADS_DEPLOY_CONNECTIONS")):
        session.add(Connection(conn_id=data.pop("conn_id"), conn_type=data["conn_type"], login=data["login"],
                               password=data["password"], extra=json.dumps(data["extra"])))
print("saved")
"""


def _sql(pg: PostgresServer, query: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg2

    db = psycopg2.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="airflow")
    try:
        with db.cursor() as cursor:
            cursor.execute(query, args)
            return list(cursor.fetchall())
    finally:
        db.close()


def _run_state(pg: PostgresServer, dag_id: str, run_id: str) -> str | None:
    rows = _sql(pg, "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id)
    return str(rows[0][0]) if rows else None


def _ti_states(pg: PostgresServer, dag_id: str, run_id: str) -> list[tuple[str, int, str, str]]:
    rows = _sql(
        pg,
        "SELECT task_id, map_index, coalesce(state, 'none'), coalesce(hostname, '') FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
        dag_id,
        run_id,
    )
    return [(str(a), int(b), str(c), str(d)) for a, b, c, d in rows]


def _wait_for_run(pg: PostgresServer, deployment: Deployment, dag_id: str, run_id: str, timeout: float) -> None:
    def finished() -> str | None:
        dead = deployment.dead()
        if dead:
            pytest.fail(f"Components exited during {dag_id}: {dead}\n{deployment.tails()}", pytrace=False)
        state = _run_state(pg, dag_id, run_id)
        return state if state in ("success", "failed") else None

    def report() -> str:
        states = Counter(state for _, _, state, _ in _ti_states(pg, dag_id, run_id))
        return f"task states: {dict(states)}\n{deployment.tails()}"

    state = _wait(f"DAG run {dag_id}/{run_id} to finish", finished, timeout, report)
    if state != "success":
        failed = [f"{t}[{m}]" for t, m, s, _ in _ti_states(pg, dag_id, run_id) if s != "success"]
        logs = ""
        for task_id, map_index, state, _ in _ti_states(pg, dag_id, run_id):
            if state == "success" or len(logs) > 20_000:
                continue
            folder = deployment.base / "home" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
            for path in sorted(folder.glob(f"map_index={map_index}/*.log") if map_index >= 0 else folder.glob("*.log")):
                lines = path.read_text(errors="replace").splitlines()
                errors = [line for line in lines if '"level":"error"' in line or '"level":"warning"' in line]
                logs += f"--- {path} (warnings and errors, then the last lines) ---\n"
                logs += "\n".join([*errors[:10], *lines[-8:]])[-8000:] + "\n"
        pytest.fail(
            f"{dag_id}/{run_id} ended {state}; not successful: {failed[:20]}\n{logs}\n{report()}", pytrace=False
        )


def test_celery_deployment_shares_one_token_per_connection(tmp_path_factory: pytest.TempPathFactory) -> None:
    from cryptography.fernet import Fernet

    from airflow_provider_msads.cli.output import with_every_form_field
    from airflow_provider_msads.testing.emulator import DEFAULT_SCOPE
    from airflow_provider_msads.token_store import TokenCipher, storage_key

    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="msads-celery-"))
    home = base / "home"
    (home / "dags").mkdir(parents=True)
    shutil.copy(HERE / "dags" / f"{FANOUT_DAG}.py", home / "dags")
    shutil.copy(ROOT / "dags_example" / f"{HEALTH_DAG}.py", home / "dags")
    conn_ids = [f"msads_deploy_{n}" for n in range(1, CONNECTIONS + 1)]
    fernet = Fernet.generate_key().decode()
    airflow = [sys.executable, "-m", "airflow"]
    pg = PostgresServer()
    deployment = Deployment(base)
    emulators: list[Any] = []
    figures: dict[str, Any] = {}
    try:
        sql = pg.start()
        emulators = list(_emulators(CONNECTIONS))
        with _redis(base) as redis_port:
            api_port = _free_port()
            env = _base_env(home, sql, f"redis://127.0.0.1:{redis_port}/0", api_port, fernet, conn_ids)
            t = time.monotonic()
            deployment.run("db-migrate", [*airflow, "db", "migrate"], env, timeout=600)
            figures["db migrate (s)"] = round(time.monotonic() - t)
            documents = []
            for conn_id, emulator in zip(conn_ids, emulators):
                document = emulator.connection_dict()
                document["extra"] = with_every_form_field(document["extra"])  # type: ignore[arg-type]
                documents.append({"conn_id": conn_id, **document})
            deployment.run(
                "save-connections",
                [sys.executable, "-c", SAVE_CONNECTIONS],
                {**env, "MSADS_DEPLOY_CONNECTIONS": json.dumps(documents)},
            )
            connection_tokens = {d["conn_id"]: d["extra"]["refresh_token"] for d in documents}

            t = time.monotonic()
            deployment.start(
                "api-server",
                [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"],
                env,
            )
            for name in ("scheduler", "dag-processor", "triggerer"):
                deployment.start(name, [*airflow, name], env)
            for n in range(1, WORKERS + 1):
                deployment.start(
                    f"worker{n}",
                    [*airflow, "celery", "worker", "--concurrency", str(WORKER_CONCURRENCY),
                     "--celery-hostname", f"worker{n}@%h", "--without-mingle", "--without-gossip"],
                    _worker_env(env, base, n),
                )  # fmt: skip

            def api_healthy() -> bool:
                if deployment.dead():
                    pytest.fail(f"Components exited at start: {deployment.dead()}\n{deployment.tails()}", pytrace=False)
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = httpx.get(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=3).json()
                    return health.get("metadatabase", {}).get("status") == "healthy"
                return False

            _wait("the API server to be healthy", api_healthy, 300, deployment.tails)

            def workers_ready() -> bool:
                return all(
                    "ready." in (deployment.logs / f"worker{n}.log").read_text(errors="replace")
                    for n in range(1, WORKERS + 1)
                )

            _wait("both Celery workers to be ready", workers_ready, 300, deployment.tails)

            def parsed() -> bool:
                rows = _sql(pg, "SELECT dag_id FROM serialized_dag")
                return {FANOUT_DAG, HEALTH_DAG} <= {r[0] for r in rows}

            _wait("the dag-processor to parse both DAGs", parsed, 300, deployment.tails)
            figures["deployment start (s)"] = round(time.monotonic() - t)

            # -- 100 mapped tasks over 5 connections, on two workers -------------------------------
            t = time.monotonic()
            deployment.run("trigger-fanout", [*airflow, "dags", "trigger", FANOUT_DAG, "--run-id", "fanout"], env)
            _wait_for_run(pg, deployment, FANOUT_DAG, "fanout", timeout=1200)
            figures["fan-out run (s)"] = round(time.monotonic() - t)
            fanout = _ti_states(pg, FANOUT_DAG, "fanout")
            token_requests = {c: e.counters["token.refresh_token"] for c, e in zip(conn_ids, emulators)}
            api_calls = {c: e.counters["api.GetUser"] for c, e in zip(conn_ids, emulators)}

            # -- the example health check over the same connections (a forced refresh each) --------
            t = time.monotonic()
            deployment.run(
                "trigger-health",
                [*airflow, "dags", "trigger", HEALTH_DAG, "--run-id", "health",
                 "--conf", json.dumps({"conn_ids": conn_ids})],
                env,
            )  # fmt: skip
            _wait_for_run(pg, deployment, HEALTH_DAG, "health", timeout=600)
            figures["health-check run (s)"] = round(time.monotonic() - t)
            health = _ti_states(pg, HEALTH_DAG, "health")
            variables = {
                c: _sql(pg, "SELECT val, is_encrypted FROM variable WHERE key = %s", storage_key(c)) for c in conn_ids
            }
        left = deployment.stop()
        assert left == [], f"processes still running after the stop: {left}"

        # -- the figures --------------------------------------------------------------------------
        per_host = Counter(host for _, _, _, host in fanout)
        print(f"\nCeleryExecutor deployment, {WORKERS} workers x {WORKER_CONCURRENCY}, {CONNECTIONS} connections:")
        print(f"  fan-out tasks per worker host: {dict(per_host)}")
        print(f"  token requests per connection during the fan-out (at most {WORKERS}): {token_requests}")
        print(f"  API calls (GetUser) per connection: {api_calls}")
        print(f"  durations: {figures}; whole test {time.monotonic() - started:.0f} s")

        assert len(fanout) == 100 and {s for _, _, s, _ in fanout} == {"success"}, Counter(s for _, _, s, _ in fanout)
        assert health and {s for _, _, s, _ in health} == {"success"}, health
        assert set(per_host) <= {f"worker{n}" for n in range(1, WORKERS + 1)}, per_host
        assert len(per_host) == WORKERS, f"both workers should have run tasks: {per_host}"
        assert all(1 <= n <= WORKERS for n in token_requests.values()), token_requests
        assert all(n >= 100 // CONNECTIONS for n in api_calls.values()), api_calls

        # -- each Variable holds a refresh token the emulator (strict rotation) still accepts -----
        for conn_id, emulator in zip(conn_ids, emulators):
            rows = variables[conn_id]
            assert rows, f"no token-store Variable for {conn_id}"
            value, encrypted = rows[0]
            blob = Fernet(fernet.encode()).decrypt(value.encode()).decode() if encrypted else value
            cipher = TokenCipher(
                connection_tokens[conn_id], conn_id, client_id=emulator.app.client_id, token_url=emulator.token_url()
            )
            state = cipher.open(blob)
            assert state is not None, f"the Variable of {conn_id} does not open with the connection's key"
            assert state.refresh_token != connection_tokens[conn_id], "the rotated token was kept"
            assert emulator.is_refresh_token_valid(state.refresh_token), f"{conn_id}: the stored token is dead"
            refreshed = httpx.post(
                emulator.token_url(),
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": state.refresh_token,
                    "client_id": emulator.app.client_id,
                    "client_secret": emulator.app.client_secret,
                    "scope": DEFAULT_SCOPE,
                },
                timeout=10,
            )
            assert refreshed.status_code == 200, (conn_id, refreshed.status_code, refreshed.text[:300])

        # -- no secret in any log -----------------------------------------------------------------
        secrets = set()
        for emulator in emulators:
            secrets |= {emulator.app.client_secret, emulator.developer_token}
            secrets |= set(emulator.issued_refresh_tokens) | set(emulator.issued_access_tokens)
        logs = [p for p in (home / "logs").rglob("*") if p.is_file()] + list(deployment.logs.glob("*.log"))
        task_logs = [p for p in logs if "dag_id=" in str(p)]
        assert len(task_logs) >= 100, f"expected the task logs under {home / 'logs'}, found {len(task_logs)}"
        leaks = [(p.name, s[:6]) for p in logs for s in secrets if s in p.read_text(errors="replace")]
        assert leaks == [], f"secrets found in logs: {leaks[:5]}"
        print(f"  scanned {len(logs)} log files ({len(task_logs)} task logs) for {len(secrets)} secrets: none found")
    except BaseException:
        print(deployment.tails(60))
        raise
    finally:
        deployment.stop()
        for emulator in emulators:
            emulator.stop()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
