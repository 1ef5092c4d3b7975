"""The Bulk result file: fetched without credentials into a scratch zip, then split.

The link is a pre-signed blob URL that lives five minutes: Microsoft says not to depend on its
domain, and it gets no Authorization or developer token (a plain client, https only, loopback
aside, no redirects), exactly as a report link (:mod:`..reporting.download`, whose fetcher this
reuses: streamed to disk in chunks, zip sniffed, 403/404/410 raised as an expired link).
"""

from __future__ import annotations

import asyncio
import os
import shutil

from airflow_provider_msads.bulk.split import AccountSync, Splitter
from airflow_provider_msads.errors import LinkExpiredError
from airflow_provider_msads.reporting.download import _afetch_zip, _fetch_zip, _new_scratch


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
    """Download the zip behind ``url`` and feed it to ``splitter``; the zip is deleted after."""
    folder = _new_scratch()
    try:
        zip_path = os.path.join(folder, "bulk.zip")
        with open(zip_path, "wb") as target:
            try:
                _fetch_zip(url, target, timeout=timeout)
            except LinkExpiredError as err:
                raise _bulk_link_expired(err) from err
        return splitter.feed(zip_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def afetch_and_split(url: str, splitter: Splitter, *, timeout: float = 300.0) -> AccountSync:
    """Async twin: the network on the loop, file work (writing, unzipping, splitting) in threads."""
    folder = await asyncio.to_thread(_new_scratch)
    try:
        zip_path = os.path.join(folder, "bulk.zip")
        target = await asyncio.to_thread(open, zip_path, "wb")
        try:
            await _afetch_zip(url, target, timeout=timeout)
        except LinkExpiredError as err:
            raise _bulk_link_expired(err) from err
        finally:
            await asyncio.to_thread(target.close)
        async with splitter.async_lock():  # waits on the loop, not in a thread
            return await asyncio.to_thread(splitter.feed, zip_path)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
