"""The Bulk core (airflow_provider_msads.bulk): requests, faults, the download flow, the splitter, the
sealed Sync Time. No Airflow; HTTP through httpx.MockTransport."""

from __future__ import annotations

import csv
import datetime
import importlib.util
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_msads.bulk import flow as bf
from airflow_provider_msads.bulk._record_types import RECORD_COLUMNS
from airflow_provider_msads.bulk.request import build_account_request, build_campaign_requests
from airflow_provider_msads.bulk.service import (
    AccountTooBigError,
    Bulk,
    BulkStatus,
    FullSyncRequiredError,
    poll_delay,
)
from airflow_provider_msads.bulk.split import BulkFileError, Splitter, file_stem, publish_files
from airflow_provider_msads.bulk.state import SyncSeal, fingerprint
from airflow_provider_msads.connection.endpoints import resolve_endpoints
from airflow_provider_msads.errors import ArgumentError, EndpointError, LinkExpiredError
from airflow_provider_msads.errors.catalogue import BULK_CATALOGUE, catalogue_rows
from airflow_provider_msads.tokens.flow import run_flow

ROOT = Path(__file__).resolve().parents[2]
UTC = datetime.timezone.utc

# ------------------------------------------------------------------------------------ request


def test_account_request_is_one_account_with_string_ids_and_the_fixed_format() -> None:
    body = build_account_request(
        151000001, ["Campaigns", "Keywords"], last_sync=datetime.datetime(2026, 12, 1, 6, 17, 27, tzinfo=UTC)
    )
    assert body == {
        "AccountIds": ["151000001"],
        "LastSyncTimeInUTC": "2026-12-01T06:17:27Z",
        "DownloadEntities": ["Campaigns", "Keywords"],
        "DataScope": "EntityData",
        "DownloadFileType": "Csv",
        "FormatVersion": "6.0",
        "CompressionType": "Zip",
    }


def test_quality_score_data_forces_a_full_download() -> None:
    body = build_account_request(
        "7", ["Keywords"], data_scope=["EntityData", "QualityScoreData"], last_sync=datetime.datetime.now(UTC)
    )
    assert body["LastSyncTimeInUTC"] is None
    assert body["DataScope"] == "EntityData, QualityScoreData"


def test_a_misspelt_entity_is_refused_naming_the_field_and_the_right_name() -> None:
    with pytest.raises(ArgumentError) as caught:
        build_account_request("7", ["Campaigns", "keywords"])
    assert caught.value.field == "entities"
    assert "'Keywords'" in str(caught.value)
    with pytest.raises(ArgumentError, match="3210"):
        build_account_request("7", [])


def test_campaign_requests_hold_at_most_1000_campaigns_of_one_account() -> None:
    bodies = build_campaign_requests("7", [str(i) for i in range(1, 2501)], ["Keywords"])
    assert [len(b["Campaigns"]) for b in bodies] == [1000, 1000, 500]
    assert bodies[2]["Campaigns"][0] == {"CampaignId": "2001", "ParentAccountId": "7"}
    assert "AccountIds" not in bodies[0]


# ------------------------------------------------------------------------------------ endpoints


def test_bulk_url_defaults_override_and_allowed_origins() -> None:
    assert resolve_endpoints("production").bulk_url == "https://bulk.api.bingads.microsoft.com/Bulk/v13"
    assert resolve_endpoints("sandbox").bulk_url == "https://bulk.api.sandbox.bingads.microsoft.com/Bulk/v13"
    ends = resolve_endpoints(bulk_url="http://127.0.0.1:9/Bulk/v13/")
    assert ends.bulk_url == "http://127.0.0.1:9/Bulk/v13"
    assert ends.sends_credentials_to("http://127.0.0.1:9/Bulk/v13/BulkDownloadStatus/Query")
    assert not ends.sends_credentials_to("https://bingadsappsstorageprod.blob.core.windows.net/x.zip")
    with pytest.raises(EndpointError) as caught:
        resolve_endpoints(bulk_url="https://bulk.example.com/Bulk/v13")
    assert caught.value.field == "bulk_url"


# ------------------------------------------------------------------------------------ service


def _fault(code: int, name: str, details: str = "") -> dict[str, Any]:
    return {
        "TrackingId": "t-1",
        "Type": "ApiFault",
        "OperationErrors": [{"Code": code, "ErrorCode": name, "Message": "m", "Details": details}],
    }


def _bulk(handler: Any, slept: list[float] | None = None) -> tuple[Bulk, httpx.Client]:
    sleeps = slept if slept is not None else []
    return Bulk("http://127.0.0.1:1/Bulk/v13", sleep=sleeps.append), httpx.Client(
        transport=httpx.MockTransport(handler)
    )


