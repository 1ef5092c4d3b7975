"""The OAuth half of onboarding: the authorize URL, the redirect it comes back as, the exchange.

Steps 5-6 of the credentials guide done by a program instead of by hand. Why each piece exists:

* ``state`` ties the redirect to *this* run, so a stale browser tab or a page that makes the
  browser call ``localhost`` cannot feed us someone else's code.
* PKCE (S256) ties the code to *this* process: a code that leaks from the browser history or the
  terminal scrollback cannot be redeemed without the verifier, which never leaves memory.
* The exchange happens the moment the code arrives, with the very redirect URI sent to
  ``/authorize``; the guide's manual copy-paste is where codes expired (AADSTS70008) and redirect
  URIs drifted (AADSTS50011). A code is single-use, so the exchange is never retried (54005).

Only the standard library and the package's pure core are imported at module level; ``httpx``
(through :mod:`airflow_provider_msads.tokens.auth`) is loaded only for the exchange, so ``--help`` and
printing the URL stay fast.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from airflow_provider_msads.errors import MicrosoftAdsError, TokenError, aadsts_codes, describe_microsoft_text
from airflow_provider_msads.errors.catalogue import (
    AADSTS_CATALOGUE,
    OAUTH_ERROR_CATALOGUE,
    STEP_APP,
    STEP_AUTHORIZE,
    CatalogueEntry,
)

if TYPE_CHECKING:
    from airflow_provider_msads.connection.endpoints import Endpoints
    from airflow_provider_msads.tokens.auth import TokenSet

__all__ = [
    "AuthorizationError",
    "AuthorizationRequest",
    "OnboardingError",
    "Redirect",
    "StateMismatchError",
    "authorization_error",
    "build_authorize_url",
    "exchange",
    "new_authorization_request",
    "parse_redirect",
    "pkce_challenge",
]


class OnboardingError(MicrosoftAdsError):
    """Onboarding could not go on (port busy, timeout, bad paste, metastore); the text says why."""

    default_remedy = "Run msads-authorize again; see `msads-authorize --help`."


class StateMismatchError(OnboardingError):
    """A redirect whose ``state`` is not the one this run sent: not ours, never exchanged."""


class AuthorizationError(TokenError):
    """Microsoft answered the authorize request with ``?error=...`` instead of a code."""


# ----------------------------------------------------------------------------------- the request


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, repr=False)
class AuthorizationRequest:
    """One run's authorize request; the verifier stays in memory and is sent only to the token URL."""

    url: str
    redirect_uri: str
    state: str
    code_verifier: str

    def __repr__(self) -> str:
        return f"AuthorizationRequest(redirect_uri={self.redirect_uri!r}, state=***, code_verifier=***)"


def build_authorize_url(
    endpoints: Endpoints,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    prompt: str | None = "select_account",
) -> str:
    """The URL of the guide's step 5, plus ``state``, PKCE and ``response_mode=query``.

    ``prompt=select_account`` because a browser already signed in with another Microsoft account
    would otherwise authorize *that* account silently, and the refresh token would then fail with
    "user is not authorized" on the Ads account. Spaces are encoded as %20 (not ``+``) so that
    the URL survives being pasted into any browser or terminal.
    """
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "response_mode": "query",
        "scope": endpoints.scope,
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    return f"{endpoints.authorize_url}?{urlencode(params, quote_via=quote)}"


def new_authorization_request(
    endpoints: Endpoints, *, client_id: str, redirect_uri: str, prompt: str | None = "select_account"
) -> AuthorizationRequest:
    """Fresh ``state`` and PKCE verifier (43+ characters, RFC 7636) for one authorization."""
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # 64 characters from [A-Za-z0-9_-]
    return authorization_for(
        endpoints, client_id=client_id, redirect_uri=redirect_uri, state=state, verifier=verifier, prompt=prompt
    )


def authorization_for(
    endpoints: Endpoints,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    verifier: str,
    prompt: str | None = "select_account",
) -> AuthorizationRequest:
    """The authorize URL for ``state`` and the challenge of ``verifier``: the one step the command
    and the UI's *Authorize with Microsoft* share (each makes its state and verifier its own way)."""
    challenge = pkce_challenge(verifier)
    url = build_authorize_url(
        endpoints, client_id=client_id, redirect_uri=redirect_uri, state=state, code_challenge=challenge, prompt=prompt
    )
    return AuthorizationRequest(url=url, redirect_uri=redirect_uri, state=state, code_verifier=verifier)


# ---------------------------------------------------------------------------------- the redirect


@dataclass(frozen=True, repr=False)
class Redirect:
    """What came back: a code, or Microsoft's ``error`` / ``error_description``."""

    code: str | None = None
    state: str | None = None
    error: str | None = None
    error_description: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error is not None

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error else "code=***"
        return f"Redirect({what}, state={'***' if self.state else None})"


_CODE_CHARS = re.compile(r"[A-Za-z0-9._~!$*+/=:@-]+")


def _state_mismatch(got: str | None) -> StateMismatchError:
    problem = "carries no `state`" if not got else "carries a `state` that this run did not send"
    return StateMismatchError(
        f"The sign-in answer {problem}, so it does not belong to the authorization URL printed by this run "
        "(an older run's link or browser tab, or a page that is not Microsoft's). Its code was not used.",
        field="state",
        step=STEP_AUTHORIZE,
        remedy="Open the URL printed by this run of msads-authorize (not an older one) and sign in again.",
    )


