"""Reporting v13 over REST: build, check, submit and poll a report, then stream it to a file.

No Airflow here (the operator, trigger and hook are the shell). Why each step exists:

* **Building** the request fixes what peers learnt the hard way: ids as JSON strings (Microsoft's
  models reject integers), CSV 2.0 without report header and footer (the file is then the column
  row and the rows, nothing to strip), GMT unless told otherwise (Microsoft's default is Pacific
  time, which shifts every daily row by eight hours against the warehouse).
* **Checks before submitting** (inverted range, retention, 1,000 accounts) turn what Microsoft
  would answer half an hour later with a vague code into an error naming the argument.
* **Submit and poll** are flows (:mod:`_flow`): one generator, a sync and an async driver. Faults
  are explained: the misleading ``NullRequest`` (code 100) that really means "column 5 is not a
  column of this report", 2004, 2029, an account the user cannot see; throttling (117, 207) is
  retried with backoff.
* **The download** link is a pre-signed blob URL: it gets a plain client without credentials,
  https only (loopback aside). The zip goes to a temporary file, its single CSV entry is read in
  chunks (BOM stripped, rows counted CSV-aware, optionally gzipped) into a temporary file next to
  the destination, which is then moved into place: memory stays flat whatever the report's size,
  and the final name only ever holds a complete file.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime
import gzip
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_msads._flow import (
    Flow,
    RetryPolicy,
    drive_async,
    drive_sync,
    parse_retry_after,
    read_json,
    retrying,
)
from airflow_provider_msads.endpoints import is_loopback_host
from airflow_provider_msads.errors import (
    ApiError,
    MicrosoftAdsError,
    ProtocolError,
    TransientApiError,
    api_error_from_fault,
)

#: Microsoft's ReportTimeZone name for GMT (London); ``time_zone`` takes any of Microsoft's names.
DEFAULT_TIME_ZONE = "GreenwichMeanTimeDublinEdinburghLisbonLondon"
AGGREGATIONS = (
    "Summary",
    "Hourly",
    "Daily",
    "Weekly",
    "Monthly",
    "Yearly",
    "HourOfDay",
    "DayOfWeek",
    "WeeklyStartingMonday",
)
#: Aggregations served from hourly data, which Microsoft keeps for 6 months (the rest: 36).
HOURLY_AGGREGATIONS = frozenset({"Hourly", "HourOfDay"})
HOURLY_RETENTION_MONTHS = 6
DAILY_RETENTION_MONTHS = 36
MAX_ACCOUNTS = 1000
#: How long Microsoft keeps a ReportRequestId pollable.
REQUEST_ID_LIFETIME = datetime.timedelta(days=2)

#: The download is read and written in pieces of this size: the only buffer that grows with it.
CHUNK_SIZE = 1024 * 1024
#: A zip entry larger than this, or inflating more than MAX_RATIO times beyond SMALL_ENTRY, is a
#: zip bomb rather than a report.
MAX_ENTRY_BYTES = 64 * 1024**3
MAX_RATIO = 400
SMALL_ENTRY = 16 * 1024 * 1024
#: Microsoft's CSV ends lines with CRLF.
LINE_END = "\r\n"
#: How often an expired link (403/404) is renewed by polling again before giving up.
LINK_RENEWALS = 3

SUBMIT_PATH = "GenerateReport/Submit"
POLL_PATH = "GenerateReport/Poll"


class ReportingError(ApiError):
    """The Reporting service refused a request, or a report could not be turned into a file."""


class TransientReportingError(TransientApiError, ReportingError):
    """Throttled or too many reports in flight: retried with backoff."""


class ReportRequestError(ReportingError, ValueError):
    """A report request that cannot work, found before anything is sent."""


class ReportDownloadError(ReportingError):
    """The download link answered something that is not the report's zip."""


class LinkExpiredError(ReportDownloadError):
    """The pre-signed link is dead (403/404): poll again for a fresh one."""


# ------------------------------------------------------------------------------------- building


