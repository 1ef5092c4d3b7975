"""Fault injection: what a test queues (``inject``) and how a request takes it."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_msads.testing.emulator._catalogues import (
    _AADSTS,
    _HTML,
    _JSON,
    _TEXT,
    BULK_OPERATIONS,
    DOWNLOAD_KINDS,
    INJECTION_ENDPOINTS,
    INJECTION_KINDS,
    OPERATIONS,
    REPORTING_OPERATIONS,
)
from airflow_provider_msads.testing.emulator._http import _format_retry_after, _huge_body, _Reply
from airflow_provider_msads.testing.emulator._model import _EmulatorState, _Injection


class _FaultInjection(_EmulatorState):
    """Queued misbehaviours per endpoint and the replies that look the same on every endpoint."""

    # ---------------------------------------------------------------------- fault injection

    def inject(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
        code: int | None = None,
        body: bytes | None = None,
        delay: float | None = None,
        operation: str | None = None,
        error: str | None = None,
    ) -> None:
        """Queue a misbehaviour for the next ``count`` requests to ``endpoint``.

        ``endpoint`` is ``"token"``, ``"authorize"``, ``"api"`` (Customer Management),
        ``"reporting"`` (Submit and Poll), ``"bulk"`` (Bulk download requests and status) or
        ``"download"`` (report download links and Bulk result file URLs).
        ``operation`` narrows ``"api"`` to ``"GetUser"``, ``"GetAccount"`` or ``"GetAccountsInfo"``
        and ``"reporting"`` to ``"SubmitGenerateReport"`` or ``"PollGenerateReport"``, ``"bulk"`` to
        ``"DownloadCampaignsByAccountIds"``, ``"DownloadCampaignsByCampaignIds"`` or
        ``"GetBulkDownloadStatus"``. Queues are
        FIFO per endpoint: a request takes the oldest injection that matches it. Kinds:

        * ``aadsts`` - token/authorize: the AADSTS ``code`` error (body, ``error`` and status from
          the catalogue; ``error``/``status`` override; an unknown code needs ``error``).
          On authorize it redirects with ``error``/``error_description`` like Microsoft.
        * ``oauth`` - an OAuth error named by ``error`` (default ``temporarily_unavailable``;
          status 503 for it, 500 for ``server_error``, 401 for ``invalid_client``, else 400),
          AADSTS ``code`` optional; ``body`` replaces the whole body.
        * ``msa_invalid_grant`` - token: personal-account ``invalid_grant`` without AADSTS code.
        * ``fault`` - api/reporting/bulk: Microsoft Advertising fault ``code`` (default 0) in its real
          shape (117 CallRateExceeded, 207 ConcurrentRequestOverLimit, 105, 109, 0, Bulk's 4204
          NoMoreCallsPermittedForTheTimePeriod ...).
        * download only: ``expired_link`` (403 Azure ``AuthenticationFailed`` XML), ``xml_error``
          (Azure XML error, default 404 ``BlobNotFound``), ``two_entries`` (a zip with two
          entries), ``zip_bomb`` (one entry inflating ~1000:1 to 256 MiB), ``not_zip`` (200 with
          bytes that are no zip); ``malformed`` there is a truncated zip, ``html`` an error page
          (pass ``status=200`` for a portal page served as success).
        * ``status`` - bare ``status`` (default 503), body ``body`` (default empty).
        * ``throttle`` - 429 (or ``status``) with ``Retry-After`` (default 1 s).
        * ``html`` - an HTML error page, status default 500.
        * ``empty`` - 200 with an empty body. ``malformed`` - 200 with truncated JSON.
        * ``huge`` - 200 with an 8 MiB body (or ``body``).
        * ``reset`` - the connection is aborted with a TCP RST, no answer.
        * ``timeout`` - the request is processed, then the answer waits ``delay`` s (default 30).
        * ``latency`` - like timeout, default ``delay`` 1 s: a slow but successful answer.

        ``retry_after`` adds a ``Retry-After`` header to any kind.
        """
        if endpoint not in INJECTION_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {INJECTION_ENDPOINTS}, not {endpoint!r}")
        if kind not in INJECTION_KINDS:
            raise ValueError(f"kind must be one of {INJECTION_KINDS}, not {kind!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        narrowing = {"api": OPERATIONS, "reporting": REPORTING_OPERATIONS, "bulk": BULK_OPERATIONS}
        if operation is not None and operation not in narrowing.get(endpoint, ()):
            raise ValueError(
                f"operation only narrows endpoint 'api' (one of {OPERATIONS}), "
                f"'reporting' (one of {REPORTING_OPERATIONS}) or 'bulk' (one of {BULK_OPERATIONS})"
            )
        if kind in ("aadsts", "oauth") and endpoint not in ("token", "authorize"):
            raise ValueError(f"kind {kind!r} applies to the token and authorize endpoints")
        if kind == "msa_invalid_grant" and endpoint != "token":
            raise ValueError("kind 'msa_invalid_grant' applies to the token endpoint")
        if kind == "fault" and endpoint not in ("api", "reporting", "bulk"):
            raise ValueError("kind 'fault' applies to endpoints 'api' and 'reporting', and to 'bulk'")
        if kind in DOWNLOAD_KINDS and endpoint != "download":
            raise ValueError(f"kind {kind!r} applies to endpoint 'download'")
        if kind == "aadsts":
            if code is None:
                raise ValueError("kind 'aadsts' needs code=<AADSTS number>")
            if code not in _AADSTS and error is None:
                raise ValueError(f"AADSTS{code} is not in the emulator's catalogue; pass error=... too")
        with self._lock:
            self._injections[endpoint].append(
                _Injection(kind, count, status, retry_after, code, body, delay, operation, error)
            )

    def clear_injections(self) -> None:
        with self._lock:
            for queue in self._injections.values():
                queue.clear()

    def _take_injection(self, endpoint: str, operation: str | None = None) -> _Injection | None:
        with self._lock:
            queue = self._injections[endpoint]
            for injection in queue:
                if injection.operation is None or injection.operation == operation:
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        queue.remove(injection)
                    self.counters["injected"] += 1
                    return injection
        return None

    def _with_injection(
        self,
        endpoint: str,
        injected: Callable[[_Injection], _Reply | None],
        answer: Callable[[], _Reply],
        operation: str | None = None,
    ) -> _Reply:
        """Answer a request to ``endpoint``, taking its next queued injection into account.

        An injection either replaces the answer (the endpoint's own kinds via ``injected``, then
        the kinds that look the same everywhere; ``retry_after`` adds a Retry-After header) or
        slows the real ``answer`` down (``timeout``, ``latency``).
        """
        injection = self._take_injection(endpoint, operation)
        if injection is not None:
            reply = injected(injection)
            if reply is None:
                reply = self._generic_injection(injection, endpoint)
            if reply is not None:
                if injection.retry_after is not None and all(name != "Retry-After" for name, _ in reply.headers):
                    reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
                return reply
        reply = answer()
        reply.delay += self._delay_of(injection)
        return reply

    # ---------------------------------------------------------------------- generic injected replies

    def _generic_injection(self, injection: _Injection, endpoint: str) -> _Reply | None:
        """Replies that look the same on every endpoint; None for kinds handled per endpoint."""
        kind = injection.kind
        reply: _Reply | None = None
        if kind == "status":
            status = injection.status if injection.status is not None else 503
            content_type = _JSON if injection.body and injection.body.lstrip()[:1] in (b"{", b"[") else None
            if injection.body and content_type is None:
                content_type = _TEXT
            reply = _Reply(status, injection.body or b"", content_type)
        elif kind == "throttle":
            status = injection.status if injection.status is not None else 429
            retry_after = injection.retry_after if injection.retry_after is not None else 1.0
            reply = _Reply(status, injection.body or b"", _JSON if injection.body else None)
            reply.headers.append(("Retry-After", _format_retry_after(retry_after)))
        elif kind == "html":
            status = injection.status if injection.status is not None else 500
            page = (
                injection.body
                or (
                    f"<!DOCTYPE html><html><head><title>{status} - Server Error</title></head><body>"
                    f"<h1>Server Error</h1><h2>{status} - The service is temporarily unavailable.</h2>"
                    "</body></html>"
                ).encode()
            )
            reply = _Reply(status, page, _HTML)
        elif kind == "empty":
            reply = _Reply(injection.status or 200, b"", _JSON)
        elif kind == "malformed":
            truncated = b'{"token_type":"Bearer","access_token":"EwA' if endpoint == "token" else b'{"User":{"Id":'
            reply = _Reply(injection.status or 200, injection.body or truncated, _JSON)
        elif kind == "huge":
            reply = _Reply(injection.status or 200, injection.body or _huge_body(), _JSON)
        elif kind == "reset":
            reply = _Reply(0, reset=True)
        return reply

    @staticmethod
    def _delay_of(injection: _Injection | None) -> float:
        if injection is None:
            return 0.0
        if injection.kind == "timeout":
            return injection.delay if injection.delay is not None else 30.0
        if injection.kind == "latency":
            return injection.delay if injection.delay is not None else 1.0
        return 0.0
