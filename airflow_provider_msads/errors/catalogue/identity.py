"""The identity platform's codes: AADSTS codes of the token/authorize endpoints and OAuth ``error`` names.

Data, one entry a code. Imports only :mod:`.entry`.
"""

from __future__ import annotations

from airflow_provider_msads.errors.catalogue.entry import STEP_APP, STEP_AUTHORIZE, STEP_SECRET, CatalogueEntry


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
