"""Run test sessions side by side (``make test``): one command in the foreground, others beside it.

The machine CI uses has two cores, and a pytest session of browser and reliability tests spends
most of its time waiting on Airflow servers and child processes: run beside the rest, the suite
takes minutes less. Each command is a whole pytest session of its own (its own metastore), so
nothing is shared between them. The foreground command's output streams as usual; each other
command's output goes to its log file and is printed once everything has ended. The exit code is
0 only when every command succeeded.

All commands stay in this process group, so Ctrl-C reaches every pytest (each then stops what it
started, Airflow servers included) instead of leaving one running in the background.

Usage: ``run_side_by_side.py "<foreground command>" [--beside LOG "<command>"]...``
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if not argv or len(argv[1:]) % 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    foreground, rest = argv[0], argv[1:]
    beside: list[tuple[Path, str, subprocess.Popen[bytes]]] = []
    for flag, log, command in zip(rest[::3], rest[1::3], rest[2::3], strict=True):
        if flag != "--beside":
            raise SystemExit(f"expected --beside, got {flag!r}")
        path = Path(log)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            beside.append((path, command, subprocess.Popen(command, shell=True, stdout=out, stderr=subprocess.STDOUT)))  # noqa: S602 - from the Makefile
    codes: dict[str, int] = {}
    try:
        codes[foreground] = subprocess.call(foreground, shell=True)  # noqa: S602 - from the Makefile
        for _, command, process in beside:
            codes[command] = process.wait()
    except KeyboardInterrupt:  # every child got the same SIGINT: let them clean up, then stop
        for _, _, process in beside:
            process.wait()
        return 130
    for path, command, _ in beside:
        print(f"\n== {command}\n== (ran alongside; its log: {path})", flush=True)
        sys.stdout.write(path.read_text(errors="replace"))
    print("\n== exit codes: " + "; ".join(f"{code} <- {command}" for command, code in codes.items()), flush=True)
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
