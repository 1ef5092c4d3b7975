"""Fidelity: Microsoft's ``msads`` SDK downloads a report from the emulator with its own
``ReportingServiceManager``, and the emulator's catalogue is the SDK's.

How the SDK is pointed at the emulator: ``ReportingServiceManager`` builds
``ServiceClient('Reporting', 13, ..., environment)`` without a ``location``, so the host comes
from the class-level table ``ServiceClient.endpoints[environment]['reporting']``; the test patches
that entry with ``emulator.base_url`` (the SDK appends ``/Reporting/v13/GenerateReport/...``).
The SDK waits 1 s before each of its first five polls (``_PollingBlocker``); the test shortens
that class constant so the run stays fast. The download goes through ``requests`` with no auth
header, as the SDK does for the blob link.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator
from airflow_provider_msads.testing.emulator import _reporting_catalogue as catalogue

pytest.importorskip("bingads")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from bingads.authorization import AuthorizationData, OAuthTokens, OAuthWebAuthCodeGrant
    from bingads.service_client import ServiceClient
    from bingads.util import _PollingBlocker
    from bingads.v13.reporting import ReportingDownloadParameters, ReportingServiceManager
    from openapi_client.models.reporting import (
        AccountThroughCampaignReportScope,
        CampaignPerformanceReportColumn,
        CampaignPerformanceReportRequest,
        Date,
        ReportAggregation,
        ReportFormat,
        ReportTime,
        ReportTimeZone,
    )
    from openapi_client.models.reporting.api_fault_detail import ApiFaultDetail

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"]


def access_token(emulator: MicrosoftAdsEmulator) -> str:
    response = httpx.post(
        emulator.token_url(),
        data={
            "grant_type": "refresh_token",
            "client_id": emulator.app.client_id,
            "client_secret": emulator.app.client_secret,
            "refresh_token": emulator.issue_refresh_token(),
        },
    )
    return str(response.json()["access_token"])


@pytest.fixture
def manager(msads_emulator: MicrosoftAdsEmulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(ServiceClient.endpoints["production"], "reporting", msads_emulator.base_url)
    monkeypatch.setattr(_PollingBlocker, "INITIAL_STATUS_CHECK_INTERVAL_IN_MS", 20)
    authentication = OAuthWebAuthCodeGrant(
        msads_emulator.app.client_id,
        msads_emulator.app.client_secret,
        "http://localhost:8080",
        oauth_tokens=OAuthTokens(access_token=access_token(msads_emulator), access_token_expires_in_seconds=3600),
    )
    authorization = AuthorizationData(
        account_id=msads_emulator.account.id,
        customer_id=msads_emulator.customer_id,
        developer_token=msads_emulator.developer_token,
        authentication=authentication,
    )
    return ReportingServiceManager(authorization, poll_interval_in_milliseconds=20, environment="production")


def campaign_request(emulator: MicrosoftAdsEmulator, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "ReportName": "sdk_campaign_daily",
        "Format": ReportFormat.CSV,
        "FormatVersion": "2.0",
        "ReturnOnlyCompleteData": False,
        "ExcludeReportHeader": False,
        "ExcludeReportFooter": False,
        "Aggregation": ReportAggregation.DAILY,
        "Columns": [CampaignPerformanceReportColumn(c) for c in COLUMNS],
        "Scope": AccountThroughCampaignReportScope(AccountIds=[emulator.account.id]),
        "Time": ReportTime(
            CustomDateRangeStart=Date(Year=2026, Month=10, Day=1),
            CustomDateRangeEnd=Date(Year=2026, Month=10, Day=3),
            ReportTimeZone=ReportTimeZone.GREENWICHMEANTIMEDUBLINEDINBURGHLISBONLONDON,
        ),
    }
    fields.update(overrides)
    return CampaignPerformanceReportRequest(**fields)


def test_sdk_submits_polls_downloads_and_reads_the_report(
    msads_emulator: MicrosoftAdsEmulator, manager: Any, tmp_path: Path
) -> None:
    msads_emulator.report_pending_polls = 2
    parameters = ReportingDownloadParameters(
        report_request=campaign_request(msads_emulator),
        result_file_directory=str(tmp_path),
        result_file_name="campaign.csv",
        overwrite_result_file=True,
        timeout_in_milliseconds=60_000,
    )

    report = manager.download_report(parameters)
    try:
        records = list(report.report_records)
        assert report.report_name == "sdk_campaign_daily"
        assert report.report_aggregation == "Daily"
        assert report.record_count == 9
        assert str(report.report_time_start.date()) == "2026-10-01"
        assert str(report.report_time_end.date()) == "2026-10-03"
        assert report.report_columns == COLUMNS
    finally:
        report.close()

    assert len(records) == 9
    assert [r.value("TimePeriod") for r in records[:4]] == ["2026-10-01"] * 3 + ["2026-10-02"]
    assert {r.value("AccountId") for r in records} == {msads_emulator.account.id}
    assert all(r.int_value("Impressions") >= r.int_value("Clicks") for r in records)
    assert msads_emulator.report_polls == 3
    assert msads_emulator.report_downloads == 1
    assert msads_emulator.downloads_with_credentials == 0  # the SDK sends none to the blob link


def test_sdk_reads_a_report_without_header_and_footer(
    msads_emulator: MicrosoftAdsEmulator, manager: Any, tmp_path: Path
) -> None:
    parameters = ReportingDownloadParameters(
        report_request=campaign_request(msads_emulator, ExcludeReportHeader=True, ExcludeReportFooter=True),
        result_file_directory=str(tmp_path),
        result_file_name="campaign.csv",
        overwrite_result_file=True,
    )

    report = manager.download_report(parameters)
    try:
        assert len(list(report.report_records)) == 9
    finally:
        report.close()
    assert (tmp_path / "campaign.csv").read_bytes().startswith(b'\xef\xbb\xbf"TimePeriod","AccountId"')


def test_sdk_sees_no_file_for_an_empty_report(
    msads_emulator: MicrosoftAdsEmulator, manager: Any, tmp_path: Path
) -> None:
    msads_emulator.set_report_size(rows=0)
    parameters = ReportingDownloadParameters(
        report_request=campaign_request(msads_emulator), result_file_directory=str(tmp_path)
    )

    assert manager.download_file(parameters) is None


def test_reporting_fault_bodies_parse_with_the_sdk_models(msads_emulator: MicrosoftAdsEmulator) -> None:
    ids = [str(100000000 + n) for n in range(1001)]
    response = httpx.post(
        f"{msads_emulator.reporting_url}/GenerateReport/Submit",
        json={
            "ReportRequest": campaign_request(
                msads_emulator, Scope=AccountThroughCampaignReportScope(AccountIds=ids)
            ).to_dict()
        },
        headers={
            "Authorization": f"Bearer {access_token(msads_emulator)}",
            "DeveloperToken": msads_emulator.developer_token,
        },
    )

    fault = ApiFaultDetail.from_json(response.text)
    assert fault is not None
    assert fault.tracking_id == response.headers["TrackingId"]
    assert [(e.code, e.error_code) for e in fault.operation_errors] == [(2029, "AccountsOverLimit")]


def test_the_sdk_request_json_is_what_the_emulator_validates(msads_emulator: MicrosoftAdsEmulator) -> None:
    """The SDK writes ids as strings, dates as objects and enums as their names; Submit takes them."""
    body = campaign_request(msads_emulator).to_dict()

    assert body["Type"] == "CampaignPerformanceReportRequest"
    assert body["Scope"]["AccountIds"] == [msads_emulator.account.id]
    assert body["Columns"] == COLUMNS


def test_catalogue_matches_the_installed_sdk() -> None:
    """``_reporting_catalogue`` is a copy; regenerate it with scripts/gen_reporting_catalogue.py.

    Same SDK version: the copy must be exact. A newer SDK (CI resolves the newest ``msads``) may
    add types and columns; then every type, column and enum value of the copy must still exist,
    so the emulator never accepts what Microsoft's SDK does not know.
    """
    path = Path(__file__).resolve().parents[2] / "scripts" / "gen_reporting_catalogue.py"
    spec = importlib.util.spec_from_file_location("gen_reporting_catalogue", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.catalogue()
    sdk_columns = {k: tuple(v) for k, v in fresh["columns"].items()}
    enums = {
        "time_zones": catalogue.TIME_ZONES,
        "aggregations": catalogue.AGGREGATIONS,
        "predefined_times": catalogue.PREDEFINED_TIMES,
        "formats": catalogue.FORMATS,
    }

    if fresh["version"] == catalogue.SDK_VERSION:
        assert sdk_columns == catalogue.COLUMNS
        assert all(tuple(fresh[name]) == values for name, values in enums.items())
    else:
        for report_type, columns in catalogue.COLUMNS.items():
            assert set(columns) <= set(sdk_columns.get(report_type, ())), report_type
        assert all(set(values) <= set(fresh[name]) for name, values in enums.items())
    for common in ("Campaign", "Account", "AdGroup", "Keyword", "SearchQuery"):
        assert f"{common}PerformanceReportRequest" in catalogue.COLUMNS
