"""What Microsoft documents about a report's time: periods per aggregation, retention, time zones, dates.

The calendar half of :mod:`.request` (which builds and checks the ReportRequest from these facts):
each table cites the page it comes from. Imports nothing of the package; no Airflow.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Sequence

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
MAX_ACCOUNTS = 1000
#: "The report scope contains too many campaigns" (2030): AccountThroughCampaignReportScope allows 300.
MAX_CAMPAIGNS = 300
#: ReportRequest.ReportName: "The maximum length is 200 characters" (2006 beyond).
MAX_REPORT_NAME = 200
#: The formats the operator writes end to end (Tsv and Xml are refused before submitting).
FORMATS = ("Csv",)
#: How long Microsoft keeps a ReportRequestId pollable: SubmitGenerateReport and
#: PollGenerateReport ("the report request identifier ... is valid for one day"; an older guide
#: said two). Ids are opaque strings ("up to 40 ... any character"), never assumed to be digits.
REQUEST_ID_LIFETIME = datetime.timedelta(days=1)
#: ReportRequest keys the file contract rests on: the operator reads the report header and footer
#: (Microsoft's only in-file completeness signal) and strips them, counts rows against the column
#: row, and types Parquet from CSV 2.0 values. ``report_request`` may not override them.
FILE_CONTRACT = {
    "ExcludeReportHeader": False,
    "ExcludeReportFooter": False,
    "ExcludeColumnHeaders": False,
    "Format": "Csv",
    "FormatVersion": "2.0",
}


# -- what Microsoft documents ---------------------------------------------------------------------

#: Microsoft's "Reports" guide, "Aggregation and Time": the predefined periods each aggregation
#: allows (2007 otherwise). Only the periods that table names are checked; the newer ones it does
#: not list (Last14Days, Last30Days, *StartingMonday) and WeeklyStartingMonday pass (assumption).
AGGREGATION_PERIODS: dict[str, frozenset[str]] = {
    "Daily": frozenset({"Today", "Yesterday", "LastSevenDays", "ThisMonth", "LastMonth"}),
    "DayOfWeek": frozenset(
        {"Today", "Yesterday", "LastSevenDays", "ThisMonth", "LastMonth", "LastThreeMonths", "LastSixMonths"}
    ),
    "Hourly": frozenset({"Today", "Yesterday"}),
    "HourOfDay": frozenset(
        {"Today", "Yesterday", "LastSevenDays", "ThisMonth", "LastMonth", "LastThreeMonths", "LastSixMonths"}
    ),
    "Monthly": frozenset({"ThisMonth", "LastMonth", "LastThreeMonths", "LastSixMonths", "ThisYear", "LastYear"}),
    "Summary": frozenset({"Today", "Yesterday", "LastSevenDays", "ThisMonth", "LastMonth"}),
    "Weekly": frozenset({"ThisWeek", "LastWeek", "LastFourWeeks", "ThisMonth", "LastMonth", "ThisYear", "LastYear"}),
    "Yearly": frozenset({"ThisYear", "LastYear"}),
}
TABLED_PERIODS = frozenset().union(*AGGREGATION_PERIODS.values())
#: The same table lists "Custom date range" for every aggregation but these two.
NO_CUSTOM_RANGE = frozenset({"DayOfWeek", "HourOfDay"})
#: Periods that include today: their data can never be complete (2005 with ReturnOnlyCompleteData).
OPEN_PERIODS = frozenset({"Today", "ThisWeek", "ThisMonth", "ThisYear", "ThisWeekStartingMonday"})

#: Microsoft's "Reporting data retention time periods": how far back each report type keeps data,
#: by aggregation, as (months, days); unlisted report types keep hourly data 6 months and the rest
#: 36. HourOfDay counts as hourly, DayOfWeek and WeeklyStartingMonday as daily/weekly (assumption:
#: the page lists Hourly, Daily, Weekly, Monthly, Yearly and Summary only).
_HOURLY_ONE_MONTH = (
    "SearchQueryPerformanceReportRequest",
    "GoalsAndFunnelsReportRequest",
    "DSASearchQueryPerformanceReportRequest",
    "ProductSearchQueryPerformanceReportRequest",
)
RETENTION: dict[str, dict[str, tuple[int, int]]] = {
    **{name: {"hourly": (1, 0)} for name in _HOURLY_ONE_MONTH},
    "PublisherUsagePerformanceReportRequest": {"hourly": (2, 0)},
    "GeographicPerformanceReportRequest": {"hourly": (0, 14)},
    "UserLocationPerformanceReportRequest": {"hourly": (0, 14)},
    "CallDetailReportRequest": {"hourly": (6, 0), "daily": (6, 0)},
    "SearchCampaignChangeHistoryReportRequest": {"hourly": (6, 0), "daily": (6, 0)},
    "ShareOfVoiceReportRequest": {"daily": (6, 0)},
    "BudgetSummaryReportRequest": {"daily": (24, 0)},
}
_DEFAULT_RETENTION = {"hourly": (6, 0), "daily": (36, 0)}
_HOURLY = frozenset({"Hourly", "HourOfDay"})
#: The same page's "Not Applicable" cells: aggregations a report type keeps no data for (Microsoft
#: answers 2059 UnsupportedTimeGrain, per the emulator's ledger). The page's columns are Hourly ...
#: Summary; HourOfDay reads Hourly, DayOfWeek Daily, WeeklyStartingMonday Weekly (assumption).
NOT_APPLICABLE: dict[str, frozenset[str]] = {
    "BudgetSummaryReportRequest": frozenset({"Hourly", "Weekly", "Monthly", "Yearly", "Summary"}),
    "ShareOfVoiceReportRequest": frozenset({"Hourly"}),
}
_PAGE_COLUMN = {"HourOfDay": "Hourly", "DayOfWeek": "Daily", "WeeklyStartingMonday": "Weekly"}


def not_applicable(report_type: str, aggregation: str) -> bool:
    """Whether the retention page says "Not Applicable" for ``report_type`` at ``aggregation``."""
    return _PAGE_COLUMN.get(aggregation, aggregation) in NOT_APPLICABLE.get(report_type, frozenset())


def retention(report_type: str, aggregation: str) -> tuple[int, int]:
    """How long Microsoft keeps ``report_type`` at ``aggregation``: (months, days)."""
    grain = "hourly" if aggregation in _HOURLY else "daily"
    return {**_DEFAULT_RETENTION, **RETENTION.get(report_type, {})}[grain]


def retention_start(report_type: str, aggregation: str, today: datetime.date) -> datetime.date:
    """The oldest day Microsoft still has for ``report_type`` at ``aggregation``, seen from ``today``."""
    months, days = retention(report_type, aggregation)
    return _months_before(today, months) - datetime.timedelta(days=days)


def _months_before(day: datetime.date, months: int) -> datetime.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# -- default dates --------------------------------------------------------------------------------

#: IANA zone -> Microsoft's ReportTimeZone name, for DAGs scheduled in a zone Microsoft has a name
#: for with the same rules (ReportTime page: "The time zone used to establish today's date"). The
#: request then means by "today" what the DAG means. Other zones keep GMT (DEFAULT_TIME_ZONE).
REPORT_TIME_ZONES: dict[str, str] = {
    "UTC": DEFAULT_TIME_ZONE,
    "Etc/UTC": DEFAULT_TIME_ZONE,
    "Europe/London": DEFAULT_TIME_ZONE,
    "Europe/Dublin": DEFAULT_TIME_ZONE,
    "Europe/Lisbon": DEFAULT_TIME_ZONE,
    "America/Los_Angeles": "PacificTimeUSCanadaTijuana",
    "America/Vancouver": "PacificTimeUSCanadaTijuana",
    "America/Tijuana": "PacificTimeUSCanadaTijuana",
    "America/Denver": "MountainTimeUSCanada",
    "America/Edmonton": "MountainTimeUSCanada",
    "America/Phoenix": "Arizona",
    "America/Chicago": "CentralTimeUSCanada",
    "America/Winnipeg": "CentralTimeUSCanada",
    "America/New_York": "EasternTimeUSCanada",
    "America/Toronto": "EasternTimeUSCanada",
    "America/Halifax": "AtlanticTimeCanada",
    "America/St_Johns": "Newfoundland",
    "America/Anchorage": "Alaska",
    "Pacific/Honolulu": "Hawaii",
    "America/Sao_Paulo": "Brasilia",
    "Europe/Paris": "BrusselsCopenhagenMadridParis",
    "Europe/Brussels": "BrusselsCopenhagenMadridParis",
    "Europe/Madrid": "BrusselsCopenhagenMadridParis",
    "Europe/Copenhagen": "BrusselsCopenhagenMadridParis",
    "Europe/Berlin": "AmsterdamBerlinBernRomeStockholmVienna",
    "Europe/Amsterdam": "AmsterdamBerlinBernRomeStockholmVienna",
    "Europe/Rome": "AmsterdamBerlinBernRomeStockholmVienna",
    "Europe/Stockholm": "AmsterdamBerlinBernRomeStockholmVienna",
    "Europe/Vienna": "AmsterdamBerlinBernRomeStockholmVienna",
    "Europe/Zurich": "AmsterdamBerlinBernRomeStockholmVienna",
    "Europe/Warsaw": "SarajevoSkopjeWarsawZagreb",
    "Europe/Helsinki": "HelsinkiKyivRigaSofiaTallinnVilnius",
    "Europe/Kyiv": "HelsinkiKyivRigaSofiaTallinnVilnius",
    "Europe/Athens": "AthensIslandanbulMinsk",
    "Europe/Moscow": "MoscowStPetersburgVolgograd",
    "Asia/Kolkata": "ChennaiKolkataMumbaiNewDelhi",
    "Asia/Shanghai": "BeijingChongqingHongKongUrumqi",
    "Asia/Hong_Kong": "BeijingChongqingHongKongUrumqi",
    "Asia/Singapore": "KualaLumpurSingapore",
    "Asia/Kuala_Lumpur": "KualaLumpurSingapore",
    "Asia/Tokyo": "OsakaSapporoTokyo",
    "Australia/Sydney": "CanberraMelbourneSydney",
    "Australia/Melbourne": "CanberraMelbourneSydney",
    "Pacific/Auckland": "AucklandWellington",
}


def report_time_zone(zone: object) -> str:
    """Microsoft's ReportTimeZone for a DAG's time zone (a tzinfo or its IANA name); GMT otherwise."""
    name = zone if isinstance(zone, str) else getattr(zone, "name", None) or getattr(zone, "key", None)
    return REPORT_TIME_ZONES.get(str(name), DEFAULT_TIME_ZONE)


def default_dates(
    interval_start: datetime.datetime | None,
    interval_end: datetime.datetime | None,
    *,
    run_time: datetime.datetime | None = None,
    zone: datetime.tzinfo | None = None,
    aggregation: str = "Daily",
) -> tuple[datetime.date, datetime.date]:
    """The period that ended at the run, as inclusive dates in the DAG's time zone.

    A real data interval (``@daily`` on Airflow 2, ``CronDataIntervalTimetable``) gives its own
    days: [start, end) in ``zone``. A zero-length one (Airflow 3's default ``CronTriggerTimetable``,
    manual runs, asset-triggered runs) gives the last complete day before the run time, or for
    Hourly the day of the last complete hour: a run at midnight asks for yesterday, never for the
    day that has just begun.
    """
    zone = zone or datetime.timezone.utc
    if interval_start is not None and interval_end is not None and interval_end > interval_start:
        first = interval_start.astimezone(zone).date()
        last = (interval_end.astimezone(zone) - datetime.timedelta(microseconds=1)).date()
        return first, max(first, last)
    moment = interval_end or interval_start or run_time or datetime.datetime.now(datetime.timezone.utc)
    local = moment.astimezone(zone)
    if aggregation in ("Hourly", "HourOfDay"):
        day = (local.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=1)).date()
    else:
        day = local.date() - datetime.timedelta(days=1)
    return day, day


# -- what the file covers, and whether it is complete ---------------------------------------------

#: ReportAggregation: "If the selected dates are not full weeks/months/years and the corresponding
#: weekly/monthly/yearly time period column is requested, the selected dates will be converted to
#: full weeks/months/years". Weekly runs Sunday through Saturday, WeeklyStartingMonday Monday
#: through Sunday (the same page).
WIDENING_AGGREGATIONS = frozenset({"Weekly", "WeeklyStartingMonday", "Monthly", "Yearly"})


def covered_dates(
    aggregation: str, first: datetime.date, last: datetime.date, columns: Sequence[str] = ("TimePeriod",)
) -> tuple[datetime.date, datetime.date]:
    """The days a report of ``first``..``last`` covers: whole weeks, months or years for those
    aggregations when the TimePeriod column is asked for (without it Microsoft answers Summary)."""
    if aggregation not in WIDENING_AGGREGATIONS or "TimePeriod" not in columns:
        return first, last
    if aggregation in ("Weekly", "WeeklyStartingMonday"):
        # date.weekday(): Monday 0 ... Sunday 6; ``shift`` makes it the days since the week's first day.
        shift = 1 if aggregation == "Weekly" else 0
        start = first - datetime.timedelta(days=(first.weekday() + shift) % 7)
        end = last - datetime.timedelta(days=(last.weekday() + shift) % 7) + datetime.timedelta(days=6)
        return start, end
    if aggregation == "Monthly":
        return first.replace(day=1), last.replace(day=calendar.monthrange(last.year, last.month)[1])
    return first.replace(month=1, day=1), last.replace(month=12, day=31)


#: Reports guide, "Time Zones in Reporting": complete data "only after the day has ended ... in all
#: of the campaign time zones", books closed "after 3 hours". Microsoft's westernmost ReportTimeZone
#: is InternationalDateLineWest (UTC-12), so a day is closed everywhere 12 + 3 hours after it ends
#: in UTC (assumption: the campaigns' zones are unknown to the client, so the latest one counts).
BOOKS_CLOSE_AFTER_UTC_MIDNIGHT = datetime.timedelta(hours=15)


def books_closed(last: datetime.date, now: datetime.datetime | None = None) -> bool:
    """Whether ``last`` has ended, plus Microsoft's three hours, in every time zone at ``now``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    closes = datetime.datetime.combine(last + datetime.timedelta(days=1), datetime.time(), datetime.timezone.utc)
    return now >= closes + BOOKS_CLOSE_AFTER_UTC_MIDNIGHT
