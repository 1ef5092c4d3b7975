"""``python -m airflow_provider_msads.testing``: prints usable settings, serves, exits 0 on signals."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import httpx
import pytest

from airflow_provider_msads.testing.emulator import DEFAULT_SCOPE


def _lines(stream: IO[str], sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))


@pytest.fixture
def cli() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_msads.testing", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    settings: dict[str, str] = {}
    try:
        while "AIRFLOW_CONN_MSADS_DEFAULT" not in settings:
            line = lines.get(timeout=15)
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                settings[key] = value
        yield process, settings
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_until_signalled(cli: tuple[subprocess.Popen[str], dict[str, str]], signum: int) -> None:
    process, settings = cli
    base_url = settings["MSADS_EMULATOR_BASE_URL"]
    assert base_url.startswith("http://127.0.0.1:")
    assert settings["MSADS_EMULATOR_TOKEN_URL"] == f"{base_url}/common/oauth2/v2.0/token"
    assert settings["MSADS_EMULATOR_CUSTOMER_MANAGEMENT_URL"] == f"{base_url}/CustomerManagement/v13"
    assert settings["MSADS_EMULATOR_REPORTING_URL"] == f"{base_url}/Reporting/v13"

    raw = settings["AIRFLOW_CONN_MSADS_DEFAULT"]
    assert raw.startswith("'") and raw.endswith("'")
    connection = json.loads(raw[1:-1])
    assert connection["conn_type"] == "msads"
    extra = connection["extra"]
    response = httpx.post(
        extra["token_url"],
        data={
            "grant_type": "refresh_token",
            "client_id": connection["login"],
            "client_secret": connection["password"],
            "refresh_token": extra["refresh_token"],
            "scope": DEFAULT_SCOPE,
        },
    )
    assert response.status_code == 200
    user = httpx.post(
        f"{extra['customer_management_url']}/User/Query",
        json={"UserId": None},
        headers={
            "Authorization": f"Bearer {response.json()['access_token']}",
            "DeveloperToken": extra["developer_token"],
        },
    )
    assert user.json()["User"]["CustomerId"] == extra["customer_id"]

    process.send_signal(signum)
    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    assert "stopped" in process.stderr.read()


def test_cli_refuses_non_loopback_hosts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_msads.testing", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert result.stdout == ""
