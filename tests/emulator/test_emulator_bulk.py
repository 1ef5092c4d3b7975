"""Bulk REST v13 (download side) in the emulator, over real sockets: the download requests, the
status, the result file URL, the file Microsoft writes, delta downloads, refusals and faults."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from _support.emulator import Driver, FakeClock

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator
from airflow_provider_msads.testing.emulator._bulk_files import BulkFile

ENTITIES = ["Campaigns", "AdGroups", "Keywords", "Ads", "Budgets", "Labels"]


def iso(timestamp: float) -> str:
    """``LastSyncTimeInUTC`` as Microsoft's SDK sends it: ISO 8601 without a zone."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def sync_time_of(rows: list[dict[str, str]]) -> float:
    account = next(r for r in rows if r["Type"] == "Account")
    return datetime.strptime(account["Sync Time"], "%m/%d/%Y %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


class Bulk:
    """Submit / poll / fetch the way a client does (bearer + developer token + customer ids)."""

    def __init__(self, ms: Driver) -> None:
        self.ms = ms
        self.emu = ms.emu
        self.http = ms.http
        self._token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self._token is None:
            self._token = self.ms.access_token()
        return {
            "Authorization": f"Bearer {self._token}",
            "DeveloperToken": self.emu.developer_token,
            "CustomerId": self.emu.customer_id,
            "CustomerAccountId": self.emu.account.id,
        }

    def renew_token(self) -> None:
        self._token = None

    def by_account_raw(self, headers: dict[str, str] | None = None, **overrides: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "AccountIds": [self.emu.account.id],
            "DownloadEntities": ENTITIES,
            "DataScope": "EntityData",
            "DownloadFileType": "Csv",
            "FormatVersion": "6.0",
            "CompressionType": "Zip",
            "LastSyncTimeInUTC": None,
        }
        body.update(overrides)
        return self.http.post(
            f"{self.emu.bulk_url}/Campaigns/DownloadByAccountIds",
            json=body,
            headers=self.headers if headers is None else headers,
        )

    def by_campaigns_raw(self, campaigns: list[dict[str, str]], **overrides: Any) -> httpx.Response:
        body: dict[str, Any] = {"Campaigns": campaigns, "DownloadEntities": ENTITIES, "FormatVersion": "6.0"}
        body.update(overrides)
        return self.http.post(f"{self.emu.bulk_url}/Campaigns/DownloadByCampaignIds", json=body, headers=self.headers)

    def submit(self, **overrides: Any) -> str:
        response = self.by_account_raw(**overrides)
        assert response.status_code == 200, response.text
        return str(response.json()["DownloadRequestId"])

    def status(self, request_id: str) -> httpx.Response:
        return self.http.post(
            f"{self.emu.bulk_url}/BulkDownloadStatus/Query", json={"RequestId": request_id}, headers=self.headers
        )

    def wait(self, request_id: str) -> dict[str, Any]:
        for _ in range(20):
            response = self.status(request_id)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["RequestStatus"] != "InProgress":
                return body
        raise AssertionError("still InProgress after 20 polls")

    def fetch(self, url: str) -> bytes:
        response = self.http.get(url)  # no credentials: a blob link
        assert response.status_code == 200, response.text
        return response.content

    def download(self, **overrides: Any) -> list[dict[str, str]]:
        status = self.wait(self.submit(**overrides))
        assert status["RequestStatus"] == "Completed", status
        return rows_of(self.fetch(status["ResultFileUrl"]))


def text_of(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        raw = gzip.decompress(data)
    else:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            (name,) = archive.namelist()
            raw = archive.read(name)
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM"
    return raw.decode("utf-8-sig")


def rows_of(data: bytes) -> list[dict[str, str]]:
    text = text_of(data)
    dialect = csv.excel_tab if "\t" in text.splitlines()[0] else csv.excel
    return list(csv.DictReader(io.StringIO(text), dialect=dialect))


@pytest.fixture
def bulk(ms: Driver) -> Bulk:
    return Bulk(ms)


def by_type(rows: list[dict[str, str]], record_type: str) -> list[dict[str, str]]:
    return [r for r in rows if r["Type"] == record_type]


# ------------------------------------------------------------------------------ the happy path


def test_full_download_by_account_polls_then_serves_microsofts_file(bulk: Bulk, clock: FakeClock) -> None:
    emu = bulk.emu
    emu.bulk.pending_polls = 2
    request_id = bulk.submit()
    assert 0 < len(request_id) <= 40

    first = bulk.status(request_id).json()
    assert first["RequestStatus"] == "InProgress"
    assert 0 <= first["PercentComplete"] < 100
    assert first["ResultFileUrl"] is None
    second = bulk.status(request_id).json()
    assert second["RequestStatus"] == "InProgress"
    assert second["PercentComplete"] >= first["PercentComplete"]
    done = bulk.status(request_id).json()
    assert done["RequestStatus"] == "Completed"
    assert done["PercentComplete"] == 100
    assert done["Errors"] is None

    data = bulk.fetch(done["ResultFileUrl"])
    text = text_of(data)
    header = next(csv.reader(io.StringIO(text)))
    assert header[0] == "Type"
    for column in ("Id", "Parent Id", "Status", "Modified Time", "Sync Time", "Name", "Campaign", "Ad Group"):
        assert column in header
    rows = rows_of(data)
    assert rows[0]["Type"] == "Format Version"
    assert rows[0]["Name"] == "6.0"
    account = rows[1]
    assert account["Type"] == "Account"
    assert account["Id"] == emu.account.id
    assert account["Parent Id"] == emu.customer_id
    assert account["Sync Time"] == datetime.fromtimestamp(clock.now, tz=timezone.utc).strftime("%m/%d/%Y %H:%M:%S")

    counts = {t: len(by_type(rows, t)) for t in {r["Type"] for r in rows}}
    assert counts == {
        "Format Version": 1,
        "Account": 1,
        "Budget": 1,
        "Label": 2,
        "Campaign": 3,
        "Ad Group": 6,
        "Keyword": 12,
        "Responsive Search Ad": 6,
    }
    campaigns = by_type(rows, "Campaign")
    assert [c["Id"] for c in campaigns] == emu.bulk.ids("Campaign")
    assert [c["Id"] for c in campaigns] == emu.campaign_ids()  # the ids report rows carry
    assert {c["Parent Id"] for c in campaigns} == {emu.account.id}
    ad_groups = by_type(rows, "Ad Group")
    assert {g["Parent Id"] for g in ad_groups} == {c["Id"] for c in campaigns}
    keywords = by_type(rows, "Keyword")
    assert {k["Parent Id"] for k in keywords} == {g["Id"] for g in ad_groups}
    assert {k["Match Type"] for k in keywords} == {"Exact", "Phrase", "Broad"}
    assert all(k["Final Url"].startswith("https://") and float(k["Bid"]) > 0 for k in keywords)
    assert all(r["Modified Time"] for r in rows[2:])
    assert emu.bulk.downloads_with_credentials == 0


def test_result_file_url_lives_five_minutes_and_status_mints_a_new_one(bulk: Bulk, clock: FakeClock) -> None:
    request_id = bulk.submit()
    status = bulk.wait(request_id)
    clock.advance(301)
    expired = bulk.http.get(status["ResultFileUrl"])
    assert expired.status_code == 403
    assert b"<Code>AuthenticationFailed</Code>" in expired.content
    again = bulk.status(request_id).json()
    assert again["ResultFileUrl"] != status["ResultFileUrl"]
    assert rows_of(bulk.fetch(again["ResultFileUrl"]))[0]["Type"] == "Format Version"


def test_result_file_url_records_credentials_sent_to_it(bulk: Bulk) -> None:
    status = bulk.wait(bulk.submit())
    assert bulk.http.get(status["ResultFileUrl"], headers={"Authorization": "Bearer x"}).status_code == 200
    assert bulk.emu.bulk.downloads_with_credentials == 1


def test_request_id_is_valid_two_days(bulk: Bulk, clock: FakeClock) -> None:
    request_id = bulk.submit()
    clock.advance(2 * 24 * 3600 - 5)
    bulk.renew_token()  # access tokens live an hour
    assert bulk.status(request_id).status_code == 200
    clock.advance(10)
    refused = bulk.status(request_id)
    assert refused.status_code == 400
    assert refused.json()["OperationErrors"][0]["Code"] == 3205
    assert bulk.status("not-a-request").json()["OperationErrors"][0]["ErrorCode"] == (
        "CampaignServiceInvalidDownloadRequestId"
    )


def test_gzip_and_tsv_follow_the_request(bulk: Bulk) -> None:
    status = bulk.wait(bulk.submit(CompressionType="GZip", DownloadFileType="Tsv"))
    data = bulk.fetch(status["ResultFileUrl"])
    assert data[:2] == b"\x1f\x8b"
    assert status["ResultFileUrl"].split("?")[0].endswith(".tsv.gz")
    rows = rows_of(data)
    assert rows[0]["Type"] == "Format Version"
    assert len(by_type(rows, "Keyword")) == 12


def test_only_the_entities_asked_for_come(bulk: Bulk) -> None:
    rows = bulk.download(DownloadEntities=["Keywords", "KeywordLabels", "AssetGroups"])
    assert {r["Type"] for r in rows} == {"Format Version", "Account", "Keyword", "Keyword Label"}
    labels = by_type(rows, "Keyword Label")
    assert {r["Id"] for r in labels} <= set(bulk.emu.bulk.ids("Label"))
    assert {r["Parent Id"] for r in labels} == {r["Id"] for r in by_type(rows, "Keyword")}


def test_tree_size_is_configurable_and_the_file_streams(bulk: Bulk) -> None:
    bulk.emu.bulk.set_tree(campaigns=5, ad_groups_per_campaign=4, keywords_per_ad_group=60)
    rows = bulk.download(DownloadEntities=["Keywords"])
    keywords = by_type(rows, "Keyword")
    assert len(keywords) == 1200
    assert len({k["Id"] for k in keywords}) == 1200
    assert len(bulk.emu.bulk.ids("Keyword")) == 1200


def test_download_by_campaign_ids_holds_only_those_campaigns(bulk: Bulk) -> None:
    emu = bulk.emu
    chosen = emu.bulk.ids("Campaign")[1]
    response = bulk.by_campaigns_raw([{"CampaignId": chosen, "ParentAccountId": emu.account.id}])
    assert response.status_code == 200, response.text
    status = bulk.wait(response.json()["DownloadRequestId"])
    rows = rows_of(bulk.fetch(status["ResultFileUrl"]))
    assert [c["Id"] for c in by_type(rows, "Campaign")] == [chosen]
    groups = emu.bulk.ids("Ad Group", parent=chosen)
    assert [g["Id"] for g in by_type(rows, "Ad Group")] == groups
    assert {k["Parent Id"] for k in by_type(rows, "Keyword")} == set(groups)
    assert len(by_type(rows, "Keyword")) == 4


# ------------------------------------------------------------------------------ delta


def test_delta_returns_only_what_changed_since_the_sync_time(bulk: Bulk, clock: FakeClock) -> None:
    emu = bulk.emu
    full = bulk.download()
    since = sync_time_of(full)
    clock.advance(60)
    keyword = emu.bulk.ids("Keyword")[3]
    emu.bulk.update_entity("Keyword", keyword, Status="Paused", Bid="1.10", Match_Type="Exact")
    clock.advance(60)

    delta = bulk.download(LastSyncTimeInUTC=iso(since))
    assert [r["Type"] for r in delta] == ["Format Version", "Account", "Keyword"]
    changed = delta[2]
    assert (changed["Id"], changed["Status"], changed["Bid"], changed["Match Type"]) == (
        keyword,
        "Paused",
        "1.10",
        "Exact",
    )
    assert changed["Modified Time"].startswith(
        datetime.fromtimestamp(clock.now - 60, tz=timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
    )
    assert sync_time_of(delta) > since

    nothing = bulk.download(LastSyncTimeInUTC=iso(sync_time_of(delta)))
    assert [r["Type"] for r in nothing] == ["Format Version", "Account"]


def test_a_deleted_parent_comes_alone_and_leaves_full_downloads(bulk: Bulk, clock: FakeClock) -> None:
    emu = bulk.emu
    since = clock.now - 10
    campaign = emu.bulk.ids("Campaign")[0]
    child_group = emu.bulk.ids("Ad Group", parent=campaign)[0]
    child_keyword = emu.bulk.ids("Keyword", parent=child_group)[0]
    emu.bulk.update_entity("Keyword", child_keyword, Bid="2.00")  # changed, then its campaign deleted
    other_keyword = emu.bulk.ids("Keyword")[-1]
    emu.bulk.delete_entity("Keyword", other_keyword)
    emu.bulk.delete_entity("Campaign", campaign)
    clock.advance(5)

    delta = bulk.download(LastSyncTimeInUTC=iso(since))
    records = [(r["Type"], r["Id"], r["Status"]) for r in delta[2:]]
    assert records == [("Campaign", campaign, "Deleted"), ("Keyword", other_keyword, "Deleted")]

    full = bulk.download()
    ids = {r["Id"] for r in full}
    assert campaign not in ids and child_group not in ids and child_keyword not in ids
    assert other_keyword not in ids
    assert len(by_type(full, "Campaign")) == 2
    assert len(by_type(full, "Keyword")) == 12 - 4 - 1


def test_delta_with_sync_time_from_a_previous_file_and_changes_after_the_request(bulk: Bulk, clock: FakeClock) -> None:
    """The file is the account as of the request: a change after it waits for the next delta."""
    emu = bulk.emu
    request_id = bulk.submit()
    clock.advance(1)
    emu.bulk.update_entity("Campaign", emu.bulk.ids("Campaign")[2], Campaign="Renamed")
    rows = rows_of(bulk.fetch(bulk.wait(request_id)["ResultFileUrl"]))
    assert "Renamed" not in {c["Campaign"] for c in by_type(rows, "Campaign")}
    delta = bulk.download(LastSyncTimeInUTC=iso(sync_time_of(rows)))
    assert [c["Campaign"] for c in by_type(delta, "Campaign")] == ["Renamed"]


# ------------------------------------------------------------------------------ refusals


def codes(response: httpx.Response) -> list[int]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["Type"] == "ApiFaultDetail"
    assert response.headers["TrackingId"] == body["TrackingId"]
    return [e["Code"] for e in body["OperationErrors"]]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"AccountIds": []}, 3306),
        ({"DownloadEntities": []}, 3210),
        ({"DownloadEntities": None}, 3210),
        ({"FormatVersion": None}, 3219),
        ({"FormatVersion": "5.0"}, 3217),
        ({"DataScope": "Everything"}, 3228),
        ({"DownloadEntities": ["Keywords", "NoSuchEntity"]}, 100),
        ({"CompressionType": "Rar"}, 100),
        ({"AccountIds": ["999999999"]}, 1102),
    ],
)
def test_request_refusals(bulk: Bulk, overrides: dict[str, Any], code: int) -> None:
    assert codes(bulk.by_account_raw(**overrides)) == [code]


