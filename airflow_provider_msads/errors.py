"""Every error this package raises, and the catalogue that explains Microsoft's codes.

Users meet these errors in task logs at 3 a.m.; each one therefore says *which field or which
setup step* to fix, in words that point at the credentials guide (steps 1-6), and carries the
ids Microsoft support asks for (trace, correlation, tracking). No error message ever contains a
secret: messages are built from codes and our own sentences, never from request bodies, and
Microsoft's ``error_description`` is only used after its trace lines are cut off.

The catalogue is the single source of truth: the README's error table is checked against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
    """What a Microsoft code means for the person who owns the connection."""

    code: int
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
}

#: OAuth ``error`` strings that mean "try again later" whatever the code.
TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})

_TRACE_TAIL = re.compile(r"\s*(Trace ID|Correlation ID|Timestamp):.*", re.DOTALL)
_AADSTS_PREFIX = re.compile(r"^AADSTS\d+:\s*")


def describe_microsoft_text(description: str | None, limit: int = 240) -> str:
    """Microsoft's own sentence, without the trace lines, cut short and on one line.

    Microsoft's descriptions do not echo secrets, but they may quote the app id; we keep the first
    sentence-ish part only, since the remedy text is ours anyway.
    """
    if not description:
        return ""
    text = _TRACE_TAIL.sub("", description)
    text = _AADSTS_PREFIX.sub("", text.strip())
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MicrosoftAdsError(Exception):
    """Base of every error this package raises.

    Carries what a human or a retry policy needs: the Microsoft code(s), the ids for support,
    whether retrying can help, and a remedy naming the field or setup step to fix.
    """

    default_remedy = "See the README's troubleshooting section."

    def __init__(
        self,
        message: str,
        *,
        codes: Iterable[int | str] = (),
        field: str | None = None,
        step: str | None = None,
        remedy: str | None = None,
        retryable: bool = False,
        retry_once: bool = False,
        reauthorize: bool = False,
        http_status: int | None = None,
        trace_id: str | None = None,
        correlation_id: str | None = None,
        tracking_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.codes: tuple[int | str, ...] = tuple(codes)
        self.field = field
        self.step = step
        self.remedy = remedy or self.default_remedy
        self.retryable = retryable
        #: Not transient in general, but Microsoft is known to answer it spuriously: one more try.
        self.retry_once = retry_once
        self.reauthorize = reauthorize
        self.http_status = http_status
        self.trace_id = trace_id
        self.correlation_id = correlation_id
        self.tracking_id = tracking_id
        self.retry_after = retry_after
        super().__init__(self._render())

    @property
    def code(self) -> int | str | None:
        return self.codes[0] if self.codes else None

    def _render(self) -> str:
        parts = [self.message]
        if self.field:
            parts.append(f"Field: {self.field}.")
        parts.append(f"Fix: {self.remedy}")
        if self.step:
            parts.append(f"Setup guide: {self.step}.")
        if self.support_ids:
            parts.append(format_support_ids(self.support_ids))
        return " ".join(parts)

    @property
    def support_ids(self) -> tuple[tuple[str, str], ...]:
        """The ids Microsoft's support asks for, named: trace, correlation and tracking id."""
        named = (
            ("trace id", self.trace_id),
            ("correlation id", self.correlation_id),
            ("tracking id", self.tracking_id),
        )
        return tuple((name, value) for name, value in named if value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary for reports and XCom; holds no secret by construction."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "codes": list(self.codes),
            "field": self.field,
            "step": self.step,
            "remedy": self.remedy,
            "retryable": self.retryable,
            "reauthorize": self.reauthorize,
            "http_status": self.http_status,
            "trace_id": self.trace_id,
            "correlation_id": self.correlation_id,
            "tracking_id": self.tracking_id,
        }


def format_support_ids(ids: Iterable[tuple[str, str]]) -> str:
    """``(trace id t-1, tracking id x)``: how every message shows the ids for Microsoft's support."""
    return "(" + ", ".join(f"{name} {value}" for name, value in ids) + ")"


class CredentialsError(MicrosoftAdsError, ValueError):
    """The connection itself is wrong; found without any network call."""


class EndpointError(CredentialsError):
    """A URL that would send credentials somewhere unsafe."""


class TokenError(MicrosoftAdsError):
    """The token endpoint refused, or could not be reached."""


class InvalidClientError(TokenError):
    """Client id or secret rejected (``invalid_client`` / ``unauthorized_client``)."""


class InvalidGrantError(TokenError):
    """Refresh token or authorization code rejected (``invalid_grant``)."""


class ApiError(MicrosoftAdsError):
    """A Microsoft Advertising API call answered with a fault."""


class TransientError(MicrosoftAdsError):
    """Throttling, 5xx, timeouts, connection errors: retrying later can help."""


class ProtocolError(MicrosoftAdsError):
    """Microsoft (or something in between) answered with something we cannot read."""


class TokenStoreError(MicrosoftAdsError):
    """The token store could not be read or written."""


class _TransientTokenError(TransientError, TokenError):
    """Both a token error and transient, so callers can catch either."""


class TransientApiError(TransientError, ApiError):
    """An API fault that retrying can cure (throttling, internal errors, expired access token)."""


def fault_items(body: object) -> list[Mapping[str, Any]]:
    """The error entries of an Ads fault body, either shape (``Errors`` of AdApiFaultDetail,
    ``OperationErrors`` of ApiFaultDetail); empty for anything else."""
    if not isinstance(body, Mapping):
        return []
    items = [*(body.get("Errors") or []), *(body.get("OperationErrors") or [])]
    return [item for item in items if isinstance(item, Mapping)]


