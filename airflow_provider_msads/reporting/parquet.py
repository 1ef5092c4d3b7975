"""A report's CSV as a typed Parquet file (``output_format="parquet"``), streamed in row groups.

The CSV (Microsoft's bytes, as the CSV path writes them) is cut into pieces of about 4 MB at
record boundaries, each parsed by pyarrow with every value as text; each column is then converted to the kind
:mod:`.columns` gives it, and the batches are written as row groups of ``row_group_rows`` rows.
Only one row group (plus one read block) is held in memory, whatever the report's size. The file
is written through :func:`.destinations.output`, so it appears under its final name only when
complete, on a local path or an ObjectStoragePath URL alike.

pyarrow is imported inside the functions: it is the ``[parquet]`` extra, needed only when a task
asks for Parquet, and never at DAG parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_msads.errors import ArgumentError, ReportDownloadError
from airflow_provider_msads.reporting.columns import (
    DATE,
    DECIMAL,
    INTEGER,
    PERCENT,
    RATIO,
    STRING,
    TIME_PERIOD_BY_AGGREGATION,
    column_kind,
)
from airflow_provider_msads.reporting.destinations import Publisher, output

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows per row group: big enough for fast scans in DuckDB/pandas, small enough to keep memory flat
#: (a row group of 100,000 rows of a 20-column report is some tens of MB in Arrow form).
ROW_GROUP_ROWS = 100_000
#: Bytes of CSV read per block by the streaming reader.
READ_BLOCK_BYTES = 4 * 1024 * 1024
#: Microsoft's "no value".
NULL_TEXT = "--"


@dataclass(frozen=True)
class ParquetResult:
    """What was written: ``schema`` is ``[{"name", "type", "kind"}]`` in file order (for XCom)."""

    path: str
    rows: int
    bytes: int
    schema: list[dict[str, str]] = field(default_factory=list)
    row_groups: int = 0


def require_pyarrow() -> Any:
    """pyarrow, or an error that says which extra to install."""
    try:
        import pyarrow
    except ImportError as exc:
        raise ArgumentError(
            '`output_format="parquet"` needs pyarrow, which is not installed on this worker.',
            field="output_format",
            remedy='pip install "airflow-provider-msads[parquet]" on the workers, or use output_format="csv".',
        ) from exc
    return pyarrow


def arrow_type(kind: str, aggregation: str | None = None) -> pa.DataType:
    """The Arrow type of a column kind; ``TimePeriod`` depends on the aggregation."""
    pa = require_pyarrow()
    if kind == DATE:
        shape = TIME_PERIOD_BY_AGGREGATION.get(aggregation or "", "day")
        # Milliseconds: Parquet has no seconds unit, so a timestamp[s] column reads back as
        # timestamp[ms]; the schema in XCom says what the file holds.
        return {"hour": pa.timestamp("ms"), "number": pa.int64()}.get(shape, pa.date32())
    floats = {DECIMAL: pa.float64(), PERCENT: pa.float64(), RATIO: pa.float64()}
    return {INTEGER: pa.int64(), **floats}.get(kind, pa.string())


def report_schema(columns: Sequence[str], aggregation: str | None = None) -> pa.Schema:
    """The Parquet schema of a report with these columns (each field notes its kind in metadata)."""
    pa = require_pyarrow()
    fields = []
    for name in columns:
        kind = column_kind(name)
        fields.append(pa.field(name, arrow_type(kind, aggregation), metadata={"msads.kind": kind}))
    return pa.schema(fields)


def describe_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """The schema as plain data for XCom and the Asset event."""
    return [
        {"name": f.name, "type": str(f.type), "kind": (f.metadata or {}).get(b"msads.kind", b"string").decode()}
        for f in schema
    ]


def _convert(column: pa.Array, target: pa.Field, aggregation: str | None) -> pa.Array:
    """One column of text to its kind; ``--`` is already null, ``""`` becomes null in typed kinds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = (target.metadata or {}).get(b"msads.kind", b"string").decode()
    if kind == STRING:
        return column
    text = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    if kind == DATE:
        shape = TIME_PERIOD_BY_AGGREGATION.get(aggregation or "", "day")
        if shape == "number":
            return pc.cast(text, pa.int64())
        if shape == "hour":  # FormatVersion 2.0: yyyy-mm-dd|h (the page: "2020-03-15|7"; files: "|07")
            text = pc.replace_substring(pc.replace_substring_regex(text, r"\|(\d)$", r"|0\1"), "|", " ")
            return pc.strptime(text, format="%Y-%m-%d %H", unit="ms")
        if shape == "year":  # Yearly: "formatted as yyyy"; a yyyy-mm-dd is read as it is
            text = pc.replace_substring_regex(text, r"^(\d{4})$", r"\1-01-01")
        return pc.cast(pc.strptime(text, format="%Y-%m-%d", unit="s"), pa.date32())
    text = pc.replace_substring(text, ",", "")  # FormatVersion 1.0 thousands separators, if asked for
    if kind == INTEGER:
        return pc.cast(text, pa.int64())
    signed = pc.ends_with(text, "%")
    number = pc.cast(pc.replace_substring(text, "%", ""), pa.float64())
    if kind == PERCENT:  # percentage points, with or without the sign: one scale, a fraction
        return pc.divide(number, 100.0)
    return pc.if_else(pc.fill_null(signed, False), pc.divide(number, 100.0), number)