def test_one_account_only(bulk: Bulk) -> None:
    second = bulk.emu.add_account()
    response = bulk.by_account_raw(AccountIds=[bulk.emu.account.id, second.id])
    assert codes(response) == [3201]
    assert response.json()["OperationErrors"][0]["ErrorCode"] == "CampaignServiceAccountIdsLengthExceeded"


def test_quality_score_and_bid_suggestions_need_a_full_download(bulk: Bulk, clock: FakeClock) -> None:
    since = iso(clock.now - 3600)
    assert codes(bulk.by_account_raw(DataScope="EntityData QualityScoreData", LastSyncTimeInUTC=since)) == [3213]
    assert codes(bulk.by_account_raw(DataScope=["EntityData", "BidSuggestionsData"], LastSyncTimeInUTC=since)) == [3213]
    assert bulk.by_account_raw(DataScope="EntityData QualityScoreData").status_code == 200


def test_last_sync_time_limits(bulk: Bulk, clock: FakeClock) -> None:
    assert codes(bulk.by_account_raw(LastSyncTimeInUTC=iso(clock.now + 120))) == [3208]
    assert codes(bulk.by_account_raw(LastSyncTimeInUTC="1700-01-01T00:00:00")) == [3209]
    old = bulk.by_account_raw(LastSyncTimeInUTC=iso(clock.now - 30 * 24 * 3600 - 60))
    assert codes(old) == [3603]
    assert bulk.by_account_raw(LastSyncTimeInUTC=iso(clock.now - 29 * 24 * 3600)).status_code == 200
    zoned = (datetime.fromtimestamp(clock.now, tz=timezone.utc) - timedelta(hours=1)).isoformat()
    assert bulk.by_account_raw(LastSyncTimeInUTC=zoned).status_code == 200


