"""The token core's face: an ``httpx.Auth`` that adds the Ads headers, and where they may go.

No Airflow import here: the hook hands in credentials, a token store and ``on_secret`` (Airflow's
``mask_secret``), so the same core serves tasks, the triggerer, the onboarding command and plain
scripts. Three layers, each usable alone, all importable from here:

* :class:`TokenClient` (:mod:`._token_client`) talks to the token endpoint.
* :class:`TokenManager` (:mod:`._token_manager`) decides *when* to talk: cache, store, one refresh.
* :class:`MicrosoftAdsAuth` adds the Ads headers, only for Microsoft Advertising's API origins, and
  refreshes once when Microsoft says the access token expired (HTTP 401 or fault 109).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_msads.errors import TokenError, fault_codes
from airflow_provider_msads.tokens.client import (
    DEFAULT_EARLY_REFRESH,
    MAX_LIFETIME,
    MIN_LIFETIME,
    TokenClient,
    TokenSet,
)
from airflow_provider_msads.tokens.flow import aload_capped, load_capped
from airflow_provider_msads.tokens.manager import RefreshInfo, TokenManager, clear_process_cache

if TYPE_CHECKING:
    from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials
    from airflow_provider_msads.connection.endpoints import Endpoints


def ads_headers(credentials: MicrosoftAdsCredentials, access_token: str) -> dict[str, str]:
    """The headers every Microsoft Advertising REST call wants."""
    return {
        "Authorization": f"Bearer {access_token}",
        "DeveloperToken": credentials.developer_token,
        "CustomerId": credentials.customer_id,
        "CustomerAccountId": credentials.account_id,
    }


def _fault_codes(response: httpx.Response) -> list[int]:
    """The Ads fault codes of an (already read) error answer; empty when it is not one."""
    if b"Code" not in response.content:
        return []
    try:
        return fault_codes(json.loads(response.content))
    except ValueError:
        return []


def _worth_refreshing(response: httpx.Response, minted_now: bool) -> bool:
    """Whether a new access token could change Microsoft's answer.

    Fault 105 means the access token *or the developer token* is invalid. For a token minted in
    this very call only the developer token (or the environment) can be wrong, and another refresh
    would only rotate the refresh token for nothing, on every call.
    """
    if response.status_code < 400:
        return False
    codes = _fault_codes(response)
    if response.status_code != 401 and 109 not in codes:
        return False
    return not (minted_now and 105 in codes)


CREDENTIAL_HEADERS = ("Authorization", "DeveloperToken", "CustomerId", "CustomerAccountId")


def strip_credentials(request: httpx.Request) -> None:
    """Remove every Ads credential header (a report link or a redirect to another host)."""
    for name in CREDENTIAL_HEADERS:
        request.headers.pop(name, None)


def credential_guard(endpoints: Endpoints) -> Callable[[httpx.Request], None]:
    """An httpx request event hook: strips credentials from any request leaving the API origins.

    The auth flow sees only the first request; httpx copies its headers onto redirects and drops
    only ``Authorization`` across origins. Event hooks run for every hop, redirects included.
    """

    def guard(request: httpx.Request) -> None:
        if not endpoints.sends_credentials_to(str(request.url)):
            strip_credentials(request)

    return guard


def async_credential_guard(endpoints: Endpoints) -> Callable[[httpx.Request], Any]:
    sync_guard = credential_guard(endpoints)

    async def guard(request: httpx.Request) -> None:
        sync_guard(request)

    return guard


class MicrosoftAdsAuth(httpx.Auth):
    """Adds Authorization, DeveloperToken, CustomerId and CustomerAccountId to each request.

    When Microsoft answers that the access token expired, refreshes once (telling the manager
    which token was refused, so a token another worker refreshed meanwhile is reused) and resends.
    """

    # Bodies are read only for error answers (to spot fault 109), so large report downloads
    # through ``get_conn()`` can still be streamed.
    requires_response_body = False

    def __init__(self, manager: TokenManager) -> None:
        self.manager = manager

    def _apply(self, request: httpx.Request, token: str) -> None:
        # Caller-set CustomerId/CustomerAccountId win (one connection, many accounts); the
        # Authorization header is always ours.
        for name, value in ads_headers(self.manager.credentials, token).items():
            if name == "Authorization" or name not in request.headers:
                request.headers[name] = value

    def _ours(self, request: httpx.Request) -> bool:
        """Credentials go only to the API origins of the connection (see ``Endpoints``)."""
        return self.manager.credentials.endpoints.sends_credentials_to(str(request.url))

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._ours(request):
            strip_credentials(request)
            yield request
            return
        requests_before = self.manager.info.token_requests
        token = self.manager.get_token().access_token
        self._apply(request, token)
        response = yield request
        if response.status_code >= 400:
            load_capped(response)
        if _worth_refreshing(response, minted_now=self.manager.info.token_requests != requests_before):
            fresh = self.manager.get_token(force_refresh=True, stale_token=token).access_token
            self._apply(request, fresh)
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._ours(request):
            strip_credentials(request)
            yield request
            return
        requests_before = self.manager.info.token_requests
        token = (await self.manager.aget_token()).access_token
        self._apply(request, token)
        response = yield request
        if response.status_code >= 400:
            await aload_capped(response)
        if _worth_refreshing(response, minted_now=self.manager.info.token_requests != requests_before):
            fresh = (await self.manager.aget_token(force_refresh=True, stale_token=token)).access_token
            self._apply(request, fresh)
            yield request


__all__ = [
    "DEFAULT_EARLY_REFRESH",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "MicrosoftAdsAuth",
    "RefreshInfo",
    "TokenClient",
    "TokenError",
    "TokenManager",
    "TokenSet",
    "ads_headers",
    "async_credential_guard",
    "clear_process_cache",
    "credential_guard",
    "strip_credentials",
]
