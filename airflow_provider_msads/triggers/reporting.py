"""MicrosoftAdsReportTrigger: wait in the triggerer until Microsoft has built a report.

Reports can take half an hour; polling them in a worker holds a slot the whole time. The trigger
polls on the triggerer's event loop through the hook's async path (async connection read, token
store in worker threads, ``httpx.AsyncClient``), so hundreds of reports wait at the cost of one
process.

Only the connection id, the request id and timing are serialized (no credentials). The event does
not carry the download link either: it is a bearer credential for five minutes and would be
stored in the metastore; the worker polls once more for a fresh one before downloading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class MicrosoftAdsReportTrigger(BaseTrigger):
    """Poll ``request_id`` (5 s apart at first, backing off to ``poll_interval``) until Success, Error or ``timeout``.

    Fires one event: ``{"status": "success" | "error" | "timeout" | "failed", "request_id": ...,
    "waited": seconds, "polls": n, "message": ...}``. ``started_at`` (epoch seconds) is when the
    operator started waiting, so a triggerer restart does not reset the timeout.
    """

    def __init__(
        self,
        *,
        request_id: str,
        msads_conn_id: str = "msads_default",
        poll_interval: float = 30.0,
        timeout: float | None = None,
        started_at: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.request_id = str(request_id)
        self.msads_conn_id = msads_conn_id
        self.poll_interval = float(poll_interval)
        self.timeout = None if timeout is None else float(timeout)
        self.started_at = float(started_at) if started_at is not None else time.time()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "request_id": self.request_id,
                "msads_conn_id": self.msads_conn_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "started_at": self.started_at,
            },
        )

    def _event(self, status: str, polls: int, **extra: Any) -> TriggerEvent:
        payload = {
            "status": status,
            "request_id": self.request_id,
            "polls": polls,
            "waited": round(time.time() - self.started_at, 3),
            **extra,
        }
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_msads.errors import MicrosoftAdsError
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
        from airflow_provider_msads.reporting.service import poll_delay

        hook = MicrosoftAdsHook(msads_conn_id=self.msads_conn_id)
        polls = 0
        while True:
            polls += 1
            try:
                status = await hook.apoll_report(self.request_id)
            except MicrosoftAdsError as err:
                if not err.retryable:
                    yield self._event("failed", polls, message=str(err), error=err.to_dict())
                    return
                self.log.warning("Report %s: poll %d failed transiently (%s).", self.request_id, polls, err.code)
            else:
                if status.status == "Success":
                    yield self._event("success", polls, empty=status.download_url is None)
                    return
                if status.status == "Error":
                    yield self._event("error", polls, tracking_id=status.tracking_id)
                    return
                self.log.info("Report %s: %s after %d polls.", self.request_id, status.status, polls)
            delay = poll_delay(polls, self.poll_interval)
            if self.timeout is not None and time.time() + delay > self.started_at + self.timeout:
                yield self._event("timeout", polls, timeout=self.timeout)
                return
            await asyncio.sleep(delay)
