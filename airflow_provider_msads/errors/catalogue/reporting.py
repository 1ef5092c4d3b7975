"""Reporting v13 codes: what each means in terms of the report operator's arguments.

Data, one entry a code. Imports only :mod:`.entry`.
"""

from __future__ import annotations

from airflow_provider_msads.errors.catalogue.entry import OPERATOR_BUG as _BUG
from airflow_provider_msads.errors.catalogue.entry import CatalogueEntry

#: Where the Reporting codes come from: Microsoft Advertising's "Operation error codes" page,
#: section 2000 (learn.microsoft.com/advertising/guides/operation-error-codes), names and meanings
#: as published there; the remedy is ours, in terms of the operator's arguments. 117, 207, 105,
#: 106 and 109 are in ADS_CATALOGUE (the same codes on every Ads service).
OPERATION_ERROR_CODES_PAGE = "https://learn.microsoft.com/advertising/guides/operation-error-codes"

_DATES = 'Give date_from and date_to as "YYYY-MM-DD" (inclusive), or predefined_time, not both.'
_FILTER = "Check the filter or scope values in report_request against the report type's page."


def _rep(code: int, name: str, meaning: str, remedy: str, field: str | None = None, **flags: bool) -> CatalogueEntry:
    return CatalogueEntry(code, name, "Reporting: " + meaning, remedy, field, None, **flags)


