"""Issue 10's findings, each pinned by a test that failed on the code before the fix.

Private lock folders with bounded waits, stored state that is never thrown away in silence,
generations, credentials only to Microsoft's API origins, bounded numbers and request deadlines.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.fakes import CONN_REFRESH, FakeTokenEndpoint, make_credentials

from airflow_provider_msads import token_store as ts
from airflow_provider_msads.errors import TokenStoreError, TransientError
from airflow_provider_msads.token_store import (
    FileTokenStore,
    MachineLock,
    MemoryTokenStore,
    TokenCipher,
    TokenState,
    VariableTokenStore,
    storage_key,
)
from airflow_provider_msads.tokens.auth import (
    MicrosoftAdsAuth,
    TokenClient,
    TokenManager,
    credential_guard,
)
from airflow_provider_msads.tokens.flow import RetryPolicy, drive_async, drive_sync, retrying
from airflow_provider_msads.validation.steps import TokenOutcome, _Builder


def make_manager(credentials, endpoint: FakeTokenEndpoint, store, **kwargs: Any) -> TokenManager:
    client = TokenClient(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        endpoints=credentials.endpoints,
        transport=httpx.MockTransport(endpoint),
        async_transport=httpx.MockTransport(endpoint),
        retry=RetryPolicy(attempts=1),
    )
    return TokenManager(credentials, store=store, client=client, **kwargs)


# ----------------------------------------------------------------------------- 2. lock folder


def test_locks_never_live_in_the_shared_temp_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import tempfile

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("MSADS_TOKEN_STORE_DIR", str(tmp_path / "state"))
    assert ts.default_lock_dir() == tmp_path / "state" / "locks"
    assert not str(ts.default_lock_dir()).startswith(tempfile.gettempdir() + "/airflow-provider-msads")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert ts.default_lock_dir() == runtime / "airflow-provider-msads"


def test_lock_folder_must_be_private_and_ours(tmp_path: Path):
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(TokenStoreError) as caught:
        MachineLock("k", loose).try_acquire()
    assert str(loose) in str(caught.value)
    assert "0777" in str(caught.value)

    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(TokenStoreError, match="symlink"):
        MachineLock("k", link).try_acquire()

    if os.geteuid() == 0:  # as root we can hand a folder to someone else, as an attacker would own it
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 12345, 12345)
        with pytest.raises(TokenStoreError, match="uid 12345"):
            MachineLock("k", foreign).try_acquire()

    # A refused folder leaves the thread lock free.
    ok = tmp_path / "ok"
    lock = MachineLock("k", ok)
    assert lock.try_acquire()
    assert stat.S_IMODE(ok.stat().st_mode) == 0o700
    lock.release()


def test_lock_file_symlink_is_refused_not_followed(tmp_path: Path):
    folder = tmp_path / "locks"
    lock = MachineLock("k", folder)
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    assert lock.path is not None
    lock.path.symlink_to(victim)
    with pytest.raises(TokenStoreError, match="symlink"):
        lock.try_acquire()
    assert victim.read_text() == "precious"
    assert MachineLock("k", folder)._thread_lock.acquire(blocking=False)  # not left taken
    MachineLock("k", folder)._thread_lock.release()


def _hold_flock(path: str, ready: Any, done: Any) -> None:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    done.wait(60)


def test_every_wait_for_the_lock_is_bounded_sync_and_async(tmp_path: Path):
    folder = tmp_path / "locks"
    lock = MachineLock("held-elsewhere", folder)
    assert lock.try_acquire()
    lock.release()
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_flock, args=(str(lock.path), ready, done))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(TokenStoreError, match="Waited") as caught:
            ts.acquire(MachineLock("held-elsewhere", folder), timeout=0.3)
        assert caught.value.retryable
        with pytest.raises(TokenStoreError, match="Waited"):
            asyncio.run(ts.aacquire(MachineLock("held-elsewhere", folder), timeout=0.3))
    finally:
        done.set()
        holder.join(30)
    # The holder is gone: the lock is free again, and the thread lock was never left taken.
    ts.acquire(MachineLock("held-elsewhere", folder), timeout=5)


# ---------------------------------------------------------------------- 3. stored state kept


def _stored(manager: TokenManager, store: Any) -> TokenState | None:
    return TokenCipher.for_credentials(manager.credentials).open(store.read(manager.key))


def test_unknown_envelope_version_is_neither_used_nor_overwritten(endpoint: FakeTokenEndpoint):
    credentials = make_credentials()
    store = MemoryTokenStore()
    future = "msads-v9.abc.def"
    store.write(storage_key(credentials.conn_id), future)
    manager = make_manager(credentials, endpoint, store)
    with pytest.raises(TokenStoreError) as caught:
        manager.get_access_token()
    assert "version 9" in str(caught.value)
    assert "same airflow-provider-msads version" in (caught.value.remedy or "")
    assert store.read(storage_key(credentials.conn_id)) == future
    assert endpoint.requests == []  # not even a refresh that would rotate the token it protects


def test_unknown_fields_of_a_newer_writer_are_ignored(endpoint: FakeTokenEndpoint):
    credentials = make_credentials()
    cipher = TokenCipher.for_credentials(credentials)
    import json

    from airflow_provider_msads.token_store import _b64

    payload = {"refresh_token": "M.C5_BAY.STORED-ROTATED", "access_token": "STORED-ACCESS", "generation": 3}
    payload |= {"access_expires_at": 4_000_000_000.0, "future_field": {"x": 1}}
    nonce = os.urandom(12)
    sealed = cipher._aead.encrypt(nonce, json.dumps(payload).encode(), cipher._aad)
    blob = f"{ts.ENVELOPE_PREFIX}.{cipher.fingerprint}.{_b64(nonce + sealed)}"
    state = cipher.open(blob)
    assert state is not None
    assert state.refresh_token == "M.C5_BAY.STORED-ROTATED"
    assert state.generation == 3


def test_unreadable_entry_is_reported_in_the_validation_report(endpoint: FakeTokenEndpoint):
    credentials = make_credentials()
    store = MemoryTokenStore()
    key = storage_key(credentials.conn_id)
    manager = make_manager(credentials, endpoint, store)
    manager.get_access_token()
    blob = store.read(key)
    assert blob is not None
    prefix, fingerprint, payload = blob.split(".")
    store.write(key, f"{prefix}.{fingerprint}.{payload[:-6]}AAAAAA")  # tampered / bit rot

    from airflow_provider_msads.tokens.auth import clear_process_cache

    clear_process_cache()
    fresh = make_manager(credentials, endpoint, store)
    fresh.get_token(force_refresh=True)
    assert fresh.info.store_warning is not None
    assert "fell back to the connection's token" in fresh.info.store_warning
    assert endpoint.requests[-1]["refresh_token"] == CONN_REFRESH

    builder = _Builder("msads_unit", 2_000_000_000.0, 30, 30)
    builder.token_ok(TokenOutcome(expires_at=2_000_003_600.0, rotated=True, store_warning=fresh.info.store_warning))
    warnings = {w.code: w.message for w in builder.warnings}
    assert "token_store_unreadable" in warnings
    assert "Stored token state unreadable" in warnings["token_store_unreadable"]


def test_generations_grow_and_a_replayed_old_entry_does_not_roll_back(endpoint: FakeTokenEndpoint):
    credentials = make_credentials()
    store = MemoryTokenStore()
    key = storage_key(credentials.conn_id)
    manager = make_manager(credentials, endpoint, store)
    manager.get_token(force_refresh=True)
    old_blob = store.read(key)
    first = _stored(manager, store)
    manager.get_token(force_refresh=True)
    second = _stored(manager, store)
    assert first is not None
    assert second is not None
    assert (first.generation, second.generation) == (1, 2)

    store.write(key, old_blob)  # someone with Variable access replays the older entry
    manager.get_token(force_refresh=True)
    assert manager.info.store_warning is not None
    assert "generation 1" in manager.info.store_warning
    assert endpoint.requests[-1]["refresh_token"] == second.refresh_token  # the newer token, not the replayed
    third = _stored(manager, store)
    assert third is not None
    assert third.generation == 3


def test_a_newer_generation_saved_meanwhile_is_never_overwritten(endpoint: FakeTokenEndpoint):
    credentials = make_credentials()
    store = MemoryTokenStore()
    key = storage_key(credentials.conn_id)
    cipher = TokenCipher.for_credentials(credentials)
    newer = TokenState(refresh_token="M.C5_BAY.OTHER-MACHINE", generation=7, updated_at=1.0)

    class OtherMachineWritesDuringRefresh(FakeTokenEndpoint):
        def ok(self, request: httpx.Request) -> httpx.Response:
            store.write(key, cipher.seal(newer))  # another machine saves while our refresh is in flight
            return super().ok(request)

    racing = OtherMachineWritesDuringRefresh()
    manager = make_manager(credentials, racing, store)
    tokens = manager.get_token()
    assert tokens.access_token.startswith("ACCESS-")
    kept = cipher.open(store.read(key))
    assert kept is not None
    assert kept.refresh_token == "M.C5_BAY.OTHER-MACHINE"
    assert kept.generation == 7


def test_variable_store_write_errors_are_token_store_errors(monkeypatch: pytest.MonkeyPatch):
    class Backend:
        @staticmethod
        def set(key: str, value: str, description: str | None = None) -> None:
            if description is not None:
                raise TypeError("no description here")
            raise OSError("metastore is read-only")

    monkeypatch.setattr(VariableTokenStore, "_backend", lambda self: Backend)
    with pytest.raises(TokenStoreError, match="Cannot write the Airflow Variable"):
        VariableTokenStore().write("k", "v")


def test_failed_persist_does_not_fail_the_task(endpoint: FakeTokenEndpoint):
    class BrokenWrites(MemoryTokenStore):
        def write(self, key: str, value: str) -> None:
            raise TokenStoreError("Cannot write the Airflow Variable 'x' (OperationalError).")

    manager = make_manager(make_credentials(), endpoint, BrokenWrites())
    assert manager.get_access_token().startswith("ACCESS-")
    assert manager.info.persist_error is not None


# -------------------------------------------------------------------- 4. credentials' origins


def _recording_client(manager: TokenManager, seen: list[httpx.Request], redirect_to: str | None = None) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if redirect_to and request.url.host.endswith("bingads.microsoft.com"):
            return httpx.Response(302, headers={"Location": redirect_to})
        return httpx.Response(200, json={})

    endpoints = manager.credentials.endpoints
    return httpx.Client(
        auth=MicrosoftAdsAuth(manager),
        transport=httpx.MockTransport(handler),
        event_hooks={"request": [credential_guard(endpoints)]},
    )


CREDENTIAL_HEADERS = ("authorization", "developertoken", "customerid", "customeraccountid")


def test_credentials_only_to_microsoft_api_origins(endpoint: FakeTokenEndpoint):
    manager = make_manager(make_credentials(), endpoint, MemoryTokenStore())
    seen: list[httpx.Request] = []
    with _recording_client(manager, seen) as client:
        client.post("https://clientcenter.api.bingads.microsoft.com/CustomerManagement/v13/User/Query", json={})
        client.post("https://reporting.api.bingads.microsoft.com/Reporting/v13/GenerateReport/Poll", json={})
        client.get("https://msadsreports.blob.core.windows.net/report.zip?sig=x")
        client.get("https://evil.example.com/collect")
        client.get("http://clientcenter.api.bingads.microsoft.com/CustomerManagement/v13")  # http: other origin
        client.get("https://clientcenter.api.sandbox.bingads.microsoft.com/x")  # another environment
        client.get("https://clientcenter.api.bingads.microsoft.com:8443/x")  # another port
    carried = [all(name in r.headers for name in CREDENTIAL_HEADERS) for r in seen]
    assert carried == [True, True, False, False, False, False, False]
    for request in seen[2:]:
        assert not any(name in request.headers for name in CREDENTIAL_HEADERS), request.url


def test_a_redirect_to_another_host_carries_no_credentials(endpoint: FakeTokenEndpoint):
    manager = make_manager(make_credentials(), endpoint, MemoryTokenStore())
    seen: list[httpx.Request] = []
    link = "https://msadsreports.blob.core.windows.net/r.zip?sig=abc"
    with _recording_client(manager, seen, redirect_to=link) as client:
        client.get("https://reporting.api.bingads.microsoft.com/x", follow_redirects=True)
    assert [r.url.host for r in seen] == ["reporting.api.bingads.microsoft.com", "msadsreports.blob.core.windows.net"]
    assert "developertoken" in seen[0].headers
    assert not any(name in seen[1].headers for name in CREDENTIAL_HEADERS)


# ------------------------------------------------------------------------ 7. bounded numbers


@pytest.mark.parametrize("value", ["NaN", "Infinity", -5, 1e20, "1e400", "soon", None, True])
def test_expires_in_is_clamped_so_nothing_after_the_save_breaks(value: object):
    from airflow_provider_msads.tokens.auth import MAX_LIFETIME, MIN_LIFETIME

    now = 1_900_000_000.0

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"access_token": "ACCESS", "refresh_token": "M.C5_BAY.NEXT", "expires_in": value}
        text = __import__("json").dumps(body).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
        return httpx.Response(200, content=text.encode(), headers={"content-type": "application/json"})

    credentials = make_credentials()
    client = TokenClient(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        endpoints=credentials.endpoints,
        transport=httpx.MockTransport(handler),
        clock=lambda: now,
    )
    store = MemoryTokenStore()
    manager = TokenManager(credentials, store=store, client=client, clock=lambda: now)
    tokens = manager.get_token()
    lifetime = tokens.expires_at - now
    assert math.isfinite(lifetime)
    assert MIN_LIFETIME <= lifetime <= MAX_LIFETIME
    assert _stored(manager, store) is not None


def test_a_trickling_answer_hits_the_total_deadline_sync():
    ticks = iter(range(0, 10_000, 10))  # every chunk costs 10 s of (fake) time

    class Trickle(httpx.SyncByteStream):
        def __iter__(self):
            while True:
                yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle())

    flow = retrying(
        lambda: httpx.Request("POST", "https://login.microsoftonline.com/t"),
        lambda r: r,
        what="Refreshing",
        policy=RetryPolicy(attempts=1),
    )
    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(TransientError, match="timed out"),
    ):
        drive_sync(flow, client, deadline=60.0, clock=lambda: float(next(ticks)))


def test_a_trickling_answer_hits_the_total_deadline_async():
    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self):
            while True:
                await asyncio.sleep(0.01)
                yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle())

    async def main() -> None:
        flow = retrying(
            lambda: httpx.Request("POST", "https://login.microsoftonline.com/t"),
            lambda r: r,
            what="Refreshing",
            policy=RetryPolicy(attempts=1),
        )
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await drive_async(flow, client, deadline=0.3)

    with pytest.raises(TransientError, match="timed out"):
        asyncio.run(main())


def test_file_store_lock_is_in_the_store_folder(tmp_path: Path):
    store = FileTokenStore(tmp_path / "store")
    lock = store.lock("k")
    assert isinstance(lock, MachineLock)
    assert lock.directory == tmp_path / "store" / ".locks"


# ------------------------------------------------ forced refreshes of many callers coalesce


def test_concurrent_forced_refreshes_share_one_answer_but_later_ones_refresh_again():
    """A hundred sensors validating one connection at once: one token request, still a real proof."""
    endpoint = FakeTokenEndpoint()
    store = MemoryTokenStore()
    credentials = make_credentials()

    async def main() -> list[Any]:
        managers = [make_manager(credentials, endpoint, store) for _ in range(20)]
        return await asyncio.gather(*(m.aget_token(force_refresh=True) for m in managers))

    results = asyncio.run(main())
    assert len(endpoint.requests) == 1
    assert len({r.access_token for r in results}) == 1
    # Each caller's report still sees the rotation the shared refresh made.
    assert all(r.refresh_rotated_at is not None for r in results)

    # A forced refresh that starts after that answer refreshes again: old answers prove nothing new.
    make_manager(credentials, endpoint, store).get_token(force_refresh=True)
    assert len(endpoint.requests) == 2


def test_a_token_minted_with_another_secret_is_not_reused_by_a_forced_refresh():
    endpoint = FakeTokenEndpoint()
    store = MemoryTokenStore()
    make_manager(make_credentials(), endpoint, store).get_token(force_refresh=True)
    other = make_manager(make_credentials(password="Qx~8Q~ANOTHER-SECRET-VALUE-unit-test-9"), endpoint, store)
    assert other._cached(True, None, since=0.0) is None
    assert make_manager(make_credentials(), endpoint, store)._cached(True, None, since=0.0) is not None
