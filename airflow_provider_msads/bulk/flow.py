"""One account's download, written once as a flow the hook drives with sync or async I/O.

The flow yields steps (:class:`Submit`, :class:`Status`, :class:`Wait`, :class:`Fetch`) and
receives their results; a step's failure is thrown back in, where the flow decides:

* a delta refused with 3603, or a status ``FailedFullSyncRequired``: the account is downloaded
  again in full, in the same try;
* 3207 (account over four million keywords): the campaign ids of the fault's ``Details`` are
  downloaded instead, 1,000 per request, one request after the other;
* a result link that expired (it lives five minutes): a new status call returns a fresh one.

Every download of the account goes through :class:`Fetch`, which the hook turns into "download
the zip, feed it to the splitter"; the flow only decides what to ask for. No Airflow here.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_msads.bulk.request import build_account_request, build_campaign_requests, needs_full
from airflow_provider_msads.bulk.service import (
    AccountTooBigError,
    BulkError,
    BulkStatus,
    FullSyncRequiredError,
    poll_delay,
    status_error,
)
from airflow_provider_msads.bulk.split import AccountSync, parse_sync_time
from airflow_provider_msads.errors import LinkExpiredError

log = logging.getLogger(__name__)

#: How often an expired result link is renewed by asking for the status again.
LINK_RENEWALS = 3


@dataclass(frozen=True)
class Submit:
    request: dict[str, Any]


@dataclass(frozen=True)
class Status:
    request_id: str


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Fetch:
    """Download the file behind ``url`` and split it; answered with an :class:`AccountSync`."""

    url: str
    request_id: str


Step = Submit | Status | Wait | Fetch


@dataclass(frozen=True)
class AccountResult:
    """One account done: whether the download was full, and the Sync Time the next delta sends."""

    account_id: str
    full: bool
    sync_time: str | None
    requests: tuple[str, ...]
    by_campaigns: bool = False

    def to_dict(self) -> dict[str, Any]:
        when = parse_sync_time(self.sync_time or "")
        return {
            "sync_time": self.sync_time,
            "sync_time_utc": when.isoformat().replace("+00:00", "Z") if when else None,
            "full": self.full,
            "requests": list(self.requests),
            "by_campaigns": self.by_campaigns,
        }


class _Restart(Exception):
    """Internal: start the account over in full."""


def _earliest(times: Sequence[str | None]) -> str | None:
    """Of several Sync Times (one per campaign batch), the earliest: a delta from it misses nothing."""
    known = [(parse_sync_time(t or ""), t) for t in times if t]
    dated = [(when, text) for when, text in known if when is not None]
    if dated:
        return min(dated)[1]
    return next((t for t in times if t), None)


@dataclass(frozen=True)
class _Job:
    """What stays the same for one account's download across its restarts (full after a refused delta)."""

    account_id: str
    entities: Sequence[str]
    data_scope: Sequence[str]
    poll_interval: float | None
    timeout: float
    started: float
    clock: Callable[[], float]


def account_download(
    account_id: str,
    entities: Sequence[str],
    *,
    data_scope: Sequence[str] = ("EntityData",),
    last_sync: datetime.datetime | None = None,
    poll_interval: float | None = None,
    timeout: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    request_id: str | None = None,
) -> Generator[Step, Any, AccountResult]:
    """Download one account (delta when ``last_sync`` is given), splitting each file as it lands.

    ``request_id``: a download already submitted with ``last_sync`` (the deferrable operator's,
    after the trigger's wait): its status is asked for instead of submitting again.
    """
    if needs_full(data_scope):
        last_sync = None
    job = _Job(account_id, tuple(entities), tuple(data_scope), poll_interval, timeout, clock(), clock)
    submitted = request_id
    while True:
        full = last_sync is None
        try:
            return (yield from _attempt(job, last_sync, submitted))
        except _Restart:
            if full:
                raise BulkError(
                    f"Account {account_id}: Microsoft asked for a full download, and a full download was sent.",
                    codes=[3603],
                    remedy="Run the task again later; if it persists, ask Microsoft support with the tracking id.",
                ) from None
            log.warning(
                "Account %s: Microsoft cannot serve a delta since %s (full sync required); downloading in full.",
                account_id,
                last_sync,
            )
            last_sync = None
            submitted = None


def _attempt(
    job: _Job, last_sync: datetime.datetime | None, submitted: str | None = None
) -> Generator[Step, Any, AccountResult]:
    if submitted is not None:
        sync = yield from _wait_and_fetch(job, submitted)
        return AccountResult(job.account_id, last_sync is None, sync.sync_time, (submitted,))
    request = build_account_request(job.account_id, job.entities, data_scope=job.data_scope, last_sync=last_sync)
    try:
        request_id = yield Submit(request)
    except FullSyncRequiredError:
        raise _Restart() from None
    except AccountTooBigError as err:
        return (yield from _by_campaigns(job, err, last_sync))
    sync = yield from _wait_and_fetch(job, request_id)
    return AccountResult(job.account_id, last_sync is None, sync.sync_time, (request_id,))


def _by_campaigns(
    job: _Job, err: AccountTooBigError, last_sync: datetime.datetime | None
) -> Generator[Step, Any, AccountResult]:
    if not err.campaign_ids:
        raise err
    account_id = job.account_id
    requests = build_campaign_requests(
        account_id, err.campaign_ids, job.entities, data_scope=job.data_scope, last_sync=last_sync
    )
    log.info(
        "Account %s is too big for one download (3207): downloading its %d campaigns in %d requests.",
        account_id,
        len(err.campaign_ids),
        len(requests),
    )
    ids: list[str] = []
    times: list[str | None] = []
    for request in requests:
        try:
            request_id = yield Submit(request)
        except FullSyncRequiredError:
            raise _Restart() from None
        ids.append(request_id)
        sync = yield from _wait_and_fetch(job, request_id)
        times.append(sync.sync_time)
    return AccountResult(account_id, last_sync is None, _earliest(times), tuple(ids), by_campaigns=True)


def _wait_and_fetch(job: _Job, request_id: str) -> Generator[Step, Any, AccountSync]:
    account_id, timeout = job.account_id, job.timeout
    status: BulkStatus = yield Status(request_id)
    while not status.done:
        waited = job.clock() - job.started
        if waited > timeout:
            raise BulkError(
                f"Bulk download {request_id} (account {account_id}) was not ready after {waited:.0f} s "
                f"({status.percent}% done; timeout={timeout:.0f} s).",
                remedy="Raise `timeout`; big accounts take long (Microsoft suggests polling every minute after "
                "five or ten minutes).",
                retryable=True,
            )
        yield Wait(poll_delay(waited, job.poll_interval))
        status = yield Status(request_id)
    for renewal in range(LINK_RENEWALS + 1):
        if status.status != "Completed":
            if status.status == "FailedFullSyncRequired" or any(str(e.get("Code")) == "3603" for e in status.errors):
                raise _Restart()
            raise status_error(status, account_id)
        if not status.url:
            raise BulkError(
                f"Bulk download {request_id} (account {account_id}) completed without a ResultFileUrl.",
                remedy="Check bulk_url (leave it unset for Microsoft); run the task again.",
                tracking_id=status.tracking_id,
            )
        try:
            sync: AccountSync = yield Fetch(status.url, request_id)
            return sync
        except LinkExpiredError:
            if renewal == LINK_RENEWALS:
                raise
            log.info("Bulk download %s: the result link expired (it lives five minutes); asking again.", request_id)
            status = yield Status(request_id)
    raise AssertionError("unreachable")  # pragma: no cover