def _as_date(value: object, argument: str) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ReportRequestError(
        f"`{argument}` is {str(value)[:40]!r}, not a date.",
        field=argument,
        remedy=f'Give `{argument}` as "YYYY-MM-DD" or a date, e.g. "{{{{ ds }}}}".',
    )


def _date_dict(day: datetime.date) -> dict[str, int]:
    return {"Year": day.year, "Month": day.month, "Day": day.day}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base``; nested objects (Scope, Time) are merged one level down."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _id_strings(value: object) -> object:
    """Ids as JSON strings, wherever a key ends in ``Id`` (AccountId, CampaignId, …)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key.endswith("Id") and isinstance(item, int) and not isinstance(item, bool):
                out[key] = str(item)
            elif key.endswith("Ids") and isinstance(item, list):
                out[key] = [str(i) for i in item]
            else:
                out[key] = _id_strings(item)
        return out
    if isinstance(value, list):
        return [_id_strings(v) for v in value]
    return value


def build_report_request(
    *,
    report_type: str,
    columns: Sequence[str],
    account_ids: Iterable[str | int],
    aggregation: str = "Daily",
    date_from: object = None,
    date_to: object = None,
    predefined_time: str | None = None,
    time_zone: str | None = None,
    return_only_complete_data: bool = False,
    report_name: str | None = None,
    report_request: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``ReportRequest`` object for Submit, from the operator's arguments.

    ``report_request`` is merged last, so it can set anything (filters, campaign scopes), but the
    file format stays Microsoft's CSV 2.0 without header and footer unless it is overridden too.
    """
    if not isinstance(report_type, str) or not report_type.strip():
        raise ReportRequestError(
            "`report_type` is empty.",
            field="report_type",
            remedy='Give the request type, e.g. "CampaignPerformanceReportRequest".',
        )
    if isinstance(columns, str) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise ReportRequestError(
            "`columns` must be a non-empty list of column names.",
            field="columns",
            remedy='Give e.g. ["TimePeriod", "AccountId", "CampaignId", "Impressions", "Clicks", "Spend"].',
        )
    if isinstance(account_ids, (str, int)):  # a templated "123,456" or a single id
        account_ids = [a for a in str(account_ids).replace(" ", "").split(",") if a]
    time: dict[str, Any] = {"ReportTimeZone": time_zone or DEFAULT_TIME_ZONE}
    if predefined_time:
        if date_from is not None or date_to is not None:
            raise ReportRequestError(
                "Both `predefined_time` and `date_from`/`date_to` are set.",
                field="predefined_time",
                remedy="Give either predefined_time or a date range, not both.",
            )
        time["PredefinedTime"] = predefined_time
    else:
        if date_from is None or date_to is None:
            raise ReportRequestError(
                "No time range: give `date_from` and `date_to`, or `predefined_time`.",
                field="date_from",
                remedy='Set date_from and date_to (inclusive, "YYYY-MM-DD") or predefined_time="Yesterday".',
            )
        time["CustomDateRangeStart"] = _date_dict(_as_date(date_from, "date_from"))
        time["CustomDateRangeEnd"] = _date_dict(_as_date(date_to, "date_to"))
    request: dict[str, Any] = {
        "Type": report_type.strip(),
        "ReportName": report_name or report_type.strip(),
        "Format": "Csv",
        "FormatVersion": "2.0",
        "ReturnOnlyCompleteData": bool(return_only_complete_data),
        "ExcludeReportHeader": True,
        "ExcludeReportFooter": True,
        "ExcludeColumnHeaders": False,
        "Aggregation": aggregation,
        "Columns": list(columns),
        "Scope": {"AccountIds": [str(a).strip() for a in account_ids]},
        "Time": time,
    }
    if report_request:
        request = _merge(request, report_request)
    result = _id_strings(request)
    assert isinstance(result, dict)
    return result


