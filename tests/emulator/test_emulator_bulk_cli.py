"""The emulator's command line takes the Bulk entity tree, status knobs and faults."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_msads.testing.emulator import DEFAULT_SCOPE


@pytest.fixture
def emulator_process() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


def start(processes: list[subprocess.Popen[str]], *args: str) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_msads.testing.emulator", "--port", "0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    assert process.stdout is not None
    document: dict[str, Any] = json.loads(process.stdout.readline())
    return document


def test_bulk_tree_polls_and_injected_faults(emulator_process: list[subprocess.Popen[str]]) -> None:
    document = start(
        emulator_process,
        "--bulk-tree",
        "4,5,6",
        "--bulk-pending-polls",
        "0",
        "--inject",
        "bulk:fault:code=4204:operation=DownloadCampaignsByAccountIds",
    )
    connection = document["connection"]
    extra = connection["extra"]
    token = httpx.post(
        extra["token_url"],
        data={
            "grant_type": "refresh_token",
            "client_id": connection["login"],
            "client_secret": connection["password"],
            "refresh_token": extra["refresh_token"],
            "scope": DEFAULT_SCOPE,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "DeveloperToken": extra["developer_token"]}
    request = {"AccountIds": [extra["account_id"]], "DownloadEntities": ["Keywords"], "FormatVersion": "6.0"}
    submit = f"{document['bulk_url']}/Campaigns/DownloadByAccountIds"

    throttled = httpx.post(submit, json=request, headers=headers)
    submitted = httpx.post(submit, json=request, headers=headers)
    status = httpx.post(
        f"{document['bulk_url']}/BulkDownloadStatus/Query",
        json={"RequestId": submitted.json()["DownloadRequestId"]},
        headers=headers,
    ).json()
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(status["ResultFileUrl"]).content))
    rows = list(csv.DictReader(io.StringIO(archive.read(archive.namelist()[0]).decode("utf-8-sig"))))

    assert throttled.json()["OperationErrors"][0]["Code"] == 4204
    assert status["RequestStatus"] == "Completed"
    assert len([r for r in rows if r["Type"] == "Keyword"]) == 4 * 5 * 6


@pytest.mark.parametrize("tree", ["4,5", "0,1,1", "a,b,c"])
def test_bad_bulk_tree_is_refused_with_the_fix(tree: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_msads.testing.emulator", "--bulk-tree", tree],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "C,G,K[,A]" in result.stderr
