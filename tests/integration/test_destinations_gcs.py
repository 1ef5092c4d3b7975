"""Reports into a Google Cloud Storage bucket (issue 19): gcp-storage-emulator, started by the test,
reached through the google provider's connection, ObjectStoragePath and gcsfs like a real bucket.

Runs in its own venv (.venv-gcs: the google provider is large), which `make test` builds and runs.

What is proven: a report of some tens of MB arrives whole, its chunks sent while it is written (no
local copy first); the final object appears only once the resumable upload is finalized (another
client watches the bucket meanwhile); gzip; a bucket that
does not exist fails before the report is submitted and is not created; a failed upload leaves
neither an object nor an open upload session; a `dag.test()` run writes through
``google_cloud_default``.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _support import gcs as gcs_support
from _support.dags import CAMPAIGN_COLUMNS, CAMPAIGN_HEADER, load_dag, report_dag_source, report_link, report_operator
from _support.fakes import FakeTI
from _support.gcs import GCSServer

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook, publish_to_object_storage
from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator
from airflow_provider_msads.reporting import destinations

pytestmark = pytest.mark.integration

gcs_server = gcs_support.gcs_server  # fixtures: the emulator (one per session) and google_cloud_default
gcs_conn = gcs_support.gcs_conn

COLUMNS = CAMPAIGN_COLUMNS
HEADER = CAMPAIGN_HEADER
#: About 30 MB of CSV (the emulator's rows are ~75 bytes): several 8 MiB upload chunks, kept quick
#: (the GCS emulator appends each chunk by rewriting the whole upload so far).
BIG_ROWS = 400_000


def _operator(destination: str, **changes: Any) -> MicrosoftAdsReportOperator:
    return report_operator(destination, **{"columns": COLUMNS, **changes})


def test_missing_bucket_fails_before_submit_and_is_not_created(msads_emulator, report_conn, gcs_conn: GCSServer):
    from airflow.providers.common.compat.sdk import AirflowFailException

    destination = gcs_conn.url("no-such-bucket", "reports/campaign.csv")
    with pytest.raises(AirflowFailException, match=r"no-such-bucket.*does not exist") as caught:
        _operator(destination).execute({"ti": FakeTI()})
    cause = caught.value.__cause__
    assert isinstance(cause, ReportRequestError) and cause.field == "destination"
    assert "create the bucket" in cause.remedy
    assert msads_emulator.report_submits == 0
    assert "no-such-bucket" not in gcs_conn.buckets()

    # The publisher refuses too (a hook user who skips the check gets no new bucket either).
    with pytest.raises(ReportRequestError, match="no-such-bucket"):
        publish_to_object_storage(__file__, destination)
    assert "no-such-bucket" not in gcs_conn.buckets()


def test_gzip_report_through_the_operator(msads_emulator, report_conn, gcs_conn: GCSServer):
    bucket = gcs_conn.create_bucket("lake-gzip")
    result = _operator(gcs_conn.url(bucket, "campaign/2026-10-01.csv"), compression="gzip").execute({"ti": FakeTI()})
    assert result["path"] == gcs_conn.url(bucket, "campaign/2026-10-01.csv.gz")
    assert gcs_conn.objects(bucket) == {"campaign/2026-10-01.csv.gz": result["bytes"]}  # nothing else left behind
    data = gzip.decompress(gcs_conn.read(bucket, "campaign/2026-10-01.csv.gz"))
    assert data.startswith(HEADER) and result["rows"] == data.count(b"\r\n") - 1 > 0
    assert gcs_conn.open_uploads() == []


def test_failed_upload_leaves_no_object_and_no_open_session(gcs_conn: GCSServer, tmp_path: Path, monkeypatch):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    bucket = gcs_conn.create_bucket("lake-broken")
    local = tmp_path / "report.csv"
    local.write_bytes(b"x" * (3 * destinations.UPLOAD_BLOCK_SIZE))  # several chunks
    real_copy = destinations.shutil.copyfileobj

    def copy_then_break(source: Any, target: Any, length: int = 0) -> None:
        target.write(source.read(2 * destinations.UPLOAD_BLOCK_SIZE))  # two chunks uploaded...
        assert gcs_conn.open_uploads() == [f"{bucket}/r.csv"]  # ... to the final name, not yet an object
        assert gcs_conn.objects(bucket) == {}
        raise OSError("disk went away")  # ... then the worker's disk fails

    monkeypatch.setattr(destinations.shutil, "copyfileobj", copy_then_break)
    path = ObjectStoragePath(gcs_conn.url(bucket, "r.csv"))
    with pytest.raises(OSError, match="disk went away"):
        destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    assert gcs_conn.objects(bucket) == {}
    assert gcs_conn.open_uploads() == []  # cancelled, not left to expire
    monkeypatch.setattr(destinations.shutil, "copyfileobj", real_copy)


@pytest.mark.parametrize("size", [0, 5, destinations.UPLOAD_BLOCK_SIZE, destinations.UPLOAD_BLOCK_SIZE + 1])
def test_sizes_at_the_chunk_edges_arrive_whole(gcs_conn: GCSServer, tmp_path: Path, size: int):
    """Empty, tiny, exactly one chunk (the finalizing request then carries no bytes), one byte over."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    bucket = f"lake-size-{size}"
    gcs_conn.create_bucket(bucket)
    local = tmp_path / "report.csv"
    body = os.urandom(size)
    local.write_bytes(body)
    path = ObjectStoragePath(gcs_conn.url(bucket, "r.csv"))
    destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    assert gcs_conn.objects(bucket) == {"r.csv": size}
    assert gcs_conn.read(bucket, "r.csv") == body
    assert gcs_conn.open_uploads() == []


