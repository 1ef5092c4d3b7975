"""Azure Blob Storage destinations (``abfs://conn_id@container/path``: ObjectStoragePath with the
microsoft-azure provider, which hands out adlfs's file system): the report becomes a block blob
made of staged blocks (Put Block) that one Put Block List commits, so the blob appears under its
final name only whole, without the copy a staging name and a move would cost.

Why not adlfs's own file object: fsspec closes a file on the way out of a failing ``with`` block
too, and closing an adlfs file commits its blocks: half a report would become the blob. It also
stages one buffer's blocks and waits for them before reading on.

A failed or interrupted upload leaves only uncommitted blocks: no blob under the name (not
listed, not readable), and the service discards them by itself after 7 days
(https://learn.microsoft.com/rest/api/storageservices/put-block-list: "Uncommitted blocks will
expire"; Azure has no call to drop them sooner, short of committing a blob under that name).

Imports of the Azure SDK stay out of this module: the provider's core must import without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import uuid
from collections.abc import AsyncGenerator
from typing import IO, Any

from airflow_provider_msads.reporting.loop_upload import LoopUpload
from airflow_provider_msads.reporting.parts_writer import PartsWriter, send_all, streaming

log = logging.getLogger(__name__)

#: Most blocks one Put Block List commits (https://learn.microsoft.com/rest/api/storageservices/put-block-list):
#: the block grows beyond the upload block only for a file larger than 50,000 of them.
MAX_BLOCKS = 50_000


def is_blob_fs(fs: Any) -> bool:
    """adlfs's ``AzureBlobFileSystem`` (what ObjectStoragePath gives for ``abfs://``/``abfss://``),
    whose async Blob service client the blocks are sent with."""
    return type(fs).__module__.split(".")[0] == "adlfs" and hasattr(fs, "service_client") and hasattr(fs, "loop")


def is_forbidden(exc: BaseException) -> bool:
    """The Azure SDK's 403 (``HttpResponseError`` or ``ClientAuthenticationError``, which adlfs lets
    through unchanged when a container cannot be inspected)."""
    return type(exc).__module__.split(".")[0] == "azure" and getattr(exc, "status_code", None) == 403


def block_id(upload: str, number: int) -> str:
    """The block's ID: 32 characters, the upload's own prefix and the block's number.

    Azure wants every block ID of one blob to have the same length
    (https://learn.microsoft.com/rest/api/storageservices/put-block), uncommitted blocks of an
    earlier, abandoned upload to that name included (Azurite answers another length with 400
    InvalidBlobOrBlock): 32 is what adlfs uses too. The random prefix keeps two uploads to one name
    from taking each other's blocks.
    """
    return f"{upload}{number:08d}"


def upload_blocks(local: str, fs: Any, path: str, block_size: int, concurrency: int) -> None:
    """Upload the file ``local`` to ``path`` (``container/blob``) as staged blocks of ``block_size``
    bytes, ``concurrency`` of them in flight (a new one is read only when one is done: memory holds
    that many blocks), committed by one Put Block List after the last.

    Runs on adlfs's event loop while this thread waits; interrupted (a task timeout or SIGTERM
    raises here), the upload is cancelled before the commit, and the thread waits at most
    :data:`.loop_upload.ABORT_WAIT` for that before raising (:class:`.loop_upload.LoopUpload`).
    """
    container, blob, _ = fs.split_path(path)
    work = _put_blocks(fs, local, container, blob, block_size, concurrency)
    LoopUpload(fs.loop, work, f"The Azure upload to {blob}", "its uncommitted blocks expire in 7 days").wait()
    with contextlib.suppress(Exception):  # adlfs caches listings: the new blob must show up
        fs.invalidate_cache(path)


async def _put_blocks(fs: Any, local: str, container: str, blob: str, block_size: int, concurrency: int) -> None:
    client = fs.service_client.get_blob_client(container, blob)
    size = os.path.getsize(local)
    block_size = max(block_size, -(-size // MAX_BLOCKS))
    upload = uuid.uuid4().hex[:24]
    ids: list[str] = []
    in_flight: set[asyncio.Task[bytearray]] = set()
    # One buffer per block in flight, reused (read into, sent from): a fresh 8 MiB bytes object per
    # block, read in a worker thread and freed on the loop's, left the process's heap several
    # blocks larger than what was in flight (benchmark P12).
    free: list[bytearray] = []  # at most ``concurrency`` buffers in all

    async def stage(block: str, buffer: bytearray, length: int) -> bytearray:
        await client.stage_block(block_id=block, data=memoryview(buffer)[:length], length=length)
        return buffer  # the store has the block: the buffer may take the next one

    try:
        with open(local, "rb") as source:
            while True:
                while len(in_flight) < concurrency:
                    if not free:
                        free.append(bytearray(block_size))
                    buffer = free.pop()
                    length = await asyncio.to_thread(source.readinto, buffer)
                    if not length:
                        free.append(buffer)
                        break
                    ids.append(block_id(upload, len(ids)))
                    in_flight.add(asyncio.ensure_future(stage(ids[-1], buffer, length)))
                if not in_flight:
                    break
                ready, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in ready:
                    free.append(task.result())  # a refused block raises here
        # The blob appears now, whole (an empty list makes an empty blob). The SDK encodes the IDs.
        await client.commit_block_list(ids)
    except BaseException:  # also CancelledError: the waiting thread was interrupted
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        raise


def azure_stream(fs: Any, path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A writer for ``path`` (``container/blob``) whose 8 MiB blocks are staged as the report is
    written (:class:`.parts_writer.PartsWriter`), two in flight, committed by one Put Block List
    when the ``with`` block ends normally; when anything escapes it nothing is committed (the
    staged blocks expire after 7 days)."""
    container, blob, _ = fs.split_path(path)

    async def one(part: io.BytesIO) -> AsyncGenerator[io.BytesIO, None]:
        yield part

    writer = PartsWriter(
        fs.loop,
        lambda parts: _stage_and_commit(fs, parts, container, blob),
        lambda part: _stage_and_commit(fs, one(part), container, blob),
        what=f"The Azure upload to {blob}",
        left="its uncommitted blocks expire in 7 days",
    )

    def forget() -> None:
        with contextlib.suppress(Exception):  # adlfs caches listings: the new blob must show up
            fs.invalidate_cache(path)

    return streaming(writer, forget)