def test_submit_posts_to_microsofts_path_and_returns_the_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"DownloadRequestId": "d-1"})

    bulk, client = _bulk(handler)
    assert bulk.submit(client, build_account_request("7", ["Campaigns"])) == "d-1"
    assert seen[0].url.path == "/Bulk/v13/Campaigns/DownloadByAccountIds"
    assert bulk.submit(client, build_campaign_requests("7", ["1"], ["Campaigns"])[0]) == "d-1"
    assert seen[1].url.path == "/Bulk/v13/Campaigns/DownloadByCampaignIds"


def test_3207_carries_the_campaign_ids_of_details() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=_fault(3207, "CampaignServiceAccountTooBigToDownload", "11, 12,13"))

    bulk, client = _bulk(handler)
    with pytest.raises(AccountTooBigError) as caught:
        bulk.submit(client, build_account_request("7", ["Keywords"]))
    assert caught.value.campaign_ids == ("11", "12", "13")
    assert caught.value.code == 3207


def test_4204_waits_up_to_fifteen_minutes_then_goes_on() -> None:
    answers = [httpx.Response(400, json=_fault(4204, "BulkServiceNoMoreCallsPermittedForTheTimePeriod"))]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop() if answers else httpx.Response(200, json={"DownloadRequestId": "d-2"})

    slept: list[float] = []
    bulk, client = _bulk(handler, slept)
    assert bulk.submit(client, build_account_request("7", ["Campaigns"])) == "d-2"
    assert slept == [900.0]


def test_117_on_status_backs_off_and_retries() -> None:
    answers = [httpx.Response(400, json=_fault(117, "CallRateExceeded"))]

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"RequestId": "d-1"}
        return answers.pop() if answers else httpx.Response(200, json={"RequestStatus": "InProgress"})

    slept: list[float] = []
    bulk, client = _bulk(handler, slept)
    assert bulk.status(client, "d-1").status == "InProgress"
    assert slept == [60.0]


def test_3603_on_submit_is_a_full_sync_required_error() -> None:
    bulk, client = _bulk(lambda r: httpx.Response(400, json=_fault(3603, "CampaignServiceFullSyncRequired")))
    with pytest.raises(FullSyncRequiredError):
        bulk.submit(client, build_account_request("7", ["Campaigns"]))


def test_status_keeps_the_url_only_when_completed() -> None:
    body = {"RequestStatus": "Completed", "ResultFileUrl": "https://blob.example/x.zip", "PercentComplete": 100}
    bulk, client = _bulk(lambda r: httpx.Response(200, json=body))
    status = bulk.status(client, "d-1")
    assert (status.done, status.url, status.percent) == (True, "https://blob.example/x.zip", 100)


def test_polling_follows_microsofts_advice() -> None:
    assert poll_delay(0) == 15.0
    assert poll_delay(299) == 15.0
    assert poll_delay(300) == 60.0  # "one minute intervals after waiting five minutes"
    assert poll_delay(10, poll_interval=1) == 1.0
    assert poll_delay(400, poll_interval=1) == 60.0


def test_every_bulk_download_code_is_in_the_catalogue_and_the_error_table() -> None:
    wanted = {*range(3201, 3220), 3228, 3603, 4201, 4204} - {3202, 3206}  # not on Microsoft's page
    assert wanted <= set(BULK_CATALOGUE)
    assert all(e.meaning and e.remedy for e in BULK_CATALOGUE.values())
    assert sum(1 for row in catalogue_rows() if row["meaning"].startswith("Bulk: ")) == len(BULK_CATALOGUE)


# ------------------------------------------------------------------------------------ flow


class FakeMicrosoft:
    """Answers the flow's steps like Microsoft would, scripted per test."""

    def __init__(self, statuses: list[BulkStatus], submit_errors: list[Exception] | None = None) -> None:
        self.statuses = statuses
        self.submit_errors = submit_errors or []
        self.submitted: list[dict[str, Any]] = []
        self.waits: list[float] = []
        self.fetched: list[str] = []
        self.expire_first = False
        self.clock = 0.0

    def perform(self, step: bf.Step) -> Any:
        if isinstance(step, bf.Submit):
            self.submitted.append(step.request)
            if self.submit_errors:
                raise self.submit_errors.pop(0)
            return f"d-{len(self.submitted)}"
        if isinstance(step, bf.Status):
            return self.statuses.pop(0)
        if isinstance(step, bf.Wait):
            self.waits.append(step.seconds)
            self.clock += step.seconds
            return None
        self.fetched.append(step.url)
        if self.expire_first:
            self.expire_first = False
            raise LinkExpiredError("expired", http_status=403)
        from airflow_provider_msads.bulk.split import AccountSync

        return AccountSync(account_id="7", sync_time=f"12/0{len(self.fetched)}/2026 06:00:00")


def _st(status: str, url: str | None = None) -> BulkStatus:
    return BulkStatus("d", status, 100 if url else 10, url)


