"""One retry loop, two drivers: the sync/async twins without writing the logic twice.

Like httpx's auth flows, the logic is a generator. It yields *operations* and receives their
results: an :class:`httpx.Request` to send (answered with a fully read :class:`httpx.Response`),
a ``float`` to sleep, or a :class:`StoreCall` (blocking local I/O such as the token store, which the
async driver runs in a worker thread so the event loop never blocks). Failures of an operation
are thrown into the generator, so its ``try``/``except`` sees them where they happened.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from airflow_provider_msads.compat.channel import to_thread_on_channel
from airflow_provider_msads.errors import MicrosoftAdsError, ProtocolError, TransientError

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Answers larger than this are refused unread: no Microsoft JSON answer we use comes close.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: Wall time one request may take from send to last byte. httpx's timeouts bound each read, not
#: the whole: a server sending a byte every 29 s would otherwise hold the token lock for ever.
REQUEST_DEADLINE = 60.0


@dataclass(frozen=True)
class StoreCall:
    """A blocking local call (token store, lock-free file I/O) the driver should run."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


Op = httpx.Request | float | StoreCall
Flow = Generator[Op, Any, T]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter, honouring Retry-After.

    ``total_budget`` bounds the wall time spent waiting, so a throttled Microsoft cannot hold a
    worker slot for an hour: after it, the last transient error is raised and Airflow's own task
    retries take over.
    """

    attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    total_budget: float = 90.0
    jitter: bool = True

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.max_retry_after))
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling  # noqa: S311


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent or odd."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(exc: httpx.TransportError, what: str) -> MicrosoftAdsError:
    """A network failure as a transient error; the URL (which has no secrets) names the host.

    An untrusted certificate is the exception: retrying cannot fix it, and the usual cause (a
    TLS-inspecting proxy whose CA the worker does not trust) needs a different remedy.
    """
    host = exc.request.url.host if _has_request(exc) else "the server"
    if _certificate_failure(exc):
        return ProtocolError(
            f"{what}: the TLS certificate of {host} was not trusted, so nothing was sent.",
            remedy="If a proxy inspects TLS traffic, add its CA certificate to the worker's trust store "
            "(SSL_CERT_FILE); if token_url or customer_management_url name a host of your own, give it a "
            "certificate the worker trusts. Verification is never switched off.",
        )
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return TransientError(
        f"{what}: the connection to {host} {kind} ({type(exc).__name__}).",
        remedy="Retried with backoff; check network access to Microsoft from the worker if it persists.",
        retryable=True,
    )


def direct_mounts(*urls: str) -> dict[str, None]:
    """httpx mounts that send loopback traffic straight to the socket, never through a proxy.

    ``trust_env`` stays on for everything else (corporate proxies are common on workers), but an
    ``HTTPS_PROXY`` must not see what we send to the emulator on loopback.
    """
    from urllib.parse import urlsplit

    from airflow_provider_msads.connection.endpoints import is_loopback_host

    hosts = {"127.0.0.1", "localhost", "[::1]"}
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host and is_loopback_host(host):
            hosts.add(f"[{host}]" if ":" in host else host)
    return {f"all://{host}": None for host in sorted(hosts)}


def shared_tls_context() -> ssl.SSLContext:
    """One verified TLS context per process (per CA setting) for every client we build.

    ``verify=True`` makes httpx build a context per client, loading the CA bundle each time: tens of
    milliseconds of blocking work, which the triggerer's event loop must not do per token refresh.
    """
    import os

    return _tls_context_for(os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))


@functools.lru_cache(maxsize=4)
def _tls_context_for(cert_file: str, cert_dir: str) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=True, trust_env=True)


def _certificate_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when unset
    except RuntimeError:
        return False
    return True


def retrying(
    build: Callable[[], httpx.Request],
    parse: Callable[[httpx.Response], T],
    *,
    what: str,
    policy: RetryPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> Flow[T]:
    """Send ``build()`` until ``parse`` accepts the answer or the error is not worth retrying.

    ``parse`` raises :class:`MicrosoftAdsError` subclasses; ``retryable`` ones are retried up to
    ``policy.attempts`` within ``policy.total_budget``, ``retry_once`` ones once, the rest never.
    """
    started = clock()
    waited = 0.0  # counted apart from the clock, so a fake sleep in tests is bounded the same way
    attempt = 0
    while True:
        attempt += 1
        try:
            try:
                response = yield build()
            except httpx.TransportError as exc:
                raise transport_error(exc, what) from exc
            return parse(response)
        except MicrosoftAdsError as err:
            allowed = policy.attempts if err.retryable else (min(2, policy.attempts) if err.retry_once else 1)
            if attempt >= allowed:
                raise
            if not err.retry_in_call:
                raise  # retryable, but in hours (2004): the task's retries take it
            pause = policy.delay(attempt, err.retry_after)
            if max(clock() - started, waited) + pause > policy.total_budget:
                raise
            waited += pause
            # One line per backoff, so a slow task log shows Microsoft throttling rather than a hang.
            log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d).",
                what,
                f"Microsoft code {err.code}" if err.code is not None else type(err).__name__,
                pause,
                attempt + 1,
                allowed,
            )
            yield pause


def _read_capped_sync(
    response: httpx.Response, deadline: float | None = None, clock: Callable[[], float] = time.monotonic
) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large(response)
        if deadline is not None and clock() > deadline:
            raise _past_deadline(response.request)
    return bytes(body)


def _past_deadline(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout(f"no complete answer within {REQUEST_DEADLINE:.0f} s", request=request)


def _bounded(request: httpx.Request, timeout: httpx.Timeout | None, remaining: float) -> None:
    """Cap each phase's timeout of ``request`` at the time left before its deadline."""
    base = timeout or httpx.Timeout(REQUEST_DEADLINE)

    def cap(value: float | None) -> float:
        return max(0.001, remaining if value is None else min(value, remaining))

    request.extensions["timeout"] = httpx.Timeout(
        connect=cap(base.connect), read=cap(base.read), write=cap(base.write), pool=cap(base.pool)
    ).as_dict()


