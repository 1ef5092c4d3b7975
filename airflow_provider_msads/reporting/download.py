"""The report's file: the pre-signed link streamed to a zip, its one CSV unpacked into place.

The link gets a plain client without credentials, https only (loopback aside). The zip goes to a
temporary file, its single CSV entry is read in chunks (BOM stripped, report header read and
stripped, footer stripped, rows counted CSV-aware, optionally gzipped) into a temporary file next
to the destination, which is then moved into place (:mod:`.destinations`): memory stays flat
whatever the report's size.

The report header is requested on purpose: it carries Microsoft's only in-file signal that the
last day may not be completely processed ("Potential Incomplete Data: true"), which becomes
``complete`` in the result. The file itself stays data rows only: column row first, no BOM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_msads.connection.endpoints import is_loopback_host
from airflow_provider_msads.errors import DAMAGED_ZIP, LinkExpiredError, ReportDownloadError, ReportRequestError
from airflow_provider_msads.reporting.destinations import SCRATCH_PREFIX, Publisher, final_name, output
from airflow_provider_msads.reporting.scratch import owner_tag, sweep_stale
from airflow_provider_msads.reporting.service import ReportStatus
from airflow_provider_msads.tokens.flow import shared_tls_context

log = logging.getLogger(__name__)

#: The download is read and written in pieces of this size: the only buffer that grows with it.
CHUNK_SIZE = 1024 * 1024
#: A zip entry larger than this, or inflating more than MAX_RATIO times beyond SMALL_ENTRY, is a
#: zip bomb rather than a report.
MAX_ENTRY_BYTES = 64 * 1024**3
MAX_RATIO = 400
SMALL_ENTRY = 16 * 1024 * 1024
#: Microsoft's CSV ends lines with CRLF.
LINE_END = "\r\n"
#: How often an expired link (403/404) is renewed by polling again before giving up.
LINK_RENEWALS = 3


@dataclass(frozen=True)
class DownloadResult:
    """What was written: ``bytes`` is the size of the file at ``path`` (compressed if gzip).

    ``complete`` is what the report header said ("Potential Incomplete Data"), None when the file
    had no header; ``report_header`` holds its lines as key -> value.
    """

    path: str
    rows: int
    bytes: int
    csv_bytes: int
    compression: str | None = None
    complete: bool | None = None
    report_header: dict[str, str] = field(default_factory=dict)


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


def _the_csv_entry(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    entries = [e for e in archive.infolist() if not e.is_dir()]
    if len(entries) != 1:
        raise ReportDownloadError(
            f"The report zip has {len(entries)} files; a Microsoft report has exactly one CSV.",
            remedy="Check reporting_url; a Microsoft report zip holds one CSV file.",
        )
    entry = entries[0]
    if not entry.filename.lower().endswith(".csv"):
        raise ReportDownloadError(
            f"The report zip holds {entry.filename[:80]!r}, not a .csv file.",
            remedy='Keep the request\'s "Format": "Csv" (report_request must not change it).',
        )
    if entry.file_size > MAX_ENTRY_BYTES or (
        entry.file_size > SMALL_ENTRY and entry.file_size > MAX_RATIO * max(entry.compress_size, 1)
    ):
        raise ReportDownloadError(
            f"The report zip's entry would inflate to {entry.file_size} bytes from {entry.compress_size}: a zip "
            f"bomb (limits: {MAX_ENTRY_BYTES} bytes, ratio {MAX_RATIO}).",
            remedy="Refused without unpacking; check where reporting_url points.",
        )
    return entry


#: The report header's keys, as Microsoft writes them (Reports guide, "Report File Schema"; the
#: SDKs' RowReportHeader parsers list the same nine), each line one quoted value ``"Key: value"``.
HEADER_KEYS = (
    "Report Name",
    "Report Time",
    "Time Zone",
    "Last Completed Available Day",
    "Last Completed Available Hour",
    "Report Aggregation",
    "Report Filter",
    "Potential Incomplete Data",
    "Rows",
)
_HEADER_LINE = re.compile(rb'^"?(' + b"|".join(k.encode() for k in HEADER_KEYS) + rb'): ?(.*?)"?$')
#: The footer: after a blank line, one quoted line "(c)<year> Microsoft Corporation. All rights reserved."
_FOOTER_LINE = re.compile(rb'^"[^"]*Microsoft Corporation[^"]*"$')
_BOM = b"\xef\xbb\xbf"
#: The header is a dozen short lines; more than this before the column row is not a header.
MAX_HEADER_BYTES = 1024 * 1024
#: Bytes held back at the end of the stream until it is known whether they are the footer.
FOOTER_HOLD = 64 * 1024


def _lines(data: bytes) -> list[bytes]:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")


class ReportFrame:
    """Reads and strips the report header and footer from the CSV stream; the rest passes through.

    Fed the entry in chunks, it returns the bytes that belong in the file: the column row and the
    rows, BOM removed. The start is held until the first line is known: a header line starts the
    header, which runs to its blank line (its keys are kept in :attr:`header`); anything else is
    the column row (a file requested without header). The last :data:`FOOTER_HOLD` bytes are held
    until the end: when they end with a blank line and Microsoft's copyright line, those are
    dropped. A file without header or footer passes through unchanged (BOM aside).
    """

    def __init__(self) -> None:
        self.header: dict[str, str] = {}
        self._start: bytearray | None = bytearray()
        self._tail = bytearray()

    @property
    def complete(self) -> bool | None:
        """False when the header says "Potential Incomplete Data: true"; None without a header."""
        flag = self.header.get("Potential Incomplete Data")
        if flag is None:
            return None
        return flag.strip().lower() != "true"

    def feed(self, chunk: bytes) -> bytes:
        if self._start is not None:
            self._start += chunk
            body = self._read_header(final=False)
            if body is None:
                return b""
            chunk = body
        if len(self._tail) + len(chunk) <= FOOTER_HOLD:
            self._tail += chunk
            return b""
        if len(chunk) >= FOOTER_HOLD:  # the usual case: the held tail goes out, the chunk's end is held
            out = bytes(self._tail) + chunk[:-FOOTER_HOLD]
            self._tail = bytearray(chunk[-FOOTER_HOLD:])
            return out
        self._tail += chunk
        out = bytes(self._tail[: len(self._tail) - FOOTER_HOLD])
        del self._tail[: len(out)]
        return out

    def close(self) -> bytes:
        if self._start is not None:
            self._tail += self._read_header(final=True) or b""
        tail = bytes(self._tail)
        self._tail.clear()
        return _without_footer(tail)

    def _read_header(self, *, final: bool) -> bytes | None:
        """The body once the header (if any) is read; None while more bytes are needed."""
        assert self._start is not None
        data = bytes(self._start)
        if not final and len(data) < len(_BOM) and _BOM.startswith(data):
            return None
        data = data.removeprefix(_BOM)
        need_more = not final and len(data) < MAX_HEADER_BYTES
        header: dict[str, str] = {}
        position = 0
        while True:
            end = _line_end(data, position)
            if end is None and need_more:
                return None
            line = data[position : end[0]] if end else data[position:]
            match = _HEADER_LINE.match(line)
            if not match:
                break
            header[match.group(1).decode()] = match.group(2).replace(b'""', b'"').decode("utf-8", "replace")
            if end is None:
                position = len(data)
                break
            position = end[1]
        if header and not line.strip() and end is not None:
            position = end[1]  # the blank line that ends the header
        self._start = None
        self.header = header
        return data[position:].removeprefix(_BOM)


def _line_end(data: bytes, start: int) -> tuple[int, int] | None:
    """(end of the line starting at ``start``, start of the next) or None if it has not ended."""
    lf, cr = data.find(b"\n", start), data.find(b"\r", start)
    if cr == -1 or (lf != -1 and lf < cr):
        return None if lf == -1 else (lf, lf + 1)
    if cr + 1 < len(data):
        return cr, cr + (2 if data[cr + 1] == 0x0A else 1)
    return None  # a CR at the very end: its LF may come with the next chunk


def _without_footer(tail: bytes) -> bytes:
    """``tail`` without Microsoft's footer: a blank line, the copyright line, nothing else."""
    stripped = tail.rstrip(b"\r\n")
    line_start = max(stripped.rfind(b"\n"), stripped.rfind(b"\r")) + 1
    if not _FOOTER_LINE.match(stripped[line_start:].strip(b" \t")):
        return tail
    before = stripped[:line_start]
    body = before.rstrip(b"\r\n")
    breaks = _lines(before[len(body) :])
    if len(breaks) < 3 and body:  # the last row's line end and a blank line
        return tail
    if not body:
        return b""
    end = _line_end(before, len(body))
    return before[: end[1]] if end else body


