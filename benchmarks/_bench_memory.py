"""Peak RSS of a benchmark's child process, imported by the children (``PYTHONPATH`` holds the
repository: :func:`_bench_common.child_env`). No side effects: the children import it after what
they measure the imports of."""

from __future__ import annotations

import resource


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
