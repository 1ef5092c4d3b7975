"""The token endpoint of one app: refresh and code exchange, with bounded retries.

Talks; never decides when (that is :mod:`._token_manager`). Retries transient failures, never
permanent ones, and never a code exchange, whose code a retry after an unseen success would spend.
No Airflow import: the hook hands in ``on_secret`` (Airflow's ``mask_secret``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from airflow_provider_msads.errors import ProtocolError, token_error_from_body
from airflow_provider_msads.tokens.flow import (
    Flow,
    RetryPolicy,
    direct_mounts,
    drive_async,
    drive_sync,
    parse_retry_after,
    read_json,
    retrying,
    shared_tls_context,
)

if TYPE_CHECKING:
    from airflow_provider_msads.connection.endpoints import Endpoints

#: Refresh this long before Microsoft's expiry, so a token never dies mid-request.
DEFAULT_EARLY_REFRESH = 300.0
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "airflow-provider-msads"
#: Bounds for ``expires_in``: Microsoft says about an hour; anything outside is a broken answer.
MIN_LIFETIME, MAX_LIFETIME, DEFAULT_LIFETIME = 60.0, 86_400.0, 3600.0


def _noop(_: str) -> None:
    return None


@dataclass(frozen=True, repr=False)
class TokenSet:
    """One token endpoint answer, with the expiry made absolute."""

    access_token: str
    expires_at: float
    refresh_token: str | None = None
    scope: str = ""
    #: When the token endpoint answered: a forced refresh that began earlier may reuse this answer.
    obtained_at: float = field(default_factory=time.time)
    #: When the refresh token was last rotated, as the manager knew it after this answer.
    refresh_rotated_at: float | None = None

    def is_fresh(self, now: float, margin: float = DEFAULT_EARLY_REFRESH) -> bool:
        return now < self.expires_at - margin

    def __repr__(self) -> str:
        return f"TokenSet(access_token=***, expires_at={self.expires_at:.0f}, scope={self.scope!r})"


class TokenClient:
    """The token endpoint of one app (client id + secret) in one environment."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        endpoints: Endpoints,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        on_secret: Callable[[str], None] = _noop,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.endpoints = endpoints
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._transport = transport
        self._async_transport = async_transport
        self._on_secret = on_secret
        self._clock = clock
        self._sleep = sleep

    # -- requests ---------------------------------------------------------------------------

    def _request(self, form: dict[str, str]) -> httpx.Request:
        body = urlencode(
            {"client_id": self.client_id, "client_secret": self._client_secret, **form, "scope": self.endpoints.scope}
        )
        return httpx.Request(
            "POST",
            self.endpoints.token_url,
            content=body.encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def _parse(self, response: httpx.Response) -> TokenSet:
        body = read_json(response, "Token endpoint")
        if response.status_code != 200 or "error" in body:
            raise token_error_from_body(
                response.status_code, body, retry_after=parse_retry_after(response.headers.get("retry-after"))
            )
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProtocolError(
                "The token endpoint answered without an access token.",
                remedy="Check token_url; it must be Microsoft's /oauth2/v2.0/token endpoint.",
                http_status=response.status_code,
            )
        self._on_secret(access)
        refresh = body.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            self._on_secret(refresh)
        else:
            refresh = None
        return TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=self._clock() + _lifetime(body.get("expires_in")),
            scope=str(body.get("scope") or ""),
            obtained_at=self._clock(),
        )

    def refresh_flow(self, refresh_token: str) -> Flow[TokenSet]:
        request_form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return retrying(
            lambda: self._request(request_form), self._parse, what="Refreshing the access token", policy=self.retry
        )

    def code_flow(self, code: str, *, redirect_uri: str, code_verifier: str | None = None) -> Flow[TokenSet]:
        """A code can be redeemed once: a retry after an unseen success would answer 54005."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return retrying(
            lambda: self._request(form),
            self._parse,
            what="Exchanging the authorization code",
            policy=RetryPolicy(attempts=1),
        )

    # -- drivers ----------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        return httpx.Client(
            timeout=self._timeout,
            transport=self._transport,
            verify=shared_tls_context(),
            trust_env=True,
            mounts=direct_mounts(self.endpoints.token_url),
        )

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout,
            transport=self._async_transport,
            verify=shared_tls_context(),
            trust_env=True,
            mounts=direct_mounts(self.endpoints.token_url),
        )

    def run(self, flow: Flow[Any]) -> Any:
        return drive_sync(flow, self.client, self._sleep)

    async def arun(self, flow: Flow[Any]) -> Any:
        return await drive_async(flow, self.async_client)

    def refresh(self, refresh_token: str) -> TokenSet:
        result: TokenSet = self.run(self.refresh_flow(refresh_token))
        return result

    def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str | None = None) -> TokenSet:
        result: TokenSet = self.run(self.code_flow(code, redirect_uri=redirect_uri, code_verifier=code_verifier))
        return result


def _lifetime(value: object) -> float:
    """``expires_in`` as seconds within sane bounds: a broken answer must not break what follows.

    NaN, infinities, strings and absurd values come from proxies and broken gateways, not from
    Microsoft; clamping (instead of refusing) keeps the rotated refresh token that came with them.
    """
    try:
        seconds = DEFAULT_LIFETIME if isinstance(value, bool) or value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        seconds = DEFAULT_LIFETIME
    if not math.isfinite(seconds):
        seconds = DEFAULT_LIFETIME
    return min(max(seconds, MIN_LIFETIME), MAX_LIFETIME)
