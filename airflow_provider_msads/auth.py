"""The pure token core: refresh and code exchange, rotation kept, one token shared by all.

No Airflow import here: the hook hands in credentials, a token store and ``on_secret`` (Airflow's
``mask_secret``), so the same core serves tasks, the triggerer, the onboarding command and plain
scripts.

Three layers, each usable alone:

* :class:`TokenClient` talks to the token endpoint (bounded retries for transient failures,
  never for permanent ones, never for a code exchange whose code would then be spent).
* :class:`TokenManager` decides *when* to talk: a warm in-process cache, then the shared store,
  then a single-flight refresh that persists the rotated refresh token **before** the access
  token is handed out, falling back once to the connection's own token if the stored one is
  rejected.
* :class:`MicrosoftAdsAuth` is an :class:`httpx.Auth` that adds the Ads headers and refreshes
  once when Microsoft says the access token expired (HTTP 401 or fault 109).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from airflow_provider_msads._flow import (
    Flow,
    RetryPolicy,
    StoreCall,
    aload_capped,
    direct_mounts,
    drive_async,
    drive_sync,
    load_capped,
    parse_retry_after,
    read_json,
    retrying,
    shared_tls_context,
)
from airflow_provider_msads.errors import (
    InvalidGrantError,
    ProtocolError,
    TokenError,
    TokenStoreError,
    fault_codes,
    token_error_from_body,
)
from airflow_provider_msads.token_store import (
    DEFAULT_LOCK_TIMEOUT,
    Opened,
    TokenCipher,
    TokenState,
    TokenStore,
    aacquire,
    held,
    loop_lock,
    storage_key,
)

if TYPE_CHECKING:
    from airflow_provider_msads.credentials import MicrosoftAdsCredentials
    from airflow_provider_msads.endpoints import Endpoints

log = logging.getLogger(__name__)

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

    def sleep(self, seconds: float) -> None:
        """The blocking pause between retries (replaceable in tests)."""
        self._sleep(seconds)

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


# ------------------------------------------------------------------------------ token manager

_PROCESS_CACHE: dict[tuple[str, ...], TokenSet] = {}
#: The newest token state this process has read or written, per connection: what a replayed
#: (older) store entry is measured against.
_NEWEST_STATE: dict[tuple[str, ...], TokenState] = {}
_PROCESS_CACHE_LOCK = threading.Lock()


def clear_process_cache() -> None:
    """Forget every access token cached in this process (tests, re-authorization)."""
    with _PROCESS_CACHE_LOCK:
        _PROCESS_CACHE.clear()
        _NEWEST_STATE.clear()


@dataclass
class RefreshInfo:
    """What the last store read or refresh revealed; used by the credential report."""

    refresh_rotated_at: float | None = None
    token_requests: int = 0
    used_fallback: bool = False
    persist_error: str | None = None
    #: The store held an entry that could not be used (corrupt, tampered, replayed); said to users.
    store_warning: str | None = None


class TokenManager:
    """Hands out access tokens for one connection, spending as few token requests as possible.

    Order of places looked at: this process's cache, the shared store (one read), then a refresh
    under the per-machine lock. After taking the lock the store is read again, because another
    process may have refreshed while we waited: that is what makes a cold start of 16 workers
    cost one token request.
    """

    def __init__(
        self,
        credentials: MicrosoftAdsCredentials,
        *,
        store: TokenStore,
        client: TokenClient | None = None,
        early_refresh: float = DEFAULT_EARLY_REFRESH,
        clock: Callable[[], float] = time.time,
        on_secret: Callable[[str], None] = _noop,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.credentials = credentials
        self.store = store
        self.client = client or TokenClient(
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            endpoints=credentials.endpoints,
            on_secret=on_secret,
            clock=clock,
        )
        self.early_refresh = early_refresh
        self.lock_timeout = lock_timeout
        self._clock = clock
        self._on_secret = on_secret
        self._cipher = TokenCipher.for_credentials(credentials)
        self.key = storage_key(credentials.conn_id)
        self._cache_key = (
            credentials.conn_id,
            self._cipher.fingerprint,
            credentials.client_id,
            credentials.endpoints.token_url,
            # A forced refresh proves the secret too: a token minted with another secret must not count.
            hashlib.sha256(credentials.client_secret.encode()).hexdigest()[:16],
        )
        self.info = RefreshInfo()

    # -- cache ------------------------------------------------------------------------------

    def _cached(self, force: bool, stale: str | None, since: float | None = None) -> TokenSet | None:
        """A fresh cached token, if it answers the request.

        A forced refresh without a refused token (validation) is answered by a refresh that
        completed after the caller asked (``since``): it proves the same credentials just as
        well, so a hundred sensors validating one connection at once cost one token request.
        """
        with _PROCESS_CACHE_LOCK:
            hit = _PROCESS_CACHE.get(self._cache_key)
        if hit is None or not hit.is_fresh(self._clock(), self.early_refresh):
            return None
        if force and stale is None and (since is None or hit.obtained_at < since):
            return None
        if force and stale is not None and hit.access_token == stale:
            return None
        if hit.refresh_rotated_at is not None:
            self.info.refresh_rotated_at = hit.refresh_rotated_at
        return hit

    def _remember(self, tokens: TokenSet) -> TokenSet:
        with _PROCESS_CACHE_LOCK:
            _PROCESS_CACHE[self._cache_key] = tokens
        return tokens

    def forget(self) -> None:
        """Drop this connection's cached token and stored state (after re-authorization)."""
        with _PROCESS_CACHE_LOCK:
            _PROCESS_CACHE.pop(self._cache_key, None)
            _NEWEST_STATE.pop(self._cache_key, None)
        self.store.delete(self.key)

    # -- the flow shared by sync and async --------------------------------------------------

    def _warn_store(self, problem: str) -> None:
        self.info.store_warning = problem
        log.warning("Token store entry %s for connection %r: %s.", self.key, self.credentials.conn_id, problem)

    def _newest(self, state: TokenState | None) -> TokenState | None:
        """``state``, unless this process has seen a newer generation (then that one)."""
        with _PROCESS_CACHE_LOCK:
            known = _NEWEST_STATE.get(self._cache_key)
            if state is not None and (known is None or state.generation >= known.generation):
                _NEWEST_STATE[self._cache_key] = state
                return state
        if known is not None and state is not None:
            self._warn_store(
                f"stored token state unreadable: it is older (generation {state.generation}) than one this process "
                f"has seen (generation {known.generation}), a replayed or restored entry; kept the newer one"
            )
        return known if state is not None else None

    def _open_stored(self) -> Opened:
        return self._cipher.open_entry(self.store.read(self.key))

    def _load_state(self) -> TokenState | None:
        opened = self._open_stored()
        if opened.problem:
            self._warn_store(f"stored token state unreadable ({opened.problem}); fell back to the connection's token")
        state = self._newest(opened.state)
        if state is not None:
            self._on_secret(state.refresh_token)
            if state.access_token:
                self._on_secret(state.access_token)
            self.info.refresh_rotated_at = state.refresh_rotated_at
        return state

    def _save(self, state: TokenState) -> bool:
        """Write ``state`` unless the store already holds this generation or a newer one.

        Read again right before writing: another machine may have saved a newer state since we
        read (there is no cross-machine lock). Both refresh tokens are valid, and the newer entry
        must win; an entry of an unknown version raises and is left alone.
        """
        current = self._open_stored().state
        if current is not None and current.generation >= state.generation:
            log.info(
                "Token state generation %s was saved meanwhile by another process; keeping it.", current.generation
            )
            self._newest(current)
            return False
        self.store.write(self.key, self._cipher.seal(state))
        self._newest(state)
        return True

    def _token_flow(self, force: bool, stale: str | None) -> Generator[Any, Any, TokenSet]:
        """Runs under the lock. Yields store calls and HTTP requests; see ``_flow``."""
        state: TokenState | None = yield StoreCall(self._load_state)
        now = self._clock()
        if state is not None and state.access_token and state.access_expires_at:
            stored = TokenSet(
                state.access_token,
                state.access_expires_at,
                state.refresh_token,
                obtained_at=state.updated_at,
                refresh_rotated_at=state.refresh_rotated_at,
            )
            if stored.is_fresh(now, self.early_refresh) and not (
                force and (stale is None or stale == stored.access_token)
            ):
                return stored

        candidates = [self.credentials.refresh_token]
        if state is not None and state.refresh_token != self.credentials.refresh_token:
            candidates.insert(0, state.refresh_token)
        tokens: TokenSet | None = None
        used = candidates[0]
        for index, used in enumerate(candidates):
            try:
                self.info.token_requests += 1
                tokens = yield from self.client.refresh_flow(used)
                break
            except InvalidGrantError as err:
                if index + 1 == len(candidates):
                    raise
                self.info.used_fallback = True
                log.warning(
                    "The stored (rotated) refresh token was rejected (code %s, trace id %s); "
                    "falling back once to the connection's own refresh token.",
                    err.code,
                    err.trace_id,
                )
        assert tokens is not None
        rotated = tokens.refresh_token is not None and tokens.refresh_token != used
        new_state = TokenState(
            refresh_token=tokens.refresh_token or used,
            access_token=tokens.access_token,
            access_expires_at=tokens.expires_at,
            refresh_rotated_at=now if rotated else (state.refresh_rotated_at if state else None),
            updated_at=now,
            generation=(state.generation if state else 0) + 1,
        )
        self.info.refresh_rotated_at = new_state.refresh_rotated_at
        # Persist before handing out the access token: a crash after this line loses nothing, and
        # a crash before it leaves the previous refresh token, which Microsoft still honours.
        try:
            yield StoreCall(self._save, (new_state,))
            self.info.persist_error = None
        except TokenStoreError as err:
            self.info.persist_error = err.message
            log.error(
                "Could not save the rotated refresh token (%s). The previous token still works, "
                "but fix the token store before it is 90 days old.",
                err.message,
            )
        log.info(
            "Obtained a new access token for connection %r (valid until %s UTC).",
            self.credentials.conn_id,
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(tokens.expires_at)),
        )
        return dataclasses.replace(tokens, refresh_rotated_at=new_state.refresh_rotated_at)

    # -- public API -------------------------------------------------------------------------

    def get_token(self, *, force_refresh: bool = False, stale_token: str | None = None) -> TokenSet:
        """A fresh access token; ``force_refresh`` (with the token Microsoft refused) skips caches."""
        since = self._clock()
        hit = self._cached(force_refresh, stale_token)
        if hit is not None:
            return hit
        with held(self.store.lock(self.key), self.lock_timeout):
            hit = self._cached(force_refresh, stale_token, since)  # another thread refreshed while we waited
            if hit is not None:
                return hit
            flow = self._token_flow(force_refresh, stale_token)
            return self._remember(drive_sync(flow, self.client.client, self.client.sleep))

    async def aget_token(self, *, force_refresh: bool = False, stale_token: str | None = None) -> TokenSet:
        """Async twin, asyncio-native: no thread ever waits for a lock.

        Callers of one connection on one event loop queue on an ``asyncio.Lock`` (however many,
        they hold no thread); its holder takes the machine lock with non-blocking tries and
        ``asyncio.sleep`` in between, under ``lock_timeout``. Only store calls use worker threads,
        and they never wait for anything. A caller cancelled at any point holds no lock after.
        """
        since = self._clock()
        hit = self._cached(force_refresh, stale_token)
        if hit is not None:
            return hit
        deadline = time.monotonic() + self.lock_timeout
        async with loop_lock(self.key):
            hit = self._cached(force_refresh, stale_token, since)  # the previous holder refreshed for us
            if hit is not None:
                return hit
            lock = self.store.lock(self.key)
            await aacquire(lock, max(0.0, deadline - time.monotonic()))
            try:
                tokens = await drive_async(self._token_flow(force_refresh, stale_token), self.client.async_client)
            finally:
                lock.release()
            return self._remember(tokens)

    def seed(self, tokens: TokenSet) -> None:
        """Start the store from a code exchange's answer, so that nothing refreshes (spends) its token.

        ``msads-authorize`` hands the user the exchanged refresh token and validates with the access
        token that came with it; a refresh would rotate it, and the token handed out would no longer be
        the newest.
        """
        now = self._clock()
        with held(self.store.lock(self.key), self.lock_timeout):
            current = self._open_stored().state
            state = TokenState(
                refresh_token=tokens.refresh_token or self.credentials.refresh_token,
                access_token=tokens.access_token,
                access_expires_at=tokens.expires_at,
                refresh_rotated_at=now,
                updated_at=now,
                generation=(current.generation if current else 0) + 1,
            )
            self._save(state)
        self.info.refresh_rotated_at = now
        self._remember(tokens)

    def get_access_token(self) -> str:
        return self.get_token().access_token

    async def aget_access_token(self) -> str:
        return (await self.aget_token()).access_token


# ---------------------------------------------------------------------------------- httpx.Auth


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
    "MicrosoftAdsAuth",
    "RefreshInfo",
    "TokenClient",
    "TokenError",
    "TokenManager",
    "TokenSet",
    "ads_headers",
    "clear_process_cache",
    "credential_guard",
    "strip_credentials",
]
