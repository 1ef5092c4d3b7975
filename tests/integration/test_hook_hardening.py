"""Issue 10 against the emulator over real sockets: the async path under load, proxies, origins.

Each of these hung, leaked or failed on the code before the fix (see the issue): the async lock
waited in worker threads that its own holder needed, loopback traffic followed HTTPS_PROXY, and
the hook's clients sent the developer token to any host.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.token_store import FileTokenStore, MachineLock, storage_key


def _run_with_threads(threads: int, main) -> object:
    """``asyncio.run(main())`` on a loop whose default executor has ``threads`` threads (a small triggerer)."""

    async def wrapper() -> object:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
        return await main()

    return asyncio.run(wrapper())


async def _until(condition, timeout: float = 30.0) -> None:
    """Wait on the loop until ``condition()`` holds (a state, not a duration, decides)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached within %s s" % timeout)
        await asyncio.sleep(0.005)


def test_200_concurrent_async_callers_with_2_threads_one_token_request(msads_emulator, msads_conn, tmp_path: Path):
    msads_emulator.latency = 0.2  # every caller arrives while the first refresh is in flight
    store = FileTokenStore(tmp_path / "store")  # the cross-process file lock is taken too

    async def main() -> list[str]:
        hooks = [MicrosoftAdsHook(token_store=store) for _ in range(200)]
        return await asyncio.wait_for(asyncio.gather(*(h.aget_access_token() for h in hooks)), 120)

    tokens = _run_with_threads(2, main)
    assert set(tokens) == {msads_emulator.issued_access_tokens[-1]}
    assert msads_emulator.counters["token.refresh_token"] == 1


def test_cancelled_waiters_leave_the_lock_free(msads_emulator, msads_conn, tmp_path: Path):
    msads_emulator.latency = 0.5
    store = FileTokenStore(tmp_path / "store")

    async def main() -> str:
        first = asyncio.ensure_future(MicrosoftAdsHook(token_store=store).aget_access_token())
        # Only once the first caller's refresh is at the emulator (it holds the lock) do the others
        # start: started together, any of them may win the lock (their connection lookups run in
        # the executor's threads), and a winner cancelled mid-request is a different test.
        await _until(lambda: msads_emulator.counters["token.refresh_token"] == 1)
        waiters = [asyncio.ensure_future(MicrosoftAdsHook(token_store=store).aget_access_token()) for _ in range(50)]
        await asyncio.sleep(0.1)  # let them queue behind it (the assertions hold however far they got)
        for waiter in waiters:
            waiter.cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        token = await asyncio.wait_for(first, 60)
        # Nobody holds the machine lock or its thread half now: a fresh try succeeds at once.
        lock = store.lock(storage_key("msads_default"))
        assert lock.try_acquire()
        lock.release()
        # And a cancelled holder releases it too.
        msads_emulator.expire_access_tokens()
        holder = asyncio.ensure_future(MicrosoftAdsHook(token_store=store).token_manager.aget_token(force_refresh=True))
        await _until(lambda: msads_emulator.counters["token.refresh_token"] == 2)  # holds the lock, waits for the answer
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        assert isinstance(lock, MachineLock)
        assert lock.try_acquire()
        lock.release()
        return token

    assert _run_with_threads(2, main) == msads_emulator.issued_access_tokens[0]


def test_60_hook_calls_with_4_threads_and_sync_callers_beside_them(msads_emulator, msads_conn, tmp_path: Path):
    """Async callers on the loop and sync callers in threads share one connection without a deadlock."""
    msads_emulator.latency = 0.1
    store = FileTokenStore(tmp_path / "store")

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        async_calls = [MicrosoftAdsHook(token_store=store).aget_access_token() for _ in range(60)]
        sync_calls = [
            loop.run_in_executor(None, MicrosoftAdsHook(token_store=store).get_access_token) for _ in range(8)
        ]
        return await asyncio.wait_for(asyncio.gather(*async_calls, *sync_calls), 120)

    tokens = _run_with_threads(4, main)
    assert len(set(tokens)) == 1
    assert msads_emulator.counters["token.refresh_token"] == 1


def test_loopback_never_goes_through_a_proxy(msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch):
    from airflow_provider_msads.token_store import MemoryTokenStore

    dead_proxy = "http://127.0.0.1:9"  # discard port: nothing listens, a proxied request would fail
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    assert hook.get_access_token() == msads_emulator.issued_access_tokens[-1]
    with hook.get_conn() as client:
        assert client.post("User/Query", json={"UserId": None}).status_code == 200

    async def main() -> int:
        async with hook.get_async_conn() as client:
            return (await client.post("User/Query", json={"UserId": None})).status_code

    assert asyncio.run(main()) == 200


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def other_origin() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/report.zip?sig=abc"
    server.shutdown()
    server.server_close()


def test_hook_clients_send_no_credentials_to_another_origin(msads_emulator, msads_conn, other_origin: str):
    from airflow_provider_msads.token_store import MemoryTokenStore

    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    with hook.get_conn() as client:
        assert client.get(other_origin).status_code == 200

    async def main() -> int:
        async with hook.get_async_conn() as client:
            return (await client.get(other_origin)).status_code

    assert asyncio.run(main()) == 200
    assert len(_Recorder.seen) == 2
    for headers in _Recorder.seen:
        for name in ("authorization", "developertoken", "customerid", "customeraccountid"):
            assert name not in headers
    assert msads_emulator.counters["token.refresh_token"] == 0  # not even a token was fetched for it
