"""One report over more accounts than one request may name: batches, and their files made one.

Microsoft takes at most 1,000 account ids per ReportRequest (2029 ReportingServiceAccountsOverLimit,
Reporting's "ReportRequest Scope" and operation error pages). ``account_ids="all"`` over a bigger
customer is therefore sent as several requests, each for up to 1,000 accounts, and their CSV files
(each with its own column row) are written as **one** file: the column row once, then every
batch's rows in batch order. Each part is a local file already downloaded in full, so joining is a
streamed copy; the result appears under its final name only when complete (:mod:`.destinations`).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

from airflow_provider_msads.reporting.destinations import Publisher, final_name, output
from airflow_provider_msads.reporting.download import CHUNK_SIZE, LINE_END, DownloadResult, header_row
from airflow_provider_msads.reporting.periods import MAX_ACCOUNTS


def account_batches(account_ids: Sequence[str], size: int = MAX_ACCOUNTS) -> list[list[str]]:
    """``account_ids`` in order, in lists of at most ``size`` (Microsoft's 1,000 per request)."""
    ids = list(account_ids)
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def join_csv_parts(
    parts: Sequence[tuple[str, int]],
    destination: str,
    *,
    columns: Sequence[str],
    compression: str | None = None,
    publish: Publisher | None = None,
) -> DownloadResult:
    """Write the CSV ``parts`` (local path, rows) as one file: the first column row, then all rows.

    A part without a column row (an empty file) adds nothing; with no part at all the file is the
    request's column row alone, as for an empty report. A part that ends without a line break
    (Microsoft's last row has none when the footer is excluded) gets one before the next part's
    rows, so the last row of one batch is never glued to the first of the next.
    """
    destination = final_name(destination, compression)
    rows = csv_bytes = 0
    with output(destination, publish) as out:
        writer: Any = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) if compression else out
        try:
            wrote_header = False
            last = b"\n"  # the last byte written: a part that ends without a line break gets one
            for path, part_rows in parts:
                with open(path, "rb") as source:
                    first = source.readline()  # Microsoft's column row: names only, one line
                    if not first.strip():
                        continue
                    if not first.endswith(b"\n"):
                        first += LINE_END.encode()  # a part that is the column row alone, unterminated
                    if not wrote_header:
                        writer.write(first)
                        csv_bytes += len(first)
                        last = first[-1:]
                        wrote_header = True
                    part_start = True
                    while chunk := source.read(CHUNK_SIZE):
                        if part_start and last not in (b"\n", b"\r"):
                            writer.write(LINE_END.encode())
                            csv_bytes += len(LINE_END)
                        part_start = False
                        writer.write(chunk)
                        csv_bytes += len(chunk)
                        last = chunk[-1:]
                rows += part_rows
            if not wrote_header:
                row = header_row(columns)
                writer.write(row)
                csv_bytes += len(row)
        finally:
            if writer is not out:
                writer.close()
        size = out.tell()
    return DownloadResult(path=destination, rows=rows, bytes=size, csv_bytes=csv_bytes, compression=compression)


__all__ = ["account_batches", "join_csv_parts"]
