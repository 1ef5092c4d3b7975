"""Start several child processes at the same instant: the harness of the races in the reliability
suite and of the benchmarks.

Each child prints ``ready`` once it has done all its set-up (imports, connection parsing) and then
waits for a ``go`` line on stdin; only when every child is ready are they all released, so what is
measured or raced is the work itself, not Python's start-up.
"""

from __future__ import annotations

import subprocess


def start_together(children: list[subprocess.Popen[str]], timeout: float = 300) -> list[str]:
    """Wait for every child's ``ready``, release them at once, return each one's last stdout line.

    Raises ``RuntimeError`` with the child's stderr tail when one is not ready or fails; kills
    whatever is still running on the way out.
    """
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                stderr = child.stderr.read()[-3000:] if child.stderr is not None else ""
                raise RuntimeError(f"child not ready: {line!r}\n{stderr}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        lines = []
        for child in children:
            out, err = child.communicate(timeout=timeout)
            if child.returncode != 0:
                raise RuntimeError(f"child failed ({child.returncode}):\n{(err or '')[-3000:]}")
            lines.append(out.strip().splitlines()[-1])
        return lines
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
