"""A report written straight into an object store's upload, a part at a time: S3's multipart
upload (:mod:`.s3_multipart`) and Azure's staged blocks (:mod:`.azure`) alike.

Why one writer: both stores take numbered pieces that only a last call turns into the object (S3's
Complete Multipart Upload, Azure's Put Block List), several pieces may be in flight at once, and a
failure anywhere must leave nothing under the final name. What differs is only the store's calls:
each store gives the coroutine that sends the pieces (and commits) and the one that sends a report
of one piece. Runs the upload on the store client's own event loop through one waiter
(:class:`.loop_upload.LoopUpload`), so an interrupted worker (a task timeout, SIGTERM, Ctrl-C)
cancels it before raising. Pure: no Airflow, no store SDK (the stores' modules bring their calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterator
from typing import IO, Any, TypeVar, cast

from airflow_provider_msads.reporting.loop_upload import LoopUpload

_T = TypeVar("_T")

#: The part size: what each part in flight holds in memory. S3 needs at least 5 MiB per part and
#: allows 10,000 parts: 8 MiB parts carry 78 GiB, beyond the largest report entry :mod:`.download`
#: accepts (64 GiB); Azure allows 50,000 blocks. Also the block of the other stores' uploads
#: (:data:`.destinations.UPLOAD_BLOCK_SIZE`): a multiple of 256 KiB, as GCS wants its chunks.
PART_SIZE = 8 * 1024 * 1024
#: Parts in flight at once. One at a time leaves the store idle while the worker reads and sends
#: the next part (benchmark P8: a 1 GB report took 48-64 s against moto, boto3's 10-thread
#: transfer 18-33 s); two overlap both. Each holds one part in memory (see :class:`PartsWriter` on
#: copies); four showed no gain over two beyond the noise of a shared 2-core machine
#: (benchmarks/README.md, P8).
UPLOAD_CONCURRENCY = 2

#: What a store gives: the coroutine that sends every part and commits, from the parts as they come.
Multipart = Callable[[AsyncGenerator[io.BytesIO, None]], Coroutine[Any, Any, None]]
#: ... and the one that stores a report of one part or less.
Single = Callable[[io.BytesIO], Coroutine[Any, Any, None]]


class PartsWriter(io.RawIOBase):
    """What :func:`.destinations.output` hands the report pipeline for a store that uploads in parts:
    each :data:`PART_SIZE` written is sent as soon as it is full and more follows, while the rest is
    still being written. A full part waits in ``write`` until the upload takes it (when fewer than
    :data:`UPLOAD_CONCURRENCY` are in flight): memory holds the parts in flight and the one being
    filled, never the report. A report of one part or less goes by ``single`` at :meth:`commit`.

    Each part is filled in its own ``BytesIO``, which goes to the store's client as it is: a
    ``bytes`` body would be wrapped in a ``BytesIO`` sharing it, which aiohttp then copies.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, multipart: Multipart, single: Single, *, what: str, left: str
    ) -> None:
        super().__init__()
        self.size = 0
        self._loop = loop
        self._multipart = multipart
        self._single = single
        self._what = what
        self._left = left
        self._part = io.BytesIO()
        self._upload: LoopUpload | None = None
        self._queue: asyncio.Queue[io.BytesIO | None] = asyncio.Queue(maxsize=1)  # the hand-over

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed report writer")
        view = memoryview(data).cast("B")
        size = view.nbytes
        while view.nbytes:
            room = PART_SIZE - self._part.tell()
            if not room:  # a full part, and more after it: not the last one
                self._hand(self._part)
                self._part, room = io.BytesIO(), PART_SIZE
            self._part.write(view[:room])
            view = view[room:]
        self.size += size
        return size

    def _run(self, work: Coroutine[Any, Any, None]) -> LoopUpload:
        return LoopUpload(self._loop, work, self._what, self._left)

    def _hand(self, part: io.BytesIO | None) -> None:
        """Give the upload its next part (None: no more), and wait until it has taken it."""
        if self._upload is None:
            queue = self._queue

            async def parts() -> AsyncGenerator[io.BytesIO, None]:
                while (body := await queue.get()) is not None:
                    queue.task_done()
                    yield body

            self._upload = self._run(self._multipart(parts()))
        if part is not None:
            part.seek(0)

        async def give() -> None:
            await self._queue.put(part)
            if part is not None:
                await self._queue.join()  # taken: now in flight

        taken = threading.Event()
        handed = asyncio.run_coroutine_threadsafe(give(), self._upload.loop)
        handed.add_done_callback(lambda _: taken.set())
        try:
            self._upload.wait(until=taken)  # raises the upload's error if it failed meanwhile
        finally:
            handed.cancel()  # nothing if it was taken; else nobody will take it

    def commit(self) -> None:
        """The report is whole: send what remains and commit (or send a small report at once)."""
        part, self._part = self._part, io.BytesIO()
        if self._upload is None:
            part.seek(0)
            self._run(self._single(part)).wait()
        else:
            self._hand(part)
            self._hand(None)
            self._upload.wait()

    def discard(self) -> None:
        """Abort the upload, if one was started (nothing was committed: no object appears)."""
        self._part = io.BytesIO()
        if self._upload is not None:
            self._upload.abort()


@contextlib.contextmanager
def streaming(writer: PartsWriter, after: Callable[[], None]) -> Iterator[IO[bytes]]:
    """``writer``, committed when the ``with`` block ends normally (then ``after``: a listing cache
    to forget) and discarded when anything escapes it (an exception, Ctrl-C, a task timeout)."""
    try:
        yield cast(IO[bytes], writer)
        writer.commit()
        after()
    except BaseException:
        writer.discard()
        raise
    finally:
        writer.close()


async def send_all(
    parts: AsyncGenerator[io.BytesIO, None], send: Callable[[int, io.BytesIO], Awaitable[_T]], most: int, store: str
) -> list[_T]:
    """``send(number, part)`` for each part (numbered from 1), :data:`UPLOAD_CONCURRENCY` at a time:
    the next part is taken only when one is done, so memory holds that many. On a failure the
    others are cancelled, then it raises; more than ``most`` parts is an error naming ``store``."""
    done: list[_T] = []
    in_flight: set[asyncio.Future[_T]] = set()
    number = 0
    more = True
    try:
        while more or in_flight:
            while more and len(in_flight) < UPLOAD_CONCURRENCY:
                data = await anext(parts, None)
                if data is None:
                    more = False
                    break
                number += 1
                if number > most:
                    raise OSError(f"{store} takes at most {most:,} parts; the report is larger than that.")
                in_flight.add(asyncio.ensure_future(send(number, data)))
                del data  # the task holds the part until the store has it
            if in_flight:
                ready, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                done.extend(task.result() for task in ready)  # a failed part raises here
    except BaseException:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        raise
    finally:
        await parts.aclose()  # the file it reads is closed now, not when the generator is collected
    return done
