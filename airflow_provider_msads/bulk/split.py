"""The Bulk file split by record ``Type``: one file per type, all accounts' rows together.

Microsoft's download is one union CSV (UTF-8 with a BOM): every record type's columns side by side,
``Type`` first, and "you should not depend on record or field order … new record types (rows) and
fields (columns) may be added anytime" (Bulk Download and Upload guide). A loader wants the
opposite: a ``keyword.csv`` whose columns are the same every run. So each known type gets the
columns the SDK's entity for that type reads (generated into :mod:`._record_types` by
``scripts/gen_bulk_record_types.py``), in that order, whichever of them a row fills; a type the SDK
does not know gets the union header of the first file it appears in. A filled cell in a column
outside its type's set is counted and named in a warning (Microsoft added a column the SDK does not
know yet), never silently lost from sight.

Streaming: the zip's single CSV entry is read row by row (``csv`` handles quoted line breaks) and
each row is appended to its type's scratch file; memory holds one row and one open file per type.
Several downloads (one per account, or per 1,000 campaigns of a too-big account) feed the same
scratch files; :func:`publish_files` then moves each into place through :mod:`..reporting.destinations`,
so a file appears under its final name only when whole, and only when every download succeeded.

Not data: the ``Format Version`` row. The ``Account`` row is data (``account.csv``) and carries the
``Sync Time`` the next delta sends. Rows whose Type ends in `` Error`` fail the split, naming the
entity, its id and Microsoft's error. No Airflow here.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime
import io
import logging
import os
import re
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_msads.bulk._record_types import RECORD_COLUMNS
from airflow_provider_msads.errors import DAMAGED_ZIP, ReportDownloadError
from airflow_provider_msads.reporting.destinations import Publisher, is_url, output
from airflow_provider_msads.reporting.zipstream import EntryRules, Limits

log = logging.getLogger(__name__)

FORMAT_VERSION_TYPE = "Format Version"
ACCOUNT_TYPE = "Account"
ERROR_SUFFIX = " Error"
#: Microsoft's Sync Time: "MM/DD/YYYY HH:MM:SS", UTC (fractions of a second may follow).
_SYNC_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M")
#: csv refuses a field longer than this by default (128 KiB); a Bulk cell (an ad's JSON, a long
#: list of ids) may be longer, so the limit is raised to a bound that still stops a runaway file.
FIELD_LIMIT = 64 * 1024 * 1024


class BulkFileError(ReportDownloadError):
    """The Bulk file holds an error row, or is not a Bulk file."""


def file_stem(record_type: str) -> str:
    """``"Responsive Search Ad"`` -> ``"responsive_search_ad"``: the type's file name, lower snake case."""
    return re.sub(r"[^0-9a-z]+", "_", record_type.lower()).strip("_") or "unnamed"


def parse_sync_time(text: str) -> datetime.datetime | None:
    """The Account row's Sync Time as an aware UTC datetime; None when empty or unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    for fmt in _SYNC_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


@dataclass
class _TypeFile:
    columns: tuple[str, ...]
    path: str
    handle: IO[str]
    writer: Any
    rows: int = 0


@dataclass
class AccountSync:
    """What one download said about its account: the Account row's Id and Sync Time."""

    account_id: str | None = None
    sync_time: str | None = None
    rows: dict[str, int] = field(default_factory=dict)


