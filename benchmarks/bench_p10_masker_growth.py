"""P10: the cost of masking each refreshed token over many refresh cycles of a long-lived triggerer.

A triggerer lives for weeks. Every refresh of a connection's token teaches the provider two new
secrets (the access token and the rotated refresh token), and every one must be masked in logs.
Airflow's masker keeps one regex of every secret it has ever seen and recompiles it on each new one
(issue 21): the cost of the n-th mask grows with n. This benchmark shows the cost per refresh cycle
for as many cycles as a triggerer sees in weeks, before (every token to Airflow's ``mask_secret``,
as the provider did up to 0.x) and after (the provider's bounded masker, ``_masking``).

Part A, in-process, the long run: ``CONNECTIONS`` real ``MicrosoftAdsCredentialsTrigger.run()``
(each a forced refresh, GetUser and GetAccount against the emulator) per cycle on one event loop,
with Airflow's real masker and a ticker coroutine that measures how late the loop wakes it. Per
cycle: the masker's pattern count (Airflow's, and the provider's live set), CPU per new mask (thread
CPU inside the masking call; before, that is the executor thread that compiles the regex), the
loop's worst lag, and the process's RSS. "Before" runs fewer cycles: its cost is quadratic.

Part B, a real ``airflow triggerer`` (Airflow 3.3 metastore layout), the short run: each cycle
defers ``CONNECTIONS`` credential sensors and waits until the triggerer fired them all. Per cycle:
wall time, CPU of the triggerer's processes (supervisor and trigger runner), their RSS. A real
triggerer's masker cannot be read from outside; Part A has those figures.

The emulator's tokens are shorter than Microsoft's (about 130 and 200 characters against ~1.5 KB
access tokens), so "before" understates the regex cost per pattern by a factor of about 5-10.

Run: ``python benchmarks/bench_p10_masker_growth.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

CONNECTIONS = 2


def _rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Meter:
    """Thread CPU spent inside the masking calls, however they are made."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.masks = 0
        self.pending = 0

    def timed(self, function: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args)
            finally:
                self.cpu += time.thread_time() - started
                self.masks += 1

        return wrapper


def _in_process(emulator: MicrosoftAdsEmulator, cycles: int, mode: str) -> list[dict[str, Any]]:
    from airflow_provider_msads.tokens import masking as _masking

    _compat = _masking  # the runtime masking glue moved next to the masker
    from airflow_provider_msads.triggers.msads import MicrosoftAdsCredentialsTrigger

    for masker in _masking.airflow_maskers():
        masker.reset_masker()
    _masking.LIVE_TOKENS.clear()
    meter = _Meter()
    original_runtime, original_quietly = _compat.mask_runtime_secret, _compat._mask_quietly
    if mode == "before":  # the provider up to now: every token to Airflow's mask_secret, off the loop
        os.environ["MSADS_MASKER"] = "airflow"  # and the hook does not install the provider's masker
        _compat._mask_quietly = meter.timed(original_quietly)  # type: ignore[assignment]
        _compat.mask_runtime_secret = _compat._airflow_mask  # type: ignore[assignment]
    else:
        _compat.mask_runtime_secret = meter.timed(original_runtime)  # type: ignore[assignment]
    conn_ids = []
    for i in range(CONNECTIONS):
        conn_id = f"msads_p10_{mode}_{i}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = emulator.connection_uri_json()
        conn_ids.append(conn_id)

    rows: list[dict[str, Any]] = []

    async def main() -> None:
        worst = [0.0]
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.005)
                worst[0] = max(worst[0], time.perf_counter() - started - 0.005)

        tick = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        for cycle in range(1, cycles + 1):
            cpu0, masks0, worst[0] = meter.cpu, meter.masks, 0.0
            process0 = time.process_time()
            triggers = [MicrosoftAdsCredentialsTrigger(c, poke_interval=1, timeout=60) for c in conn_ids]
            events = await asyncio.gather(*(anext(t.run()) for t in triggers))
            assert all(e.payload["status"] == "success" for e in events), events
            # Before, the masking runs in executor threads: the cycle ends when they are done.
            await loop.run_in_executor(None, lambda: None)
            while meter.masks - masks0 < 2 * CONNECTIONS and mode == "before":
                await asyncio.sleep(0.001)
            new_masks = meter.masks - masks0
            rows.append(
                {
                    "cycle": cycle,
                    "airflow_patterns": max((len(m.patterns) for m in _masking.airflow_maskers()), default=0),
                    "provider_live_tokens": len(_masking.LIVE_TOKENS),
                    "cpu_per_mask_ms": round((meter.cpu - cpu0) / max(new_masks, 1) * 1000, 3),
                    "cycle_cpu_ms": round((time.process_time() - process0) * 1000, 1),
                    "worst_loop_lag_ms": round(worst[0] * 1000, 1),
                    "rss_mb": round(_rss_mb(), 1),
                }
            )
        stop.set()
        await tick

    try:
        asyncio.run(main())
    finally:
        _compat.mask_runtime_secret, _compat._mask_quietly = original_runtime, original_quietly  # type: ignore[assignment]
        os.environ.pop("MSADS_MASKER", None)
        for conn_id in conn_ids:
            os.environ.pop(f"AIRFLOW_CONN_{conn_id.upper()}", None)
    return rows


