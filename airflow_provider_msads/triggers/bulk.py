"""MicrosoftAdsBulkDownloadTrigger: wait in the triggerer until Microsoft has built every account's
Bulk file.

The operator (``deferrable=True``) submits one download per account in the worker, then defers
with the request ids. A resumed task gets nothing but this trigger's event, so the event carries
everything the worker needs afterwards: per account, the request id, the status Microsoft gave, and
the ``last_sync`` the request was built with (so the worker knows whether the download was a
delta). It never carries a result link: a link is a bearer credential for five minutes, it would be
stored in the metastore, and it may have expired by the time a worker picks the task up; the worker
asks for a fresh one. Only the connection id, request ids and timing are serialized.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class MicrosoftAdsBulkDownloadTrigger(BaseTrigger):
    """Poll every account's request until none is InProgress, or until ``timeout``.

    ``accounts``: ``{account id: {"request_id": str, "last_sync": ISO text or None}}``. One event:
    ``{"status": "done" | "timeout" | "failed", "accounts": {id: {..., "status": RequestStatus}},
    "polls": n, "waited": seconds, "message": ...}``.
    """

    def __init__(
        self,
        *,
        accounts: dict[str, dict[str, Any]],
        msads_conn_id: str = "msads_default",
        poll_interval: float | None = None,
        timeout: float | None = None,
        started_at: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.accounts = {str(k): dict(v) for k, v in accounts.items()}
        self.msads_conn_id = msads_conn_id
        self.poll_interval = None if poll_interval is None else float(poll_interval)
        self.timeout = None if timeout is None else float(timeout)
        self.started_at = float(started_at) if started_at is not None else time.time()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "accounts": self.accounts,
                "msads_conn_id": self.msads_conn_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "started_at": self.started_at,
            },
        )

    def _event(self, status: str, polls: int, states: dict[str, str], **extra: Any) -> TriggerEvent:
        accounts = {a: {**info, "status": states.get(a, "InProgress")} for a, info in self.accounts.items()}
        payload = {
            "status": status,
            "accounts": accounts,
            "polls": polls,
            "waited": round(time.time() - self.started_at, 3),
            **extra,
        }
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_msads.bulk.service import poll_delay
        from airflow_provider_msads.errors import MicrosoftAdsError
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        hook = MicrosoftAdsHook(msads_conn_id=self.msads_conn_id)
        # An account whose submit the worker left to itself (3207, 3603 at submit): nothing to wait for.
        states: dict[str, str] = {a: "NotSubmitted" for a, info in self.accounts.items() if not info.get("request_id")}
        polls = 0
        while True:
            polls += 1
            for account, info in self.accounts.items():
                if states.get(account, "InProgress") != "InProgress":
                    continue
                try:
                    status = await hook.aget_bulk_download_status(str(info["request_id"]))
                except MicrosoftAdsError as err:
                    if not err.retryable:
                        yield self._event("failed", polls, states, message=str(err), error=err.to_dict())
                        return
                    self.log.warning("Bulk download %s: status call failed transiently (%s).", info, err.code)
                    continue
                states[account] = status.status
            pending = [a for a in self.accounts if states.get(a, "InProgress") == "InProgress"]
            if not pending:
                yield self._event("done", polls, states)
                return
            waited = time.time() - self.started_at
            delay = poll_delay(waited, self.poll_interval)
            if self.timeout is not None and waited + delay > self.timeout:
                yield self._event("timeout", polls, states, timeout=self.timeout)
                return
            self.log.info("Bulk downloads still running for accounts %s after %d polls.", ", ".join(pending), polls)
            await asyncio.sleep(delay)
