"""P7: 200 concurrent ``aget_access_token()`` on one connection, on a loop with 2 threads.

The triggerer's situation: every deferred sensor of a deployment shares one event loop whose
default executor is small (min(32, cores + 4); here 2). The async path queues callers on an
``asyncio.Lock`` and takes the machine lock with non-blocking tries, so no thread waits for a
lock. Figures: wall time of 200 callers against one caller (a ratio), and token requests
(goal: 1). The emulator answers token requests after 100 ms.

Run: ``python benchmarks/bench_p7_async_callers.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

LATENCY = 0.1


def _timed(callers: int, threads: int, store_dir: str) -> float:
    from airflow_provider_msads.auth import clear_process_cache
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.token_store import FileTokenStore

    clear_process_cache()
    store = FileTokenStore(store_dir)

    async def main() -> float:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads))
        hooks = [MicrosoftAdsHook(msads_conn_id="msads_default", token_store=store) for _ in range(callers)]
        started = time.perf_counter()
        tokens = await asyncio.wait_for(asyncio.gather(*(h.aget_access_token() for h in hooks)), 300)
        elapsed = time.perf_counter() - started
        if len(set(tokens)) != 1:
            raise RuntimeError("callers got different access tokens")
        return elapsed

    return asyncio.run(main())


def run(quick: bool = False) -> dict[str, Any]:
    callers, rounds = (50, 1) if quick else (200, 5)
    with MicrosoftAdsEmulator() as emulator:
        emulator.latency = LATENCY
        os.environ["AIRFLOW_CONN_MSADS_DEFAULT"] = emulator.connection_uri_json()
        try:
            one, many, requests = [], [], []
            for _ in range(rounds):
                emulator.reset_counters()
                one.append(_timed(1, 2, tempfile.mkdtemp(prefix="msads-bench-p7-")))
                emulator.reset_counters()
                many.append(_timed(callers, 2, tempfile.mkdtemp(prefix="msads-bench-p7-")))
                requests.append(emulator.counters["token.refresh_token"])
        finally:
            os.environ.pop("AIRFLOW_CONN_MSADS_DEFAULT", None)
    t_one, t_many = common.median(one), common.median(many)
    figures = {
        "callers": callers,
        "threads": 2,
        "one_caller_ms": round(t_one * 1000, 1),
        "all_callers_ms": round(t_many * 1000, 1),
        "ratio_all_to_one": round(t_many / t_one, 2),
        "token_requests": max(requests),
    }
    common.report(
        f"P7 {callers} concurrent aget_access_token() on one connection, 2 threads, {LATENCY * 1000:.0f} ms latency",
        [
            (f"one caller (median of {rounds})", common.ms(t_one)),
            (f"{callers} callers at once (median of {rounds})", common.ms(t_many)),
            ("ratio", f"{t_many / t_one:.2f}x"),
            ("token requests per round (max)", max(requests)),
        ],
    )
    return figures


if __name__ == "__main__":
    common.main(run)
