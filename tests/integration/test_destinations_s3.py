"""Reports into an S3 bucket (issue 19): moto's S3 server, started by the test, reached through the
amazon provider's connection, ObjectStoragePath and s3fs exactly like a real bucket.

What is proven: a report of a few hundred MB arrives whole with bounded memory; the final key
appears only once the upload completes (another client watches the bucket meanwhile); gzip; a
bucket that does not exist fails before the report is submitted and is not created; a failed
upload (a part refused while another is in flight, or the task interrupted mid-upload) leaves
neither a partial object nor an open multipart upload; parts go out a few at a time, never more.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _support import s3 as s3_support
from _support.dags import CAMPAIGN_COLUMNS, CAMPAIGN_HEADER, report_link, report_operator
from _support.fakes import FakeTI
from _support.s3 import S3Server

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook, publish_to_object_storage
from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator
from airflow_provider_msads.reporting import destinations, s3_multipart

pytestmark = pytest.mark.integration


COLUMNS = CAMPAIGN_COLUMNS
HEADER = CAMPAIGN_HEADER
#: About 200 MB of CSV (the emulator's rows are ~75 bytes): a few hundred MB, kept quick.
BIG_ROWS = 2_700_000


def _operator(destination: str, **changes: Any) -> MicrosoftAdsReportOperator:
    return report_operator(destination, **{"columns": COLUMNS, **changes})


def _keys(s3: S3Server, bucket: str) -> dict[str, int]:
    listing = s3.client().list_objects_v2(Bucket=bucket)
    return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}


def _open_uploads(s3: S3Server, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_missing_bucket_fails_before_submit_and_is_not_created(msads_emulator, report_conn, s3_conn: S3Server):
    from airflow.providers.common.compat.sdk import AirflowFailException

    destination = s3_conn.url("no-such-bucket", "reports/campaign.csv")
    with pytest.raises(AirflowFailException, match=r"no-such-bucket.*does not exist") as caught:
        _operator(destination).execute({"ti": FakeTI()})
    cause = caught.value.__cause__
    assert isinstance(cause, ReportRequestError) and cause.field == "destination"
    assert "create the bucket" in cause.remedy
    assert msads_emulator.report_submits == 0
    assert "no-such-bucket" not in {b["Name"] for b in s3_conn.client().list_buckets()["Buckets"]}

    # The publisher refuses too (a hook user who skips the check gets no new bucket either).
    with pytest.raises(ReportRequestError, match="no-such-bucket"):
        publish_to_object_storage(__file__, destination)
    assert "no-such-bucket" not in {b["Name"] for b in s3_conn.client().list_buckets()["Buckets"]}


def test_gzip_report_through_the_operator(msads_emulator, report_conn, s3_conn: S3Server):
    bucket = s3_conn.create_bucket("lake-gzip")
    result = _operator(s3_conn.url(bucket, "campaign/2026-10-01.csv"), compression="gzip").execute({"ti": FakeTI()})
    assert result["path"] == s3_conn.url(bucket, "campaign/2026-10-01.csv.gz")
    assert _keys(s3_conn, bucket) == {"campaign/2026-10-01.csv.gz": result["bytes"]}  # nothing else left behind
    body = s3_conn.client().get_object(Bucket=bucket, Key="campaign/2026-10-01.csv.gz")["Body"].read()
    data = gzip.decompress(body)
    assert data.startswith(HEADER) and result["rows"] == data.count(b"\r\n") - 1 > 0
    assert _open_uploads(s3_conn, bucket) == []


class PartSpy:
    """Wraps the s3fs instance's ``_call_s3`` (what the upload sends through) to watch the calls,
    and lets a test make one part wait, fail, or interrupt the waiting thread."""

    def __init__(self, fs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = fs._call_s3
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.hooks: dict[int, Any] = {}  # part number -> async callable run before the part is sent
        monkeypatch.setattr(fs, "_call_s3", self)

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, {k: v for k, v in kwargs.items() if k != "Body"}))
        if method != "upload_part":
            return await self.real(method, *args, **kwargs)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            hook = self.hooks.get(kwargs["PartNumber"])
            if hook is not None:
                await hook()
            return await self.real(method, *args, **kwargs)
        finally:
            self.in_flight -= 1

    def kwargs_of(self, method: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == method]


def _s3_path(s3: S3Server, bucket: str, key: str) -> Any:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return ObjectStoragePath(s3.url(bucket, key))


def _parts_file(tmp_path: Path, parts: int) -> Path:
    local = tmp_path / "report.csv"
    with local.open("wb") as out:  # distinct parts, so a part sent twice or out of order shows
        for number in range(parts):
            out.write(bytes([65 + number]) * destinations.UPLOAD_BLOCK_SIZE)
        out.write(b"end")
    return local


def test_parts_go_out_concurrently_and_arrive_whole_in_order(s3_conn: S3Server, tmp_path: Path, monkeypatch):
    bucket = s3_conn.create_bucket("lake-parts")
    local = _parts_file(tmp_path, 5)
    path = _s3_path(s3_conn, bucket, "r.csv")
    spy = PartSpy(path.fs, monkeypatch)
    second_started = asyncio.Event()

    async def second() -> None:
        second_started.set()

    async def first() -> None:  # part 1 is not done before part 2 has gone out: two in flight
        await asyncio.wait_for(second_started.wait(), timeout=60)

    spy.hooks = {1: first, 2: second}
    destinations.upload_file(str(local), path.fs, path.path, path.protocol)

    assert spy.most_in_flight == s3_multipart.UPLOAD_CONCURRENCY == 2  # never more than the bound
    assert s3_conn.client().get_object(Bucket=bucket, Key="r.csv")["Body"].read() == local.read_bytes()
    assert _open_uploads(s3_conn, bucket) == []
    # Declared and listed with CRC32, as boto3's transfer does (the store checks parts, not a re-read).
    assert spy.kwargs_of("create_multipart_upload")[0]["ChecksumAlgorithm"] == "CRC32"
    (completion,) = spy.kwargs_of("complete_multipart_upload")
    parts = completion["MultipartUpload"]["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2, 3, 4, 5, 6]
    assert all(p.get("ChecksumCRC32") for p in parts), parts


def test_failed_part_cancels_the_others_and_aborts(s3_conn: S3Server, tmp_path: Path, monkeypatch):
    bucket = s3_conn.create_bucket("lake-broken")
    local = _parts_file(tmp_path, 5)
    path = _s3_path(s3_conn, bucket, "r.csv")
    spy = PartSpy(path.fs, monkeypatch)
    fourth_started = asyncio.Event()
    fourth_cancelled: list[bool] = []

    async def fourth() -> None:  # still in flight when part 3 fails
        fourth_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            fourth_cancelled.append(True)
            raise

    async def third() -> None:
        await asyncio.wait_for(fourth_started.wait(), timeout=60)
        raise OSError("connection reset by the store")

    spy.hooks = {3: third, 4: fourth}
    with pytest.raises(OSError, match="connection reset"):
        destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    assert fourth_cancelled == [True]
    assert _keys(s3_conn, bucket) == {}
    assert _open_uploads(s3_conn, bucket) == []  # aborted, not left to the lifecycle rule
    assert len(spy.kwargs_of("abort_multipart_upload")) == 1


def test_interrupted_upload_aborts_before_raising(s3_conn: S3Server, tmp_path: Path, monkeypatch):
    """A task timeout or SIGTERM raises in the thread that waits for the upload (Airflow's signal
    handlers), while the parts go out on fsspec's loop: the upload must be aborted, not finished
    later behind the failed task's back."""

    class TaskTimeout(Exception):
        pass

    def on_signal(signum: int, frame: Any) -> None:
        raise TaskTimeout("Timeout, PID: 1")

    bucket = s3_conn.create_bucket("lake-interrupted")
    local = _parts_file(tmp_path, 3)
    path = _s3_path(s3_conn, bucket, "r.csv")
    spy = PartSpy(path.fs, monkeypatch)
    main_thread = threading.main_thread().ident
    assert main_thread == threading.get_ident()

    async def second() -> None:  # the worker's timeout fires while part 2 is on its way
        signal.pthread_kill(main_thread, signal.SIGUSR1)
        await asyncio.Event().wait()

    spy.hooks = {2: second}
    previous = signal.signal(signal.SIGUSR1, on_signal)
    try:
        with pytest.raises(TaskTimeout):
            destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert _keys(s3_conn, bucket) == {}
    assert _open_uploads(s3_conn, bucket) == []
    assert len(spy.kwargs_of("abort_multipart_upload")) == 1
    assert spy.kwargs_of("complete_multipart_upload") == []