def redirect_from_params(params: dict[str, str], *, expected_state: str, require_state: bool = True) -> Redirect | None:
    """The redirect in a query's parameters; None when it holds neither ``code`` nor ``error``.

    The state is checked first, for errors too: an ``?error=`` that is not ours must not end
    this run's wait with a wrong explanation.
    """
    if "code" not in params and "error" not in params:
        return None
    state = params.get("state")
    if state is None:
        if require_state:
            raise _state_mismatch(state)
    elif not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise _state_mismatch(state)
    if "error" in params:
        return Redirect(
            state=state,
            error=params.get("error") or "unknown_error",
            error_description=params.get("error_description"),
        )
    return Redirect(code=params["code"], state=state)


def parse_redirect(text: str, *, expected_state: str) -> Redirect:
    """What the user pasted in ``--manual`` mode: the whole redirected address, its query, or the code.

    A pasted address must carry this run's ``state`` when it carries one at all; a bare code
    cannot be checked, but the user pasted it from their own browser, which is what ``state``
    protects. Raises :class:`OnboardingError` for anything else, with what to paste instead.
    """
    text = text.strip().strip("'\"<>").strip()
    if not text:
        raise OnboardingError(
            "Nothing was pasted.",
            remedy="Paste the whole address of the page the browser was sent to after you clicked Accept "
            "(it starts with your redirect URI and contains `code=`).",
            step=STEP_AUTHORIZE,
        )
    looks_like_url = "://" in text or text.startswith("?") or "code=" in text or "error=" in text
    if looks_like_url:
        parts = urlsplit(text if "://" in text or text.startswith("?") else "?" + text)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if "code" not in params and "error" not in params and parts.fragment:
            params = dict(parse_qsl(parts.fragment, keep_blank_values=True))
        redirect = redirect_from_params(params, expected_state=expected_state, require_state=False)
        if redirect is None:
            raise OnboardingError(
                "The pasted address has neither a `code` nor an `error` parameter.",
                remedy="After clicking Accept, copy the address of the page the browser lands on (even if it "
                "shows 'cannot connect'); it contains `?code=`.",
                step=STEP_AUTHORIZE,
            )
        if redirect.code is not None and not redirect.code:
            raise OnboardingError("The pasted address has an empty `code`.", remedy="Sign in again.")
        return redirect
    if not _CODE_CHARS.fullmatch(text):
        raise OnboardingError(
            "The pasted text is neither an address nor an authorization code (it contains spaces or other "
            "characters a code never has).",
            remedy="Paste the whole address of the page the browser was sent to, or only the value after `code=`.",
            step=STEP_AUTHORIZE,
        )
    return Redirect(code=text)


# ------------------------------------------------------------------------- Microsoft's ?error=

_TRACE = re.compile(r"Trace ID:\s*([0-9A-Za-z-]+)")
_CORRELATION = re.compile(r"Correlation ID:\s*([0-9A-Za-z-]+)")


def authorization_error(redirect: Redirect) -> AuthorizationError:
    """Explain an ``?error=...&error_description=...`` redirect, with the AADSTS catalogue first.

    The AADSTS code is read from the description (redirects carry no ``error_codes``); the
    catalogue's remedy wins when it knows the code, else the OAuth ``error`` name decides.
    Microsoft's own sentence is quoted without its trace lines; the trace and correlation ids
    are kept because support asks for them.
    """
    error = redirect.error or "unknown_error"
    description = redirect.error_description or ""
    codes = aadsts_codes(description)[:3]
    trace = _TRACE.search(description)
    correlation = _CORRELATION.search(description)
    ms_text = describe_microsoft_text(description)
    says = f" Microsoft says: {ms_text}" if ms_text else ""
    trace_id = trace.group(1) if trace else None
    correlation_id = correlation.group(1) if correlation else None
    entry = next((AADSTS_CATALOGUE[c] for c in codes if c in AADSTS_CATALOGUE), None)
    if entry is not None:
        message = f"Microsoft refused the authorization ({error}): AADSTS{entry.code} {entry.meaning}"
    else:
        entry = OAUTH_ERROR_CATALOGUE.get(error) or CatalogueEntry(
            None,
            error,
            f"Microsoft refused the authorization ({error}).",
            "Check Client ID, the tenant and the redirect URI registered in the app, then run msads-authorize again.",
            step=STEP_APP,
        )
        message = entry.meaning + (f" (AADSTS{codes[0]})" if codes else "")
    return AuthorizationError(
        message + says,
        codes=[*codes] or [error],
        field=entry.field,
        step=entry.step,
        remedy=entry.remedy,
        retryable=entry.retryable,
        trace_id=trace_id,
        correlation_id=correlation_id,
    )


# ---------------------------------------------------------------------------------- the exchange


def exchange(
    request: AuthorizationRequest,
    code: str,
    *,
    client_id: str,
    client_secret: str,
    endpoints: Endpoints,
) -> TokenSet:
    """Redeem ``code`` once, with the same redirect URI and the PKCE verifier; demand a refresh token.

    Raises the core's :class:`TokenError` subclasses (explained with the catalogue) and a
    :class:`TokenError` when Microsoft issued no refresh token (the scope lacked offline_access).
    """
    from airflow_provider_msads.tokens.auth import TokenClient

    client = TokenClient(client_id=client_id, client_secret=client_secret, endpoints=endpoints)
    tokens = client.exchange_code(code, redirect_uri=request.redirect_uri, code_verifier=request.code_verifier)
    if not tokens.refresh_token:
        raise TokenError(
            "Microsoft issued an access token but no refresh token.",
            field="refresh_token",
            step=STEP_AUTHORIZE,
            remedy="The scope must include offline_access; check --environment and any --token-url override, "
            "then run msads-authorize again.",
        )
    return tokens