async def _read_capped_async(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large(response)
    return bytes(body)


def load_capped(response: httpx.Response) -> None:
    """``response.read()``, but refusing a body over the cap instead of holding it all in memory."""
    _refuse_declared_oversize(response)
    response._content = _read_capped_sync(response)


async def aload_capped(response: httpx.Response) -> None:
    """Async twin of :func:`load_capped`."""
    _refuse_declared_oversize(response)
    response._content = await _read_capped_async(response)


def _refuse_declared_oversize(response: httpx.Response) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(response)


def _too_large(response: httpx.Response) -> ProtocolError:
    return ProtocolError(
        f"{response.request.url.host} answered more than {MAX_BODY_BYTES // 1024} KiB; that is not a Microsoft "
        "token or API answer.",
        remedy="Check token_url / customer_management_url and any proxy in between.",
        http_status=response.status_code,
    )


def _rebuilt(response: httpx.Response, body: bytes) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=body,
        request=response.request,
    )


Y = TypeVar("Y")


class _Stepper(Generic[Y]):
    """Walks a flow for :func:`run_flow` and :func:`arun_flow`: each operation out, then the value
    or exception the driver left in ``value``/``error`` back in; ``result`` once the flow returns."""

    def __init__(self, flow: Generator[Y, Any, Any]) -> None:
        self._flow = flow
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def __iter__(self) -> Iterator[Y]:
        while True:
            value, error = self.value, self.error
            self.value, self.error = None, None
            try:
                op = self._flow.throw(error) if error is not None else self._flow.send(value)
            except StopIteration as stop:
                self.result = stop.value
                return
            yield op


def run_flow(flow: Generator[Y, Any, T], perform: Callable[[Y], Any]) -> T:
    """The one loop behind every blocking twin: send each yielded operation to ``perform``,
    send its result back, or throw its exception in (the flow's ``try`` decides what it means)."""
    step = _Stepper(flow)
    for op in step:
        try:
            step.value = perform(op)
        except Exception as exc:  # handed to the flow, which decides
            step.error = exc
    return step.result  # type: ignore[no-any-return]


