"""Microsoft Advertising Bulk REST API v13, download side: DownloadCampaignsByAccountIds,
DownloadCampaignsByCampaignIds, GetBulkDownloadStatus and the result file link.

What it plays (each rule with its page in docs/microsoft-fidelity.md, "Bulk"):

* ``POST /Bulk/v13/Campaigns/DownloadByAccountIds`` and ``.../DownloadByCampaignIds`` validate the
  request with the codes of Microsoft's "Operation error codes" page (one account 3201, campaigns of
  one account 3203, entities 3210, format version 3219/3217, data scope 3213/3228, last sync time
  3208 and the 30-day limit, 3207 AccountTooBigToDownload with the campaign ids in ``Details``, 3216)
  and answer a ``DownloadRequestId`` (up to 40 characters of any kind, valid two days).
* ``POST /Bulk/v13/BulkDownloadStatus/Query`` answers ``InProgress`` with ``PercentComplete`` a
  configurable number of times, then ``Completed`` with a fresh ``ResultFileUrl`` (valid five
  minutes, no credentials), or ``Failed`` / ``FailedFullSyncRequired`` (with 3603) when a test asks.
* The file (``_bulk_files``) is generated from each account's deterministic entity tree and the
  changes a test made through :class:`EmulatorBulk` (``emulator.bulk``): a download with
  ``LastSyncTimeInUTC`` holds only what changed since, deleted entities as ``Deleted``.
"""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, Final
from urllib.parse import parse_qsl

from airflow_provider_msads.testing.emulator._ads_api import _AdsApi, _OperationError
from airflow_provider_msads.testing.emulator._bulk_catalogue import DOWNLOAD_ENTITIES
from airflow_provider_msads.testing.emulator._bulk_controls import (
    BulkDownload,
    EmulatorBulk,
    _BulkLink,
)
from airflow_provider_msads.testing.emulator._bulk_files import (
    ENTITY_RECORD_TYPES,
    FORMAT_VERSION,
    BulkFile,
    entity_id,
)
from airflow_provider_msads.testing.emulator._catalogues import (
    _BULK_DOWNLOAD_PREFIX,
    _BULK_PREFIX,
    _FAULTS,
    _JSON,
    _Fault,
)
from airflow_provider_msads.testing.emulator._http import _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._model import _as_id
from airflow_provider_msads.testing.emulator._report_files import _AZURE_VERSION, _ZIP, _azure_error
from airflow_provider_msads.testing.emulator._report_links import refused_link

if TYPE_CHECKING:
    pass

_TWO_DAYS: Final = 2 * 24 * 3600.0
_THIRTY_DAYS: Final = 30 * 24 * 3600.0
_MAX_CAMPAIGNS: Final = 1000
_DATA_SCOPES: Final = ("EntityData", "QualityScoreData", "BidSuggestionsData")
# Request ids: "The string has a length up to 40 and can contain any character."
_ID_ALPHABET: Final = string.ascii_letters + string.digits + "+/=-_.!~"
_CREDENTIAL_HEADERS: Final = ("authorization", "developertoken", "customerid", "customeraccountid", "password")