#: Every byte but the double quote, CR and LF: deleted to count quotes per line at C speed.
_NOT_QUOTE_OR_BREAK = bytes(b for b in range(256) if b not in (0x22, 0x0A, 0x0D))


class RowCounter:
    """Counts CSV records, not lines: a quoted value may hold a line break.

    Fed the CSV in arbitrary chunks; lines end with CRLF, LF or a lone CR (each counted once).
    Nothing of a chunk is kept: the state is whether a quoted value is open, whether the last
    chunk ended with CR (the LF starting the next one belongs to it) and whether a record has
    begun, so a single line of any length costs no memory. Each chunk is reduced in C: every byte
    but quotes and breaks is deleted and quote pairs removed, which leaves a lone quote exactly on
    the lines with an odd number of quotes. Without one (the usual case) the count is one
    ``bytes.count``; otherwise the reduced lines are walked, tracking whether a value is open.
    """

    def __init__(self) -> None:
        self.records = 0
        self._in_quotes = False
        self._after_cr = False
        self._open = False

    def feed(self, chunk: bytes) -> None:
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split between two chunks: counted with its CR
        if not chunk:
            return
        self._after_cr = chunk[-1] == 0x0D
        if 0x0D in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        reduced = chunk.translate(None, _NOT_QUOTE_OR_BREAK).replace(b'""', b"").replace(b"\r", b"\n")
        if not self._in_quotes and b'"' not in reduced:
            self.records += reduced.count(b"\n")
        else:
            lines = reduced.split(b"\n")
            for line in lines[:-1]:
                if line:  # one lone quote: this line opens or closes a quoted value
                    self._in_quotes = not self._in_quotes
                if not self._in_quotes:
                    self.records += 1
            if lines[-1]:
                self._in_quotes = not self._in_quotes
        self._open = self._in_quotes or chunk[-1] not in (0x0A, 0x0D)

    def close(self) -> int:
        """Records seen, including a last one without a line break."""
        if self._open:
            self.records += 1
            self._open = False
        return self.records