async def arun_flow(flow: Generator[Y, Any, T], perform: Callable[[Y], Awaitable[Any]]) -> T:
    """Async twin of :func:`run_flow`: the same loop, awaiting ``perform``."""
    step = _Stepper(flow)
    for op in step:
        try:
            step.value = await perform(op)
        except Exception as exc:
            step.error = exc
    return step.result  # type: ignore[no-any-return]


def drive_sync(
    flow: Flow[T],
    client: httpx.Client | Callable[[], httpx.Client],
    sleep: Callable[[float], None] = time.sleep,
    *,
    deadline: float = REQUEST_DEADLINE,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``flow`` with blocking I/O.

    ``client`` may be a factory: it is then called only if the flow sends a request, and that
    client is closed afterwards, so a flow answered from the token store costs no TLS setup.
    Each request must be answered in full within ``deadline`` seconds: every phase's timeout is
    capped at the time left, and the body is abandoned as soon as a chunk arrives late.
    """
    made: list[httpx.Client] = []

    def perform(op: Op) -> Any:
        if isinstance(op, StoreCall):
            return op.fn(*op.args)
        if not isinstance(op, httpx.Request):
            return sleep(op)
        if isinstance(client, httpx.Client):
            http = client
        else:
            if not made:
                made.append(client())
            http = made[0]
        ends = clock() + deadline
        _bounded(op, http.timeout, deadline)
        response = http.send(op, stream=True)
        try:
            return _rebuilt(response, _read_capped_sync(response, ends, clock))
        finally:
            response.close()

    try:
        return run_flow(flow, perform)
    finally:
        for http in made:
            http.close()


async def drive_async(
    flow: Flow[T],
    client: httpx.AsyncClient | Callable[[], httpx.AsyncClient],
    sleep: Callable[[float], Any] = asyncio.sleep,
    *,
    deadline: float = REQUEST_DEADLINE,
) -> T:
    """Run ``flow`` without blocking the event loop (store calls go to a worker thread).

    Each request, from send to its last byte, is cancelled after ``deadline`` seconds.
    """
    made: list[httpx.AsyncClient] = []

    async def perform(op: Op) -> Any:
        if isinstance(op, StoreCall):  # the token store may be a Variable: a supervisor request
            return await to_thread_on_channel(op.fn, *op.args)
        if not isinstance(op, httpx.Request):
            return await sleep(op)
        if isinstance(client, httpx.AsyncClient):
            http = client
        else:
            if not made:
                made.append(client())
            http = made[0]
        return await _send_within(http, op, deadline)

    try:
        return await arun_flow(flow, perform)
    finally:
        for http in made:
            await http.aclose()


async def _send_within(client: httpx.AsyncClient, request: httpx.Request, deadline: float) -> httpx.Response:
    async def send_and_read() -> httpx.Response:
        response = await client.send(request, stream=True)
        try:
            return _rebuilt(response, await _read_capped_async(response))
        finally:
            await response.aclose()

    try:
        return await asyncio.wait_for(send_and_read(), deadline)
    except asyncio.TimeoutError:
        raise _past_deadline(request) from None


def read_json(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer as a JSON object, or the right error when it is not one.

    A non-JSON answer with 429/5xx is a transient outage (an HTML error page from a gateway);
    with any other status it means a wrong URL or a meddling proxy, which retrying cannot fix.
    The body itself is never quoted: it might echo what we sent.
    """
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    status = response.status_code
    shape = "an empty answer" if not response.content else "an answer that is not a JSON object"
    content_type = response.headers.get("content-type", "").split(";")[0] or "no content type"
    if status == 429 or status >= 500:
        raise TransientError(
            f"{what}: HTTP {status} with {shape} ({content_type}).",
            remedy="Retried with backoff; Microsoft or a gateway is having trouble.",
            retryable=True,
            http_status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    raise ProtocolError(
        f"{what}: HTTP {status} with {shape} ({content_type}), not Microsoft's JSON.",
        remedy="Check token_url / customer_management_url (leave them unset for Microsoft) and any proxy.",
        http_status=status,
    )
