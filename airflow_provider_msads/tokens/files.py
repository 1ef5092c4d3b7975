"""Atomic owner-only file writes, shared by the file token store and ``msads-authorize --output-file``.

Both write secrets (sealed token state, a connection with its client secret), so both need the
same guarantees: the bytes only ever sit in a 0600 file, and a crash leaves the old file or the
new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private_atomically(target: Path, text: str, *, temp_prefix: str | None = None) -> None:
    """Write ``text`` to ``target`` with mode 0600: temp file beside it, fsync, rename, fsync folder.

    Raises ``OSError``; callers turn it into their own error naming the fix. The temp file is named
    ``<temp_prefix><random>.tmp`` (default ``.<target name>.``), so that the leftovers of a killed
    writer can be found and swept.
    """
    folder = target.parent if str(target.parent) else Path(".")
    prefix = temp_prefix if temp_prefix is not None else f".{target.name}."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say it anyway for odd platforms
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
