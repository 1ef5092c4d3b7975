"""Reporting REST v13 in the emulator, over real sockets: Submit, Poll, the expiring download link,
the file Microsoft writes, the refusals and every injectable fault."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.emulator import Driver, FakeClock

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend", "Ctr"]


def custom(day: date) -> dict[str, int]:
    return {"Year": day.year, "Month": day.month, "Day": day.day}


class Reports:
    """Submit / Poll / download the way a client does (bearer + developer token + customer ids)."""

    def __init__(self, ms: Driver) -> None:
        self.ms = ms
        self.emu = ms.emu
        self.http = ms.http
        self._token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self._token is None:
            self._token = self.ms.access_token()
        return {
            "Authorization": f"Bearer {self._token}",
            "DeveloperToken": self.emu.developer_token,
            "CustomerId": self.emu.customer_id,
            "CustomerAccountId": self.emu.account.id,
        }

    def request(self, **overrides: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "Type": "CampaignPerformanceReportRequest",
            "ReportName": "campaign_daily",
            "Format": "Csv",
            "FormatVersion": "2.0",
            "ReturnOnlyCompleteData": False,
            "ExcludeReportHeader": False,
            "ExcludeReportFooter": False,
            "ExcludeColumnHeaders": False,
            "Aggregation": "Daily",
            "Columns": list(COLUMNS),
            "Scope": {"AccountIds": [self.emu.account.id]},
            "Time": {
                "CustomDateRangeStart": {"Year": 2026, "Month": 10, "Day": 1},
                "CustomDateRangeEnd": {"Year": 2026, "Month": 10, "Day": 3},
                "ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon",
            },
        }
        request.update(overrides)
        return request

    def submit_raw(self, request: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(
            f"{self.emu.reporting_url}/GenerateReport/Submit",
            json={"ReportRequest": request},
            headers=self.headers if headers is None else headers,
        )

    def submit(self, **overrides: Any) -> str:
        response = self.submit_raw(self.request(**overrides))
        assert response.status_code == 200, response.text
        report_id = response.json()["ReportRequestId"]
        assert isinstance(report_id, str) and not report_id.isdigit() and len(report_id) <= 40
        return report_id

    def poll_raw(self, report_id: str) -> httpx.Response:
        return self.http.post(
            f"{self.emu.reporting_url}/GenerateReport/Poll", json={"ReportRequestId": report_id}, headers=self.headers
        )

    def poll(self, report_id: str) -> dict[str, Any]:
        response = self.poll_raw(report_id)
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()["ReportRequestStatus"]
        return status

    def link(self, report_id: str) -> str:
        for _ in range(50):
            status = self.poll(report_id)
            if status["Status"] != "Pending":
                break
        assert status["Status"] == "Success", status
        url = status["ReportDownloadUrl"]
        assert isinstance(url, str)
        return url

    def rows(self, report_id: str) -> list[dict[str, str]]:
        """The data rows of a report without header and footer blocks, by column name."""
        import csv

        text = self.csv_text(self.link(report_id))
        lines = text.split("\r\n")
        if lines[0].startswith('"Report Name: '):
            lines = lines[lines.index("") + 1 :]
        body = [line for line in lines if line and "Microsoft Corporation" not in line]
        return list(csv.DictReader(body))

    def csv_text(self, url: str) -> str:
        response = httpx.get(url)
        assert response.status_code == 200, response.text
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        [name] = archive.namelist()
        data = archive.read(name)
        assert data.startswith(b"\xef\xbb\xbf")
        return data[3:].decode("utf-8")


@pytest.fixture
def rep(ms: Driver) -> Reports:
    return Reports(ms)


def assert_reporting_fault(response: httpx.Response, code: int, error_code: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["TrackingId"] == response.headers["TrackingId"]
    assert body["Type"] == "ApiFaultDetail"
    assert body["BatchErrors"] == []
    [error] = body["OperationErrors"]
    assert (error["Code"], error["ErrorCode"]) == (code, error_code)
    assert error["Message"]
    return dict(error)


# ------------------------------------------------------------------ the happy path and the file


def test_submit_poll_download_roundtrip(rep: Reports) -> None:
    submitted = rep.submit_raw(rep.request())
    assert submitted.headers["TrackingId"]
    report_id = submitted.json()["ReportRequestId"]

    assert rep.poll(report_id) == {"Status": "Pending", "ReportDownloadUrl": None}
    url = rep.link(report_id)
    text = rep.csv_text(url)

    assert url.startswith(rep.emu.base_url + "/download-reports/")
    assert "sig=" in url and "se=" in url
    lines = text.split("\r\n")
    assert lines[0] == '"Report Name: campaign_daily"'
    assert lines[1] == '"Report Time: 10/1/2026,10/3/2026"'  # no space: Microsoft's SDK parses it so
    assert '"Report Aggregation: Daily"' in lines
    assert '"Rows: 9"' in lines
    columns_at = lines.index(",".join(f'"{c}"' for c in COLUMNS))
    assert lines[columns_at - 1] == ""
    rows = lines[columns_at + 1 : columns_at + 10]
    assert [row.split(",")[0] for row in rows] == ['"2026-10-01"'] * 3 + ['"2026-10-02"'] * 3 + ['"2026-10-03"'] * 3
    assert {row.split(",")[1] for row in rows} == {f'"{rep.emu.account.id}"'}
    assert {row.split(",")[3] for row in rows} == {'"Campaign 1"', '"Campaign 2"', '"Campaign 3"'}
    assert lines[columns_at + 10] == ""
    assert lines[columns_at + 11].startswith('"\u00a9') and "Microsoft Corporation. All rights reserved." in lines[-2]
    assert (rep.emu.report_submits, rep.emu.report_polls, rep.emu.report_downloads) == (1, 2, 1)


def test_the_file_a_loader_reads_has_only_columns_and_rows(rep: Reports) -> None:
    report_id = rep.submit(ExcludeReportHeader=True, ExcludeReportFooter=True)
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")

    assert lines[0] == ",".join(f'"{c}"' for c in COLUMNS)
    assert len(lines) == 1 + 9 + 1 and lines[-1] == ""


def test_exclude_column_headers(rep: Reports) -> None:
    report_id = rep.submit(ExcludeReportHeader=True, ExcludeReportFooter=True, ExcludeColumnHeaders=True)
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")

    assert lines[0].startswith('"2026-10-01"')
    assert len(lines) == 9 + 1


def test_tsv_format(rep: Reports) -> None:
    report_id = rep.submit(Format="Tsv", ExcludeReportHeader=True, ExcludeReportFooter=True)
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")

    assert lines[0] == "\t".join(COLUMNS)
    assert lines[1].split("\t")[:2] == ["2026-10-01", rep.emu.account.id]


def test_values_as_microsoft_writes_them(rep: Reports) -> None:
    columns = ["TimePeriod", "Impressions", "Clicks", "Ctr", "Spend", "CostPerConversion", "Conversions"]
    report_id = rep.submit(Columns=columns, ExcludeReportHeader=True, ExcludeReportFooter=True)
    rows = [line.split(",") for line in rep.csv_text(rep.link(report_id)).split("\r\n")[1:-1]]

    for _period, impressions, clicks, ctr, spend, cost_per_conversion, conversions in rows:
        assert int(impressions.strip('"')) >= int(clicks.strip('"'))
        assert ctr.endswith('%"')
        assert "," not in spend and "." in spend
        if conversions == '"0"':
            assert cost_per_conversion == '"--"'


def test_rows_are_deterministic(rep: Reports) -> None:
    first = rep.csv_text(rep.link(rep.submit(ExcludeReportHeader=True)))
    second = rep.csv_text(rep.link(rep.submit(ExcludeReportHeader=True)))

    assert first.split("\r\n")[:-3] == second.split("\r\n")[:-3]  # the footer carries the year only


@pytest.mark.parametrize(
    ("aggregation", "periods"),
    [
        ("Hourly", ["2026-10-01|0", "2026-10-01|1"]),
        ("Weekly", ["2026-09-27"]),
        ("WeeklyStartingMonday", ["2026-09-28"]),
        ("Monthly", ["2026-10-01"]),
    ],
)
def test_time_period_by_aggregation(rep: Reports, aggregation: str, periods: list[str]) -> None:
    report_id = rep.submit(Aggregation=aggregation, ExcludeReportHeader=True, ExcludeReportFooter=True)
    rows = rep.csv_text(rep.link(report_id)).split("\r\n")[1:-1]
    seen = list(dict.fromkeys(row.split(",")[0].strip('"') for row in rows))

    assert seen[: len(periods)] == periods
    if aggregation == "Hourly":
        assert len(rows) == 3 * 24 * 3


def test_without_time_period_the_report_is_a_summary(rep: Reports) -> None:
    report_id = rep.submit(Columns=["CampaignName", "Impressions"], ExcludeReportHeader=True, ExcludeReportFooter=True)
    rows = rep.csv_text(rep.link(report_id)).split("\r\n")[1:-1]

    assert len(rows) == 3


def test_several_accounts_and_account_level_report(rep: Reports) -> None:
    other = rep.emu.add_account()
    report_id = rep.submit(
        Type="AccountPerformanceReportRequest",
        Columns=["TimePeriod", "AccountName", "AccountId", "Impressions"],
        Scope={"AccountIds": [rep.emu.account.id, other.id]},
        ExcludeReportHeader=True,
        ExcludeReportFooter=True,
    )
    rows = rep.csv_text(rep.link(report_id)).split("\r\n")[1:-1]

    assert len(rows) == 3 * 2
    assert {row.split(",")[2].strip('"') for row in rows} == {rep.emu.account.id, other.id}


def test_predefined_time(rep: Reports, clock: FakeClock) -> None:
    clock.now = datetime(2026, 10, 15, 12, tzinfo=timezone.utc).timestamp()
    report_id = rep.submit(
        Time={"PredefinedTime": "LastSevenDays", "ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon"},
        ExcludeReportFooter=True,
    )
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")

    assert lines[1] == '"Report Time: 10/8/2026,10/14/2026"'
    assert '"Rows: 21"' in lines


# ------------------------------------------------------------------ Pending, Error, empty


def test_pending_polls_per_emulator_and_per_request(rep: Reports) -> None:
    rep.emu.report_pending_polls = 3
    report_id = rep.submit()
    rep.emu.configure_next_report(pending_polls=0)
    immediate = rep.submit()

    assert [rep.poll(report_id)["Status"] for _ in range(4)] == ["Pending"] * 3 + ["Success"]
    assert rep.poll(immediate)["Status"] == "Success"
    rep.emu.reports[report_id].pending_polls = 2
    assert rep.poll(report_id)["Status"] == "Pending"


def test_report_ending_in_error(rep: Reports) -> None:
    rep.emu.configure_next_report(status="Error", pending_polls=0)
    report_id = rep.submit()

    assert rep.poll(report_id) == {"Status": "Error", "ReportDownloadUrl": None}


def test_empty_report_has_a_null_url(rep: Reports) -> None:
    rep.emu.set_report_size(rows=0)
    report_id = rep.submit()
    rep.poll(report_id)

    assert rep.poll(report_id) == {"Status": "Success", "ReportDownloadUrl": None}


def test_empty_report_with_the_url_missing(rep: Reports) -> None:
    rep.emu.configure_next_report(rows=0, empty_url="missing", pending_polls=0)
    report_id = rep.submit()

    assert rep.poll(report_id) == {"Status": "Success"}


def test_report_size_knob(rep: Reports) -> None:
    rep.emu.set_report_size(rows=1234)
    report_id = rep.submit(ExcludeReportHeader=True, ExcludeReportFooter=True)

    assert len(rep.csv_text(rep.link(report_id)).split("\r\n")) == 1 + 1234 + 1


def test_poll_of_an_unknown_or_old_request_id(rep: Reports, clock: FakeClock) -> None:
    """SubmitGenerateReport / PollGenerateReport: the id is "up to 40" characters of "any character",
    and "valid for one day" (the older guide said two)."""
    assert_reporting_fault(rep.poll_raw(""), 2100, "InvalidReportId")
    assert_reporting_fault(rep.poll_raw("x" * 41), 2100, "InvalidReportId")
    assert_reporting_fault(rep.poll_raw("not-an-id-we-gave"), 2101, "ReportNotFound")
    assert_reporting_fault(rep.poll_raw("12345"), 2101, "ReportNotFound")
    report_id = rep.submit()
    assert any(c.isalpha() for c in report_id) and "-" in report_id
    clock.advance(24 * 3600 - 60)
    rep._token = None  # the access token died long ago
    assert rep.poll(report_id)["Status"] == "Pending"  # still alive within its day
    clock.advance(61)
    assert_reporting_fault(rep.poll_raw(report_id), 2100, "InvalidReportId")


def test_each_poll_mints_a_fresh_link(rep: Reports) -> None:
    report_id = rep.submit()
    first = rep.link(report_id)
    second = rep.link(report_id)

    assert first != second
    assert rep.csv_text(first) == rep.csv_text(second)


# ------------------------------------------------------------------ the download link


def test_link_expires_after_its_lifetime(rep: Reports, clock: FakeClock) -> None:
    url = rep.link(rep.submit())
    clock.advance(299)
    assert httpx.get(url).status_code == 200
    clock.advance(2)

    response = httpx.get(url)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/xml"
    assert "<Error><Code>AuthenticationFailed</Code>" in response.text


def test_link_lifetime_is_configurable(rep: Reports, clock: FakeClock) -> None:
    rep.emu.report_link_lifetime = 10
    url = rep.link(rep.submit())
    clock.advance(11)

    assert httpx.get(url).status_code == 403


def test_expire_report_links_on_demand_then_poll_again(rep: Reports) -> None:
    report_id = rep.submit()
    url = rep.link(report_id)
    rep.emu.expire_report_links()

    assert "AuthenticationFailed" in httpx.get(url).text
    assert httpx.get(rep.link(report_id)).status_code == 200


def test_unknown_link_and_bad_signature(rep: Reports) -> None:
    url = rep.link(rep.submit())
    unknown = httpx.get(f"{rep.emu.base_url}/download-reports/feedface/1.zip?sig=x")
    forged = httpx.get(url.split("sig=")[0] + "sig=forged")

    assert unknown.status_code == 404 and "<Code>BlobNotFound</Code>" in unknown.text
    assert forged.status_code == 403 and "<Code>AuthenticationFailed</Code>" in forged.text


def test_download_records_credentials_sent_to_the_link(rep: Reports) -> None:
    url = rep.link(rep.submit())
    httpx.get(url)
    assert rep.emu.downloads_with_credentials == 0
    assert rep.emu.download_credential_headers == [[]]

    httpx.get(url, headers={"Authorization": "Bearer x", "DeveloperToken": "y"})

    assert rep.emu.downloads_with_credentials == 1
    assert rep.emu.download_credential_headers[-1] == ["authorization", "developertoken"]


_STREAM_CHECK = r"""
import json, sys, zlib
import httpx
from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator


