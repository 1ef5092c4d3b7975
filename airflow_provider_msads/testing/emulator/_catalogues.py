"""Constants and Microsoft's error catalogues (AADSTS codes, Ads API faults), written once.

Texts follow Microsoft's wording where it is public; the other modules only look codes up here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# --------------------------------------------------------------------------------------------
# Constants shared with tests and users
# --------------------------------------------------------------------------------------------

PRODUCTION_SCOPE: Final = "https://ads.microsoft.com/msads.manage"
"""The resource scope of the production Microsoft Advertising API."""
SANDBOX_SCOPE: Final = "https://si.ads.microsoft.com/msads.manage"
"""The resource scope the Microsoft SDK requests for the sandbox (login.microsoftonline.com)."""
DEFAULT_SCOPE: Final = f"{PRODUCTION_SCOPE} offline_access"
SANDBOX_DEVELOPER_TOKEN: Final = "BBD37VB98"
"""Microsoft's universal sandbox developer token: answered with 105 by the production API."""

INJECTION_ENDPOINTS: Final = ("token", "authorize", "api", "reporting", "download", "bulk")
# Kinds that only make sense on a report download link.
DOWNLOAD_KINDS: Final = ("expired_link", "xml_error", "two_entries", "zip_bomb", "not_zip")
INJECTION_KINDS: Final = (
    "aadsts",
    "oauth",
    "msa_invalid_grant",
    "fault",
    "status",
    "throttle",
    "html",
    "empty",
    "malformed",
    "huge",
    "reset",
    "timeout",
    "latency",
    *DOWNLOAD_KINDS,
)

_RESOURCE_ENVIRONMENT: Final = {PRODUCTION_SCOPE: "production", SANDBOX_SCOPE: "sandbox"}
_OIDC_SCOPES: Final = frozenset({"offline_access", "openid", "profile", "email"})
# Authority aliases that are not a directory: a single-tenant app cannot be used through them.
_AUTHORITY_ALIASES: Final = frozenset({"common", "organizations", "consumers"})
_CM_PREFIX: Final = "/CustomerManagement/v13"
# Keys lowercased: the REST service routes paths case-insensitively.
_CM_PATHS: Final = {
    f"{_CM_PREFIX}/User/Query".lower(): "GetUser",
    f"{_CM_PREFIX}/Account/Query".lower(): "GetAccount",
    f"{_CM_PREFIX}/AccountsInfo/Query".lower(): "GetAccountsInfo",
}
_REPORTING_PREFIX: Final = "/Reporting/v13"
_REPORTING_PATHS: Final = {
    f"{_REPORTING_PREFIX}/GenerateReport/Submit".lower(): "SubmitGenerateReport",
    f"{_REPORTING_PREFIX}/GenerateReport/Poll".lower(): "PollGenerateReport",
}
_BULK_PREFIX: Final = "/Bulk/v13"
_BULK_PATHS: Final = {
    f"{_BULK_PREFIX}/Campaigns/DownloadByAccountIds".lower(): "DownloadCampaignsByAccountIds",
    f"{_BULK_PREFIX}/Campaigns/DownloadByCampaignIds".lower(): "DownloadCampaignsByCampaignIds",
    f"{_BULK_PREFIX}/BulkDownloadStatus/Query".lower(): "GetBulkDownloadStatus",
}
#: The operations each service answers (what ``inject(operation=...)`` accepts), in path order.
OPERATIONS: Final = tuple(_CM_PATHS.values())
REPORTING_OPERATIONS: Final = tuple(_REPORTING_PATHS.values())
BULK_OPERATIONS: Final = tuple(_BULK_PATHS.values())
# Bulk result file URLs, served like blobs: /download-bulk/<token>/<key>.zip?sv=..&sig=..
_BULK_DOWNLOAD_PREFIX: Final = "/download-bulk/"
# Report download links look like Azure blob SAS links: /download-reports/<token>/<id>.zip?sv=..&sig=..
_DOWNLOAD_PREFIX: Final = "/download-reports/"
_OAUTH_PATH: Final = re.compile(r"/([^/]+)/oauth2/v2\.0/(token|authorize)")
_MAX_BODY: Final = 16 * 1024 * 1024
_HUGE_BODY_SIZE: Final = 8 * 1024 * 1024
_JSON: Final = "application/json; charset=utf-8"
_HTML: Final = "text/html; charset=utf-8"
_TEXT: Final = "text/plain; charset=utf-8"
_NINETY_DAYS: Final = 90 * 24 * 3600.0
_MSA_INVALID_GRANT_TEXT: Final = (
    "The user could not be authenticated or the grant is expired. The user must first sign in "
    "and if needed grant the client application access to the requested scope."
)