# Numbers, symbolic codes and texts: Microsoft's "Operation error codes" page
# (MicrosoftDocs/Advertising advertising/bingads-13/guides/operation-error-codes.md).
_BULK_ERRORS: Final[dict[int, tuple[str, str]]] = {
    1100: ("CampaignServiceInvalidCampaignId", "The campaign ID is invalid."),
    1102: ("CampaignServiceInvalidAccountId", "The account ID is invalid."),
    3201: ("CampaignServiceAccountIdsLengthExceeded", "The list of account IDs exceeds the maximum number allowed."),
    3203: (
        "CampaignServiceCampaignsContainsMultipleAccounts",
        "The list of campaigns must belong to the same account.",
    ),
    3204: ("CampaignServiceCampaignsContainsNullScope", "The list of campaigns cannot contain null items."),
    3205: ("CampaignServiceInvalidDownloadRequestId", "The download request ID is not valid."),
    3207: (
        "CampaignServiceAccountTooBigToDownload",
        "The account has more keywords than allowed per request. Please call DownloadCampaignsByCampaignIds to "
        "download the account's campaigns in multiple requests. The Details field contains the campaign "
        "identifiers under the account.",
    ),
    3208: ("CampaignServiceLastSyncTimeCannotBeInTheFuture", "The last sync time cannot be later than now."),
    3209: ("CampaignServiceLastSyncTimeTooOld", "The last sync time cannot be earlier than 1/1/1753."),
    3210: (
        "BulkServiceMinimumRequiredEntitiesNotSpecified",
        "The minimum set of required entities should be specified for bulk download.",
    ),
    3213: (
        "BulkServiceInvalidSyncTimeForPerformanceStatsDateRange",
        "The LastSyncTimeInUTC element should be null when including performance statistics in the requested "
        "data scope.",
    ),
    3216: (
        "BulkServiceCampaignsTooBigToDownload",
        "The campaigns included in the download have more keywords than allowed per request. Please call "
        "DownloadCampaignsByCampaignIds with fewer campaigns.",
    ),
    3217: (
        "BulkServiceFormatVersionNotSupported",
        "One or more bulk download entities are not supported with the specified format version.",
    ),
    3219: ("BulkServiceFormatVersionRequired", "The format version is required."),
    3228: ("BulkServiceDataScopeInvalid", "The specified DataScope value is either invalid or no longer supported."),
    3306: ("CampaignServiceAccountIdsArrayShouldNotBeNullOrEmpty", "The list of account IDs cannot be null or empty."),
    3603: ("CampaignServiceFullSyncRequired", "The last sync time must be null."),
    4204: (
        "BulkServiceNoMoreCallsPermittedForTheTimePeriod",
        "No more bulk upload or download calls will be permitted for this account for the current time period. "
        "If you have reached your bulk upload limit, the bulk download operations may still be available, or "
        "vice versa. If you observe this error, you can resubmit your request after waiting up to 15 minutes.",
    ),
    4347: ("CampaignServiceCampaignIdsNotPassed", "Campaign Ids passed are null or empty."),
    4350: ("CampaignServiceEntityBatchLimitExceeded", "Too many entities ids in one batch."),
}
# NullRequest (100) with the path in Details as Reporting writes it; every other generic code
# (105, 109, 116, 117, 0 ...) as Customer Management writes it.
_BULK_FAULTS: Final[dict[int, _Fault]] = {
    100: _FAULTS[100],
    **{code: _Fault(name, message, 400, True) for code, (name, message) in _BULK_ERRORS.items()},
}


def _null_request(path: str) -> _OperationError:
    """A value the REST service cannot convert (an unknown enum value): NullRequest with the JSON path
    (ASSUMPTION: as Reporting answers it, see docs/microsoft-fidelity.md)."""
    return _OperationError(
        100,
        f"Invalid JSON. The JSON value could not be converted. Path: {path} | LineNumber: 0 | BytePositionInLine: 0.",
    )


_ISO: Final = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?")


def _parse_utc(value: object) -> float | None:
    """``LastSyncTimeInUTC`` as the service reads it: ISO 8601, a missing zone meaning UTC."""
    if not isinstance(value, str):
        return None
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    seconds = (moment.replace(tzinfo=timezone.utc) - offset).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


