"""Right on Microsoft's own files (issue 27): header and footer, whole periods, id lifetime, the
file contract, batches that join, retention cells, and files shaped like Microsoft's.

Each expectation comes from a Microsoft page (docs/microsoft-fidelity.md) or from a file as
Microsoft writes it (Reports guide, "Report File Schema"), not from the emulator.
"""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_msads import reporting as rp
from airflow_provider_msads.errors.catalogue import REPORTING_CATALOGUE
from airflow_provider_msads.operators._report_outputs import merge_complete, request_dates
from airflow_provider_msads.reporting import download as dl
from airflow_provider_msads.reporting.batches import join_csv_parts
from airflow_provider_msads.reporting.periods import FILE_CONTRACT, REQUEST_ID_LIFETIME, books_closed, covered_dates
from airflow_provider_msads.reporting.resume import RESUME_MAX_AGE, ResumeSeal, fingerprint

TODAY = datetime.date(2026, 11, 15)
COLUMNS = ["TimePeriod", "AccountId", "CampaignName", "Impressions", "Ctr", "Spend"]
HOURLY = ["TimePeriod", "AccountId", "CampaignName", "Impressions", "Ctr", "Spend"]

#: Microsoft's header lines, as the Reports guide's "Report File Schema" shows them.
HEADER = (
    '"Report Name: My Campaign Report"\r\n'
    '"Report Time: 11/1/2026,11/2/2026"\r\n'
    '"Time Zone: (GMT) Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London"\r\n'
    '"Last Completed Available Day: 11/2/2026 10:15:00 PM (GMT)"\r\n'
    '"Last Completed Available Hour: 11/2/2026 10:15:00 PM (GMT)"\r\n'
    '"Report Aggregation: Hourly"\r\n'
    '"Report Filter: "\r\n'
    '"Potential Incomplete Data: {flag}"\r\n'
    '"Rows: 4"\r\n'
    "\r\n"
)
COLUMN_ROW = '"TimePeriod","AccountId","CampaignName","Impressions","Ctr","Spend"\r\n'
ROWS = (
    '"2026-11-01|7","123","Shoes, red","1200","3.96%","12.50"\r\n'
    '"2026-11-01|01","123","He said ""hi""","--","--","--"\r\n'
    '"2026-11-02|23","123","Multi\r\nline","7","0.00%","0.00"\r\n'
    '"2026-11-02|0","123","Plain","1000","100.00%","1000.00"'  # Microsoft's last row: no line break
)
FOOTER = '\r\n\r\n"\u00a92026 Microsoft Corporation. All rights reserved. "\r\n'


def microsoft_file(*, flag: str = "true", header: bool = True, footer: bool = True, rows: str = ROWS) -> bytes:
    text = "\ufeff" + (HEADER.format(flag=flag) if header else "") + COLUMN_ROW + rows + (FOOTER if footer else "")
    return text.encode("utf-8")


def _zip(tmp_path: Path, data: bytes, name: str = "report.zip") -> str:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("123456.csv", data)
    return str(path)


def _unpacked(tmp_path: Path, data: bytes, **kw: Any) -> rp.DownloadResult:
    return dl._publish_csv(_zip(tmp_path, data), str(tmp_path / "out.csv"), kw.get("compression"), None)


def _records(path: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(Path(path).read_text("utf-8"), newline="")))