_UPLOADER = """
import json, os, sys, tempfile
import gcsfs.core, airflow.providers.google.cloud.fs.gcs  # imported before measuring
from airflow_provider_msads import reporting
from airflow_provider_msads.hooks.msads import publish_to_object_storage
from airflow_provider_msads.reporting.scratch import owner_tag  # this process's scratch, not others'

# An observer, not a change: after each chunk of a resumable upload still open, say so and wait
# for the parent to look at the bucket.
upload_chunk = gcsfs.core.GCSFile._upload_chunk

def observed(self, final=False):
    sent = upload_chunk(self, final=final)
    if not self.autocommit and self.offset:
        scratch = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"msads-report-{owner_tag()}-")]
        print(json.dumps({"chunk_end": self.offset, "scratch": scratch}), flush=True)
        sys.stdin.readline()
    return sent

gcsfs.core.GCSFile._upload_chunk = observed

def peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

url, destination = sys.argv[1], sys.argv[2]
before = peak_kib()
result = reporting.download_report(url, destination, publish=publish_to_object_storage, timeout=600)
print(json.dumps({"growth_kib": peak_kib() - before, "rows": result.rows, "bytes": result.bytes}), flush=True)
"""


def test_big_report_appears_whole_only_when_finalized(msads_emulator, report_conn, gcs_conn: GCSServer, tmp_path: Path):
    """~30 MB to GCS in a child process, which stops after each chunk it sent while the bucket is
    looked at: the upload session is open, the final object does not exist; once the child is
    done, the object is there, whole."""
    bucket = gcs_conn.create_bucket("lake-big")
    msads_emulator.set_report_size(rows=BIG_ROWS)
    download_url = report_link(msads_emulator, MicrosoftAdsHook(), COLUMNS)
    key = "campaign/big.csv"
    errors = tmp_path / "child.err"
    with errors.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _UPLOADER, download_url, gcs_conn.url(bucket, key)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=dict(os.environ),
        )
        assert child.stdin is not None and child.stdout is not None
        looks: list[tuple[int, list[str], dict[str, int]]] = []
        scratch: list[str] = []
        figures: dict[str, Any] = {}
        for line in child.stdout:
            if not line.startswith(b"{"):  # a library's own print, not ours
                continue
            message = json.loads(line)
            if "chunk_end" not in message:
                figures = message
                continue
            looks.append((message["chunk_end"], gcs_conn.open_uploads(), gcs_conn.objects(bucket)))
            scratch += message["scratch"]
            child.stdin.write(b"go\n")
            child.stdin.flush()
        child.stdin.close()
        assert child.wait(timeout=60) == 0, errors.read_text()[-3000:]
    print(
        f"\nGCS upload: {figures['bytes'] / 1e6:.0f} MB, peak RSS growth {figures['growth_kib'] / 1024:.1f} MB,"
        f" {len(looks)} looks at the bucket while the upload was open"
    )
    assert len(looks) >= 3, looks  # several 8 MiB chunks sent before the upload was finalized
    assert all(uploads == [f"{bucket}/{key}"] and objects == {} for _, uploads, objects in looks), looks
    assert looks[-1][0] < figures["bytes"]  # the last look came before the last byte
    assert scratch == []  # sent while written (issue 29): no local copy of the report first
    assert gcs_conn.objects(bucket) == {key: figures["bytes"]}
    data = gcs_conn.read(bucket, key)
    assert data.startswith(HEADER) and data.count(b"\r\n") - 1 == figures["rows"] == BIG_ROWS
    assert figures["bytes"] > 25_000_000
    assert gcs_conn.open_uploads() == []
    # The upload holds its 8 MiB chunk a few times over (gcsfs buffer, aiohttp's body), not the report.
    assert figures["growth_kib"] < 96 * 1024, figures