class _Bulk(_AdsApi):
    """Bulk v13 download operations and the result file links (see the module docstring)."""

    bulk: EmulatorBulk

    def _init_bulk(self) -> None:
        self.bulk = EmulatorBulk(self)  # type: ignore[arg-type]

    @property
    def bulk_url(self) -> str:
        """The Bulk v13 base URL (the connection's ``bulk_url``)."""
        return f"{self.base_url}{_BULK_PREFIX}"

    # ---------------------------------------------------------------------- operations

    def _bulk_endpoint(self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        return self._ads_endpoint(
            "bulk",
            operation,
            method,
            headers,
            body,
            operations={
                "DownloadCampaignsByAccountIds": self._download_by_account_ids,
                "DownloadCampaignsByCampaignIds": self._download_by_campaign_ids,
                "GetBulkDownloadStatus": self._bulk_download_status,
            },
            fault=self._bulk_fault,
            caller_check=self._refused_reporting_caller,  # type: ignore[attr-defined]
        )

    def _bulk_fault(self, code: int, tracking_id: str, details: str | None = None) -> _Reply:
        """Bulk errors as ``ApiFaultDetail`` with OperationErrors (ErrorCode, Details); generic ones as
        Customer Management writes them."""
        spec = _BULK_FAULTS.get(code)
        if spec is None:
            return self._fault(code, tracking_id, details)
        return self._api_fault_detail(code, spec, tracking_id, details)

    def _download_by_account_ids(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        raw = payload.get("AccountIds")
        if not raw:
            raise _OperationError(3306)
        if not isinstance(raw, list):
            raise _null_request("$.AccountIds")
        if len(raw) > 1:
            raise _OperationError(3201, f"{len(raw)} account ids; at most 1.")
        account = self._bulk_account(raw[0])
        options = self._bulk_options(payload)
        tree = self.bulk.tree(account)
        if tree.keywords > self.bulk.keyword_limit:
            ids = ",".join(entity_id(account, "Campaign", i) for i in range(tree.campaigns))
            raise _OperationError(3207, ids)
        return self._new_bulk_download("DownloadCampaignsByAccountIds", account, None, options, payload)

    def _download_by_campaign_ids(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        raw = payload.get("Campaigns")
        if not raw:
            raise _OperationError(4347)
        if not isinstance(raw, list):
            raise _null_request("$.Campaigns")
        if len(raw) > _MAX_CAMPAIGNS:
            raise _OperationError(4350, f"{len(raw)} campaigns; at most {_MAX_CAMPAIGNS}.")
        if any(entry is None for entry in raw):
            raise _OperationError(3204)
        if not all(isinstance(entry, dict) for entry in raw):
            raise _null_request("$.Campaigns")
        accounts = {_as_id(entry.get("ParentAccountId")) for entry in raw}
        if len(accounts) > 1:
            raise _OperationError(3203)
        account = self._bulk_account(next(iter(accounts)))
        chosen: set[int] = set()
        for entry in raw:
            wanted = _as_id(entry.get("CampaignId"))
            index = self.bulk._campaign_index(account, wanted) if wanted is not None else None
            if index is None:
                raise _OperationError(1100, str(entry.get("CampaignId")))
            chosen.add(index)
        options = self._bulk_options(payload)
        tree = self.bulk.tree(account)
        keywords = len(chosen) * tree.ad_groups_per_campaign * tree.keywords_per_ad_group
        if keywords > self.bulk.campaigns_keyword_limit:
            raise _OperationError(3216)
        return self._new_bulk_download("DownloadCampaignsByCampaignIds", account, frozenset(chosen), options, payload)

    def _bulk_account(self, value: object) -> str:
        account = _as_id(value)
        if account is None or account not in self._accounts:
            raise _OperationError(1102, str(value))
        if not self._visible_account(account):  # type: ignore[attr-defined]
            raise _OperationError(106)
        return account

    def _bulk_options(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Entities (3210, 100), format version (3219, 3217), file and compression types (100), data
        scope (3228, 3213) and the last sync time (3208, 3209, the 30-day limit)."""
        entities = payload.get("DownloadEntities")
        if not entities:
            raise _OperationError(3210)
        if not isinstance(entities, list):
            raise _null_request("$.DownloadEntities")
        for index, name in enumerate(entities):
            if name not in DOWNLOAD_ENTITIES:
                raise _null_request(f"$.DownloadEntities[{index}]")
        version = payload.get("FormatVersion")
        if version is None or version == "":
            raise _OperationError(3219)
        if str(version) != FORMAT_VERSION:
            raise _OperationError(3217, f"FormatVersion {version!r}; Bulk v13 supports {FORMAT_VERSION}.")
        file_type = payload.get("DownloadFileType") or "Csv"
        if file_type not in ("Csv", "Tsv"):
            raise _null_request("$.DownloadFileType")
        compression = payload.get("CompressionType") or "Zip"
        if compression not in ("Zip", "GZip"):
            raise _null_request("$.CompressionType")
        raw_scope = payload.get("DataScope") or "EntityData"
        scopes = raw_scope if isinstance(raw_scope, list) else re.split(r"[\s,]+", str(raw_scope).strip())
        if any(scope not in _DATA_SCOPES for scope in scopes):
            raise _OperationError(3228, str(raw_scope))
        raw_sync = payload.get("LastSyncTimeInUTC")
        last_sync: float | None = None
        if raw_sync is not None:
            last_sync = _parse_utc(raw_sync)
            if last_sync is None:
                raise _null_request("$.LastSyncTimeInUTC")
            now = self.clock()
            if last_sync > now:
                raise _OperationError(3208)
            if last_sync < datetime(1753, 1, 1, tzinfo=timezone.utc).timestamp():
                raise _OperationError(3209)
            if now - last_sync > _THIRTY_DAYS:
                # "If you set a date and time that is more than 30 days ago, an error will be
                # returned." The page names no code: 3603 (FullSyncRequired) is ASSUMPTION.
                raise _OperationError(3603, "LastSyncTimeInUTC is more than 30 days ago; download in full.")
            if any(scope != "EntityData" for scope in scopes):
                raise _OperationError(3213)
        record_types = tuple(dict.fromkeys(t for name in entities for t in ENTITY_RECORD_TYPES.get(name, ())))
        return {
            "record_types": record_types,
            "file_type": file_type,
            "compression": compression,
            "data_scope": tuple(scopes),
            "last_sync": last_sync,
        }

    def _new_bulk_download(
        self,
        operation: str,
        account: str,
        campaigns: frozenset[int] | None,
        options: Mapping[str, Any],
        payload: Mapping[str, Any],
    ) -> _Reply:
        bulk = self.bulk
        request_id = self._rand.fresh(lambda: self._rand.text(_ID_ALPHABET, 40), bulk.downloads)
        now = self.clock()
        file = BulkFile(
            key=uuid.UUID(bytes=self._rand.bytes(16)).hex,
            account_id=account,
            customer_id=self._accounts[account].parent_customer_id,
            time_zone=self._accounts[account].time_zone,
            tree=bulk.tree(account),
            record_types=options["record_types"],
            campaigns=campaigns,
            last_sync=options["last_sync"],
            sync_time=now,
            created_at=bulk.created_at,
            changes=bulk._snapshot(account),
            file_type=options["file_type"],
            compression=options["compression"],
        )
        download = BulkDownload(
            id=request_id,
            operation=operation,
            file=file,
            submitted_at=now,
            data_scope=options["data_scope"],
            pending_polls=bulk.pending_polls,
            request=dict(payload),
        )
        if bulk._next:
            settings = bulk._next.popleft()
            if "error_rows" in settings:
                file.error_rows = settings.pop("error_rows")
            for key, value in settings.items():
                setattr(download, key, value)
        bulk.downloads[request_id] = download
        return _Reply(200, _json_bytes({"DownloadRequestId": request_id}), _JSON)

    def _bulk_download_status(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        request_id = payload.get("RequestId")
        download = self.bulk.downloads.get(request_id) if isinstance(request_id, str) else None
        if download is None or self.clock() - download.submitted_at > _TWO_DAYS:
            raise _OperationError(3205)
        download.polls += 1
        total = download.polls + download.pending_polls
        status: dict[str, Any] = {"ForwardCompatibilityMap": None, "Errors": None, "ResultFileUrl": None}
        if download.pending_polls > 0:
            download.pending_polls -= 1
            percent = min(99, 100 * download.polls // max(1, total))
            status.update(RequestStatus="InProgress", PercentComplete=percent)
        elif download.status == "Failed":
            status.update(RequestStatus="Failed", PercentComplete=100)
        elif download.status == "FailedFullSyncRequired":
            name, message = _BULK_ERRORS[3603]
            status.update(
                RequestStatus="FailedFullSyncRequired",
                PercentComplete=100,
                Errors=[{"Code": 3603, "Details": None, "ErrorCode": name, "Message": message}],
            )
        else:
            status.update(RequestStatus="Completed", PercentComplete=100, ResultFileUrl=self._new_bulk_link(download))
        return _Reply(200, _json_bytes(status), _JSON)

    # ---------------------------------------------------------------------- result file links

    def _new_bulk_link(self, download: BulkDownload) -> str:
        """A fresh blob-like URL valid ``bulk.link_lifetime`` seconds ("five minutes from the time this
        URL is returned"); each Completed status mints one."""
        token = self._rand.text("abcdef0123456789", 32)
        signature = self._rand.text(string.ascii_letters + string.digits, 43) + "="
        expires_at = self.clock() + self.bulk.link_lifetime
        self.bulk._links[token] = _BulkLink(token, signature, download.id, expires_at)
        expiry = datetime.fromtimestamp(expires_at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        query = f"sv={_AZURE_VERSION}&se={expiry}&sr=b&sp=r&sig={signature.replace('=', '%3D')}"
        return f"{self.base_url}{_BULK_DOWNLOAD_PREFIX}{token}/{download.file.file_name}?{query}"

    def _bulk_download_endpoint(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> _Reply:
        sent = [name for name in _CREDENTIAL_HEADERS if name in headers]
        with self._lock:
            self.counters["bulk_download"] += 1
            if sent:
                self.counters["bulk_download.with_credentials"] += 1
        # The result file host takes the report download link's injections (``inject("download", ...)``).
        return self._with_injection(
            "download",
            self._injected_download_reply,  # type: ignore[attr-defined]
            lambda: self._bulk_file(method, path, query),
        )

    def _bulk_file(self, method: str, path: str, query: str) -> _Reply:
        if method not in ("GET", "HEAD"):
            return _azure_error(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.")
        parts = path.split("/")  # "", "download-bulk", token, file name
        params = dict(parse_qsl(query, keep_blank_values=True))
        with self._lock:
            link = self.bulk._links.get(parts[2]) if len(parts) == 4 else None
            download = self.bulk.downloads.get(link.download_id) if link is not None else None
            if link is None or download is None or parts[3] != download.file.file_name:
                return _azure_error(404, "BlobNotFound", "The specified blob does not exist.")
            expired = self._link_expired_reply  # type: ignore[attr-defined]
            if (refused := refused_link(link, params, self.clock(), expired)) is not None:
                return refused
            download.downloads += 1
            file = download.file

        def stream(out: BinaryIO) -> None:
            file.write(out)

        headers = [
            ("x-ms-request-id", str(uuid.uuid4())),
            ("x-ms-version", _AZURE_VERSION),
            ("x-ms-blob-type", "BlockBlob"),
            ("Content-Disposition", f'attachment; filename="{file.file_name}"'),
        ]
        return _Reply(200, b"", _ZIP, headers, stream=stream)
