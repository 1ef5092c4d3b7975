"""P2: what importing the operator and sensor modules adds to DAG parsing, after ``airflow.sdk``.

Goal: at most 20 ms (median over fresh interpreters). DAG parsing imports the operator and sensor
modules; their HTTP stack (httpx, cryptography) must wait until a task runs. ``import airflow.sdk``
itself is printed beside (seconds here; every DAG file pays it anyway).

Each sample is a fresh interpreter. A warm-up run first fills the private bytecode cache (see
``_bench_common``), as a deployment with compiled .pyc files would have; the same figure without
bytecode (how this machine's venv is set up) is printed too, in full mode.

Run: ``python benchmarks/bench_p2_import_cost.py [--quick]``.
"""

from __future__ import annotations

import json
from typing import Any

import _bench_common as common


def _samples(n: int, *, bytecode: bool) -> list[dict[str, Any]]:
    env = common.child_env(bytecode=bytecode)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return [json.loads(common.run_child([common.CHILD, "p2"], env)) for _ in range(n)]


def run(quick: bool = False) -> dict[str, Any]:
    if not quick:
        _samples(1, bytecode=True)  # warm-up: fills the bytecode cache (quick mode trusts earlier runs)
    samples = _samples(1 if quick else 7, bytecode=True)
    provider = common.median(s["provider"] for s in samples)
    sdk = common.median(s["sdk"] for s in samples)
    figures: dict[str, Any] = {
        "provider_import_ms": round(provider * 1000, 1),
        "airflow_sdk_import_ms": round(sdk * 1000, 1),
        "samples": len(samples),
        "heavy_modules_pulled": samples[0]["heavy"],
        "goal_ms": 20,
        "goal_met": provider * 1000 <= 20,
    }
    rows = [
        ("operator + sensor modules (median)", f"{common.ms(provider)}  (goal: <= 20 ms)"),
        ("import airflow.sdk itself (median)", common.ms(sdk)),
        ("httpx / cryptography imported at parse", ", ".join(samples[0]["heavy"]) or "none"),
    ]
    if not quick:
        cold = _samples(3, bytecode=False)
        figures["provider_import_no_bytecode_ms"] = round(common.median(s["provider"] for s in cold) * 1000, 1)
        figures["airflow_sdk_import_no_bytecode_ms"] = round(common.median(s["sdk"] for s in cold) * 1000, 1)
        rows += [
            ("operator + sensor, no .pyc (median)", f"{figures['provider_import_no_bytecode_ms']} ms"),
            ("import airflow.sdk, no .pyc (median)", f"{figures['airflow_sdk_import_no_bytecode_ms']} ms"),
        ]
    common.report(f"P2 import cost on DAG parse ({len(samples)} fresh interpreters)", rows)
    return figures


if __name__ == "__main__":
    common.main(run)