# ------------------------------------------------------------------- 1. header read, then stripped


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1024 * 1024])
def test_header_and_footer_are_read_and_stripped_whatever_the_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(dl, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(dl, "FOOTER_HOLD", 128)  # more than the footer, less than the file: chunks cross it
    result = _unpacked(tmp_path, microsoft_file(flag="true"))
    data = Path(result.path).read_bytes()
    assert data.startswith(COLUMN_ROW.encode())  # column row first, no BOM, no header
    assert b"Microsoft Corporation" not in data and b"Report Name" not in data
    assert data == (COLUMN_ROW + ROWS + "\r\n").encode()  # the footer's blank line is gone too
    assert result.rows == 4 and result.csv_bytes == len(data)
    assert result.complete is False
    assert result.report_header["Last Completed Available Day"] == "11/2/2026 10:15:00 PM (GMT)"
    assert result.report_header["Report Time"] == "11/1/2026,11/2/2026"


def test_complete_follows_potential_incomplete_data(tmp_path: Path) -> None:
    assert _unpacked(tmp_path, microsoft_file(flag="false")).complete is True
    assert _unpacked(tmp_path, microsoft_file(flag="true")).complete is False
    no_header = _unpacked(tmp_path, microsoft_file(header=False, footer=False))
    assert no_header.complete is None and no_header.report_header == {}
    assert Path(no_header.path).read_bytes() == (COLUMN_ROW + ROWS).encode()  # passed through as is


def test_an_empty_report_with_header_and_footer_is_the_column_row(tmp_path: Path) -> None:
    result = _unpacked(tmp_path, microsoft_file(rows="").replace(b"Rows: 4", b"Rows: 0"))
    assert Path(result.path).read_bytes() == COLUMN_ROW.encode() and result.rows == 0


def test_a_last_row_that_mentions_microsoft_is_data_not_footer(tmp_path: Path) -> None:
    rows = '"2026-11-01|7","123","\u00a9 Microsoft Corporation","1","0.00%","0.00"\r\n'
    result = _unpacked(tmp_path, microsoft_file(rows=rows, footer=False, header=False))
    assert result.rows == 1 and Path(result.path).read_bytes() == (COLUMN_ROW + rows).encode()


def test_the_request_asks_for_header_and_footer() -> None:
    request = _request()
    assert (request["ExcludeReportHeader"], request["ExcludeReportFooter"]) == (False, False)


# ------------------------------------------------------------ 7. the same file through CSV and Parquet


def test_a_microsoft_shaped_file_through_the_csv_path(tmp_path: Path) -> None:
    result = _unpacked(tmp_path, microsoft_file(), compression="gzip")
    import gzip

    records = list(csv.reader(io.StringIO(gzip.decompress(Path(result.path).read_bytes()).decode(), newline="")))
    assert records[0] == COLUMNS
    assert records[1] == ["2026-11-01|7", "123", "Shoes, red", "1200", "3.96%", "12.50"]
    assert records[2][2:4] == ['He said "hi"', "--"] and records[3][2] == "Multi\r\nline"
    assert len(records) - 1 == result.rows == 4


def test_a_microsoft_shaped_file_through_the_parquet_path(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from airflow_provider_msads.reporting.parquet import write_parquet

    csv_file = _unpacked(tmp_path, microsoft_file())
    with open(csv_file.path, "rb") as handle:
        written = write_parquet(handle, str(tmp_path / "out.parquet"), columns=HOURLY, aggregation="Hourly")
    table = pq.read_table(written.path).to_pylist()
    assert written.rows == 4 == len(table)
    assert table[0]["CampaignName"] == "Shoes, red" and table[1]["CampaignName"] == 'He said "hi"'
    assert table[1]["Impressions"] is None and table[1]["Spend"] is None  # "--" is no value
    assert table[0]["Ctr"] == pytest.approx(0.0396) and table[3]["Ctr"] == pytest.approx(1.0)
    hours = [row["TimePeriod"] for row in table]
    assert [(h.day, h.hour) for h in hours] == [(1, 7), (1, 1), (2, 23), (2, 0)]  # "|7" and "|01" alike


# ------------------------------------------------------------------------------- 2. whole periods


@pytest.mark.parametrize(
    ("aggregation", "first", "last", "covered"),
    [
        # 2026-11-04 is a Wednesday: Weekly runs Sunday..Saturday, WeeklyStartingMonday Monday..Sunday.
        ("Weekly", "2026-11-04", "2026-11-04", ("2026-11-01", "2026-11-07")),
        ("WeeklyStartingMonday", "2026-11-04", "2026-11-04", ("2026-11-02", "2026-11-08")),
        ("Weekly", "2026-11-01", "2026-11-07", ("2026-11-01", "2026-11-07")),  # whole already
        ("WeeklyStartingMonday", "2026-11-01", "2026-11-09", ("2026-10-26", "2026-11-15")),
        ("Monthly", "2026-02-10", "2026-02-11", ("2026-02-01", "2026-02-28")),
        ("Monthly", "2024-01-31", "2024-02-01", ("2024-01-01", "2024-02-29")),
        ("Yearly", "2025-06-15", "2026-01-02", ("2025-01-01", "2026-12-31")),
        ("Daily", "2026-11-04", "2026-11-05", ("2026-11-04", "2026-11-05")),
        ("Summary", "2026-11-04", "2026-11-05", ("2026-11-04", "2026-11-05")),
    ],
)
def test_weekly_monthly_yearly_cover_whole_periods(aggregation: str, first: str, last: str, covered: tuple) -> None:
    dates = covered_dates(aggregation, datetime.date.fromisoformat(first), datetime.date.fromisoformat(last))
    assert tuple(d.isoformat() for d in dates) == covered


def test_without_a_time_period_column_nothing_is_widened() -> None:
    """ReportAggregation: dates are converted 'if ... the corresponding time period column is requested'."""
    day = datetime.date(2026, 11, 4)
    assert covered_dates("Monthly", day, day, ["AccountId", "Impressions"]) == (day, day)


def test_the_event_period_is_the_covered_days_and_keeps_the_asked_ones() -> None:
    period = request_dates(_request(aggregation="Monthly", date_from="2026-10-05", date_to="2026-10-06"))
    assert (period["date_from"], period["date_to"]) == ("2026-10-01", "2026-10-31")
    assert (period["asked_date_from"], period["asked_date_to"]) == ("2026-10-05", "2026-10-06")
    daily = request_dates(_request(date_from="2026-10-05", date_to="2026-10-06"))
    assert (daily["date_from"], daily["date_to"]) == ("2026-10-05", "2026-10-06") and "asked_date_from" not in daily


def test_books_close_three_hours_after_the_day_ends_in_the_westernmost_zone() -> None:
    day = datetime.date(2026, 11, 1)
    utc = datetime.timezone.utc
    assert not books_closed(day, datetime.datetime(2026, 11, 2, 0, 0, tzinfo=utc))  # midnight UTC: not yet
    assert not books_closed(day, datetime.datetime(2026, 11, 2, 14, 59, tzinfo=utc))
    assert books_closed(day, datetime.datetime(2026, 11, 2, 15, 0, tzinfo=utc))  # UTC-12 midnight + 3 h


def test_several_files_are_complete_only_when_all_are() -> None:
    assert merge_complete([True, True]) is True
    assert merge_complete([True, False]) is False
    assert merge_complete([True, None]) is None and merge_complete([]) is None


# -------------------------------------------------------------------------------- 3. id lifetime


def test_report_ids_live_one_day_and_resume_only_within_it() -> None:
    """SubmitGenerateReport: 'The identifier is valid for a maximum of one day.'"""
    assert datetime.timedelta(days=1) == REQUEST_ID_LIFETIME
    assert RESUME_MAX_AGE < 24 * 3600
    seal = ResumeSeal("secret", "msads_default", "client", "state-key")
    fp = fingerprint({"Type": "CampaignPerformanceReportRequest"}, "msads_default")
    opaque = "Xy/9+_-=:;, {}[]\u00e9" + "a" * 22  # 'up to 40 and can contain any character'
    sealed = seal.seal(opaque, fp, now=0.0)
    state, why = seal.open(sealed, fp, now=20 * 3600.0)
    assert state is not None and state.request_id == opaque, why
    state, why = seal.open(sealed, fp, now=25 * 3600.0)
    assert state is None and "one day" in why
    assert "one day" in REPORTING_CATALOGUE[2100].meaning


def test_a_non_numeric_report_id_is_polled_as_given() -> None:
    import httpx

    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        seen.append(body)
        if request.url.path.endswith("/GenerateReport/Submit"):
            return httpx.Response(200, json={"ReportRequestId": "ab_12-XY/=="})
        return httpx.Response(
            200, json={"ReportRequestStatus": {"Status": "Success", "ReportDownloadUrl": "https://x.invalid/r.zip"}}
        )

    reporting = rp.Reporting("https://reporting.api.bingads.microsoft.com/Reporting/v13")
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        request_id = reporting.submit(client, _request())
        status = reporting.poll(client, request_id)
    assert request_id == "ab_12-XY/==" and status.request_id == "ab_12-XY/=="
    assert seen[-1] == {"ReportRequestId": "ab_12-XY/=="}


# -------------------------------------------------------------------------- 4. the file contract


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ExcludeReportHeader", True),
        ("ExcludeReportFooter", True),
        ("ExcludeColumnHeaders", True),
        ("Format", "Tsv"),
        ("FormatVersion", "1.0"),
    ],
)
def test_overrides_that_break_the_file_are_refused_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(rp.ReportRequestError) as caught:
        _request(report_request={key: value})
    assert caught.value.field == f"report_request.{key}"
    assert key in str(caught.value) and f'Remove "{key}"' in str(caught.value)
    with pytest.raises(rp.ReportRequestError):  # also when the whole request is checked
        rp.check_report_request({**_request(), key: value}, today=TODAY)


