"""Every error this package raises, and how a Microsoft answer becomes one.

Users meet these errors in task logs at 3 a.m.; each one therefore says *which field or which
setup step* to fix, in words that point at the credentials guide (steps 1-6), and carries the
ids Microsoft support asks for (trace, correlation, tracking). No error message ever contains a
secret: messages are built from codes and our own sentences, never from request bodies, and
Microsoft's ``error_description`` is only used after its trace lines are cut off.

What each code means lives in :mod:`.catalogue` (one data file a service); here answers are parsed
and matched to it. The bottom room of the house: imports nothing of the package outside this folder.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from airflow_provider_msads.errors.catalogue import (
    AADSTS_CATALOGUE,
    ADS_CATALOGUE,
    STEP_AUTHORIZE,
    STEP_SECRET,
    TRANSIENT_OAUTH_ERRORS,
)

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
    #: Whether a retryable error may be retried within the call (seconds of backoff); False when
    #: the wait is hours and only the task's own retries make sense.
    retry_in_call: bool = True

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


class ReportingError(ApiError):
    """The Reporting service refused a request, or a report could not be turned into a file."""


class ReportNotReadyError(ReportingError):
    """Microsoft has no complete data yet (2004): retryable, but hours from now, so by the task."""

    retry_in_call = False


class ReportRequestError(ReportingError, ValueError):
    """A report request that cannot work, found before anything is sent."""


class ReportDownloadError(ReportingError):
    """The download link answered something that is not the report's zip."""

    @classmethod
    def damaged_zip(cls: type[_Download], what: str, exc: BaseException, retry: str) -> _Download:
        """A zip that cannot be read (one of :data:`DAMAGED_ZIP`) was most likely cut short on the way:
        retryable, since the retry fetches it again."""
        return cls(
            f"The {what} zip is damaged ({type(exc).__name__}).",
            remedy=f"Retried by the task's retries, which {retry}.",
            retryable=True,
        )


_Download = TypeVar("_Download", bound=ReportDownloadError)

#: What reading a cut-short or corrupt zip raises.
DAMAGED_ZIP: tuple[type[Exception], ...] = (zipfile.BadZipFile, EOFError, zlib.error)


class LinkExpiredError(ReportDownloadError):
    """The pre-signed link is dead (403/404): poll again for a fresh one."""


class ArgumentError(MicrosoftAdsError, ValueError):
    """An argument of a call (not a credential) is wrong; found before anything is sent."""


def fault_items(body: object) -> list[Mapping[str, Any]]:
    """The error entries of an Ads fault body, either shape (``Errors`` of AdApiFaultDetail,
    ``OperationErrors`` of ApiFaultDetail); empty for anything else."""
    if not isinstance(body, Mapping):
        return []
    items = [*(body.get("Errors") or []), *(body.get("OperationErrors") or [])]
    return [item for item in items if isinstance(item, Mapping)]


def fault_code(item: Mapping[str, Any]) -> int | None:
    """The numeric ``Code`` of one fault entry; None when it has none."""
    return next(iter(_ints([item.get("Code")])), None)


def fault_codes(body: object) -> list[int]:
    """The numeric codes of an Ads fault body, in order (see :func:`fault_items`)."""
    return _ints(item.get("Code") for item in fault_items(body))


def _ints(values: Iterable[Any]) -> list[int]:
    """The values that are integers (Microsoft sends codes as numbers or digit strings)."""
    out: list[int] = []
    for value in values:
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return out


_AADSTS_IN_TEXT = re.compile(r"AADSTS(\d+)")


def aadsts_codes(text: str) -> list[int]:
    """The AADSTS codes named in a text (an ``error_description``), in order."""
    return [int(code) for code in _AADSTS_IN_TEXT.findall(text)]


def token_error_from_body(status: int, body: Mapping[str, Any], *, retry_after: float | None = None) -> TokenError:
    """Map a token-endpoint error answer to the matching error class.

    Branches on ``error`` and ``error_codes`` only, as Microsoft asks; the description is read
    for a code only when ``error_codes`` is absent, and its text is never the whole message.
    """
    error = str(body.get("error") or "")
    codes = _ints(body.get("error_codes") or [])
    description = str(body.get("error_description") or "")
    if not codes:
        codes = aadsts_codes(description)[:1]
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
        return cls(message, **entry.advice(), **common)
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
            f"{operation} failed: Ads error {entry.code} {entry.name}. {entry.meaning}", **entry.advice(), **common
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
