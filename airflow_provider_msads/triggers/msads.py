"""MicrosoftAdsCredentialsTrigger: wait in the triggerer until a connection validates.

Everything in :meth:`run` is async: the connection is read with ``aget_connection``, tokens with
``aget_token`` (the token store's blocking calls go to worker threads), the API over an
``httpx.AsyncClient``. One triggerer runs hundreds of triggers on one event loop, so a single
blocking call here would stall all of them.

Only the connection id and the timing options are serialized: the trigger row in the metastore
must never hold a credential, and the connection is re-read on every attempt anyway, so a person
fixing it (pasting a new refresh token after re-authorizing) is noticed at the next attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow_provider_msads.validation.steps import CredentialsReport


class MicrosoftAdsCredentialsTrigger(BaseTrigger):
    """Validate ``msads_conn_id`` every ``poke_interval`` seconds until it passes or ``timeout`` ends.

    Fires one event: ``{"status": "success", "report": {...}}`` or ``{"status": "timeout",
    "message": ..., "report": {...}}`` with the last report (JSON-safe, no secrets).
    """

    def __init__(
        self,
        msads_conn_id: str = "msads_default",
        poke_interval: float = 60.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.msads_conn_id = msads_conn_id
        self.poke_interval = float(poke_interval)
        self.timeout = None if timeout is None else float(timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"msads_conn_id": self.msads_conn_id, "poke_interval": self.poke_interval, "timeout": self.timeout},
        )

    async def _validate(self) -> CredentialsReport | None:
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        try:
            # A new hook per attempt: the connection may have been fixed since the last one.
            return await MicrosoftAdsHook(msads_conn_id=self.msads_conn_id).avalidate_credentials()
        except Exception:  # keep waiting; the report flow already turns known errors into verdicts
            self.log.warning("Validating %r failed unexpectedly; trying again.", self.msads_conn_id, exc_info=True)
            return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        attempt = 0
        while True:
            attempt += 1
            report = await self._validate()
            if report is not None and report.ok:
                self.log.info("%s", report.summary())
                yield TriggerEvent({"status": "success", "attempts": attempt, "report": report.to_dict()})  # type: ignore[no-untyped-call]
                return
            message = report.summary() if report is not None else f"{self.msads_conn_id}: unexpected error"
            self.log.info("Attempt %d: credentials do not validate yet. %s", attempt, message)
            if deadline is not None and time.monotonic() + self.poke_interval > deadline:
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    {
                        "status": "timeout",
                        "attempts": attempt,
                        "message": f"Credentials still do not validate after {attempt} attempts. {message}",
                        "report": report.to_dict() if report is not None else None,
                    }
                )
                return
            await asyncio.sleep(self.poke_interval)
