"""A throwaway PostgreSQL server as Airflow's metastore (``MSADS_TEST_METASTORE=postgres``).

Production deployments run Postgres, not SQLite; row locking, transactions and Variable upserts
behave differently there. The server is Debian's ``postgresql`` package, started from a fresh data
folder on a free loopback port, and removed when the session ends, so nothing outlives the run.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(
        f"MSADS_TEST_METASTORE=postgres needs PostgreSQL's {name}; install Debian's postgresql package "
        "(apt-get install postgresql) or unset MSADS_TEST_METASTORE."
    )


def _version_key(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """initdb + pg_ctl under the ``postgres`` user when run as root (initdb refuses root)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="msads-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, user="postgres", group="postgres")
        self.started = False

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")

    def start(self) -> str:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.base / "server.log"), "-w", "start"
        )
        self.started = True
        atexit.register(self.stop)
        self._run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "airflow")
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def stop(self) -> None:
        if self.started:
            self.started = False
            subprocess.run(
                [*self._as, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.base, ignore_errors=True)
