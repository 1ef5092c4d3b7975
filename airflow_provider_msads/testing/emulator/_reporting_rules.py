"""Microsoft's documented Reporting rules, as data: scope kinds, aggregation x time, retention.

Each table names the Microsoft page it copies (MicrosoftDocs/Advertising, ``advertising/bingads-13``);
what a page leaves open is marked ASSUMPTION here and in docs/microsoft-fidelity.md. The
emulator's ``_reporting`` only looks rules up here, so a fidelity fix is a data change.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

# ---------------------------------------------------------------------------------- scope kinds

#: Which ``Scope`` object each report request takes (from the ``msads`` SDK models, the same as
#: the "Used By" lists of reporting-service/accountreportscope.md, accountthroughcampaignreportscope.md
#: and accountthroughadgroupreportscope.md). Report types not listed take an ad-group scope.
ACCOUNT_SCOPE_TYPES: Final = frozenset(
    {
        "AccountPerformanceReportRequest",
        "CategoryClickCoverageReportRequest",
        "CategoryInsightsReportRequest",
        "TravelQueryInsightReportRequest",
    }
)
CAMPAIGN_SCOPE_TYPES: Final = frozenset(
    {
        "BidStrategyReportRequest",
        "BudgetSummaryReportRequest",
        "CampaignPerformanceReportRequest",
        "CombinationPerformanceReportRequest",
        "MSClickIdPerformanceReportRequest",
        "SearchInsightPerformanceReportRequest",
        "SearchTermLandingPageReportRequest",
    }
)
#: AccountThroughAssetGroupReportScope (AccountIds, Campaigns, AssetGroups): the emulator reads
#: AccountIds and Campaigns like the campaign scope and ignores AssetGroups (ASSUMPTION).
ASSET_GROUP_SCOPE_TYPES: Final = frozenset({"AppsPerformanceReportRequest", "AssetGroupPerformanceReportRequest"})


def scope_kind(report_type: str) -> str:
    """``"account"``, ``"campaign"`` or ``"ad_group"``: which scope elements the request may use."""
    if report_type in ACCOUNT_SCOPE_TYPES:
        return "account"
    if report_type in CAMPAIGN_SCOPE_TYPES or report_type in ASSET_GROUP_SCOPE_TYPES:
        return "campaign"
    return "ad_group"


#: Limits from the scope pages: "A list of up to 1,000 account identifiers", "up to 300 campaigns",
#: "up to 300 ad groups" (2029, 2030, 2031 on the Operation error codes page).
MAX_ACCOUNTS: Final = 1000
MAX_CAMPAIGNS: Final = 300
MAX_AD_GROUPS: Final = 300
#: ReportRequest.ReportName: "The maximum length of the report name is 200." (2006)
MAX_REPORT_NAME: Final = 200

# ---------------------------------------------------------------------------- aggregation x time

#: guides/reports.md "Aggregation and Time": the predefined times each aggregation accepts, and
#: whether it accepts a custom date range. Anything else is 2007 InvalidReportAggregation.
#: The table predates Last14Days, Last30Days, the ...StartingMonday times and the
#: WeeklyStartingMonday aggregation; the emulator lets Last14Days/Last30Days go wherever
#: LastSevenDays goes, each ...StartingMonday time wherever its Sunday twin goes, and
#: WeeklyStartingMonday take Weekly's row (ASSUMPTION).
_DAILY_LIKE: Final = ("Today", "Yesterday", "LastSevenDays", "ThisMonth", "LastMonth")
AGGREGATION_TIMES: Final[dict[str, tuple[tuple[str, ...], bool]]] = {
    "Daily": (_DAILY_LIKE, True),
    "DayOfWeek": ((*_DAILY_LIKE, "LastThreeMonths", "LastSixMonths"), False),
    "Hourly": (("Today", "Yesterday"), True),
    "HourOfDay": ((*_DAILY_LIKE, "LastThreeMonths", "LastSixMonths"), False),
    "Monthly": (("ThisMonth", "LastMonth", "LastThreeMonths", "LastSixMonths", "ThisYear", "LastYear"), True),
    "Summary": (_DAILY_LIKE, True),
    "Weekly": (("ThisWeek", "LastWeek", "LastFourWeeks", "ThisMonth", "LastMonth", "ThisYear", "LastYear"), True),
    "Yearly": (("ThisYear", "LastYear"), True),
}
_TIME_TWINS: Final = {
    "Last14Days": "LastSevenDays",
    "Last30Days": "LastSevenDays",
    "ThisWeekStartingMonday": "ThisWeek",
    "LastWeekStartingMonday": "LastWeek",
    "LastFourWeeksStartingMonday": "LastFourWeeks",
}


def aggregation_allows(aggregation: str, predefined: str | None) -> bool:
    """Whether ``aggregation`` may go with ``predefined`` (None: a custom date range)."""
    times, custom = AGGREGATION_TIMES["Weekly" if aggregation == "WeeklyStartingMonday" else aggregation]
    if predefined is None:
        return custom
    return _TIME_TWINS.get(predefined, predefined) in times


#: Predefined times that include today: ReportRequest.ReturnOnlyCompleteData "you cannot set this
#: element to true if the Time period (whether custom or predefined date) includes today's date"
#: (2005 InvalidDataAvailabilityAndTimePeriodCombination).
TIMES_WITH_TODAY: Final = frozenset({"Today", "ThisWeek", "ThisMonth", "ThisYear", "ThisWeekStartingMonday"})

#: guides/reports.md "Time Zones in Reporting": "Data is generally considered complete with books
#: closed after 3 hours", per campaign time zone (the emulator: per account time zone).
COMPLETE_AFTER: Final = timedelta(hours=3)

# ---------------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class Span:
    """How far back data is kept: calendar months, or days."""

    months: int = 0
    days: int = 0

    def earliest(self, today: date) -> date:
        """The first day still retained, counted back from ``today`` (inclusive)."""
        if self.days:
            return today - timedelta(days=self.days)
        index = today.year * 12 + today.month - 1 - self.months
        year, month = divmod(index, 12)
        return date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))


_M6, _M36 = Span(months=6), Span(months=36)
_GRAINS: Final = ("Hourly", "Daily", "Weekly", "Monthly", "Yearly", "Summary")


def _row(hourly: Span | None, daily: Span | None, rest: Span | None = None) -> dict[str, Span | None]:
    rest = daily if rest is None else rest
    return dict(zip(_GRAINS, (hourly, daily, rest, rest, rest, rest), strict=True))


#: guides/report-data-retention-time-periods.md ("Reporting Data Retention Time Periods"): per
#: report type, how far back each aggregation can be retrieved. None is "Not Applicable" there.
#: Types the page does not list get ``DEFAULT_RETENTION`` (6 months hourly, 36 otherwise: the
#: page's most common row; ASSUMPTION). NegativeKeywordConflict and ProductMatchCount "do not
#: retain historical data" and have no limit.
RETENTION: Final[dict[str, dict[str, Span | None]]] = {
    "AdExtensionByAdReportRequest": _row(_M6, _M36),
    "AdExtensionDetailReportRequest": _row(_M6, _M36),
    "AdExtensionByKeywordReportRequest": _row(_M6, _M36),
    "CallDetailReportRequest": _row(_M6, _M6),
    "BudgetSummaryReportRequest": dict.fromkeys(_GRAINS, None) | {"Daily": Span(months=24)},
    "ConversionPerformanceReportRequest": _row(_M6, _M36),
    "GoalsAndFunnelsReportRequest": _row(Span(months=1), _M36),
    "SearchCampaignChangeHistoryReportRequest": _row(_M6, _M6),
    "DSAAutoTargetPerformanceReportRequest": _row(_M6, _M36),
    "DSACategoryPerformanceReportRequest": _row(_M6, _M36),
    "DSASearchQueryPerformanceReportRequest": _row(Span(months=1), _M36),
    "AccountPerformanceReportRequest": _row(_M6, _M36),
    "AdPerformanceReportRequest": _row(_M6, _M36),
    "AdDynamicTextPerformanceReportRequest": _row(_M6, _M36),
    "AdGroupPerformanceReportRequest": _row(_M6, _M36),
    "AudiencePerformanceReportRequest": _row(_M6, _M36),
    "CampaignPerformanceReportRequest": _row(_M6, _M36),
    "DestinationUrlPerformanceReportRequest": _row(_M6, _M36),
    "KeywordPerformanceReportRequest": _row(_M6, _M36),
    "PublisherUsagePerformanceReportRequest": _row(Span(months=2), _M36),
    "SearchQueryPerformanceReportRequest": _row(Span(months=1), _M36),
    "ShareOfVoiceReportRequest": _row(None, _M6),
    "ProductDimensionPerformanceReportRequest": _row(_M6, _M36),
    "ProductPartitionPerformanceReportRequest": _row(_M6, _M36),
    "ProductPartitionUnitPerformanceReportRequest": _row(_M6, _M36),
    "ProductSearchQueryPerformanceReportRequest": _row(Span(months=1), _M36),
    "AgeGenderAudienceReportRequest": _row(_M6, _M36),
    "GeographicPerformanceReportRequest": _row(Span(days=14), _M36),
    "ProfessionalDemographicsAudienceReportRequest": _row(_M6, _M36),
    "UserLocationPerformanceReportRequest": _row(Span(days=14), _M36),
}
DEFAULT_RETENTION: Final = _row(_M6, _M36)
NO_RETENTION_LIMIT: Final = frozenset({"NegativeKeywordConflictReportRequest", "ProductMatchCountReportRequest"})
#: The page has columns for Hourly, Daily, Weekly, Monthly, Yearly and Summary only; the other
#: aggregations read the column of the data they are built from (ASSUMPTION).
_GRAIN_OF: Final = {"HourOfDay": "Hourly", "DayOfWeek": "Daily", "WeeklyStartingMonday": "Weekly"}


def retention(report_type: str, aggregation: str) -> Span | None:
    """How far back ``report_type`` keeps ``aggregation`` data; None when the page says Not Applicable.

    Raises KeyError for the two report types with no history limit (check ``NO_RETENTION_LIMIT``).
    """
    if report_type in NO_RETENTION_LIMIT:
        raise KeyError(report_type)
    return RETENTION.get(report_type, DEFAULT_RETENTION)[_GRAIN_OF.get(aggregation, aggregation)]


def not_applicable(report_type: str, aggregation: str) -> bool:
    """Whether the Retention page marks ``aggregation`` "Not Applicable" for ``report_type``: the
    report keeps no data at that grain, so a request for it is refused (2059), whether or not the
    request has a ``TimePeriod`` column (Budget Summary has none: its request carries no Aggregation
    in the SDK; one sent anyway is read, ASSUMPTION)."""
    if report_type in NO_RETENTION_LIMIT:
        return False
    return retention(report_type, aggregation) is None
