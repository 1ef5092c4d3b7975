"""Row counting and memory with long lines (issue 18 item 5).

The counter keeps no line: one 256 MiB line costs no more memory than short ones (it used to be
kept and re-joined with every chunk: 556 MiB of peak RSS and quadratic time for this one), and
``rows`` stays right for CRLF, LF and CR-only line endings, with line breaks inside quoted values.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from airflow_provider_msads.reporting.download import RowCounter

LONG = 256 * 1024 * 1024


def _count(data: bytes, size: int) -> int:
    counter = RowCounter()
    for start in range(0, len(data), size):
        counter.feed(data[start : start + size])
    return counter.close()


@pytest.mark.parametrize("ending", ["\r\n", "\n", "\r"])
def test_rows_match_the_csv_module_for_every_line_ending_and_chunking(ending: str):
    """Random rows (quoted line breaks, doubled quotes, empty values), any chunk boundaries."""
    rng = random.Random(18)
    values = ["a", "", "x\ny", 'q"q', "\r\n", "z\r", "long" * 40, '"', "\n\n"]
    for _ in range(400):
        rows = [[rng.choice(values) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(0, 6))]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=ending, quoting=csv.QUOTE_ALL).writerows(rows)
        data = buffer.getvalue().encode()
        if rows and rng.random() < 0.3:
            data = data[: -len(ending)]  # a last record without a line break
        expected = len(list(csv.reader(io.StringIO(data.decode(), newline=""))))
        assert expected == len(rows)
        for size in (1, 2, 3, 5, 64, len(data) or 1):
            assert _count(data, size) == expected, (rows, ending, size)


def test_crlf_split_between_chunks_counts_once():
    assert _count(b'"a"\r\n"b"\r\n', 4) == 2  # chunks: '"a"\r' and '\n"b"' ...
    assert _count(b"a\r\rb", 2) == 3  # CR CR is two line ends (an empty record between)


_CHILD = """
import json, sys
from airflow_provider_msads.reporting import download

def peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

before = peak_kib()
result = download._publish_csv(sys.argv[1], sys.argv[2], None, None)
print(json.dumps({"growth_kib": peak_kib() - before, "rows": result.rows, "bytes": result.bytes}))
"""


def test_a_256_mib_line_with_cr_endings_streams(tmp_path: Path):
    """Peak RSS of a fresh process unpacking a zip whose CSV has one 256 MiB line (CR-only line
    endings, a quoted CR in a value): flat, like any other report, and three rows."""
    zip_path = tmp_path / "report.zip"
    block = b"x" * (1024 * 1024)
    with (
        zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("report.csv", "w", force_zip64=True) as entry,
    ):
        entry.write(b'\xef\xbb\xbf"Name","Value"\r"a\rb",')  # header, then a value holding a CR
        for _ in range(LONG // len(block)):
            entry.write(block)
        entry.write(b'\r"c","d"\r"e","f"')  # no line break at the end
    target = tmp_path / "out.csv"
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(zip_path), str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\n256 MiB line: peak RSS growth {figures['growth_kib'] / 1024:.1f} MB")
    assert figures["rows"] == 3
    assert figures["bytes"] == target.stat().st_size > LONG
    assert figures["growth_kib"] < 64 * 1024, figures


def test_a_cr_and_an_lf_apart_stay_two_line_ends():
    """A CR line end, an unquoted value, then an LF: two line ends, even though deleting the value
    makes CR and LF adjacent in the counter's reduced chunk (the quoted line break after them
    takes the counter off its fast path)."""
    data = b'a\rb\n"x\ny",c\r\nd'
    assert len(list(csv.reader(io.StringIO(data.decode(), newline="")))) == 4
    for size in (1, 2, 5, len(data)):
        assert _count(data, size) == 4, size
