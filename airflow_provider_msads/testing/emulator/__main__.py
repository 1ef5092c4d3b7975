"""``python -m airflow_provider_msads.testing.emulator``: run the Microsoft emulator until SIGINT/SIGTERM.

For demos, manual checks and tests in other languages: the command line takes what the Python API
takes (report size, accounts, pending polls, time zone, fault injection) and prints the URLs and
an ``AIRFLOW_CONN_MSADS_DEFAULT`` line (or, with ``--json``, one JSON document) that points an
Airflow deployment at the emulator. Loopback only: the printed credentials are fake, but they do
work against the emulator, so it must not be reachable from the network.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

_PROG = "python -m airflow_provider_msads.testing.emulator"
# inject(...) keyword arguments a --inject spec may set, with their types.
_INJECT_KEYS: dict[str, type] = {
    "count": int,
    "status": int,
    "code": int,
    "retry_after": float,
    "delay": float,
    "operation": str,
    "error": str,
    "body": str,
}
_INJECT_HELP = """\
Queue a misbehaviour, as MicrosoftAdsEmulator.inject() does; repeatable, FIFO per endpoint.
Form: ENDPOINT:KIND[:KEY=VALUE...]. ENDPOINT is token, authorize, api, reporting, bulk or download;
KIND one of aadsts, oauth, msa_invalid_grant, fault, status, throttle, html, empty, malformed,
huge, reset, timeout, latency, expired_link, xml_error, two_entries, zip_bomb, not_zip; KEY one
of count, status, code, retry_after, delay, operation, error, body (examples below)."""
_EPILOG = """examples:
  %(prog)s --accounts 3 --rows 100000 --pending-polls 2
  %(prog)s --inject reporting:fault:code=117:count=2
  %(prog)s --inject reporting:fault:code=2004:operation=SubmitGenerateReport
  %(prog)s --inject token:aadsts:code=70008 --inject download:expired_link
  %(prog)s --bulk-tree 10,10,10 --inject bulk:fault:code=4204:operation=DownloadCampaignsByAccountIds
  %(prog)s --json
