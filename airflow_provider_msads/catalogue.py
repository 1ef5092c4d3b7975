"""What Microsoft's codes mean for the person who owns the connection: data, one entry a code.

Four catalogues (identity platform AADSTS codes, Ads API fault codes, Reporting codes, and OAuth
``error`` names of the authorize redirect) and the steps of the credentials guide that remedies
point to. :mod:`errors` turns an answer into an error with the entry's remedy; the README's error
table is generated from here (``scripts/error_table.py``) and checked against it, so a remedy is
written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Steps of the credentials guide that remedies point to.
STEP_APP = "Step 1 (register the app: account types, redirect URI)"
STEP_SECRET = "Step 2 (client ID and client secret)"
STEP_IDS = "Step 3 (account and customer id from the Microsoft Advertising URL)"
STEP_DEVTOKEN = "Step 4 (developer token)"
STEP_AUTHORIZE = "Steps 5-6 (authorize again and get a new refresh token; `msads-authorize` does both)"


@dataclass(frozen=True)
class CatalogueEntry:
    """What a Microsoft code means for the person who owns the connection.

    ``code`` is None for an OAuth ``error`` name that comes without an AADSTS code (the authorize
    redirect's ``?error=``); ``name`` is then the key.
    """

    code: int | None
    name: str
    meaning: str
    remedy: str
    field: str | None = None
    step: str | None = None
    retryable: bool = False
    #: Retry at most this many times even though the code is not transient in general.
    retry_once: bool = False
    #: The refresh token is dead: only a new authorization helps.
    reauthorize: bool = False


def _aad(
    code: int,
    name: str,
    meaning: str,
    remedy: str,
    field: str | None = None,
    step: str | None = None,
    **flags: bool,
) -> CatalogueEntry:
    return CatalogueEntry(code, name, meaning, remedy, field, step, **flags)


#: Microsoft identity platform (AADSTS) codes met on the token and authorize endpoints.
AADSTS_CATALOGUE: dict[int, CatalogueEntry] = {
    e.code: e
    for e in (
        _aad(
            7000215,
            "invalid_client",
            "The client secret is wrong.",
            "Put the secret's *Value* into Client Secret, not its *Secret ID* (a GUID). The value is "
            "shown only once; if it is gone, add a new client secret and copy its value at once.",
            "client_secret",
            STEP_SECRET,
        ),
        _aad(
            7000222,
            "invalid_client",
            "The client secret has expired.",
            "Create a new client secret for the app and update Client Secret. Refresh tokens stay "
            "valid, so nothing else needs to change.",
            "client_secret",
            STEP_SECRET,
        ),
        _aad(
            70002,
            "invalid_client",
            "No valid client secret was sent.",
            "Fill Client Secret with the secret's Value.",
            "client_secret",
            STEP_SECRET,
        ),
        _aad(
            7000218,
            "invalid_client",
            "No client secret was sent by a confidential app.",
            "Fill Client Secret with the secret's Value.",
            "client_secret",
            STEP_SECRET,
        ),
        _aad(
            700016,
            "unauthorized_client",
            "No app with this client id exists in the directory.",
            "Check Client ID (the app's 'Application (client) ID'); also check the tenant and that "
            "a production app is not used against sandbox or the other way round.",
            "client_id",
            STEP_SECRET,
        ),
        _aad(
            50194,
            "invalid_request",
            "The app is single-tenant but the 'common' tenant was used.",
            "Either set the app's supported account types to any Entra ID tenant plus personal "
            "accounts, or set the connection's `tenant` option to your tenant id.",
            "tenant",
            STEP_APP,
        ),
        _aad(
            50011,
            "invalid_request",
            "The redirect URI does not match the app registration.",
            "Register exactly the redirect URI used for authorization (default "
            "http://localhost:8080, platform Web) or pass the registered one.",
            "redirect_uri",
            STEP_APP,
        ),
        _aad(
            70008,
            "invalid_grant",
            "The authorization code or refresh token has expired or was revoked.",
            "Authorize again to get a new refresh token and put it into Refresh Token.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            54005,
            "invalid_grant",
            "The authorization code was already redeemed.",
            "Get a new authorization code; a code can be exchanged only once.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            700082,
            "invalid_grant",
            "The refresh token expired after 90 days without use.",
            "Authorize again and put the new token into Refresh Token; schedule the "
            "msads_token_health_check DAG so that the token is used (and rotated) regularly.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            50173,
            "invalid_grant",
            "The grant was revoked (sessions revoked or password changed).",
            "Authorize again and put the new token into Refresh Token.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            70043,
            "invalid_grant",
            "Conditional access requires a fresh sign-in (sign-in frequency).",
            "Authorize again interactively; ask your admin about the sign-in frequency policy.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            50076,
            "invalid_grant",
            "Multi-factor authentication is required.",
            "Authorize again interactively and complete MFA.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            50079,
            "invalid_grant",
            "The user must enrol in multi-factor authentication.",
            "Authorize again interactively and complete MFA enrolment.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            65001,
            "invalid_grant",
            "The user or admin has not consented to the app.",
            "Authorize again and accept the msads.manage permission.",
            "refresh_token",
            STEP_AUTHORIZE,
            reauthorize=True,
        ),
        _aad(
            650052,
            "invalid_client",
            "The tenant lacks the Microsoft Advertising service principal.",
            "A tenant admin must add the Microsoft Advertising service to the tenant, then authorize again.",
            "tenant",
            STEP_APP,
        ),
        _aad(
            70000,
            "invalid_grant",
            "The grant is invalid or its scopes are not authorized.",
            "Microsoft also reports this intermittently for valid tokens; it was retried once. If it "
            "persists, authorize again and check the environment (production vs sandbox).",
            "refresh_token",
            STEP_AUTHORIZE,
            retry_once=True,
            reauthorize=True,
        ),
        _aad(
            9002313,
            "invalid_request",
            "The request was malformed: the refresh token is truncated or mangled.",
            "Paste the whole refresh token again, with nothing added or cut off.",
            "refresh_token",
            STEP_AUTHORIZE,
        ),
        _aad(
            70011,
            "invalid_scope",
            "The scope is not valid for Microsoft Advertising.",
            "Check `environment` (production or sandbox); a wrong environment sends the wrong scope.",
            "environment",
            None,
        ),
        _aad(
            50196,
            "temporarily_unavailable",
            "Microsoft detected a loop of identical requests.",
            "Transient: the request was retried with backoff. If it persists, too many processes "
            "refresh at once; keep the token store shared (see README, token store).",
            None,
            None,
            retryable=True,
        ),
        _aad(
            501481,
            "invalid_grant",
            "The PKCE code verifier does not match the code challenge.",
            "Start the authorization again; use one run of `msads-authorize` for both steps.",
            "refresh_token",
            STEP_AUTHORIZE,
        ),
    )
    if e.code is not None
}

#: Microsoft Advertising API fault codes (Customer Management and others).
ADS_CATALOGUE: dict[int, CatalogueEntry] = {
    e.code: e
    for e in (
        CatalogueEntry(
            105,
            "InvalidCredentials",
            "The access token or the developer token is invalid, or the environment is wrong.",
            "Check Developer Token (from Settings > Developer settings) and that `environment` "
            "matches it: a production token does not work on sandbox and vice versa.",
            "developer_token",
            STEP_DEVTOKEN,
        ),
        CatalogueEntry(
            106,
            "UserIsNotAuthorized",
            "The user has no access to this customer or account.",
            "Check Account ID and Customer ID against the URL of the account in Microsoft "
            "Advertising, and that the authorizing user can open that account.",
            "account_id",
            STEP_IDS,
        ),
        CatalogueEntry(
            109,
            "AuthenticationTokenExpired",
            "The access token has expired.",
            "Refreshed automatically and retried once; if this persists the clock may be wrong.",
            None,
            None,
            retryable=True,
        ),
        CatalogueEntry(
            116,
            "RequestMissingHeaders",
            "A required header is missing.",
            "This is a bug in the request; please report it with the tracking id.",
        ),
        CatalogueEntry(
            117,
            "CallRateExceeded",
            "Too many calls in a short time.",
            "Transient: retried after a pause.",
            None,
            None,
            retryable=True,
        ),
        CatalogueEntry(
            0,
            "InternalError",
            "Microsoft Advertising had an internal error.",
            "Transient: retried; if it persists, contact support with the tracking id.",
            None,
            None,
            retryable=True,
        ),
        CatalogueEntry(
            207,
            "ConcurrentRequestOverLimit",
            "Too many concurrent requests.",
            "Transient: retried with backoff.",
            None,
            None,
            retryable=True,
        ),
        CatalogueEntry(
            1102,
            "InvalidAccountId",
            "The account id does not exist or is not valid.",
            "Set Account ID to the numeric `aid` from the Microsoft Advertising URL (not the "
            "account number like F1234ABC).",
            "account_id",
            STEP_IDS,
        ),
        CatalogueEntry(
            1490,
            "InvalidCustomerId",
            "The customer id is not valid.",
            "Set Customer ID to the numeric `cid` from the Microsoft Advertising URL.",
            "customer_id",
            STEP_IDS,
        ),
    )
    if e.code is not None
}


_RUN_AGAIN_LATER = "Wait a minute and run msads-authorize again."

#: OAuth ``error`` names of an authorize redirect (``?error=``) whose description names no
#: catalogued AADSTS code; the AADSTS catalogue wins when it knows the code.
OAUTH_ERROR_CATALOGUE: dict[str, CatalogueEntry] = {
    e.name: e
    for e in (
        CatalogueEntry(
            None,
            "access_denied",
            "The sign-in was cancelled or the permission request was declined (access_denied).",
            "Run msads-authorize again and click Accept on the consent screen, signed in as a user who can open "
            "the Microsoft Advertising account. If your organisation lets only admins approve apps, ask an admin to "
            "grant consent to the app first.",
            None,
            STEP_AUTHORIZE,
        ),
        CatalogueEntry(
            None,
            "consent_required",
            "Microsoft needs consent to the app's msads.manage permission before it issues a code.",
            "Run msads-authorize again and accept the permission; if you cannot, an admin of your organisation "
            "must grant consent to the app.",
            None,
            STEP_AUTHORIZE,
        ),
        CatalogueEntry(
            None,
            "interaction_required",
            "Microsoft needs an interactive step (multi-factor authentication or a policy prompt).",
            "Run msads-authorize again in a normal browser window and complete every sign-in step.",
            None,
            STEP_AUTHORIZE,
        ),
        CatalogueEntry(
            None,
            "login_required",
            "Microsoft needs you to sign in.",
            "Run msads-authorize again and sign in when asked.",
            None,
            STEP_AUTHORIZE,
        ),
        CatalogueEntry(
            None,
            "invalid_request",
            "Microsoft rejected the authorization request as invalid.",
            "Check Client ID, the tenant, and that the redirect URI is registered exactly (platform Web) in the "
            "app registration.",
            None,
            STEP_APP,
        ),
        CatalogueEntry(
            None,
            "unauthorized_client",
            "The app may not use this sign-in flow, or it does not exist in this directory.",
            "Check Client ID and the tenant, and that the redirect URI is registered under platform Web (not "
            "'Single-page application' or 'Mobile and desktop').",
            "client_id",
            STEP_APP,
        ),
        CatalogueEntry(
            None,
            "unsupported_response_type",
            "The app registration does not allow the authorization code flow.",
            "Register the redirect URI under platform Web in the app registration.",
            "redirect_uri",
            STEP_APP,
        ),
        CatalogueEntry(
            None,
            "invalid_scope",
            "The requested scope is not valid for Microsoft Advertising.",
            "Check --environment (production or sandbox); a wrong environment asks for the wrong scope.",
            "environment",
            None,
        ),
        CatalogueEntry(
            None, "invalid_client", "Microsoft rejected the app (client).", "Check Client ID.", "client_id", STEP_SECRET
        ),
        CatalogueEntry(
            None,
            "server_error",
            "Microsoft's sign-in service had an internal error.",
            _RUN_AGAIN_LATER,
            None,
            None,
            retryable=True,
        ),
        CatalogueEntry(
            None,
            "temporarily_unavailable",
            "Microsoft's sign-in service is temporarily unavailable.",
            _RUN_AGAIN_LATER,
            None,
            None,
            retryable=True,
        ),
    )
}

#: OAuth ``error`` strings that mean "try again later" whatever the code.
TRANSIENT_OAUTH_ERRORS = frozenset(name for name, entry in OAUTH_ERROR_CATALOGUE.items() if entry.retryable)


def catalogue_rows() -> list[dict[str, Any]]:
    """Rows of the README's "what each error means" table, in catalogue order."""
    rows = []
    for kind, catalogue in (
        ("AADSTS", AADSTS_CATALOGUE),
        ("Ads", ADS_CATALOGUE),
        ("Reporting", REPORTING_CATALOGUE),
        ("Bulk", BULK_CATALOGUE),
    ):
        for entry in catalogue.values():
            rows.append(
                {
                    "code": f"{kind}{entry.code}" if kind == "AADSTS" else f"{entry.code} {entry.name}",
                    "meaning": entry.meaning,
                    "field": entry.field or "",
                    "retryable": entry.retryable or entry.retry_once,
                    "remedy": entry.remedy,
                }
            )
    return rows


#: Where the Reporting codes come from: Microsoft Advertising's "Operation error codes" page,
#: section 2000 (learn.microsoft.com/advertising/guides/operation-error-codes), names and meanings
#: as published there; the remedy is ours, in terms of the operator's arguments. 117, 207, 105,
#: 106 and 109 are in ADS_CATALOGUE (the same codes on every Ads service).
OPERATION_ERROR_CODES_PAGE = "https://learn.microsoft.com/advertising/guides/operation-error-codes"

_BUG = "Please report it with the tracking id: the operator builds this part of the request."
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


# ------------------------------------------------------------------------------------ Bulk v13
#: Bulk download codes: Microsoft Advertising's "Operation error codes" page (names and meanings as
#: published there; 3220-3227 are uploads, not used here) and the "Bulk Download and Upload" guide
#: (4204's wait). The remedy is ours, in terms of MicrosoftAdsBulkDownloadOperator's arguments.
BULK_DOWNLOAD_GUIDE = "https://learn.microsoft.com/advertising/guides/bulk-download-upload"
_ENTITIES = 'Name Microsoft\'s DownloadEntity values in `entities`, e.g. ["Campaigns", "AdGroups", "Keywords", "Ads"].'


def _bulk(code: int, name: str, meaning: str, remedy: str, field: str | None = None, **flags: bool) -> CatalogueEntry:
    return CatalogueEntry(code, name, "Bulk: " + meaning, remedy, field, None, **flags)


BULK_CATALOGUE: dict[int, CatalogueEntry] = {
    e.code: e
    for e in (
        _bulk(
            3201,
            "CampaignServiceAccountIdsLengthExceeded",
            "the list of account ids exceeds the maximum (one account per download request).",
            "The operator sends one request per account; " + _BUG,
            "account_ids",
        ),
        _bulk(
            3203,
            "CampaignServiceCampaignsContainsMultipleAccounts",
            "the campaigns of a DownloadCampaignsByCampaignIds request must belong to one account.",
            "The operator groups campaigns by account; " + _BUG,
        ),
        _bulk(
            3204,
            "CampaignServiceCampaignsContainsNullScope",
            "the list of campaigns cannot contain null items.",
            _BUG,
        ),
        _bulk(
            3205,
            "CampaignServiceInvalidDownloadRequestId",
            "the download request id is not valid (ids live two days).",
            "Run the task again: it submits a new download.",
        ),
        _bulk(
            3207,
            "CampaignServiceAccountTooBigToDownload",
            "the account has more keywords than one request may download (four million); the Details field lists "
            "the account's campaign ids.",
            "Nothing to do: the operator downloads such an account by campaign ids, 1,000 per request.",
            "account_ids",
        ),
        _bulk(
            3208,
            "CampaignServiceLastSyncTimeCannotBeInTheFuture",
            "the last sync time cannot be later than now.",
            "The saved Sync Time is from the future (a clock problem): run with delta=False once.",
            "delta",
        ),
        _bulk(
            3209,
            "CampaignServiceLastSyncTimeTooOld",
            "the last sync time cannot be earlier than 1/1/1753.",
            "Run with delta=False once; the next run saves a fresh Sync Time.",
            "delta",
        ),
        _bulk(
            3210,
            "BulkServiceMinimumRequiredEntitiesNotSpecified",
            "the minimum set of required entities should be specified for bulk download.",
            _ENTITIES,
            "entities",
        ),
        _bulk(
            3211,
            "CampaignServiceBulkDownloadUnsupportedEntities",
            "one or more entities are not supported for bulk download.",
            _ENTITIES,
            "entities",
        ),
        _bulk(
            3212,
            "BulkServiceInvalidPerformanceStatsDateRangeForDataScope",
            "PerformanceStatsDateRange must be given with performance statistics in the data scope, and only then.",
            "Use data_scope EntityData, QualityScoreData or BidSuggestionsData (the operator sends no "
            "PerformanceStatsDateRange).",
            "data_scope",
        ),
        _bulk(
            3213,
            "BulkServiceInvalidSyncTimeForPerformanceStatsDateRange",
            "LastSyncTimeInUTC must be null when the data scope includes performance, quality score or bid "
            "suggestion data.",
            "The operator downloads those scopes in full; " + _BUG,
            "data_scope",
        ),
        _bulk(
            3214,
            "BulkServiceInvalidPerformanceStatsDateRange",
            "PerformanceStatsDateRange must be a valid custom date range or predefined time.",
            _BUG,
        ),
        _bulk(
            3215,
            "BulkServiceInvalidCustomDateRange",
            "the custom date range for performance statistics must have a valid start and end date.",
            _BUG,
        ),
        _bulk(
            3216,
            "BulkServiceCampaignsTooBigToDownload",
            "the campaigns of the request have more keywords than allowed per request (eight million).",
            "Download fewer entities (e.g. Keywords in a task of their own), or ask Microsoft support.",
            "entities",
        ),
        _bulk(
            3217,
            "BulkServiceFormatVersionNotSupported",
            "one or more entities are not supported with the specified format version.",
            "The operator sends FormatVersion 6.0, the only one of Bulk v13; remove the entity Microsoft names.",
            "entities",
        ),
        _bulk(
            3218,
            "BulkServiceEntityNotSupportedForFormatVersion",
            "one or more entities are not supported with the specified format version.",
            "Remove the entity Microsoft names from `entities`.",
            "entities",
        ),
        _bulk(3219, "BulkServiceFormatVersionRequired", "the format version is required.", _BUG),
        _bulk(
            3228,
            "BulkServiceDataScopeInvalid",
            "the specified DataScope value is either invalid or no longer supported.",
            "Use data_scope EntityData, QualityScoreData or BidSuggestionsData.",
            "data_scope",
        ),
        _bulk(
            3603,
            "CampaignServiceFullSyncRequired",
            "the last sync time must be null: the account took part in a data migration; download in full, then "
            "deltas again.",
            "Nothing to do: the operator downloads that account in full within the same try.",
            "delta",
        ),
        _bulk(
            4201,
            "BulkServiceDownloadNotAvailable",
            "a Bulk download refusal listed with the download operations; the name here is ours (the page we "
            "read does not list it); Microsoft's Message says more.",
            "Read Microsoft's message in the error; run the task again (it submits a new download).",
        ),
        _bulk(
            4204,
            "BulkServiceNoMoreCallsPermittedForTheTimePeriod",
            "no more bulk upload or download calls are permitted for this account for now; resubmit after "
            "waiting up to 15 minutes.",
            "Retried after a wait of up to 15 minutes; if it persists, download less often or fewer accounts at once.",
            retryable=True,
        ),
    )
    if e.code is not None
}
