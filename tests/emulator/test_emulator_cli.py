"""``python -m airflow_provider_msads.testing``: prints usable settings, serves, exits 0 on signals."""

from __future__ import annotations

import io
import json
import queue
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from typing import IO, Any

import httpx
import pytest

from airflow_provider_msads.connection.credentials import parse_credentials
from airflow_provider_msads.connection.fields import OPTION_ORDER, REQUIRED_EXTRAS
from airflow_provider_msads.testing.emulator import DEFAULT_SCOPE
from airflow_provider_msads.testing.emulator.__main__ import parse_injection


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


# ------------------------------------------------------------------ the emulator's own module, with options


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_msads.testing.emulator", "--port", "0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        document: dict[str, object] = json.loads(lines.get(timeout=15))
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, document


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def _token(connection: dict[str, Any]) -> str:
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
    token: str = response.json()["access_token"]
    return token


def test_json_connection_has_every_form_field(started: list[subprocess.Popen[str]]) -> None:
    process, document = _start("--accounts", "3")
    started.append(process)
    connection = document["connection"]
    assert isinstance(connection, dict)

    assert set(connection["extra"]) == set(REQUIRED_EXTRAS) | set(OPTION_ORDER)
    assert connection["extra"]["environment"] == "production"
    assert len(document["account_ids"]) == 3  # type: ignore[arg-type]
    campaigns = document["campaign_ids"]
    assert isinstance(campaigns, dict) and all(len(ids) == 3 for ids in campaigns.values())
    credentials = parse_credentials(
        conn_id="msads_default",
        login=connection["login"],
        password=connection["password"],
        extra=connection["extra"],
        conn_type=connection["conn_type"],
    )
    assert credentials.environment == "production"


def test_report_options_and_injected_faults(started: list[subprocess.Popen[str]]) -> None:
    process, document = _start(
        "--rows",
        "7",
        "--pending-polls",
        "0",
        "--inject",
        "reporting:fault:code=117:count=2:operation=SubmitGenerateReport",
    )
    started.append(process)
    connection = document["connection"]
    assert isinstance(connection, dict)
    extra = connection["extra"]
    headers = {"Authorization": f"Bearer {_token(connection)}", "DeveloperToken": extra["developer_token"]}
    request = {
        "ReportRequest": {
            "Type": "CampaignPerformanceReportRequest",
            "Aggregation": "Daily",
            "ExcludeReportHeader": True,
            "ExcludeReportFooter": True,
            "Columns": ["TimePeriod", "CampaignId", "Impressions"],
            "Scope": {"AccountIds": [extra["account_id"]]},
            "Time": {"PredefinedTime": "Yesterday"},
        }
    }
    submit = f"{extra['reporting_url']}/GenerateReport/Submit"

    codes = [httpx.post(submit, json=request, headers=headers).json()["Errors"][0]["Code"] for _ in range(2)]
    submitted = httpx.post(submit, json=request, headers=headers)
    status = httpx.post(f"{extra['reporting_url']}/GenerateReport/Poll", json=submitted.json(), headers=headers)
    link = status.json()["ReportRequestStatus"]["ReportDownloadUrl"]
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(link).content))
    lines = archive.read(archive.namelist()[0]).decode("utf-8-sig").split("\r\n")

    assert codes == [117, 117]
    assert len(lines) == 1 + 7 + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inject", "reporting"], "ENDPOINT:KIND"),
        (["--inject", "reporting:fault:code=abc"], "must be a whole number"),
        (["--inject", "reporting:fault:colour=red"], "KEY=VALUE"),
        (["--inject", "nowhere:fault"], "endpoint must be one of"),
        (["--accounts", "0"], "at least 1"),
        (["--account-time-zone", "Mars"], "ReportTimeZone"),
    ],
)
def test_bad_options_are_refused_with_the_fix(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_msads.testing.emulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_parse_injection() -> None:
    assert parse_injection("download:expired_link") == ("download", "expired_link", {})
    assert parse_injection("api:throttle:retry_after=1.5:count=3:body=x") == (
        "api",
        "throttle",
        {"retry_after": 1.5, "count": 3, "body": b"x"},
    )


def test_redirect_uri_registers_what_a_ui_offers(started: list[subprocess.Popen[str]]) -> None:
    """``--redirect-uri`` (the demo registers its UI's two forms): an authorization that names one
    is answered with a code; one that names another URI gets Microsoft's AADSTS50011 page."""
    from airflow_provider_msads.cli.authorize import build_authorize_url, pkce_challenge
    from airflow_provider_msads.connection.endpoints import resolve_endpoints

    ui = "http://127.0.0.1:8790/msads/callback"
    process, document = _start("--redirect-uri", ui, "--redirect-uri", "http://127.0.0.1:8790")
    started.append(process)
    connection = document["connection"]
    assert isinstance(connection, dict)
    endpoints = resolve_endpoints(
        token_url=connection["extra"]["token_url"], authorize_url=connection["extra"]["authorize_url"]
    )

    def authorize(redirect_uri: str) -> httpx.Response:
        url = build_authorize_url(
            endpoints,
            client_id=connection["login"],
            redirect_uri=redirect_uri,
            state="s",
            code_challenge=pkce_challenge("v" * 43),
        )
        return httpx.get(url, timeout=10)

    for registered in (ui, "http://127.0.0.1:8790", "http://localhost:8080"):
        answer = authorize(registered)
        assert answer.status_code == 302 and answer.headers["location"].startswith(registered + "?code="), answer.text
    refused = authorize("http://127.0.0.1:8791/msads/callback")
    assert refused.status_code != 302 and "AADSTS50011" in refused.text
