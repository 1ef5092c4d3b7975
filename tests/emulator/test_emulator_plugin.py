"""The pytest plugin as users meet it: fixtures, the marker, cheap import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

pytest_plugins = ["pytester"]


def test_fixture_yields_a_running_emulator(msads_emulator: MicrosoftAdsEmulator) -> None:
    assert msads_emulator.running
    assert msads_emulator.base_url.startswith("http://127.0.0.1:")
    assert msads_emulator.strict_rotation is False


@pytest.mark.msads_emulator(strict_rotation=True, access_token_lifetime=60)
def test_marker_configures_the_fixture(msads_emulator: MicrosoftAdsEmulator) -> None:
    assert msads_emulator.strict_rotation is True
    assert msads_emulator.access_token_lifetime == 60


def test_factory_makes_independent_emulators(
    msads_emulator: MicrosoftAdsEmulator, msads_emulator_factory: Callable[..., MicrosoftAdsEmulator]
) -> None:
    other = msads_emulator_factory(seed=1)
    assert other.running
    assert other.base_url != msads_emulator.base_url
    assert other.app.client_id != msads_emulator.app.client_id


def test_connection_helpers(msads_emulator: MicrosoftAdsEmulator) -> None:
    refresh = msads_emulator.issue_refresh_token()
    extra = msads_emulator.connection_extra(refresh)
    assert extra == {
        "account_id": msads_emulator.account.id,
        "customer_id": msads_emulator.customer_id,
        "developer_token": msads_emulator.developer_token,
        "refresh_token": refresh,
        "environment": "production",
        "tenant": "common",
        "token_url": msads_emulator.token_url(),
        "authorize_url": msads_emulator.authorize_url(),
        "customer_management_url": msads_emulator.customer_management_url,
        "reporting_url": msads_emulator.reporting_url,
        "bulk_url": msads_emulator.bulk_url,
        "client_secret_expires_on": "",
    }
    assert msads_emulator.connection_dict(refresh) == {
        "conn_type": "msads",
        "login": msads_emulator.app.client_id,
        "password": msads_emulator.app.client_secret,
        "extra": extra,
    }
    minted = msads_emulator.connection_extra()["refresh_token"]
    assert msads_emulator.is_refresh_token_valid(minted)
    assert '"conn_type": "msads"' in msads_emulator.connection_uri_json()


def test_fixtures_stop_their_emulators(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx, pytest

        seen = []

        def test_use(msads_emulator, msads_emulator_factory):
            seen.extend([msads_emulator, msads_emulator_factory()])

        def test_stopped():
            assert len(seen) == 2
            for emulator in seen:
                assert not emulator.running
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_stopped_emulator_refuses_connections() -> None:
    emulator = MicrosoftAdsEmulator().start()
    url = emulator.token_url()
    emulator.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, data={})
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.base_url


def test_plugin_import_is_cheap() -> None:
    """The plugin loads in every pytest run: it must pull in neither Airflow nor the emulator."""
    code = (
        "import sys, airflow_provider_msads.testing.pytest_plugin\n"
        "heavy = [m for m in ('airflow', 'airflow_provider_msads.testing.emulator', 'httpx') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_package_exports_the_emulator_lazily() -> None:
    from airflow_provider_msads import testing

    assert testing.MicrosoftAdsEmulator is MicrosoftAdsEmulator
    with pytest.raises(AttributeError):
        _ = testing.Nope
