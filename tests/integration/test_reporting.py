"""Reports end to end: the hook, the operator under dag.test() and the trigger, against the emulator's
Reporting service over a real socket, writing real files."""

from __future__ import annotations

import asyncio
import csv
import datetime
import gzip
import io
from pathlib import Path
from typing import Any

import pytest
from _support.dags import CAMPAIGN_COLUMNS, CAMPAIGN_HEADER, load_dag, report_dag_source, report_operator
from _support.fakes import FakeTI

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator
from airflow_provider_msads.triggers.reporting import MicrosoftAdsReportTrigger

pytestmark = pytest.mark.integration

COLUMNS = CAMPAIGN_COLUMNS
HEADER = CAMPAIGN_HEADER


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")


def _request(emulator, **changes: Any) -> dict[str, Any]:
    from airflow_provider_msads.reporting import build_report_request

    args: dict[str, Any] = {
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "account_ids": [emulator.account.id],
        "date_from": "2026-10-01",
        "date_to": "2026-10-03",
    }
    args.update(changes)
    return build_report_request(**args)


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# ------------------------------------------------------------------------------------ the hook


def test_hook_submit_poll_download_without_credentials_on_the_link(
    msads_emulator, report_conn, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    msads_emulator.configure_next_report(pending_polls=2)
    hook = MicrosoftAdsHook()
    request_id = hook.submit_report(_request(msads_emulator))
    statuses = [hook.poll_report(request_id) for _ in range(3)]
    assert [s.status for s in statuses] == ["Pending", "Pending", "Success"]
    assert statuses[0].download_url is None and statuses[-1].download_url
    result = hook.download_report(statuses[-1].download_url, str(tmp_path / "r.csv"))
    data = (tmp_path / "r.csv").read_bytes()
    assert data.startswith(HEADER) and not data.startswith(b"\xef\xbb\xbf")
    records = _records(data)
    assert result.rows == len(records) - 1 == msads_emulator.reports[request_id].row_count() > 0
    assert result.bytes == len(data)
    assert msads_emulator.report_downloads >= 1 and msads_emulator.downloads_with_credentials == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]
    # the zip (written as a stream, with a data descriptor) was inflated as it arrived
    assert not [r for r in caplog.records if "cannot be read as it arrives" in r.getMessage()]


def test_hook_async_twins(msads_emulator, report_conn, tmp_path: Path):
    async def main() -> Any:
        hook = MicrosoftAdsHook()
        request_id = await hook.asubmit_report(_request(msads_emulator))
        status = await hook.apoll_report(request_id)
        while status.status == "Pending":
            status = await hook.apoll_report(request_id)
        assert status.download_url is not None
        return await hook.adownload_report(
            status.download_url, str(tmp_path / "a.csv"), compression="gzip", request_id=request_id
        )

    result = asyncio.run(main())
    assert result.path.endswith("a.csv.gz")
    data = gzip.decompress((tmp_path / "a.csv.gz").read_bytes())
    assert data.startswith(HEADER) and result.rows == len(_records(data)) - 1
    assert msads_emulator.downloads_with_credentials == 0


def _built_report(hook: MicrosoftAdsHook, emulator: Any) -> tuple[str, Any]:
    """Submit a report and poll until Microsoft (the emulator) has built it: (request id, status)."""
    request_id = hook.submit_report(_request(emulator))
    status = hook.poll_report(request_id)
    while status.status == "Pending":
        status = hook.poll_report(request_id)
    return request_id, status


def test_expired_link_is_renewed_by_polling_again(msads_emulator, report_conn, tmp_path: Path):
    hook = MicrosoftAdsHook()
    request_id, status = _built_report(hook, msads_emulator)
    msads_emulator.expire_report_links()
    polls = msads_emulator.report_polls
    result = hook.download_report(status.download_url, str(tmp_path / "r.csv"), request_id=request_id)
    assert msads_emulator.report_polls == polls + 1  # one more poll for a fresh link
    assert result.rows > 0 and (tmp_path / "r.csv").read_bytes().startswith(HEADER)
    msads_emulator.expire_report_links()
    from airflow_provider_msads.reporting import LinkExpiredError

    with pytest.raises(LinkExpiredError, match="403"):  # without the request id it cannot renew
        hook.download_report(status.download_url, str(tmp_path / "s.csv"))
    assert not (tmp_path / "s.csv").exists()