def _unpack(zip_path: str, out: IO[bytes], *, compression: str | None) -> tuple[int, int, ReportFrame]:
    """Copy the single CSV entry into ``out`` (BOM, report header and footer stripped, gzipped if
    asked): (rows, csv bytes, the frame with the header read).

    A damaged zip (a cut connection, a truncated blob) is retryable: the task's next try polls for
    a fresh link. Disk errors (OSError) are not wrapped: they are the worker's, not Microsoft's.
    """
    counter = RowCounter()
    frame = ReportFrame()
    written = 0
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entry = _the_csv_entry(archive)
            writer: Any = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) if compression else out
            try:
                with archive.open(entry) as source:
                    while True:
                        chunk = source.read(CHUNK_SIZE)
                        data = frame.feed(chunk) if chunk else frame.close()
                        if data:
                            written += len(data)
                            counter.feed(data)
                            writer.write(data)
                        if not chunk:
                            break
            finally:
                if writer is not out:
                    writer.close()
    except DAMAGED_ZIP as exc:
        raise ReportDownloadError.damaged_zip("report", exc, "poll for a fresh link") from exc
    records = counter.close()
    rows = max(records - 1, 0)
    declared = frame.header.get("Rows", "").strip().replace(",", "")
    if declared.isdigit() and int(declared) != rows:
        log.warning("The report header says %s rows; the file has %d.", declared, rows)
    return rows, written, frame


def header_row(columns: Sequence[str]) -> bytes:
    """The column row as Microsoft writes it: every name in double quotes, CRLF."""
    return (",".join('"' + c.replace('"', '""') + '"' for c in columns) + LINE_END).encode("utf-8")


