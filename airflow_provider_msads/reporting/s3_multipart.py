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
from collections.abc import AsyncGenerator, Coroutine
from typing import IO, Any

from airflow_provider_msads.reporting import parts_writer
from airflow_provider_msads.reporting.loop_upload import LoopUpload
from airflow_provider_msads.reporting.parts_writer import PartsWriter, send_all, streaming

log = logging.getLogger(__name__)

#: The part size and the parts in flight: one rule for every store written in parts.
PART_SIZE = parts_writer.PART_SIZE
UPLOAD_CONCURRENCY = parts_writer.UPLOAD_CONCURRENCY
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


class S3StreamWriter(PartsWriter):
    """What :func:`.destinations.output` hands the report pipeline for S3 (:class:`.parts_writer.PartsWriter`):
    8 MiB parts of a multipart upload to the final key, sent as they fill; a report of one part or
    less is one PUT at :meth:`commit`."""

    def __init__(self, fs: Any, path: str) -> None:
        bucket, key, _ = fs.split_path(path)
        super().__init__(
            fs.loop,
            lambda parts: _s3_multipart(fs, parts, bucket, key),
            lambda part: _s3_put(fs, part, bucket, key),
            what=f"The S3 upload to {key}",
            left="the lifecycle rule will remove it",
        )


def s3_stream(fs: Any, path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """An :class:`S3StreamWriter` for ``path`` whose upload is completed when the ``with`` block
    ends normally and aborted when anything escapes it (an exception, Ctrl-C, a task timeout)."""
    return streaming(S3StreamWriter(fs, path), lambda: _forget_listing(fs, path))


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
    """Send the parts, :data:`UPLOAD_CONCURRENCY` at a time (:func:`.parts_writer.send_all`)."""
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

    done = await send_all(parts, send, MAX_PARTS, "S3")
    return sorted(done, key=lambda part: int(part["PartNumber"]))
