"""P6: 100 deferred report operators waiting in one triggerer, against one.

What the triggerer does for a deferred ``MicrosoftAdsReportOperator``: run
``MicrosoftAdsReportTrigger.run()`` on its event loop until the first event. Here 100 triggers
(one per report, all on one connection, as an ingestion DAG's mapped tasks would be) run on one
event loop until each fires; the emulator answers every request after 100 ms and keeps each report
Pending for 3 polls, polled every second. Measured: wall time of 100 against the median of one.
Goal: close to 1 (the wait is Microsoft's, not ours). The triggerer's own plumbing (database,
supervisor) is not part of this figure.

Run: ``python benchmarks/bench_p6_report_triggers.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

LATENCY = 0.1
PENDING_POLLS = 3
POLL_INTERVAL = 1.0


def _submit(emulator: MicrosoftAdsEmulator, count: int) -> list[str]:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.reporting import build_report_request

    hook = MicrosoftAdsHook(msads_conn_id="msads_bench_p6")
    request = build_report_request(
        report_type="CampaignPerformanceReportRequest",
        columns=["TimePeriod", "CampaignId", "Impressions"],
        account_ids=[emulator.account.id],
        date_from="2026-10-01",
        date_to="2026-10-01",
    )
    ids = []
    for _ in range(count):
        emulator.configure_next_report(pending_polls=PENDING_POLLS)
        ids.append(hook.submit_report(request))
    return ids


def _wait_all(ids: list[str]) -> tuple[float, list[str]]:
    from airflow_provider_msads.triggers.reporting import MicrosoftAdsReportTrigger

    async def first(request_id: str) -> str:
        trigger = MicrosoftAdsReportTrigger(
            request_id=request_id, msads_conn_id="msads_bench_p6", poll_interval=POLL_INTERVAL, timeout=600
        )
        event = await anext(trigger.run())
        return str(event.payload["status"])

    async def main() -> list[str]:
        return list(await asyncio.gather(*(first(i) for i in ids)))

    started = time.perf_counter()
    statuses = asyncio.run(main())
    return time.perf_counter() - started, statuses


def run(quick: bool = False) -> dict[str, Any]:
    n = 10 if quick else 100
    repeats = 1 if quick else 3
    with MicrosoftAdsEmulator() as emulator:
        conn = emulator.connection_dict()
        conn["extra"]["reporting_url"] = emulator.reporting_url
        os.environ["AIRFLOW_CONN_MSADS_BENCH_P6"] = json.dumps(conn)
        os.environ["MSADS_TOKEN_STORE"] = "memory"
        try:
            _wait_all(_submit(emulator, 1))  # imports, token, first TLS context
            emulator.latency = LATENCY
            one = common.median(_wait_all(_submit(emulator, 1))[0] for _ in range(repeats))
            ids = _submit(emulator, n)
            polls_before = emulator.report_polls
            many, statuses = _wait_all(ids)
            polls = emulator.report_polls - polls_before
        finally:
            os.environ.pop("AIRFLOW_CONN_MSADS_BENCH_P6", None)
            os.environ.pop("MSADS_TOKEN_STORE", None)
    if statuses != ["success"] * n:
        raise RuntimeError(f"not every trigger succeeded: {sorted(set(statuses))}")
    ratio = many / one
    figures = {
        "triggers": n,
        "latency_ms": LATENCY * 1000,
        "pending_polls": PENDING_POLLS,
        "poll_interval_s": POLL_INTERVAL,
        "one_s": round(one, 3),
        "concurrent_s": round(many, 3),
        "ratio_concurrent_to_one": round(ratio, 2),
        "polls": polls,
    }
    common.report(
        f"P6 {n} report triggers on one event loop ({int(LATENCY * 1000)} ms per answer, "
        f"{PENDING_POLLS} Pending polls, {POLL_INTERVAL:.0f} s apart)",
        [
            (f"one trigger (median of {repeats})", f"{one:.2f} s"),
            (f"{n} triggers at once", f"{many:.2f} s  = {ratio:.2f} x one"),
            ("polls sent for them", str(polls)),
        ],
    )
    return figures


if __name__ == "__main__":
    common.main(run)
