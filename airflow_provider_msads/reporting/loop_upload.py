"""An upload that runs as a coroutine on an fsspec file system's own event loop (s3fs, adlfs),
started and waited for by the worker's thread.

fsspec's own ``sync()`` would leave the coroutine running on its loop when the waiting thread is
interrupted (a task timeout or SIGTERM raises in that thread while the parts or blocks go out on
the loop: the upload would then complete after the task failed). Here the thread's interruption
cancels the coroutine, which aborts its upload (S3) or never commits its blocks (Azure), and the
thread waits at most :data:`ABORT_WAIT` for that before raising.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

#: How long a cancelled upload (task timeout, SIGTERM) may take to abort before the error is raised
#: anyway (what it leaves is then the store's to remove: see the README).
ABORT_WAIT = 60.0


class LoopUpload:
    """``work`` (the upload's coroutine) started on ``loop``; :meth:`wait` from a worker thread.

    ``name`` says what and where in the one warning this may log; ``left_behind`` what remains if
    the abort does not finish in time.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None], name: str, left_behind: str
    ) -> None:
        self.loop = loop
        self.name = name
        self.left_behind = left_behind
        self.ended = threading.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[threading.Event] = [self.ended]

        def start() -> None:  # on the loop; a done callback fires even if cancelled before its first step
            task = asyncio.ensure_future(work)
            task.add_done_callback(self._ended)
            self._tasks.append(task)

        self.loop.call_soon_threadsafe(start)

    def _ended(self, _: object) -> None:  # on the loop
        for event in list(self._listeners):
            event.set()

    def wait(self, until: threading.Event | None = None) -> None:
        """Wait for the upload to end, or only until ``until`` is set; raise the upload's error if it
        ended. Interrupted (task timeout, SIGTERM, Ctrl-C), abort it, then raise."""
        event = until if until is not None else self.ended
        if until is not None:
            self._listeners.append(until)  # the upload's end wakes this wait too
            if self.ended.is_set():  # it ended before the line above
                until.set()
        try:
            while not event.wait(1.0):
                pass  # short waits: a signal handler's exception (task timeout) gets in
        except BaseException:
            self.abort()
            raise
        finally:
            if until is not None:
                self._listeners.remove(until)
        if self.ended.is_set():
            self._tasks[0].result()  # the upload's own error, if any (it aborted itself)

    def abort(self) -> None:
        """Cancel the upload's coroutine and wait up to :data:`ABORT_WAIT` for it to end."""

        def cancel() -> None:  # on the loop, after start() (its callbacks run in order)
            self._tasks[0].cancel()  # nothing if the upload already ended

        self.loop.call_soon_threadsafe(cancel)
        if not self.ended.wait(ABORT_WAIT):
            log.warning("%s was not aborted within %.0f s; %s.", self.name, ABORT_WAIT, self.left_behind)
