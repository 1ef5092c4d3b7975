"""Bulk v13 download and status calls as flows (:mod:`_flow`: one generator, sync and async drivers),
and what Microsoft's refusals mean for the operator.

Faults come from the catalogue (:data:`~airflow_provider_msads.errors.catalogue.BULK_CATALOGUE`), with three
that change what the operator does rather than failing it:

* **3207** AccountTooBigToDownload: the fault's ``Details`` hold the account's campaign ids
  (comma separated); :class:`AccountTooBigError` carries them, and the account is downloaded by
  campaign ids instead.
* **3603** FullSyncRequired, and the status ``FailedFullSyncRequired``: :class:`FullSyncRequiredError`;
  the account is downloaded again in full within the same try.
* **4204** NoMoreCallsPermittedForTheTimePeriod: "resubmit your request after waiting up to 15
  minutes" (the Bulk Download and Upload guide); retried in the call after that wait.
  **117** CallRateExceeded is retried with backoff as on every service.

Polling follows Microsoft's advice in the same guide: "well less than one million keywords,
consider polling at 15 to 20 second intervals"; about a million, "one minute intervals after
waiting five minutes" (:func:`poll_delay`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_provider_msads.errors import (
    ApiError,
    MicrosoftAdsError,
    TransientApiError,
    fault_code,
    fault_items,
)
from airflow_provider_msads.errors.catalogue import BULK_CATALOGUE
from airflow_provider_msads.tokens.flow import (
    Flow,
    RetryPolicy,
    read_json,
    retrying,
)
from airflow_provider_msads.tokens.rest import Refusal, RestService

ACCOUNT_PATH = "Campaigns/DownloadByAccountIds"
CAMPAIGNS_PATH = "Campaigns/DownloadByCampaignIds"
STATUS_PATH = "BulkDownloadStatus/Query"

#: Microsoft's RequestStatus values (GetBulkDownloadStatus).
STATUSES = ("InProgress", "Completed", "Failed", "FailedFullSyncRequired")
#: 4204: "you can resubmit your request after waiting up to 15 minutes".
QUOTA_WAIT = 15 * 60.0
#: Polling cadence from Microsoft's Download Best Practices.
POLL_EVERY = 15.0
SLOW_POLL_EVERY = 60.0
SLOW_AFTER = 5 * 60.0


class BulkError(ApiError):
    """A Bulk download refused or failed."""


class TransientBulkError(TransientApiError, BulkError):
    """A Bulk refusal worth retrying (4204, 117, 5xx)."""


class AccountTooBigError(BulkError):
    """3207: the account is over four million keywords; download it by these campaign ids."""

    def __init__(self, message: str, *, campaign_ids: tuple[str, ...], **kwargs: Any) -> None:
        self.campaign_ids = campaign_ids
        super().__init__(message, **kwargs)


class FullSyncRequiredError(BulkError):
    """3603 / FailedFullSyncRequired: the delta cannot be served; download this account in full."""


class BulkDownloadFailedError(BulkError):
    """The status said Failed: "submit a new download with fewer entities… or try again later"."""


def _campaign_ids(details: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in details.replace(";", ",").split(",") if part.strip().isdigit()))


def bulk_error(response: httpx.Response, *, operation: str, account_id: str | None = None) -> MicrosoftAdsError:
    """The error for a refused download or status call, explained from the Bulk catalogue."""
    refusal = Refusal.read(response, operation)
    retry_after = refusal.retry_after
    common = refusal.common
    where = f" (account {account_id})" if account_id else ""
    for item in fault_items(refusal.body):
        code = fault_code(item)
        entry = BULK_CATALOGUE.get(code) if code is not None else None
        if entry is None:
            continue
        details = str(item.get("Details") or "").strip()
        text = f"{operation} failed{where}: error {code} {entry.name}: {entry.meaning.removeprefix('Bulk: ')}"
        if code == 3207:
            ids = _campaign_ids(details)
            return AccountTooBigError(
                text + f" {len(ids)} campaign ids in Details.",
                campaign_ids=ids,
                field=entry.field,
                remedy=entry.remedy,
                **common,
            )
        if code == 3603:
            return FullSyncRequiredError(text, field=entry.field, remedy=entry.remedy, **common)
        if code == 4204:
            return TransientBulkError(
                text,
                remedy=entry.remedy,
                retryable=True,
                retry_after=retry_after if retry_after is not None else QUOTA_WAIT,
                **common,
            )
        message = str(item.get("Message") or "").strip()
        if message and code in (3211, 3216, 3217, 3218, 3228, 4201):
            text += f" Microsoft's message: {message[:300]}"
        return BulkError(text, retry_after=retry_after, **entry.advice(), **common)
    return refusal.fallback()


@dataclass(frozen=True)
class BulkStatus:
    """One GetBulkDownloadStatus answer. ``url`` lives five minutes: poll again for a new one."""

    request_id: str
    status: str
    percent: int = 0
    url: str | None = None
    errors: tuple[dict[str, Any], ...] = field(default=())
    tracking_id: str | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "percent": self.percent,
            "url": self.url,
            "errors": [dict(e) for e in self.errors],
            "tracking_id": self.tracking_id,
        }


def status_error(status: BulkStatus, account_id: str | None = None) -> BulkError:
    """A finished status that is not Completed, as the error the operator acts on."""
    where = f" for account {account_id}" if account_id else ""
    codes = [int(e["Code"]) for e in status.errors if str(e.get("Code", "")).isdigit()]
    said = "; ".join(
        f"{e.get('Code')} {e.get('ErrorCode') or ''}: {str(e.get('Message') or '')[:200]}".strip()
        for e in status.errors
    )
    said = f" Microsoft said: {said}." if said else ""
    if status.status == "FailedFullSyncRequired" or 3603 in codes:
        return FullSyncRequiredError(
            f"Bulk download {status.request_id}{where} answered FailedFullSyncRequired.{said}",
            codes=codes or [3603],
            field="delta",
            remedy=BULK_CATALOGUE[3603].remedy,
            tracking_id=status.tracking_id,
        )
    return BulkDownloadFailedError(
        f"Bulk download {status.request_id}{where} answered {status.status}.{said}",
        codes=codes,
        field="entities",
        remedy="Microsoft asks to submit a new download with fewer entities, or to try again later: run the "
        "task again, or split `entities` over several tasks.",
        retryable=True,
        tracking_id=status.tracking_id,
    )


def poll_delay(waited: float, poll_interval: float | None = None) -> float:
    """The wait before the next status call, ``waited`` seconds after submitting.

    Microsoft: 15-20 s for accounts well under a million keywords; a minute after five minutes for
    bigger ones (a download still running after five minutes is a big one). ``poll_interval``, when
    given, replaces the 15 s (the emulator's tests poll fast); the minute after five minutes stays
    the floor, so a long download is not polled more often than Microsoft asks.
    """
    every = POLL_EVERY if poll_interval is None else max(float(poll_interval), 0.0)
    return max(every, SLOW_POLL_EVERY) if waited >= SLOW_AFTER else every


#: Submit/status retries: 117 asks for about a minute, 4204 for up to fifteen.
BULK_RETRY = RetryPolicy(
    attempts=6, backoff_base=2.0, backoff_max=60.0, max_retry_after=QUOTA_WAIT, total_budget=1800.0
)


class Bulk(RestService):
    """Download requests and status calls over one authenticated httpx client (sync or async)."""

    setting = "bulk_url"

    def default_retry(self) -> RetryPolicy:
        return BULK_RETRY

    def submit_flow(self, request: Mapping[str, Any]) -> Flow[str]:
        """Submit one download (by account ids or, with ``Campaigns``, by campaign ids)."""
        by_campaigns = "Campaigns" in request
        operation = "DownloadCampaignsByCampaignIds" if by_campaigns else "DownloadCampaignsByAccountIds"
        accounts = [str(a) for a in request.get("AccountIds") or []]
        accounts += [str(c.get("ParentAccountId")) for c in request.get("Campaigns") or [] if isinstance(c, Mapping)]
        account = next(iter(accounts), None)

        def parse(response: httpx.Response) -> str:
            if response.status_code >= 400:
                raise bulk_error(response, operation=operation, account_id=account)
            return self.answered_id(response, operation, "DownloadRequestId")

        path = CAMPAIGNS_PATH if by_campaigns else ACCOUNT_PATH
        return retrying(self._post(path, request), parse, what=operation, policy=self.retry)

    def status_flow(self, request_id: str) -> Flow[BulkStatus]:
        def parse(response: httpx.Response) -> BulkStatus:
            if response.status_code >= 400:
                raise bulk_error(response, operation="GetBulkDownloadStatus")
            body = read_json(response, "GetBulkDownloadStatus")
            status = body.get("RequestStatus")
            if status not in STATUSES:
                raise self.unreadable(response, f"GetBulkDownloadStatus answered RequestStatus {str(status)[:40]!r}.")
            url = body.get("ResultFileUrl") or None
            errors = tuple(dict(e) for e in body.get("Errors") or [] if isinstance(e, Mapping))
            try:
                percent = int(body.get("PercentComplete") or 0)
            except (TypeError, ValueError):
                percent = 0
            return BulkStatus(
                request_id=str(request_id),
                status=str(status),
                percent=percent,
                url=str(url) if url and status == "Completed" else None,
                errors=errors,
                tracking_id=response.headers.get("TrackingId"),
            )

        return self.ask_after(STATUS_PATH, "RequestId", request_id, parse, what="GetBulkDownloadStatus")

    def status(self, client: httpx.Client, request_id: str) -> BulkStatus:
        return self.run(self.status_flow(request_id), client)

    async def astatus(self, client: httpx.AsyncClient, request_id: str) -> BulkStatus:
        return await self.arun(self.status_flow(request_id), client)