def fault_codes(body: object) -> list[int]:
    """The numeric codes of an Ads fault body, in order (see :func:`fault_items`)."""
    return _first_int(item.get("Code") for item in fault_items(body))


def _first_int(values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


_AADSTS_IN_TEXT = re.compile(r"AADSTS(\d+)")


def token_error_from_body(status: int, body: Mapping[str, Any], *, retry_after: float | None = None) -> TokenError:
    """Map a token-endpoint error answer to the matching error class.

    Branches on ``error`` and ``error_codes`` only, as Microsoft asks; the description is read
    for a code only when ``error_codes`` is absent, and its text is never the whole message.
    """
    error = str(body.get("error") or "")
    codes = _first_int(body.get("error_codes") or [])
    description = str(body.get("error_description") or "")
    if not codes:
        codes = [int(m) for m in _AADSTS_IN_TEXT.findall(description)[:1]]
    trace_id = _str_or_none(body.get("trace_id"))
    correlation_id = _str_or_none(body.get("correlation_id"))
    entry = next((AADSTS_CATALOGUE[c] for c in codes if c in AADSTS_CATALOGUE), None)
    ms_text = describe_microsoft_text(description)
    common: dict[str, Any] = {
        "codes": [*codes] or ([error] if error else []),
        "http_status": status,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "retry_after": retry_after,
    }
    if entry is not None:
        message = f"Microsoft rejected the token request: AADSTS{entry.code} {entry.meaning}"
        if ms_text:
            message += f" Microsoft says: {ms_text}"
        common["codes"] = codes
        cls: type[TokenError]
        if entry.retryable:
            cls = _TransientTokenError
        elif entry.name in ("invalid_client", "unauthorized_client"):
            cls = InvalidClientError
        elif entry.name == "invalid_grant":
            cls = InvalidGrantError
        else:
            cls = TokenError
        return cls(
            message,
            field=entry.field,
            step=entry.step,
            remedy=entry.remedy,
            retryable=entry.retryable,
            retry_once=entry.retry_once,
            reauthorize=entry.reauthorize,
            **common,
        )
    if error in TRANSIENT_OAUTH_ERRORS or status == 429 or status >= 500:
        return _TransientTokenError(
            f"The token endpoint is temporarily unavailable ({error or f'HTTP {status}'}).",
            remedy="Retried with backoff; if it keeps failing, check Microsoft's service status.",
            retryable=True,
            **common,
        )
    if error == "invalid_grant":
        # Personal Microsoft accounts answer without an AADSTS code.
        return InvalidGrantError(
            "Microsoft rejected the refresh token or code (invalid_grant): it is expired, revoked "
            "or belongs to another app." + (f" Microsoft says: {ms_text}" if ms_text else ""),
            field="refresh_token",
            step=STEP_AUTHORIZE,
            remedy="Authorize again and put the new token into Refresh Token.",
            reauthorize=True,
            **common,
        )
    if error in ("invalid_client", "unauthorized_client"):
        return InvalidClientError(
            f"Microsoft rejected the client credentials ({error}).",
            field="client_secret" if error == "invalid_client" else "client_id",
            step=STEP_SECRET,
            remedy="Check Client ID and that Client Secret holds the secret's Value.",
            **common,
        )
    return TokenError(
        f"The token endpoint answered HTTP {status} ({error or 'no error code'})."
        + (f" Microsoft says: {ms_text}" if ms_text else ""),
        remedy="Check the connection's environment and URLs; see the README's error table.",
        **common,
    )


def api_error_from_fault(
    status: int,
    body: Mapping[str, Any],
    *,
    operation: str,
    tracking_id: str | None = None,
    retry_after: float | None = None,
) -> ApiError:
    """Map an Ads API fault body (AdApiFaultDetail or ApiFault) to an error with its remedy."""
    items = fault_items(body)
    tracking_id = _str_or_none(body.get("TrackingId")) or tracking_id
    codes = fault_codes(body)
    entry = next((ADS_CATALOGUE[c] for c in codes if c in ADS_CATALOGUE), None)
    common: dict[str, Any] = {
        "codes": codes,
        "http_status": status,
        "tracking_id": tracking_id,
        "retry_after": retry_after,
    }
    if entry is not None:
        cls: type[ApiError] = TransientApiError if entry.retryable else ApiError
        return cls(
            f"{operation} failed: Ads error {entry.code} {entry.name}. {entry.meaning}",
            field=entry.field,
            step=entry.step,
            remedy=entry.remedy,
            retryable=entry.retryable,
            **common,
        )
    names = ", ".join(f"{item.get('Code')} {item.get('ErrorCode') or ''}".strip() for item in items)
    transient = status == 429 or status >= 500
    cls = TransientApiError if transient else ApiError
    return cls(
        f"{operation} failed with HTTP {status}" + (f": Ads error {names}." if names else "."),
        remedy="Retried with backoff." if transient else "See the README's error table for the code.",
        retryable=transient,
        **common,
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def catalogue_rows() -> list[dict[str, Any]]:
    """Rows of the README's "what each error means" table, in catalogue order."""
    rows = []
    for kind, catalogue in (("AADSTS", AADSTS_CATALOGUE), ("Ads", ADS_CATALOGUE)):
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
