"""What every Microsoft Advertising REST service does around its operations, written once.

A service (Customer Management, Reporting, the next one) states only its operations, its fault
shape and, where it reads more headers, its own caller check; this module counts the request,
applies injected faults, refuses what is not a POST with a JSON object body, checks the caller's
Authorization and DeveloperToken headers and stamps every answer with a ``TrackingId``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from airflow_provider_msads.testing.emulator._catalogues import _FAULTS, _JSON, _Fault
from airflow_provider_msads.testing.emulator._http import _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._injection import _FaultInjection
from airflow_provider_msads.testing.emulator._model import _Injection

#: One operation of a service: the request's JSON object and its TrackingId in, the answer out.
_Operation = Callable[[Mapping[str, Any], str], _Reply]
#: A caller check: the request headers and TrackingId in, None when the caller may pass.
_CallerCheck = Callable[[Mapping[str, str], str], _Reply | None]


class _FaultShape(Protocol):
    """How a service writes a fault code (and, where it has them, Details) as its error body."""

    def __call__(self, code: int, tracking_id: str, details: str | None = None) -> _Reply: ...


class _OperationError(Exception):
    """An operation refuses the request: the fault code and, where the service gives them, Details.

    Raised from deep inside an operation's validation; the service's fault shape writes it.
    """

    def __init__(self, code: int, details: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (empty, not JSON, or not an object)."""
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


class _AdsApi(_FaultInjection):
    """The request handling and the two fault shapes the Ads REST services share."""

    def _ads_endpoint(
        self,
        service: str,
        operation: str | None,
        method: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        operations: Mapping[str, _Operation],
        fault: _FaultShape,
        caller_check: _CallerCheck | None = None,
    ) -> _Reply:
        """Count, apply injections, run the operation (None: a path the service lacks), add a TrackingId.

        ``caller_check`` defaults to :meth:`_refused_caller`, the checks every Ads service makes.
        """
        tracking_id = str(uuid.uuid4())
        with self._lock:
            self.counters[service] += 1
            if operation is not None:
                self.counters[f"{service}.{operation}"] += 1
        check = caller_check if caller_check is not None else self._refused_caller
        reply = self._with_injection(
            service,
            lambda injection: self._injected_ads_reply(injection, tracking_id, fault),
            lambda: self._ads_operation(operation, method, headers, body, tracking_id, operations, fault, check),
            operation,
        )
        reply.headers.append(("TrackingId", tracking_id))
        return reply

    def _ads_operation(
        self,
        operation: str | None,
        method: str,
        headers: Mapping[str, str],
        body: bytes,
        tracking_id: str,
        operations: Mapping[str, _Operation],
        fault: _FaultShape,
        caller_check: _CallerCheck,
    ) -> _Reply:
        if operation is None:
            return _Reply(404, b"", None)
        if method != "POST":
            return _Reply(405, b"", None, [("Allow", "POST")])
        with self._lock:
            refused = caller_check(headers, tracking_id)
            if refused is not None:
                return refused
            payload = _json_object(body)
            if payload is None:
                return fault(100, tracking_id)
            try:
                return operations[operation](payload, tracking_id)
            except _OperationError as exc:
                return fault(exc.code, tracking_id, exc.details)

    @staticmethod
    def _injected_ads_reply(injection: _Injection, tracking_id: str, fault: _FaultShape) -> _Reply | None:
        """The ``fault`` kind: a fault code (default 0) in the service's shape, ``status`` overriding."""
        if injection.kind != "fault":
            return None
        reply = fault(injection.code if injection.code is not None else 0, tracking_id)
        if injection.status is not None:
            reply.status = injection.status
        return reply

    @staticmethod
    def _api_fault_detail(code: int, spec: _Fault, tracking_id: str, details: str | None) -> _Reply:
        """A service's own error as ``ApiFaultDetail`` with one OperationError (Reporting and Bulk)."""
        body = {
            "TrackingId": tracking_id,
            "Type": "ApiFaultDetail",
            "BatchErrors": [],
            "OperationErrors": [
                {"Code": code, "Details": details, "ErrorCode": spec.error_code, "Message": spec.message}
            ],
        }
        return _Reply(400, _json_bytes(body), _JSON)

    @staticmethod
    def _fault(code: int, tracking_id: str, details: str | None = None) -> _Reply:
        """A fault in the shape its code has: ``ApiFault`` (OperationErrors) or ``AdApiFaultDetail`` (Errors)."""
        spec = _FAULTS.get(code) or _Fault(f"Error{code}", f"Emulated fault {code}.", 400, code >= 1000)
        body: dict[str, object]
        if spec.api_fault:
            body = {
                "TrackingId": tracking_id,
                "Type": "ApiFault",
                "OperationErrors": [{"Code": code, "Details": details, "Message": spec.message}],
            }
        else:
            body = {
                "TrackingId": tracking_id,
                "Type": "AdApiFaultDetail",
                "Errors": [{"Code": code, "Detail": details, "ErrorCode": spec.error_code, "Message": spec.message}],
            }
        return _Reply(spec.status, _json_bytes(body), _JSON)

    def _refused_caller(self, headers: Mapping[str, str], tracking_id: str) -> _Reply | None:
        """The Ads API's header checks, shared by every Ads service: None when the caller may pass."""
        authorization = headers.get("authorization", "").strip()
        developer_token = headers.get("developertoken", "").strip()
        if not authorization or not developer_token:
            return self._fault(116, tracking_id)
        scheme, _, access = authorization.partition(" ")
        with self._lock:
            record = self._access.get(access.strip()) if scheme.lower() == "bearer" else None
            if record is None or record.revoked:
                return self._fault(105, tracking_id)
            if record.expired or self.clock() >= record.expires_at:
                return self._fault(109, tracking_id)
            if record.environment != "production" or developer_token != self.developer_token:
                return self._fault(105, tracking_id)
        return None
