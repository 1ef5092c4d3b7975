"""Reports by Microsoft's rules, end to end (issue 17): real Airflow, the emulator over a socket, real files.

Default dates of scheduled runs (UTC and America/Los_Angeles), 2004 left to the task's retries, a
dead request id forgotten, a forged resume Variable refused, an empty account list refused.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from _support.dags import load_dag, report_dag_source
from _support.fakes import FakeTI

from airflow_provider_msads.operators.reporting import STATE_VARIABLE_PREFIX, MicrosoftAdsReportOperator

pytestmark = pytest.mark.integration

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")


def _dag(dags_folder: Path, dag_id: str, tmp_path: Path, *, tz: str = "UTC", retries: int = 0, **extra: Any):
    path = dags_folder / f"{dag_id}.py"
    path.write_text(
        report_dag_source(
            dag_id,
            tz=tz,
            columns=COLUMNS,
            destination=f"{tmp_path}/out.csv",
            poll_interval=0.01,
            timeout=30,
            retries=retries,
            retry_delay=datetime.timedelta(seconds=0),
            **extra,
        )
    )
    return load_dag(path, dag_id)


def _test(dag, when: datetime.datetime):
    """``dag.test()`` at ``when`` (the keyword is ``execution_date`` on Airflow 2)."""
    from airflow import __version__

    if __version__.startswith("2."):
        return dag.test(execution_date=when)
    return dag.test(logical_date=when)


def _report_ti(run):
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = next(t for t in run.get_task_instances(session=session) if t.task_id == "report")
        session.expunge(ti)
        return ti


@pytest.mark.parametrize(
    ("tz", "run_at_utc"),
    [
        ("UTC", datetime.datetime(2026, 11, 2, tzinfo=datetime.timezone.utc)),
        # Local midnight in Los Angeles (PST) is 08:00 UTC: dates taken from UTC would give 11-02 too.
        ("America/Los_Angeles", datetime.datetime(2026, 11, 2, 8, tzinfo=datetime.timezone.utc)),
    ],
)
def test_daily_run_at_midnight_asks_for_yesterday(
    dags_folder: Path, msads_emulator, report_conn, tmp_path: Path, tz: str, run_at_utc: datetime.datetime
):
    """Airflow 3's @daily has a zero-length interval; Airflow 2's is the day before: both mean 11-01."""
    dag_id = "msads_dates_" + tz.replace("/", "_").lower()
    run = _test(_dag(dags_folder, dag_id, tmp_path, tz=tz), run_at_utc)
    assert str(run.state) == "success"
    (report,) = msads_emulator.reports.values()
    assert (report.start, report.end) == (datetime.date(2026, 11, 1), datetime.date(2026, 11, 1))
    expected_zone = "PacificTimeUSCanadaTijuana" if tz != "UTC" else "GreenwichMeanTimeDublinEdinburghLisbonLondon"
    assert report.request["Time"]["ReportTimeZone"] == expected_zone


@pytest.mark.parametrize("with_account", [False, True])
def test_campaign_scoped_report_holds_only_that_campaign(
    dags_folder: Path, msads_emulator, report_conn, tmp_path: Path, with_account: bool
):
    """'The report scope includes a union of the AccountIds and Campaigns elements.'"""
    import csv

    chosen, *others = msads_emulator.campaign_ids()
    extra: dict[str, Any] = {"campaign_ids": [int(chosen)]}
    if with_account:  # the union, as Microsoft defines it: every campaign of the account
        extra["account_ids"] = [msads_emulator.account.id]
    dag_id = "msads_campaign_scope" + ("_union" if with_account else "")
    run = _test(
        _dag(dags_folder, dag_id, tmp_path, **extra), datetime.datetime(2026, 11, 2, tzinfo=datetime.timezone.utc)
    )
    assert str(run.state) == "success"
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as f:
        campaigns = {row["CampaignId"] for row in csv.DictReader(f)}
    assert campaigns == ({chosen, *others} if with_account else {chosen})
    (report,) = msads_emulator.reports.values()
    assert ("AccountIds" in report.request["Scope"]) is with_account


def test_2004_fails_for_retry_then_succeeds(dags_folder: Path, msads_emulator, report_conn, tmp_path: Path):
    """'Please try again later': the first try fails retryably, the retry gets the report."""
    msads_emulator.inject("reporting", "fault", code=2004, operation="SubmitGenerateReport")
    dag = _dag(dags_folder, "msads_complete_data", tmp_path, retries=1, return_only_complete_data=True)
    run = _test(dag, datetime.datetime(2026, 11, 2, tzinfo=datetime.timezone.utc))
    assert str(run.state) == "success"
    assert _report_ti(run).try_number == 2
    assert (tmp_path / "out.csv").read_bytes().startswith(b'"TimePeriod"')


# ------------------------------------------------------------------------------- resume state


def _operator(tmp_path: Path, **kw: Any) -> MicrosoftAdsReportOperator:
    args: dict[str, Any] = {
        "task_id": "t",
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "destination": str(tmp_path / "out.csv"),
        "date_from": "2026-10-01",
        "date_to": "2026-10-02",
        "poll_interval": 0.01,
        "timeout": 0.05,
    }
    args.update(kw)
    return MicrosoftAdsReportOperator(**args)


def _state_key() -> str:
    return MicrosoftAdsReportOperator._state_key({"ti": FakeTI(1)})  # type: ignore[arg-type]


def _variable(key: str) -> str | None:
    from airflow_provider_msads.compat.versions import variable_api

    return variable_api().get(key, None)


def test_dead_request_id_is_forgotten_so_a_cleared_task_submits_afresh(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    msads_emulator.configure_next_report(pending_polls=10_000)
    with pytest.raises(AirflowException):  # try 1 times out: the id is saved for the retry
        _operator(tmp_path).execute({"ti": FakeTI(1)})
    assert _state_key().startswith(STATE_VARIABLE_PREFIX) and _variable(_state_key())
    msads_emulator.inject("reporting", "fault", code=2100, operation="PollGenerateReport")
    with pytest.raises(AirflowFailException, match="2100"):  # try 2 resumes it: Microsoft says it is dead
        _operator(tmp_path).execute({"ti": FakeTI(2)})
    assert _variable(_state_key()) is None
    result = _operator(tmp_path, timeout=30).execute({"ti": FakeTI(3)})  # the cleared task submits again
    assert msads_emulator.report_submits == 2 and result["rows"] > 0


def test_forged_resume_variable_is_not_followed(msads_emulator, report_conn, tmp_path: Path):
    """Whoever may write Variables cannot make a retry download a report of their choosing."""
    from airflow.providers.common.compat.sdk import AirflowException

    from airflow_provider_msads.compat.versions import variable_api
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.reporting import build_report_request
    from airflow_provider_msads.reporting.resume import fingerprint

    other = msads_emulator.add_account() if hasattr(msads_emulator, "add_account") else None
    msads_emulator.configure_next_report(pending_polls=10_000)
    operator = _operator(tmp_path)
    with pytest.raises(AirflowException):
        operator.execute({"ti": FakeTI(1)})
    # The attacker's report: another report request (another account's rows, where the emulator has one).
    accounts = [other.id] if other is not None else [msads_emulator.account.id]
    planted = MicrosoftAdsHook().submit_report(
        build_report_request(
            report_type="CampaignPerformanceReportRequest",
            columns=COLUMNS,
            account_ids=accounts,
            date_from="2026-09-01",
            date_to="2026-09-01",
        )
    )
    # What the operator saved before it was sealed, computable from the DAG code: now refused.
    request = operator.build_request({"ti": FakeTI(2)}, MicrosoftAdsHook())  # type: ignore[arg-type]
    forged = {"request_id": planted, "submitted_at": time.time(), "fingerprint": fingerprint(request, "msads_default")}
    variable_api().set(_state_key(), json.dumps(forged))
    result = _operator(tmp_path, timeout=30).execute({"ti": FakeTI(2)})
    assert result["report_request_id"] != planted
    assert msads_emulator.report_submits == 3  # try 1, the attacker's, and try 2's own fresh submit


def test_empty_account_ids_is_refused_not_widened(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException, match="`account_ids` is empty") as raised:
        _operator(tmp_path, account_ids=[]).execute({"ti": FakeTI(1)})
    assert "Field: account_ids." in str(raised.value)
    assert msads_emulator.report_submits == 0 and not (tmp_path / "out.csv").exists()
