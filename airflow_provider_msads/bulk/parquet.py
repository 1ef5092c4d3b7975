"""A record type's file as typed Parquet: ids as integers, money as floats, times as UTC timestamps.

The Bulk file is text; a warehouse wants ``Id`` joinable as a number and ``Modified Time`` as a
time. What each column is comes from the Bulk file schema (learn.microsoft.com/advertising/
bulk-service/bulk-file-schema and the record pages): ``Id``/``Parent Id`` and the ``… Id`` links
below are longs, bids and budgets are money in the account's currency, ``Modified Time``
("04/27/2023 18:00:14.970") and the Account row's ``Sync Time`` are UTC. Everything else stays a
string (as Microsoft wrote it), so a column Microsoft fills differently tomorrow cannot break a
load. Streamed batch by batch (pyarrow's CSV reader), so memory stays flat; pyarrow is the
``[parquet]`` extra.
"""

from __future__ import annotations

import csv
import datetime
from typing import IO, Any

from airflow_provider_msads.bulk.split import BulkFileError, parse_sync_time

#: Long ids (Microsoft's ``long``). Not ``Client Id`` (the user's own text) or lists (``Page Feed Ids``).
INT_COLUMNS = frozenset(
    {"Id", "Parent Id", "Budget Id", "Bid Strategy Id", "Experiment Id", "Base Campaign Id", "Experiment Campaign Id"}
)
#: Money (``double`` in the schema).
MONEY_COLUMNS = frozenset({"Bid", "Budget", "Cpc Bid", "Cpm Bid", "Cpv Bid", "Maximum Bid"})
TIME_COLUMNS = frozenset({"Modified Time", "Sync Time"})
#: Bytes of CSV per batch: what one batch holds in memory.
BLOCK_SIZE = 4 * 1024 * 1024


def column_type(name: str) -> Any:
    import pyarrow as pa

    if name in INT_COLUMNS:
        return pa.int64()
    if name in MONEY_COLUMNS:
        return pa.float64()
    if name in TIME_COLUMNS:
        return pa.timestamp("ms", tz="UTC")
    return pa.string()


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    if "/" not in text:
        return parse_sync_time(text)
    head, _, fraction = text.partition(".")
    when = parse_sync_time(head)
    if when is not None and fraction.isdigit():
        when += datetime.timedelta(milliseconds=int((fraction + "000")[:3]))
    return when


def _convert(record_type: str, name: str, column: Any, target: Any) -> Any:
    import pyarrow as pa

    values = column.to_pylist()
    out: list[Any] = []
    for value in values:
        if value in (None, ""):
            out.append(None)
            continue
        try:
            if pa.types.is_int64(target):
                out.append(int(value))
            elif pa.types.is_float64(target):
                out.append(float(value))
            else:
                when = _time(value)
                if when is None:
                    raise ValueError(value)
                out.append(when)
        except ValueError:
            raise BulkFileError(
                f"{record_type} column {name!r} holds {str(value)[:40]!r}, not a {target}.",
                field="output_format",
                remedy='Use output_format="csv" for this download, and report the value to the provider.',
            ) from None
    return pa.array(out, type=target)


def write_bulk_parquet(record_type: str, source: str, out: IO[bytes]) -> None:
    """Convert one scratch CSV (column row first) to Parquet in ``out``, batch by batch."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with open(source, encoding="utf-8", newline="") as handle:
        names = next(csv.reader(handle), [])
    schema = pa.schema([pa.field(name, column_type(name)) for name in names])
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in reader:
            arrays = []
            for name, column in zip(names, batch.columns, strict=True):
                target = column_type(name)
                if pa.types.is_string(target):
                    arrays.append(column)
                else:
                    arrays.append(_convert(record_type, name, column, target))
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