def test_the_contracts_own_values_are_accepted() -> None:
    request = _request(report_request=dict(FILE_CONTRACT))
    rp.check_report_request(request, today=TODAY)
    rp.check_report_request(_request(report_request={"ExcludeReportHeader": "false", "Format": "csv"}), today=TODAY)


# ------------------------------------------------------------------------------ 5. batches join


def test_parts_without_a_final_newline_join_cleanly(tmp_path: Path) -> None:
    parts = []
    for index, rows in enumerate(['"2026-11-01","1"\r\n"2026-11-01","2"', '"2026-11-01","3"', "", '"2026-11-01","4"']):
        path = tmp_path / f"part-{index}.csv"
        path.write_bytes(('"TimePeriod","AccountId"' + ("\r\n" + rows if rows else "")).encode())
        parts.append((str(path), rows.count("\n") + (1 if rows else 0)))
    joined = join_csv_parts(parts, str(tmp_path / "all.csv"), columns=["TimePeriod", "AccountId"])
    records = _records(joined.path)
    assert records == [["TimePeriod", "AccountId"]] + [["2026-11-01", str(i)] for i in (1, 2, 3, 4)]
    assert joined.rows == 4 and joined.csv_bytes == Path(joined.path).stat().st_size


def test_parquet_parts_without_a_final_newline_join_cleanly(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from airflow_provider_msads.reporting.parquet import write_parquet

    handles = [
        io.BytesIO(b'"TimePeriod","AccountId","Impressions"\r\n"2026-11-01","1","10"'),
        io.BytesIO(b'"TimePeriod","AccountId","Impressions"\r\n"2026-11-01","2","20"'),
    ]
    written = write_parquet(handles, str(tmp_path / "all.parquet"), columns=["TimePeriod", "AccountId", "Impressions"])
    assert [r["Impressions"] for r in pq.read_table(written.path).to_pylist()] == [10, 20]


# ------------------------------------------------------------------- 6. retention cells and end date


@pytest.mark.parametrize(
    ("report_type", "aggregation"),
    [
        ("BudgetSummaryReportRequest", "Hourly"),
        ("BudgetSummaryReportRequest", "Monthly"),
        ("BudgetSummaryReportRequest", "Summary"),
        ("ShareOfVoiceReportRequest", "Hourly"),
        ("ShareOfVoiceReportRequest", "HourOfDay"),
    ],
)
def test_not_applicable_retention_cells_are_refused(report_type: str, aggregation: str) -> None:
    columns = ["AccountId", "Impressions"] + ([] if aggregation == "Summary" else ["TimePeriod"])
    predefined = {"predefined_time": "Yesterday", "date_from": None, "date_to": None}
    request = _request(report_type=report_type, aggregation=aggregation, columns=columns, **predefined)
    with pytest.raises(rp.ReportRequestError) as caught:
        rp.check_report_request(request, today=TODAY)
    assert caught.value.field == "aggregation" and 2059 in caught.value.codes
    assert "Not Applicable" in str(caught.value)


def test_budget_summary_daily_and_share_of_voice_daily_pass() -> None:
    for report_type in ("BudgetSummaryReportRequest", "ShareOfVoiceReportRequest"):
        rp.check_report_request(_request(report_type=report_type), today=TODAY)


def test_an_end_date_after_today_is_refused() -> None:
    """ReportTime: 'The end date cannot be later than today's date.'"""
    with pytest.raises(rp.ReportRequestError) as caught:
        rp.check_report_request(_request(date_from="2026-11-10", date_to="2026-11-16"), today=TODAY)
    assert caught.value.field == "date_to" and "today" in str(caught.value)
    rp.check_report_request(_request(date_from="2026-11-10", date_to="2026-11-15"), today=TODAY)


# ---------------------------------------------------------------------------------------- helpers


def _request(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "default_account_id": "123456789",
        "date_from": "2026-11-01",
        "date_to": "2026-11-07",
    }
    args.update(kw)
    return rp.build_report_request(**args)
