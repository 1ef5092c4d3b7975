"""The report's file: the pre-signed link's zip inflated as it arrives, its one CSV put in place.

The link is fetched by :mod:`.fetch` (no credentials, https only, loopback aside) while its zip is
read as a stream (:mod:`.zipstream`): the single CSV entry is inflated (BOM stripped, report
header read and stripped, footer stripped, rows counted CSV-aware, optionally gzipped) into what
:func:`.destinations.output` gives, which becomes the destination only once the zip is read to its
end and verified (CRC-32, sizes, no other entry). Memory stays flat whatever the report's size. A
zip that cannot be read that way is spooled whole to scratch and unzipped, as before (logged).

The report header is requested on purpose: it carries Microsoft's only in-file signal that the
last day may not be completely processed ("Potential Incomplete Data: true"), which becomes
``complete`` in the result. The file itself stays data rows only: column row first, no BOM.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from airflow_provider_msads.errors import DAMAGED_ZIP, LinkExpiredError, ReportDownloadError, ReportRequestError
from airflow_provider_msads.reporting import inflate_child
from airflow_provider_msads.reporting.destinations import (
    SCRATCH_PREFIX,
    Publisher,
    final_name,
    output,
    uploads_while_written,
)

# CHUNK_SIZE and check_download_url are re-exported from where they always were.
from airflow_provider_msads.reporting.fetch import CHUNK_SIZE as CHUNK_SIZE
from airflow_provider_msads.reporting.fetch import _sniff, ahead, astreamed, spooled, streamed
from airflow_provider_msads.reporting.fetch import check_download_url as check_download_url
from airflow_provider_msads.reporting.scratch import sweep_stale
from airflow_provider_msads.reporting.service import ReportStatus
from airflow_provider_msads.reporting.zipstream import (
    ChunkReader,
    EntryRules,
    Limits,
    LocalEntry,
    Unstreamable,
    entry_data,
    read_local_header,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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


def _refuse_count(count: int) -> ReportDownloadError:
    return ReportDownloadError(
        f"The report zip has {count} files; a Microsoft report has exactly one CSV.",
        remedy="Check reporting_url; a Microsoft report zip holds one CSV file.",
    )


def _refuse_name(name: str) -> ReportDownloadError:
    return ReportDownloadError(
        f"The report zip holds {name[:80]!r}, not a .csv file.",
        remedy='Keep the request\'s "Format": "Csv" (report_request must not change it).',
    )


def _refuse_bomb(size: int, compressed: int, declared: bool) -> ReportDownloadError:
    return ReportDownloadError(
        f"The report zip's entry {'would inflate' if declared else 'inflated beyond'} {size} bytes from "
        f"{compressed}: a zip bomb (limits: {MAX_ENTRY_BYTES} bytes, ratio {MAX_RATIO}).",
        remedy="Refused without unpacking; check where reporting_url points."
        if declared
        else "Refused while unpacking (nothing kept); check where reporting_url points.",
    )


def _limits() -> Limits:
    """The bomb limits, read when used (tests lower them)."""
    return Limits(max_bytes=MAX_ENTRY_BYTES, ratio=MAX_RATIO, small=SMALL_ENTRY)


#: A report zip: one .csv entry, no zip bomb.
REPORT_ZIP = EntryRules(limits=_limits, refuse_count=_refuse_count, refuse_name=_refuse_name, refuse_bomb=_refuse_bomb)


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
            out = bytes(self._tail) + memoryview(chunk)[:-FOOTER_HOLD]
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


def _balanced(reduced: bytes) -> bool:
    """Whether every line of ``reduced`` (quotes and line breaks only) has an even number of quotes."""
    end = reduced.find(b"\n") + 1
    line = reduced[:end]
    if end and b'"' not in line.replace(b'""', b"") and reduced.count(line) * end == len(reduced):
        return True  # every line alike (Microsoft quotes every value): no pass removing the pairs
    return b'"' not in reduced.replace(b'""', b"")


#: At most this much of a partial last line is carried to the next chunk (:class:`RowCounter`).
_CARRY_MAX = 64 * 1024


class RowCounter:
    """Counts CSV records, not lines: a quoted value may hold a line break.

    Fed the CSV in arbitrary chunks; lines end with CRLF, LF or a lone CR (each counted once).
    Nothing of a chunk is kept but its partial last line (bounded): the state is whether a quoted
    value is open, whether the last chunk ended with CR (the LF starting the next one belongs to
    it) and whether a record has
    begun, so a single line of any length costs no memory. Each chunk is reduced in C: every byte
    but quotes and breaks is deleted and quote pairs removed, which leaves a lone quote exactly on
    the lines with an odd number of quotes. Without one (the usual case: a chunk's partial last
    line is carried to the next, up to :data:`_CARRY_MAX`) the count is a few ``bytes.count``;
    otherwise the line ends between consecutive lone quotes are counted, tracking whether a value
    is open.
    """

    def __init__(self) -> None:
        self.records = 0
        self._in_quotes = False
        self._after_cr = False
        self._open = False
        self._carry = b""

    def feed(self, chunk: bytes) -> None:
        # The partial last line waits for the next chunk: chunks then start at a line start, so
        # that a chunk cut inside a quoted value does not take the count off its fast path.
        data = self._carry + chunk if self._carry else chunk
        cut = data.rfind(b"\n")
        if cut == -1 or len(data) - cut > _CARRY_MAX:  # no LF near the end (CR line ends, a long line)
            self._carry = b""
            self._count(data)
            return
        self._carry = data[cut + 1 :]
        self._count(data[: cut + 1])

    def _count(self, chunk: bytes) -> None:
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split between two chunks: counted with its CR
        if not chunk:
            return
        self._after_cr = chunk[-1] == 0x0D
        reduced = chunk.translate(None, _NOT_QUOTE_OR_BREAK)  # a fraction of the chunk
        crlf = chunk.count(b"\r\n")
        if not self._in_quotes and _balanced(reduced):
            # every line end counts: LFs and CRs, a CRLF once (adjacent in the chunk itself)
            self.records += reduced.count(b"\n") + reduced.count(b"\r") - crlf
        else:
            if crlf == reduced.count(b"\r\n"):  # no CR and LF made adjacent by the deletion
                reduced = reduced.replace(b"\r\n", b"\n")
            else:
                reduced = chunk.replace(b"\r\n", b"\n").translate(None, _NOT_QUOTE_OR_BREAK)
            reduced = reduced.replace(b'""', b"").replace(b"\r", b"\n")
            # Each line holds at most one lone quote, which opens or closes a quoted value: the
            # line ends between two of them count when outside quotes (a few quotes per chunk,
            # not a walk over every line).
            start = 0
            quote = reduced.find(b'"')
            while quote != -1:
                if not self._in_quotes:
                    self.records += reduced.count(b"\n", start, quote)
                self._in_quotes = not self._in_quotes
                start = quote + 1
                quote = reduced.find(b'"', start)
            if not self._in_quotes:
                self.records += reduced.count(b"\n", start)
        self._open = self._in_quotes or chunk[-1] not in (0x0A, 0x0D)

    def close(self) -> int:
        """Records seen, including a last one without a line break."""
        if self._carry:
            self._count(self._carry)
            self._carry = b""
        if self._open:
            self.records += 1
            self._open = False
        return self.records


def _unpack(zip_path: str, out: IO[bytes], *, compression: str | None) -> tuple[int, int, ReportFrame]:
    """Copy the single CSV entry of a whole zip into ``out`` (the path taken when the zip cannot be
    read as it arrives): see :func:`_write_csv`.

    A damaged zip (a cut connection, a truncated blob) is retryable: the task's next try polls for
    a fresh link. Disk errors (OSError) are not wrapped: they are the worker's, not Microsoft's.
    """
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entry = REPORT_ZIP.the_entry(archive)
            with archive.open(entry) as source:
                return _write_csv(iter(lambda: source.read(CHUNK_SIZE), b""), out, compression=compression)
    except DAMAGED_ZIP as exc:
        raise ReportDownloadError.damaged_zip("report", exc, "poll for a fresh link") from exc


def _write_csv(pieces: Iterable[bytes], out: IO[bytes], *, compression: str | None) -> tuple[int, int, ReportFrame]:
    """Write the CSV entry's bytes into ``out`` (BOM, report header and footer stripped, gzipped if
    asked): (rows, csv bytes, the frame with the header read)."""
    counter = RowCounter()
    frame = ReportFrame()
    written = 0
    writer: Any = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) if compression else out
    try:
        for chunk in itertools.chain(pieces, [b""]):
            data = frame.feed(chunk) if chunk else frame.close()
            if data:
                written += len(data)
                counter.feed(data)
                writer.write(data)
    finally:
        if writer is not out:
            writer.close()
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
    """Stream the report behind ``url`` to ``destination``; raises LinkExpiredError on 403/404.

    The download (a reader thread) and the inflating and writing (this thread) overlap, joined by
    :data:`.fetch.PIPE_CHUNKS` chunks: see :func:`_report_from_stream`.
    """
    _check_compression(compression)
    destination = final_name(destination, compression)
    with streamed(url, timeout=timeout) as (chunks, host):
        return _report_from_stream(chunks, host, destination, compression, publish)


async def adownload_report(
    url: str,
    destination: str,
    *,
    compression: str | None = None,
    publish: Publisher | None = None,
    timeout: float = 300.0,
) -> DownloadResult:
    """Async twin: the network on the loop, inflating and writing in a worker thread."""
    _check_compression(compression)
    destination = final_name(destination, compression)
    return await astreamed(
        url, lambda chunks, host: _report_from_stream(chunks, host, destination, compression, publish), timeout=timeout
    )


def _report_from_stream(
    chunks: Iterator[bytes], host: str, destination: str, compression: str | None, publish: Publisher | None
) -> DownloadResult:
    """The report's zip as it arrives, inflated into ``destination`` (or, when it cannot be read
    that way, spooled whole and unzipped: :func:`open_entry` says why in the log)."""
    reader = ChunkReader(chunks)
    entry = open_entry(reader, host, "report", damaged=lambda exc: _damaged("report", exc))
    if entry is None:
        with spooled(reader, "report.zip") as zip_path:
            return _publish_csv(zip_path, destination, compression, publish, os.path.dirname(zip_path))
    REPORT_ZIP.check(entry.name, entry.size, entry.compressed)
    try:
        with (
            REPORT_ZIP.refusing(),
            _inflated(reader, entry, chunks, child=not uploads_while_written(destination, publish)) as pieces,
            output(destination, publish) as out,
        ):
            rows, csv_bytes, frame = _write_csv(pieces, out, compression=compression)
            size = out.tell()
    except DAMAGED_ZIP as exc:
        raise _damaged("report", exc) from exc
    return DownloadResult(
        path=destination,
        rows=rows,
        bytes=size,
        csv_bytes=csv_bytes,
        compression=compression,
        complete=frame.complete,
        report_header=dict(frame.header),
    )


def _inflated(
    reader: ChunkReader, entry: LocalEntry, chunks: Iterator[bytes], *, child: bool
) -> contextlib.AbstractContextManager[Iterator[bytes]]:
    """The entry's bytes: a big one inflated by a child process (:mod:`.inflate_child`) when
    ``child``, else in a thread ahead of the caller (:func:`.fetch.ahead`); closed on leaving.

    Not for a report streamed to an object store as it is written (S3, GCS, Azure; ``child`` False):
    there the upload is the bound and 8 MiB parts are held already; a child adds its interpreter (about 14 MB) and
    gained no time (benchmark P8: 13.8 s with one, 12.3 s without, for 1 GB into moto)."""
    if child and inflate_child.wanted(entry):
        return contextlib.closing(entry_data(reader, entry, _limits(), inflate_child.inflate))
    return ahead(entry_data(reader, entry, _limits()), chunks)


def _damaged(what: str, exc: BaseException) -> ReportDownloadError:
    return ReportDownloadError.damaged_zip(what, exc, "poll for a fresh link")


def open_entry(
    reader: ChunkReader, host: str, what: str, *, damaged: Callable[[BaseException], Exception]
) -> LocalEntry | None:
    """The zip's first entry, once its local header is in; None (and one log line saying why) when
    the zip must be read whole instead. An error page or a non-zip is refused as before.

    Sweeps first what killed runs left in the temp folder (their scratch zips), as
    :func:`.fetch._new_scratch` does: a streamed download makes none, but the sweep is still due."""
    sweep_stale(tempfile.gettempdir(), SCRATCH_PREFIX)
    reader.fill(4)
    _sniff(bytes(reader.buffer[:64]), host)
    try:
        return read_local_header(reader)
    except Unstreamable as exc:
        log.warning("The %s zip cannot be read as it arrives (%s): downloading it whole, then unzipping.", what, exc)
        return None
    except DAMAGED_ZIP as exc:
        raise damaged(exc) from exc


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