def test_store_without_checksums_gets_none(s3_conn: S3Server, tmp_path: Path, monkeypatch):
    """Some S3-compatible stores reject checksum headers; their users set botocore's
    ``request_checksum_calculation`` to ``when_required`` and then get none from us either."""
    import s3fs

    bucket = s3_conn.create_bucket("lake-no-checksum")
    local = _parts_file(tmp_path, 2)
    fs = s3fs.S3FileSystem(
        key=s3_support.ACCESS_KEY,
        secret=s3_support.SECRET_KEY,
        endpoint_url=s3_conn.endpoint_url,
        client_kwargs={"region_name": s3_support.REGION},
        config_kwargs={"request_checksum_calculation": "when_required"},
        skip_instance_cache=True,
    )
    spy = PartSpy(fs, monkeypatch)
    destinations.upload_file(str(local), fs, f"{bucket}/r.csv", "s3")
    assert "ChecksumAlgorithm" not in spy.kwargs_of("create_multipart_upload")[0]
    assert all("ChecksumAlgorithm" not in kwargs for kwargs in spy.kwargs_of("upload_part"))
    assert s3_conn.client().get_object(Bucket=bucket, Key="r.csv")["Body"].read() == local.read_bytes()
    assert _open_uploads(s3_conn, bucket) == []