def test_account_too_big_names_its_campaigns_and_campaign_ids_are_the_way_out(bulk: Bulk) -> None:
    emu = bulk.emu
    emu.bulk.set_tree(campaigns=4, ad_groups_per_campaign=5, keywords_per_ad_group=10)
    emu.bulk.keyword_limit = 100  # Microsoft's is four million
    response = bulk.by_account_raw()
    assert codes(response) == [3207]
    error = response.json()["OperationErrors"][0]
    assert error["ErrorCode"] == "CampaignServiceAccountTooBigToDownload"
    assert error["Details"].split(",") == emu.bulk.ids("Campaign")

    campaigns = [{"CampaignId": c, "ParentAccountId": emu.account.id} for c in error["Details"].split(",")[:2]]
    ok = bulk.by_campaigns_raw(campaigns)
    assert ok.status_code == 200, ok.text
    rows = rows_of(bulk.fetch(bulk.wait(ok.json()["DownloadRequestId"])["ResultFileUrl"]))
    assert len(by_type(rows, "Keyword")) == 100

    emu.bulk.campaigns_keyword_limit = 99
    assert codes(bulk.by_campaigns_raw(campaigns)) == [3216]


def test_campaign_ids_refusals(bulk: Bulk) -> None:
    emu = bulk.emu
    other = emu.add_account()
    mine = {"CampaignId": emu.bulk.ids("Campaign")[0], "ParentAccountId": emu.account.id}
    theirs = {"CampaignId": emu.bulk.ids("Campaign", other.id)[0], "ParentAccountId": other.id}
    assert codes(bulk.by_campaigns_raw([mine, theirs])) == [3203]
    assert codes(bulk.by_campaigns_raw([])) == [4347]
    assert codes(bulk.by_campaigns_raw([mine, None])) == [3204]  # type: ignore[list-item]
    assert codes(bulk.by_campaigns_raw([mine] * 1001)) == [4350]
    assert codes(bulk.by_campaigns_raw([{"CampaignId": "123", "ParentAccountId": emu.account.id}])) == [1100]


