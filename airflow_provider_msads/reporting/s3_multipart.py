"""S3's multipart upload on s3fs's own client and loop: of a finished file
(:func:`upload_multipart`), or while the report is being written (:func:`s3_stream`).

Both send :data:`PART_SIZE` parts to the final key, :data:`UPLOAD_CONCURRENCY` in flight, and
complete the upload only after the last one; any failure, or the waiting thread being interrupted
(a task timeout, SIGTERM, Ctrl-C), aborts it: no object appears and no upload stays open. One
coroutine (:func:`_s3_multipart`) does the S3 calls; one waiter (:class:`.loop_upload.LoopUpload`) runs it from
the worker's thread. Used by :mod:`.destinations`, which decides what goes where.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator
from typing import IO, Any, cast

from airflow_provider_msads.reporting.loop_upload import LoopUpload

log = logging.getLogger(__name__)

#: The part size: what each part in flight holds in memory. S3 needs at least 5 MiB per part and
#: allows 10,000 parts: 8 MiB parts carry 78 GiB, beyond the largest report entry :mod:`.download`
#: accepts (64 GiB). Also the block of the other stores' uploads
#: (:data:`.destinations.UPLOAD_BLOCK_SIZE`): a multiple of 256 KiB, as GCS wants its chunks.
PART_SIZE = 8 * 1024 * 1024
#: S3 parts in flight at once. One at a time leaves the store idle while the worker reads and
#: sends the next part (benchmark P8: a 1 GB report took 48-64 s against moto, boto3's 10-thread
#: transfer 18-33 s); two overlap both. Each holds one part in memory (see
#: :class:`S3StreamWriter` on copies); four showed no gain over two beyond the noise of a shared
#: 2-core machine (benchmarks/README.md, P8).
UPLOAD_CONCURRENCY = 2
#: S3's most parts in one multipart upload.
MAX_PARTS = 10_000


def is_s3fs(fs: Any) -> bool:
    """s3fs's file system (ObjectStoragePath's S3), whose async client the parts are sent with.

    Its own file object (:func:`.destinations._upload_committed`) sends one part at a time and waits
    for each.
    """
    return type(fs).__module__.split(".")[0] == "s3fs" and hasattr(fs, "_call_s3") and hasattr(fs, "loop")


def upload_multipart(local: str, fs: Any, path: str) -> None:
    """A multipart upload of the file ``local`` to the final key with :data:`UPLOAD_CONCURRENCY`
    parts in flight, completed after the last part and aborted on any failure, including this
    thread being interrupted (see :class:`.loop_upload.LoopUpload`)."""
    bucket, key, _ = fs.split_path(path)
    size = os.path.getsize(local)
    part_size = max(PART_SIZE, -(-size // MAX_PARTS))

    async def parts() -> AsyncGenerator[io.BytesIO, None]:
        with open(local, "rb") as source:
            while data := await asyncio.to_thread(source.read, part_size):
                body = io.BytesIO(data)  # what botocore would wrap it in; aiohttp copies it (then data is freed)
                del data
                yield body

    upload = _upload(fs, key, _s3_multipart(fs, parts(), bucket, key))
    upload.wait()
    _forget_listing(fs, path)


def _upload(fs: Any, key: str, work: Coroutine[Any, Any, None]) -> LoopUpload:
    """``work`` on s3fs's loop, waited for by this thread (an interruption aborts the upload)."""
    return LoopUpload(fs.loop, work, f"The S3 upload to {key}", "the lifecycle rule will remove it")