def test_a_delta_refused_with_failed_full_sync_required_is_downloaded_in_full_in_the_same_try() -> None:
    fake = FakeMicrosoft([_st("InProgress"), _st("FailedFullSyncRequired"), _st("Completed", "https://b/1.zip")])
    last = datetime.datetime.now(UTC) - datetime.timedelta(days=1)
    result = run_flow(bf.account_download("7", ["Campaigns"], last_sync=last, clock=lambda: fake.clock), fake.perform)
    assert [r["LastSyncTimeInUTC"] is None for r in fake.submitted] == [False, True]
    assert result.full is True
    assert fake.waits == [15.0]


def test_3207_downloads_by_campaign_ids_and_keeps_the_earliest_sync_time() -> None:
    too_big = AccountTooBigError("big", campaign_ids=tuple(str(i) for i in range(1, 1202)), codes=[3207])
    fake = FakeMicrosoft(
        [_st("Completed", "https://b/1.zip"), _st("Completed", "https://b/2.zip")], submit_errors=[too_big]
    )
    result = run_flow(bf.account_download("7", ["Keywords"]), fake.perform)
    assert [len(r.get("Campaigns", [])) for r in fake.submitted] == [0, 1000, 201]
    assert result.by_campaigns and result.full
    assert result.sync_time == "12/01/2026 06:00:00"


def test_an_expired_link_is_renewed_by_asking_for_the_status_again() -> None:
    fake = FakeMicrosoft([_st("Completed", "https://b/old.zip"), _st("Completed", "https://b/new.zip")])
    fake.expire_first = True
    run_flow(bf.account_download("7", ["Campaigns"]), fake.perform)
    assert fake.fetched == ["https://b/old.zip", "https://b/new.zip"]


# ------------------------------------------------------------------------------------ splitter


def _bulk_zip(path: Path, rows: list[dict[str, str]], extra_columns: tuple[str, ...] = ()) -> str:
    header = ["Type", "Status", "Id", "Parent Id", "Campaign", "Ad Group", "Keyword", "Name", "Sync Time"]
    header += ["Modified Time", "Error", "Error Number", "Match Type", "Bid", *extra_columns]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow(["Format Version", "", "", "", "", "", "", "6.0"])
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bulk.csv", "\ufeff" + text.getvalue())
    return str(path)


ACCOUNT = {"Type": "Account", "Id": "7", "Parent Id": "99", "Sync Time": "12/05/2026 06:17:27"}