def test_headers_are_checked_like_reporting(bulk: Bulk) -> None:
    headers = dict(bulk.headers)
    del headers["DeveloperToken"]
    missing = bulk.by_account_raw(headers=headers)
    assert missing.status_code == 400
    assert missing.json()["Errors"][0]["Code"] == 116
    wrong = dict(bulk.headers, Authorization="Bearer nope")
    assert bulk.by_account_raw(headers=wrong).json()["Errors"][0]["Code"] == 105
    assert bulk.http.get(f"{bulk.emu.bulk_url}/Campaigns/DownloadByAccountIds", headers=bulk.headers).status_code == 405
    assert bulk.http.post(f"{bulk.emu.bulk_url}/Campaigns/Nowhere", json={}, headers=bulk.headers).status_code == 404
    lowered = f"{bulk.emu.base_url}/bulk/v13/campaigns/downloadbyaccountids"
    assert bulk.http.post(lowered, json={}, headers=bulk.headers).json()["OperationErrors"][0]["Code"] == 3306
    with pytest.raises(ValueError, match="operation only narrows"):
        bulk.emu.inject("bulk", "fault", operation="GetUser")


# ------------------------------------------------------------------------------ injected faults and statuses


def test_injected_throttling_and_call_rate(bulk: Bulk) -> None:
    emu = bulk.emu
    emu.inject("bulk", "fault", code=4204, operation="DownloadCampaignsByAccountIds")
    throttled = bulk.by_account_raw()
    assert codes(throttled) == [4204]
    assert throttled.json()["OperationErrors"][0]["ErrorCode"] == "BulkServiceNoMoreCallsPermittedForTheTimePeriod"
    request_id = bulk.submit()
    emu.inject("bulk", "fault", code=117, operation="GetBulkDownloadStatus", count=2)
    for _ in range(2):
        busy = bulk.status(request_id)
        assert busy.status_code == 400
        assert busy.json()["Errors"][0]["Code"] == 117
    assert bulk.wait(request_id)["RequestStatus"] == "Completed"


