"""What every Ads REST service client shares: base URL, retries, JSON POSTs and the sync/async drivers.

:class:`~airflow_provider_msads.reporting.service.Reporting` and
:class:`~airflow_provider_msads.bulk.service.Bulk` write their operations as flows and parse their
own answers; the plumbing around them is written here once. May import: ``errors`` and this room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from airflow_provider_msads.errors import MicrosoftAdsError, ProtocolError, api_error_from_fault, fault_codes
from airflow_provider_msads.tokens.flow import (
    Flow,
    RetryPolicy,
    drive_async,
    drive_sync,
    parse_retry_after,
    read_json,
    retrying,
)

T = TypeVar("T")
_JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Refusal:
    """A refused call's answer, read once: what every error explaining it carries (codes, HTTP status,
    tracking id, Retry-After), and the generic error when no catalogue entry explains it."""

    operation: str
    status: int
    body: Any
    tracking_id: str | None
    retry_after: float | None

    @classmethod
    def read(cls, response: httpx.Response, operation: str) -> Refusal:
        body = read_json(response, operation)
        tracking = str(body.get("TrackingId") or response.headers.get("TrackingId") or "") or None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return cls(operation, response.status_code, body, tracking, retry_after)

    @property
    def codes(self) -> list[int]:
        return fault_codes(self.body)

    @property
    def common(self) -> dict[str, Any]:
        return {"codes": self.codes, "http_status": self.status, "tracking_id": self.tracking_id}

    def fallback(self) -> MicrosoftAdsError:
        """No catalogue entry explains it: the fault's generic error (CallRateExceeded, 117, waits a minute)."""
        retry_after = self.retry_after
        if 117 in self.codes and retry_after is None:
            retry_after = 60.0  # CallRateExceeded: Microsoft asks to wait about a minute
        return api_error_from_fault(
            self.status, self.body, operation=self.operation, tracking_id=self.tracking_id, retry_after=retry_after
        )


class RestService:
    """One Ads REST service over an authenticated httpx client (sync or async)."""

    #: The connection option that names ``base_url``, for the fix of an answer we cannot read.
    setting = "the service URL"

    def __init__(
        self,
        base_url: str,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        asleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or self.default_retry()
        self._sleep = sleep or time.sleep
        self._asleep = asleep or asyncio.sleep

    def default_retry(self) -> RetryPolicy:
        """The service's retry policy when none is given (read at construction, so tests can patch it)."""
        return RetryPolicy()

    def _post(self, path: str, body: Mapping[str, Any]) -> Callable[[], httpx.Request]:
        url = f"{self.base_url}/{path}"
        payload = dict(body)

        def build() -> httpx.Request:
            return httpx.Request("POST", url, json=payload, headers=_JSON_HEADERS)

        return build

    def run(self, flow: Flow[T], client: httpx.Client) -> T:
        return drive_sync(flow, client, self._sleep)

    async def arun(self, flow: Flow[T], client: httpx.AsyncClient) -> T:
        return await drive_async(flow, client, self._asleep)

    # Both services take work by a submit answered with an id, then are asked after that id.

    def submit_flow(self, request: Mapping[str, Any]) -> Flow[str]:  # pragma: no cover - overridden
        """Submit one request; the flow's result is the id Microsoft answered with."""
        raise NotImplementedError

    def submit(self, client: httpx.Client, request: Mapping[str, Any]) -> str:
        return self.run(self.submit_flow(request), client)

    async def asubmit(self, client: httpx.AsyncClient, request: Mapping[str, Any]) -> str:
        return await self.arun(self.submit_flow(request), client)

    def answered_id(self, response: httpx.Response, operation: str, key: str) -> str:
        """The id a submit was answered with (``key`` of its JSON); an answer without one is unreadable."""
        request_id = read_json(response, operation).get(key)
        if request_id in (None, ""):
            raise self.unreadable(response, f"{operation} answered without a {key}.")
        return str(request_id)

    def ask_after(
        self, path: str, id_key: str, request_id: str, parse: Callable[[httpx.Response], T], *, what: str
    ) -> Flow[T]:
        """The flow asking after a submitted request by its id (Bulk's status, Reporting's poll)."""
        return retrying(self._post(path, {id_key: str(request_id)}), parse, what=what, policy=self.retry)

    def unreadable(self, response: httpx.Response, message: str) -> ProtocolError:
        """A 2xx answer without what the operation promises: most likely ``base_url`` is not Microsoft."""
        return ProtocolError(
            message,
            remedy=f"Check {self.setting} (leave it unset for Microsoft).",
            http_status=response.status_code,
            tracking_id=response.headers.get("TrackingId"),
        )