# --------------------------------------------------------------------------------------------
# Error catalogues
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AadError:
    """One AADSTS code: the OAuth ``error`` string, the HTTP status and the message template."""

    error: str
    status: int
    message: str


# Texts follow Microsoft's wording where it is public; placeholders are filled per request.
# HTTP status: 400 for everything but invalid_client (401), as the reference prescribes.
# 50196 (request loop) has no documented token-endpoint shape: we answer 400
# "temporarily_unavailable" because the remedy is to back off, which is what clients do for it.
# 501481 is Microsoft's PKCE mismatch code; we also use it when code_verifier is missing.
_AADSTS: Final[dict[int, _AadError]] = {
    7000215: _AadError(
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        "secret value, not the client secret ID, for a secret added to app '{client_id}'.",
    ),
    7000222: _AadError(
        "invalid_client",
        401,
        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal "
        "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
        "certificate credentials for added security: https://aka.ms/certCreds.",
    ),
    7000218: _AadError(
        "invalid_client",
        401,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
    70002: _AadError(
        "invalid_client", 401, "Error validating credentials. AADSTS50012: Invalid client secret provided."
    ),
    700016: _AadError(
        "unauthorized_client",
        400,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This "
        "can happen if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You may have sent your authentication request to "
        "the wrong tenant.",
    ),
    50194: _AadError(
        "invalid_request",
        400,
        "Application '{client_id}'({app_name}) is not configured as a multi-tenant application. "
        "Usage of the /common endpoint is not supported for such applications created after "
        "'10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
    ),
    50011: _AadError(
        "invalid_grant",
        400,
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
        "configured for the application '{client_id}'. Make sure the redirect URI sent in the request "
        "matches one added to your application in the Azure portal. Navigate to "
        "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    ),
    70008: _AadError(
        "invalid_grant",
        400,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new "
        "interactive authorization request for this user and resource.",
    ),
    54005: _AadError(
        "invalid_grant",
        400,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
        "an existing refresh token.",
    ),
    700082: _AadError(
        "invalid_grant",
        400,
        "The refresh token has expired due to inactivity. The token was issued on {issued} and was "
        "inactive for 90.00:00:00.",
    ),
    50173: _AadError(
        "invalid_grant",
        400,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The "
        "user might have changed or reset their password. The grant was issued on '{issued}' and the "
        "TokensValidFrom date (before which tokens are not valid) for this user is '{now}'.",
    ),
    70043: _AadError(
        "invalid_grant",
        400,
        "The refresh token has expired or is invalid due to sign-in frequency checks by conditional "
        "access. The token was issued on {issued} and the maximum allowed lifetime for this request "
        "is 86400.",
    ),
    50076: _AadError(
        "invalid_grant",
        400,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must use multi-factor authentication to access 'https://ads.microsoft.com'.",
    ),
    50079: _AadError(
        "invalid_grant",
        400,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must enroll in multi-factor authentication to access 'https://ads.microsoft.com'.",
    ),
    65001: _AadError(
        "invalid_grant",
        400,
        "The user or administrator has not consented to use the application with ID '{client_id}' "
        "named '{app_name}'. Send an interactive authorization request for this user and resource.",
    ),
    650052: _AadError(
        "invalid_client",
        401,
        "The app is trying to access a service 'https://ads.microsoft.com' (Microsoft Advertising API "
        "Service) that your organization '{tenant}' lacks a service principal for. Contact your IT "
        "Admin to review the configuration of your service subscriptions or consent to the "
        "application in order to create the required service principal.",
    ),
    70000: _AadError(
        "invalid_grant",
        400,
        "The request was denied because one or more scopes requested are unauthorized or expired. "
        "The user must first sign in and grant the client application access to the requested scope.",
    ),
    9002313: _AadError("invalid_grant", 400, "Invalid request. Request is malformed or invalid."),
    70011: _AadError(
        "invalid_scope",
        400,
        "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist.",
    ),
    50196: _AadError(
        "temporarily_unavailable",
        400,
        "The server terminated an operation because it encountered a client request loop. Please "
        "contact your app vendor.",
    ),
    501481: _AadError(
        "invalid_grant",
        400,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    ),
    900144: _AadError("invalid_request", 400, "The request body must contain the following parameter: '{parameter}'."),
    70003: _AadError("unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant_type}'."),
    90002: _AadError(
        "invalid_request",
        400,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may happen "
        "if there are no active subscriptions for the tenant.",
    ),
    900561: _AadError(
        "invalid_request", 400, "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
    ),
    900971: _AadError("invalid_request", 400, "No reply address provided."),
    700054: _AadError(
        "unsupported_response_type", 400, "response_type '{response_type}' is not enabled for the application."
    ),
    65004: _AadError("access_denied", 400, "User declined to consent to access the app."),
    50058: _AadError("login_required", 400, "A silent sign-in request was sent but no user is signed in."),
    90033: _AadError("temporarily_unavailable", 503, "A transient error has occurred. Please try again."),
    # Emulator's choice of number: Microsoft documents no code for an unknown challenge method.
    501491: _AadError("invalid_request", 400, "The code_challenge_method '{method}' is not supported."),
}

# authorize_error -> AADSTS code used for its description (when one is known).
_AUTHORIZE_ERROR_CODES: Final = {
    "access_denied": 65004,
    "consent_required": 65001,
    "interaction_required": 50076,
    "login_required": 50058,
    "temporarily_unavailable": 90033,
}


@dataclass(frozen=True)
class _Fault:
    """One Microsoft Advertising operation error: symbolic name, message, default HTTP status."""

    error_code: str
    message: str
    status: int
    api_fault: bool  # True: ApiFault/OperationErrors shape, False: AdApiFaultDetail/Errors shape


# HTTP statuses: Microsoft's REST SDK maps 400, 401, 403 and 500 to ApplicationFault, and the
# real statuses are unverified. We use 401 for the authentication faults (105, 109), 500 for
# InternalError and 400 otherwise. Customer Management OperationErrors carry no ErrorCode
# (Microsoft: "The BatchError and OperationError objects for Customer Billing and Customer
# Management services do not contain the ErrorCode element"), so ApiFault bodies omit it.
_FAULTS: Final[dict[int, _Fault]] = {
    0: _Fault(
        "InternalError",
        "An unidentified error has occurred. You may obtain additional information about this "
        "error by contacting Microsoft Advertising Support.",
        500,
        False,
    ),
    100: _Fault("NullRequest", "The request message is null.", 400, False),
    105: _Fault(
        "InvalidCredentials",
        "Authentication failed. Either supplied credentials are invalid or the account is inactive",
        401,
        False,
    ),
    106: _Fault("UserIsNotAuthorized", "The user is not authorized to perform this action.", 400, False),
    109: _Fault(
        "AuthenticationTokenExpired",
        "Authentication token expired. Please renew it or obtain a new authentication token.",
        401,
        False,
    ),
    116: _Fault(
        "RequestMissingHeaders", "One or more required header elements are missing from the request.", 400, False
    ),
    117: _Fault(
        "CallRateExceeded",
        "You have exceeded the number of calls that you are allowed to make in a minute. Please "
        "reduce the number of calls that you make per minute.",
        400,
        False,
    ),
    207: _Fault(
        "ConcurrentRequestOverLimit",
        "You have already reached the maximum number of concurrent report requests. Please wait until the "
        "previous reports are completed and then try to submit a new request.",
        400,
        False,
    ),
    1102: _Fault("InvalidAccountId", "The account ID is invalid.", 400, True),
    1490: _Fault("InvalidCustomerId", "The customer ID is invalid.", 400, True),
}

# Reporting answers its own errors, and these generic ones, as ApiFaultDetail with ErrorCode and
# Details (always HTTP 400); every other code as Customer Management does.
# Numbers and texts: Microsoft's "Bing Ads API Operation Error Codes" page, section 2000
# (MicrosoftDocs/Advertising advertising/bingads-13/guides/operation-error-codes.md). The page's
# symbolic names start with "ReportingService" for 2001-2041 and 2100-2101; the emulator sends
# them WITHOUT that prefix, as the service does in the faults users quote (Microsoft Q&A 1863539:
# "2004 NoCompleteDataAvaliable ..."; community reports of 2027 "InvalidAccountThruCampaignReportScope")
# and as the "Reports" guide names 2004 ("error code NoCompleteDataAvaliable (2004)"). ASSUMPTION for
# the codes nobody has quoted.
_REPORTING_ERRORS: Final[dict[int, tuple[str, str]]] = {
    2001: ("NullReportRequest", "The report request is null."),
    2002: ("UnknownReportType", "The report request type is not valid."),
    2003: (
        "AccountNotAuthorized",
        "The specified report request contains at least one account that you do not have privileges to access.",
    ),
    2004: (
        "NoCompleteDataAvaliable",
        "You requested a report with complete data for all included campaigns. Currently only partial data is "
        "available in the respective time zone of one or more campaigns. Please try again later or submit a "
        "report request for partial data.",
    ),
    2005: (
        "InvalidDataAvailabilityAndTimePeriodCombination",
        "The report request indicates that complete data is required; however, the request contains a report "
        "time period for which complete data cannot be returned.",
    ),
    2006: ("InvalidReportName", "The report request contains a report name that is not valid."),
    2007: ("InvalidReportAggregation", "The report aggregation is not valid for the specified report time period."),
    2008: (
        "InvalidReportTimeSelection",
        "The report time is null or contains more than one predefined time, custom date, or custom date range "
        "start and end.",
    ),
    2009: (
        "InvalidCustomDateRangeStart",
        "The report time contains a custom date range start value that is not valid.",
    ),
    2010: ("InvalidCustomDateRangeEnd", "The report time contains a custom date range end value that is not valid."),
    2011: (
        "EndDateBeforeStartDate",
        "The report time contains a custom date range that is not valid; the end date cannot be earlier than the "
        "start date.",
    ),
    2012: ("EmptyCustomDates", "The report time contains an empty custom date array."),
    2013: ("CustomDatesOverlimit", "The report time contains too many custom dates."),
    2014: ("NullColumns", "The list of columns to include in the report cannot be null or empty."),
    2015: (
        "RequiredColumnsNotSelected",
        "The list of columns to include in the report must contain all required columns.",
    ),
    2016: ("DuplicateColumns", "The list of columns to include in the report contains duplicate."),
    2017: ("NoMeasureSelected", "The report request does not specify at least one measurement column."),
    2018: (
        "InvalidAccountIdInCampaignReportScope",
        "The campaign report scope contains an account identifier that is not valid.",
    ),
    2019: (
        "InvalidCampaignIdInCampaignReportScope",
        "The campaign report scope contains a campaign identifier that is not valid.",
    ),
    2020: (
        "InvalidAccountIdInAdGroupReportScope",
        "The ad group report scope contains an account identifier that is not valid.",
    ),
    2021: (
        "InvalidCampaignIdInAdGroupReportScope",
        "The ad group report scope contains a campaign identifier that is not valid.",
    ),
    2022: (
        "InvalidAdGroupIdInAdGroupReportScope",
        "The ad group report scope contains an ad group identifier that is not valid.",
    ),
    2023: (
        "InvalidAccountIdInAccountReportScope",
        "The account report scope contains an account identifier that is not valid.",
    ),
    2024: ("NullCampaignReportScope", "The campaign report scope is null."),
    2025: ("NullAdGroupReportScope", "The ad group report scope is null."),
    2026: ("InvalidAccountReportScope", "The account report scope does not contain account identifiers."),
    2027: (
        "InvalidAccountThruCampaignReportScope",
        "The account through campaign report scope contains one or more values that are not valid.",
    ),
    2028: (
        "InvalidAccountThruAdGroupReportScope",
        "The account through ad group report scope contains one or more values that are not valid.",
    ),
    2029: ("AccountsOverLimit", "The report scope contains too many accounts."),
    2030: ("MaximumCampaignsLimitReached", "The report scope contains too many campaigns."),
    2031: ("AdGroupsOverLimit", "The report scope contains too many ad groups."),
    2032: (
        "CrossSiteScriptNotAllowed",
        "The specified report request contains one or more strings that contain an embedded script.",
    ),
    2033: ("InvalidKeywordFilterValue", "The specified report request contains an invalid keyword filter."),
    2034: (
        "InvalidTimePeriodColumnForSummaryReport",
        "The TimePeriod column cannot be specified in a report request that has a summary aggregation.",
    ),
    2035: ("InvalidAccountIds", "The report request contains at least one account identifier that is not valid."),
    2038: ("SiteIdMaxArraySizeReached", "The specified report scope contains too many website identifiers."),
    2039: (
        "InvalidSiteIdValue",
        "The specified report request contains a website identifier filter where at least one of the values is "
        "empty or contains website identifier that is not valid.",
    ),
    2040: ("InvalidCustomDateRange", "The report time contains a date in the custom date range that is not valid."),
    2041: ("InvalidFutureStartDate", "The specified report time start date is in the future."),
    2042: (
        "InvalidSearchQueryFilterValue",
        "The report request contains a search query filter where at least one of the values is null, empty, or "
        "contains a search query that is not valid.",
    ),
    2043: (
        "SearchQueryFilterValueLengthExceeded",
        "The search query performance report filter contains one or more terms that are too long.",
    ),
    2044: ("SearchQueryOverLimit", "The search query performance report filter contains too many search queries."),
    2045: (
        "KeywordFilterValueLengthExceeded",
        "One or more of the keywords in the keyword performance report filter is too long.",
    ),
    2046: ("KeywordOverLimit", "The keyword performance report filter contains too many keywords."),
    2047: ("GoalIdMaxArraySizeReached", "The specified report scope contains too many Goal IDs."),
    2048: ("TacticIdMaxArraySizeReached", "The specified report scope contains too many Tactic IDs."),
    2049: ("ChannelIdMaxArraySizeReached", "The specified report scope contains too many Channel IDs."),
    2050: (
        "ThirdPartyCampaignIdMaxArraySizeReached",
        "The specified report scope contains too many Third Party Campaign IDs.",
    ),
    2051: (
        "ThirdPartyAdGroupIdMaxArraySizeReached",
        "The specified report scope contains too many Third Party Ad Group IDs.",
    ),
    2052: (
        "InvalidGrainForQualityScoreColumns",
        "The QualityScore, KeywordRelevance, LandingPageRelevance and LandingPageUserExperience columns are "
        "available only with hourly, daily, and summary report aggregation.",
    ),
    2053: (
        "InvalidGrainForImpressionShareColumns",
        "The impression share columns are not available for the specified report aggregation.",
    ),
    2054: (
        "InvalidGrainForHistoricalQualityScoreColumns",
        "The HistoricalQualityScore, HistoricalExpectedCtr HistoricalAdRelevance, HistoricalLandingPageExperience "
        "columns are available only with daily report aggregation.",
    ),
    2057: ("FilterValueBatchSizeOverLimit", "The number of values in a single filter is over limit."),
    2058: ("FilterValueOverLimit", "The filter value exceeds its maximum limit."),
    2059: ("UnsuportedTimeGrain", "The report type does not support the specified time grain."),
    2060: ("InvalidFilterOrScopeValue", "Invalid filter or scope value."),
    2061: ("InvalidSortColumn", "The sort column specified was not included in the submitted report."),
    2100: ("InvalidReportId", "The report identifier is not valid."),
    2101: ("ReportNotFound", "The report was not found."),
}

_REPORTING_FAULTS: Final[dict[int, _Fault]] = {
    100: _FAULTS[100],
    207: _FAULTS[207],
    **{code: _Fault(name, message, 400, True) for code, (name, message) in _REPORTING_ERRORS.items()},
}