def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


rows = int(sys.argv[1])
with MicrosoftAdsEmulator() as emu, httpx.Client(timeout=120) as http:
    token = http.post(emu.token_url(), data={
        "grant_type": "refresh_token", "client_id": emu.app.client_id,
        "client_secret": emu.app.client_secret, "refresh_token": emu.issue_refresh_token(),
    }).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "DeveloperToken": emu.developer_token}
    request = {"ReportRequest": {
        "Type": "CampaignPerformanceReportRequest", "Aggregation": "Daily",
        "ExcludeReportHeader": True, "ExcludeReportFooter": True,
        "Columns": ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"],
        "Scope": {"AccountIds": [emu.account.id]},
        "Time": {"CustomDateRangeStart": {"Year": 2026, "Month": 10, "Day": 1},
                 "CustomDateRangeEnd": {"Year": 2026, "Month": 10, "Day": 3}}}}

    def download(size):
        emu.set_report_size(rows=size)
        emu.report_pending_polls = 0
        rid = http.post(f"{emu.reporting_url}/GenerateReport/Submit", json=request, headers=headers).json()
        status = http.post(f"{emu.reporting_url}/GenerateReport/Poll", json=rid, headers=headers).json()
        inflate, zipped, lines, chunked = None, 0, 0, None
        with http.stream("GET", status["ReportRequestStatus"]["ReportDownloadUrl"]) as response:
            chunked = response.headers.get("transfer-encoding")
            for chunk in response.iter_raw(65536):
                zipped += len(chunk)
        return zipped, chunked

    download(1000)  # warm up: imports, pools, thread
    before = peak_kib()
    zipped, chunked = download(rows)
    print(json.dumps({"growth_kib": peak_kib() - before, "zipped": zipped, "chunked": chunked}))
