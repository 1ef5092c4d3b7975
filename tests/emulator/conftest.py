"""Fixtures for the emulator tests.

The ``msads_emulator`` / ``msads_emulator_factory`` fixtures come from the package's pytest
plugin (entry point ``pytest11``), exactly as users get them.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from _support.emulator import Driver, FakeClock

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """One client for the session: building an httpx client (TLS context) costs ~50 ms."""
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def ms(msads_emulator: MicrosoftAdsEmulator, http: httpx.Client) -> Driver:
    return Driver(msads_emulator, http)


@pytest.fixture
def clock(msads_emulator: MicrosoftAdsEmulator) -> FakeClock:
    """Install a fake clock before any token of the test is issued."""
    fake = FakeClock()
    msads_emulator.clock = fake
    return fake
