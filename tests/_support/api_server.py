"""``airflow api-server`` for the browser tests: started on a free loopback port in its own process
group (its uvicorn workers stop with it, whatever happens), healthy before use, stopped after."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

SERVER_START_TIMEOUT = 150.0  # seconds; about 15-30 s on 2 busy cores


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    # uvicorn stops in about 1 s, but the process lingers for several more: do not wait for it.
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):  # the group id is the leader's pid
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> None:
    """Poll the health endpoint until the metadatabase answers healthy, or fail with the log."""
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read().decode()
            if json.loads(body).get("metadatabase", {}).get("status") == "healthy":
                return
            last = body[:300]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = repr(exc)
        time.sleep(0.5)  # readiness polling, not timing: the first healthy answer ends the wait
    tail = log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""
    state = f"exited with {process.returncode}" if process.poll() is not None else "still not healthy"
    pytest.fail(f"Airflow API server {state} ({url}: {last}).\n--- api-server log (tail) ---\n{tail}")


@contextlib.contextmanager
def api_server(
    log_path: Path,
    env: Mapping[str, str],
    *,
    workers: int = 1,
    while_starting: Callable[[], object] | None = None,
    sub_path: str = "",
) -> Iterator[str]:
    """The server's base URL while it runs. ``env`` is added to this process's environment (and
    ``AIRFLOW__API__BASE_URL``, under ``sub_path`` such as ``/airflow`` when given); ``while_starting``
    runs meanwhile (imports that would otherwise add up)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}{sub_path}"
    argv = [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*argv, "--workers", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "AIRFLOW__API__BASE_URL": base_url, **env},
            start_new_session=True,
        )
    try:
        if while_starting is not None:
            while_starting()
        wait_healthy(f"{base_url}/api/v2/monitor/health", process, log_path, time.monotonic() + SERVER_START_TIMEOUT)
        yield base_url
    finally:
        stop_group(process)


@contextlib.contextmanager
def simple_auth_server(
    folder: Path, passwords: Mapping[str, str], env: Mapping[str, str], **kwargs: Any
) -> Iterator[tuple[str, Path]]:
    """:func:`api_server` behind Airflow's simple auth manager: each name in ``passwords`` is a user
    whose role has the same name (``admin``, ``op``, ``user``, ``viewer``), with that password (the
    passwords file is written in ``folder``, beside the server's log); "all admins" is off. Yields the
    base URL and the log's path; ``env`` and ``kwargs`` go to :func:`api_server`."""
    log_path = folder / "api-server.log"
    passwords_file = folder / "passwords.json"
    passwords_file.write_text(json.dumps(dict(passwords)))
    auth_env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{name}" for name in passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
    }
    with api_server(log_path, {**auth_env, **env}, **kwargs) as base_url:
        yield base_url, log_path


def auth_token(base_url: str, user: str, password: str) -> str:
    """A JWT for ``user`` from the server's ``/auth/token`` (what the login page sets as ``_token``)."""
    import httpx

    answer = httpx.post(f"{base_url}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["access_token"])
