"""The link behind a report or a Bulk file: fetched without credentials, as chunks or whole.

The link gets a plain client without credentials, https only (loopback aside), no redirects: it
carries its own signature. :func:`streamed` (a reader thread) and :func:`astreamed` (the event
loop) hand the chunks to a consumer that runs at the same time (inflating, writing), joined by a
pipe of :data:`PIPE_CHUNKS` chunks: the download and the work on it overlap, and memory is bounded
by the pipe, not the file. :func:`fetched_zip` downloads a zip whole into scratch (a Bulk file
while another account's is being split); :func:`spooled` writes the rest of a stream there (the
whole-zip fallback). Scratch folders are named after their owner and swept once it is gone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from airflow_provider_msads.connection.endpoints import is_loopback_host
from airflow_provider_msads.errors import LinkExpiredError, ReportDownloadError
from airflow_provider_msads.reporting.destinations import SCRATCH_PREFIX
from airflow_provider_msads.reporting.scratch import owner_tag, sweep_stale
from airflow_provider_msads.reporting.zipstream import ChunkReader
from airflow_provider_msads.tokens.flow import shared_tls_context

_T = TypeVar("_T")

#: The download is read and written in pieces of this size.
CHUNK_SIZE = 1024 * 1024
#: Chunks held between the download and the consumer (the pipeline's buffer: a few MiB, whatever
#: the file's size). Enough to ride out a slow write or a slow packet, no more.
PIPE_CHUNKS = 4
#: Inflated pieces (up to 1 MiB each) made ahead of the consumer (:func:`ahead`).
AHEAD_PIECES = 2


def check_download_url(url: str) -> str:
    """https, or http to loopback (the emulator); never credentials in the URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ReportDownloadError("The report download URL is not a valid URL.", remedy="Poll again.") from exc
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    if secure and parts.hostname and parts.username is None and parts.password is None:
        return url
    raise ReportDownloadError(
        f"Refusing the report download link: it is not https ({parts.scheme or 'no scheme'}://{parts.hostname or ''}).",
        remedy="Microsoft's links are https blob URLs; check reporting_url and any proxy in between.",
    )


def _download_client(timeout: float) -> httpx.Client:
    # No auth, no cookies, no redirects to elsewhere: the link carries its own signature.
    return httpx.Client(timeout=timeout, verify=shared_tls_context(), follow_redirects=False, trust_env=True)


def _adownload_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, verify=shared_tls_context(), follow_redirects=False, trust_env=True)


