"""P1: token requests for 200 ``get_access_token()`` calls over 8 processes within one token lifetime.

Goal: 1. The 8 processes start together on a cold store; each calls the hook 25 times. With the
shared store (a file here; an Airflow Variable inside Airflow) one process refreshes under the
lock and the others read its token. For comparison the same run with a per-process cache only
(``MSADS_TOKEN_STORE=memory``): one request per process. Without any cache: one per call.

Run: ``python benchmarks/bench_p1_token_requests.py [--quick]``.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

CONN_ID = "msads_bench"


def _round(emulator: MicrosoftAdsEmulator, processes: int, calls: int, store: str) -> dict[str, Any]:
    emulator.reset_counters()
    env = common.child_env(
        {
            "AIRFLOW_CONN_MSADS_BENCH": emulator.connection_uri_json(),
            "MSADS_TOKEN_STORE": store,
            "MSADS_TOKEN_STORE_DIR": tempfile.mkdtemp(prefix="msads-bench-p1-"),
        }
    )
    children = [common.spawn([common.CHILD, "p1", CONN_ID, str(calls)], env) for _ in range(processes)]
    lines = common.run_together(children)
    answers = [json.loads(line) for line in lines]
    return {
        "token_requests": emulator.counters["token.refresh_token"],
        "distinct_tokens_per_process": max(a["distinct_tokens"] for a in answers),
        "slowest_process_s": max(a["seconds"] for a in answers),
    }


def run(quick: bool = False) -> dict[str, Any]:
    processes, calls = (2, 5) if quick else (8, 25)
    with MicrosoftAdsEmulator() as emulator:
        emulator.latency = 0.05  # a realistic token endpoint: the first refresh is in flight a while
        shared = _round(emulator, processes, calls, "file")
        # Quick mode does not measure it: with a per-process cache each process refreshes once.
        per_process = {"token_requests": processes} if quick else _round(emulator, processes, calls, "memory")
    figures = {
        "processes": processes,
        "calls": processes * calls,
        "token_requests_shared_store": shared["token_requests"],
        "token_requests_per_process_cache": per_process["token_requests"],
        "token_requests_no_cache": processes * calls,
        "goal": 1,
        "goal_met": shared["token_requests"] == 1,
    }
    common.report(
        f"P1 token requests for {processes * calls} get_access_token() calls over {processes} processes",
        [
            ("shared token store (this provider)", f"{figures['token_requests_shared_store']}  (goal: 1)"),
            (
                "per-process cache only",
                f"{figures['token_requests_per_process_cache']}" + ("  (computed in quick mode)" if quick else ""),
            ),
            ("no cache", figures["token_requests_no_cache"]),
        ],
    )
    return figures


if __name__ == "__main__":
    common.main(run)
