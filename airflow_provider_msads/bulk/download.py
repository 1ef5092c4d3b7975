"""The Bulk result file: fetched without credentials into a scratch zip, then split.

The link is a pre-signed blob URL that lives five minutes: Microsoft says not to depend on its
domain, and it gets no Authorization or developer token (a plain client, https only, loopback
aside, no redirects), exactly as a report link (:mod:`..reporting.download`, whose fetcher this
reuses: zip sniffed, 403/404/410 raised as an expired link). The zip is split as it arrives: the
download (a reader thread, or the event loop) and the inflating and splitting (this thread, or a
worker thread) overlap, joined by a few chunks; a zip that cannot be read that way is spooled to
scratch and split from there (one log line says why).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from airflow_provider_msads.bulk.split import (
    BULK_ZIP,
    AccountSync,
    BulkFileError,
    Splitter,
)
from airflow_provider_msads.errors import DAMAGED_ZIP, LinkExpiredError
from airflow_provider_msads.reporting import inflate_child
from airflow_provider_msads.reporting.download import _limits, open_entry
from airflow_provider_msads.reporting.fetch import _new_scratch, afetched_zip, astreamed, spooled, streamed
from airflow_provider_msads.reporting.zipstream import ChunkReader, entry_data


def _bulk_link_expired(err: LinkExpiredError) -> LinkExpiredError:
    """The shared fetcher speaks of a report link; say it was the Bulk result file's."""
    return LinkExpiredError(
        f"The Bulk result file link answered HTTP {err.http_status} (it lives 5 minutes).",
        remedy="Asked for the download status again for a fresh link; if it persists, the download request "
        "expired (ids live two days).",
        http_status=err.http_status,
    )


def new_scratch() -> str:
    """A private scratch folder (swept by the next run if this process is killed)."""
    return _new_scratch()


def fetch_and_split(url: str, splitter: Splitter, *, timeout: float = 300.0) -> AccountSync:
    """Download the zip behind ``url`` and feed it to ``splitter`` as it arrives."""
    try:
        with streamed(url, timeout=timeout) as (chunks, host):
            return _split_stream(chunks, host, splitter)
    except LinkExpiredError as err:
        raise _bulk_link_expired(err) from err


async def afetch_and_split(url: str, splitter: Splitter, *, timeout: float = 300.0) -> AccountSync:
    """Async twin: the network on the loop, inflating and splitting in a worker thread.

    The splitter takes one file at a time; its lock is taken on the loop (never waited for in a
    thread). When it is free, this file is split as it arrives, holding the lock meanwhile; when
    another account's file holds it, this one is downloaded whole to scratch first (as before),
    so that downloads still overlap, and split once the lock is free.
    """
    lock = splitter.async_lock()
    try:
        if lock.locked():
            async with afetched_zip(url, "bulk.zip", timeout=timeout) as zip_path, lock:
                return await asyncio.to_thread(splitter.feed, zip_path)
        async with lock:
            return await astreamed(url, lambda chunks, host: _split_stream(chunks, host, splitter), timeout=timeout)
    except LinkExpiredError as err:
        raise _bulk_link_expired(err) from err


def _split_stream(chunks: Iterator[bytes], host: str, splitter: Splitter) -> AccountSync:
    reader = ChunkReader(chunks)
    entry = open_entry(
        reader, host, "Bulk", damaged=lambda exc: BulkFileError.damaged_zip("Bulk download", exc, "download it again")
    )
    if entry is None:
        with spooled(reader, "bulk.zip") as zip_path:
            return splitter.feed(zip_path)
    BULK_ZIP.check(entry.name, entry.size, entry.compressed)
    try:
        # Not in a thread ahead (:func:`.fetch.ahead`): splitting is Python work holding the GIL,
        # far slower than inflating, so a thread would add memory and gain little. A big file is
        # inflated by a child process instead (:mod:`.inflate_child`), off this process's GIL.
        with (
            BULK_ZIP.refusing(),
            contextlib.closing(entry_data(reader, entry, _limits(), inflate_child.inflate)) as pieces,
        ):
            return splitter.feed_pieces(pieces)
    except DAMAGED_ZIP as exc:  # pragma: no cover - feed_pieces wraps these
        raise BulkFileError.damaged_zip("Bulk download", exc, "download the file again") from exc