def test_expired_link_is_renewed_on_the_async_path_too(msads_emulator, report_conn, tmp_path: Path):
    """The trigger's path (``adownload_report``) renews an expired link with ``apoll_report``."""
    hook = MicrosoftAdsHook()
    request_id, status = _built_report(hook, msads_emulator)
    msads_emulator.expire_report_links()
    polls = msads_emulator.report_polls

    async def main() -> Any:
        return await MicrosoftAdsHook().adownload_report(
            status.download_url, str(tmp_path / "r.csv"), request_id=request_id
        )

    result = asyncio.run(main())
    assert msads_emulator.report_polls == polls + 1
    assert result.rows > 0 and (tmp_path / "r.csv").read_bytes().startswith(HEADER)


def test_link_renewal_gives_up_after_link_renewals(msads_emulator, report_conn, tmp_path: Path):
    """A link that is dead on every Poll fails after LINK_RENEWALS fresh links, not forever."""
    from airflow_provider_msads.reporting import LINK_RENEWALS, LinkExpiredError

    hook = MicrosoftAdsHook()
    request_id, status = _built_report(hook, msads_emulator)
    msads_emulator.inject("download", "expired_link", count=LINK_RENEWALS + 5)
    polls = msads_emulator.report_polls
    with pytest.raises(LinkExpiredError):
        hook.download_report(status.download_url, str(tmp_path / "r.csv"), request_id=request_id)
    assert msads_emulator.report_polls == polls + LINK_RENEWALS
    assert not (tmp_path / "r.csv").exists()


# ------------------------------------------------------------------------------------ the operator


def _operator(tmp_path: Path, **changes: Any) -> MicrosoftAdsReportOperator:
    destination = changes.pop("destination", str(tmp_path / "out" / "campaign.csv"))
    return report_operator(destination, **{"columns": COLUMNS, **changes})


def test_operator_init_only_stores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("AIRFLOW_CONN_MSADS_DEFAULT", raising=False)
    op = _operator(tmp_path, msads_conn_id="nowhere", deferrable=True)
    assert op.deferrable is True and op.msads_conn_id == "nowhere"
    assert {"date_from", "date_to", "destination", "report_request"} <= set(op.template_fields)


def test_operator_worker_polling_returns_path_rows_bytes_id(msads_emulator, report_conn, tmp_path: Path):
    msads_emulator.configure_next_report(pending_polls=3)
    ti = FakeTI()
    result = _operator(tmp_path).execute({"ti": ti})
    path = tmp_path / "out" / "campaign.csv"
    assert result["path"] == str(path) and result["bytes"] == path.stat().st_size
    assert result["rows"] == len(_records(path.read_bytes())) - 1 > 0
    assert ti.xcom["report_request_id"] == result["report_request_id"]
    report = msads_emulator.reports[result["report_request_id"]]
    assert report.request["Scope"]["AccountIds"] == [msads_emulator.account.id]  # the connection's account
    assert report.request["Time"]["ReportTimeZone"] == "GreenwichMeanTimeDublinEdinburghLisbonLondon"
    assert msads_emulator.report_polls >= 4 and msads_emulator.downloads_with_credentials == 0


@pytest.mark.parametrize("empty_url", ["null", "missing"])
def test_empty_report_is_the_column_row(msads_emulator, report_conn, tmp_path: Path, empty_url: str):
    msads_emulator.configure_next_report(rows=0, empty_url=empty_url)
    result = _operator(tmp_path).execute({"ti": FakeTI()})
    assert (tmp_path / "out" / "campaign.csv").read_bytes() == HEADER
    assert (result["rows"], result["bytes"]) == (0, len(HEADER))
    assert msads_emulator.report_downloads == 0