#: Reporting v13 codes (section 2000 of the page above, all of them) and the misleading 100.
REPORTING_CATALOGUE: dict[int, CatalogueEntry] = {
    e.code: e
    for e in (
        _rep(
            100,
            "NullRequest",
            "misleading; usually a misspelt column or enum value (Details name the path, e.g. $.Columns[4]), "
            "reported as 'column 5 ('Impresions') is not a column of …'.",
            "Fix the named column in `columns` (or the named value in report_request).",
            "columns",
        ),
        _rep(2001, "ReportingServiceNullReportRequest", "the report request is null.", _BUG),
        _rep(
            2002,
            "ReportingServiceUnknownReportType",
            "the report request type is not valid.",
            'Check report_type: the request class name, e.g. "CampaignPerformanceReportRequest".',
            "report_type",
        ),
        _rep(
            2003,
            "ReportingServiceAccountNotAuthorized",
            "the scope contains at least one account the authorizing user may not access.",
            "Check account_ids (the numeric account id from the Microsoft Advertising URL) and that the user who "
            "authorized the connection can open those accounts.",
            "account_ids",
        ),
        _rep(
            2004,
            "ReportingServiceNoCompleteDataAvaliable",
            "complete data was asked for, but some campaign's time zone has only partial data so far (complete "
            "data comes about 3 hours after a day ends in each campaign's time zone).",
            "Transient: the task is retried; give it retries with a retry_delay of an hour or more, or schedule "
            "the run a few hours after midnight in the campaigns' time zones.",
            "return_only_complete_data",
            retryable=True,
        ),
        _rep(
            2005,
            "ReportingServiceInvalidDataAvailabilityAndTimePeriodCombination",
            "complete data was asked for a time period that can never be complete (e.g. Today, ThisWeek).",
            "Use a period that has ended (e.g. Yesterday, LastWeek, or a date range ending before today), or set "
            "return_only_complete_data=False.",
            "return_only_complete_data",
        ),
        _rep(
            2006,
            "ReportingServiceInvalidReportName",
            "the report name is not valid (at most 200 characters).",
            "Shorten ReportName in report_request (the operator derives it from task_id, cut to 200).",
            "report_request",
        ),
        _rep(
            2007,
            "ReportingServiceInvalidReportAggregation",
            "the aggregation is not valid for the predefined time period.",
            "Pick an aggregation the period allows (Microsoft's 'Aggregation and Time' table; checked before "
            "submitting) or use date_from/date_to.",
            "aggregation",
        ),
        _rep(
            2008,
            "ReportingServiceInvalidReportTimeSelection",
            "the report time is null or names more than one of predefined time, custom dates or a range.",
            _DATES,
            "predefined_time",
        ),
        _rep(
            2009,
            "ReportingServiceInvalidCustomDateRangeStart",
            "the custom date range start is not valid.",
            "Check date_from.",
            "date_from",
        ),
        _rep(
            2010,
            "ReportingServiceInvalidCustomDateRangeEnd",
            "the custom date range end is not valid.",
            "Check date_to.",
            "date_to",
        ),
        _rep(
            2011,
            "ReportingServiceEndDateBeforeStartDate",
            "the end date is before the start date.",
            "Swap date_from and date_to (both inclusive); checked before submitting.",
            "date_from",
        ),
        _rep(
            2012,
            "ReportingServiceEmptyCustomDates",
            "the report time has an empty custom date array.",
            _DATES,
            "report_request",
        ),
        _rep(
            2013,
            "ReportingServiceCustomDatesOverlimit",
            "the report time has too many custom dates (Details give the limit).",
            _DATES,
            "report_request",
        ),
        _rep(2014, "ReportingServiceNullColumns", "no columns.", "Give at least one column in `columns`.", "columns"),
        _rep(
            2015,
            "ReportingServiceRequiredColumnsNotSelected",
            "a column this report type requires is missing.",
            "Add the report type's required columns to `columns` (marked 'required' on Microsoft's column page for "
            "the report type).",
            "columns",
        ),
        _rep(
            2016,
            "ReportingServiceDuplicateColumns",
            "a column is listed more than once (Details name it); checked before submitting.",
            "Remove the duplicate from `columns`.",
            "columns",
        ),
        _rep(
            2017,
            "ReportingServiceNoMeasureSelected",
            "no measure column (Impressions, Clicks, Spend, …).",
            "Add at least one performance statistic to `columns`.",
            "columns",
        ),
        *(
            _rep(
                code,
                name,
                meaning,
                "Check the ids in the scope: campaign_ids, account_ids or report_request's Scope.",
                "campaign_ids",
            )
            for code, name, meaning in (
                (
                    2018,
                    "ReportingServiceInvalidAccountIdInCampaignReportScope",
                    "the campaign scope has an account id that is not valid.",
                ),
                (
                    2019,
                    "ReportingServiceInvalidCampaignIdInCampaignReportScope",
                    "the campaign scope has a campaign id that is not valid.",
                ),
                (
                    2020,
                    "ReportingServiceInvalidAccountIdInAdGroupReportScope",
                    "the ad group scope has an account id that is not valid.",
                ),
                (
                    2021,
                    "ReportingServiceInvalidCampaignIdInAdGroupReportScope",
                    "the ad group scope has a campaign id that is not valid.",
                ),
                (
                    2022,
                    "ReportingServiceInvalidAdGroupIdInAdGroupReportScope",
                    "the ad group scope has an ad group id that is not valid.",
                ),
                (
                    2023,
                    "ReportingServiceInvalidAccountIdInAccountReportScope",
                    "the account scope has an account id that is not valid.",
                ),
                (2024, "ReportingServiceNullCampaignReportScope", "the campaign report scope is null."),
                (2025, "ReportingServiceNullAdGroupReportScope", "the ad group report scope is null."),
                (2026, "ReportingServiceInvalidAccountReportScope", "the account report scope has no account ids."),
                (
                    2027,
                    "ReportingServiceInvalidAccountThruCampaignReportScope",
                    "the account-through-campaign scope has values that are not valid.",
                ),
                (
                    2028,
                    "ReportingServiceInvalidAccountThruAdGroupReportScope",
                    "the account-through-ad-group scope has values that are not valid.",
                ),
            )
        ),
        _rep(
            2029,
            "ReportingServiceAccountsOverLimit",
            "more than 1,000 accounts in the scope; checked before submitting.",
            'Split account_ids into batches of at most 1,000 (or use account_ids="all", which batches).',
            "account_ids",
        ),
        _rep(
            2030,
            "ReportingServiceMaximumCampaignsLimitReached",
            "more than 300 campaigns in the scope; checked before submitting.",
            "Split campaign_ids into batches of at most 300, or report on the whole account and filter.",
            "campaign_ids",
        ),
        _rep(
            2031,
            "ReportingServiceAdGroupsOverLimit",
            "too many ad groups in the scope.",
            "Split the ad groups of report_request's Scope into several reports.",
            "report_request",
        ),
        _rep(
            2032,
            "ReportingServiceCrossSiteScriptNotAllowed",
            "a string in the request contains an embedded script (Details name it).",
            "Remove markup from ReportName and filter values.",
            "report_request",
        ),
        _rep(
            2033,
            "ReportingServiceInvalidKeywordFilterValue",
            "the keyword filter is not valid.",
            _FILTER,
            "report_request",
        ),
        _rep(
            2034,
            "ReportingServiceInvalidTimePeriodColumnForSummaryReport",
            "the TimePeriod column cannot be used with Summary aggregation; checked before submitting.",
            "Remove TimePeriod from `columns`, or choose an aggregation such as Daily.",
            "columns",
        ),
        _rep(
            2035,
            "ReportingServiceInvalidAccountIds",
            "at least one account id is not valid (Details list up to 20).",
            "Check account_ids: numeric account ids (not account numbers like F12345XY).",
            "account_ids",
        ),
        _rep(
            2038,
            "ReportingServiceSiteIdMaxArraySizeReached",
            "too many website ids in the scope.",
            _FILTER,
            "report_request",
        ),
        _rep(
            2039,
            "ReportingServiceInvalidSiteIdValue",
            "a website id filter value is empty or not valid.",
            _FILTER,
            "report_request",
        ),
        _rep(
            2040,
            "ReportingServiceInvalidCustomDateRange",
            "a date in the custom date range is not valid.",
            "Check date_from and date_to (real calendar dates, within the report type's retention).",
            "date_from",
        ),
        _rep(
            2041,
            "ReportingServiceInvalidFutureStartDate",
            "the start date is in the future; checked before submitting.",
            "Set date_from to today or earlier in the report's time zone.",
            "date_from",
        ),
        _rep(
            2042,
            "InvalidSearchQueryFilterValue",
            "a search query filter value is null, empty or not valid.",
            _FILTER,
            "report_request",
        ),
        _rep(
            2043,
            "SearchQueryFilterValueLengthExceeded",
            "a search query filter term is too long.",
            _FILTER,
            "report_request",
        ),
        _rep(2044, "SearchQueryOverLimit", "too many search queries in the filter.", _FILTER, "report_request"),
        _rep(
            2045, "KeywordFilterValueLengthExceeded", "a keyword in the filter is too long.", _FILTER, "report_request"
        ),
        _rep(2046, "KeywordOverLimit", "too many keywords in the filter.", _FILTER, "report_request"),
        _rep(2047, "GoalIdMaxArraySizeReached", "too many goal ids in the scope.", _FILTER, "report_request"),
        _rep(2048, "TacticIdMaxArraySizeReached", "too many tactic ids in the scope.", _FILTER, "report_request"),
        _rep(2049, "ChannelIdMaxArraySizeReached", "too many channel ids in the scope.", _FILTER, "report_request"),
        _rep(
            2050,
            "ThirdPartyCampaignIdMaxArraySizeReached",
            "too many third-party campaign ids in the scope.",
            _FILTER,
            "report_request",
        ),
        _rep(
            2051,
            "ThirdPartyAdGroupIdMaxArraySizeReached",
            "too many third-party ad group ids in the scope.",
            _FILTER,
            "report_request",
        ),
        _rep(
            2052,
            "InvalidGrainForQualityScoreColumns",
            "quality score columns need Hourly, Daily or Summary aggregation.",
            "Change aggregation, or remove QualityScore, KeywordRelevance, LandingPageRelevance and "
            "LandingPageUserExperience from `columns`.",
            "aggregation",
        ),
        _rep(
            2053,
            "InvalidGrainForImpressionShareColumns",
            "impression share columns are not available with this aggregation.",
            "Change aggregation, or remove the impression share columns from `columns`.",
            "aggregation",
        ),
        _rep(
            2054,
            "InvalidGrainForHistoricalQualityScoreColumns",
            "historical quality score columns need Daily aggregation.",
            "Use aggregation Daily, or remove the Historical* columns from `columns`.",
            "aggregation",
        ),
        _rep(2057, "FilterValueBatchSizeOverLimit", "too many values in one filter.", _FILTER, "report_request"),
        _rep(2058, "FilterValueOverLimit", "a filter value exceeds its maximum.", _FILTER, "report_request"),
        _rep(
            2059,
            "UnsuportedTimeGrain",
            "the report type does not support this aggregation.",
            "Pick another aggregation for this report_type.",
            "aggregation",
        ),
        _rep(2060, "InvalidFilterOrScopeValue", "a filter or scope value is not valid.", _FILTER, "report_request"),
        _rep(
            2061,
            "InvalidSortColumn",
            "the sort column is not one of the report's columns.",
            "Add the sort column to `columns`, or remove it from report_request's Sort.",
            "report_request",
        ),
        _rep(
            2100,
            "ReportingServiceInvalidReportId",
            "the report request id is not valid (or no longer: an id is valid for at most one day).",
            "Run the task again: the saved id is forgotten and a new report is submitted.",
        ),
        _rep(
            2101,
            "ReportingServiceReportNotFound",
            "the report was not found.",
            "Run the task again: the saved id is forgotten and a new report is submitted.",
        ),
    )
    if e.code is not None
}

#: Codes that mean "this ReportRequestId will never be pollable again": the saved id is dropped.
DEAD_REPORT_ID_CODES = frozenset({2100, 2101})
