"""The benchmarks still run: ``python benchmarks/run.py --quick`` as a subprocess.

Quick mode uses small sizes, so its timings are rough and no timing is asserted here; what is
checked is that every benchmark ran and produced its figures, and the one figure that is a count,
not a time: the token requests of P1 (goal 1, shared store).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _support.reliability import REPO_ROOT, child_env


def test_benchmarks_run_in_quick_mode(tmp_path: Path):
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=400,
        env=child_env(),
        cwd=str(REPO_ROOT),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    for title in (
        "P1 token requests",
        "P2 import cost",
        "P3 get_access_token()",
        "P4 health check",
        "P5 report download",
        "P6 ",
        "Summary",
    ):
        assert title in result.stdout, title
    figures = json.loads(out.read_text())
    assert set(figures) >= {"meta", "P1", "P2", "P3", "P4", "P5", "P6"}
    assert figures["P1"]["token_requests_shared_store"] == 1
    assert figures["P3"]["token_requests"] == 1
    assert figures["P2"]["heavy_modules_pulled"] == []  # DAG parsing does not import httpx/cryptography
    assert figures["P4"]["connections"] >= 2
    assert figures["P5"]["rows"] > 0 and figures["P6"]["polls"] >= figures["P6"]["triggers"]
