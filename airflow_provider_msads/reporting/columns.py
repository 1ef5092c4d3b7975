"""What type each report column holds: the table behind ``output_format="parquet"``.

Microsoft's SDK lists a report's columns (``*ReportColumn`` value sets) as bare names, without
types; the types come from each column's definition on Microsoft's "Report attributes and
performance statistics" page (https://learn.microsoft.com/advertising/guides/report-attributes-performance-statistics)
and from how FormatVersion 2.0 writes them ("no thousands separators", Reporting's
ReportRequest page): counts are integers, money and averages decimals, rates and shares
percentages written as ``3.96%``, ``TimePeriod`` a date (or an hour, or an hour/day number, by
aggregation). The rules below name the columns (or the name endings) those definitions cover;
every column no rule names is a string, so a value is never mangled by a guess.
``tests/unit/test_report_columns.py`` runs every column of every report type in the SDK
catalogue through them.

Kinds, and how a CSV value becomes one (``--`` and the empty string are null in every kind):

* ``integer``: ``1234`` -> 1234 (int64).
* ``decimal``: ``12.50`` -> 12.5 (float64). A value written with ``%`` is divided by 100.
* ``percent``: a column Microsoft defines as "... x 100" or "as a percentage" (``Ctr`` written
  ``3.96%``, ``ImpressionSharePercent``/``Ptr``/``VideoCompletionRate`` written ``3.96`` without the
  sign) -> 0.0396 (float64: a fraction, not percentage points), with or without the sign.
* ``ratio``: a column defined as a plain quotient (``ViewThroughRate``: "The number of video views
  divided by the number of impressions") -> the value as written (float64), already a fraction.
* ``date``: ``2026-10-01`` -> date32; Yearly ``2026`` (ReportAggregation: "formatted as yyyy") ->
  date32 2026-01-01; Hourly ``2026-10-01|5`` or ``2026-10-01|05`` -> timestamp[ms] 05:00 (in the
  report's time zone, without zone); HourOfDay and DayOfWeek numbers -> int64.
* ``string``: Microsoft's text, unchanged.

Ids that are Microsoft-assigned numbers (``long`` in the API: account, campaign, ad group, ad,
keyword...) are integers; identifiers that are free text (merchant product ids, hotel ids, the
click id) stay strings. No Airflow and no pyarrow here.
"""

from __future__ import annotations

from collections.abc import Sequence

INTEGER = "integer"
DECIMAL = "decimal"
PERCENT = "percent"
RATIO = "ratio"
DATE = "date"
STRING = "string"
KINDS = (INTEGER, DECIMAL, PERCENT, RATIO, DATE, STRING)

TIME_PERIOD = "TimePeriod"

#: Microsoft-assigned numeric identifiers (``long`` in the Campaign/Customer Management APIs).
_NUMERIC_IDS = frozenset(
    {
        "AccountId",
        "AdExtensionId",
        "AdGroupCriterionId",
        "AdGroupId",
        "AdId",
        "AssetGroupId",
        "AssetId",
        "AudienceId",
        "BaseCampaignId",
        "CampaignId",
        "CustomerId",
        "DynamicAdTargetId",
        "FeedId",
        "FeedItemId",
        "GoalId",
        "KeywordId",
        "NegativeKeywordId",
        "NegativeKeywordListId",
    }
)

#: Counts the definitions call "the number of ...", named one by one (their names do not end in
#: Impressions or Clicks).
_COUNTS = frozenset(
    {
        "AppInstalls",
        "CompletedVideoViews",
        "Downloads",
        "HistoricalQualityScore",
        "Installs",
        "NewCustomerCount",
        "PhoneCalls",
        "Purchases",
        "QualityScore",  # "from a low of 1 to a high of 10"; "--" (older pages: blank) when not computed
        "Sales",  # "The total number of sales."
        "Subscriptions",
        "TotalWatchTimeInMS",
        "VideoViews",
        # "views that reached 25% of the video": counts despite the word Percent in the name
        "VideoViewsAt25Percent",
        "VideoViewsAt50Percent",
        "VideoViewsAt75Percent",
    }
)

