"""Microsoft Advertising Reporting REST API v13: Submit and Poll.

What it plays, and why each part matters to a client:

* ``POST /Reporting/v13/GenerateReport/Submit`` validates like the service documents it: the
  ``Type`` and each column against Microsoft's own catalogue (copied from the ``msads`` SDK), with the
  misleading ``NullRequest`` (100) whose ``Details`` end in ``Path: $.Columns[i]`` for a bad
  column; then the 2000-range codes of Microsoft's "Operation error codes" page (columns, scope,
  time, complete data, retention: see ``_reporting_rules`` and docs/microsoft-fidelity.md). The
  scope is the union Microsoft describes: whole accounts from ``AccountIds`` plus only the named
  campaigns / ad groups, and the rows hold exactly that.
* ``POST /Reporting/v13/GenerateReport/Poll`` answers ``Pending`` a configurable number of
  times, then ``Success`` with a fresh download link (``_report_links``; no link at all for an
  empty report, as ``null`` or missing), or ``Error``.
"""

from __future__ import annotations

import calendar
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from airflow_provider_msads.testing.emulator import _reporting_catalogue as catalogue
from airflow_provider_msads.testing.emulator import _reporting_rules as rules
from airflow_provider_msads.testing.emulator._ads_api import _AdsApi, _OperationError
from airflow_provider_msads.testing.emulator._catalogues import _JSON, _REPORTING_FAULTS, _REPORTING_PREFIX
from airflow_provider_msads.testing.emulator._http import _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._model import (
    AD_GROUPS_PER_CAMPAIGN,
    CAMPAIGNS_PER_ACCOUNT,
    EmulatorAccount,
    _as_id,
    ad_group_id,
    campaign_id,
)
from airflow_provider_msads.testing.emulator._report_files import (
    EmulatorReport,
    _is_dimension,
    ad_group_index,
    campaign_index,
)
from airflow_provider_msads.testing.emulator._report_links import _ReportLinks
from airflow_provider_msads.testing.emulator._report_zones import (
    _DEFAULT_ZONE,
    _ZONE_OFFSETS,
    zone_label,
)

# SubmitGenerateReport / PollGenerateReport (reporting-service/submitgeneratereport.md,
# pollgeneratereport.md): the ReportRequestId is "up to 40 characters" of "any character", and
# "The report request identifier is valid for one day" (the older guides/request-download-report.md
# said two days). After that day the emulator answers 2100 (ASSUMPTION: 2100 rather than 2101).
REPORT_ID_LIFETIME: Final = 24 * 3600.0
MAX_REPORT_ID: Final = 40
# "Impression share performance statistics" (guides/reports.md, Column Restrictions): they do not
# count as the measure a report needs (the column pages' "Required Columns").
_IMPRESSION_SHARE_WORDS: Final = ("ImpressionShare", "ImpressionLostTo", "ClickShare", "ImpressionRate", "RelativeCtr")


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


def _is_measure(column: str) -> bool:
    """A performance statistic that is not an impression-share one (name-based: ASSUMPTION)."""
    return not _is_dimension(column) and not any(word in column for word in _IMPRESSION_SHARE_WORDS)


