"""Where a finished report goes: a local path or an ObjectStoragePath URL, and only ever complete.

A file appears under its final name only when it is whole: local destinations get a temporary
sibling and an atomic rename; URL destinations are written locally, then handed to a publisher
(the Airflow shell's, on ObjectStoragePath) that uploads under a hidden name and moves it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import IO
from urllib.parse import urlsplit


def is_url(destination: str) -> bool:
    """``s3://…``, ``file://…``: an ObjectStoragePath; a plain or Windows path is not."""
    scheme = urlsplit(destination).scheme
    return len(scheme) > 1 and "://" in destination


def final_name(destination: str, compression: str | None) -> str:
    """The destination, with ``.gz`` added when gzip is asked for and the name lacks it."""
    if compression == "gzip" and not destination.endswith(".gz"):
        return destination + ".gz"
    return destination


#: Publishes a finished local file under a URL destination (the Airflow shell gives one that uses
#: ObjectStoragePath): it must make the file appear under the final name only when complete.
Publisher = Callable[[str, str], None]


def _local_target(destination: str) -> str:
    path = destination
    if destination.startswith("file://"):
        path = urlsplit(destination).path
    return os.path.abspath(os.path.expanduser(path))


@contextlib.contextmanager
def output(destination: str, publish: Publisher | None) -> Iterator[IO[bytes]]:
    """A temporary file that becomes ``destination`` on success and disappears on failure.

    Local destinations (also ``file://`` without a publisher) get the temporary file next to the
    final one, so the move is an atomic rename; others are written locally, then published.
    """
    local = not is_url(destination) or (destination.startswith("file://") and publish is None)
    if local:
        target = _local_target(destination)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        folder, name = os.path.split(target)
    else:
        folder, name = None, os.path.basename(urlsplit(destination).path) or "report.csv"
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if local:
            os.replace(temp, target)
        else:
            assert publish is not None, "a URL destination needs a publisher (ObjectStoragePath)"
            publish(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def part_name(name: str) -> str:
    """A hidden sibling name for a file being written, ignored by loaders that glob ``*.csv``."""
    return f".{name}.{uuid.uuid4().hex}.part"
