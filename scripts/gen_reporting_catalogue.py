"""Regenerate the emulator's Reporting catalogue from Microsoft's ``msads`` SDK.

The emulator imports only the standard library, so it cannot read the SDK's enums at run time;
this script copies them (report types and their columns, time zones, aggregations, predefined
times, formats) into ``airflow_provider_msads/testing/emulator/_reporting_catalogue.py``.

The SDK's value sets are bare names; what each column HOLDS comes from its definition on
Microsoft's ``*ReportColumn`` pages (MicrosoftDocs/Advertising,
``advertising/bingads-13/reporting-service/<type>reportcolumn.md``) and the "Report Format
Version" table of ``guides/reports.md``. :func:`shape_of` encodes those definitions as rules
(quoted below), and the generated ``COLUMN_SHAPES`` tells the emulator how to write each value.
``tests/emulator/test_emulator_reporting_sdk_fidelity.py`` fails when the copy and the installed
SDK disagree. Run: ``.venv/bin/python scripts/gen_reporting_catalogue.py``.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import pkgutil
import warnings
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "airflow_provider_msads/testing/emulator/_reporting_catalogue.py"


def _enum_of(module_name: str) -> list[str]:
    module = importlib.import_module(f"openapi_client.models.reporting.{module_name}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == module.__name__:
            return [member.value for member in value]
    raise LookupError(module_name)


# ------------------------------------------------------------------------- column shapes
#
# Shapes (what the emulator writes; FormatVersion 2.0, no thousands separators):
#   time     TimePeriod (by aggregation)
#   id       a Microsoft-assigned number ("The Microsoft Advertising assigned identifier of ...")
#   count    "The number of ..." / "The total number of ...": an integer
#   score10  QualityScore: "can range from a low of 1 to a high of 10 ... '--' (double dash) if
#            the score was not computed" (keywordperformancereportcolumn.md; older pages: blank)
#   score3   the quality sub-scores: "A score of 3 is Above Average; a score of 2 is Average;
#            and a score of 1 is considered Below Average"; QualityImpact "0 - Not available ... 3"
#   money    spend, cost/revenue per X, bids, averages, conversion credit: ``12.50``
#   percent  defined "... x 100" / "as a percentage" / "multiplied by 100": ``12.34`` (no sign;
#            reports.md Format Version table: LowQualityClicksPercent, Ptr, the impression shares
#            ``12.34``); impression shares are "empty if the data is not available"
#   percent_sign  Ctr and the conversion rates, written with the sign: ``12.50%``
#   ratio    defined as a plain quotient: ViewThroughRate "The number of video views divided by the
#            number of impressions" (accountperformancereportcolumn.md): ``0.13``
#   text     everything else (names, statuses, types, urls...)
_IDS = frozenset(
    {
        "AccountId", "AdExtensionId", "AdGroupCriterionId", "AdGroupId", "AdId", "AssetGroupId",
        "AssetId", "AudienceId", "BaseCampaignId", "CampaignId", "CustomerId", "DynamicAdTargetId",
        "FeedId", "FeedItemId", "GoalId", "KeywordId", "NegativeKeywordId", "NegativeKeywordListId",
    }
)  # fmt: skip
_COUNTS = frozenset(
    {
        "AppInstalls", "CompletedVideoViews", "Downloads", "Installs", "NewCustomerCount", "PhoneCalls",
        "Purchases", "Sales", "Subscriptions", "TotalWatchTimeInMS", "VideoViews",
        # "The number of times a person completed at least 25% of a video": counts, not percents
        "VideoViewsAt25Percent", "VideoViewsAt50Percent", "VideoViewsAt75Percent",
    }
)  # fmt: skip
_NOT_COUNTS = frozenset({"ClicksIndexed", "ClicksPeakWeek", "MoMClicks", "WoWClicks", "TotalClicksOnAdElements"})
_SCORE3 = frozenset(
    {
        "AdRelevance", "ExpectedCtr", "LandingPageExperience", "HistoricalAdRelevance",
        "HistoricalExpectedCtr", "HistoricalLandingPageExperience", "QualityImpact",
    }
)  # fmt: skip
_MONEY = frozenset(
    {
        "AllConversions", "AllConversionsQualified", "AllReturnOnAdSpend", "AllRevenue", "Assists",
        "AssistedConversions", "AssistedConversionsQualified", "AverageCPV", "AverageCpc", "AverageCpm",
        "AveragePosition", "AverageWatchTimePerImpression", "AverageWatchTimePerVideoView", "AvgTargetCPA",
        "AvgTargetRoas", "BenchmarkBid", "CPI", "CPP", "CPS", "Conversions", "ConversionsQualified", "Cpc",
        "CurrentMaxCpc", "ExtendedCost", "FirstPageBid", "GrossReturnOnAdSpend", "LowQualityConversions",
        "LowQualityConversionsQualified", "Mainline1Bid", "MainlineBid", "MonthlyBudget", "NetReturnOnAdSpend",
        "NetRevenue", "NewCustomerCPA", "NewCustomerConversions", "NewCustomerReturnOnAdSpend",
        "NewCustomerRevenue", "ROAS", "ReturnOnAdSpend", "Revenue", "TargetCPA", "TargetRoas",
        "UnknownCustomerConversions", "UnknownCustomerRevenue", "ViewThroughConversions",
        "ViewThroughConversionsQualified", "ViewThroughRevenue",
    }
)  # fmt: skip
_MONEY_PREFIXES = ("CostPer", "RevenuePer", "ViewThroughCostPer", "AllCostPer", "AllRevenuePer")
_PERCENT_SIGN = frozenset(
    {"Ctr", "BenchmarkCtr", "ConversionRate", "AllConversionRate", "LowQualityConversionRate",
     "NewCustomerConversionRate", "ViewThroughConversionRate"}
)  # fmt: skip
_PERCENT = frozenset(
    {
        "Ptr", "ClickShare", "ImpressionShare", "ProportionOfSpend",
        # "The number of completed video views divided by the total number of impressions,
        # multiplied by 100" (account/campaign/ad group performance pages)
        "VideoCompletionRate",
        "PostClickDownloadRate", "PostClickInstallRate", "PostInstallPurchaseRate", "PostInstallSubscriptionRate",
    }
)  # fmt: skip
_RATIOS = frozenset({"ViewThroughRate"})


def shape_of(name: str) -> str:
    """The shape of column ``name`` (see the table above); ``text`` when no definition says a number."""
    if name == "TimePeriod":
        return "time"
    if name in _IDS:
        return "id"
    if name in ("QualityScore", "HistoricalQualityScore"):
        return "score10"
    if name in _SCORE3:
        return "score3"
    if name in _COUNTS:
        return "count"
    if name in _RATIOS:
        return "ratio"
    if name in _PERCENT_SIGN:
        return "percent_sign"
    if name in _PERCENT or (name.endswith("Percent") and not name.startswith("VideoViewsAt")):
        return "percent"
    if name in _MONEY or name.startswith(_MONEY_PREFIXES) or name.endswith("Spend"):
        return "money"
    if name.endswith(("Impressions", "Clicks")) and name not in _NOT_COUNTS and not name.startswith("YoY"):
        return "count"  # "The number of times an ad has been displayed", "Clicks are what you pay for"
    if name.startswith("MissedImpressions"):
        return "count"
    return "text"


def catalogue() -> dict[str, object]:
    """Everything the emulator copies from the SDK, as plain Python values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import openapi_client.models.reporting as package

        columns: dict[str, list[str]] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.endswith("_report_column"):
                continue
            stem = info.name[: -len("_report_column")]
            request_module = importlib.import_module(f"openapi_client.models.reporting.{stem}_report_request")
            request_types = [
                name
                for name, value in vars(request_module).items()
                if isinstance(value, type)
                and name.endswith("ReportRequest")
                and value.__module__ == request_module.__name__
            ]
            for request_type in request_types:
                columns[request_type] = _enum_of(info.name)
        return {
            "version": importlib.metadata.version("msads"),
            "columns": dict(sorted(columns.items())),
            "time_zones": _enum_of("report_time_zone"),
            "aggregations": _enum_of("report_aggregation"),
            "predefined_times": _enum_of("report_time_period"),
            "formats": _enum_of("report_format"),
            "shapes": {name: shape_of(name) for name in sorted({c for cs in columns.values() for c in cs})},
        }