def _custom_date(value: object, code: int) -> date:
    if not isinstance(value, Mapping):
        raise _OperationError(code)
    try:
        return date(int(value["Year"]), int(value["Month"]), int(value["Day"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise _OperationError(code) from exc


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _scope_entries(
    raw: object, key: str, limit: int, too_many: int, parse: Callable[[object], tuple[str, int]]
) -> dict[str, set[int]]:
    """The Scope's ``Campaigns`` or ``AdGroups`` by account: an array of at most ``limit`` entries
    (error ``too_many`` above it), each parsed to (account id, index)."""
    chosen: dict[str, set[int]] = {}
    if not raw:
        return chosen
    if not isinstance(raw, list):
        raise _null_request(f"$.Scope.{key}", f"The {key} value is not an array")
    if len(raw) > limit:
        noun = "ad groups" if key == "AdGroups" else "campaigns"
        raise _OperationError(too_many, f"{len(raw)} {noun}; at most {limit}.")
    for entry in raw:
        account_id, index = parse(entry)
        chosen.setdefault(account_id, set()).add(index)
    return chosen


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

    def campaign_ids(self, account_id: str | None = None) -> list[str]:
        """The campaign ids of an account (default: :attr:`account`), as report rows carry them.

        Every account has the same fixed tree (3 campaigns of 2 ad groups), with ids derived from
        the account id: a test can scope a report to one campaign (``Scope.Campaigns``) and check
        that the file holds only that campaign's rows.
        """
        account = self._account_of(account_id)
        return [campaign_id(account, index) for index in range(CAMPAIGNS_PER_ACCOUNT)]

    def ad_group_ids(self, account_id: str | None = None, campaign: str | None = None) -> list[str]:
        """The ad group ids of an account (default :attr:`account`), or of one of its campaigns."""
        account = self._account_of(account_id)
        campaigns = self.campaign_ids(account)
        if campaign is not None and campaign not in campaigns:
            raise ValueError(f"campaign {campaign!r} is not one of account {account}'s: {campaigns}")
        chosen = range(CAMPAIGNS_PER_ACCOUNT) if campaign is None else [campaigns.index(campaign)]
        return [
            ad_group_id(account, c * AD_GROUPS_PER_CAMPAIGN + g) for c in chosen for g in range(AD_GROUPS_PER_CAMPAIGN)
        ]

    def _account_of(self, account_id: str | None) -> str:
        account = self.account.id if account_id is None else str(account_id)
        if account not in self._accounts:
            raise ValueError(f"account {account!r} is not in this emulator; add_account() creates one")
        return account

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
        return self._api_fault_detail(code, spec, tracking_id, details)

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
        return (datetime.fromtimestamp(self.clock(), tz=timezone.utc) + timedelta(minutes=offset)).date()

    def _submit(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        request = payload.get("ReportRequest")
        if request is None:
            raise _OperationError(2001)
        if not isinstance(request, dict):
            raise _null_request("$.ReportRequest", "The ReportRequest is not an object")
        report_type = request.get("Type")
        if report_type is None:
            raise _OperationError(2002)
        if not isinstance(report_type, str) or report_type not in catalogue.COLUMNS:
            raise _null_request("$.Type", f"The report type {report_type!r} is unknown")
        report_name = request.get("ReportName")
        if isinstance(report_name, str) and len(report_name) > rules.MAX_REPORT_NAME:
            raise _OperationError(2006, f"ReportName has {len(report_name)} characters; at most 200.")
        columns = self._columns(request.get("Columns"), report_type)
        report_format = request.get("Format") or "Csv"
        if report_format not in catalogue.FORMATS:
            raise _null_request("$.Format")
        if report_format == "Xml":
            raise _null_request("$.Format", "The emulator writes Csv and Tsv reports only; Xml is not emulated")
        aggregation = request.get("Aggregation") or "Summary"
        if aggregation not in catalogue.AGGREGATIONS:
            raise _null_request("$.Aggregation")
        if aggregation == "Summary" and "TimePeriod" in columns:
            raise _OperationError(2034)
        # Without a TimePeriod column "the aggregation you chose will be ignored and Summary
        # aggregation will be used regardless" (CampaignPerformanceReportRequest.Aggregation).
        effective = aggregation if "TimePeriod" in columns else "Summary"
        level = EmulatorReport.level_of(report_type)
        account_ids, selection = self._scope(request.get("Scope"), rules.scope_kind(report_type), level)
        start, end, zone, predefined = self._time_range(request.get("Time"), aggregation, effective, report_type)
        if _flag(request.get("ReturnOnlyCompleteData")):
            self._check_complete(predefined, end, zone, account_ids)
        # Letters, digits and dashes: a client that treats the id as a number breaks here as it would
        # on Microsoft, whose ids may hold any character.
        report_id = self._rand.fresh(self._rand.guid, self.reports)
        report = EmulatorReport(
            id=report_id,
            report_type=report_type,
            columns=columns,
            account_ids=account_ids,
            start=start,
            end=end,
            aggregation=aggregation,
            format=report_format,
            time_zone=zone,
            time_zone_label=zone_label(zone),
            report_name=str(report_name or report_type[: -len("Request")]),
            exclude_report_header=_flag(request.get("ExcludeReportHeader")),
            exclude_report_footer=_flag(request.get("ExcludeReportFooter")),
            exclude_column_headers=_flag(request.get("ExcludeColumnHeaders")),
            submitted_at=self.clock(),
            pending_polls=self.report_pending_polls,
            rows=self.report_rows,
            empty_url=self.report_empty_url,
            request=dict(request),
            selection=selection,
        )
        if self._next_reports:
            for key, value in self._next_reports.popleft().items():
                setattr(report, key, value)
        self.reports[report_id] = report
        return _Reply(200, _json_bytes({"ReportRequestId": report_id}), _JSON)

    @staticmethod
    def _columns(columns: object, report_type: str) -> list[str]:
        """Columns as the service checks them: present (2014), known (100), once (2016), a measure
        (2017) and an attribute (2015; "each report must include at least one attribute column and
        at least one non-impression share performance statistics column", the column pages)."""
        if columns is None or columns == []:
            raise _OperationError(2014)
        if not isinstance(columns, list):
            raise _null_request("$.Columns", "The Columns value is not an array")
        known = catalogue.COLUMNS[report_type]
        for index, column in enumerate(columns):
            if not isinstance(column, str) or column not in known:
                raise _null_request(
                    f"$.Columns[{index}]",
                    f"The JSON value could not be converted to {report_type[: -len('Request')]}Column",
                )
        duplicates = [c for c in dict.fromkeys(columns) if columns.count(c) > 1]
        if duplicates:
            raise _OperationError(2016, ",".join(duplicates))
        if not any(_is_measure(c) for c in columns):
            raise _OperationError(2017)
        if all(not _is_dimension(c) for c in columns):
            raise _OperationError(2015, "The report needs at least one attribute column, e.g. TimePeriod or AccountId.")
        return list(columns)

    # ---------------------------------------------------------------------- scope

    def _scope(self, scope: object, kind: str, level: int) -> tuple[list[str], dict[str, tuple[int, ...]]]:
        """The accounts to report and, per account named only through campaigns / ad groups, the
        entities (report rows) those select: "a union of the AccountIds and Campaigns elements"."""
        container_code = {"account": 2026, "campaign": 2027, "ad_group": 2028}[kind]
        if not isinstance(scope, dict):
            raise _OperationError(container_code, "The Scope is missing.")
        raw_accounts = scope.get("AccountIds")
        raw_campaigns = scope.get("Campaigns") if kind != "account" else None
        raw_ad_groups = scope.get("AdGroups") if kind == "ad_group" else None
        if not raw_accounts and not raw_campaigns and not raw_ad_groups:
            raise _OperationError(container_code, "The Scope names no account, campaign or ad group.")
        whole = self._scope_account_ids(raw_accounts)
        campaigns = _scope_entries(raw_campaigns, "Campaigns", rules.MAX_CAMPAIGNS, 2030, self._campaign_entry)
        ad_groups = _scope_entries(raw_ad_groups, "AdGroups", rules.MAX_AD_GROUPS, 2031, self._ad_group_entry)
        account_ids = list(dict.fromkeys([*whole, *campaigns, *ad_groups]))
        selection: dict[str, tuple[int, ...]] = {}
        for account_id in account_ids:
            if account_id in whole:
                continue
            chosen_campaigns = campaigns.get(account_id, set())
            chosen_groups = ad_groups.get(account_id, set())
            if level <= 1:
                selection[account_id] = (0,)
                continue
            fine = level >= CAMPAIGNS_PER_ACCOUNT * AD_GROUPS_PER_CAMPAIGN
            selection[account_id] = tuple(
                k
                for k in range(level)
                if campaign_index(k, level) in chosen_campaigns
                or (fine and ad_group_index(k, level) in chosen_groups)
                or (not fine and campaign_index(k, level) in {g // AD_GROUPS_PER_CAMPAIGN for g in chosen_groups})
            )
        return account_ids, selection

    def _scope_account_ids(self, raw: object) -> list[str]:
        """``AccountIds``: at most 1,000 (2029), ids of accounts that exist (2035, Details lists up to
        20) and that the user may report on (2003)."""
        if raw is None or raw == []:
            return []
        if not isinstance(raw, list):
            raise _null_request("$.Scope.AccountIds", "The AccountIds value is not an array")
        if len(raw) > rules.MAX_ACCOUNTS:
            raise _OperationError(2029, f"{len(raw)} account ids; at most {rules.MAX_ACCOUNTS}.")
        account_ids: list[str] = []
        for index, value in enumerate(raw):
            account_id = _as_id(value)
            if account_id is None:
                raise _null_request(f"$.Scope.AccountIds[{index}]")
            account_ids.append(account_id)
        account_ids = list(dict.fromkeys(account_ids))
        unknown = [a for a in account_ids if a not in self._accounts]
        if unknown:
            raise _OperationError(2035, ",".join(unknown[:20]))
        refused = [a for a in account_ids if not self._visible_account(a)]
        if refused:
            raise _OperationError(2003, ",".join(refused[:20]))
        return account_ids

    def _entry_account(self, entry: Mapping[str, Any], invalid_code: int) -> EmulatorAccount:
        account_id = _as_id(entry.get("AccountId"))
        account = self._accounts.get(account_id) if account_id is not None else None
        if account is None:
            raise _OperationError(invalid_code, str(entry.get("AccountId")))
        if not self._visible_account(account.id):
            raise _OperationError(2003, account.id)
        return account

    def _scope_entry(
        self, entry: object, key: str, what: str, null_code: int, bad_account: int
    ) -> tuple[Mapping[str, Any], EmulatorAccount]:
        """A Scope entry that is an object with a visible account: null ``null_code``, bad account
        ``bad_account``."""
        if entry is None:
            raise _OperationError(null_code)
        if not isinstance(entry, dict):
            raise _null_request(f"$.Scope.{key}", f"{what} is not an object")
        return entry, self._entry_account(entry, bad_account)

    def _campaign_entry(self, entry: object) -> tuple[str, int]:
        """A ``CampaignReportScope`` {AccountId, CampaignId}: null 2024, bad account 2018, a campaign
        that is not the account's 2019 (ASSUMPTION: the entry-level codes, not 2027)."""
        entry, account = self._scope_entry(entry, "Campaigns", "A campaign entry", 2024, 2018)
        wanted = _as_id(entry.get("CampaignId"))
        for index in range(CAMPAIGNS_PER_ACCOUNT):
            if campaign_id(account.id, index) == wanted:
                return account.id, index
        raise _OperationError(2019, str(entry.get("CampaignId")))

    def _ad_group_entry(self, entry: object) -> tuple[str, int]:
        """An ``AdGroupReportScope`` {AccountId, CampaignId, AdGroupId}: null 2025, bad account 2020,
        campaign 2021, ad group 2022 (ASSUMPTION as for campaign entries)."""
        entry, account = self._scope_entry(entry, "AdGroups", "An ad group entry", 2025, 2020)
        wanted_campaign = _as_id(entry.get("CampaignId"))
        campaign = next(
            (c for c in range(CAMPAIGNS_PER_ACCOUNT) if campaign_id(account.id, c) == wanted_campaign), None
        )
        if campaign is None:
            raise _OperationError(2021, str(entry.get("CampaignId")))
        wanted = _as_id(entry.get("AdGroupId"))
        for index in range(campaign * AD_GROUPS_PER_CAMPAIGN, (campaign + 1) * AD_GROUPS_PER_CAMPAIGN):
            if ad_group_id(account.id, index) == wanted:
                return account.id, index
        raise _OperationError(2022, str(entry.get("AdGroupId")))

    # ---------------------------------------------------------------------- time

    def _time_range(
        self, time: object, aggregation: str, effective: str, report_type: str
    ) -> tuple[date, date, str, str | None]:
        """Start, end, report time zone and predefined time, refused with the 2000-range codes."""
        if not isinstance(time, dict):
            raise _OperationError(2008, "The Time is missing.")
        zone = time.get("ReportTimeZone") or _DEFAULT_ZONE
        if zone not in catalogue.TIME_ZONES:
            raise _null_request("$.Time.ReportTimeZone")
        today = self._today(zone)
        predefined = time.get("PredefinedTime")
        raw_start, raw_end = time.get("CustomDateRangeStart"), time.get("CustomDateRangeEnd")
        custom = raw_start is not None or raw_end is not None
        if (predefined is not None) == custom:
            raise _OperationError(2008, "Give either PredefinedTime or CustomDateRangeStart and End.")
        if predefined is not None and predefined not in catalogue.PREDEFINED_TIMES:
            raise _null_request("$.Time.PredefinedTime")
        if not rules.aggregation_allows(aggregation, predefined):
            raise _OperationError(2007, f"{aggregation} with {predefined or 'a custom date range'}.")
        if aggregation != "Summary" and rules.not_applicable(report_type, aggregation):
            # Retention: "If the data aggregation is not available for a given report, it will be
            # noted as Not Applicable" (Budget Summary keeps Daily only; Share of Voice no Hourly).
            raise _OperationError(2059, f"{report_type} has no {aggregation} data.")
        if predefined is not None:
            start, end = _predefined_range(predefined, today)
            earliest = self._earliest(report_type, aggregation, effective, today)
            return (start if earliest is None else max(start, earliest)), end, zone, predefined
        start = _custom_date(raw_start, 2009)
        end = _custom_date(raw_end, 2010)
        if end < start:
            raise _OperationError(2011)
        if start > today:
            raise _OperationError(2041, f"{start.isoformat()} is after today ({today.isoformat()}) in {zone}.")
        if end > today:
            # ReportTime: "The end date cannot be later than today's date." (code: ASSUMPTION)
            raise _OperationError(2010, f"{end.isoformat()} is after today ({today.isoformat()}) in {zone}.")
        # Retention (guides/report-data-retention-time-periods.md gives the limits, not the answer).
        # The service answers a range that ENDS before the retained data with 2010: the singer-io
        # tap-bing-ads connector skips exactly that case ("the requested report date range ended
        # outside of their data retention period", PR #29). A range that only starts earlier is
        # served with the retained days (the connector's windows straddle the limit and succeed).
        earliest = self._earliest(report_type, aggregation, effective, today)
        if earliest is not None and end < earliest:
            raise _OperationError(
                2010, f"{report_type} keeps {effective} data from {earliest.isoformat()}; the range ends before."
            )
        if earliest is not None and start < earliest:
            start = earliest
        return start, end, zone, None

    @staticmethod
    def _earliest(report_type: str, aggregation: str, effective: str, today: date) -> date | None:
        """The first retained day for the data the report is built from; None: no limit."""
        if report_type in rules.NO_RETENTION_LIMIT:
            return None
        span = rules.retention(report_type, effective)
        if span is None:
            if effective != "Summary":
                raise _OperationError(2059, f"{report_type} has no {aggregation} data.")
            row = rules.RETENTION.get(report_type, rules.DEFAULT_RETENTION)
            span = min((s for s in row.values() if s is not None), key=lambda s: s.earliest(today))
        return span.earliest(today)

    def _check_complete(self, predefined: str | None, end: date, zone: str, account_ids: list[str]) -> None:
        """ReturnOnlyCompleteData: a period that includes today can never be complete (2005); a
        finished day is complete about 3 hours after it ends in each account's time zone (2004)."""
        if predefined in rules.TIMES_WITH_TODAY or end >= self._today(zone):
            raise _OperationError(2005)
        now = self.clock()
        for account_id in account_ids:
            if now < self.complete_at(end, self._accounts[account_id].time_zone):
                raise _OperationError(2004)

    @staticmethod
    def complete_at(day: date, time_zone: str) -> float:
        """When Microsoft's data for ``day`` is complete in ``time_zone`` (a POSIX timestamp): the day
        ends at midnight there, plus the "3 hours" of guides/reports.md (Time Zones in Reporting)."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
        ends = midnight - timedelta(minutes=_ZONE_OFFSETS.get(time_zone, 0))
        return (ends + rules.COMPLETE_AFTER).timestamp()

    def _poll(self, payload: Mapping[str, Any], tracking_id: str) -> _Reply:
        raw = payload.get("ReportRequestId")
        report_id = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
        if not report_id.strip() or len(report_id) > MAX_REPORT_ID:
            raise _OperationError(2100)  # not an id at all: "The report identifier is not valid."
        report = self.reports.get(report_id)
        if report is None:
            raise _OperationError(2101)  # "The report was not found."
        if self.clock() - report.submitted_at > REPORT_ID_LIFETIME:
            raise _OperationError(2100, "The report request identifier is valid for one day.")
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
