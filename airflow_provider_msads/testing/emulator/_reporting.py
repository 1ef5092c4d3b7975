"""Microsoft Advertising Reporting REST API v13: Submit and Poll.

What it plays, and why each part matters to a client:

* ``POST /Reporting/v13/GenerateReport/Submit`` validates like the service: the ``Type`` and
  each column against Microsoft's own catalogue (copied from the ``msads`` SDK), with the
  misleading ``NullRequest`` (100) whose ``Details`` end in ``Path: $.Columns[i]`` for a bad
  column; 2029 over 1,000 accounts; 2004 for complete data with today in range; 2015/2016 for
  bad or out-of-retention dates; 2034 for an account the user cannot see (number unconfirmed).
* ``POST /Reporting/v13/GenerateReport/Poll`` answers ``Pending`` a configurable number of
  times, then ``Success`` with a fresh download link (``_report_links``; no link at all for an
  empty report, as ``null`` or missing), or ``Error``.
"""

from __future__ import annotations

import calendar
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from airflow_provider_msads.testing.emulator import _reporting_catalogue as catalogue
from airflow_provider_msads.testing.emulator._ads_api import _AdsApi, _OperationError
from airflow_provider_msads.testing.emulator._catalogues import _JSON, _REPORTING_FAULTS, _REPORTING_PREFIX
from airflow_provider_msads.testing.emulator._http import _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._model import _as_id
from airflow_provider_msads.testing.emulator._report_files import EmulatorReport
from airflow_provider_msads.testing.emulator._report_links import _ReportLinks

_TWO_DAYS: Final = 2 * 24 * 3600.0
_MAX_ACCOUNTS: Final = 1000

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


def _null_request(path: str, what: str = "The JSON value could not be converted") -> _OperationError:
    return _OperationError(100, f"Invalid JSON. {what}. Path: {path} | LineNumber: 0 | BytePositionInLine: 0.")


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
        raise _OperationError(code)
    try:
        return date(int(value["Year"]), int(value["Month"]), int(value["Day"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _OperationError(code) from exc


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ------------------------------------------------------------------------------------ the service


class _Reporting(_ReportLinks, _AdsApi):
    """Reporting v13 Submit/Poll; Poll hands out the links ``_ReportLinks`` serves."""

    report_pending_polls: int
    report_rows: int | None
    report_empty_url: str
    reports: dict[str, EmulatorReport]
    _next_reports: deque[dict[str, Any]]

    def _init_reporting(self) -> None:
        self.report_pending_polls = 1
        self.report_rows = None
        self.report_empty_url = "null"
        self.reports = {}
        self._next_reports = deque()
        self._init_report_links()

    # ---------------------------------------------------------------------- public controls

    @property
    def reporting_url(self) -> str:
        """The Reporting v13 base URL (the connection's ``reporting_url``)."""
        return f"{self.base_url}{_REPORTING_PREFIX}"

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

    @property
    def report_submits(self) -> int:
        return self.counters["reporting.SubmitGenerateReport"]

    @property
    def report_polls(self) -> int:
        return self.counters["reporting.PollGenerateReport"]

    # ---------------------------------------------------------------------- Submit / Poll

    def _reporting_endpoint(
        self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes
    ) -> _Reply:
        return self._ads_endpoint(
            "reporting",
            operation,
            method,
            headers,
            body,
            operations={"SubmitGenerateReport": self._submit, "PollGenerateReport": self._poll},
            fault=self._reporting_fault,
            caller_check=self._refused_reporting_caller,
        )

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

    def _refused_reporting_caller(self, headers: Mapping[str, str], tracking_id: str) -> _Reply | None:
        """The Ads header checks, then the ``CustomerId`` and ``CustomerAccountId`` headers Reporting reads.

        The SDK sends the string "None" for unset ids; an id naming someone else's customer or
        account is refused like Customer Management refuses it (emulator's choice: 106).
        """
        refused = self._refused_caller(headers, tracking_id)
        if refused is not None:
            return refused
        customer = headers.get("customerid", "").strip()
        if customer not in ("", "None") and customer != self.customer_id:
            return self._fault(106, tracking_id)
        account = headers.get("customeraccountid", "").strip()
        if account not in ("", "None") and not self._visible_account(account):
            return self._fault(106, tracking_id)
        return None

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
            raise _OperationError(2004)
        report_id = self._rand.fresh(lambda: self._rand.digits(11), self.reports)
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
            raise _OperationError(2029)
        account_ids: list[str] = []
        for index, value in enumerate(raw):
            account_id = _as_id(value)
            if account_id is None:
                raise _null_request(f"$.Scope.AccountIds[{index}]")
            if not self._visible_account(account_id):
                raise _OperationError(2034)
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
            raise _OperationError(2016)
        # Retention: hourly data 6 months (search queries 1), daily and coarser 36 months.
        hourly_months = 1 if report_type == "SearchQueryPerformanceReportRequest" else 6
        months = hourly_months if aggregation == "Hourly" else 36
        if start < _months_back(today, months):
            raise _OperationError(2015)
        return start, end, zone

    def _poll(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        report_id = _as_id(payload.get("ReportRequestId"))
        report = self.reports.get(report_id) if report_id is not None else None
        if report is None or self.clock() - report.submitted_at > _TWO_DAYS:
            raise _OperationError(2100)
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
