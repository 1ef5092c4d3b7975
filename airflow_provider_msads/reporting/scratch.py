"""Scratch files a crashed run left behind: whose they are, whether that process is gone, and sweeping.

Split from :mod:`.destinations` (which writes the scratch files under :func:`owner_tag`). Imports
nothing of the package; no Airflow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import stat
import time

log = logging.getLogger(__name__)

#: Leftovers of a killed run are swept when their process is gone, or in any case after this.
STALE_AFTER = 24 * 3600.0


# ------------------------------------------------------------------------------------- sweeping


def owner_tag() -> str:
    """``<host>-<pid>``: who made a scratch file, so the next run can tell whether it is stale."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}"


_TAG = re.compile(r"^(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    try:  # a killed process not yet reaped by its parent is a zombie: gone all the same
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _newest_mtime(path: str, info: os.stat_result) -> float:
    newest = info.st_mtime
    if stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError), os.scandir(path) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def is_stale(path: str, tag: str, *, now: float | None = None) -> bool:
    """Whether a scratch file or folder named with :func:`owner_tag` ``tag`` may be removed.

    Only this user's own regular files and folders (never a link); stale when the process that
    made it is gone (same host, pid not running) or when nothing in it changed for a day.
    """
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if info.st_uid != os.getuid() or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        return False
    match = _TAG.match(tag)
    if match is None:
        return False
    now = time.time() if now is None else now
    if now - _newest_mtime(path, info) > STALE_AFTER:
        return True
    pid = int(match["pid"])
    here = owner_tag().rsplit("-", 1)[0]
    return match["host"] == here and pid != os.getpid() and _process_gone(pid)


def sweep_stale(folder: str, prefix: str) -> int:
    """Remove the stale leftovers of killed runs in ``folder`` whose names start with ``prefix``
    followed by an owner tag; returns how many. Never raises: sweeping is housekeeping."""
    removed = 0
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return 0
    for name in names:
        path = os.path.join(folder, name)
        if not is_stale(path, name[len(prefix) :]):
            continue
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed += 1
        except OSError:
            log.debug("Could not remove %s.", path, exc_info=True)
    if removed:
        log.info("Removed %d leftover file(s) of interrupted report runs in %s.", removed, folder)
    return removed