@pytest.mark.parametrize(("status", "code"), [("Failed", None), ("FailedFullSyncRequired", 3603)])
def test_injected_final_statuses(bulk: Bulk, status: str, code: int | None) -> None:
    bulk.emu.bulk.configure_next_download(status=status, pending_polls=0)
    body = bulk.wait(bulk.submit())
    assert body["RequestStatus"] == status
    assert body["ResultFileUrl"] is None
    if code is None:
        assert body["Errors"] is None
    else:
        assert [e["Code"] for e in body["Errors"]] == [code]
        assert body["Errors"][0]["ErrorCode"] == "CampaignServiceFullSyncRequired"


def test_injected_error_rows(bulk: Bulk) -> None:
    bulk.emu.bulk.configure_next_download(error_rows=2)
    rows = bulk.download(DownloadEntities=["Keywords"])
    errors = by_type(rows, "Keyword Error")
    assert len(errors) == 2
    assert all(e["Error"] and e["Error Number"].isdigit() for e in errors)
    assert by_type(bulk.download(DownloadEntities=["Keywords"]), "Keyword Error") == []


def test_result_file_url_takes_download_injections(bulk: Bulk) -> None:
    status = bulk.wait(bulk.submit())
    bulk.emu.inject("download", "expired_link")
    assert bulk.http.get(status["ResultFileUrl"]).status_code == 403
    bulk.emu.bulk.expire_links()
    assert bulk.http.get(status["ResultFileUrl"]).status_code == 403


