"""Run the benchmarks and print their figures: ``python benchmarks/run.py [--quick] [--only P1,P3]``.

Each benchmark runs in its own fresh interpreter (with a private bytecode cache, see
``_bench_common``), prints its table, and hands its figures back as JSON; this runner prints a
summary with the goals and, with ``--json PATH``, writes every figure to one file (the README's
table is made from it). ``--quick`` uses small sizes so that a test can check the benchmarks still
run (figures from it are rough); it never fails on a missed goal, only on a benchmark that breaks.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import _bench_common as common

BENCHMARKS = {
    "P1": "bench_p1_token_requests.py",
    "P2": "bench_p2_import_cost.py",
    "P3": "bench_p3_warm_cache.py",
    "P4": "bench_p4_health_check.py",
    "P5": "bench_p5_report_download.py",
    "P6": "bench_p6_report_triggers.py",
    "P7": "bench_p7_async_callers.py",
    "P8": "bench_p8_object_store.py",
    "P10": "bench_p10_masker_growth.py",
}
GOALS = {
    "P1": ("token_requests_shared_store", "token requests (goal 1)"),
    "P2": ("provider_import_ms", "ms added to DAG parse (goal <= 20)"),
    "P3": ("warm_in_process_us", "µs per warm call"),
    "P4": ("ratio_concurrent_to_one", "x one connection (goal <= 2)"),
    "P5": ("rss_growth_mb", "MB peak RSS growth for the report (goal < 64)"),
    "P6": ("ratio_concurrent_to_one", "x one trigger"),
    "P7": ("token_requests", "token requests for 200 async callers on 2 threads (goal 1)"),
    "P8": (
        "ratio_download_report_to_curl_unzip_load_file",
        "x curl + unzip + S3Hook.load_file's time for a 1 GB report into moto (goal <= 0.77)",
    ),
    "P10": (
        "cpu_per_mask_ratio_last_to_middle",
        "x CPU per new mask, last tenth of the cycles against the middle one (goal: flat)",
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. P1,P4")
    parser.add_argument("--json", help="write all figures to this file")
    args = parser.parse_args()
    chosen = [name.strip().upper() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)

    results: dict[str, dict] = {}
    failed = []
    for name in chosen:
        out = Path(tempfile.mkdtemp(prefix="msads-bench-")) / f"{name}.json"
        command = [sys.executable, str(common.BENCH_DIR / BENCHMARKS[name]), "--json", str(out)]
        if args.quick:
            command.append("--quick")
        started = time.perf_counter()
        # stderr (Airflow's and the provider's logs) is not figures: keep it out of the table.
        done = subprocess.run(
            command, env=common.child_env(), cwd=str(common.REPO_ROOT), stderr=subprocess.PIPE, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or not out.exists():
            failed.append(name)
            print(f"\n{name} FAILED (exit {done.returncode}):\n{done.stderr[-4000:]}", file=sys.stderr)
            continue
        results[name] = {**json.loads(out.read_text()), "benchmark_seconds": round(elapsed, 1)}

    print("\nSummary" + (" (quick mode: rough figures)" if args.quick else ""))
    for name, figures in results.items():
        key, label = GOALS[name]
        met = figures.get("goal_met")
        verdict = "" if met is None else ("  goal met" if met else "  GOAL MISSED")
        print(f"  {name}: {figures.get(key)} {label}{verdict}")
    if args.json:
        meta = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, "
            f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
            "quick": args.quick,
        }
        Path(args.json).write_text(json.dumps({"meta": meta, **results}, indent=2, sort_keys=True))
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