def _typed_batch(batch: pa.RecordBatch, schema: pa.Schema, aggregation: str | None, first_row: int) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for index, target in enumerate(schema):
        try:
            arrays.append(_convert(batch.column(index), target, aggregation))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            kind = (target.metadata or {}).get(b"msads.kind", b"?").decode()
            raise ReportDownloadError(
                f"Column {target.name!r} has a value that is not {kind} (in rows {first_row + 1}-"
                f"{first_row + batch.num_rows}): {str(exc)[:160]}",
                remedy='Write this report with output_format="csv" (Microsoft\'s text, untyped), and report the '
                "column so its type can be corrected.",
            ) from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(
    source: IO[bytes] | Sequence[IO[bytes]] | None,
    destination: str,
    *,
    columns: Sequence[str],
    aggregation: str | None = None,
    publish: Publisher | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> ParquetResult:
    """Microsoft's CSV from ``source`` (column row first; None: an empty report) as Parquet at ``destination``.

    ``source`` may be several CSV files of one report split into batches (each with its column
    row, the same columns): their rows follow each other in the one Parquet file. The column
    names come from the first file's column row (``columns``, the request's, when every file is
    empty); an empty report is a file with the schema and no rows, so a loader still sees the types.
    """
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    sources: list[IO[bytes]] = []
    if isinstance(source, (list, tuple)):
        sources = list(source)
    elif source is not None:
        sources = [source]  # type: ignore[list-item]
    named = [(s, names) for s in sources if (names := _column_row(s)) is not None]
    header = named[0][1] if named else list(columns)
    for _, names in named:
        if names != header:
            raise ReportDownloadError(
                f"The report's batches have different column rows ({len(names)} and {len(header)} columns).",
                remedy="Run the task again; every batch of one report asks for the same columns.",
                retryable=True,
            )
    schema = report_schema(header, aggregation)
    rows = groups = 0
    pending: list[Any] = []
    pending_rows = 0
    with output(destination, publish) as out:
        writer = pq.ParquetWriter(out, schema, compression="zstd")
        try:
            for batch in (b for s, names in named for b in _text_batches(s, names)):
                if batch.num_rows == 0:
                    continue
                pending.append(_typed_batch(batch, schema, aggregation, rows + pending_rows))
                pending_rows += batch.num_rows
                while pending_rows >= row_group_rows:
                    table = pa.concat_tables(pending)
                    head, rest = table.slice(0, row_group_rows), table.slice(row_group_rows)
                    writer.write_table(head, row_group_size=row_group_rows)
                    rows, groups = rows + head.num_rows, groups + 1
                    pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
            if pending_rows:
                writer.write_table(pa.concat_tables(pending), row_group_size=row_group_rows)
                rows, groups = rows + pending_rows, groups + 1
        finally:
            writer.close()
        size = out.tell()
    return ParquetResult(path=destination, rows=rows, bytes=size, schema=describe_schema(schema), row_groups=groups)


def _text_batches(source: IO[bytes], names: list[str]) -> Any:
    """The CSV's rows in record batches, every value as text (``--`` null): the conversions are ours.

    The file is cut into pieces of about READ_BLOCK_BYTES at record boundaries, each parsed on its
    own: pyarrow's streaming reader reads ahead of its consumer, which on a fast disk means most of
    the file in memory; a piece at a time keeps the peak at a few blocks whatever the report's size.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read_options = pacsv.ReadOptions(column_names=names, use_threads=False)
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        null_values=[NULL_TEXT],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    source.readline()  # the column row, already read by _column_row
    for piece in _record_pieces(source):
        table = pacsv.read_csv(
            pa.py_buffer(piece),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        yield from table.to_batches()


def _record_pieces(source: IO[bytes], size: int = READ_BLOCK_BYTES) -> Any:
    """Pieces of the CSV that end at a record boundary: a line feed outside quotes.

    Each piece starts at a record, so a line feed ends one exactly when the double quotes before
    it in the piece are even (an escaped quote is two); a quoted value's line break is not a cut.
    """
    tail = b""
    while True:
        chunk = source.read(size)
        if not chunk:
            if tail.strip():
                yield tail
            return
        data = tail + chunk
        cut = data.rfind(b"\n")
        while cut >= 0 and data.count(b'"', 0, cut) % 2:
            cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            tail = data
            continue
        yield data[: cut + 1]
        tail = data[cut + 1 :]


def _column_row(source: IO[bytes]) -> list[str] | None:
    """The names in the CSV's column row (BOM tolerated); None for an empty file. Rewinds ``source``."""
    import csv

    first = source.readline()
    source.seek(0)
    if not first.strip():
        return None
    return next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]))


__all__ = [
    "ROW_GROUP_ROWS",
    "ParquetResult",
    "arrow_type",
    "describe_schema",
    "report_schema",
    "require_pyarrow",
    "write_parquet",
]
