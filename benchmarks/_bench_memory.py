"""Peak RSS of a benchmark's child process, imported by the children (``PYTHONPATH`` holds the
repository: :func:`_bench_common.child_env`). No side effects: the children import it after what
they measure the imports of."""

from __future__ import annotations

import glob
import resource
import threading


def hwm_mb() -> float:
    """The process's peak resident set (Linux ``VmHWM``; ``ru_maxrss`` elsewhere), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_hwm() -> bool:
    """Reset the peak to the current size (Linux ``clear_refs``), so that only what follows counts;
    False where that is not possible (the figure then includes the process's earlier peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class ChildPeak:
    """The largest peak RSS (``VmHWM``) of this process's children whose command line names
    ``marker`` (the inflating child: ``_inflater.py``), sampled every few ms while they run.

    Not ``RUSAGE_CHILDREN``: that counts a forked child's pages shared with its parent before it
    execs (a 200 MB parent makes every child "200 MB"). A sample is read after the exec (the
    command line is the child's own), and ``VmHWM`` only grows, so the last sample before the
    child ends is its peak, give or take what it grew in its last few ms.
    """

    def __init__(self, marker: str = "_inflater.py", every: float = 0.005) -> None:
        self.marker = marker.encode()
        self.every = every
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for pid in _children():
                self.peak_mb = max(self.peak_mb, self._hwm(pid))

    def _hwm(self, pid: str) -> float:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if self.marker not in f.read():
                    return 0.0
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:  # it ended meanwhile
            pass
        return 0.0


def _children() -> list[str]:
    pids: list[str] = []
    for path in glob.glob("/proc/self/task/*/children"):
        try:
            with open(path) as f:
                pids += f.read().split()
        except OSError:
            pass
    return pids
