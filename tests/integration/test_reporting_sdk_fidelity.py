"""SDK interop: Microsoft's ``msads`` SDK (``ReportingServiceManager``) downloads a report from the
emulator with ``hook.get_sdk_authorization_data()``, taking its access tokens from the hook.

Named ``*sdk_fidelity*`` so that it runs last (tests/conftest.py): importing the SDK breaks
Airflow's in-process ``dag.test()`` for the tests after it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.reporting import build_report_request

pytestmark = pytest.mark.integration

pytest.importorskip("bingads")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from bingads.service_client import ServiceClient
    from bingads.v13.reporting.reporting_download_parameters import ReportingDownloadParameters
    from bingads.v13.reporting.reporting_service_manager import ReportingServiceManager
    from openapi_client.models.reporting.campaign_performance_report_request import (
        CampaignPerformanceReportRequest,
    )


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")


def test_reporting_service_manager_with_the_hooks_authorization(
    msads_emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    conn = msads_emulator.connection_dict()
    conn["extra"]["reporting_url"] = msads_emulator.reporting_url
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    # The SDK appends /Reporting/v13/... to the host it is given.
    monkeypatch.setitem(ServiceClient.endpoints["production"], "reporting", msads_emulator.base_url)

    hook = MicrosoftAdsHook()
    authorization = hook.get_sdk_authorization_data()
    assert str(authorization.account_id) == msads_emulator.account.id
    columns = ["TimePeriod", "AccountId", "CampaignId", "Impressions", "Clicks"]
    # The request our builder makes is one the SDK's own model accepts.
    request = CampaignPerformanceReportRequest.from_json(
        json.dumps(
            build_report_request(
                report_type="CampaignPerformanceReportRequest",
                columns=columns,
                account_ids=[msads_emulator.account.id],
                date_from="2026-10-01",
                date_to="2026-10-02",
            )
        )
    )
    manager = ReportingServiceManager(authorization_data=authorization, poll_interval_in_milliseconds=50)
    path = manager.download_file(
        ReportingDownloadParameters(
            report_request=request,
            result_file_directory=str(tmp_path),
            result_file_name="sdk.csv",
            overwrite_result_file=True,
            timeout_in_milliseconds=30_000,
        )
    )
    text = Path(path).read_text(encoding="utf-8-sig")
    # The SDK keeps Microsoft's file as is: our request asks for the report header (the operator
    # reads and strips it), so the column row follows the header's blank line.
    assert text.startswith('"Report Name: ') and '"Potential Incomplete Data: false"' in text
    assert '\n\n"TimePeriod","AccountId","CampaignId","Impressions","Clicks"' in text
    assert msads_emulator.report_submits == 1 and msads_emulator.downloads_with_credentials == 0
    # One token for the whole run, minted by the hook's token manager (the rotation store applies).
    assert msads_emulator.counters["token.refresh_token"] == 1
    assert hook.get_access_token() in msads_emulator.issued_access_tokens


SDK_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task

with DAG(dag_id="msads_sdk_client_task", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def build_sdk_client() -> str:
        from bingads.service_client import ServiceClient

        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        authorization = MicrosoftAdsHook().get_sdk_authorization_data()
        client = ServiceClient("CustomerManagementService", 13, authorization_data=authorization)
        return type(client).__name__

    @task
    def after(name: str) -> str:
        return name + " then the next task"

    after(build_sdk_client())
"""


def test_a_task_that_builds_an_sdk_client_leaves_airflow_working(msads_emulator, monkeypatch, dags_folder: Path):
    """The SDK's process-wide pydantic patch (see airflow_provider_msads.tokens.sdk) no longer breaks the
    task runner: both tasks of an in-process dag.test() succeed (the second failed with
    AttributeError: '_ti_context_from_server'), and the SDK's PascalCase aliases still work."""
    from pydantic import BaseModel

    conn = msads_emulator.connection_dict()
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    assert BaseModel.__getattr__.__module__.startswith("pydantic")  # a fresh start (tests/conftest.py)
    from _support.dags import load_dag

    path = dags_folder / "msads_sdk_client_task.py"
    path.write_text(SDK_DAG)
    run = load_dag(path, "msads_sdk_client_task").test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "success", states
    assert states == {"build_sdk_client": "success", "after": "success"}
    request = CampaignPerformanceReportRequest()
    request.ReportName = "aliases still work"
    assert request.report_name == "aliases still work"