def render(data: dict[str, object]) -> str:
    lines = [
        '"""Reporting v13 catalogue copied from Microsoft\'s ``msads`` SDK '
        f"{data['version']} by ``scripts/gen_reporting_catalogue.py``.",
        "",
        "Generated: do not edit by hand. The emulator uses only the standard library, so it carries",
        'this copy instead of importing the SDK\'s enums."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        f'SDK_VERSION: Final = "{data["version"]}"',
        "",
    ]
    for name in ("time_zones", "aggregations", "predefined_times", "formats"):
        values = data[name]
        assert isinstance(values, list)
        lines.append(f"{name.upper()}: Final[tuple[str, ...]] = (")
        lines.extend(f'    "{value}",' for value in values)
        lines.append(")")
    lines.append("COLUMNS: Final[dict[str, tuple[str, ...]]] = {")
    columns = data["columns"]
    assert isinstance(columns, dict)
    for request_type, names in columns.items():
        lines.append(f'    "{request_type}": (')
        lines.extend(f'        "{name}",' for name in names)
        lines.append("    ),")
    lines.append("}")
    shapes = data["shapes"]
    assert isinstance(shapes, dict)
    lines.append("#: What each column holds, from its definition on Microsoft's column pages (shape_of).")
    lines.append("COLUMN_SHAPES: Final[dict[str, str]] = {")
    lines.extend(f'    "{name}": "{shape}",' for name, shape in shapes.items())
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(catalogue()), encoding="utf-8")
    print(f"wrote {TARGET}")
