"""An older resume seal written back is not followed (issue 25 item 5), through the operator.

Try 1 submits and times out; try 2 resumes the same request (sealing it again under its own try)
and times out too; someone who may write Variables puts try 1's seal back, which is genuine, for
the same arguments and well within the two days. Try 3 refuses it and submits afresh.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.fakes import FakeTI

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

pytestmark = pytest.mark.integration

COLUMNS = ["TimePeriod", "AccountId", "CampaignName", "Impressions"]


def _operator(tmp_path: Path, timeout: float) -> MicrosoftAdsReportOperator:
    return MicrosoftAdsReportOperator(
        task_id="t",
        report_type="CampaignPerformanceReportRequest",
        columns=COLUMNS,
        destination=str(tmp_path / "out.csv"),
        date_from="2026-10-01",
        date_to="2026-10-02",
        poll_interval=0.01,
        timeout=timeout,
    )


def _variables():
    from airflow_provider_msads.compat.versions import variable_api

    return variable_api()


def test_an_older_seal_written_back_is_refused(msads_emulator, report_conn, tmp_path: Path):
    from airflow.providers.common.compat.sdk import AirflowException

    key = MicrosoftAdsReportOperator._state_key({"ti": FakeTI(1)})  # type: ignore[arg-type]
    msads_emulator.configure_next_report(pending_polls=10_000)
    with pytest.raises(AirflowException, match="still not ready"):
        _operator(tmp_path, 0.05).execute({"ti": FakeTI(1)})
    try_one_seal = _variables().get(key, None)
    assert try_one_seal and msads_emulator.report_submits == 1
    with pytest.raises(AirflowException, match="still not ready"):  # try 2 resumes: no new submit
        _operator(tmp_path, 0.05).execute({"ti": FakeTI(2)})
    assert msads_emulator.report_submits == 1
    assert _variables().get(key, None) not in (None, try_one_seal)  # sealed again, as try 2's

    _variables().set(key, try_one_seal)  # the replay
    result = _operator(tmp_path, 30).execute({"ti": FakeTI(3)})
    assert msads_emulator.report_submits == 2 and result["rows"] > 0  # refused, submitted afresh