"""


def test_big_report_is_streamed_with_flat_memory(tmp_path: Path) -> None:
    """A fresh process serves a ~75 MB CSV (zip ~30 MB): its peak RSS must not grow by a fraction of it."""
    script = tmp_path / "stream_check.py"
    script.write_text(_STREAM_CHECK)
    rows = 1_000_000
    result = subprocess.run(
        [sys.executable, str(script), str(rows)], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])

    assert figures["chunked"] == "chunked"
    assert figures["zipped"] > 8 * 1024 * 1024
    assert figures["growth_kib"] * 1024 < figures["zipped"] / 2, figures


def test_big_report_has_every_row(rep: Reports, tmp_path: Path) -> None:
    rows = 50_000
    rep.emu.set_report_size(rows=rows)
    url = rep.link(rep.submit(ExcludeReportHeader=True, ExcludeReportFooter=True))
    target = tmp_path / "report.zip"
    with httpx.stream("GET", url) as response, target.open("wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)

    with zipfile.ZipFile(target) as archive:
        [info] = archive.infolist()
        with archive.open(info) as entry:
            assert sum(1 for _ in entry) == 1 + rows


# ------------------------------------------------------------------ refusals at Submit


def test_bad_column_is_microsofts_misleading_null_request(rep: Reports) -> None:
    columns = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impresions"]
    error = assert_reporting_fault(rep.submit_raw(rep.request(Columns=columns)), 100, "NullRequest")

    assert error["Message"] == "The request message is null."
    assert "Path: $.Columns[4]" in error["Details"]


def test_column_of_another_report_type(rep: Reports) -> None:
    error = assert_reporting_fault(rep.submit_raw(rep.request(Columns=["TimePeriod", "Keyword"])), 100, "NullRequest")

    assert "Path: $.Columns[1]" in error["Details"]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"Type": "CampaignPerformanceReport"}, "$.Type"),
        ({"Aggregation": "Fortnightly"}, "$.Aggregation"),
        ({"Format": "Xlsx"}, "$.Format"),
        ({"Scope": {"AccountIds": ["12x"]}}, "$.Scope.AccountIds[0]"),
        ({"Time": {"PredefinedTime": "LastDecade"}}, "$.Time.PredefinedTime"),
        ({"Time": {"PredefinedTime": "Yesterday", "ReportTimeZone": "Mars"}}, "$.Time.ReportTimeZone"),
    ],
)
def test_other_bad_values_are_null_requests_naming_the_path(rep: Reports, overrides: dict[str, Any], path: str) -> None:
    error = assert_reporting_fault(rep.submit_raw(rep.request(**overrides)), 100, "NullRequest")

    assert f"Path: {path} " in error["Details"]


def test_over_1000_accounts(rep: Reports) -> None:
    ids = [str(100000000 + n) for n in range(1001)]

    assert_reporting_fault(rep.submit_raw(rep.request(Scope={"AccountIds": ids})), 2029, "AccountsOverLimit")


def test_account_the_user_cannot_see(rep: Reports) -> None:
    foreign = rep.emu.add_account(parent_customer_id="999999999")

    assert_reporting_fault(
        rep.submit_raw(rep.request(Scope={"AccountIds": [foreign.id]})), 2003, "AccountNotAuthorized"
    )


def test_complete_data_with_today_in_range(rep: Reports, clock: FakeClock) -> None:
    clock.now = datetime(2026, 10, 15, 12, tzinfo=timezone.utc).timestamp()
    time = {
        "CustomDateRangeStart": custom(date(2026, 10, 12)),
        "CustomDateRangeEnd": custom(date(2026, 10, 15)),
        "ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon",
    }

    assert_reporting_fault(
        rep.submit_raw(rep.request(Time=time, ReturnOnlyCompleteData=True)),
        2005,
        "InvalidDataAvailabilityAndTimePeriodCombination",
    )
    time["CustomDateRangeEnd"] = custom(date(2026, 10, 13))
    assert rep.submit_raw(rep.request(Time=time, ReturnOnlyCompleteData=True)).status_code == 200


@pytest.mark.parametrize(
    ("start", "end", "aggregation", "code", "name"),
    [
        (
            {"Year": 2026, "Month": 10, "Day": 3},
            {"Year": 2026, "Month": 10, "Day": 1},
            "Daily",
            2011,
            "EndDateBeforeStartDate",
        ),
        (
            {"Year": 2026, "Month": 13, "Day": 1},
            {"Year": 2026, "Month": 10, "Day": 1},
            "Daily",
            2009,
            "InvalidCustomDateRangeStart",
        ),
        (
            {"Year": 2026, "Month": 10, "Day": 1},
            {"Year": 2026, "Month": 2, "Day": 30},
            "Daily",
            2010,
            "InvalidCustomDateRangeEnd",
        ),
        (
            {"Year": 2026, "Month": 10, "Day": 1},
            {"Year": 2026, "Month": 10, "Day": 16},
            "Daily",
            2010,
            "InvalidCustomDateRangeEnd",
        ),
        (
            {"Year": 2026, "Month": 10, "Day": 16},
            {"Year": 2026, "Month": 10, "Day": 17},
            "Daily",
            2041,
            "InvalidFutureStartDate",
        ),
        (
            {"Year": 2023, "Month": 10, "Day": 1},
            {"Year": 2023, "Month": 10, "Day": 14},
            "Daily",
            2010,
            "InvalidCustomDateRangeEnd",
        ),
        (
            {"Year": 2026, "Month": 4, "Day": 1},
            {"Year": 2026, "Month": 4, "Day": 14},
            "Hourly",
            2010,
            "InvalidCustomDateRangeEnd",
        ),
    ],
)
def test_date_range_problems(
    rep: Reports,
    clock: FakeClock,
    start: dict[str, int],
    end: dict[str, int],
    aggregation: str,
    code: int,
    name: str,
) -> None:
    clock.now = datetime(2026, 10, 15, 12, tzinfo=timezone.utc).timestamp()
    time = {"CustomDateRangeStart": start, "CustomDateRangeEnd": end}

    assert_reporting_fault(rep.submit_raw(rep.request(Time=time, Aggregation=aggregation)), code, name)


def test_retention_limits_are_inclusive(rep: Reports, clock: FakeClock) -> None:
    clock.now = datetime(2026, 10, 15, 12, tzinfo=timezone.utc).timestamp()
    daily = {"CustomDateRangeStart": custom(date(2023, 10, 15)), "CustomDateRangeEnd": custom(date(2023, 10, 16))}
    hourly = {"CustomDateRangeStart": custom(date(2026, 4, 15)), "CustomDateRangeEnd": custom(date(2026, 4, 15))}

    assert rep.submit_raw(rep.request(Time=daily)).status_code == 200
    assert rep.submit_raw(rep.request(Time=hourly, Aggregation="Hourly")).status_code == 200


# ------------------------------------------------------------------ headers, as Customer Management


def test_header_checks(rep: Reports) -> None:
    good = rep.headers
    request = rep.request()

    missing = rep.submit_raw(request, headers={"DeveloperToken": good["DeveloperToken"]})
    bad_token = rep.submit_raw(request, headers={**good, "Authorization": "Bearer nope"})
    bad_developer_token = rep.submit_raw(request, headers={**good, "DeveloperToken": "NOPE"})
    other_customer = rep.submit_raw(request, headers={**good, "CustomerId": "999999999"})
    other_account = rep.submit_raw(request, headers={**good, "CustomerAccountId": "999999999"})

    assert [r.json()["Errors"][0]["Code"] for r in (missing, bad_token, bad_developer_token)] == [116, 105, 105]
    assert [r.json()["Errors"][0]["Code"] for r in (other_customer, other_account)] == [106, 106]
    assert all(r.headers["TrackingId"] for r in (missing, bad_token, other_customer))


def test_expired_access_token(rep: Reports) -> None:
    report_id = rep.submit()
    rep.emu.expire_access_tokens()
    response = rep.poll_raw(report_id)

    assert response.status_code == 401
    assert response.json()["Errors"][0]["ErrorCode"] == "AuthenticationTokenExpired"


# ------------------------------------------------------------------ injected faults


@pytest.mark.parametrize(
    ("code", "shape", "error_code"),
    [
        (117, "AdApiFaultDetail", "CallRateExceeded"),
        (207, "ApiFaultDetail", "ConcurrentRequestOverLimit"),
        (105, "AdApiFaultDetail", "InvalidCredentials"),
        (109, "AdApiFaultDetail", "AuthenticationTokenExpired"),
        (0, "AdApiFaultDetail", "InternalError"),
    ],
)
def test_injected_faults_on_submit(rep: Reports, code: int, shape: str, error_code: str) -> None:
    rep.emu.inject("reporting", "fault", code=code, operation="SubmitGenerateReport")
    response = rep.submit_raw(rep.request())
    body = response.json()

    assert body["Type"] == shape
    errors = body["Errors"] if shape == "AdApiFaultDetail" else body["OperationErrors"]
    assert (errors[0]["Code"], errors[0]["ErrorCode"]) == (code, error_code)
    assert response.headers["TrackingId"] == body["TrackingId"]
    assert rep.submit_raw(rep.request()).status_code == 200


def test_injection_narrowed_to_poll(rep: Reports) -> None:
    rep.emu.inject("reporting", "fault", code=117, operation="PollGenerateReport", retry_after=0.5)
    report_id = rep.submit()
    throttled = rep.poll_raw(report_id)

    assert throttled.status_code == 400 and throttled.headers["Retry-After"] == "0.5"
    assert rep.poll(report_id)["Status"] in ("Pending", "Success")


def test_injected_server_error(rep: Reports) -> None:
    rep.emu.inject("reporting", "status", status=500)

    assert rep.submit_raw(rep.request()).status_code == 500


def test_injected_download_faults(rep: Reports) -> None:
    url = rep.link(rep.submit())
    for kind in ("expired_link", "xml_error", "two_entries", "zip_bomb", "not_zip", "malformed"):
        rep.emu.inject("download", kind)
    rep.emu.inject("download", "html", status=200)

    expired = httpx.get(url)
    assert expired.status_code == 403 and "<Code>AuthenticationFailed</Code>" in expired.text
    xml = httpx.get(url)
    assert xml.status_code == 404 and xml.headers["content-type"] == "application/xml"
    assert zipfile.ZipFile(io.BytesIO(httpx.get(url).content)).namelist() == ["report.csv", "extra.csv"]
    bomb = zipfile.ZipFile(io.BytesIO(httpx.get(url).content)).infolist()[0]
    assert bomb.file_size / bomb.compress_size > 500
    for _ in ("not_zip", "malformed"):
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(httpx.get(url).content)).testzip()
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert httpx.get(url).status_code == 200  # injections used up: the real file again
    assert rep.emu.report_downloads == 8


def test_injection_arguments_are_checked(msads_emulator: MicrosoftAdsEmulator) -> None:
    with pytest.raises(ValueError, match="applies to endpoint 'download'"):
        msads_emulator.inject("reporting", "zip_bomb")
    with pytest.raises(ValueError, match="operation only narrows"):
        msads_emulator.inject("reporting", "fault", operation="GetUser")
    with pytest.raises(ValueError, match="applies to endpoints 'api' and 'reporting'"):
        msads_emulator.inject("download", "fault")
    with pytest.raises(ValueError, match="rows"):
        msads_emulator.set_report_size(rows=-1)
    with pytest.raises(ValueError, match="empty_url"):
        msads_emulator.configure_next_report(empty_url="absent")


# ------------------------------------------------------------- Microsoft's shapes (issue #27)


def test_every_report_types_full_column_list_reads_as_typed_parquet(rep: Reports, tmp_path: Path) -> None:
    """Each report type with ALL its columns, through the emulator and the Parquet writer (a
    user's own test with ``output_format="parquet"`` does exactly this): every value has the shape
    Microsoft's column definitions give it, so the typed file is written and its types are the
    client's kinds."""
    import pyarrow.parquet as pq

    from airflow_provider_msads.reporting.columns import column_kind
    from airflow_provider_msads.reporting.parquet import write_parquet
    from airflow_provider_msads.testing.emulator import _reporting_catalogue as catalogue

    rep.emu.set_report_size(rows=14)  # a few rows: enough for every value variant of the pool
    day = {"Year": 2026, "Month": 10, "Day": 1}
    for report_type, columns in catalogue.COLUMNS.items():
        aggregation = "Daily" if "TimePeriod" in columns else "Summary"
        report_id = rep.submit(
            Type=report_type,
            Columns=list(columns),
            Aggregation=aggregation,
            ExcludeReportHeader=True,
            ExcludeReportFooter=True,
            Time={"CustomDateRangeStart": day, "CustomDateRangeEnd": day},
        )
        text = rep.csv_text(rep.link(report_id))
        target = tmp_path / f"{report_type}.parquet"
        result = write_parquet(io.BytesIO(text.encode()), str(target), columns=[], aggregation=aggregation)
        table = pq.read_table(target)
        assert result.rows == table.num_rows == 14, report_type
        assert [f["kind"] for f in result.schema] == [column_kind(c) for c in columns]
        for field in result.schema:
            assert field["type"] == str(table.schema.field(field["name"]).type), (report_type, field)
        if "QualityScore" in columns:
            scores = [s for s in table.column("QualityScore").to_pylist() if s is not None]
            assert scores and all(1 <= s <= 10 for s in scores)


def test_value_shapes_follow_the_column_definitions(rep: Reports) -> None:
    """QualityScore 1-10 or "--"; the quartile views counts; Ctr with ``%``; impression shares and
    VideoCompletionRate percentage points without it (an impression share "empty if the data is not
    available"); ViewThroughRate a fraction; no money value with thousands separators."""
    rep.emu.set_report_size(rows=60)
    columns = ["TimePeriod", "KeywordId", "QualityScore", "Impressions"]
    rows = rep.rows(rep.submit(Type="KeywordPerformanceReportRequest", Columns=columns))
    scores = {r["QualityScore"] for r in rows}
    assert scores - {"--"} and all(s == "--" or 1 <= int(s) <= 10 for s in scores) and "--" in scores

    columns = ["TimePeriod", "AdGroupId", "Ctr", "ImpressionSharePercent", "Spend"]
    rows = rep.rows(rep.submit(Type="AdGroupPerformanceReportRequest", Columns=columns))
    assert all(r["Ctr"].endswith("%") for r in rows)
    assert all(r["ImpressionSharePercent"] == "" or float(r["ImpressionSharePercent"]) <= 100 for r in rows)
    assert "" in {r["ImpressionSharePercent"] for r in rows}
    assert all("," not in r["Spend"] for r in rows)

    video = ["TimePeriod", "AccountId", "VideoViewsAt25Percent", "VideoCompletionRate", "ViewThroughRate"]
    rows = rep.rows(rep.submit(Type="AccountPerformanceReportRequest", Columns=video))
    for row in rows:
        assert row["VideoViewsAt25Percent"].isdigit()
        assert not row["VideoCompletionRate"].endswith("%") and float(row["VideoCompletionRate"]) <= 100
        assert 0 <= float(row["ViewThroughRate"]) < 1


def test_header_block_and_footer_as_microsoft_writes_them(rep: Reports, clock: FakeClock) -> None:
    """guides/reports.md, Report File Schema: nine header lines, a blank line, the columns, the rows,
    a blank line and the copyright footer; ReportTimeZone's default is Pacific time."""
    clock.now = datetime(2026, 10, 20, 15, 40, tzinfo=timezone.utc).timestamp()
    day = {"Year": 2026, "Month": 10, "Day": 1}
    lines = rep.csv_text(rep.link(rep.submit(Time={"CustomDateRangeStart": day, "CustomDateRangeEnd": day})))
    lines = lines.split("\r\n")
    assert lines[:10] == [
        '"Report Name: campaign_daily"',
        '"Report Time: 10/1/2026"',  # one day: one date
        '"Time Zone: (GMT-08:00) Pacific Time (US & Canada); Tijuana"',
        '"Last Completed Available Day: 10/20/2026 12:00:00 PM (GMT)"',
        '"Last Completed Available Hour: 10/20/2026 12:00:00 PM (GMT)"',
        '"Report Aggregation: Daily"',
        '"Report Filter: "',
        '"Potential Incomplete Data: false"',
        '"Rows: 3"',
        "",
    ]
    assert lines[-3:] == ["", '"\u00a92026 Microsoft Corporation. All rights reserved. "', ""]


@pytest.mark.parametrize(("header", "footer"), [(False, False), (True, False), (False, True), (True, True)])
def test_exclude_report_header_and_footer_each_on_its_own(rep: Reports, header: bool, footer: bool) -> None:
    """ReportRequest.ExcludeReportHeader / ExcludeReportFooter: each drops only its own block, so a
    client may ask for the header (to read it) and not the footer."""
    lines = rep.csv_text(rep.link(rep.submit(ExcludeReportHeader=header, ExcludeReportFooter=footer))).split("\r\n")
    columns_row = ",".join(f'"{c}"' for c in COLUMNS)
    assert (lines[0] == columns_row) is header
    assert lines[0].startswith('"Report Name: ') is not header
    assert ("Microsoft Corporation. All rights reserved." in lines[-2]) is not footer
    assert lines[-1] == "" and (lines[-3] == "") is not footer  # a blank line before the footer


@pytest.mark.parametrize(
    ("aggregation", "periods", "incomplete"),
    [
        # Wednesday 10/7 to Thursday 10/8, 2026: the week of Sunday 10/4 (Monday 10/5)
        ("Weekly", ["2026-10-04"], "false"),
        ("WeeklyStartingMonday", ["2026-10-05"], "false"),
        ("Monthly", ["2026-10-01"], "true"),  # the whole of October: not over on 10/20
        ("Yearly", ["2026"], "true"),  # "formatted as yyyy"
    ],
)
def test_weeks_months_and_years_are_whole(
    rep: Reports, clock: FakeClock, aggregation: str, periods: list[str], incomplete: str
) -> None:
    """ReportAggregation: "If the selected dates are not full weeks/months/years ... the selected
    dates will be converted to full weeks/months/years"; Weekly runs "from Sunday through Saturday",
    WeeklyStartingMonday "from Monday through Sunday"."""
    clock.now = datetime(2026, 10, 20, 12, tzinfo=timezone.utc).timestamp()
    report_id = rep.submit(
        Aggregation=aggregation,
        ExcludeReportFooter=True,
        Time={"CustomDateRangeStart": custom(date(2026, 10, 7)), "CustomDateRangeEnd": custom(date(2026, 10, 8))},
    )
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")
    assert f'"Potential Incomplete Data: {incomplete}"' in lines
    rows = lines[lines.index(",".join(f'"{c}"' for c in COLUMNS)) + 1 : -1]
    assert list(dict.fromkeys(r.split(",")[0].strip('"') for r in rows)) == periods
    assert len(rows) == 3 * len(periods)


@pytest.mark.parametrize(
    ("report_type", "columns", "aggregation"),
    [
        ("BudgetSummaryReportRequest", ["AccountName", "Date", "DailySpend"], "Monthly"),
        ("BudgetSummaryReportRequest", ["AccountName", "Date", "DailySpend"], "Hourly"),
        ("ShareOfVoiceReportRequest", ["TimePeriod", "AccountName", "Impressions"], "Hourly"),
    ],
)
def test_not_applicable_aggregations_are_refused(
    rep: Reports, report_type: str, columns: list[str], aggregation: str
) -> None:
    """Reporting Data Retention Time Periods: Budget Summary keeps Daily data only ("Not Applicable"
    for Hourly, Weekly, Monthly, Yearly and Summary), Share of Voice no Hourly data."""
    response = rep.submit_raw(rep.request(Type=report_type, Columns=columns, Aggregation=aggregation))
    assert_reporting_fault(response, 2059, "UnsuportedTimeGrain")
    assert rep.submit(Type=report_type, Columns=columns, Aggregation="Daily")