def _months_before(day: datetime.date, months: int) -> datetime.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def check_report_request(request: Mapping[str, Any], *, today: datetime.date | None = None) -> None:
    """Refuse, before submitting, what Microsoft would refuse later or answer with no data.

    The retention limit is checked against ``today`` (UTC by default): Microsoft keeps hourly data
    6 months and daily or coarser data 36 months, and silently returns nothing older.
    """
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    aggregation = request.get("Aggregation")
    if aggregation not in AGGREGATIONS:
        raise ReportRequestError(
            f"`aggregation` is {str(aggregation)[:40]!r}.",
            field="aggregation",
            remedy="Use one of " + ", ".join(AGGREGATIONS) + ".",
        )
    accounts = list((request.get("Scope") or {}).get("AccountIds") or [])
    if len(accounts) > MAX_ACCOUNTS:
        raise ReportRequestError(
            f"`account_ids` has {len(accounts)} accounts; Microsoft allows at most {MAX_ACCOUNTS} per report "
            "(error 2029).",
            field="account_ids",
            remedy=f"Split the accounts into batches of at most {MAX_ACCOUNTS} (one task per batch).",
            codes=[2029],
        )
    if not accounts and not (request.get("Scope") or {}).get("Campaigns"):
        raise ReportRequestError(
            "No account to report on.",
            field="account_ids",
            remedy="Give account_ids, or set Account ID on the connection.",
        )
    time = request.get("Time") or {}
    start, end = time.get("CustomDateRangeStart"), time.get("CustomDateRangeEnd")
    if not (isinstance(start, Mapping) and isinstance(end, Mapping)):
        return
    try:
        first = datetime.date(int(start["Year"]), int(start["Month"]), int(start["Day"]))
        last = datetime.date(int(end["Year"]), int(end["Month"]), int(end["Day"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportRequestError(
            "The custom date range is not a valid date.",
            field="date_from",
            remedy='Give date_from and date_to as "YYYY-MM-DD".',
        ) from exc
    if first > last:
        raise ReportRequestError(
            f"`date_from` ({first}) is after `date_to` ({last}); both are inclusive.",
            field="date_from",
            remedy="Swap them, or set date_to to the last day you want (inclusive).",
        )
    hourly = aggregation in HOURLY_AGGREGATIONS
    months = HOURLY_RETENTION_MONTHS if hourly else DAILY_RETENTION_MONTHS
    oldest = _months_before(today, months)
    if first < oldest:
        kind = "hourly" if hourly else "daily and coarser"
        raise ReportRequestError(
            f"`date_from` ({first}) is older than Microsoft keeps {kind} data: {months} months, so nothing "
            f"before {oldest}.",
            field="date_from",
            remedy=f"Start the range on or after {oldest}"
            + (" or use Daily aggregation (kept 36 months)." if hourly else "."),
        )


# ------------------------------------------------------------------------------------- faults

_COLUMN_PATH = re.compile(r"\$\.Columns\[(\d+)\]")
_FIELD_PATH = re.compile(r"Path:\s*\$\.([A-Za-z.]+)")


def _fault_items(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = list(body.get("Errors") or []) + list(body.get("OperationErrors") or [])
    return [i for i in items if isinstance(i, Mapping)]


def _code_of(item: Mapping[str, Any]) -> int | None:
    try:
        return int(item.get("Code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def reporting_error(
    response: httpx.Response,
    *,
    operation: str,
    report_request: Mapping[str, Any] | None = None,
) -> MicrosoftAdsError:
    """The error for a refused Submit or Poll, explained in terms of the operator's arguments."""
    status = response.status_code
    body = read_json(response, operation)
    tracking = str(body.get("TrackingId") or response.headers.get("TrackingId") or "") or None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    items = _fault_items(body)
    codes = [c for c in (_code_of(i) for i in items) if c is not None]
    common: dict[str, Any] = {"codes": codes, "http_status": status, "tracking_id": tracking}
    request = report_request or {}
    report_type = str(request.get("Type") or "this report type")
    for item, code in zip(items, (_code_of(i) for i in items), strict=False):
        details = " ".join(str(item.get(k) or "") for k in ("Details", "Detail", "Message"))
        if code == 100:
            column = _COLUMN_PATH.search(details)
            columns = list(request.get("Columns") or [])
            if column is not None:
                index = int(column.group(1))
                name = columns[index] if index < len(columns) else "?"
                return ReportingError(
                    f"{operation} failed: column {index + 1} ({name!r}) is not a column of {report_type}. "
                    "(Microsoft reports this as error 100 NullRequest.)",
                    field="columns",
                    remedy=f"Fix or remove {name!r} in `columns`; the allowed names are listed on Microsoft's "
                    f"page for the {report_type.removesuffix('Request')}Column value set.",
                    **common,
                )
            path = _FIELD_PATH.search(details)
            where = f" at {path.group(1)}" if path else ""
            return ReportingError(
                f"{operation} failed: Microsoft could not read the request{where} (error 100 NullRequest, which "
                "usually means a misspelt value or enum name rather than a missing request).",
                field=path.group(1) if path else "report_request",
                remedy="Check the spelling of report_type, aggregation, predefined_time, time_zone and any "
                "value in report_request.",
                **common,
            )
        if code == 2004:
            time = request.get("Time") or {}
            return ReportingError(
                f"{operation} failed: error 2004 NoCompleteDataAvaliable: return_only_complete_data is true and "
                f"the range includes today or data Microsoft has not finished processing (in time zone "
                f"{time.get('ReportTimeZone', DEFAULT_TIME_ZONE)}).",
                field="return_only_complete_data",
                remedy="End the range before yesterday in the report's time zone, or set "
                "return_only_complete_data=False and re-pull a lookback window later.",
                **common,
            )
        if code == 2029:
            count = len((request.get("Scope") or {}).get("AccountIds") or [])
            return ReportingError(
                f"{operation} failed: error 2029 ReportingServiceAccountsOverLimit: {count} accounts, more than "
                f"{MAX_ACCOUNTS}.",
                field="account_ids",
                remedy=f"Split account_ids into batches of at most {MAX_ACCOUNTS}.",
                **common,
            )
        if code == 2034 or code == 106:
            accounts = ", ".join((request.get("Scope") or {}).get("AccountIds") or []) or "the connection's account"
            return ReportingError(
                f"{operation} failed: error {code}: the authorizing user cannot report on account(s) {accounts}.",
                field="account_ids",
                remedy="Check account_ids (the numeric aid from the Microsoft Advertising URL) and that the "
                "user who authorized the connection can open those accounts.",
                **common,
            )
        if code in (2015, 2016):
            return ReportingError(
                f"{operation} failed: error {code}: the custom date range is not valid or outside Microsoft's "
                "retention.",
                field="date_from" if code == 2015 else "date_to",
                remedy="Check date_from/date_to (inclusive, YYYY-MM-DD, not in the future, within retention).",
                **common,
            )
        if code == 117 and retry_after is None:
            retry_after = 60.0  # CallRateExceeded: Microsoft asks to wait about a minute
    return api_error_from_fault(status, body, operation=operation, tracking_id=tracking, retry_after=retry_after)


# ------------------------------------------------------------------------------------- submit / poll


@dataclass(frozen=True)
class ReportStatus:
    """One Poll answer. ``download_url`` is None for a report with no rows (or while pending)."""

    request_id: str
    status: str
    download_url: str | None = None
    tracking_id: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("Success", "Error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "download_url": self.download_url,
            "tracking_id": self.tracking_id,
        }


@dataclass(frozen=True)
class DownloadResult:
    """What was written: ``bytes`` is the size of the file at ``path`` (compressed if gzip)."""

    path: str
    rows: int
    bytes: int
    csv_bytes: int
    compression: str | None = None


#: Submit/Poll retries: throttling (117 asks for about a minute) and 207 (too many reports in
#: flight) need more patience than a credentials check.
REPORTING_RETRY = RetryPolicy(attempts=6, backoff_base=2.0, backoff_max=60.0, total_budget=300.0)


class Reporting:
    """Submit and Poll over one authenticated httpx client (sync or async)."""

    def __init__(
        self,
        base_url: str,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or REPORTING_RETRY
        self._sleep = sleep or time.sleep
        self._asleep = asleep or asyncio.sleep

    def _post(self, path: str, body: dict[str, Any]) -> Callable[[], httpx.Request]:
        url = f"{self.base_url}/{path}"

        def build() -> httpx.Request:
            return httpx.Request(
                "POST", url, json=body, headers={"Accept": "application/json", "Content-Type": "application/json"}
            )

        return build

    def submit_flow(self, report_request: Mapping[str, Any]) -> Flow[str]:
        request = dict(report_request)

        def parse(response: httpx.Response) -> str:
            if response.status_code >= 400:
                raise reporting_error(response, operation="SubmitGenerateReport", report_request=request)
            body = read_json(response, "SubmitGenerateReport")
            request_id = body.get("ReportRequestId")
            if request_id in (None, ""):
                raise ProtocolError(
                    "SubmitGenerateReport answered without a ReportRequestId.",
                    remedy="Check reporting_url (leave it unset for Microsoft).",
                    http_status=response.status_code,
                    tracking_id=response.headers.get("TrackingId"),
                )
            return str(request_id)

        return retrying(
            self._post(SUBMIT_PATH, {"ReportRequest": request}), parse, what="SubmitGenerateReport", policy=self.retry
        )

    def poll_flow(self, request_id: str) -> Flow[ReportStatus]:
        def parse(response: httpx.Response) -> ReportStatus:
            if response.status_code >= 400:
                raise reporting_error(response, operation="PollGenerateReport")
            body = read_json(response, "PollGenerateReport")
            status = body.get("ReportRequestStatus")
            if not isinstance(status, Mapping) or status.get("Status") not in ("Pending", "Success", "Error"):
                raise ProtocolError(
                    "PollGenerateReport answered without a ReportRequestStatus.",
                    remedy="Check reporting_url (leave it unset for Microsoft).",
                    http_status=response.status_code,
                    tracking_id=response.headers.get("TrackingId"),
                )
            url = status.get("ReportDownloadUrl") or None
            return ReportStatus(
                request_id=str(request_id),
                status=str(status["Status"]),
                download_url=str(url) if url and status["Status"] == "Success" else None,
                tracking_id=response.headers.get("TrackingId"),
            )

        return retrying(
            self._post(POLL_PATH, {"ReportRequestId": str(request_id)}),
            parse,
            what="PollGenerateReport",
            policy=self.retry,
        )

    def submit(self, client: httpx.Client, report_request: Mapping[str, Any]) -> str:
        return drive_sync(self.submit_flow(report_request), client, self._sleep)

    async def asubmit(self, client: httpx.AsyncClient, report_request: Mapping[str, Any]) -> str:
        return await drive_async(self.submit_flow(report_request), client, self._asleep)

    def poll(self, client: httpx.Client, request_id: str) -> ReportStatus:
        return drive_sync(self.poll_flow(request_id), client, self._sleep)

    async def apoll(self, client: httpx.AsyncClient, request_id: str) -> ReportStatus:
        return await drive_async(self.poll_flow(request_id), client, self._asleep)


def report_failed_error(status: ReportStatus) -> ReportingError:
    """Poll said Error: Microsoft gives no reason, so say what usually causes it."""
    return ReportingError(
        f"Microsoft could not build report {status.request_id} (Poll status Error).",
        remedy="Microsoft gives no reason; usually a filter or column combination it cannot serve. Check "
        "report_request and columns, then run the task again (it submits a new request).",
        tracking_id=status.tracking_id,
    )


# ------------------------------------------------------------------------------------- download


def check_download_url(url: str) -> str:
    """https, or http to loopback (the emulator); never credentials in the URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ReportDownloadError("The report download URL is not a valid URL.", remedy="Poll again.") from exc
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    if secure and parts.hostname and parts.username is None and parts.password is None:
        return url
    raise ReportDownloadError(
        f"Refusing the report download link: it is not https ({parts.scheme or 'no scheme'}://{parts.hostname or ''}).",
        remedy="Microsoft's links are https blob URLs; check reporting_url and any proxy in between.",
    )


def _download_client(timeout: float) -> httpx.Client:
    from airflow_provider_msads._flow import shared_tls_context

    # No auth, no cookies, no redirects to elsewhere: the link carries its own signature.
    return httpx.Client(timeout=timeout, verify=shared_tls_context(), follow_redirects=False, trust_env=True)


def _adownload_client(timeout: float) -> httpx.AsyncClient:
    from airflow_provider_msads._flow import shared_tls_context

    return httpx.AsyncClient(timeout=timeout, verify=shared_tls_context(), follow_redirects=False, trust_env=True)


def _check_download_response(response: httpx.Response) -> None:
    host = response.request.url.host
    if response.status_code in (403, 404, 410):
        raise LinkExpiredError(
            f"The report download link answered HTTP {response.status_code} (it lives 5 minutes).",
            remedy="Polled again for a fresh link; if it persists, the report request expired (2 days).",
            http_status=response.status_code,
        )
    if response.status_code >= 400:
        raise ReportDownloadError(
            f"The report download from {host} failed with HTTP {response.status_code}.",
            remedy="Retried by the task's retries; check network access to the blob host.",
            http_status=response.status_code,
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if "html" in kind or "xml" in kind or "json" in kind:
        raise ReportDownloadError(
            f"The report download from {host} answered {kind} instead of a zip (an error page).",
            remedy="A proxy or the blob store answered an error page; retried by the task's retries.",
            http_status=response.status_code,
            retryable=True,
        )


def _sniff(first: bytes, host: str) -> None:
    if first.startswith(b"PK\x03\x04"):
        return
    stripped = first.lstrip(b"\xef\xbb\xbf \t\r\n")
    page = stripped[:1] == b"<"
    raise ReportDownloadError(
        f"The report download from {host} is "
        + ("an HTML/XML error page" if page else "not a zip file")
        + " instead of the report's zip.",
        remedy="A proxy or the blob store answered something else; retried by the task's retries.",
        retryable=True,
    )


@dataclass
class _Sink:
    """The zip being downloaded into a temporary file."""

    file: IO[bytes]
    size: int = 0
    first: bytes = b""


def _fetch_zip(url: str, target: IO[bytes], *, timeout: float) -> int:
    check_download_url(url)
    with _download_client(timeout) as client, client.stream("GET", url) as response:
        _check_download_response(response)
        sink = _Sink(target)
        for chunk in response.iter_bytes(CHUNK_SIZE):
            _take(sink, chunk, response.request.url.host)
        return _finish(sink, response.request.url.host)


async def _afetch_zip(url: str, target: IO[bytes], *, timeout: float) -> int:
    check_download_url(url)
    async with _adownload_client(timeout) as client, client.stream("GET", url) as response:
        _check_download_response(response)
        sink = _Sink(target)
        pending = bytearray()
        async for chunk in response.aiter_bytes(CHUNK_SIZE):
            pending += chunk
            if len(pending) >= 4 * CHUNK_SIZE:  # disk writes in a thread, in a few big pieces
                data, pending = bytes(pending), bytearray()
                await asyncio.to_thread(_take, sink, data, response.request.url.host)
        if pending:
            await asyncio.to_thread(_take, sink, bytes(pending), response.request.url.host)
        return _finish(sink, response.request.url.host)


def _take(sink: _Sink, chunk: bytes, host: str) -> None:
    if len(sink.first) < 4:
        sink.first += chunk[: 64 - len(sink.first)]
        if len(sink.first) >= 4:
            _sniff(sink.first, host)
    sink.file.write(chunk)
    sink.size += len(chunk)


def _finish(sink: _Sink, host: str) -> int:
    _sniff(sink.first, host)
    sink.file.flush()
    return sink.size


def _the_csv_entry(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    entries = [e for e in archive.infolist() if not e.is_dir()]
    if len(entries) != 1:
        raise ReportDownloadError(
            f"The report zip has {len(entries)} files; a Microsoft report has exactly one CSV.",
            remedy="Check reporting_url; a Microsoft report zip holds one CSV file.",
        )
    entry = entries[0]
    if not entry.filename.lower().endswith(".csv"):
        raise ReportDownloadError(
            f"The report zip holds {entry.filename[:80]!r}, not a .csv file.",
            remedy='Keep the request\'s "Format": "Csv" (report_request must not change it).',
        )
    if entry.file_size > MAX_ENTRY_BYTES or (
        entry.file_size > SMALL_ENTRY and entry.file_size > MAX_RATIO * max(entry.compress_size, 1)
    ):
        raise ReportDownloadError(
            f"The report zip's entry would inflate to {entry.file_size} bytes from {entry.compress_size}: a zip "
            f"bomb (limits: {MAX_ENTRY_BYTES} bytes, ratio {MAX_RATIO}).",
            remedy="Refused without unpacking; check where reporting_url points.",
        )
    return entry


#: Every byte but the double quote and the line feed: deleted to count quotes per line at C speed.
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in (0x22, 0x0A))


class RowCounter:
    """Counts CSV records, not lines: a quoted value may hold a line break.

    Fed the CSV in arbitrary chunks. Complete lines are examined in bulk, in C: everything but
    quotes and line feeds is deleted and quote pairs removed, which leaves a lone quote exactly on
    the lines with an odd number of quotes. Without one (the usual case) the count is one
    ``bytes.count``; otherwise the reduced lines are walked, tracking whether a value is open.
    """

    def __init__(self) -> None:
        self.records = 0
        self._in_quotes = False
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._tail = data
            return
        head, self._tail = data[: cut + 1], data[cut + 1 :]
        reduced = head.translate(None, _NOT_QUOTE_OR_NEWLINE).replace(b'""', b"")
        if not self._in_quotes and b'"' not in reduced:
            self.records += head.count(b"\n")
            return
        for line in reduced.split(b"\n")[:-1]:
            if line:  # one lone quote: this line opens or closes a quoted value
                self._in_quotes = not self._in_quotes
            if not self._in_quotes:
                self.records += 1

    def close(self) -> int:
        """Records seen, including a last one without a line break."""
        if self._tail.strip(b"\r"):
            self.records += 1
            self._tail = b""
        return self.records


def _unpack(zip_path: str, out: IO[bytes], *, compression: str | None) -> tuple[int, int]:
    """Copy the single CSV entry into ``out`` (BOM stripped, gzipped if asked): (rows, csv bytes).

    A damaged zip (a cut connection, a truncated blob) is retryable: the task's next try polls for
    a fresh link. Disk errors (OSError) are not wrapped: they are the worker's, not Microsoft's.
    """
    counter = RowCounter()
    written = 0
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entry = _the_csv_entry(archive)
            writer: Any = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) if compression else out
            try:
                with archive.open(entry) as source:
                    first = True
                    while chunk := source.read(CHUNK_SIZE):
                        if first:
                            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
                            first = False
                        written += len(chunk)
                        counter.feed(chunk)
                        writer.write(chunk)
            finally:
                if writer is not out:
                    writer.close()
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ReportDownloadError(
            f"The report zip is damaged ({type(exc).__name__}).",
            remedy="Retried by the task's retries, which poll for a fresh link.",
            retryable=True,
        ) from exc
    records = counter.close()
    return max(records - 1, 0), written


def header_row(columns: Sequence[str]) -> bytes:
    """The column row as Microsoft writes it: every name in double quotes, CRLF."""
    return (",".join('"' + c.replace('"', '""') + '"' for c in columns) + LINE_END).encode("utf-8")


# ------------------------------------------------------------------------------------- destinations


def is_url(destination: str) -> bool:
    """``s3://…``, ``file://…``: an ObjectStoragePath; a plain or Windows path is not."""
    scheme = urlsplit(destination).scheme
    return len(scheme) > 1 and "://" in destination


def final_name(destination: str, compression: str | None) -> str:
    """The destination, with ``.gz`` added when gzip is asked for and the name lacks it."""
    if compression == "gzip" and not destination.endswith(".gz"):
        return destination + ".gz"
    return destination


#: Publishes a finished local file under a URL destination (the Airflow shell gives one that uses
#: ObjectStoragePath): it must make the file appear under the final name only when complete.
Publisher = Callable[[str, str], None]


def _local_target(destination: str) -> str:
    path = destination
    if destination.startswith("file://"):
        path = urlsplit(destination).path
    return os.path.abspath(os.path.expanduser(path))


@contextlib.contextmanager
def _output(destination: str, publish: Publisher | None) -> Any:
    """A temporary file that becomes ``destination`` on success and disappears on failure.

    Local destinations (also ``file://`` without a publisher) get the temporary file next to the
    final one, so the move is an atomic rename; others are written locally, then published.
    """
    local = not is_url(destination) or (destination.startswith("file://") and publish is None)
    if local:
        target = _local_target(destination)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        folder, name = os.path.split(target)
    else:
        folder, name = None, os.path.basename(urlsplit(destination).path) or "report.csv"
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if local:
            os.replace(temp, target)
        else:
            assert publish is not None, "a URL destination needs a publisher (ObjectStoragePath)"
            publish(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _size_of(handle: IO[bytes]) -> int:
    return handle.tell()


def write_empty_report(
    columns: Sequence[str], destination: str, *, compression: str | None = None, publish: Publisher | None = None
) -> DownloadResult:
    """Success without a link: the file is the column row alone, as Microsoft would write it."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    row = header_row(columns)
    with _output(destination, publish) as out:
        if compression:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as zipped:
                zipped.write(row)
        else:
            out.write(row)
        size = _size_of(out)
    return DownloadResult(path=destination, rows=0, bytes=size, csv_bytes=len(row), compression=compression)


def _check_compression(compression: str | None) -> None:
    if compression not in (None, "gzip"):
        raise ReportRequestError(
            f"`compression` is {str(compression)[:20]!r}.",
            field="compression",
            remedy='Use None (plain CSV) or "gzip".',
        )


def download_report(
    url: str,
    destination: str,
    *,
    compression: str | None = None,
    publish: Publisher | None = None,
    timeout: float = 300.0,
) -> DownloadResult:
    """Stream the report behind ``url`` to ``destination``; raises LinkExpiredError on 403/404."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    with tempfile.TemporaryDirectory(prefix="msads-report-") as scratch:
        zip_path = os.path.join(scratch, "report.zip")
        with open(zip_path, "wb") as target:
            _fetch_zip(url, target, timeout=timeout)
        return _publish_csv(zip_path, destination, compression, publish)


async def adownload_report(
    url: str,
    destination: str,
    *,
    compression: str | None = None,
    publish: Publisher | None = None,
    timeout: float = 300.0,
) -> DownloadResult:
    """Async twin: the network part on the loop, file work in worker threads."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    scratch = await asyncio.to_thread(tempfile.mkdtemp, prefix="msads-report-")
    try:
        zip_path = os.path.join(scratch, "report.zip")
        target = await asyncio.to_thread(open, zip_path, "wb")
        try:
            await _afetch_zip(url, target, timeout=timeout)
        finally:
            await asyncio.to_thread(target.close)
        return await asyncio.to_thread(_publish_csv, zip_path, destination, compression, publish)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def _publish_csv(zip_path: str, destination: str, compression: str | None, publish: Publisher | None) -> DownloadResult:
    with _output(destination, publish) as out:
        rows, csv_bytes = _unpack(zip_path, out, compression=compression)
        size = _size_of(out)
    return DownloadResult(path=destination, rows=rows, bytes=size, csv_bytes=csv_bytes, compression=compression)


def temp_name(destination: str) -> str:
    """A sibling name for an object being uploaded, hidden from loaders that glob ``*.csv``."""
    head, _, name = destination.rpartition("/")
    return f"{head}/.{name}.{uuid.uuid4().hex}.part"
