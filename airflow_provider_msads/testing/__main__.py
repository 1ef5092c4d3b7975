"""``python -m airflow_provider_msads.testing``: run the Microsoft emulator until SIGINT/SIGTERM.

For demos and manual checks: it prints the URLs and an ``AIRFLOW_CONN_MSADS_DEFAULT`` line that
points an Airflow deployment at the emulator. Loopback only: the printed credentials are fake,
but they do work against the emulator, so it must not be reachable from the network.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_msads.testing",
        description="Run a local emulator of the Microsoft identity platform and the Microsoft Advertising "
        "Customer Management and Reporting APIs v13 (Submit, Poll, expiring report download links).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--access-token-lifetime", type=int, default=3600, help="expires_in of access tokens")
    parser.add_argument(
        "--strict-rotation",
        action="store_true",
        help="revoke a refresh token once its rotated successor has been used",
    )
    parser.add_argument("--seed", type=int, default=None, help="reproducible ids, secrets and tokens")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error(f"--host must be a loopback address (127.0.0.1, ::1, localhost), not {args.host!r}")

    from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    emulator = MicrosoftAdsEmulator(
        host=args.host,
        port=args.port,
        access_token_lifetime=args.access_token_lifetime,
        strict_rotation=args.strict_rotation,
        seed=args.seed,
    )
    with emulator:
        lines = [
            f"Microsoft Ads emulator running at {emulator.base_url} (Ctrl+C to stop)",
            f"MSADS_EMULATOR_BASE_URL={emulator.base_url}",
            f"MSADS_EMULATOR_TOKEN_URL={emulator.token_url()}",
            f"MSADS_EMULATOR_AUTHORIZE_URL={emulator.authorize_url()}",
            f"MSADS_EMULATOR_CUSTOMER_MANAGEMENT_URL={emulator.customer_management_url}",
            f"MSADS_EMULATOR_REPORTING_URL={emulator.reporting_url}",
            "# The connection below holds FAKE credentials minted by this emulator: not secrets,",
            "# valid only against this emulator process.",
            f"AIRFLOW_CONN_MSADS_DEFAULT='{emulator.connection_uri_json()}'",
        ]
        print("\n".join(lines), flush=True)
        while not stop.wait(0.2):
            pass
    print("Microsoft Ads emulator stopped.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