_UPLOADER = """
import json, sys
import s3fs, aiobotocore, airflow.providers.amazon.aws.fs.s3  # imported before measuring
from airflow_provider_msads import reporting
from airflow_provider_msads.hooks.msads import publish_to_object_storage
from airflow_provider_msads.reporting.destinations import check_destination

def peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

url, destination = sys.argv[1], sys.argv[2]
# As the operator does before submitting: the bucket check makes the S3 client (botocore loads its
# service model, tens of MB on some versions), so what is measured next is the report's transfer.
check_destination(destination)
before = peak_kib()
result = reporting.download_report(url, destination, publish=publish_to_object_storage, timeout=600)
print(json.dumps({"growth_kib": peak_kib() - before, "rows": result.rows, "bytes": result.bytes}))
"""


def test_big_report_appears_whole_with_bounded_memory(msads_emulator, report_conn, s3_conn: S3Server):
    """~200 MB to S3 in a child process; meanwhile this process watches the bucket: the final key
    never exists while the multipart upload is open, and appears, whole, once the child is done."""
    bucket = s3_conn.create_bucket("lake-big")
    msads_emulator.set_report_size(rows=BIG_ROWS)
    download_url = report_link(msads_emulator, MicrosoftAdsHook(), COLUMNS)
    key = "campaign/big.csv"
    child = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, download_url, s3_conn.url(bucket, key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    seen_during_upload: list[dict[str, int]] = []
    while child.poll() is None:  # watching, not timing: the loop ends with the child
        uploads = _open_uploads(s3_conn, bucket)
        keys = _keys(s3_conn, bucket)
        if uploads and child.poll() is None:
            seen_during_upload.append(keys)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.2)  # a few looks a second: the watcher must not starve the upload
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err.decode()[-3000:]
    figures = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"\nS3 upload: {figures['bytes'] / 1e6:.0f} MB, peak RSS growth {figures['growth_kib'] / 1024:.1f} MB,"
        f" {len(seen_during_upload)} looks at the bucket while the upload was open"
    )
    assert seen_during_upload, "the watcher never saw the multipart upload open"
    assert all(keys == {} for keys in seen_during_upload), seen_during_upload[:3]
    assert _keys(s3_conn, bucket) == {key: figures["bytes"]}
    assert figures["bytes"] > 200_000_000 and figures["rows"] == BIG_ROWS
    assert _open_uploads(s3_conn, bucket) == []
    # The local download alone grows by under 64 MB (test_reporting_memory); the upload adds its
    # 8 MiB parts a few times over (s3fs buffer, botocore's body and checksum), not the report.
    # Seen 48-52 MB once the client exists (about 100 MB on Airflow 2.11's botocore when the child
    # also counted making the client).
    assert figures["growth_kib"] < 80 * 1024, figures


def test_the_aws_connection_can_turn_checksums_off(s3_conn: S3Server, tmp_path: Path, monkeypatch):
    """What the README tells users of such stores: ``config_kwargs`` in the ``aws`` connection's
    extra reach the upload through ObjectStoragePath (the amazon provider's ``get_fs``)."""
    connection = s3_conn.connection()
    connection["extra"]["config_kwargs"] = {"request_checksum_calculation": "when_required"}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_NO_CHECKSUMS", json.dumps(connection))
    bucket = s3_conn.create_bucket("lake-conn-no-checksum")
    local = _parts_file(tmp_path, 2)
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    path = ObjectStoragePath(f"s3://aws_no_checksums@{bucket}/r.csv")
    spy = PartSpy(path.fs, monkeypatch)
    destinations.upload_file(str(local), path.fs, path.path, path.protocol)

    assert "ChecksumAlgorithm" not in spy.kwargs_of("create_multipart_upload")[0]
    assert s3_conn.client().get_object(Bucket=bucket, Key="r.csv")["Body"].read() == local.read_bytes()


