"""A big zip inflated by a child process (issue 29): its result line, damage of every kind said as
the in-process reader says it, the zip verified to its end, and nothing (process, thread, part
file) left when a download is cut, interrupted, cancelled or the child is killed.

Real parts: the child program run as the provider runs it, the download over a loopback socket.
Zips of random-looking CSV deflate to several MiB, so the feeder keeps and gives back real
amounts (the give-back is what lets the descriptor and central directory be verified).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.zips import inflating_children, serving, zip_bytes

from airflow_provider_msads import reporting as rp
from airflow_provider_msads.bulk import download as bulk_download
from airflow_provider_msads.bulk.split import BulkFileError, Splitter
from airflow_provider_msads.reporting import download, inflate_child

_rng = random.Random(29)
ROWS = 120_000
CSV = b'"TimePeriod","CampaignName","Clicks"\r\n' + b"".join(
    b'"2026-10-%02d","c%x","%d"\r\n' % (_rng.randint(1, 28), _rng.getrandbits(64), _rng.randint(0, 9999))
    for _ in range(ROWS)
)

BULK = (
    "\ufeffType,Status,Id,Parent Id,Sync Time,Name\r\nFormat Version,,,,,6.0\r\nAccount,,123,,11/15/2026 10:00:00,\r\n"
).encode() + b"".join(b'Campaign,Active,%d,123,,"c%x"\r\n' % (n, _rng.getrandbits(64)) for n in range(ROWS))


@pytest.fixture
def blob() -> Iterator[tuple[str, dict[str, bytes]]]:
    routes: dict[str, bytes] = {}
    with serving(routes) as base:
        yield base, routes


@pytest.fixture(autouse=True)
def every_zip_to_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inflate_child, "CHILD_MIN", 0)


def _started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The children started from now on (to kill one, or count them)."""
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(inflate_child.subprocess, "Popen", popen)
    return started


def _calling_on_write(monkeypatch: pytest.MonkeyPatch, on_write: Callable[[int], None]) -> None:
    """The report's writer calls ``on_write(n)`` before its n-th write (which may raise)."""
    real = download.output

    @contextlib.contextmanager
    def output(destination: str, publish: Any, *, scratch: str | None = None) -> Iterator[Any]:
        with real(destination, publish, scratch=scratch) as out:
            writes = 0

            class Calling:
                def write(self, data: bytes) -> int:
                    nonlocal writes
                    writes += 1
                    on_write(writes)
                    return int(out.write(data))

                def tell(self) -> int:
                    return int(out.tell())

            yield Calling()

    monkeypatch.setattr(download, "output", output)


def _nothing_left(folder: Path) -> None:
    for thread in threading.enumerate():
        if thread.name == "msads-write":  # its result is out as it returns: give it that instant
            thread.join(timeout=10)
    assert inflating_children() == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("msads-")] == []
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def _run_child(
    data: bytes, *, declared: int = -1, max_bytes: int = 1 << 40, small: int = 16 << 20
) -> tuple[bytes, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            inflate_child.PROGRAM,
            str(1 << 20),
            str(max_bytes),
            "400",
            str(small),
            str(declared),
        ],
        input=data,
        capture_output=True,
        check=False,
    )
    return done.stdout, done.stderr.decode().strip()


