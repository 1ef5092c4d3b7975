"""P3: ``get_access_token()`` with a warm cache, in one process and in a fresh process.

* In one process: after the first call, every call is served from the process cache (no lock, no
  store read, no network). Median over many calls.
* In a fresh process whose token store already holds a fresh token (another worker refreshed):
  the first call reads the connection, takes the lock, reads and decrypts the store; no token
  request. Median over several fresh processes; the store read alone is shown too.

Run: ``python benchmarks/bench_p3_warm_cache.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

CONN_ID = "msads_bench"


def run(quick: bool = False) -> dict[str, Any]:
    calls, processes = (200, 1) if quick else (5000, 5)
    store_dir = tempfile.mkdtemp(prefix="msads-bench-p3-")
    with MicrosoftAdsEmulator() as emulator:
        conn = emulator.connection_uri_json()
        os.environ["AIRFLOW_CONN_MSADS_BENCH"] = conn
        os.environ["MSADS_TOKEN_STORE"] = "file"
        os.environ["MSADS_TOKEN_STORE_DIR"] = store_dir
        try:
            from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

            hook = MicrosoftAdsHook(msads_conn_id=CONN_ID)
            token = hook.get_access_token()  # the one refresh; the store now holds a fresh token
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                hook.get_access_token()
                samples.append(time.perf_counter() - started)
            warm = common.median(samples)

            env = common.child_env()
            fresh = [json.loads(common.run_child([common.CHILD, "p3", CONN_ID], env)) for _ in range(processes)]
            requests = emulator.counters["token.refresh_token"]
        finally:
            for name in ("AIRFLOW_CONN_MSADS_BENCH", "MSADS_TOKEN_STORE", "MSADS_TOKEN_STORE_DIR"):
                os.environ.pop(name, None)
    if not token or requests != 1:
        raise RuntimeError(f"expected one token request in all, saw {requests}")
    first = common.median(f["first_call"] for f in fresh)
    store_read = common.median(f["store_read"] for f in fresh)
    second = common.median(f["second_call"] for f in fresh)
    figures = {
        "warm_in_process_us": round(warm * 1e6, 2),
        "fresh_process_first_call_ms": round(first * 1000, 2),
        "fresh_process_store_read_ms": round(store_read * 1000, 2),
        "fresh_process_second_call_us": round(second * 1e6, 2),
        "token_requests": requests,
    }
    common.report(
        "P3 get_access_token() with a warm cache",
        [
            (f"same process, median of {calls} calls", common.us(warm)),
            (f"fresh process, first call (median of {processes})", f"{common.ms(first)}  (reads the connection too)"),
            ("fresh process, store read + decrypt only", common.ms(store_read)),
            ("fresh process, second call", common.us(second)),
            ("token requests in all", requests),
        ],
    )
    return figures


if __name__ == "__main__":
    common.main(run)
