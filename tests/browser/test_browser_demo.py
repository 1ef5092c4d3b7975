"""``make demo`` end to end: ``scripts/demo.py --check`` brings Airflow up, checks, and stops it all.

Runs in its own AIRFLOW_HOME and on a free port, so it neither touches the repository's
``.demo/`` nor collides with a demo that a developer has running.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants_alive(env_marker: str) -> list[str]:
    """Command lines of live processes whose environment still names the demo's home."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if env_marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def test_demo_check_runs_the_health_check_and_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "MSADS_", "_AIRFLOW"))}
    result = subprocess.run(
        [sys.executable, str(DEMO), "--check", "--home", str(home), "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    out = result.stdout + result.stderr
    print(out)
    assert result.returncode == 0, out[-4000:]
    assert "Health check:   SUCCESS" in out
    assert "msads_default: OK - credentials valid" in out
    assert "Login:          admin / " in out
    assert "none is left running" in out
    # No credential of the emulator's connection is printed without --show-connection.
    assert "AIRFLOW_CONN_MSADS_DEFAULT" not in out
    assert '"password"' not in out and "refresh_token" not in out
    # Nothing the demo started survives it (its children carry AIRFLOW_HOME=<home>, unless retitled).
    assert _descendants_alive(f"AIRFLOW_HOME={home}") == []
    assert (home / "airflow.db").exists()
