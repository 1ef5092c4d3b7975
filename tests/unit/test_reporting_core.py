"""The reporting core: request building and checks, Submit/Poll flows against httpx.MockTransport,
and the streamed download against a small loopback HTTP server (real socket, real files)."""

from __future__ import annotations

import asyncio
import csv
import datetime
import gzip
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_msads import reporting as rp
from airflow_provider_msads.connection.credentials import parse_credentials
from airflow_provider_msads.connection.endpoints import resolve_endpoints
from airflow_provider_msads.errors import ApiError, EndpointError, TransientApiError
from airflow_provider_msads.reporting import download
from airflow_provider_msads.tokens.flow import RetryPolicy

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impresions", "Clicks"]
FAST = RetryPolicy(attempts=4, backoff_base=1.0, backoff_max=4.0, jitter=False, total_budget=1000.0)
SLEPT: list[float] = []


def _request(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "account_ids": [123456789],
        "date_from": "2026-10-01",
        "date_to": datetime.date(2026, 10, 7),
    }
    args.update(kw)
    return rp.build_report_request(**args)


# ------------------------------------------------------------------------------------- building


def test_build_report_request_has_microsofts_shape() -> None:
    req = _request()
    assert req["Type"] == "CampaignPerformanceReportRequest"
    assert (req["Format"], req["FormatVersion"]) == ("Csv", "2.0")
    assert req["ExcludeReportHeader"] is False and req["ExcludeReportFooter"] is False  # read, then stripped
    assert req["ExcludeColumnHeaders"] is False
    assert req["ReturnOnlyCompleteData"] is False
    assert req["Scope"] == {"AccountIds": ["123456789"]}
    assert req["Columns"] == COLUMNS
    assert req["Time"] == {
        "ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon",
        "CustomDateRangeStart": {"Year": 2026, "Month": 10, "Day": 1},
        "CustomDateRangeEnd": {"Year": 2026, "Month": 10, "Day": 7},
    }


def test_build_merges_report_request_and_makes_ids_strings() -> None:
    req = _request(
        report_request={"Scope": {"Campaigns": [{"AccountId": 1, "CampaignId": 2}]}, "Filter": {"Status": "Active"}}
    )
    assert req["Scope"] == {"AccountIds": ["123456789"], "Campaigns": [{"AccountId": "1", "CampaignId": "2"}]}
    assert req["Filter"] == {"Status": "Active"}


def test_account_ids_from_a_template_string() -> None:
    assert _request(account_ids="123, 456")["Scope"]["AccountIds"] == ["123", "456"]
    assert _request(account_ids=789)["Scope"]["AccountIds"] == ["789"]