def test_python_api_refuses_what_is_not_there(msads_emulator: MicrosoftAdsEmulator) -> None:
    with pytest.raises(ValueError, match=r"bulk\.ids"):
        msads_emulator.bulk.update_entity("Keyword", "42", Status="Paused")
    with pytest.raises(ValueError, match="record_type"):
        msads_emulator.bulk.ids("Widget")
    with pytest.raises(ValueError, match="status"):
        msads_emulator.bulk.configure_next_download(status="Done")
    keyword = msads_emulator.bulk.ids("Keyword")[0]
    msads_emulator.bulk.delete_entity("Keyword", keyword)
    with pytest.raises(ValueError, match="deleted"):
        msads_emulator.bulk.update_entity("Keyword", keyword, Bid="1.00")


# ------------------------------------------------------------------------------ the file, directly


def bulk_file(emu: MicrosoftAdsEmulator, **overrides: Any) -> BulkFile:
    fields: dict[str, Any] = {
        "key": "k",
        "account_id": emu.account.id,
        "customer_id": emu.customer_id,
        "time_zone": emu.account.time_zone,
        "tree": emu.bulk.tree(),
        "record_types": ("Campaign", "Ad Group", "Keyword", "Responsive Search Ad"),
        "campaigns": None,
        "last_sync": None,
        "sync_time": 1_800_000_000.0,
        "created_at": 1_790_000_000.0,
        "changes": {},
    }
    fields.update(overrides)
    return BulkFile(**fields)


@pytest.mark.parametrize("file_type", ["Csv", "Tsv"])
def test_fast_keyword_rows_are_the_rows_csv_writes(msads_emulator: MicrosoftAdsEmulator, file_type: str) -> None:
    """The text fast path for keywords writes exactly what the csv module writes for the same rows."""
    msads_emulator.bulk.set_tree(campaigns=2, ad_groups_per_campaign=3, keywords_per_ad_group=50)
    file = bulk_file(msads_emulator, file_type=file_type)
    written = io.BytesIO()
    file.write_text(written)

    expected = io.StringIO()
    writer = csv.writer(expected, dialect=csv.excel_tab if file_type == "Tsv" else csv.excel)
    header = file.header()
    writer.writerow(header)
    writer.writerows([row.get(name, "") for name in header] for row in file.rows())
    assert written.getvalue().decode("utf-8") == "\ufeff" + expected.getvalue()


class _Enough(Exception):
    pass


class _FirstMegabyte(io.RawIOBase):
    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.size += len(data)
        if self.size > 1 << 20:
            raise _Enough
        return len(data)


def test_a_file_of_a_hundred_million_keywords_streams_from_its_first_rows(
    msads_emulator: MicrosoftAdsEmulator,
) -> None:
    """Rows are made lazily: the first megabyte of a file of 10^8 keywords (tens of GB) comes out
    before anything else is built, and the first rows are there at once."""
    msads_emulator.bulk.set_tree(campaigns=1000, ad_groups_per_campaign=100, keywords_per_ad_group=1000)
    file = bulk_file(msads_emulator, tree=msads_emulator.bulk.tree(), record_types=("Keyword",))
    first = list(itertools.islice(file.rows(), 3))
    assert [r["Type"] for r in first] == ["Format Version", "Account", "Keyword"]
    sink = _FirstMegabyte()
    with pytest.raises(_Enough):
        file.write(sink)  # type: ignore[arg-type]
    assert sink.size > 1 << 20