class S3StreamWriter(io.RawIOBase):
    """What :func:`.destinations.output` hands the report pipeline for S3: each :data:`PART_SIZE` written
    is sent as a part of a multipart upload to the final key as soon as it is full and more
    follows, while the rest is still being written. A full part waits in ``write`` until the upload
    takes it (when fewer than :data:`UPLOAD_CONCURRENCY` are in flight): memory holds the parts in
    flight and the one being filled, never the report. A report of one part or less is one PUT at
    :meth:`commit`.

    Each part is filled in its own ``BytesIO``, which goes to botocore and aiohttp as it is: a
    ``bytes`` body would be wrapped in a ``BytesIO`` sharing it, which aiohttp then copies.
    """

    def __init__(self, fs: Any, path: str) -> None:
        super().__init__()
        self.fs = fs
        self.path = path
        self.bucket, self.key, _ = fs.split_path(path)
        self.size = 0
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

    def _hand(self, part: io.BytesIO | None) -> None:
        """Give the upload its next part (None: no more), and wait until it has taken it."""
        if self._upload is None:
            queue = self._queue

            async def parts() -> AsyncGenerator[io.BytesIO, None]:
                while (body := await queue.get()) is not None:
                    queue.task_done()
                    yield body

            work = _s3_multipart(self.fs, parts(), self.bucket, self.key)
            self._upload = _upload(self.fs, self.key, work)
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
        """The report is whole: send what remains and complete the upload (or PUT a small report)."""
        part, self._part = self._part, io.BytesIO()
        if self._upload is None:
            part.seek(0)
            _upload(self.fs, self.key, _s3_put(self.fs, part, self.bucket, self.key)).wait()
        else:
            self._hand(part)
            self._hand(None)
            self._upload.wait()
        _forget_listing(self.fs, self.path)

    def discard(self) -> None:
        """Abort the multipart upload, if one was started (nothing was completed: no key appears)."""
        self._part = io.BytesIO()
        if self._upload is not None:
            self._upload.abort()


@contextlib.contextmanager
def s3_stream(fs: Any, path: str) -> Iterator[IO[bytes]]:
    """An :class:`S3StreamWriter` for ``path`` whose upload is completed when the ``with`` block
    ends normally and aborted when anything escapes it (an exception, Ctrl-C, a task timeout)."""
    writer = S3StreamWriter(fs, path)
    try:
        yield cast(IO[bytes], writer)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    finally:
        writer.close()


def _forget_listing(fs: Any, path: str) -> None:
    with contextlib.suppress(Exception):  # s3fs caches listings: the new key must show up
        fs.invalidate_cache(path)


def _checksum_algorithm(fs: Any) -> str | None:
    """``CRC32`` when the client sends checksums by default (botocore's ``when_supported``), as
    boto3's transfer does: the upload is declared with it and the completion lists each part's
    checksum, so the store checks parts against the whole (and need not read the whole object
    again to compute a full-object checksum). ``when_required`` (some S3-compatible stores
    reject checksums): none, as before."""
    client = getattr(fs, "s3", None)
    config = getattr(getattr(client, "meta", None), "config", None)
    return "CRC32" if getattr(config, "request_checksum_calculation", None) == "when_supported" else None


async def _s3_multipart(fs: Any, parts: AsyncGenerator[io.BytesIO, None], bucket: str, key: str) -> None:
    await fs.set_session()
    algorithm = _checksum_algorithm(fs)
    declared = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    mpu = await fs._call_s3("create_multipart_upload", Bucket=bucket, Key=key, **declared)
    upload_id = mpu["UploadId"]
    try:
        sent = await _send_parts(fs, parts, bucket, key, upload_id, algorithm)
        await fs._call_s3(
            "complete_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": sent}
        )
    except BaseException:  # also CancelledError: the waiting thread was interrupted
        with contextlib.suppress(Exception):
            await fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        raise


async def _s3_put(fs: Any, data: io.BytesIO, bucket: str, key: str) -> None:
    """One PUT: a report smaller than a part (S3 makes a PUT's object appear whole, or not at all)."""
    await fs.set_session()
    await fs._call_s3("put_object", Bucket=bucket, Key=key, Body=data)


async def _send_parts(
    fs: Any, parts: AsyncGenerator[io.BytesIO, None], bucket: str, key: str, upload_id: str, algorithm: str | None
) -> list[dict[str, Any]]:
    """Send the parts, :data:`UPLOAD_CONCURRENCY` at a time (the next one is taken only when one is
    done: memory holds that many parts); on failure the others are cancelled, then it raises."""
    checksum = f"Checksum{algorithm}" if algorithm else None
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}

    async def send(number: int, data: io.BytesIO) -> dict[str, Any]:
        out = await fs._call_s3(
            "upload_part", Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra
        )
        part = {"PartNumber": number, "ETag": out["ETag"]}
        if checksum and checksum in out:
            part[checksum] = out[checksum]
        return part

    done: list[dict[str, Any]] = []
    in_flight: set[asyncio.Task[dict[str, Any]]] = set()
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
                if number > MAX_PARTS:
                    raise OSError(f"S3 takes at most {MAX_PARTS:,} parts; the report is larger than that.")
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
    return sorted(done, key=lambda part: int(part["PartNumber"]))