# ------------------------------------------------------------- streaming while the report is written

CHUNK = 1024 * 1024  # what the report pipeline writes at a time (an inflated block, a gzip flush)


class WatchedQueue(asyncio.Queue):  # type: ignore[type-arg]
    """The writer's hand-over queue, noting what the writer had written when it handed part 3."""

    def __init__(self, writer: Any) -> None:
        super().__init__(maxsize=1)
        self.writer = writer
        self.parts = 0
        self.third_handed = asyncio.Event()
        self.written_at_third = 0

    async def put(self, item: Any) -> None:
        self.parts += 1
        if self.parts == 3:  # the writer waits in its write() until the upload takes this part
            self.written_at_third = self.writer.tell()
            self.third_handed.set()
        await super().put(item)


def _stream(s3: S3Server, bucket: str, key: str, data: bytes, **hooks: Any) -> Any:
    """Write ``data`` through ``output()`` in CHUNK pieces, as the report pipeline does."""
    with destinations.output(s3.url(bucket, key), publish_to_object_storage) as out:
        for start in range(0, len(data), CHUNK):
            out.write(data[start : start + CHUNK])
            if "after_write" in hooks:
                hooks["after_write"](out)
        return out


def _parts_bytes(parts: int, tail: bytes = b"end") -> bytes:
    return b"".join(bytes([65 + n]) * destinations.UPLOAD_BLOCK_SIZE for n in range(parts)) + tail


def test_streamed_report_sends_parts_while_written_holding_three_at_most(s3_conn: S3Server, monkeypatch):
    """Parts leave while the report is still being written; while two parts are in flight the
    writer may fill one more, then it waits until the upload takes it: memory holds three parts at
    most, whatever the report's size. The final key appears, whole, only when the ``with`` block
    ends."""
    bucket = s3_conn.create_bucket("lake-stream")
    data = _parts_bytes(6)
    spy = PartSpy(_s3_path(s3_conn, bucket, "r.csv").fs, monkeypatch)
    seen: dict[str, Any] = {}
    queues: list[WatchedQueue] = []

    async def held() -> None:  # parts 1 and 2 stay in flight until part 3 is handed over
        await asyncio.wait_for(queues[0].third_handed.wait(), timeout=60)
        seen.setdefault("written_after_third", queues[0].writer.tell())  # the writer still waits

    spy.hooks = {1: held, 2: held}

    def watch(out: Any) -> None:
        if not queues:
            queues.append(WatchedQueue(out))
            out._queue = queues[0]
        if out.tell() == len(data) - 3 and "keys_before_end" not in seen:
            seen["keys_before_end"] = _keys(s3_conn, bucket)
            seen["uploads_before_end"] = _open_uploads(s3_conn, bucket)

    _stream(s3_conn, bucket, "r.csv", data, after_write=watch)

    block = destinations.UPLOAD_BLOCK_SIZE
    # Part 3 is handed over once full (and more follows), and the writer waits until one of
    # parts 1-2 is done: it has written nothing more meanwhile.
    assert queues[0].written_at_third == seen["written_after_third"] == 3 * block
    assert seen["keys_before_end"] == {} and seen["uploads_before_end"] == ["r.csv"]
    assert s3_conn.client().get_object(Bucket=bucket, Key="r.csv")["Body"].read() == data
    assert _open_uploads(s3_conn, bucket) == []
    assert [kwargs["PartNumber"] for kwargs in spy.kwargs_of("upload_part")] == [1, 2, 3, 4, 5, 6, 7]
    assert spy.most_in_flight == s3_multipart.UPLOAD_CONCURRENCY
    (completion,) = spy.kwargs_of("complete_multipart_upload")
    assert all(p.get("ChecksumCRC32") for p in completion["MultipartUpload"]["Parts"])


class TaskTimeout(Exception):
    pass


