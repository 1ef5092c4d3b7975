"""Typed Parquet from Microsoft's report CSV: the column table, conversions, row groups, atomic publish."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_msads.errors import ReportDownloadError
from airflow_provider_msads.reporting.columns import DATE, DECIMAL, INTEGER, KINDS, PERCENT, RATIO, STRING, column_kind
from airflow_provider_msads.reporting.parquet import write_parquet
from airflow_provider_msads.testing.emulator._reporting_catalogue import COLUMNS

HEADER = '"TimePeriod","AccountId","CampaignName","Impressions","Clicks","Ctr","Spend","Conversions","AveragePosition"'


def _csv(*rows: str, bom: bool = True) -> io.BytesIO:
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    return io.BytesIO(("\ufeff" if bom else "").encode() + text.encode())


def test_every_catalogue_column_has_a_kind_and_the_known_ones_are_right():
    names = {c for cs in COLUMNS.values() for c in cs}
    assert {column_kind(n) for n in names} <= set(KINDS)
    expected = {
        "TimePeriod": DATE,
        "AccountId": INTEGER,
        "CampaignId": INTEGER,
        "Impressions": INTEGER,
        "Clicks": INTEGER,
        "MissedImpressionsNoBid": INTEGER,
        "VideoViewsAt25Percent": INTEGER,  # a count of views, despite the name
        "Spend": DECIMAL,
        "AverageCpc": DECIMAL,
        "CostPerConversion": DECIMAL,
        "Conversions": DECIMAL,  # fractional under attribution
        "Ctr": PERCENT,
        "ConversionRate": PERCENT,
        "ImpressionSharePercent": PERCENT,
        "ProportionOfSpend": PERCENT,
        "CampaignName": STRING,
        "MerchantProductId": STRING,  # the merchant's text, not a Microsoft number
        "MSClickId": STRING,
        "CurrencyCode": STRING,
        "YoYLast1WeekClicks": STRING,  # a change, not a count
    }
    assert {name: column_kind(name) for name in expected} == expected
    assert all(name in names for name in expected)


def test_values_are_typed_and_nulls_and_percentages_converted(tmp_path: Path):
    target = tmp_path / "out" / "report.parquet"
    source = _csv(
        '"2026-10-01","123456789","Shoes, red","1000","40","3.96%","12.50","1.50","1.2"',
        '"2026-10-02","123456789","--","0","0","0.00%","0.00","--","--"',
        '"2026-10-03","123456789","Line\r\nbreak","","","","","",""',
    )
    result = write_parquet(source, str(target), columns=[], aggregation="Daily")
    table = pq.read_table(target)
    assert result.rows == 3 and result.path == str(target) and result.bytes == target.stat().st_size
    assert table.schema.field("TimePeriod").type == pa.date32()
    assert table.schema.field("AccountId").type == pa.int64()
    assert table.schema.field("Ctr").type == pa.float64()
    assert table.schema.field("CampaignName").type == pa.string()
    rows = table.to_pylist()
    assert rows[0] == {
        "TimePeriod": datetime.date(2026, 10, 1),
        "AccountId": 123456789,
        "CampaignName": "Shoes, red",
        "Impressions": 1000,
        "Clicks": 40,
        "Ctr": pytest.approx(0.0396),
        "Spend": 12.5,
        "Conversions": 1.5,
        "AveragePosition": 1.2,
    }
    assert rows[1]["CampaignName"] is None and rows[1]["Conversions"] is None and rows[1]["Ctr"] == 0.0
    assert rows[2]["CampaignName"] == "Line\r\nbreak" and rows[2]["Impressions"] is None
    assert {"name": "Ctr", "type": "double", "kind": "percent"} in result.schema
    assert [f["name"] for f in result.schema] == table.schema.names


def test_hourly_and_hour_of_day_time_periods(tmp_path: Path):
    hourly = io.BytesIO(b'"TimePeriod","Clicks"\r\n"2026-10-01|5","1"\r\n"2026-10-01|17","2"\r\n')
    write_parquet(hourly, str(tmp_path / "h.parquet"), columns=[], aggregation="Hourly")
    assert pq.read_table(tmp_path / "h.parquet").column("TimePeriod").to_pylist() == [
        datetime.datetime(2026, 10, 1, 5),
        datetime.datetime(2026, 10, 1, 17),
    ]
    by_hour = io.BytesIO(b'"TimePeriod","Clicks"\r\n"0","1"\r\n"23","2"\r\n')
    write_parquet(by_hour, str(tmp_path / "d.parquet"), columns=[], aggregation="HourOfDay")
    assert pq.read_table(tmp_path / "d.parquet").column("TimePeriod").to_pylist() == [0, 23]


@pytest.mark.parametrize("source", [None, io.BytesIO(HEADER.encode() + b"\r\n"), io.BytesIO(b"")])
def test_an_empty_report_still_carries_the_types(tmp_path: Path, source: io.BytesIO | None):
    columns = ["TimePeriod", "AccountId", "CampaignName", "Impressions", "Clicks", "Ctr", "Spend"]
    columns += ["Conversions", "AveragePosition"]
    result = write_parquet(source, str(tmp_path / "e.parquet"), columns=columns, aggregation="Daily")
    table = pq.read_table(tmp_path / "e.parquet")
    assert result.rows == 0 and table.num_rows == 0
    assert table.schema.names == columns
    assert table.schema.field("Impressions").type == pa.int64()
    assert table.schema.field("TimePeriod").type == pa.date32()


def test_written_in_row_groups_of_the_given_size(tmp_path: Path):
    rows = [f'"2026-10-01","1","c{i}","{i}","1","1.00%","0.10","0","1"' for i in range(35)]
    result = write_parquet(_csv(*rows), str(tmp_path / "g.parquet"), columns=[], row_group_rows=10)
    meta = pq.ParquetFile(tmp_path / "g.parquet").metadata
    assert result.rows == 35 and result.row_groups == 4
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10, 10, 10, 5]
    assert pq.read_table(tmp_path / "g.parquet").column("Impressions").to_pylist() == list(range(35))


def test_a_value_of_the_wrong_kind_names_the_column_and_leaves_no_file(tmp_path: Path):
    source = _csv('"2026-10-01","1","c","many","1","1.00%","0.10","0","1"')
    with pytest.raises(ReportDownloadError) as caught:
        write_parquet(source, str(tmp_path / "bad.parquet"), columns=[])
    assert "'Impressions'" in str(caught.value) and "integer" in str(caught.value)
    assert 'output_format="csv"' in caught.value.remedy
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temporary file


def test_batches_of_one_report_become_one_file(tmp_path: Path):
    first = _csv('"2026-10-01","1","a","1","1","1.00%","0.10","0","1"')
    empty = io.BytesIO(HEADER.encode() + b"\r\n")
    second = _csv('"2026-10-01","2","b","2","1","1.00%","0.10","0","1"', bom=False)
    result = write_parquet([first, empty, second], str(tmp_path / "b.parquet"), columns=[])
    assert result.rows == 2
    assert pq.read_table(tmp_path / "b.parquet").column("AccountId").to_pylist() == [1, 2]


def test_csv_batches_joined_with_the_column_row_once(tmp_path: Path):
    import gzip

    from airflow_provider_msads.reporting.batches import account_batches, join_csv_parts

    assert [len(b) for b in account_batches([str(i) for i in range(2345)])] == [1000, 1000, 345]
    parts = []
    for index, rows in enumerate([['"1","a"', '"1","b"'], [], ['"2","c"']]):
        part = tmp_path / f"part{index}.csv"
        part.write_bytes(('"AccountId","CampaignName"\r\n' + "".join(r + "\r\n" for r in rows)).encode())
        parts.append((str(part), len(rows)))
    result = join_csv_parts(parts, str(tmp_path / "out" / "all.csv"), columns=["AccountId", "CampaignName"])
    data = (tmp_path / "out" / "all.csv").read_bytes()
    assert data == b'"AccountId","CampaignName"\r\n"1","a"\r\n"1","b"\r\n"2","c"\r\n'
    assert (result.rows, result.bytes, result.csv_bytes) == (3, len(data), len(data))
    zipped = join_csv_parts([], str(tmp_path / "none.csv"), columns=["AccountId"], compression="gzip")
    assert zipped.path.endswith(".csv.gz") and gzip.decompress(Path(zipped.path).read_bytes()) == b'"AccountId"\r\n'


_CONVERTER = """
import json, sys
from airflow_provider_msads.reporting.parquet import write_parquet
import pyarrow, pyarrow.csv, pyarrow.compute, pyarrow.parquet  # imported before the baseline

def peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

source, destination = sys.argv[1], sys.argv[2]
before = peak_kib()
with open(source, "rb") as handle:
    result = write_parquet(handle, destination, columns=[], aggregation="Daily", row_group_rows=50_000)
growth = peak_kib() - before
# The control: the whole report as one Arrow table does show up, so a flat figure means something.
table = pyarrow.csv.read_csv(source)
control = peak_kib() - before
print(json.dumps({"growth_kib": growth, "control_kib": control, "rows": result.rows, "groups": result.row_groups}))
"""


def test_a_big_report_is_converted_in_row_groups_with_flat_memory(tmp_path: Path):
    """~100 MB of CSV in a fresh process: the peak grows by a row group, not by the report."""
    import json
    import subprocess
    import sys

    rows = 800_000
    source = tmp_path / "big.csv"
    line = '"2026-10-{d:02d}","{a}","Campaign number {c} with a long enough name","{i}","{k}","{p}.{q:02d}%","{s}.{q:02d}","{v}","{v}.50"\r\n'
    with source.open("w", encoding="utf-8", newline="") as out:
        out.write("\ufeff" + HEADER + "\r\n")
        for n in range(rows):
            out.write(
                line.format(
                    d=n % 28 + 1, a=100000 + n % 7, c=n, i=n % 5000, k=n % 97, p=n % 9, q=n % 100, s=n % 300, v=n % 3
                )
            )
    result = subprocess.run(
        [sys.executable, "-c", _CONVERTER, str(source), str(tmp_path / "big.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["rows"] == rows and figures["groups"] == rows // 50_000
    assert figures["growth_kib"] < figures["control_kib"] / 2, figures
    # A row group of 50,000 rows and pyarrow's pool: about 100 MB here, the same for 200,000 rows
    # as for 800,000 (reading with pyarrow's own streaming reader grew with the file).
    assert figures["growth_kib"] < 128 * 1024, figures


def test_pieces_end_only_at_record_boundaries():
    from airflow_provider_msads.reporting.parquet import _record_pieces

    data = b'"a","b ""x""\r\nstill b"\r\n"c","d"\r\n"e","f'
    for size in range(1, len(data) + 2):
        pieces = list(_record_pieces(io.BytesIO(data), size))
        assert b"".join(pieces) == data
        assert all(p.count(b'"') % 2 == 0 for p in pieces[:-1]) and all(p.endswith(b"\n") for p in pieces[:-1])
        assert not any(p.startswith(b"still") for p in pieces)


# ------------------------------------------------------------- Microsoft's value shapes (issue #27)


def test_every_rate_column_is_one_scale_a_fraction(tmp_path: Path):
    """Ctr comes as ``12.50%``; the impression shares, Ptr and VideoCompletionRate ("... multiplied by
    100") as ``12.50`` without the sign; ViewThroughRate ("video views divided by impressions") as a
    fraction. In Parquet every one of them is a fraction: 0.125."""
    source = io.BytesIO(
        b'"Ctr","ImpressionSharePercent","Ptr","VideoCompletionRate","ViewThroughRate"\r\n'
        b'"12.50%","12.50","12.50","12.50","0.125"\r\n'
        b'"0.00%","","--","0.00","0.00"\r\n'
    )
    result = write_parquet(source, str(tmp_path / "r.parquet"), columns=[], aggregation="Summary")
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert rows[0] == pytest.approx(
        {
            "Ctr": 0.125,
            "ImpressionSharePercent": 0.125,
            "Ptr": 0.125,
            "VideoCompletionRate": 0.125,
            "ViewThroughRate": 0.125,
        }
    )
    assert rows[1]["ImpressionSharePercent"] is None and rows[1]["Ptr"] is None
    assert {"name": "ViewThroughRate", "type": "double", "kind": "ratio"} in result.schema
    assert column_kind("ViewThroughRate") == RATIO and column_kind("VideoCompletionRate") == PERCENT


def test_scores_and_counts_are_integers_and_blank_or_dashes_are_null(tmp_path: Path):
    """QualityScore: 1-10, "--" when not computed (older pages: blank); Sales "The total number of
    sales"; the sub-scores 1-3; the video quartile views are counts, not percents."""
    source = io.BytesIO(
        b'"QualityScore","Sales","Installs","AdRelevance","VideoViewsAt25Percent"\r\n'
        b'"7","12","3","2","40"\r\n'
        b'"--","0","0","","0"\r\n'
        b'"","--","--","--","--"\r\n'
    )
    result = write_parquet(source, str(tmp_path / "s.parquet"), columns=[], aggregation="Summary")
    table = pq.read_table(tmp_path / "s.parquet")
    assert {f.name: f.type for f in table.schema} == dict.fromkeys(table.schema.names, pa.int64())
    assert table.column("QualityScore").to_pylist() == [7, None, None]
    assert table.column("Sales").to_pylist() == [12, 0, None]
    assert all(f["type"] == "int64" for f in result.schema)


def test_hours_as_the_page_writes_them_and_as_recorded_files_do(tmp_path: Path):
    source = io.BytesIO(
        b'"TimePeriod","Clicks"\r\n"2020-03-15|7","1"\r\n"2020-03-15|07","1"\r\n"2020-03-15|01","1"\r\n'
    )
    result = write_parquet(source, str(tmp_path / "h.parquet"), columns=[], aggregation="Hourly")
    table = pq.read_table(tmp_path / "h.parquet")
    assert table.column("TimePeriod").to_pylist() == [
        datetime.datetime(2020, 3, 15, 7),
        datetime.datetime(2020, 3, 15, 7),
        datetime.datetime(2020, 3, 15, 1),
    ]
    # the schema handed to XCom says what the file holds
    assert str(table.schema.field("TimePeriod").type) == "timestamp[ms]"
    assert {"name": "TimePeriod", "type": "timestamp[ms]", "kind": "date"} in result.schema


def test_yearly_time_period_is_a_year(tmp_path: Path):
    """ReportAggregation, Yearly: "The time period that contains the year will be formatted as yyyy"."""
    source = io.BytesIO(b'"TimePeriod","Clicks"\r\n"2025","1"\r\n"2026","2"\r\n')
    write_parquet(source, str(tmp_path / "y.parquet"), columns=[], aggregation="Yearly")
    assert pq.read_table(tmp_path / "y.parquet").column("TimePeriod").to_pylist() == [
        datetime.date(2025, 1, 1),
        datetime.date(2026, 1, 1),
    ]