async def _stage_and_commit(fs: Any, parts: AsyncGenerator[io.BytesIO, None], container: str, blob: str) -> None:
    client = fs.service_client.get_blob_client(container, blob)
    upload = uuid.uuid4().hex[:24]

    async def stage(number: int, part: io.BytesIO) -> str | None:
        view = part.getbuffer()
        try:
            if not view.nbytes:  # an empty report: no block (Azure refuses empty ones), an empty blob
                return None
            block = block_id(upload, number - 1)
            await client.stage_block(block_id=block, data=view, length=view.nbytes)
            return block
        finally:
            view.release()

    staged = await send_all(parts, stage, MAX_BLOCKS, "Azure Blob Storage")
    # The blob appears now, whole (an empty list makes an empty blob). The SDK encodes the IDs.
    await client.commit_block_list(sorted(block for block in staged if block is not None))


#: The fix for a destination whose scheme no installed Airflow file system serves (``wasb://``,
#: the WasbHook's own name, is one: ObjectStoragePath knows Azure Blob only as ``abfs://``).
SCHEME_REMEDY = (
    "Use a scheme an installed provider serves: Azure Blob Storage is "
    "'abfs://<conn_id>@<container>/<path>' (or abfss://; wasb:// is not one of them) with "
    "apache-airflow-providers-microsoft-azure, S3 's3://<conn_id>@<bucket>/<key>' with the amazon "
    "provider, Google Cloud Storage 'gs://<conn_id>@<bucket>/<key>' with the google provider."
)
