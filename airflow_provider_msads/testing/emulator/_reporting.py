"""Microsoft Advertising Reporting REST API v13: Submit, Poll and the pre-signed download link.

What it plays, and why each part matters to a client:

* ``POST /Reporting/v13/GenerateReport/Submit`` validates like the service: the ``Type`` and
  each column against Microsoft's own catalogue (copied from the ``msads`` SDK), with the
  misleading ``NullRequest`` (100) whose ``Details`` end in ``Path: $.Columns[i]`` for a bad
  column; 2029 over 1,000 accounts; 2004 for complete data with today in range; 2015/2016 for
  bad or out-of-retention dates; 2034 for an account the user cannot see (number unconfirmed).
* ``POST /Reporting/v13/GenerateReport/Poll`` answers ``Pending`` a configurable number of
  times, then ``Success`` with a fresh link (or no link at all for an empty report, as ``null``
  or missing), or ``Error``.
* ``GET /download-reports/<token>/<id>.zip?sv=..&se=..&sig=..`` plays the Azure blob: it needs
  no credentials (and records whether any were sent), dies after ``report_link_lifetime``
  seconds with Azure's 403 ``AuthenticationFailed`` XML, and streams a zip holding one CSV
  (UTF-8 with BOM, every value quoted, ``--`` for no value, report header and copyright footer
  unless excluded). Rows are generated on the fly from the request, deterministically, so a
  1 GB report never sits in memory.
"""

from __future__ import annotations

import calendar
import json
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, BinaryIO, Final
from urllib.parse import parse_qsl

from airflow_provider_msads.testing.emulator import _reporting_catalogue as catalogue
from airflow_provider_msads.testing.emulator._catalogues import _HTML, _JSON, _REPORTING_PREFIX
from airflow_provider_msads.testing.emulator._customer_management import _CustomerManagement
from airflow_provider_msads.testing.emulator._http import _format_retry_after, _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._model import _as_id, _Injection
from airflow_provider_msads.testing.emulator._report_files import (
    _ZIP,
    EmulatorReport,
    _azure_error,
    _small_zip,
    _zip_bomb,
    _zip_report,
)

_TWO_DAYS: Final = 2 * 24 * 3600.0
_MAX_ACCOUNTS: Final = 1000
_CREDENTIAL_HEADERS: Final = ("authorization", "developertoken", "customerid", "customeraccountid", "password")


@dataclass(frozen=True)
class _ReportingFault:
    """A Reporting operation error (``ApiFaultDetail`` / ``OperationErrors`` shape)."""

    error_code: str
    message: str


# Reporting's own errors come as ApiFaultDetail with ErrorCode and Details. 2034 and 2100 are the
# emulator's numbers: Microsoft's are unconfirmed (see the reference notes).
_REPORTING_FAULTS: Final[dict[int, _ReportingFault]] = {
    100: _ReportingFault("NullRequest", "The request message is null."),
    207: _ReportingFault(
        "ConcurrentRequestOverLimit",
        "You have exceeded the number of concurrent requests allowed. Please reduce the number of concurrent requests.",
    ),
    2004: _ReportingFault(
        "NoCompleteDataAvaliable",
        "Complete data is not available for the requested time period; the report was requested with "
        "ReturnOnlyCompleteData set to true.",
    ),
    2015: _ReportingFault("InvalidCustomDateRangeStart", "The custom date range start date is not valid."),
    2016: _ReportingFault("InvalidCustomDateRangeEnd", "The custom date range end date is not valid."),
    2029: _ReportingFault(
        "ReportingServiceAccountsOverLimit", "The report request specifies more than 1,000 account identifiers."
    ),
    2034: _ReportingFault(
        "ReportingServiceAccountNotAuthorized", "The user is not authorized to request reports for the account."
    ),
    2100: _ReportingFault("ReportingServiceInvalidReportId", "The specified report request identifier is not valid."),
}