"""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_injection(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``ENDPOINT:KIND[:KEY=VALUE...]`` -> (endpoint, kind, keyword arguments of ``inject``)."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"{spec!r} is not ENDPOINT:KIND[:KEY=VALUE...], e.g. reporting:fault:code=117")
    options: dict[str, Any] = {}
    for part in parts[2:]:
        key, sep, value = part.partition("=")
        if not sep or key not in _INJECT_KEYS:
            raise ValueError(f"{part!r} in {spec!r}: write KEY=VALUE with KEY one of {', '.join(_INJECT_KEYS)}")
        try:
            options[key] = _INJECT_KEYS[key](value)
        except ValueError as exc:
            kind = "a whole number" if _INJECT_KEYS[key] is int else "a number"
            raise ValueError(f"{key}={value!r} in {spec!r} must be {kind}") from exc
    if "body" in options:
        options["body"] = str(options["body"]).encode()
    return parts[0], parts[1], options


def _bulk_tree(value: str) -> tuple[int, ...]:
    """``C,G,K[,A]``: campaigns, ad groups per campaign, keywords (and ads) per ad group."""
    try:
        sizes = tuple(int(part) for part in value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not C,G,K[,A] (whole numbers), e.g. 10,10,10") from exc
    if len(sizes) not in (3, 4) or min(sizes[:2]) < 1 or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not C,G,K[,A] with C and G at least 1, e.g. 10,10,10")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Run a local emulator of the Microsoft identity platform and the Microsoft Advertising "
        "Customer Management, Reporting and Bulk APIs v13 (Submit, Poll, expiring report download links; "
        "bulk downloads of an entity tree of any size).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    world = parser.add_argument_group("accounts")
    world.add_argument(
        "--accounts",
        type=int,
        default=1,
        metavar="N",
        help="accounts under the user's customer (default 1; each has 3 campaigns of 2 ad groups)",
    )
    world.add_argument(
        "--account-time-zone",
        default=None,
        metavar="ZONE",
        help="time zone of every account (default PacificTimeUSCanadaTijuana); decides error 2004",
    )
    reports = parser.add_argument_group("reports")
    reports.add_argument(
        "--rows", type=int, default=None, metavar="N", help="every report has exactly N rows (default: natural size)"
    )
    reports.add_argument(
        "--pending-polls", type=int, default=1, metavar="N", help="Poll answers Pending N times first (default 1)"
    )
    reports.add_argument(
        "--empty-url",
        choices=("null", "missing"),
        default="null",
        help="how Poll shows an empty report: ReportDownloadUrl null (default) or missing",
    )
    reports.add_argument(
        "--link-lifetime", type=float, default=None, metavar="SECONDS", help="download links live this long (300)"
    )
    bulk = parser.add_argument_group("bulk downloads")
    bulk.add_argument(
        "--bulk-tree",
        type=_bulk_tree,
        default=None,
        metavar="C,G,K[,A]",
        help="every account's entity tree: C campaigns x G ad groups x K keywords (and A ads) each "
        "(default 3,2,2,1); e.g. 10,10,10 gives 1,000 keywords",
    )
    bulk.add_argument(
        "--bulk-pending-polls", type=int, default=None, metavar="N", help="InProgress N times first (default 1)"
    )
    bulk.add_argument(
        "--bulk-keyword-limit",
        type=int,
        default=None,
        metavar="N",
        help="accounts with more keywords answer 3207 AccountTooBigToDownload (default 4,000,000)",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument("--inject", action="append", default=[], metavar="SPEC", help=_INJECT_HELP)
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="delay before every answer")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document (urls, connection with every form field, account and campaign ids)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error(f"--host must be a loopback address (127.0.0.1, ::1, localhost), not {args.host!r}")
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    if args.rows is not None and args.rows < 0:
        parser.error("--rows must be 0 or more")
    if args.pending_polls < 0:
        parser.error("--pending-polls must be 0 or more")

    from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator
    from airflow_provider_msads.testing.emulator._reporting_catalogue import TIME_ZONES

    if args.account_time_zone is not None and args.account_time_zone not in TIME_ZONES:
        parser.error(
            "--account-time-zone must be a ReportTimeZone value such as EasternTimeUSCanada, "
            f"not {args.account_time_zone!r}"
        )

    emulator = MicrosoftAdsEmulator(
        host=args.host,
        port=args.port,
        access_token_lifetime=args.access_token_lifetime,
        strict_rotation=args.strict_rotation,
        seed=args.seed,
    )
    for _ in range(args.accounts - 1):
        emulator.add_account()
    accounts = [a for a in emulator._accounts.values() if a.parent_customer_id == emulator.customer_id]
    if args.account_time_zone is not None:
        for account in accounts:
            account.time_zone = args.account_time_zone
    emulator.set_report_size(args.rows)
    emulator.report_pending_polls = args.pending_polls
    emulator.report_empty_url = args.empty_url
    emulator.latency = args.latency
    if args.link_lifetime is not None:
        emulator.report_link_lifetime = args.link_lifetime
    if args.bulk_tree is not None:
        names = ("campaigns", "ad_groups_per_campaign", "keywords_per_ad_group", "ads_per_ad_group")
        emulator.bulk.set_tree(**dict(zip(names[: len(args.bulk_tree)], args.bulk_tree, strict=True)))
    if args.bulk_pending_polls is not None:
        emulator.bulk.pending_polls = args.bulk_pending_polls
    if args.bulk_keyword_limit is not None:
        emulator.bulk.keyword_limit = args.bulk_keyword_limit
    for spec in args.inject:
        try:
            endpoint, kind, options = parse_injection(spec)
            emulator.inject(endpoint, kind, **options)
        except (TypeError, ValueError) as exc:
            parser.error(f"--inject {spec}: {exc}")

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    with emulator:
        account_ids = [a.id for a in accounts]
        if args.json:
            document = {
                "base_url": emulator.base_url,
                "token_url": emulator.token_url(),
                "authorize_url": emulator.authorize_url(),
                "customer_management_url": emulator.customer_management_url,
                "reporting_url": emulator.reporting_url,
                "bulk_url": emulator.bulk_url,
                "connection": emulator.connection_dict(),
                "account_ids": account_ids,
                "campaign_ids": {a: emulator.campaign_ids(a) for a in account_ids},
            }
            print(json.dumps(document), flush=True)
        else:
            lines = [
                f"Microsoft Ads emulator running at {emulator.base_url} (Ctrl+C to stop)",
                f"MSADS_EMULATOR_BASE_URL={emulator.base_url}",
                f"MSADS_EMULATOR_TOKEN_URL={emulator.token_url()}",
                f"MSADS_EMULATOR_AUTHORIZE_URL={emulator.authorize_url()}",
                f"MSADS_EMULATOR_CUSTOMER_MANAGEMENT_URL={emulator.customer_management_url}",
                f"MSADS_EMULATOR_REPORTING_URL={emulator.reporting_url}",
                f"MSADS_EMULATOR_BULK_URL={emulator.bulk_url}",
                f"MSADS_EMULATOR_ACCOUNT_IDS={','.join(account_ids)}",
                f"MSADS_EMULATOR_CAMPAIGN_IDS={json.dumps({a: emulator.campaign_ids(a) for a in account_ids})}",
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
