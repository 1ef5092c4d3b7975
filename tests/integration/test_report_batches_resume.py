"""``account_ids="all"`` beyond 1,000 accounts: a retry resumes every batch's report request.

Each batch's ReportRequestId is sealed in its own Variable as it is submitted (bound to the try,
like a single request's); try 1 gets both batches' reports built, then fails downloading; try 2
polls the same two requests and writes the file, submitting nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from _support.fakes import FakeTI as _FakeTI

from airflow_provider_msads.operators.reporting import STATE_VARIABLE_PREFIX, MicrosoftAdsReportOperator

pytestmark = pytest.mark.integration

COLUMNS = ["TimePeriod", "AccountId", "CampaignName", "Impressions"]


FakeTI = functools.partial(_FakeTI, task_id="batches")


def _operator(tmp_path: Path) -> MicrosoftAdsReportOperator:
    return MicrosoftAdsReportOperator(
        task_id="batches",
        report_type="CampaignPerformanceReportRequest",
        columns=COLUMNS,
        destination=str(tmp_path / "all.csv"),
        account_ids="all",
        date_from="2026-10-01",
        date_to="2026-10-01",
        poll_interval=0.01,
        timeout=30,
    )


def _saved() -> list[str]:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Variable).filter(Variable.key.like(f"{STATE_VARIABLE_PREFIX}%")).all()
        return [row.key for row in rows]


def test_a_retry_resumes_every_batch_instead_of_submitting_again(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowException

    added = [msads_emulator.add_account().id for _ in range(1000)]
    msads_emulator.inject("download", "status", status=500)
    with pytest.raises(AirflowException):  # both batches built, the first download fails
        _operator(tmp_path).execute({"ti": FakeTI(1)})
    assert msads_emulator.report_submits == 2
    keys = {MicrosoftAdsReportOperator._state_key({"ti": FakeTI(1)}, n) for n in (1, 2)}  # type: ignore[arg-type]
    assert keys <= set(_saved())
    result = _operator(tmp_path).execute({"ti": FakeTI(2)})
    assert msads_emulator.report_submits == 2, "try 2 resumed both batches"
    assert [len(msads_emulator.reports[i].account_ids) for i in result["report_request_ids"]] == [1000, 1]
    with (tmp_path / "all.csv").open(encoding="utf-8") as handle:
        accounts = {line.split(",")[1].strip('"') for line in list(handle)[1:]}
    assert accounts == {msads_emulator.account.id, *added}
    assert not keys & set(_saved()), "forgotten once the file is written"