# UTC offsets (hours, standard time) of the common zones; the others count as GMT. Only used
# to decide what "today" is for ReturnOnlyCompleteData and predefined ranges.
_ZONE_OFFSETS: Final = {
    "PacificTimeUSCanadaTijuana": -8,
    "MountainTimeUSCanada": -7,
    "Arizona": -7,
    "CentralTimeUSCanada": -6,
    "EasternTimeUSCanada": -5,
    "Alaska": -9,
    "Hawaii": -10,
    "BrusselsCopenhagenMadridParis": 1,
    "AmsterdamBerlinBernRomeStockholmVienna": 1,
    "OsakaSapporoTokyo": 9,
    "CanberraMelbourneSydney": 10,
    "ChennaiKolkataMumbaiNewDelhi": 5,
}
_DEFAULT_ZONE: Final = "PacificTimeUSCanadaTijuana"


@dataclass
class _ReportLink:
    token: str
    signature: str
    report_id: str
    expires_at: float
    expired: bool = False


class _RequestError(Exception):
    """A Submit refusal: the fault code and, for 100, the Details naming the path."""

    def __init__(self, code: int, details: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def _null_request(path: str, what: str = "The JSON value could not be converted") -> _RequestError:
    return _RequestError(100, f"Invalid JSON. {what}. Path: {path} | LineNumber: 0 | BytePositionInLine: 0.")


def _months_back(today: date, months: int) -> date:
    """The same day ``months`` calendar months ago (clamped to the month's last day)."""
    month_index = today.year * 12 + today.month - 1 - months
    year, month = divmod(month_index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(today.day, last))


def _predefined_range(name: str, today: date) -> tuple[date, date]:
    yesterday = today - timedelta(days=1)
    sunday = today - timedelta(days=(today.weekday() + 1) % 7)
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    ranges = {
        "Today": (today, today),
        "Yesterday": (yesterday, yesterday),
        "LastSevenDays": (today - timedelta(days=7), yesterday),
        "ThisWeek": (sunday, today),
        "LastWeek": (sunday - timedelta(days=7), sunday - timedelta(days=1)),
        "Last14Days": (today - timedelta(days=14), yesterday),
        "Last30Days": (today - timedelta(days=30), yesterday),
        "LastFourWeeks": (sunday - timedelta(days=28), sunday - timedelta(days=1)),
        "ThisMonth": (first, today),
        "LastMonth": (last_month_end.replace(day=1), last_month_end),
        "LastThreeMonths": (_months_back(first, 3), last_month_end),
        "LastSixMonths": (_months_back(first, 6), last_month_end),
        "ThisYear": (today.replace(month=1, day=1), today),
        "LastYear": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
        "ThisWeekStartingMonday": (monday, today),
        "LastWeekStartingMonday": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "LastFourWeeksStartingMonday": (monday - timedelta(days=28), monday - timedelta(days=1)),
    }
    return ranges[name]


def _custom_date(value: object, code: int) -> date:
    if not isinstance(value, Mapping):
        raise _RequestError(code)
    try:
        return date(int(value["Year"]), int(value["Month"]), int(value["Day"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _RequestError(code) from exc


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ------------------------------------------------------------------------------------ the service


class _Reporting(_CustomerManagement):
    """Reporting v13 Submit/Poll plus the download links it hands out (see the module docstring)."""

    report_pending_polls: int
    report_link_lifetime: float
    report_rows: int | None
    report_empty_url: str
    reports: dict[str, EmulatorReport]
    download_credential_headers: list[list[str]]
    _report_links: dict[str, _ReportLink]
    _next_reports: deque[dict[str, Any]]

    def _init_reporting(self) -> None:
        self.report_pending_polls = 1
        self.report_link_lifetime = 300.0
        self.report_rows = None
        self.report_empty_url = "null"
        self.reports = {}
        self.download_credential_headers = []
        self._report_links = {}
        self._next_reports = deque()

    # ---------------------------------------------------------------------- public controls

    @property
    def reporting_url(self) -> str:
        """The Reporting v13 base URL (the connection's ``reporting_url``)."""
        return f"{self.base_url}{_REPORTING_PREFIX}"

    @property
    def base_url(self) -> str:  # implemented by the façade
        raise NotImplementedError

    def set_report_size(self, rows: int | None) -> None:
        """Every report submitted from now on has exactly ``rows`` rows (0: empty; None: natural)."""
        if rows is not None and rows < 0:
            raise ValueError("rows must be >= 0 or None")
        with self._lock:
            self.report_rows = rows

    def configure_next_report(
        self,
        *,
        pending_polls: int | None = None,
        rows: int | None = None,
        status: str | None = None,
        empty_url: str | None = None,
    ) -> None:
        """Settings for the next submitted report (FIFO: one call per report), over the defaults.

        ``status="Error"`` makes Poll end in ``Error``; ``empty_url`` is ``"null"`` or ``"missing"``.
        """
        if status is not None and status not in ("Success", "Error"):
            raise ValueError("status must be 'Success' or 'Error'")
        if empty_url is not None and empty_url not in ("null", "missing"):
            raise ValueError("empty_url must be 'null' or 'missing'")
        settings = {"pending_polls": pending_polls, "rows": rows, "status": status, "empty_url": empty_url}
        with self._lock:
            self._next_reports.append({k: v for k, v in settings.items() if v is not None})

    def expire_report_links(self) -> None:
        """Every download link handed out so far answers 403 AuthenticationFailed from now on."""
        with self._lock:
            for link in self._report_links.values():
                link.expired = True

    @property
    def report_submits(self) -> int:
        return self.counters["reporting.SubmitGenerateReport"]

    @property
    def report_polls(self) -> int:
        return self.counters["reporting.PollGenerateReport"]

    @property
    def report_downloads(self) -> int:
        return self.counters["download"]

    @property
    def downloads_with_credentials(self) -> int:
        """Download requests that carried Authorization, DeveloperToken or other Ads headers (want 0)."""
        return self.counters["download.with_credentials"]

    # ---------------------------------------------------------------------- Submit / Poll

    def _reporting_endpoint(
        self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes
    ) -> _Reply:
        tracking_id = str(uuid.uuid4())
        with self._lock:
            self.counters["reporting"] += 1
            if operation is not None:
                self.counters[f"reporting.{operation}"] += 1
        injection = self._take_injection("reporting", operation)
        if injection is not None:
            injected = self._injected_reporting_reply(injection, tracking_id)
            if injected is not None:
                return injected
        reply = self._reporting_logic(operation, method, headers, body, tracking_id)
        reply.headers.append(("TrackingId", tracking_id))
        reply.delay += self._delay_of(injection)
        return reply

    def _injected_reporting_reply(self, injection: _Injection, tracking_id: str) -> _Reply | None:
        reply = self._generic_injection(injection, "reporting")
        if reply is None and injection.kind == "fault":
            reply = self._reporting_fault(injection.code if injection.code is not None else 0, tracking_id)
            if injection.status is not None:
                reply.status = injection.status
            if injection.retry_after is not None:
                reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
        if reply is not None:
            reply.headers.append(("TrackingId", tracking_id))
        return reply

    def _reporting_fault(self, code: int, tracking_id: str, details: str | None = None) -> _Reply:
        """Reporting errors in ``ApiFaultDetail`` shape; the generic Ads errors as Customer Management."""
        spec = _REPORTING_FAULTS.get(code)
        if spec is None:
            return self._fault(code, tracking_id)
        body = {
            "TrackingId": tracking_id,
            "Type": "ApiFaultDetail",
            "BatchErrors": [],
            "OperationErrors": [
                {"Code": code, "Details": details, "ErrorCode": spec.error_code, "Message": spec.message}
            ],
        }
        return _Reply(400, _json_bytes(body), _JSON)

    def _reporting_logic(
        self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes, tracking_id: str
    ) -> _Reply:
        if operation is None:
            return _Reply(404, b"", None)
        if method != "POST":
            return _Reply(405, b"", None, [("Allow", "POST")])
        with self._lock:
            refused = self._refused_caller(headers, tracking_id)
            if refused is not None:
                return refused
            # The SDK sends the string "None" for unset ids; an id naming someone else's customer
            # or account is refused like Customer Management refuses it (emulator's choice: 106).
            customer = headers.get("customerid", "").strip()
            if customer not in ("", "None") and customer != self.customer_id:
                return self._fault(106, tracking_id)
            account = headers.get("customeraccountid", "").strip()
            if account not in ("", "None") and not self._visible_account(account):
                return self._fault(106, tracking_id)
            try:
                payload = json.loads(body) if body.strip() else None
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                return self._reporting_fault(100, tracking_id)
            try:
                if operation == "SubmitGenerateReport":
                    return self._submit(payload, tracking_id)
                return self._poll(payload, tracking_id)
            except _RequestError as exc:
                return self._reporting_fault(exc.code, tracking_id, exc.details)

    def _visible_account(self, account_id: str) -> bool:
        account = self._accounts.get(account_id)
        return account is not None and account.parent_customer_id == self.customer_id

    def _today(self, zone: str) -> date:
        offset = _ZONE_OFFSETS.get(zone, 0)
        return (datetime.fromtimestamp(self.clock(), tz=timezone.utc) + timedelta(hours=offset)).date()

    def _submit(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        request = payload.get("ReportRequest")
        if not isinstance(request, dict):
            raise _null_request("$.ReportRequest", "The ReportRequest is missing")
        report_type = request.get("Type")
        if not isinstance(report_type, str) or report_type not in catalogue.COLUMNS:
            raise _null_request("$.Type", f"The report type {report_type!r} is unknown")
        known = catalogue.COLUMNS[report_type]
        columns = request.get("Columns")
        if not isinstance(columns, list) or not columns:
            raise _null_request("$.Columns", "The Columns array is missing or empty")
        for index, column in enumerate(columns):
            if not isinstance(column, str) or column not in known:
                raise _null_request(
                    f"$.Columns[{index}]",
                    f"The JSON value could not be converted to {report_type[: -len('Request')]}Column",
                )
        report_format = request.get("Format") or "Csv"
        if report_format not in catalogue.FORMATS:
            raise _null_request("$.Format")
        if report_format == "Xml":
            raise _null_request("$.Format", "The emulator writes Csv and Tsv reports only; Xml is not emulated")
        aggregation = request.get("Aggregation") or "Summary"
        if aggregation not in catalogue.AGGREGATIONS:
            raise _null_request("$.Aggregation")
        account_ids = self._scope_accounts(request.get("Scope"))
        start, end, zone = self._time_range(request.get("Time"), aggregation, report_type)
        if _flag(request.get("ReturnOnlyCompleteData")) and end >= self._today(zone):
            raise _RequestError(2004)
        report_id = self._rand.digits(11)
        while report_id in self.reports:
            report_id = self._rand.digits(11)
        report = EmulatorReport(
            id=report_id,
            report_type=report_type,
            columns=list(columns),
            account_ids=account_ids,
            start=start,
            end=end,
            aggregation=aggregation,
            format=report_format,
            time_zone=zone,
            report_name=str(request.get("ReportName") or report_type[: -len("Request")]),
            exclude_report_header=_flag(request.get("ExcludeReportHeader")),
            exclude_report_footer=_flag(request.get("ExcludeReportFooter")),
            exclude_column_headers=_flag(request.get("ExcludeColumnHeaders")),
            submitted_at=self.clock(),
            pending_polls=self.report_pending_polls,
            rows=self.report_rows,
            empty_url=self.report_empty_url,
            request=dict(request),
        )
        if self._next_reports:
            for key, value in self._next_reports.popleft().items():
                setattr(report, key, value)
        self.reports[report_id] = report
        return _Reply(200, _json_bytes({"ReportRequestId": report_id}), _JSON)

    def _scope_accounts(self, scope: object) -> list[str]:
        if not isinstance(scope, dict):
            raise _null_request("$.Scope", "The Scope is missing")
        raw = scope.get("AccountIds")
        if raw is None and isinstance(scope.get("Campaigns"), list):
            raw = [c.get("AccountId") for c in scope["Campaigns"] if isinstance(c, dict)]
        if not isinstance(raw, list) or not raw:
            raise _null_request("$.Scope.AccountIds", "The Scope names no account")
        if len(raw) > _MAX_ACCOUNTS:
            raise _RequestError(2029)
        account_ids: list[str] = []
        for index, value in enumerate(raw):
            account_id = _as_id(value)
            if account_id is None:
                raise _null_request(f"$.Scope.AccountIds[{index}]")
            if not self._visible_account(account_id):
                raise _RequestError(2034)
            if account_id not in account_ids:
                account_ids.append(account_id)
        return account_ids

    def _time_range(self, time: object, aggregation: str, report_type: str) -> tuple[date, date, str]:
        if not isinstance(time, dict):
            raise _null_request("$.Time", "The Time is missing")
        zone = time.get("ReportTimeZone") or _DEFAULT_ZONE
        if zone not in catalogue.TIME_ZONES:
            raise _null_request("$.Time.ReportTimeZone")
        today = self._today(zone)
        predefined = time.get("PredefinedTime")
        custom = time.get("CustomDateRangeStart") is not None or time.get("CustomDateRangeEnd") is not None
        if predefined is not None and custom:
            raise _null_request("$.Time", "Give either PredefinedTime or a custom date range, not both")
        if predefined is not None:
            if predefined not in catalogue.PREDEFINED_TIMES:
                raise _null_request("$.Time.PredefinedTime")
            return (*_predefined_range(predefined, today), zone)
        if not custom:
            raise _null_request("$.Time", "The Time names no range")
        start = _custom_date(time.get("CustomDateRangeStart"), 2015)
        end = _custom_date(time.get("CustomDateRangeEnd"), 2016)
        if end < start:
            raise _RequestError(2016)
        # Retention: hourly data 6 months (search queries 1), daily and coarser 36 months.
        hourly_months = 1 if report_type == "SearchQueryPerformanceReportRequest" else 6
        months = hourly_months if aggregation == "Hourly" else 36
        if start < _months_back(today, months):
            raise _RequestError(2015)
        return start, end, zone

    def _poll(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        report_id = _as_id(payload.get("ReportRequestId"))
        report = self.reports.get(report_id) if report_id is not None else None
        if report is None or self.clock() - report.submitted_at > _TWO_DAYS:
            raise _RequestError(2100)
        report.polls += 1
        status: dict[str, Any]
        if report.pending_polls > 0:
            report.pending_polls -= 1
            status = {"Status": "Pending", "ReportDownloadUrl": None}
        elif report.status == "Error":
            status = {"Status": "Error", "ReportDownloadUrl": None}
        elif report.row_count() == 0:
            status = {"Status": "Success", "ReportDownloadUrl": None}
            if report.empty_url == "missing":
                del status["ReportDownloadUrl"]
        else:
            status = {"Status": "Success", "ReportDownloadUrl": self._new_link(report)}
        return _Reply(200, _json_bytes({"ReportRequestStatus": status}), _JSON)

    def _new_link(self, report: EmulatorReport) -> str:
        """A fresh pre-signed-looking link, valid ``report_link_lifetime`` seconds (each Poll mints one)."""
        token = self._rand.text("abcdef0123456789", 32)
        signature = self._rand.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 43) + "="
        expires_at = self.clock() + self.report_link_lifetime
        self._report_links[token] = _ReportLink(token, signature, report.id, expires_at)
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        expiry = datetime.fromtimestamp(expires_at, tz=timezone.utc)
        query = (
            f"sv=2021-08-06&st={now.strftime('%Y-%m-%dT%H:%M:%SZ')}&se={expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            f"&sr=b&sp=r&sig={signature.replace('=', '%3D')}"
        )
        return f"{self.base_url}/download-reports/{token}/{report.id}.zip?{query}"

    # ---------------------------------------------------------------------- download

    def _download_endpoint(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> _Reply:
        sent = sorted(name for name in _CREDENTIAL_HEADERS if name in headers)
        with self._lock:
            self.counters["download"] += 1
            if sent:
                self.counters["download.with_credentials"] += 1
            self.download_credential_headers.append(sent)
        injection = self._take_injection("download")
        if injection is not None:
            injected = self._injected_download_reply(injection)
            if injected is not None:
                return injected
        reply = self._download_logic(method, path, query)
        reply.delay += self._delay_of(injection)
        return reply

    def _injected_download_reply(self, injection: _Injection) -> _Reply | None:
        kind = injection.kind
        reply: _Reply | None = None
        if kind == "expired_link":
            reply = self._link_expired_reply()
        elif kind == "xml_error":
            reply = _azure_error(
                injection.status or 404, injection.error or "BlobNotFound", "The specified blob does not exist."
            )
        elif kind == "two_entries":
            csv_text = '\ufeff"TimePeriod","Impressions"\r\n"2026-01-01","10"\r\n'.encode()
            reply = _Reply(injection.status or 200, _small_zip({"report.csv": csv_text, "extra.csv": csv_text}), _ZIP)
        elif kind == "zip_bomb":
            reply = _Reply(injection.status or 200, _zip_bomb(), _ZIP)
        elif kind == "not_zip":
            reply = _Reply(injection.status or 200, injection.body or b"This is not a zip archive.\r\n" * 64, _ZIP)
        elif kind == "malformed":
            whole = _small_zip({"report.csv": b'\xef\xbb\xbf"TimePeriod"\r\n"2026-01-01"\r\n'})
            reply = _Reply(injection.status or 200, injection.body or whole[: len(whole) // 2], _ZIP)
        elif kind == "html":
            status = injection.status if injection.status is not None else 500
            page = (
                injection.body
                or (
                    "<!DOCTYPE html><html><head><title>Service unavailable</title></head><body>"
                    f"<h1>{status}</h1><p>The page you requested is not available.</p></body></html>"
                ).encode()
            )
            reply = _Reply(status, page, _HTML)
        if reply is not None:
            if injection.retry_after is not None:
                reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
            return reply
        return self._generic_injection(injection, "download")

    @staticmethod
    def _link_expired_reply() -> _Reply:
        return _azure_error(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is "
            "formed correctly including the signature.",
            "Signed expiry time must be after signed start time or the signature has expired.",
        )

    def _download_logic(self, method: str, path: str, query: str) -> _Reply:
        if method not in ("GET", "HEAD"):
            return _azure_error(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.")
        parts = path.split("/")  # "", "download-reports", token, "<id>.zip"
        params = dict(parse_qsl(query, keep_blank_values=True))
        with self._lock:
            link = self._report_links.get(parts[2]) if len(parts) == 4 else None
            report = self.reports.get(link.report_id) if link is not None else None
            if link is None or report is None or parts[3] != f"{report.id}.zip":
                return _azure_error(404, "BlobNotFound", "The specified blob does not exist.")
            if params.get("sig") != link.signature:
                return _azure_error(
                    403,
                    "AuthenticationFailed",
                    "Server failed to authenticate the request.",
                    "Signature did not match.",
                )
            if link.expired or self.clock() > link.expires_at:
                return self._link_expired_reply()
            report.downloads += 1
            accounts = {a: self._accounts[a] for a in report.account_ids if a in self._accounts}
            now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)

        def stream(out: BinaryIO) -> None:
            _zip_report(report, accounts, out, now)

        headers = [
            ("x-ms-request-id", str(uuid.uuid4())),
            ("x-ms-version", "2021-08-06"),
            ("x-ms-blob-type", "BlockBlob"),
            ("Content-Disposition", f'attachment; filename="{report.id}.zip"'),
        ]
        return _Reply(200, b"", _ZIP, headers, stream=stream)
