"""Completeness and the covered days, end to end (issue 27): the operator asks for the report
header, reads Microsoft's "Potential Incomplete Data" and strips header and footer; the result
says ``complete`` and the days the file covers. Against the emulator over a real socket."""

from __future__ import annotations

import csv
import datetime
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from _support.fakes import FakeTI

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

pytestmark = pytest.mark.integration

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "Impressions", "Clicks"]


def _run(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "task_id": "report",
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "destination": str(tmp_path / "report.csv"),
        "poll_interval": 0.01,
        "timeout": 30,
    }
    args.update(changes)
    result: dict[str, Any] = MicrosoftAdsReportOperator(**args).execute({"ti": FakeTI()})
    return result


def _logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """The task log: stdlib logging on Airflow 2.11, structlog to stdout on 3.x."""
    return caplog.text + capsys.readouterr().out


def _records(path: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(Path(path).read_text("utf-8"), newline="")))


def test_a_closed_day_is_complete_and_the_header_is_not_in_the_file(msads_emulator, report_conn, tmp_path: Path):
    result = _run(tmp_path, date_from="2026-10-01", date_to="2026-10-02")
    report = msads_emulator.reports[result["report_request_id"]]
    assert report.exclude_report_header is False and report.exclude_report_footer is False
    assert result["complete"] is True
    assert (result["date_from"], result["date_to"]) == ("2026-10-01", "2026-10-02")
    data = Path(result["path"]).read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and b"Report Name" not in data and b"Microsoft Corporation" not in data
    records = _records(result["path"])
    assert records[0] == COLUMNS and result["rows"] == len(records) - 1 > 0


def test_today_is_reported_incomplete(msads_emulator, report_conn, tmp_path: Path, caplog, capsys):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    with caplog.at_level(logging.WARNING):
        result = _run(tmp_path, date_from=today - datetime.timedelta(days=1), date_to=today)
    assert result["complete"] is False and result["rows"] > 0
    assert _records(result["path"])[0] == COLUMNS
    assert "may not be complete" in _logged(caplog, capsys)


def test_monthly_covers_whole_months(msads_emulator, report_conn, tmp_path: Path, caplog, capsys):
    with caplog.at_level(logging.WARNING):
        result = _run(tmp_path, aggregation="Monthly", date_from="2026-10-05", date_to="2026-10-06")
    assert (result["date_from"], result["date_to"]) == ("2026-10-01", "2026-10-31")
    assert "covers 2026-10-01..2026-10-31, not the 2026-10-05..2026-10-06 asked" in _logged(caplog, capsys)