def test_operator_gzip_to_file_url_through_object_storage(msads_emulator, report_conn, tmp_path: Path):
    destination = f"file://{tmp_path}/lake/campaign.csv"
    result = _operator(tmp_path, destination=destination, compression="gzip").execute({"ti": FakeTI()})
    written = tmp_path / "lake" / "campaign.csv.gz"
    assert result["path"] == destination + ".gz" and result["bytes"] == written.stat().st_size
    data = gzip.decompress(written.read_bytes())
    assert data.startswith(HEADER) and result["rows"] == len(_records(data)) - 1
    assert [p.name for p in (tmp_path / "lake").iterdir()] == ["campaign.csv.gz"]


def test_operator_timeout_names_the_wait_and_the_request_id(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    msads_emulator.configure_next_report(pending_polls=10_000)
    ti = FakeTI()
    with pytest.raises(AirflowException) as raised:
        _operator(tmp_path, timeout=0.05, poll_interval=0.02).execute({"ti": ti})
    assert not isinstance(raised.value, AirflowFailException)  # retries resume it
    message = str(raised.value)
    assert f"Report request {ti.xcom['report_request_id']} was still not ready after waiting" in message
    assert "timeout=0 s" in message or "timeout=" in message
    assert not (tmp_path / "out" / "campaign.csv").exists()


@pytest.mark.parametrize(
    ("code", "field", "words"),
    [
        (2029, "account_ids", "Microsoft allows 1000"),
        (2016, "columns", "more than once"),
    ],
)
def test_operator_explains_reporting_faults(
    msads_emulator, report_conn, tmp_path: Path, code: int, field: str, words: str
):
    from airflow.providers.common.compat.sdk import AirflowFailException

    msads_emulator.inject("reporting", "fault", code=code, operation="SubmitGenerateReport")
    with pytest.raises(AirflowFailException) as raised:
        _operator(tmp_path).execute({"ti": FakeTI()})
    assert words in str(raised.value) and f"Field: {field}." in str(raised.value)
    assert "tracking id" in str(raised.value)


def test_operator_names_the_misspelt_column(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    columns = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impresions"]
    with pytest.raises(AirflowFailException) as raised:
        _operator(tmp_path, columns=columns).execute({"ti": FakeTI()})
    assert "column 5 ('Impresions') is not a column of CampaignPerformanceReportRequest" in str(raised.value)


def test_operator_unknown_account(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException) as raised:
        _operator(tmp_path, account_ids=["999999999"]).execute({"ti": FakeTI()})
    assert "999999999" in str(raised.value) and "Field: account_ids." in str(raised.value)


def test_throttled_submit_is_retried(msads_emulator, report_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from airflow_provider_msads.reporting import service
    from airflow_provider_msads.tokens.flow import RetryPolicy

    monkeypatch.setattr(service, "REPORTING_RETRY", RetryPolicy(attempts=4, backoff_base=0.01, backoff_max=0.02))
    msads_emulator.inject("reporting", "fault", code=207, count=2, operation="SubmitGenerateReport")
    result = _operator(tmp_path).execute({"ti": FakeTI()})
    assert result["rows"] > 0 and msads_emulator.report_submits == 3


def test_checks_before_submitting(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"`date_from` \(2026-10-05\) is after `date_to`"):
        _operator(tmp_path, date_from="2026-10-05", date_to="2026-10-01").execute({"ti": FakeTI()})
    with pytest.raises(AirflowFailException, match=r"older than Microsoft keeps Hourly data of .*: 6 months"):
        _operator(tmp_path, aggregation="Hourly", date_from="2020-01-01").execute({"ti": FakeTI()})
    assert msads_emulator.report_submits == 0


# ------------------------------------------------------------------------------------ dag.test()


def _run(dags_folder: Path, dag_id: str, **values: Any):
    defaults: dict[str, Any] = {
        "columns": COLUMNS,
        "deferrable": False,
        "poll_interval": 0.01,
        "timeout": 30,
        "retries": 0,
    }
    defaults.update(values)
    path = dags_folder / f"{dag_id}.py"
    path.write_text(report_dag_source(dag_id, retry_delay=datetime.timedelta(seconds=0), **defaults))
    return load_dag(path, dag_id).test()


def _ti_and_result(run) -> tuple[Any, Any]:
    from _support.dags import xcom_model, xcom_value
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = next(t for t in run.get_task_instances(session=session) if t.task_id == "report")
        session.expunge(ti)
        row = session.query(xcom_model()).filter_by(run_id=run.run_id, task_id="report", key="return_value").first()
        return ti, None if row is None else xcom_value(row)


def _check_file(result: dict[str, Any]) -> None:
    data = Path(result["path"]).read_bytes()
    assert data.startswith(HEADER) and result["rows"] == len(_records(data)) - 1 > 0


@pytest.mark.parametrize("deferrable", [False, True])
def test_dag_test_polls_in_worker_or_triggerer(
    dags_folder: Path, msads_emulator, report_conn, tmp_path: Path, deferrable: bool, monkeypatch: pytest.MonkeyPatch
):
    msads_emulator.configure_next_report(pending_polls=3)
    trigger_events: list[dict[str, Any]] = []
    original_run = MicrosoftAdsReportTrigger.run

    async def spy_run(self):
        async for event in original_run(self):
            trigger_events.append(event.payload)
            yield event

    monkeypatch.setattr(MicrosoftAdsReportTrigger, "run", spy_run)
    run = _run(
        dags_folder,
        f"msads_report_{'deferred' if deferrable else 'worker'}",
        destination=f"{tmp_path}/{{{{ ds }}}}/campaign.csv",
        deferrable=deferrable,
    )
    assert str(run.state) == "success"
    _ti, result = _ti_and_result(run)
    _check_file(result)
    report = msads_emulator.reports[result["report_request_id"]]
    # Default range: the period that ended at the run: the interval's day (Airflow 2's @daily), or the
    # day before the run for a zero-length interval (Airflow 3's @daily): never the day just begun.
    start, end = run.data_interval_start, run.data_interval_end
    expected = start.date() if end > start else start.date() - datetime.timedelta(days=1)
    assert report.start == report.end == expected
    assert msads_emulator.report_submits == 1 and msads_emulator.downloads_with_credentials == 0
    if deferrable:
        # The trigger polled until Success; the worker polled once more for a fresh link.
        assert [(e["status"], e["polls"]) for e in trigger_events] == [("success", 4)]
        assert msads_emulator.report_polls == 5
    else:
        assert trigger_events == [] and msads_emulator.report_polls == 4


def test_dag_test_retry_resumes_the_same_request(dags_folder: Path, msads_emulator, report_conn, tmp_path: Path):
    """Each try polls once and times out; the retries resume the same ReportRequestId."""
    msads_emulator.configure_next_report(pending_polls=2)
    run = _run(
        dags_folder,
        "msads_report_resume",
        destination=f"{tmp_path}/campaign.csv",
        poll_interval=0.05,
        timeout=0.01,
        retries=3,
    )
    assert str(run.state) == "success"
    ti, result = _ti_and_result(run)
    assert ti.try_number == 3
    assert msads_emulator.report_submits == 1
    _check_file(result)


# ------------------------------------------------------------------------------------ trigger


def test_trigger_serializes_no_credentials():
    trigger = MicrosoftAdsReportTrigger(request_id="42", msads_conn_id="c", poll_interval=5, timeout=60, started_at=1.0)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_msads.triggers.reporting.MicrosoftAdsReportTrigger"
    assert kwargs == {
        "request_id": "42",
        "msads_conn_id": "c",
        "poll_interval": 5.0,
        "timeout": 60.0,
        "started_at": 1.0,
    }


def test_many_triggers_share_one_loop(msads_emulator, report_conn):
    """More concurrent triggers than the loop's default executor has threads; all finish."""
    import concurrent.futures
    import os

    hook = MicrosoftAdsHook()
    threads = min(32, (os.cpu_count() or 1) + 4)
    count = threads * 3
    ids = []
    for _ in range(count):
        msads_emulator.configure_next_report(pending_polls=2)
    ids = [hook.submit_report(_request(msads_emulator)) for _ in range(count)]

    async def main() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=threads))

        async def first(request_id: str) -> dict[str, Any]:
            trigger = MicrosoftAdsReportTrigger(request_id=request_id, poll_interval=0.01, timeout=60)
            event = await anext(trigger.run())
            return event.payload

        return await asyncio.wait_for(asyncio.gather(*(first(i) for i in ids)), timeout=120)

    events = asyncio.run(main())
    assert [e["status"] for e in events] == ["success"] * count
    assert {e["request_id"] for e in events} == set(ids)
    assert all("download_url" not in e for e in events)  # the link is a bearer secret: not in the metastore


def test_trigger_reports_timeout_and_failure(msads_emulator, report_conn):
    hook = MicrosoftAdsHook()
    msads_emulator.configure_next_report(pending_polls=10_000)
    request_id = hook.submit_report(_request(msads_emulator))

    async def first(trigger: MicrosoftAdsReportTrigger) -> dict[str, Any]:
        return (await anext(trigger.run())).payload

    event = asyncio.run(first(MicrosoftAdsReportTrigger(request_id=request_id, poll_interval=0.01, timeout=0.05)))
    assert event["status"] == "timeout" and event["request_id"] == request_id and event["waited"] >= 0
    msads_emulator.configure_next_report(status="Error", pending_polls=0)
    failed_id = hook.submit_report(_request(msads_emulator))
    event = asyncio.run(first(MicrosoftAdsReportTrigger(request_id=failed_id, poll_interval=0.01, timeout=5)))
    assert event["status"] == "error"


@pytest.mark.parametrize(
    ("kind", "options", "words", "retried"),
    [
        ("zip_bomb", {}, "zip bomb", False),
        ("two_entries", {}, "2 files", False),
        ("not_zip", {}, "not a zip", True),
        ("html", {"status": 200}, "instead of", True),
        ("malformed", {}, "damaged", True),
    ],
)
def test_download_refuses_what_is_not_one_csv(
    msads_emulator, report_conn, tmp_path: Path, kind: str, options: dict[str, Any], words: str, retried: bool
):
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    msads_emulator.inject("download", kind, **options)
    with pytest.raises(AirflowException, match=words) as raised:
        _operator(tmp_path).execute({"ti": FakeTI()})
    assert isinstance(raised.value, AirflowFailException) is not retried  # retries poll for a fresh link
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_operator_renews_an_expired_link(msads_emulator, report_conn, tmp_path: Path):
    msads_emulator.inject("download", "expired_link")
    result = _operator(tmp_path).execute({"ti": FakeTI()})
    assert result["rows"] > 0 and msads_emulator.report_downloads == 2


def test_report_error_status_fails_and_forgets_the_request(msads_emulator, report_conn, tmp_path: Path):
    from airflow.models.variable import Variable
    from airflow.providers.common.compat.sdk import AirflowException

    msads_emulator.configure_next_report(status="Error", pending_polls=0)
    op = _operator(tmp_path)
    ti = FakeTI()
    with pytest.raises(AirflowException, match=r"could not build report .* \(Poll status Error\)"):
        op.execute({"ti": ti})
    assert Variable.get(op._state_key({"ti": ti}), default_var=None) is None  # a retry submits again
    assert not (tmp_path / "out" / "campaign.csv").exists()


def test_expired_access_token_109_is_refreshed_once(msads_emulator, report_conn, tmp_path: Path):
    hook = MicrosoftAdsHook()
    hook.get_access_token()
    msads_emulator.inject("reporting", "fault", code=109, operation="SubmitGenerateReport")
    assert hook.submit_report(_request(msads_emulator))
    assert msads_emulator.counters["token.refresh_token"] == 2 and msads_emulator.report_submits == 2