def write_empty_report(
    columns: Sequence[str], destination: str, *, compression: str | None = None, publish: Publisher | None = None
) -> DownloadResult:
    """Success without a link: the file is the column row alone, as Microsoft would write it."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    row = header_row(columns)
    with output(destination, publish) as out:
        if compression:
            with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as zipped:
                zipped.write(row)
        else:
            out.write(row)
        size = out.tell()
    return DownloadResult(path=destination, rows=0, bytes=size, csv_bytes=len(row), compression=compression)


def _check_compression(compression: str | None) -> None:
    if compression not in (None, "gzip"):
        raise ReportRequestError(
            f"`compression` is {str(compression)[:20]!r}.",
            field="compression",
            remedy='Use None (plain CSV) or "gzip".',
        )


def download_report(
    url: str,
    destination: str,
    *,
    compression: str | None = None,
    publish: Publisher | None = None,
    timeout: float = 300.0,
) -> DownloadResult:
    """Stream the report behind ``url`` to ``destination``; raises LinkExpiredError on 403/404."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    with fetched_zip(url, "report.zip", timeout=timeout) as zip_path:
        return _publish_csv(zip_path, destination, compression, publish, os.path.dirname(zip_path))


@contextlib.contextmanager
def fetched_zip(url: str, name: str, *, timeout: float) -> Iterator[str]:
    """The zip behind ``url``, downloaded as ``name`` into a new scratch folder removed on leaving
    (reports and Bulk result files alike)."""
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
    scratch = await asyncio.to_thread(_new_scratch)
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


def _new_scratch() -> str:
    """A private scratch folder for the zip, named after its owner (host, pid) so that the next run
    can sweep what a killed one left (:func:`.destinations.sweep_stale`); sweeps first."""
    folder = tempfile.gettempdir()
    sweep_stale(folder, SCRATCH_PREFIX)
    return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{owner_tag()}-", dir=folder)


async def adownload_report(
    url: str,
    destination: str,
    *,
    compression: str | None = None,
    publish: Publisher | None = None,
    timeout: float = 300.0,
) -> DownloadResult:
    """Async twin: the network part on the loop, file work in worker threads."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    async with afetched_zip(url, "report.zip", timeout=timeout) as zip_path:
        scratch = os.path.dirname(zip_path)
        return await asyncio.to_thread(_publish_csv, zip_path, destination, compression, publish, scratch)


def _publish_csv(
    zip_path: str, destination: str, compression: str | None, publish: Publisher | None, scratch: str | None = None
) -> DownloadResult:
    with output(destination, publish, scratch=scratch) as out:
        rows, csv_bytes, frame = _unpack(zip_path, out, compression=compression)
        size = out.tell()
    return DownloadResult(
        path=destination,
        rows=rows,
        bytes=size,
        csv_bytes=csv_bytes,
        compression=compression,
        complete=frame.complete,
        report_header=dict(frame.header),
    )


# ------------------------------------------------------------------------------------- renewal


@dataclass(frozen=True)
class Fetch:
    """A step of :func:`renewing_download`: download the report behind ``url``."""

    url: str


@dataclass(frozen=True)
class PollAgain:
    """A step of :func:`renewing_download`: Poll ``request_id`` again for a fresh link."""

    request_id: str


def renewing_download(url: str, request_id: str | None) -> Generator[Fetch | PollAgain, Any, DownloadResult]:
    """Download, and when the link has expired, Poll again for a fresh one and retry.

    Links live five minutes while Microsoft keeps the report one day: a task that waited too long
    between Poll and download should not fail for that. A flow (as in :mod:`_flow`): the hook
    drives it with its sync or async download and Poll, so the rule is written once.
    """
    for renewal in range(LINK_RENEWALS + 1):
        try:
            result: DownloadResult = yield Fetch(url)
            return result
        except LinkExpiredError:
            if request_id is None or renewal == LINK_RENEWALS:
                raise
            log.info("Report %s: the download link expired; polling for a fresh one.", request_id)
            url = fresh_link((yield PollAgain(request_id)))
    raise AssertionError("unreachable")  # pragma: no cover


def fresh_link(status: ReportStatus) -> str:
    """The new link of a Poll made to renew an expired one."""
    if status.status != "Success" or not status.download_url:
        raise ReportDownloadError(
            f"Report {status.request_id}: polling for a fresh download link answered {status.status} without a link.",
            remedy="Run the task again; it resumes the same request while Microsoft keeps it (one day).",
            tracking_id=status.tracking_id,
        )
    return status.download_url
