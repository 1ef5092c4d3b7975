"""When to talk to the token endpoint: a warm cache, then the shared store, then one refresh.

A refresh is single-flight per machine (lock, then the store read again: a cold start of 16
workers costs one token request), persists the rotated refresh token **before** the access token
is handed out, and falls back once to the connection's own token if the stored one is rejected.
No Airflow import.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_msads.errors import InvalidGrantError, TokenStoreError
from airflow_provider_msads.tokens.client import DEFAULT_EARLY_REFRESH, TokenClient, TokenSet, _noop
from airflow_provider_msads.tokens.flow import StoreCall
from airflow_provider_msads.tokens.locks import DEFAULT_LOCK_TIMEOUT, aacquire, held, loop_lock
from airflow_provider_msads.tokens.store import Opened, TokenCipher, TokenState, TokenStore, storage_key

if TYPE_CHECKING:
    from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials

log = logging.getLogger(__name__)


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
            return self._remember(self.client.run(flow))

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
                tokens = await self.client.arun(self._token_flow(force_refresh, stale_token))
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
