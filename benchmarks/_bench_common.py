"""Shared plumbing of the benchmarks: an isolated Airflow home, child processes, small statistics.

Importing this module isolates the process *before* Airflow is imported (like tests/conftest.py):
a temporary AIRFLOW_HOME without examples, a temporary token-store folder, no inherited
``AIRFLOW_CONN_*``. Nothing touches ~/airflow or ~/.local/state.

Bytecode: this machine runs Python with ``PYTHONDONTWRITEBYTECODE=1`` and a venv without .pyc
files, so every fresh interpreter would compile Airflow from source (``import airflow.sdk`` takes
~7 s instead of ~3 s). Child processes therefore get a private ``PYTHONPYCACHEPREFIX`` outside the
repo and the venv; where it matters (P2) a warm-up run fills it first, as on a real deployment.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CHILD = str(BENCH_DIR / "_bench_child.py")
PYCACHE = str(Path(tempfile.gettempdir()) / f"msads-bench-pycache-{os.getuid()}")

_HOME = Path(tempfile.mkdtemp(prefix="msads-bench-home-"))
(_HOME / "dags").mkdir(exist_ok=True)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["MSADS_TOKEN_STORE_DIR"] = str(_HOME / "token-store")
os.environ.pop("MSADS_TOKEN_STORE", None)
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # logs are not figures
for _name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
    os.environ.pop(_name)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def home() -> Path:
    return _HOME


def child_env(extra: Mapping[str, str] | None = None, *, bytecode: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
    if extra:
        env.update(extra)
    return env


def spawn(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        cwd=str(REPO_ROOT),
    )


def run_together(children: list[subprocess.Popen[str]], timeout: float = 300) -> list[str]:
    """Wait for every child's ``ready``, release them at once, return each one's last stdout line."""
    from airflow_provider_msads.testing.together import start_together

    return start_together(children, timeout)


def run_child(args: list[str], env: Mapping[str, str], timeout: float = 300) -> str:
    """Run one child to the end (no start signal) and return its last stdout line."""
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=str(REPO_ROOT),
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def report(title: str, rows: list[tuple[str, Any]]) -> None:
    print(f"\n{title}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label.ljust(width)}  {value}")
    sys.stdout.flush()


def main(run: Any) -> None:
    """CLI of one benchmark: ``[--quick] [--json PATH]``; the figures go to PATH as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that it runs, figures are rough")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    figures = run(quick=args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, sort_keys=True))