def _check_download_response(response: httpx.Response) -> None:
    host = response.request.url.host
    if response.status_code in (403, 404, 410):
        raise LinkExpiredError(
            f"The report download link answered HTTP {response.status_code} (it lives 5 minutes).",
            remedy="Polled again for a fresh link; if it persists, the report request expired (ids live one day).",
            http_status=response.status_code,
        )
    if response.status_code >= 400:
        raise ReportDownloadError(
            f"The report download from {host} failed with HTTP {response.status_code}.",
            remedy="Retried by the task's retries; check network access to the blob host.",
            http_status=response.status_code,
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if "html" in kind or "xml" in kind or "json" in kind:
        raise ReportDownloadError(
            f"The report download from {host} answered {kind} instead of a zip (an error page).",
            remedy="A proxy or the blob store answered an error page; retried by the task's retries.",
            http_status=response.status_code,
            retryable=True,
        )


def _sniff(first: bytes, host: str) -> None:
    if first.startswith(b"PK\x03\x04"):
        return
    stripped = first.lstrip(b"\xef\xbb\xbf \t\r\n")
    page = stripped[:1] == b"<"
    raise ReportDownloadError(
        f"The report download from {host} is "
        + ("an HTML/XML error page" if page else "not a zip file")
        + " instead of the report's zip.",
        remedy="A proxy or the blob store answered something else; retried by the task's retries.",
        retryable=True,
    )


@dataclass
class _Sink:
    """The zip being downloaded into a temporary file."""

    file: IO[bytes]
    size: int = 0
    first: bytes = b""


def _fetch_zip(url: str, target: IO[bytes], *, timeout: float) -> int:
    check_download_url(url)
    with _download_client(timeout) as client, client.stream("GET", url) as response:
        _check_download_response(response)
        sink = _Sink(target)
        for chunk in response.iter_bytes(CHUNK_SIZE):
            _take(sink, chunk, response.request.url.host)
        return _finish(sink, response.request.url.host)


async def _afetch_zip(url: str, target: IO[bytes], *, timeout: float) -> int:
    check_download_url(url)
    async with _adownload_client(timeout) as client, client.stream("GET", url) as response:
        _check_download_response(response)
        sink = _Sink(target)
        pending = bytearray()
        async for chunk in response.aiter_bytes(CHUNK_SIZE):
            pending += chunk
            if len(pending) >= 4 * CHUNK_SIZE:  # disk writes in a thread, in a few big pieces
                data, pending = bytes(pending), bytearray()
                await asyncio.to_thread(_take, sink, data, response.request.url.host)
        if pending:
            await asyncio.to_thread(_take, sink, bytes(pending), response.request.url.host)
        return _finish(sink, response.request.url.host)


def _take(sink: _Sink, chunk: bytes, host: str) -> None:
    if len(sink.first) < 4:
        sink.first += chunk[: 64 - len(sink.first)]
        if len(sink.first) >= 4:
            _sniff(sink.first, host)
    sink.file.write(chunk)
    sink.size += len(chunk)


def _finish(sink: _Sink, host: str) -> int:
    _sniff(sink.first, host)
    sink.file.flush()
    return sink.size


@contextlib.contextmanager
def spooled(reader: ChunkReader, name: str) -> Iterator[str]:
    """The rest of the zip (with what ``reader`` already holds) written as ``name`` into a new
    scratch folder, removed on leaving."""
    scratch = _new_scratch()
    try:
        zip_path = os.path.join(scratch, name)
        with open(zip_path, "wb") as target:
            for chunk in reader.rest():
                target.write(chunk)
        yield zip_path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------- the pipe


class _Stopped(Exception):
    """The other side of the pipe gave up (an error, an interrupt, a cancelled task)."""


class _Pipe:
    """The download's chunks between the network and the inflater: at most ``size`` of them.

    The network side puts (blocking in the sync reader thread, :meth:`try_put` on the event loop),
    the inflater takes (:meth:`chunks`, in its thread). Either side stops it (:meth:`stop`) when it
    gives up, which wakes the other: nothing waits forever on a side that has gone.
    """

    def __init__(self, size: int, on_space: Callable[[], None] | None = None) -> None:
        self._items: collections.deque[bytes] = collections.deque()
        self._size = size
        self._cond = threading.Condition()
        self._ended = False
        self._error: BaseException | None = None
        self.stopped = False
        self._on_space = on_space

    def put(self, chunk: bytes) -> bool:
        """Wait for room, then add ``chunk``; False when the pipe was stopped."""
        with self._cond:
            while len(self._items) >= self._size and not self.stopped:
                self._cond.wait()
            if self.stopped:
                return False
            self._items.append(chunk)
            self._cond.notify_all()
            return True

    def try_put(self, chunk: bytes) -> bool | None:
        """Add ``chunk`` if there is room (True); False when stopped; None when full."""
        with self._cond:
            if self.stopped:
                return False
            if len(self._items) >= self._size:
                return None
            self._items.append(chunk)
            self._cond.notify_all()
            return True

    def end(self, error: BaseException | None = None) -> None:
        """No more chunks: the download is complete, or failed with ``error``."""
        with self._cond:
            self._ended = True
            self._error = error
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._items.clear()
            self._cond.notify_all()
        if self._on_space is not None:
            self._on_space()

    def chunks(self) -> _Drain:
        return _Drain(self)

    def take(self) -> bytes | None:
        """The next chunk, waiting for it; None at the end. Raises the producer's error, or
        :class:`_Stopped` when the pipe was stopped."""
        with self._cond:
            while not self._items and not self._ended and not self.stopped:
                self._cond.wait()
            if self.stopped:
                raise _Stopped("The download was stopped.")
            if not self._items:
                if self._error is not None:
                    raise self._error
                return None
            chunk = self._items.popleft()
            self._cond.notify_all()
        if self._on_space is not None:
            self._on_space()
        return chunk


class _Drain(Iterator[bytes]):
    """What comes out of a pipe, as an iterator that can also stop the pipe (from any thread)."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe

    def __next__(self) -> bytes:
        chunk = self._pipe.take()
        if chunk is None:
            raise StopIteration
        return chunk

    def stop(self) -> None:
        self._pipe.stop()


@contextlib.contextmanager
def ahead(pieces: Iterator[bytes], source: Iterator[bytes]) -> Iterator[Iterator[bytes]]:
    """``pieces`` made in a thread of their own, at most :data:`PIPE_CHUNKS` ahead of the caller.

    Inflating (zlib and CRC-32 release the GIL) then runs on one core while the caller counts rows
    and writes on the other. ``source`` is what ``pieces`` read from (a pipe's :class:`_Drain`):
    when the caller leaves early (an error, an interrupt) both pipes are stopped, which wakes the
    thread wherever it waits, and it is joined before this returns.
    """
    pipe = _Pipe(AHEAD_PIECES)

    def produce() -> None:
        try:
            for piece in pieces:
                if not pipe.put(piece):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            pipe.end(exc)
            return
        pipe.end()

    thread = threading.Thread(target=produce, name="msads-inflate", daemon=True)
    thread.start()
    try:
        yield pipe.chunks()
    finally:
        pipe.stop()
        if thread.is_alive() and isinstance(source, _Drain):
            source.stop()  # it may be waiting for the network
        thread.join()


@contextlib.contextmanager
def streamed(url: str, *, timeout: float) -> Iterator[tuple[Iterator[bytes], str]]:
    """The zip behind ``url`` as chunks, downloaded by a reader thread while the caller consumes
    them: (chunks, host). Leaving (normally, on an error or an interrupt) stops and joins the
    reader; a network error is raised where the caller takes the next chunk."""
    check_download_url(url)
    pipe = _Pipe(PIPE_CHUNKS)
    reader = threading.Thread(target=_read_link, args=(url, timeout, pipe), name="msads-download", daemon=True)
    reader.start()
    try:
        yield pipe.chunks(), urlsplit(url).hostname or ""
    finally:
        pipe.stop()
        reader.join()


def _read_link(url: str, timeout: float, pipe: _Pipe) -> None:
    try:
        with _download_client(timeout) as client, client.stream("GET", url) as response:
            _check_download_response(response)
            for chunk in response.iter_bytes(CHUNK_SIZE):
                if not pipe.put(chunk):
                    return  # the consumer has gone: closing the response drops the connection
    except BaseException as exc:  # handed to the consumer, raised there
        pipe.end(exc)
        return
    pipe.end()


async def astreamed(url: str, consume: Callable[[Iterator[bytes], str], _T], *, timeout: float) -> _T:
    """Async twin of :func:`streamed`: the network on the loop, ``consume(chunks, host)`` in a
    thread of its own; returns what it returns. The loop never blocks: it waits for room in the pipe
    on an event the worker sets. On an error or a cancellation the pipe is stopped and the worker
    awaited (shielded) until it has cleaned up, so no part file outlives the task."""
    check_download_url(url)
    loop = asyncio.get_running_loop()
    space = asyncio.Event()
    pipe = _Pipe(PIPE_CHUNKS, on_space=lambda: _wake(loop, space))
    host = urlsplit(url).hostname or ""

    def work() -> _T:
        try:
            return consume(pipe.chunks(), host)
        finally:
            pipe.stop()

    worker = _in_own_thread(loop, work)
    try:
        async with _adownload_client(timeout) as client, client.stream("GET", url) as response:
            _check_download_response(response)
            async for chunk in response.aiter_bytes(CHUNK_SIZE):
                if not await _aput(pipe, space, chunk):
                    break  # the worker has finished (with an error): its result says what
        pipe.end()
        return await asyncio.shield(worker)
    except BaseException:
        pipe.stop()
        await _settle(worker)
        raise


def _in_own_thread(loop: asyncio.AbstractEventLoop, work: Callable[[], _T]) -> asyncio.Future[_T]:
    """Run ``work`` in a thread of its own (not the loop's default pool: a download holds its
    thread for as long as it lasts, and many at once would starve every other ``to_thread``)."""
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:
            _call_soon(loop, settle, None, exc)
        else:
            _call_soon(loop, settle, result, None)

    threading.Thread(target=run, name="msads-write", daemon=True).start()
    return future


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
        loop.call_soon_threadsafe(callback, *args)


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    _call_soon(loop, event.set)


async def _aput(pipe: _Pipe, space: asyncio.Event, chunk: bytes) -> bool:
    while True:
        space.clear()
        placed = pipe.try_put(chunk)
        if placed is not None:
            return placed
        await space.wait()


async def _settle(worker: asyncio.Future[Any]) -> None:
    """Wait until the worker thread is done, whatever cancellations arrive meanwhile (it removes
    its part file and scratch); a cancellation received here is raised afterwards."""
    cancelled = False
    while not worker.done():
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException:  # noqa: S110 - the worker's own error: the caller raises its first one
            pass
    if not worker.cancelled():
        worker.exception()  # retrieved, so asyncio does not log it as never retrieved
    if cancelled:
        raise asyncio.CancelledError


@contextlib.contextmanager
def fetched_zip(url: str, name: str, *, timeout: float) -> Iterator[str]:
    """The zip behind ``url``, downloaded whole as ``name`` into a new scratch folder removed on
    leaving (Bulk files while another is being split)."""
    scratch = _new_scratch()
    try:
        zip_path = os.path.join(scratch, name)
        with open(zip_path, "wb") as target:
            _fetch_zip(url, target, timeout=timeout)
        yield zip_path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.asynccontextmanager
async def afetched_zip(url: str, name: str, *, timeout: float) -> AsyncIterator[str]:
    """Async twin of :func:`fetched_zip`: the network on the loop, file work in worker threads."""
    making = asyncio.ensure_future(asyncio.to_thread(_new_scratch))
    try:
        scratch = await asyncio.shield(making)
    except asyncio.CancelledError:
        # Cancelled while the thread makes the folder (another account failed, say): it is made
        # all the same, so it is removed once it exists, or it would outlive the task.
        making.add_done_callback(_remove_made)
        raise
    try:
        zip_path = os.path.join(scratch, name)
        target = await asyncio.to_thread(open, zip_path, "wb")
        try:
            await _afetch_zip(url, target, timeout=timeout)
        finally:
            await asyncio.to_thread(target.close)
        yield zip_path
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def _remove_made(making: asyncio.Future[str]) -> None:
    if not making.cancelled() and making.exception() is None:
        shutil.rmtree(making.result(), ignore_errors=True)  # an empty folder: one rmdir


def _new_scratch() -> str:
    """A private scratch folder for the zip, named after its owner (host, pid) so that the next run
    can sweep what a killed one left (:func:`.destinations.sweep_stale`); sweeps first."""
    folder = tempfile.gettempdir()
    sweep_stale(folder, SCRATCH_PREFIX)
    return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{owner_tag()}-", dir=folder)
