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
    for kind, catalogue in (("AADSTS", AADSTS_CATALOGUE), ("Ads", ADS_CATALOGUE), ("Reporting", REPORTING_CATALOGUE)):
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


#: Reporting v13 codes the report operator explains (117, 207, 105, 109 as in ADS_CATALOGUE).
REPORTING_CATALOGUE: dict[int, CatalogueEntry] = {
    e.code: e
    for e in (
        CatalogueEntry(
            100,
            "NullRequest",
            "Reporting: misleading; usually a misspelt column or enum value (Details name the path, e.g. "
            "$.Columns[4]), reported as 'column 5 ('Impresions') is not a column of …'.",
            "Fix the named column in `columns` (or the named value in report_request).",
            "columns",
        ),
        CatalogueEntry(
            2004,
            "NoCompleteDataAvaliable",
            "Reporting: return_only_complete_data is true and the range includes today or unprocessed data.",
            "End the range before yesterday in the report's time zone, or set return_only_complete_data=False "
            "and re-pull a lookback window.",
            "return_only_complete_data",
        ),
        CatalogueEntry(
            2015,
            "InvalidCustomDateRangeStart",
            "Reporting: the start date is invalid or outside retention (hourly 6 months, daily 36 months).",
            "Check date_from; the operator refuses ranges beyond retention before submitting.",
            "date_from",
        ),
        CatalogueEntry(
            2016,
            "InvalidCustomDateRangeEnd",
            "Reporting: the end date is invalid.",
            "Check date_to (inclusive, not before date_from).",
            "date_to",
        ),
        CatalogueEntry(
            2029,
            "ReportingServiceAccountsOverLimit",
            "Reporting: more than 1,000 account ids in one request.",
            "Split account_ids into batches of at most 1,000 (checked before submitting).",
            "account_ids",
        ),
        CatalogueEntry(
            2034,
            "AccountNotAuthorized",
            "Reporting: the authorizing user cannot report on an account in the scope (number unconfirmed).",
            "Check account_ids (the numeric aid from the Microsoft Advertising URL) and that the user who "
            "authorized the connection can open those accounts.",
            "account_ids",
        ),
    )
    if e.code is not None
}