def test_the_union_file_is_split_per_type_with_stable_columns(tmp_path: Path) -> None:
    rows = [
        ACCOUNT,
        {"Type": "Campaign", "Status": "Active", "Id": "11", "Parent Id": "7", "Campaign": "Shoes"},
        {"Type": "Keyword", "Status": "Deleted", "Id": "31", "Parent Id": "21", "Keyword": "red\nshoes", "Bid": "0.5"},
        {"Type": "Shiny New Record", "Id": "41", "Name": "x"},
    ]
    splitter = Splitter(str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    sync = splitter.feed(_bulk_zip(tmp_path / "a.zip", rows, extra_columns=("Column From The Future",)))
    assert (sync.account_id, sync.sync_time) == ("7", "12/05/2026 06:17:27")
    files = publish_files(splitter, str(tmp_path / "out"))
    assert set(files) == {"account", "campaign", "keyword", "shiny_new_record"}
    with open(files["keyword"]["path"], newline="", encoding="utf-8") as handle:
        got = list(csv.reader(handle))
    assert tuple(got[0]) == RECORD_COLUMNS["Keyword"]
    assert {"Id", "Parent Id", "Status", "Keyword"} <= set(got[0])
    record = dict(zip(got[0], got[1], strict=True))
    assert (record["Status"], record["Keyword"], record["Bid"]) == ("Deleted", "red\nshoes", "0.5")
    assert files["keyword"]["rows"] == 1
    assert not (tmp_path / "out" / "format_version.csv").exists()
    with open(files["shiny_new_record"]["path"], encoding="utf-8") as handle:
        assert handle.readline().startswith("Type,Status,Id,")  # an unknown type keeps the union header


def test_two_accounts_share_one_file_per_type(tmp_path: Path) -> None:
    splitter = Splitter(str(tmp_path))
    for n in ("7", "8"):
        rows = [{**ACCOUNT, "Id": n}, {"Type": "Campaign", "Id": f"1{n}", "Parent Id": n, "Campaign": "c"}]
        splitter.feed(_bulk_zip(tmp_path / f"{n}.zip", rows))
    files = publish_files(splitter, str(tmp_path / "out"))
    assert files["campaign"]["rows"] == 2 and files["account"]["rows"] == 2


def test_an_error_row_fails_naming_entity_id_and_microsofts_error(tmp_path: Path) -> None:
    rows = [ACCOUNT, {"Type": "Keyword Error", "Id": "31", "Error": "InvalidBid", "Error Number": "1234"}]
    splitter = Splitter(str(tmp_path))
    with pytest.raises(BulkFileError) as caught:
        splitter.feed(_bulk_zip(tmp_path / "e.zip", rows))
    assert "Keyword 31" in str(caught.value) and "1234 InvalidBid" in str(caught.value)


def test_file_stems_are_lower_snake_case() -> None:
    assert file_stem("Responsive Search Ad") == "responsive_search_ad"
    assert file_stem("Ad Group") == "ad_group"
    assert {"Account", "Campaign", "Ad Group", "Keyword", "Responsive Search Ad"} <= set(RECORD_COLUMNS)
    for name, column in (("Campaign", "Campaign"), ("Ad Group", "Ad Group"), ("Keyword", "Keyword")):
        assert {"Id", "Parent Id", "Status", column} <= set(RECORD_COLUMNS[name])


def test_record_types_match_the_installed_sdk() -> None:
    """``_record_types`` is generated; regenerate with scripts/gen_bulk_record_types.py."""
    spec = importlib.util.spec_from_file_location("gen_bulk", ROOT / "scripts" / "gen_bulk_record_types.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.record_types()
    fresh = module.render(data)
    current = (ROOT / "airflow_provider_msads" / "bulk" / "_record_types.py").read_text(encoding="utf-8")
    if f'SDK_VERSION: Final = "{data["version"]}"' in current:
        assert fresh == current
    else:  # a newer SDK in CI: every type and column of the copy must still exist
        from airflow_provider_msads.bulk import _record_types as copy

        new = data["types"]
        for record_type, columns in copy.RECORD_COLUMNS.items():
            assert set(columns) <= set(new.get(record_type, columns))


# ------------------------------------------------------------------------------------ state


def test_the_sync_time_seal_opens_only_for_its_task_and_arguments() -> None:
    fp = fingerprint("msads_default", "7", ["Campaigns"], ["EntityData"])
    seal = SyncSeal("secret", "msads_default", "client", "key-1")
    now = datetime.datetime(2026, 12, 6, tzinfo=UTC)
    sealed = seal.seal("12/05/2026 06:17:27", fp)
    assert seal.open(sealed, fp, now=now)[0] == datetime.datetime(2026, 12, 5, 6, 17, 27, tzinfo=UTC)
    other_fp = fingerprint("msads_default", "7", ["Keywords"], ["EntityData"])
    assert seal.open(sealed, other_fp, now=now)[0] is None
    assert SyncSeal("other secret", "msads_default", "client", "key-1").open(sealed, fp, now=now)[0] is None
    assert SyncSeal("secret", "msads_default", "client", "key-2").open(sealed, fp, now=now)[0] is None
    forged = json.loads(sealed)
    forged["state"] = forged["state"].replace("12/05/2026", "12/06/2026")
    assert seal.open(json.dumps(forged), fp, now=now)[0] is None
    assert seal.open(sealed, fp, now=now + datetime.timedelta(days=30))[0] is None  # Microsoft: not > 30 days


def test_parquet_times_keep_milliseconds_in_utc() -> None:
    from airflow_provider_msads.bulk.parquet import _time

    assert _time("04/27/2023 18:00:14.970") == datetime.datetime(2023, 4, 27, 18, 0, 14, 970000, tzinfo=UTC)
    assert _time("12/05/2026 06:17:27") == datetime.datetime(2026, 12, 5, 6, 17, 27, tzinfo=UTC)
    assert _time("") is None


def test_the_splitter_holds_a_row_not_the_file(tmp_path: Path) -> None:
    """Python's heap peak while splitting an 8+ MB file stays a small fraction of the file (the control:
    holding the text does show up)."""
    import tracemalloc

    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("bulk.csv", "w") as raw:
        raw.write("\ufeffType,Status,Id,Parent Id,Keyword,Bid,Sync Time\r\n".encode())
        raw.write(b"Format Version,,,,6.0,,\r\nAccount,,7,99,,,12/05/2026 06:17:27\r\n")
        line = "Keyword,Active,{},21,a fairly long keyword text to make the rows heavier {},0.25,\r\n"
        for i in range(0, 100_000, 1000):
            raw.write("".join(line.format(n, n) for n in range(i, i + 1000)).encode())
    with zipfile.ZipFile(path) as archive:
        size = archive.infolist()[0].file_size
    assert size > 8 * 1024 * 1024
    splitter = Splitter(str(tmp_path))
    tracemalloc.start()
    try:
        splitter.feed(str(path))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with zipfile.ZipFile(path) as archive:
            whole = archive.read("bulk.csv")
        control = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(whole) == size and control > size
    assert peak < size / 8, (peak, size)
    assert splitter.files()["Keyword"][2] == 100_000
