"""Fidelity: Microsoft's ``msads`` SDK downloads bulk files from the emulator with its own
``BulkServiceManager`` and parses them, unchanged, with its own ``BulkFileReader``; the emulator's
Bulk catalogue is the SDK's.

How the SDK is pointed at the emulator: ``BulkServiceManager(..., location=emulator.base_url)``
(the SDK appends ``/Bulk/v13/...``). The SDK waits before its first polls (``_PollingBlocker``);
the test shortens that class constant. Its known defects (see the bulk reference): account ids
must be strings; ``download_file`` needs ``result_file_name``; a status with non-null ``Errors``
(FailedFullSyncRequired) raises AttributeError; it always sends ``DataScope`` EntityData and no
``CompressionType`` (so Zip).
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from _support.emulator import FakeClock

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator
from airflow_provider_msads.testing.emulator import _bulk_catalogue as catalogue


def _import_sdk() -> SimpleNamespace:
    """Microsoft's SDK, imported when a test runs, never at collection: importing it replaces
    pydantic's ``BaseModel.__getattr__`` process-wide, and tests/conftest.py restores that only
    around each test (a module-level import here broke Airflow's task runner in every later test).
    """
    pytest.importorskip("bingads")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from bingads.authorization import AuthorizationData, OAuthTokens, OAuthWebAuthCodeGrant
        from bingads.util import _PollingBlocker
        from bingads.v13.bulk import BulkServiceManager, DownloadParameters
        from bingads.v13.bulk.entities import (
            BulkAccount,
            BulkAdGroup,
            BulkBudget,
            BulkCampaign,
            BulkKeyword,
            BulkResponsiveSearchAd,
        )
        from bingads.v13.bulk.entities.labels import BulkCampaignLabel, BulkLabel
    return SimpleNamespace(
        AuthorizationData=AuthorizationData,
        OAuthTokens=OAuthTokens,
        OAuthWebAuthCodeGrant=OAuthWebAuthCodeGrant,
        _PollingBlocker=_PollingBlocker,
        BulkServiceManager=BulkServiceManager,
        DownloadParameters=DownloadParameters,
        BulkAccount=BulkAccount,
        BulkAdGroup=BulkAdGroup,
        BulkBudget=BulkBudget,
        BulkCampaign=BulkCampaign,
        BulkKeyword=BulkKeyword,
        BulkResponsiveSearchAd=BulkResponsiveSearchAd,
        BulkCampaignLabel=BulkCampaignLabel,
        BulkLabel=BulkLabel,
    )


@pytest.fixture
def sdk() -> SimpleNamespace:
    return _import_sdk()


ENTITIES = ["Campaigns", "AdGroups", "Keywords", "Ads", "Budgets", "Labels", "CampaignLabels"]


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
def manager(msads_emulator: MicrosoftAdsEmulator, monkeypatch: pytest.MonkeyPatch, sdk: SimpleNamespace) -> Any:
    monkeypatch.setattr(sdk._PollingBlocker, "INITIAL_STATUS_CHECK_INTERVAL_IN_MS", 20)
    authentication = sdk.OAuthWebAuthCodeGrant(
        msads_emulator.app.client_id,
        msads_emulator.app.client_secret,
        "http://localhost:8080",
        oauth_tokens=sdk.OAuthTokens(access_token=access_token(msads_emulator), access_token_expires_in_seconds=3600),
    )
    authorization = sdk.AuthorizationData(
        account_id=msads_emulator.account.id,
        customer_id=msads_emulator.customer_id,
        developer_token=msads_emulator.developer_token,
        authentication=authentication,
    )
    return sdk.BulkServiceManager(
        authorization, poll_interval_in_milliseconds=20, environment="production", location=msads_emulator.base_url
    )


def parameters(tmp_path: Path, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "result_file_directory": str(tmp_path),
        "result_file_name": "bulk.csv",
        "overwrite_result_file": True,
        "download_entities": ENTITIES,
        "timeout_in_milliseconds": 60_000,
    }
    fields.update(overrides)
    return _import_sdk().DownloadParameters(**fields)


def test_sdk_downloads_and_reads_a_full_file(
    msads_emulator: MicrosoftAdsEmulator, manager: Any, tmp_path: Path, sdk: SimpleNamespace
) -> None:
    msads_emulator.bulk.pending_polls = 2
    entities = list(manager.download_entities(parameters(tmp_path)))

    kinds = [type(e) for e in entities]
    assert kinds[0] is sdk.BulkAccount
    assert kinds.count(sdk.BulkCampaign) == 3
    assert kinds.count(sdk.BulkAdGroup) == 6
    assert kinds.count(sdk.BulkKeyword) == 12
    assert kinds.count(sdk.BulkResponsiveSearchAd) == 6
    assert kinds.count(sdk.BulkBudget) == 1
    assert kinds.count(sdk.BulkLabel) == 2
    assert kinds.count(sdk.BulkCampaignLabel) == 3

    account = entities[0]
    assert str(account.id) == msads_emulator.account.id
    assert str(account.customer_id) == msads_emulator.customer_id
    assert account.sync_time is not None

    campaigns = [e for e in entities if isinstance(e, sdk.BulkCampaign)]
    assert [str(c.campaign.Id) for c in campaigns] == msads_emulator.bulk.ids("Campaign")
    assert {str(c.account_id) for c in campaigns} == {msads_emulator.account.id}
    assert campaigns[0].campaign.Name == "Campaign 1"
    assert campaigns[0].campaign.DailyBudget == 25.0
    keywords = [e for e in entities if isinstance(e, sdk.BulkKeyword)]
    assert [str(k.keyword.Id) for k in keywords] == msads_emulator.bulk.ids("Keyword")
    assert {str(k.ad_group_id) for k in keywords} == set(msads_emulator.bulk.ids("Ad Group"))
    assert all(k.keyword.Bid.Amount > 0 and k.keyword.FinalUrls.string for k in keywords)
    assert all(k.last_modified_time is not None for k in keywords)
    ads = [e for e in entities if isinstance(e, sdk.BulkResponsiveSearchAd)]
    assert [h.Asset.Text for h in ads[0].ad.Headlines.AssetLink] == [f"Headline {n} of ad 1" for n in (1, 2, 3)]
    assert msads_emulator.bulk.polls == 3
    assert msads_emulator.bulk.file_downloads == 1
    assert msads_emulator.bulk.downloads_with_credentials == 0  # the SDK sends none to the blob


def test_sdk_delta_reads_a_deleted_keyword(
    msads_emulator: MicrosoftAdsEmulator, manager: Any, tmp_path: Path, clock: FakeClock, sdk: SimpleNamespace
) -> None:
    entities = list(manager.download_entities(parameters(tmp_path)))
    since: datetime = entities[0].sync_time
    clock.advance(30)
    keyword = msads_emulator.bulk.ids("Keyword")[5]
    msads_emulator.bulk.delete_entity("Keyword", keyword)
    clock.advance(30)

    delta = list(manager.download_entities(parameters(tmp_path, last_sync_time_in_utc=since)))
    assert [type(e) for e in delta] == [sdk.BulkAccount, sdk.BulkKeyword]
    assert str(delta[1].keyword.Id) == keyword
    assert delta[1].keyword.Status == "Deleted"
    assert delta[0].sync_time.replace(tzinfo=timezone.utc).timestamp() > since.replace(tzinfo=timezone.utc).timestamp()


def test_sdk_downloads_by_campaign_ids(
    msads_emulator: MicrosoftAdsEmulator, manager: Any, tmp_path: Path, sdk: SimpleNamespace
) -> None:
    chosen = msads_emulator.bulk.ids("Campaign")[2]
    entities = list(manager.download_entities(parameters(tmp_path, campaign_ids=[chosen])))
    campaigns = [e for e in entities if isinstance(e, sdk.BulkCampaign)]
    assert [str(c.campaign.Id) for c in campaigns] == [chosen]
    assert len([e for e in entities if isinstance(e, sdk.BulkKeyword)]) == 4


def test_catalogue_is_the_installed_sdks() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bingads.v13.internal.bulk.csv_headers import _CsvHeaders
        from openapi_client.models.bulk.download_entity import DownloadEntity

    assert list(catalogue.HEADERS) == list(_CsvHeaders.HEADERS), "run scripts/gen_bulk_catalogue.py"
    assert set(catalogue.DOWNLOAD_ENTITIES) == {m.value for m in DownloadEntity} - {"None"}