#: Money, averages and conversion credit (conversions can be fractional under attribution), named.
_DECIMALS = frozenset(
    {
        "AllConversions",
        "AllConversionsQualified",
        "AllReturnOnAdSpend",
        "AllRevenue",
        "Assists",
        "AssistedConversions",
        "AssistedConversionsQualified",
        "AverageCPV",
        "AverageCpc",
        "AverageCpm",
        "AveragePosition",
        "AverageWatchTimePerImpression",
        "AverageWatchTimePerVideoView",
        "AvgTargetCPA",
        "AvgTargetRoas",
        "BenchmarkBid",
        "CPI",
        "CPP",
        "CPS",
        "Conversions",
        "ConversionsQualified",
        "Cpc",
        "CurrentMaxCpc",
        "ExtendedCost",
        "FirstPageBid",
        "GrossReturnOnAdSpend",
        "LowQualityConversions",
        "LowQualityConversionsQualified",
        "Mainline1Bid",
        "MainlineBid",
        "MonthlyBudget",
        "NetReturnOnAdSpend",
        "NetRevenue",
        "NewCustomerCPA",
        "NewCustomerConversions",
        "NewCustomerReturnOnAdSpend",
        "NewCustomerRevenue",
        "ROAS",
        "ReturnOnAdSpend",
        "Revenue",
        "TargetCPA",
        "TargetRoas",
        "UnknownCustomerConversions",
        "UnknownCustomerRevenue",
        "ViewThroughConversions",
        "ViewThroughConversionsQualified",
        "ViewThroughRevenue",
    }
)
#: Name endings of money columns ("Spend", "CostPerConversion", "RevenuePerSale"...).
_DECIMAL_PREFIXES = ("CostPer", "RevenuePer", "ViewThroughCostPer", "AllCostPer", "AllRevenuePer")
_DECIMAL_SUFFIXES = ("Spend",)

#: Rates and shares Microsoft writes as ``3.96%``.
_PERCENTS = frozenset({"Ctr", "BenchmarkCtr", "Ptr", "ClickShare", "ImpressionShare", "ProportionOfSpend"})
_PERCENT_SUFFIXES = ("Percent", "Rate")
#: Rates defined as a plain quotient, not "x 100" (accountperformancereportcolumn.md).
_RATIOS = frozenset({"ViewThroughRate"})
#: Quality sub-scores ("A score of 3 is Above Average; a score of 2 is Average; and a score of 1 is
#: considered Below Average") and QualityImpact ("0 - Not available" ... "3 - High impact").
_SCORES = frozenset(
    {
        "AdRelevance",
        "ExpectedCtr",
        "HistoricalAdRelevance",
        "HistoricalExpectedCtr",
        "HistoricalLandingPageExperience",
        "LandingPageExperience",
        "QualityImpact",
    }
)
#: Counts of impressions and clicks ("MissedImpressionsNoBid" too).
_COUNT_WORDS = ("Impressions", "Clicks")
#: Columns whose names contain those words but are not counts of them.
_NOT_COUNTS = frozenset({"ClicksIndexed", "ClicksPeakWeek", "MoMClicks", "WoWClicks"})


def column_kind(name: str) -> str:
    """The kind of ``name`` (one of :data:`KINDS`); ``string`` for any column no rule names."""
    if name == TIME_PERIOD:
        return DATE
    if name in _NUMERIC_IDS or name in _COUNTS or name in _SCORES:
        return INTEGER
    if name in _RATIOS:
        return RATIO
    if name in _PERCENTS:
        return PERCENT
    if name in _DECIMALS or name.startswith(_DECIMAL_PREFIXES) or name.endswith(_DECIMAL_SUFFIXES):
        return DECIMAL
    if name.endswith(_PERCENT_SUFFIXES):
        return PERCENT
    if name not in _NOT_COUNTS and not name.startswith("YoY") and any(name.endswith(w) for w in _COUNT_WORDS):
        return INTEGER
    if name.startswith("MissedImpressions"):  # "MissedImpressionsNoBid": impressions missed for that reason
        return INTEGER
    return STRING


#: How ``TimePeriod`` reads under each aggregation (Summary has no TimePeriod column).
TIME_PERIOD_BY_AGGREGATION = {
    "Hourly": "hour",
    "Yearly": "year",
    "HourOfDay": "number",
    "DayOfWeek": "number",
}


def column_kinds(columns: Sequence[str]) -> dict[str, str]:
    """Every column's kind, in file order."""
    return {name: column_kind(name) for name in columns}


__all__ = [
    "DATE",
    "DECIMAL",
    "INTEGER",
    "KINDS",
    "PERCENT",
    "RATIO",
    "STRING",
    "TIME_PERIOD",
    "TIME_PERIOD_BY_AGGREGATION",
    "column_kind",
    "column_kinds",
]
