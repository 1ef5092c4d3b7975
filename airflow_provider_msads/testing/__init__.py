"""Microsoft emulator and pytest plugin for offline tests.

``from airflow_provider_msads.testing import MicrosoftAdsEmulator`` works, but the emulator module
is only imported on first use: this package is imported by the pytest plugin in every pytest run.

May import: nothing of the provider outside ``testing`` (the emulator models Microsoft, not our
client), so it can never agree with a bug of ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_msads.testing.emulator import (
        EmulatorAccount,
        EmulatorApp,
        EmulatorReport,
        MicrosoftAdsEmulator,
    )

__all__ = ["EmulatorAccount", "EmulatorApp", "EmulatorReport", "MicrosoftAdsEmulator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from airflow_provider_msads.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
