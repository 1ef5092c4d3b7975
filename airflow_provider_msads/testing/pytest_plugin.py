"""pytest plugin: a started Microsoft emulator per test (``msads_emulator``) and a factory.

Registered through the ``pytest11`` entry point, so it loads in *every* pytest run of an
environment where the provider is installed: it imports nothing beyond pytest at module level and
loads the emulator only when a test asks for a fixture.

Example::

    def test_my_dag(msads_emulator, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", msads_emulator.connection_uri_json())
        ...

    @pytest.mark.msads_emulator(strict_rotation=True, access_token_lifetime=60)
    def test_strict(msads_emulator): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "msads_emulator(**kwargs): keyword arguments for the MicrosoftAdsEmulator built by the "
        "msads_emulator fixture (access_token_lifetime, strict_rotation, seed, ...).",
    )


@pytest.fixture
def msads_emulator(request: pytest.FixtureRequest) -> Iterator[MicrosoftAdsEmulator]:
    """A started emulator for this test, stopped afterwards; configure it with the marker."""
    from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

    marker = request.node.get_closest_marker("msads_emulator")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    with MicrosoftAdsEmulator(**kwargs) as emulator:
        yield emulator


@pytest.fixture
def msads_emulator_factory() -> Iterator[Callable[..., MicrosoftAdsEmulator]]:
    """Make extra started emulators (``factory(strict_rotation=True)``); all stop after the test."""
    from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

    made: list[MicrosoftAdsEmulator] = []

    def make(**kwargs: Any) -> MicrosoftAdsEmulator:
        emulator = MicrosoftAdsEmulator(**kwargs).start()
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.stop()