def test_predefined_time_and_time_zone() -> None:
    req = _request(date_from=None, date_to=None, predefined_time="Yesterday", time_zone="PacificTimeUSCanadaTijuana")
    assert req["Time"] == {"ReportTimeZone": "PacificTimeUSCanadaTijuana", "PredefinedTime": "Yesterday"}


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"predefined_time": "Yesterday"}, "predefined_time"),
        ({"date_from": None}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"columns": []}, "columns"),
        ({"columns": "TimePeriod"}, "columns"),
        ({"report_type": " "}, "report_type"),
    ],
)
def test_build_refuses_bad_arguments_naming_them(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(rp.ReportRequestError) as caught:
        _request(**kw)
    assert caught.value.field == field
    assert f"`{field}`" in str(caught.value) or field in str(caught.value)


def test_check_refuses_inverted_range() -> None:
    req = _request(date_from="2026-10-08", date_to="2026-10-07")
    with pytest.raises(rp.ReportRequestError, match=r"`date_from` \(2026-10-08\) is after `date_to`"):
        rp.check_report_request(req, today=datetime.date(2026, 11, 1))


def test_check_retention_daily_36_months_hourly_6_months() -> None:
    today = datetime.date(2026, 12, 1)
    rp.check_report_request(_request(date_from="2023-12-01", date_to="2023-12-02"), today=today)
    with pytest.raises(rp.ReportRequestError, match=r"36 months, so nothing before 2023-12-01") as caught:
        rp.check_report_request(_request(date_from="2023-11-30", date_to="2023-12-02"), today=today)
    assert caught.value.field == "date_from"
    rp.check_report_request(_request(aggregation="Hourly", date_from="2026-06-01", date_to="2026-06-02"), today=today)
    with pytest.raises(rp.ReportRequestError, match=r"Hourly data of .*: 6 months.*Daily aggregation"):
        rp.check_report_request(
            _request(aggregation="Hourly", date_from="2026-05-31", date_to="2026-06-02"), today=today
        )


def test_check_refuses_over_1000_accounts_and_bad_aggregation() -> None:
    with pytest.raises(rp.ReportRequestError, match=r"1001 accounts.*at most 1000") as caught:
        rp.check_report_request(_request(account_ids=range(1, 1002)), today=datetime.date(2026, 11, 1))
    assert caught.value.field == "account_ids" and 2029 in caught.value.codes
    rp.check_report_request(_request(account_ids=range(1, 1001)), today=datetime.date(2026, 11, 1))
    with pytest.raises(rp.ReportRequestError, match="aggregation"):
        rp.check_report_request(_request(aggregation="daily"), today=datetime.date(2026, 11, 1))
    with pytest.raises(rp.ReportRequestError, match="`account_ids` is empty") as caught:
        _request(account_ids=[])
    assert caught.value.field == "account_ids"


# ------------------------------------------------------------------------------------- endpoints


def test_reporting_url_defaults_and_override() -> None:
    assert resolve_endpoints("production").reporting_url == "https://reporting.api.bingads.microsoft.com/Reporting/v13"
    assert (
        resolve_endpoints("sandbox").reporting_url
        == "https://reporting.api.sandbox.bingads.microsoft.com/Reporting/v13"
    )
    assert resolve_endpoints(reporting_url="http://127.0.0.1:9/Reporting/v13/").reporting_url == (
        "http://127.0.0.1:9/Reporting/v13"
    )
    with pytest.raises(EndpointError) as caught:
        resolve_endpoints(reporting_url="http://reporting.example.com/Reporting/v13")
    assert caught.value.field == "reporting_url"


def test_reporting_url_is_a_connection_option() -> None:
    base = {
        "account_id": "180535609",
        "customer_id": "251186883",
        "developer_token": "BBD37VB98",
        "refresh_token": "M.C5_BAY.0.U.-Cq" + "x" * 40,
    }
    kw: dict[str, Any] = {"conn_id": "c", "login": "00000000-0000-0000-0000-000000000000", "password": "s" * 40}
    creds = parse_credentials(**kw, extra={**base, "reporting_url": "http://127.0.0.1:8/Reporting/v13"})
    assert creds.endpoints.reporting_url == "http://127.0.0.1:8/Reporting/v13"
    assert creds.public_dict()["reporting_url"] == "http://127.0.0.1:8/Reporting/v13"
    gateway = "https://reporting.api.sandbox.bingads.microsoft.com/Reporting/v13"
    assert parse_credentials(**kw, extra={**base, "extra__msads__reporting_url": gateway}).reporting_url == gateway
    with pytest.raises(EndpointError, match="reporting_url"):
        parse_credentials(**kw, extra={**base, "reporting_url": "http://r.example/R"})
    with pytest.raises(EndpointError, match="MSADS_ALLOWED_HOSTS"):  # another host: the deployment must list it
        parse_credentials(**kw, extra={**base, "reporting_url": "https://r.example/R"})


# ------------------------------------------------------------------------------------- submit / poll


def _transport(answers: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return httpx.MockTransport(handler)


def _fault(code: int, error_code: str, details: str = "", status: int = 400) -> httpx.Response:
    body = {
        "TrackingId": "trk-1",
        "Type": "ApiFaultDetail",
        "OperationErrors": [{"Code": code, "ErrorCode": error_code, "Message": error_code, "Details": details}],
        "BatchErrors": [],
    }
    return httpx.Response(status, json=body)


def _submit(answers: list[httpx.Response], req: dict[str, Any] | None = None) -> tuple[str, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    api = rp.Reporting("https://reporting.example/Reporting/v13", retry=FAST, sleep=SLEPT.append)
    with httpx.Client(transport=_transport(answers, seen)) as client:
        return api.submit(client, req or _request()), seen


def test_submit_posts_the_request_and_returns_the_id() -> None:
    request_id, seen = _submit([httpx.Response(200, json={"ReportRequestId": 1234567890123})])
    assert request_id == "1234567890123"
    assert str(seen[0].url) == "https://reporting.example/Reporting/v13/GenerateReport/Submit"
    assert json.loads(seen[0].content)["ReportRequest"]["Scope"]["AccountIds"] == ["123456789"]


def test_null_request_100_names_the_misspelt_column() -> None:
    details = 'Invalid JSON. Error converting value "Impresions". Path: $.Columns[4], line 1, position 200.'
    with pytest.raises(rp.ReportingError) as caught:
        _submit([_fault(100, "NullRequest", details)])
    message = str(caught.value)
    assert "column 5 ('Impresions') is not a column of CampaignPerformanceReportRequest" in message
    assert caught.value.field == "columns" and caught.value.tracking_id == "trk-1" and caught.value.codes == (100,)


def test_null_request_100_elsewhere_names_the_path() -> None:
    with pytest.raises(rp.ReportingError, match="at Aggregation") as caught:
        _submit([_fault(100, "NullRequest", "Invalid JSON. Path: $.Aggregation, line 1")])
    assert caught.value.field == "Aggregation"


@pytest.mark.parametrize(
    ("code", "name", "field", "words"),
    [
        (2029, "ReportingServiceAccountsOverLimit", "account_ids", "Microsoft allows 1000"),
        (2003, "ReportingServiceAccountNotAuthorized", "account_ids", "Accounts in the scope: 123456789"),
        (2034, "ReportingServiceInvalidTimePeriodColumnForSummaryReport", "columns", "TimePeriod column"),
        (2015, "ReportingServiceRequiredColumnsNotSelected", "columns", "requires"),
        (2016, "ReportingServiceDuplicateColumns", "columns", "more than once"),
        (2041, "ReportingServiceInvalidFutureStartDate", "date_from", "in the future"),
    ],
)
def test_reporting_faults_explained(code: int, name: str, field: str, words: str) -> None:
    with pytest.raises(rp.ReportingError) as caught:
        _submit([_fault(code, name)])
    assert caught.value.field == field and words in str(caught.value)
    assert f"error {code} {name}" in str(caught.value)
    assert "Fix:" in str(caught.value) and "tracking id trk-1" in str(caught.value)
    assert not caught.value.retryable


@pytest.mark.parametrize(("code", "name"), [(117, "CallRateExceeded"), (207, "ConcurrentRequestOverLimit")])
def test_throttling_is_retried_with_backoff(code: int, name: str) -> None:
    SLEPT.clear()
    answers = [_fault(code, name), _fault(code, name), httpx.Response(200, json={"ReportRequestId": "9"})]
    request_id, seen = _submit(answers)
    assert request_id == "9" and len(seen) == 3
    # 117: Microsoft asks for about a minute; 207: exponential backoff
    assert ([60.0, 60.0] if code == 117 else [1.0, 2.0]) == SLEPT


def test_throttling_gives_up_after_the_budget() -> None:
    with pytest.raises(TransientApiError) as caught:
        _submit([_fault(207, "ConcurrentRequestOverLimit") for _ in range(4)])
    assert caught.value.retryable and 207 in caught.value.codes


def test_invalid_credentials_105_as_customer_management() -> None:
    with pytest.raises(ApiError) as caught:
        _submit([_fault(105, "InvalidCredentials", status=401)])
    assert caught.value.field == "developer_token"


@pytest.mark.parametrize(
    ("status", "url", "expected"),
    [
        ({"Status": "Pending", "ReportDownloadUrl": None}, None, "Pending"),
        ({"Status": "Success", "ReportDownloadUrl": "https://b.blob.core.windows.net/r.zip?sig=x"}, "x", "Success"),
        ({"Status": "Success", "ReportDownloadUrl": None}, None, "Success"),
        ({"Status": "Success"}, None, "Success"),
        ({"Status": "Error", "ReportDownloadUrl": None}, None, "Error"),
    ],
)
def test_poll_statuses(status: dict[str, Any], url: str | None, expected: str) -> None:
    seen: list[httpx.Request] = []
    api = rp.Reporting("https://reporting.example/Reporting/v13", retry=FAST)
    answer = httpx.Response(200, json={"ReportRequestStatus": status}, headers={"TrackingId": "t"})
    with httpx.Client(transport=_transport([answer], seen)) as client:
        result = api.poll(client, "42")
    assert result.status == expected and result.request_id == "42" and result.tracking_id == "t"
    assert (result.download_url is not None) == (url is not None)
    assert json.loads(seen[0].content) == {"ReportRequestId": "42"}
    assert str(seen[0].url).endswith("/GenerateReport/Poll")


def test_async_twins() -> None:
    async def go() -> tuple[str, rp.ReportStatus]:
        seen: list[httpx.Request] = []
        answers = [
            _fault(117, "CallRateExceeded"),
            httpx.Response(200, json={"ReportRequestId": "7"}),
            httpx.Response(200, json={"ReportRequestStatus": {"Status": "Pending"}}),
        ]

        async def nap(seconds: float) -> None:
            SLEPT.append(seconds)

        api = rp.Reporting("https://reporting.example/Reporting/v13", retry=FAST, asleep=nap)
        async with httpx.AsyncClient(transport=_transport(answers, seen)) as client:
            return await api.asubmit(client, _request()), await api.apoll(client, "7")

    request_id, status = asyncio.run(go())
    assert request_id == "7" and status.status == "Pending" and not status.done


# ------------------------------------------------------------------------------------- row counting


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
def test_row_counter_is_csv_aware_whatever_the_chunking(chunk: int) -> None:
    text = (
        b'"TimePeriod","CampaignName","Clicks"\r\n'
        b'"2026-10-01","plain","1"\r\n'
        b'"2026-10-01","with ""quotes"", and comma","2"\r\n'
        b'"2026-10-02","two\r\nlines\nthree","3"\r\n'
        b'"2026-10-03","last without newline","4"'
    )
    counter = rp.RowCounter()
    for i in range(0, len(text), chunk):
        counter.feed(text[i : i + chunk])
    records = counter.close()
    assert records == len(list(csv.reader(io.StringIO(text.decode(), newline=""))))
    assert records == 5


# ------------------------------------------------------------------------------------- download


class _Blob(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}
    seen_headers: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen_headers.append(dict(self.headers.items()))
        status, kind, body = type(self).routes.get(self.path.split("?")[0], (404, "application/xml", b"<Error/>"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def blob() -> Iterator[tuple[str, dict[str, tuple[int, str, bytes]], list[dict[str, str]]]]:
    routes: dict[str, tuple[int, str, bytes]] = {}
    seen: list[dict[str, str]] = []
    handler = type("Blob", (_Blob,), {"routes": routes, "seen_headers": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes, seen
    finally:
        server.shutdown()
        server.server_close()


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


CSV_BODY = b'"TimePeriod","CampaignName","Clicks"\r\n"2026-10-01","a\r\nb","1"\r\n"2026-10-02","c","--"\r\n'


def test_download_strips_bom_counts_rows_and_moves_into_place(blob: Any, tmp_path: Path) -> None:
    base, routes, seen = blob
    routes["/r.zip"] = (200, "application/octet-stream", _zip({"report.csv": b"\xef\xbb\xbf" + CSV_BODY}))
    dest = tmp_path / "out" / "campaign.csv"
    result = rp.download_report(f"{base}/r.zip?sig=abc", str(dest))
    assert dest.read_bytes() == CSV_BODY
    assert (result.rows, result.bytes, result.csv_bytes) == (2, len(CSV_BODY), len(CSV_BODY))
    assert sorted(p.name for p in dest.parent.iterdir()) == ["campaign.csv"]  # no temporary left behind
    assert "authorization" not in {k.lower() for k in seen[0]} and "developertoken" not in {k.lower() for k in seen[0]}


def test_download_gzip_and_async(blob: Any, tmp_path: Path) -> None:
    base, routes, _ = blob
    routes["/r.zip"] = (200, "application/zip", _zip({"r.csv": b"\xef\xbb\xbf" + CSV_BODY}))
    result = asyncio.run(rp.adownload_report(f"{base}/r.zip", str(tmp_path / "r.csv"), compression="gzip"))
    assert result.path.endswith("r.csv.gz") and result.rows == 2
    assert gzip.decompress((tmp_path / "r.csv.gz").read_bytes()) == CSV_BODY
    assert result.bytes == (tmp_path / "r.csv.gz").stat().st_size


def test_download_file_url_destination(blob: Any, tmp_path: Path) -> None:
    base, routes, _ = blob
    routes["/r.zip"] = (200, "application/zip", _zip({"r.csv": CSV_BODY}))
    result = rp.download_report(f"{base}/r.zip", f"file://{tmp_path}/x/r.csv")
    assert (tmp_path / "x" / "r.csv").read_bytes() == CSV_BODY and result.rows == 2


@pytest.mark.parametrize(
    ("route", "error", "words"),
    [
        ((403, "application/xml", b"<Error><Code>AuthenticationFailed</Code></Error>"), rp.LinkExpiredError, "403"),
        ((404, "application/xml", b"<Error/>"), rp.LinkExpiredError, "404"),
        ((200, "text/html", b"<html>proxy login</html>"), rp.ReportDownloadError, "text/html"),
        ((200, "application/octet-stream", b"<?xml version='1.0'?><Error/>"), rp.ReportDownloadError, "error page"),
        ((200, "application/octet-stream", b"just some bytes"), rp.ReportDownloadError, "not a zip"),
        ((200, "application/zip", _zip({})), rp.ReportDownloadError, "not a zip"),
        ((200, "application/zip", _zip({"a.csv": b"x", "b.csv": b"y"})), rp.ReportDownloadError, "2 files"),
        ((200, "application/zip", _zip({"r.xml": b"<x/>"})), rp.ReportDownloadError, "not a .csv"),
    ],
)
def test_download_refusals_leave_no_file(
    blob: Any, tmp_path: Path, route: tuple[int, str, bytes], error: type[Exception], words: str
) -> None:
    base, routes, _ = blob
    routes["/r.zip"] = route
    with pytest.raises(error, match=words):
        rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_zip_bomb_unpacked(blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, routes, _ = blob
    routes["/r.zip"] = (200, "application/zip", _zip({"r.csv": b"0" * 5_000_000}))
    monkeypatch.setattr(download, "SMALL_ENTRY", 1024)
    with pytest.raises(rp.ReportDownloadError, match="zip bomb"):
        rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    monkeypatch.setattr(download, "SMALL_ENTRY", 16 * 1024 * 1024)
    monkeypatch.setattr(download, "MAX_ENTRY_BYTES", 1_000_000)
    with pytest.raises(rp.ReportDownloadError, match="zip bomb"):
        rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["http://blob.example.net/r.zip", "ftp://127.0.0.1/r.zip", "https://user:pw@blob.example.net/r.zip"]
)
def test_download_refuses_non_https_links(url: str, tmp_path: Path) -> None:
    with pytest.raises(rp.ReportDownloadError, match="not https"):
        rp.download_report(url, str(tmp_path / "r.csv"))


def test_empty_report_is_the_column_row(tmp_path: Path) -> None:
    result = rp.write_empty_report(["TimePeriod", 'Odd"Name'], str(tmp_path / "e.csv"))
    assert (tmp_path / "e.csv").read_bytes() == b'"TimePeriod","Odd""Name"\r\n'
    assert (result.rows, result.bytes) == (0, 26)
    zipped = rp.write_empty_report(["A"], str(tmp_path / "e2.csv"), compression="gzip")
    assert gzip.decompress((tmp_path / "e2.csv.gz").read_bytes()) == b'"A"\r\n' and zipped.rows == 0


def test_url_destination_goes_through_the_publisher(tmp_path: Path) -> None:
    published: list[tuple[bytes, str]] = []

    def publish(local: str, destination: str) -> None:
        published.append((Path(local).read_bytes(), destination))

    rp.write_empty_report(["A"], "s3://aws@bucket/k/r.csv", publish=publish)
    assert published == [(b'"A"\r\n', "s3://aws@bucket/k/r.csv")]
    with pytest.raises(rp.ReportRequestError, match="compression"):
        rp.download_report("https://x/r.zip", str(tmp_path / "r"), compression="zip")


def test_client_aggregations_are_microsofts() -> None:
    """The client checks ``aggregation`` against its own list; the emulator's list is generated from
    Microsoft's SDK (and checked against it). Kept apart on purpose: a model of Microsoft that
    imported the client's list would agree with the client's mistakes; this keeps them equal."""
    from airflow_provider_msads.testing.emulator import _reporting_catalogue

    assert set(rp.AGGREGATIONS) == set(_reporting_catalogue.AGGREGATIONS)
