"""A big entry inflated in a child process (:mod:`._inflater`) while this one counts and writes.

Why: a thread does not help here. CPython's zlib gives up the GIL while it inflates but takes it
back between every output block it fills, four or five times per MiB, and each time waits behind
the Python code that counts rows and strips the report's header and footer: measured on 2 cores,
400 MB of CSV took as long with an inflating thread as without one. In a process of its own the
inflating runs whole on the other core; this process keeps the network, the row count and the
write.

How: a feeder thread takes the compressed bytes from the :class:`.zipstream.ChunkReader` and
writes them to the child's stdin; the caller reads the inflated bytes from its stdout (pipes of
1 MiB where Linux allows). The child enforces the zip-bomb bounds itself and ends with one line on
stderr (see :mod:`._inflater`): the CRC-32, the sizes, and how many compressed bytes were the
entry's; what the feeder sent past that (the zip's descriptor and central directory) is given back
to the reader from the last few MiB the feeder keeps, so :func:`.zipstream.entry_data` verifies the
zip exactly as when inflating here.

Small entries (the zip says under :data:`CHILD_MIN`) are inflated here: a process per small report
would cost more than it saves. When no child can be started (no interpreter path, a read-only or
zipped install) the entry is inflated here, with one WARNING. Whatever ends the read early (an
error, a bomb, Ctrl-C, a cancelled task) kills the child, stops the download's pipe and joins the
feeder before it is raised: no process or thread outlives the download.

Pure: no Airflow, no network (the download is the caller's); imports only :mod:`.zipstream`.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Generator

from airflow_provider_msads.reporting.zipstream import (
    CUT,
    PIECE,
    ChunkReader,
    Limits,
    LocalEntry,
    ZipBombError,
    beyond_declared,
    inflate_here,
)

log = logging.getLogger(__name__)

#: Entries the zip says are smaller than this (compressed) are inflated in this process; entries
#: of unknown size (a data descriptor) go to the child.
CHILD_MIN = 4 * 1024 * 1024
#: False: never start a child (a last resort; the benchmarks compare both).
ENABLED = True
#: The child program, run by path (it imports the standard library only).
PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_inflater.py")
#: Linux's fcntl commands to set and read a pipe's capacity (not in Python 3.11's fcntl module).
_F_SETPIPE_SZ, _F_GETPIPE_SZ = 1031, 1032
_PIPE_SIZE = 1024 * 1024
#: What the child reads from stdin at a time (:data:`._inflater.READ`).
_CHILD_READ = 1024 * 1024
_RESULT = "msads-inflate "


def wanted(entry: LocalEntry) -> bool:
    """Whether ``entry`` is big enough (or of unknown size) to be inflated in a child."""
    return ENABLED and (entry.compressed is None or entry.compressed >= CHILD_MIN)


def inflate(reader: ChunkReader, entry: LocalEntry, limits: Limits) -> Generator[bytes, None, tuple[int, int, int]]:
    """:data:`.zipstream.Inflate` in a child process when :func:`wanted`, else in this thread."""
    if not wanted(entry):
        return (yield from inflate_here(reader, entry, limits))
    try:
        child = _Child(reader, entry, limits)
    except (OSError, RuntimeError) as exc:  # no process, or no thread to feed it: inflate here
        log.warning("Could not start a process to inflate the zip (%s): inflating it in this process.", exc)
        return (yield from inflate_here(reader, entry, limits))
    try:
        yield from child.pieces()
        return child.result()
    finally:
        child.close()


class _Child:
    """One child process and its feeder thread."""

    def __init__(self, reader: ChunkReader, entry: LocalEntry, limits: Limits) -> None:
        if not sys.executable or not os.path.isfile(PROGRAM):
            raise OSError("no interpreter path or no child program file")
        declared = -1 if entry.size is None else entry.size
        args = [PIECE, limits.max_bytes, limits.ratio, limits.small, declared]
        self._entry = entry
        self._reader = reader
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", PROGRAM, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        assert self._proc.stderr is not None
        self._stdin, self._stdout, self._stderr = self._proc.stdin, self._proc.stdout, self._proc.stderr
        self._kept: collections.deque[bytes] = collections.deque()
        self._kept_bytes = 0
        self._fed = 0
        self._error: BaseException | None = None
        self._size = 0
        self._feeder = threading.Thread(target=self._feed, name="msads-inflate-feed", daemon=True)
        try:
            capacity = _widen(self._stdin.fileno(), _widen(self._stdout.fileno(), 0))
            #: Bytes the feeder sent that the child may not have read when it ended: they are kept.
            self._hold = capacity + _CHILD_READ
            self._feeder.start()
        except BaseException:  # no feeder (no thread to be had, an interrupt): no child either
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._stdin, self._stdout, self._stderr):
                pipe.close()
            raise

    # -- the feeder thread

    def _feed(self) -> None:
        fd = self._stdin.fileno()
        try:
            while chunk := self._reader.some():
                self._keep(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass  # the child has ended (the stream is complete, or it failed): its line says
        except BaseException as exc:  # a network error, a stopped pipe: raised to the caller
            self._error = exc
        finally:
            self._stdin.close()

    def _keep(self, chunk: bytes) -> None:
        self._kept.append(chunk)
        self._kept_bytes += len(chunk)
        self._fed += len(chunk)
        while self._kept_bytes - len(self._kept[0]) >= self._hold + len(chunk):
            self._kept_bytes -= len(self._kept.popleft())

    # -- the caller's thread

    def pieces(self) -> Generator[bytes, None, None]:
        fd = self._stdout.fileno()
        while piece := os.read(fd, PIECE):
            self._size += len(piece)
            yield piece

    def result(self) -> tuple[int, int, int]:
        """(crc, compressed, size) from the child's line, the bytes after the entry given back."""
        self._proc.wait()
        self._feeder.join()
        if self._error is not None:
            raise self._error
        lines = [
            line for line in self._stderr.read().decode("utf-8", "replace").splitlines() if line.startswith(_RESULT)
        ]
        words = lines[-1][len(_RESULT) :].split(" ", 1) if lines else ["none", ""]
        kind, rest = words[0], words[1] if len(words) > 1 else ""
        if kind == "ok":
            compressed, crc, size = (int(w) for w in rest.split())
            if size != self._size:
                raise zipfile.BadZipFile(f"The inflating process said {size} bytes and wrote {self._size}.")
            self._give_back(compressed)
            return crc, compressed, size
        if kind == "cut":
            raise zipfile.BadZipFile(CUT)
        if kind == "beyond":
            raise zipfile.BadZipFile(beyond_declared(self._entry))
        if kind == "bomb":
            size, compressed = (int(w) for w in rest.split())
            raise ZipBombError(size, compressed)
        if kind == "damaged":
            raise zlib.error(rest)
        raise zipfile.BadZipFile(f"The inflating process ended without a result (exit code {self._proc.returncode}).")

    def _give_back(self, compressed: int) -> None:
        first = self._fed - self._kept_bytes  # the stream offset of the oldest byte kept
        if compressed < first:  # cannot happen: the child never holds more than was kept
            raise zipfile.BadZipFile("The inflating process consumed less than was kept back.")
        self._reader.unread(b"".join(self._kept)[compressed - first :])
        self._kept.clear()

    def close(self) -> None:
        """Kill the child if it still runs, wake and join the feeder, close the pipes."""
        if self._proc.poll() is None:
            self._proc.kill()
        if self._feeder.is_alive():
            self._reader.stop()  # it may be waiting for the network
            self._feeder.join()
        self._proc.wait()
        self._stdout.close()
        self._stderr.close()


def _widen(fd: int, seen: int) -> int:
    """Ask for a 1 MiB pipe (fewer, larger reads and writes); the largest capacity of the two."""
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        return max(seen, fcntl.fcntl(fd, _F_GETPIPE_SZ))
    except (ImportError, OSError):
        return max(seen, _PIPE_SIZE)