def _real_triggerer(emulator: MicrosoftAdsEmulator, cycles: int, mode: str) -> list[dict[str, Any]]:
    """Part B: a real ``airflow triggerer`` process; each cycle defers CONNECTIONS credential sensors."""
    import psutil

    sys.path.insert(0, str(common.REPO_ROOT / "tests" / "reliability"))
    sys.path.insert(0, str(common.REPO_ROOT / "tests"))
    import test_rel_triggerer as rel

    if not (common.home() / "airflow.db").exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=common.child_env(), check=True, capture_output=True
        )
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    (dags / "msads_triggerer_dags.py").write_text(rel.DAG_SOURCE)
    conns = {f"msads_trig_{n}": emulator.connection_uri_json() for n in range(10)}
    os.environ.update({f"AIRFLOW_CONN_{cid.upper()}": uri for cid, uri in conns.items()})
    env = common.child_env({"AIRFLOW__TRIGGERER__DEFAULT_CAPACITY": "1000"})
    if mode == "before":
        env["MSADS_MASKER"] = "airflow"
    home = common.home()
    log = (home / f"triggerer-{mode}.log").open("w")
    triggerer = subprocess.Popen(
        [sys.executable, "-m", "airflow", "triggerer"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home
    )
    rows: list[dict[str, Any]] = []
    try:
        parent = psutil.Process(triggerer.pid)

        def tree_cpu_rss() -> tuple[float, float]:
            procs = [parent, *parent.children(recursive=True)]
            cpu = rss = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    cpu += t.user + t.system
                    rss += p.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
            return cpu, rss

        # Warm-up: the triggerer's start (import of Airflow) is not a refresh cycle.
        rel._wait_all_fired(rel._defer_all("msads_trig_one", {0: "msads_trig_0"}), 1, triggerer, timeout=300)
        for cycle in range(1, cycles + 1):
            cpu0, _ = tree_cpu_rss()
            started = time.perf_counter()
            run_id = rel._defer_all("msads_trig_one", {0: "msads_trig_0"})
            rel._wait_all_fired(run_id, 1, triggerer, timeout=120)
            cpu1, rss = tree_cpu_rss()
            rows.append(
                {
                    "cycle": cycle,
                    "wall_s": round(time.perf_counter() - started, 2),
                    "triggerer_cpu_ms": round((cpu1 - cpu0) * 1000, 1),
                    "triggerer_rss_mb": round(rss, 1),
                }
            )
    finally:
        triggerer.terminate()
        try:
            triggerer.wait(60)
        except subprocess.TimeoutExpired:
            triggerer.kill()
        log.close()
    return rows


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Medians of the first, middle (40-50 %) and last tenth of the cycles; ``ratio`` is last/middle.

    Flat means a ratio near 1. Middle, not first: until the provider's live set is full (512 tokens,
    cycle 128 here) adding one also sorts a growing set; from then on nothing grows.
    """
    tenth = max(1, len(rows) // 10)
    first = common.median(r[key] for r in rows[:tenth])
    middle = common.median(r[key] for r in rows[4 * tenth : 5 * tenth] or rows[:tenth])
    last = common.median(r[key] for r in rows[-tenth:])
    return {"first": first, "middle": middle, "last": last, "ratio": round(last / middle, 2) if middle else None}


def _table(title: str, rows: list[dict[str, Any]], keys: list[str]) -> None:
    picks = sorted({0, len(rows) // 10, len(rows) // 4, len(rows) // 2, 3 * len(rows) // 4, len(rows) - 1})
    print(f"\n{title}")
    print("  " + "  ".join(k.rjust(20) for k in ["cycle", *keys]))
    for i in picks:
        row = rows[i]
        print("  " + "  ".join(str(row[k]).rjust(20) for k in ["cycle", *keys]))
    sys.stdout.flush()


def run(quick: bool = False) -> dict[str, Any]:
    after_cycles, before_cycles = (20, 10) if quick else (600, 150)
    real_cycles = 1 if quick else 40
    parts = os.environ.get("MSADS_P10_PARTS", "AB").upper()  # A: in-process, B: a real triggerer
    keys = ["airflow_patterns", "provider_live_tokens", "cpu_per_mask_ms", "worst_loop_lag_ms", "rss_mb"]
    figures: dict[str, Any] = {"connections": CONNECTIONS}
    with MicrosoftAdsEmulator() as emulator:
        # "before" first: once installed, the provider's masker also makes Airflow's compile lazy
        # for the rest of the process, which would flatter "before". ``re.purge()`` between the two
        # drops the compiled patterns "before" left in ``re``'s cache.
        for mode, cycles in (("before", before_cycles), ("after", after_cycles)) if "A" in parts else ():
            rows = _in_process(emulator, cycles, mode)
            re.purge()
            _table(
                f"P10 part A (in-process, real trigger code and Airflow masker), {mode}: {cycles} cycles", rows, keys
            )
            figures[f"in_process_{mode}"] = {
                "cycles": cycles,
                "cpu_per_mask_ms": _summary(rows, "cpu_per_mask_ms"),
                "worst_loop_lag_ms": _summary(rows, "worst_loop_lag_ms"),
                "max_loop_lag_ms": max(r["worst_loop_lag_ms"] for r in rows),
                "airflow_patterns_end": rows[-1]["airflow_patterns"],
                "provider_live_tokens_end": rows[-1]["provider_live_tokens"],
                "rss_mb": _summary(rows, "rss_mb"),
                "rows": rows,
            }
        if "B" in parts and __import__("airflow").__version__.startswith("3.3"):
            for mode in ("after",) if quick else ("after", "before"):  # quick: does it still run
                rows = _real_triggerer(emulator, real_cycles, mode)
                _table(
                    f"P10 part B (a real airflow triggerer), {mode}: {real_cycles} cycles",
                    rows,
                    ["wall_s", "triggerer_cpu_ms", "triggerer_rss_mb"],
                )
                figures[f"real_triggerer_{mode}"] = {
                    "cycles": real_cycles,
                    "triggerer_cpu_ms": _summary(rows, "triggerer_cpu_ms"),
                    "wall_s": _summary(rows, "wall_s"),
                    "rss_mb": _summary(rows, "triggerer_rss_mb"),
                    "rows": rows,
                }
    if "in_process_after" not in figures:
        return figures
    after = figures["in_process_after"]["cpu_per_mask_ms"]
    figures["cpu_per_mask_ratio_last_to_middle"] = after["ratio"]
    figures["goal_met"] = bool(after["ratio"] is not None and after["ratio"] <= 1.5)
    common.report(
        "P10 summary (CPU per new mask: first -> middle -> last tenth of the cycles)",
        [
            (
                f"before, {before_cycles} cycles",
                f"{figures['in_process_before']['cpu_per_mask_ms']['first']} -> "
                f"{figures['in_process_before']['cpu_per_mask_ms']['middle']} -> "
                f"{figures['in_process_before']['cpu_per_mask_ms']['last']} ms per mask, "
                f"worst loop lag {figures['in_process_before']['max_loop_lag_ms']} ms",
            ),
            (
                f"after, {after_cycles} cycles",
                f"{after['first']} -> {after['middle']} -> {after['last']} ms per mask, "
                f"worst loop lag {figures['in_process_after']['max_loop_lag_ms']} ms",
            ),
        ],
    )
    return figures


if __name__ == "__main__":
    common.main(run)