@pytest.mark.parametrize("failure", ["producer error", "KeyboardInterrupt", "part refused", "timeout while waiting"])
def test_failed_stream_leaves_no_object_and_no_open_upload(s3_conn: S3Server, monkeypatch, failure: str):
    """Whatever ends the report midway (the download failing, Ctrl-C, the store refusing a part, a
    task timeout while the writer waits for the store), nothing appears under the final key and the
    multipart upload is aborted, not left to the lifecycle rule."""
    bucket = s3_conn.create_bucket(f"lake-stream-{failure.split()[0].lower()}")
    spy = PartSpy(_s3_path(s3_conn, bucket, "r.csv").fs, monkeypatch)
    main_thread = threading.get_ident()
    interrupt: type[BaseException] = {"KeyboardInterrupt": KeyboardInterrupt}.get(failure, RuntimeError)

    def after_write(out: Any) -> None:
        if failure in ("producer error", "KeyboardInterrupt") and out.tell() >= 3 * destinations.UPLOAD_BLOCK_SIZE:
            raise interrupt("the report broke off")

    async def refuse() -> None:
        raise OSError("connection reset by the store")

    async def time_out() -> None:  # the task's timeout fires while the writer waits for the store
        signal.pthread_kill(main_thread, signal.SIGUSR1)
        await asyncio.Event().wait()

    def on_signal(signum: int, frame: Any) -> None:
        raise TaskTimeout("Timeout, PID: 1")

    spy.hooks = {"part refused": {2: refuse}, "timeout while waiting": {1: time_out}}.get(failure, {})
    expected = {"part refused": OSError, "timeout while waiting": TaskTimeout}.get(failure, interrupt)
    previous = signal.signal(signal.SIGUSR1, on_signal)
    try:
        with pytest.raises(expected):
            _stream(s3_conn, bucket, "r.csv", _parts_bytes(5), after_write=after_write)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert _keys(s3_conn, bucket) == {}
    assert _open_uploads(s3_conn, bucket) == []
    assert len(spy.kwargs_of("create_multipart_upload")) == len(spy.kwargs_of("abort_multipart_upload")) == 1
    assert spy.kwargs_of("complete_multipart_upload") == []


def test_report_of_one_part_is_one_put(s3_conn: S3Server, monkeypatch):
    """Up to one part, no multipart upload at all: one PUT when the report is complete, nothing
    when it fails."""
    bucket = s3_conn.create_bucket("lake-stream-small")
    spy = PartSpy(_s3_path(s3_conn, bucket, "r.csv").fs, monkeypatch)
    data = b"x" * destinations.UPLOAD_BLOCK_SIZE  # exactly one part
    out = _stream(s3_conn, bucket, "r.csv", data)
    assert out.tell() == len(data)

    def broken_write(out: Any) -> None:
        raise RuntimeError("the report broke off")

    with pytest.raises(RuntimeError):
        _stream(s3_conn, bucket, "broken.csv", b"header\r\n", after_write=broken_write)
    # Only writes counted: the bucket check before it reads with head_bucket, or with
    # list_buckets/list_objects_v2 on older s3fs (Airflow 3.0's pins).
    writes = {"put_object", "create_multipart_upload", "upload_part", "complete_multipart_upload"}
    assert [name for name, _ in spy.calls if name in writes or "multipart" in name] == ["put_object"]
    assert s3_conn.client().get_object(Bucket=bucket, Key="r.csv")["Body"].read() == data
    assert _keys(s3_conn, bucket) == {"r.csv": len(data)}


def test_parquet_streams_through_the_writer(s3_conn: S3Server):
    """pyarrow's ParquetWriter (Parquet reports and Bulk files) writes to the S3 writer as to a
    file: a file of a few parts arrives whole and reads back."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    bucket = s3_conn.create_bucket("lake-stream-parquet")
    rows = 3 * destinations.UPLOAD_BLOCK_SIZE // 64
    table = pa.table({"id": pa.array(range(rows)), "blob": pa.array([os.urandom(56) for _ in range(rows)])})
    with destinations.output(s3_conn.url(bucket, "r.parquet"), publish_to_object_storage) as out:
        with pq.ParquetWriter(out, table.schema, compression="none") as writer:
            writer.write_table(table, row_group_size=rows // 4)
        size = out.tell()
    assert size > 2 * destinations.UPLOAD_BLOCK_SIZE  # a multipart upload, not one PUT
    body = s3_conn.client().get_object(Bucket=bucket, Key="r.parquet")["Body"].read()
    assert len(body) == size and pq.read_table(io.BytesIO(body)).equals(table)
    assert _open_uploads(s3_conn, bucket) == []