def test_dag_test_writes_through_google_cloud_default(
    dags_folder: Path, msads_emulator, report_conn, gcs_conn: GCSServer
):
    from _support.dags import xcom_model, xcom_value
    from airflow.utils.session import create_session

    bucket = gcs_conn.create_bucket("lake-dag")
    dag_id = "msads_gcs_report"
    path = dags_folder / f"{dag_id}.py"
    path.write_text(
        report_dag_source(
            dag_id,
            columns=COLUMNS,
            destination=gcs_conn.url(bucket, "{{ ds }}/campaign.csv"),
            poll_interval=0.01,
            timeout=30,
            retries=0,
        )
    )
    run = load_dag(path, dag_id).test()

    with create_session() as session:
        ti = next(t for t in run.get_task_instances(session=session) if t.task_id == "report")
        row = session.query(xcom_model()).filter_by(run_id=run.run_id, task_id="report", key="return_value").first()
        state, result = ti.state, None if row is None else xcom_value(row)
    assert state == "success", state
    assert result is not None and result["path"].startswith(f"gs://google_cloud_default@{bucket}/")
    key = result["path"].split(f"@{bucket}/", 1)[1]
    assert gcs_conn.objects(bucket) == {key: result["bytes"]}
    data = gcs_conn.read(bucket, key)
    assert data.startswith(HEADER) and result["rows"] == data.count(b"\r\n") - 1 > 0


def test_a_cut_download_streamed_to_gcs_leaves_no_object_and_no_open_session(
    gcs_conn: GCSServer, tmp_path: Path, monkeypatch
):
    """Chunks go out while the report is written; the download then breaks: the resumable upload is
    cancelled (nothing under the name, no session left to expire), and the error is the retryable
    damaged zip."""
    import zipfile

    import gcsfs.core
    from _support.zips import serving, zip_bytes

    from airflow_provider_msads import reporting

    bucket = gcs_conn.create_bucket("lake-cut")
    data = zip_bytes(os.urandom(24 << 20), method=zipfile.ZIP_STORED)
    sent: list[int] = []
    upload_chunk = gcsfs.core.GCSFile._upload_chunk

    def counted(self: Any, final: bool = False) -> Any:
        answer = upload_chunk(self, final=final)
        sent.append(self.offset)
        return answer

    monkeypatch.setattr(gcsfs.core.GCSFile, "_upload_chunk", counted)
    destination = gcs_conn.url(bucket, "r.csv")
    with (
        serving({"/r.zip": data[: len(data) * 3 // 4]}) as base,
        pytest.raises(reporting.ReportDownloadError, match="damaged") as caught,
    ):
        reporting.download_report(f"{base}/r.zip", destination, publish=publish_to_object_storage)
    assert caught.value.retryable
    assert max(sent) >= 2 * destinations.UPLOAD_BLOCK_SIZE  # two chunks were out before the break
    assert gcs_conn.objects(bucket) == {}
    assert gcs_conn.open_uploads() == []
