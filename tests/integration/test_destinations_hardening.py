"""Destinations nobody can steer (issue 25 items 1-2), through the operator and the real stack.

* A local URL of any spelling (``FILE://``, ``local://``) takes the local rules: a folder at the
  final name is refused before Submit, and the file lands where the result's ``path`` says.
* A bucket the storage connection may not inspect (403 on HEAD and List, here from a tiny S3
  endpoint on loopback that lets anyone write, as a stranger's misconfigured bucket would) is
  refused before Submit, and nothing is written to it; the storage connection's
  ``msads_write_only_buckets`` extra lets a bucket that is write-only on purpose through, and only
  the bucket it names.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from _support.fakes import FakeTI

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator
from airflow_provider_msads.reporting import destinations

pytestmark = pytest.mark.integration

COLUMNS = ["TimePeriod", "AccountId", "CampaignName", "Impressions"]


def _operator(destination: str) -> MicrosoftAdsReportOperator:
    return MicrosoftAdsReportOperator(
        task_id="report",
        report_type="CampaignPerformanceReportRequest",
        columns=COLUMNS,
        date_from="2026-10-01",
        date_to="2026-10-02",
        destination=destination,
        poll_interval=0.01,
        timeout=30,
    )


class WriteOnlyStore:
    """An S3 endpoint that denies every look (HEAD bucket, List) and accepts every write."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.writes: list[str] = []
        self._parts: dict[str, dict[int, bytes]] = {}
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" before the body

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _deny(self) -> None:
                self._send(
                    403,
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                    b"<Message>Access Denied</Message></Error>",
                    {"Content-Type": "application/xml"},
                )

            do_HEAD = do_GET = _deny

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_PUT(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                data = self._body()
                store.writes.append(parts.path)
                if "uploadId" in query:
                    store._parts[query["uploadId"][0]][int(query["partNumber"][0])] = data
                else:
                    store.objects[parts.path] = data
                self._send(200, headers={"ETag": f'"{uuid.uuid4().hex}"'})

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                self._body()
                store.writes.append(parts.path)
                bucket, _, key = parts.path.lstrip("/").partition("/")
                if "uploads" in query:
                    upload = uuid.uuid4().hex
                    store._parts[upload] = {}
                    xml = (
                        f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{upload}</UploadId>"
                        "</InitiateMultipartUploadResult>"
                    )
                    self._send(200, xml.encode(), {"Content-Type": "application/xml"})
                    return
                sent = store._parts.pop(query["uploadId"][0])
                store.objects[parts.path] = b"".join(sent[n] for n in sorted(sent))
                xml = (
                    f'<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>"x"</ETag>'
                    "</CompleteMultipartUploadResult>"
                )
                self._send(200, xml.encode(), {"Content-Type": "application/xml"})

            def do_DELETE(self) -> None:
                self._send(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def write_only_store() -> Iterator[WriteOnlyStore]:
    store = WriteOnlyStore()
    try:
        yield store
    finally:
        store.close()


def _store_conn(monkeypatch: pytest.MonkeyPatch, store: WriteOnlyStore, **extra: Any) -> str:
    conn_id = "locked_store"
    conn = {
        "conn_type": "aws",
        "login": "testing-access-key",
        "password": "testing-secret-key",
        "extra": {"endpoint_url": store.endpoint_url, "region_name": "us-east-1", **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return conn_id


def test_a_bucket_that_cannot_be_inspected_is_refused_before_submit(
    msads_emulator, report_conn, write_only_store: WriteOnlyStore, monkeypatch
):
    from airflow.providers.common.compat.sdk import AirflowFailException

    conn_id = _store_conn(monkeypatch, write_only_store)
    write_only_store.writes.clear()
    with pytest.raises(AirflowFailException, match=r"'theirs'.*may not inspect") as caught:
        _operator(f"s3://{conn_id}@theirs/reports/campaign.csv").execute({"ti": FakeTI()})
    cause = caught.value.__cause__
    assert isinstance(cause, ReportRequestError) and cause.field == "destination"
    assert destinations.WRITE_ONLY_BUCKETS_EXTRA in cause.remedy and "Fix the bucket's name" in cause.remedy
    assert msads_emulator.report_submits == 0  # refused before Submit: no report was made
    assert write_only_store.writes == []  # and nothing was written to the stranger's bucket


def test_a_bucket_listed_as_write_only_gets_the_report_and_only_that_one(
    msads_emulator, report_conn, write_only_store: WriteOnlyStore, monkeypatch
):
    conn_id = _store_conn(monkeypatch, write_only_store, msads_write_only_buckets=["drop-box"])
    with pytest.raises(ReportRequestError, match=r"'drop-bx'.*may not inspect"):  # a typo is still refused
        destinations.check_destination(f"s3://{conn_id}@drop-bx/campaign.csv")
    result = _operator(f"s3://{conn_id}@drop-box/reports/campaign.csv").execute({"ti": FakeTI()})
    assert result["path"] == f"s3://{conn_id}@drop-box/reports/campaign.csv"
    body = write_only_store.objects["/drop-box/reports/campaign.csv"]
    assert body.startswith(b'"TimePeriod","AccountId","CampaignName","Impressions"') and len(body) == result["bytes"]


@pytest.mark.parametrize("scheme", ["FILE", "local"])
def test_a_local_url_of_any_spelling_takes_the_local_rules(msads_emulator, report_conn, tmp_path: Path, scheme: str):
    from airflow.providers.common.compat.sdk import AirflowFailException

    folder = tmp_path / "campaign.csv"
    folder.mkdir()
    with pytest.raises(AirflowFailException, match="is a folder"):
        _operator(f"{scheme}://{folder}").execute({"ti": FakeTI()})
    assert msads_emulator.report_submits == 0 and list(folder.iterdir()) == []

    final = tmp_path / "out" / "campaign.csv"
    result = _operator(f"{scheme}://{final}").execute({"ti": FakeTI()})
    assert result["path"] == f"{scheme}://{final}" and final.stat().st_size == result["bytes"] > 0
    assert sorted(p.name for p in final.parent.iterdir()) == ["campaign.csv"]