class Splitter:
    """Scratch files per record type, fed one downloaded Bulk file after another."""

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch
        self._files: dict[str, _TypeFile] = {}
        self._accounts_seen: set[str] = set()
        #: (record type, column) pairs whose filled cells were left out of the type's file.
        self.dropped: dict[tuple[str, str], int] = {}
        # One file at a time. Async callers (accounts downloaded concurrently) wait on
        # :meth:`async_lock` before handing a file to a worker thread, so no thread ever blocks
        # on ``_lock``; it only guards sync callers that share a splitter across threads.
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None

    def async_lock(self) -> asyncio.Lock:
        """The lock async callers take before :meth:`feed` (made on first use, in the running loop)."""
        if self._alock is None:
            self._alock = asyncio.Lock()
        return self._alock

    # -- writing ----------------------------------------------------------------------------

    def _file(self, record_type: str, header: list[str]) -> _TypeFile:
        current = self._files.get(record_type)
        if current is not None:
            return current
        columns = RECORD_COLUMNS.get(record_type)
        if columns is None:
            columns = tuple(header)
            log.warning(
                "Bulk record type %r is not in the SDK's list this package was built from; its file gets the "
                "download's union header (%d columns).",
                record_type,
                len(columns),
            )
        path = os.path.join(self.scratch, f"{file_stem(record_type)}.csv")
        if any(f.path == path for f in self._files.values()):  # two types, one stem: keep both
            path = os.path.join(self.scratch, f"{file_stem(record_type)}_{len(self._files)}.csv")
        handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(columns)
        made = _TypeFile(columns=columns, path=path, handle=handle, writer=writer)
        self._files[record_type] = made
        return made

    def feed(self, zip_path: str) -> AccountSync:
        """Split one downloaded zip (its single CSV entry) into the scratch files."""
        try:
            with zipfile.ZipFile(zip_path) as archive:
                entry = BULK_ZIP.the_entry(archive)
                with archive.open(entry) as raw:
                    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                    return self.feed_text(text)
        except DAMAGED_ZIP as exc:
            raise BulkFileError.damaged_zip("Bulk download", exc, "download the file again") from exc

    def feed_pieces(self, pieces: Iterator[bytes]) -> AccountSync:
        """Split one Bulk CSV given as its bytes in pieces (the zip's entry inflated as it arrives,
        :func:`.download.fetch_and_split`); the pieces end only once the zip is verified."""
        try:
            raw = io.BufferedReader(_PieceReader(pieces), CHUNK)
            return self.feed_text(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        except DAMAGED_ZIP as exc:
            raise BulkFileError.damaged_zip("Bulk download", exc, "download the file again") from exc

    def feed_text(self, text: IO[str]) -> AccountSync:
        """Split one Bulk CSV (text, BOM already stripped) into the scratch files."""
        with self._lock:
            previous = csv.field_size_limit()
            csv.field_size_limit(max(previous, FIELD_LIMIT))
            try:
                return self._split(csv.reader(text))
            finally:
                csv.field_size_limit(previous)

    def _split(self, reader: Iterator[list[str]]) -> AccountSync:
        header = next(reader, None)
        if not header or "Type" not in header:
            raise BulkFileError(
                "The Bulk download has no column row with a Type column: not a Bulk file.",
                remedy="Check bulk_url (leave it unset for Microsoft) and any proxy in between.",
            )
        index = {name: i for i, name in enumerate(header) if name not in ("",)}
        type_at = index["Type"]
        width = len(header)
        plans: dict[str, tuple[_TypeFile, list[int | None], list[int]]] = {}
        sync = AccountSync()
        for row in reader:
            if not row:
                continue
            if len(row) < width:
                row = row + [""] * (width - len(row))
            record_type = row[type_at]
            if record_type == FORMAT_VERSION_TYPE:
                continue
            if record_type.endswith(ERROR_SUFFIX):
                raise _error_row(record_type, row, index)
            plan = plans.get(record_type)
            if plan is None:
                target = self._file(record_type, header)
                wanted = set(target.columns)
                plan = (
                    target,
                    [index.get(name) for name in target.columns],
                    [i for i, name in enumerate(header) if name not in wanted],
                )
                plans[record_type] = plan
            target, picks, others = plan
            if record_type == ACCOUNT_TYPE:
                account_id = row[index["Id"]] if "Id" in index else ""
                sync.account_id = account_id or sync.account_id
                sync.sync_time = row[index["Sync Time"]] if "Sync Time" in index else None
                if account_id in self._accounts_seen:
                    continue  # the same account's row again (downloaded by campaign ids): once is enough
                self._accounts_seen.add(account_id)
            for i in others:
                if row[i]:
                    key = (record_type, header[i])
                    self.dropped[key] = self.dropped.get(key, 0) + 1
            target.writer.writerow(["" if i is None else row[i] for i in picks])
            target.rows += 1
            sync.rows[record_type] = sync.rows.get(record_type, 0) + 1
        return sync

    def close(self) -> None:
        for f in self._files.values():
            with contextlib.suppress(OSError):
                f.handle.close()

    def files(self) -> dict[str, tuple[str, str, int]]:
        """Record type -> (scratch path, columns' file stem, rows); files are closed first."""
        self.close()
        if self.dropped:
            log.warning(
                "Bulk columns outside their record type's column set had values (kept out of the files; a newer "
                "msads SDK and scripts/gen_bulk_record_types.py would add them): %s",
                ", ".join(f"{t}.{c} ({n} rows)" for (t, c), n in sorted(self.dropped.items())[:20]),
            )
        return {t: (f.path, os.path.splitext(os.path.basename(f.path))[0], f.rows) for t, f in self._files.items()}


class _PieceReader(io.RawIOBase):
    """A read-only binary stream over an iterator of byte pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = piece
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


#: The buffer between the inflated pieces and the CSV reader.
CHUNK = 1024 * 1024


def refuse_count(count: int) -> BulkFileError:
    return BulkFileError(
        f"The Bulk download zip holds {count} entries; Microsoft's holds one .csv file.",
        remedy="Check bulk_url (leave it unset for Microsoft).",
    )


def refuse_bomb(size: int, compressed: int, declared: bool) -> BulkFileError:
    return BulkFileError(
        f"The Bulk download zip's entry {'would inflate' if declared else 'inflated beyond'} {size} bytes from "
        f"{compressed}: a zip bomb.",
        remedy="Refused without unpacking; check where bulk_url points."
        if declared
        else "Refused while unpacking (nothing kept); check where bulk_url points.",
    )


def _limits() -> Limits:
    from airflow_provider_msads.reporting.download import _limits as report_limits

    return report_limits()  # the report's bomb limits, read when used (tests lower them)


#: A Bulk result zip: one .csv entry (anything else is refused as the wrong count), no zip bomb.
BULK_ZIP = EntryRules(
    limits=_limits, refuse_count=refuse_count, refuse_name=lambda _: refuse_count(1), refuse_bomb=refuse_bomb
)


def _error_row(record_type: str, row: list[str], index: dict[str, int]) -> BulkFileError:
    def cell(name: str) -> str:
        return row[index[name]] if name in index else ""

    entity = record_type[: -len(ERROR_SUFFIX)]
    number = cell("Error Number")
    return BulkFileError(
        f"The Bulk file holds a {record_type!r} row: {entity} {cell('Id') or '(no id)'}"
        f" (parent {cell('Parent Id') or '?'}): error {number or '?'} {cell('Error')[:300]}".rstrip(),
        codes=[int(number)] if number.isdigit() else [],
        field="entities",
        remedy="Microsoft could not write this entity into the download; see its error on the Bulk file schema page "
        "and Microsoft's operation error codes. Leave the entity out of `entities`, or ask Microsoft support.",
    )


def join_destination(folder: str, name: str) -> str:
    """``folder``/``name`` for a local path or an ObjectStoragePath URL."""
    if is_url(folder):
        return folder.rstrip("/") + "/" + name
    return os.path.join(folder, name)


#: Turns a scratch CSV into the published file (``out``): a copy for CSV, a conversion for Parquet.
Writer = Callable[[str, str, IO[bytes]], None]


def copy_csv(record_type: str, source: str, out: IO[bytes]) -> None:
    with open(source, "rb") as handle:
        shutil.copyfileobj(handle, out, 1024 * 1024)


def publish_files(
    splitter: Splitter,
    folder: str,
    *,
    extension: str = "csv",
    write: Writer = copy_csv,
    publish: Publisher | None = None,
    scratch: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Move each record type's file under ``folder`` (complete files only); ``{stem: {path, rows}}``."""
    out: dict[str, dict[str, Any]] = {}
    for record_type, (path, stem, rows) in sorted(splitter.files().items(), key=lambda kv: kv[1][1]):
        final = join_destination(folder, f"{stem}.{extension}")
        with output(final, publish, scratch=scratch) as handle:
            write(record_type, path, handle)
        out[stem] = {"path": final, "rows": rows, "type": record_type}
    return out
