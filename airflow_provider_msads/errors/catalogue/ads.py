"""Microsoft Advertising API fault codes met on every Ads service (Customer Management and others).

Data, one entry a code. Imports only :mod:`.entry`.
"""

from __future__ import annotations

from airflow_provider_msads.errors.catalogue.entry import STEP_DEVTOKEN, STEP_IDS, CatalogueEntry

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
