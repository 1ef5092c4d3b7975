"""Airflow 3.0's supervisor channel has no lock: calls that may use it go one at a time from a loop.

Before the fix, a Bulk task downloading two accounts at once on Airflow 3.0 read the connection in
two worker threads together; under ``dag.test()`` the run then failed with ``NameError:
SUPERVISOR_COMMS`` (CI on 3.0.6), and in a real worker the two answers could cross.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from airflow_provider_msads.compat import channel


@pytest.fixture
def airflow_3_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel, "channel_is_thread_safe", lambda: False)


class Probe:
    """A blocking call that records how many run at once; ``gate`` holds them until released."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self.started = 0
        self.guard = threading.Lock()
        self.gate = threading.Event()

    def __call__(self, value: int) -> int:
        with self.guard:
            self.active += 1
            self.started += 1
            self.most = max(self.most, self.active)
        self.gate.wait(30)
        with self.guard:
            self.active -= 1
        return value * 2


async def _until(condition) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("not reached")


def test_only_airflow_3_0_needs_it() -> None:
    from airflow import __version__

    assert channel.channel_is_thread_safe() is (not __version__.startswith("3.0."))


def test_on_airflow_3_0_the_calls_run_one_at_a_time(airflow_3_0) -> None:
    probe = Probe()

    async def main() -> list[int]:
        calls = [asyncio.ensure_future(channel.to_thread_on_channel(probe, n)) for n in range(20)]
        await _until(lambda: probe.started == 1)
        for _ in range(50):  # the others had every chance to start a thread
            await asyncio.sleep(0)
        assert probe.started == 1
        probe.gate.set()
        return await asyncio.gather(*calls)

    assert asyncio.run(main()) == [n * 2 for n in range(20)]
    assert probe.most == 1


def test_elsewhere_they_run_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel, "channel_is_thread_safe", lambda: True)
    probe = Probe()

    async def main() -> None:
        calls = [asyncio.ensure_future(channel.to_thread_on_channel(probe, n)) for n in range(3)]
        await _until(lambda: probe.started == 3)
        probe.gate.set()
        await asyncio.gather(*calls)

    asyncio.run(main())
    assert probe.most == 3


def test_a_cancelled_caller_keeps_the_lock_until_its_thread_is_done(airflow_3_0) -> None:
    probe = Probe()

    async def main() -> int:
        first = asyncio.ensure_future(channel.to_thread_on_channel(probe, 1))
        await _until(lambda: probe.started == 1)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first  # the caller is free at once ...
        second = asyncio.ensure_future(channel.to_thread_on_channel(probe, 2))
        for _ in range(50):
            await asyncio.sleep(0)
        assert probe.started == 1  # ... but the next call waits for the first thread
        probe.gate.set()
        return await second

    assert asyncio.run(main()) == 4
    assert probe.most == 1


def test_a_failing_call_raises_and_frees_the_lock(airflow_3_0) -> None:
    def boom() -> None:
        raise ValueError("no such connection")

    async def main() -> int:
        with pytest.raises(ValueError, match="no such connection"):
            await channel.to_thread_on_channel(boom)
        return await channel.to_thread_on_channel(int, "7")

    assert asyncio.run(main()) == 7
