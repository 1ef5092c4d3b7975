"""Helpers for tests with a real Airflow (a unique module name, unlike conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def dagbag_class():
    """DagBag moved in Airflow 3.1; the matrix runs 2.11 and 3.0 too."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag


def load_dag(path: Path, dag_id: str):
    DagBag = dagbag_class()
    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def xcom_value(row):
    """An XCom row's Python value (Airflow 2.11's column type already deserializes it)."""
    from airflow import __version__ as airflow_version

    if airflow_version.startswith("2."):
        return row.value
    return xcom_model().deserialize_value(row)


def xcom_model():
    """The XCom table's model: XComModel on Airflow 3, BaseXCom on 2.11."""
    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2
        from airflow.models.xcom import BaseXCom as XComModel  # type: ignore[no-redef]
    return XComModel


def report_dag_source(dag_id: str, *, tz: str = "UTC", **arguments: object) -> str:
    """A DAG file with one MicrosoftAdsReportOperator (CampaignPerformanceReportRequest, daily from
    2026-01-01 in ``tz``) taking ``arguments``: the report DAG every integration file writes."""
    lines = "".join(f"        {name}={value!r},\n" for name, value in arguments.items())
    return (
        "import datetime\n\n"
        "import pendulum\n"
        "from airflow.providers.common.compat.sdk import DAG\n\n"
        "from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator\n\n"
        f'with DAG(dag_id={dag_id!r}, schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz={tz!r}),'
        " catchup=False):\n"
        "    MicrosoftAdsReportOperator(\n"
        '        task_id="report",\n'
        '        report_type="CampaignPerformanceReportRequest",\n'
        f"{lines}"
        "    )\n"
    )


#: The columns most report tests ask for, and the column row Microsoft writes for them.
CAMPAIGN_COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"]
CAMPAIGN_HEADER = b'"TimePeriod","AccountId","CampaignId","CampaignName","Impressions","Clicks","Spend"\r\n'


def report_operator(destination: str, **changes: Any) -> Any:
    """The report operator the integration tests run outside a DAG (``columns`` among ``changes``):
    two October days, polled fast."""
    from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

    args: dict[str, Any] = {
        "task_id": "report",
        "report_type": "CampaignPerformanceReportRequest",
        "date_from": "2026-10-01",
        "date_to": "2026-10-02",
        "destination": destination,
        "poll_interval": 0.01,
        "timeout": 30,
    }
    args.update(changes)
    return MicrosoftAdsReportOperator(**args)


def report_link(emulator: Any, hook: Any, columns: list[str]) -> str:
    """Submit a campaign report of three October days for the emulator's account and poll it until
    Microsoft gives its download link (the emulator's reports are ready at once or after a poll)."""
    from airflow_provider_msads.reporting import build_report_request

    request_id = hook.submit_report(
        build_report_request(
            report_type="CampaignPerformanceReportRequest",
            columns=columns,
            account_ids=[emulator.account.id],
            date_from="2026-10-01",
            date_to="2026-10-03",
        )
    )
    status = hook.poll_report(request_id)
    while status.status == "Pending":
        status = hook.poll_report(request_id)
    assert status.download_url
    return str(status.download_url)