def _deflated(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def test_the_child_program_says_its_result_in_one_line() -> None:
    stream = _deflated(CSV)
    out, said = _run_child(stream + b"PK\x01\x02 what follows the entry")
    assert out == CSV
    assert said == f"msads-inflate ok {len(stream)} {zlib.crc32(CSV)} {len(CSV)}"
    assert _run_child(stream[: len(stream) // 2])[1].startswith("msads-inflate cut ")
    assert _run_child(stream, declared=len(CSV) - 1)[1].startswith("msads-inflate beyond ")
    bomb = _deflated(b"0" * 50_000_000)
    out, said = _run_child(bomb, small=1024)
    kind, size, compressed = said.split()[1:]
    assert kind == "bomb" and int(size) > 400 * int(compressed) and len(out) <= 2 << 20  # stopped at once
    assert _run_child(b"\xff" * 1000)[1].startswith("msads-inflate damaged ")


@pytest.mark.parametrize("kw", [{}, {"descriptor": True}, {"zip64": True, "descriptor": True}])
def test_a_big_zip_goes_through_the_child_and_is_verified_to_its_end(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]
) -> None:
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV, **kw)
    started = _started(monkeypatch)
    result = rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert (tmp_path / "r.csv").read_bytes() == CSV and result.rows == ROWS
    result = asyncio.run(rp.adownload_report(f"{base}/r.zip", str(tmp_path / "a.csv")))
    assert (tmp_path / "a.csv").read_bytes() == CSV and result.rows == ROWS
    assert len(started) == 2 and all(p.returncode == 0 for p in started)
    _nothing_left(tmp_path)


def _patch_zip(data: bytes, where: str) -> bytes:
    """The zip with one fact broken: the local header's CRC, its size, or a byte of the deflate data."""
    broken = bytearray(data)
    if where == "crc":
        broken[14:18] = struct.pack("<L", struct.unpack("<L", data[14:18])[0] ^ 1)
    elif where == "size":
        broken[22:26] = struct.pack("<L", struct.unpack("<L", data[22:26])[0] - 10)
    else:
        broken[len(broken) // 3] ^= 0xFF
    return bytes(broken)


@pytest.mark.parametrize("where", ["crc", "size", "data", "cut"])
def test_damage_found_by_the_child_is_a_retryable_damaged_zip(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    base, routes = blob
    data = zip_bytes(CSV)
    routes["/r.zip"] = data[: len(data) // 2] if where == "cut" else _patch_zip(data, where)
    for call in (
        lambda: rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv")),
        lambda: asyncio.run(rp.adownload_report(f"{base}/r.zip", str(tmp_path / "r.csv"))),
    ):
        with pytest.raises(rp.ReportDownloadError, match="damaged") as raised:
            call()
        assert raised.value.retryable
    bulk = zip_bytes(BULK, name="b.csv")
    routes["/b.zip"] = bulk[: len(bulk) // 2] if where == "cut" else _patch_zip(bulk, where)
    (tmp_path / "bulk").mkdir()
    with pytest.raises(BulkFileError, match="damaged"):
        bulk_download.fetch_and_split(f"{base}/b.zip", Splitter(str(tmp_path / "bulk")))
    assert not (tmp_path / "r.csv").exists()
    _nothing_left(tmp_path)


def test_a_bomb_and_a_second_entry_behind_a_big_one_are_refused(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, routes = blob
    routes["/bomb.zip"] = zip_bytes(b"0" * 60_000_000, descriptor=True)
    routes["/two.zip"] = zip_bytes(CSV, descriptor=True, more={"b.csv": os.urandom(3 << 20)})
    monkeypatch.setattr(download, "SMALL_ENTRY", 1024)
    with pytest.raises(rp.ReportDownloadError, match=r"inflated beyond .* zip bomb"):
        rp.download_report(f"{base}/bomb.zip", str(tmp_path / "r.csv"))
    with pytest.raises(rp.ReportDownloadError, match="has 2 files"):
        rp.download_report(f"{base}/two.zip", str(tmp_path / "r.csv"))
    _nothing_left(tmp_path)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_write_kills_the_child(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV * 4)
    started = _started(monkeypatch)

    def fail_second(writes: int) -> None:
        if writes == 2:
            raise error

    _calling_on_write(monkeypatch, fail_second)
    with pytest.raises(type(error)):
        rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert started[0].returncode == -signal.SIGKILL  # it was still inflating: killed, and waited for
    _nothing_left(tmp_path)


def test_a_cancelled_async_download_kills_the_child(blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV * 4)
    started = _started(monkeypatch)
    real = download.output

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(rp.adownload_report(f"{base}/r.zip", str(tmp_path / "r.csv")))

        @contextlib.contextmanager
        def output(destination: str, publish: Any, *, scratch: str | None = None) -> Iterator[Any]:
            with real(destination, publish, scratch=scratch) as out:
                loop.call_soon_threadsafe(task.cancel)
                yield out

        monkeypatch.setattr(download, "output", output)
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(started) == 1 and started[0].returncode is not None
    _nothing_left(tmp_path)


def test_a_child_killed_from_outside_is_a_damaged_zip(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV * 4)
    started = _started(monkeypatch)
    _calling_on_write(monkeypatch, lambda writes: started[0].kill())  # the OOM killer, say, while it inflates
    with pytest.raises(rp.ReportDownloadError, match="damaged") as raised:
        rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert raised.value.retryable and "ended without a result" in str(raised.value.__cause__)
    _nothing_left(tmp_path)


def test_no_child_possible_inflates_here_and_says_so(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV)
    monkeypatch.setattr(inflate_child, "PROGRAM", str(tmp_path / "missing.py"))
    with caplog.at_level(logging.WARNING, logger=inflate_child.__name__):
        result = rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert result.rows == ROWS and (tmp_path / "r.csv").read_bytes() == CSV
    assert [r.getMessage() for r in caplog.records] == [
        "Could not start a process to inflate the zip (no interpreter path or no child program file): "
        "inflating it in this process."
    ]
    _nothing_left(tmp_path)


def test_small_zips_stay_in_this_process(blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process per small report would cost more than it saves: under CHILD_MIN, none starts."""
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV)
    monkeypatch.setattr(inflate_child, "CHILD_MIN", len(routes["/r.zip"]))
    started = _started(monkeypatch)
    assert rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv")).rows == ROWS
    assert started == []
    routes["/d.zip"] = zip_bytes(CSV, descriptor=True)  # size unknown until the end: the child
    assert rp.download_report(f"{base}/d.zip", str(tmp_path / "d.csv")).rows == ROWS
    assert len(started) == 1


def test_many_async_downloads_each_with_a_child(blob: Any, tmp_path: Path) -> None:
    """More concurrent children than cores and than the loop's default thread pool."""
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV)
    count = 2 * (os.cpu_count() or 1) + 8

    async def main() -> list[int]:
        results = await asyncio.gather(
            *(rp.adownload_report(f"{base}/r.zip", str(tmp_path / f"r{n}.csv")) for n in range(count))
        )
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 1), 10) == 1
        return [r.rows for r in results]

    assert asyncio.run(main()) == [ROWS] * count
    _nothing_left(tmp_path)


def test_a_report_streamed_to_s3_is_inflated_here(blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed to S3, GCS or Azure the upload is the bound and parts are held already: no child
    (P8). Written to a file first (a local path, another store's scratch file), a child."""
    from airflow_provider_msads.reporting.destinations import publish_to_object_storage

    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV)
    started = _started(monkeypatch)
    sunk = tmp_path / "sunk.csv"

    @contextlib.contextmanager
    def output(destination: str, publish: Any, *, scratch: str | None = None) -> Iterator[Any]:
        with open(sunk, "wb") as out:  # stands in for the S3 writer: only the decision is tested
            yield out

    monkeypatch.setattr(download, "output", output)
    result = rp.download_report(f"{base}/r.zip", "s3://aws_default@lake/r.csv", publish=publish_to_object_storage)
    assert result.rows == ROWS and sunk.read_bytes() == CSV and started == []
    rp.download_report(f"{base}/r.zip", "gs://google_cloud_default@lake/r.csv", publish=publish_to_object_storage)
    rp.download_report(f"{base}/r.zip", "abfs://wasb_default@lake/r.csv", publish=publish_to_object_storage)
    assert started == []
    rp.download_report(f"{base}/r.zip", "memory://lake/r.csv", publish=publish_to_object_storage)
    rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert len(started) == 2


def test_no_thread_for_the_feeder_kills_the_child_and_inflates_here(
    blob: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base, routes = blob
    routes["/r.zip"] = zip_bytes(CSV)
    started = _started(monkeypatch)

    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name == "msads-inflate-feed":
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    with caplog.at_level(logging.WARNING, logger=inflate_child.__name__):
        result = rp.download_report(f"{base}/r.zip", str(tmp_path / "r.csv"))
    assert result.rows == ROWS and (tmp_path / "r.csv").read_bytes() == CSV
    assert "can't start new thread" in caplog.records[0].getMessage()
    assert len(started) == 1 and started[0].returncode == -signal.SIGKILL  # started, then killed and reaped
    monkeypatch.undo()
    _nothing_left(tmp_path)
