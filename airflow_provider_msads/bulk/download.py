"""The Bulk result file: fetched without credentials into a scratch zip, then split.

The link is a pre-signed blob URL that lives five minutes: Microsoft says not to depend on its
domain, and it gets no Authorization or developer token (a plain client, https only, loopback
aside, no redirects), exactly as a report link (:mod:`..reporting.download`, whose fetcher this
reuses: streamed to disk in chunks, zip sniffed, 403/404/410 raised as an expired link).
"""

from __future__ import annotations

import asyncio

from airflow_provider_msads.bulk.split import AccountSync, Splitter
from airflow_provider_msads.errors import LinkExpiredError
from airflow_provider_msads.reporting.download import _new_scratch, afetched_zip, fetched_zip


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
    try:
        with fetched_zip(url, "bulk.zip", timeout=timeout) as zip_path:
            return splitter.feed(zip_path)
    except LinkExpiredError as err:
        raise _bulk_link_expired(err) from err


async def afetch_and_split(url: str, splitter: Splitter, *, timeout: float = 300.0) -> AccountSync:
    """Async twin: the network on the loop, file work (writing, unzipping, splitting) in threads."""
    try:
        # the lock is waited for on the loop (not in a thread), once the zip is here
        async with afetched_zip(url, "bulk.zip", timeout=timeout) as zip_path, splitter.async_lock():
            return await asyncio.to_thread(splitter.feed, zip_path)
    except LinkExpiredError as err:
        raise _bulk_link_expired(err) from err
