"""Reports into Azure Blob Storage (issue 29): Microsoft's Azurite, started by the test, reached
through the microsoft-azure provider's ``wasb`` connection, ObjectStoragePath (``abfs://``) and
adlfs like a real storage account.

Runs in its own venv (.venv-azure, with Azurite installed in its folder), which `make test` builds
and runs.

What is proven: a report of some tens of MB arrives whole; the final blob appears only with the
Put Block List after the last block (another client looks at the container after each block);
memory stays at a few blocks; a container that does not exist fails before the report is
submitted and is not created; a container the connection may write but not inspect (a write-only
SAS) is refused unless the connection lists it; a failed upload leaves no blob; a `dag.test()` run
writes through ``wasb_default``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _support import azurite
from _support.azurite import AzureServer
from _support.dags import CAMPAIGN_COLUMNS, CAMPAIGN_HEADER, load_dag, report_dag_source, report_link, report_operator
from _support.fakes import FakeTI

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook, publish_to_object_storage
from airflow_provider_msads.reporting import destinations

pytestmark = pytest.mark.integration

azure_server = azurite.azure_server  # fixtures: Azurite (one per session) and wasb_default
azure_conn = azurite.azure_conn

COLUMNS = CAMPAIGN_COLUMNS
HEADER = CAMPAIGN_HEADER
#: About 30 MB of CSV (the emulator's rows are ~75 bytes): several 8 MiB blocks.
BIG_ROWS = 400_000


def _operator(destination: str, **changes: Any) -> Any:
    return report_operator(destination, **{"columns": COLUMNS, **changes})


def test_missing_container_fails_before_submit_and_is_not_created(msads_emulator, report_conn, azure_conn: AzureServer):
    from airflow.providers.common.compat.sdk import AirflowFailException

    destination = azure_conn.url("no-such-container", "reports/campaign.csv")
    with pytest.raises(AirflowFailException, match=r"no-such-container.*does not exist") as caught:
        _operator(destination).execute({"ti": FakeTI()})
    cause = caught.value.__cause__
    assert isinstance(cause, ReportRequestError) and cause.field == "destination"
    assert "create the bucket" in cause.remedy
    assert msads_emulator.report_submits == 0
    assert "no-such-container" not in azure_conn.containers()

    # The publisher refuses too (a hook user who skips the check gets no new container either).
    with pytest.raises(ReportRequestError, match="no-such-container"):
        publish_to_object_storage(__file__, destination)
    assert "no-such-container" not in azure_conn.containers()


def test_write_only_container_is_refused_unless_the_connection_lists_it(
    msads_emulator, report_conn, azure_conn: AzureServer, monkeypatch, tmp_path: Path
):
    """A SAS that may write blobs but not read the container: Azure answers the look with 403."""
    from airflow.providers.common.compat.sdk import AirflowFailException

    container = azure_conn.create_container("lake-write-only")
    sas = azure_conn.write_only_sas(container)
    monkeypatch.setenv("AIRFLOW_CONN_WASB_WRITER", json.dumps(azure_conn.connection(sas)))
    destination = f"abfs://wasb_writer@{container}/campaign.csv"
    with pytest.raises(AirflowFailException, match="may not inspect") as caught:
        _operator(destination).execute({"ti": FakeTI()})
    assert "abfs://<conn_id>@lake-write-only/" in caught.value.__cause__.remedy
    assert msads_emulator.report_submits == 0

    listed = azure_conn.connection(sas, msads_write_only_buckets=[container])
    monkeypatch.setenv("AIRFLOW_CONN_WASB_WRITER", json.dumps(listed))
    local = tmp_path / "report.csv"
    local.write_bytes(HEADER)
    publish_to_object_storage(str(local), destination)
    assert azure_conn.read(container, "campaign.csv") == HEADER


def test_gzip_report_through_the_operator(msads_emulator, report_conn, azure_conn: AzureServer):
    container = azure_conn.create_container("lake-gzip")
    result = _operator(azure_conn.url(container, "campaign/2026-10-01.csv"), compression="gzip").execute(
        {"ti": FakeTI()}
    )
    assert result["path"] == azure_conn.url(container, "campaign/2026-10-01.csv.gz")
    assert azure_conn.blobs(container) == {"campaign/2026-10-01.csv.gz": result["bytes"]}  # nothing else
    data = gzip.decompress(azure_conn.read(container, "campaign/2026-10-01.csv.gz"))
    assert data.startswith(HEADER) and result["rows"] == data.count(b"\r\n") - 1 > 0


def test_failed_upload_leaves_no_blob(azure_conn: AzureServer, tmp_path: Path, monkeypatch):
    """The file breaks after two blocks were staged: the blocks stay uncommitted (Azure drops them
    after 7 days), no blob exists under the name, and an earlier report there is untouched."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    container = azure_conn.create_container("lake-broken")
    azure_conn.service.get_blob_client(container, "r.csv").upload_blob(b"yesterday's report")
    local = tmp_path / "report.csv"
    local.write_bytes(b"x" * (4 * destinations.UPLOAD_BLOCK_SIZE))  # several blocks
    reads = 0
    real_open = open

    class BreakingFile:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> BreakingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def readinto(self, buffer: bytearray) -> int:
            nonlocal reads
            reads += 1
            if reads > 2:  # once both blocks read before are at the store, the disk fails
                deadline = time.monotonic() + 30
                while len(azure_conn.uncommitted_blocks(container, "r.csv")) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)  # a readiness wait (the block in flight), not timing
                raise OSError("disk went away")
            return self.handle.readinto(buffer)

    def open_breaking(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(path, mode, *args, **kwargs)
        return BreakingFile(handle) if str(path) == str(local) else handle

    path = ObjectStoragePath(azure_conn.url(container, "r.csv"))
    with monkeypatch.context() as patched:
        patched.setattr("builtins.open", open_breaking)
        with pytest.raises(OSError, match="disk went away"):
            destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    assert reads == 3
    assert azure_conn.blobs(container) == {"r.csv": len(b"yesterday's report")}
    assert azure_conn.read(container, "r.csv") == b"yesterday's report"
    staged = azure_conn.uncommitted_blocks(container, "r.csv")
    assert staged == [destinations.UPLOAD_BLOCK_SIZE] * 2, staged


def test_interrupted_upload_is_cancelled_before_the_commit(azure_conn: AzureServer, tmp_path: Path, monkeypatch):
    """A task timeout or SIGTERM raises in the thread that waits for the upload (Airflow's signal
    handlers) while the blocks go out on adlfs's loop: the upload must stop there, not commit the
    blob later behind the failed task's back."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from azure.storage.blob.aio import BlobClient

    class TaskTimeout(Exception):
        pass

    def on_signal(signum: int, frame: Any) -> None:
        raise TaskTimeout("Timeout, PID: 1")

    container = azure_conn.create_container("lake-interrupted")
    local = tmp_path / "report.csv"
    local.write_bytes(b"x" * (3 * destinations.UPLOAD_BLOCK_SIZE))
    main_thread = threading.main_thread().ident
    assert main_thread == threading.get_ident()
    real_stage = BlobClient.stage_block
    calls: list[str] = []
    cancelled = threading.Event()

    async def stage_block(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("stage_block")
        if len(calls) == 2:  # the worker's timeout fires while block 2 is on its way
            signal.pthread_kill(main_thread, signal.SIGUSR1)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return await real_stage(self, *args, **kwargs)

    async def commit_block_list(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("commit_block_list")
        raise AssertionError("committed after the task was interrupted")

    monkeypatch.setattr(BlobClient, "stage_block", stage_block)
    monkeypatch.setattr(BlobClient, "commit_block_list", commit_block_list)
    path = ObjectStoragePath(azure_conn.url(container, "r.csv"))
    previous = signal.signal(signal.SIGUSR1, on_signal)
    try:
        with pytest.raises(TaskTimeout):
            destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert cancelled.is_set()  # the block in flight was cancelled before the error was raised
    assert "commit_block_list" not in calls
    assert azure_conn.blobs(container) == {}


@pytest.mark.parametrize("size", [0, 5, destinations.UPLOAD_BLOCK_SIZE, destinations.UPLOAD_BLOCK_SIZE + 1])
def test_sizes_at_the_block_edges_arrive_whole(azure_conn: AzureServer, tmp_path: Path, size: int):
    """Empty (a Put Block List of no blocks), tiny, exactly one block, one byte over."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    container = azure_conn.create_container(f"lake-size-{size}")
    local = tmp_path / "report.csv"
    body = os.urandom(size)
    local.write_bytes(body)
    path = ObjectStoragePath(azure_conn.url(container, "r.csv"))
    destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    assert azure_conn.blobs(container) == {"r.csv": size}
    assert azure_conn.read(container, "r.csv") == body
    assert azure_conn.uncommitted_blocks(container, "r.csv") == []


_UPLOADER = """
import json, sys
import adlfs, airflow.providers.microsoft.azure.fs.adls  # imported before measuring
from azure.storage.blob.aio import BlobClient
from airflow_provider_msads import reporting
from airflow_provider_msads.hooks.msads import publish_to_object_storage

# An observer, not a change: after each block staged, say so and wait for the parent to look at
# the container (the upload's event loop waits with it).
import os, tempfile
from airflow_provider_msads.reporting.scratch import owner_tag  # this process's scratch, not others'
stage_block = BlobClient.stage_block
staged = 0

async def observed(self, *args, **kwargs):
    global staged
    answer = await stage_block(self, *args, **kwargs)
    staged += 1
    scratch = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"msads-report-{owner_tag()}-")]
    print(json.dumps({"staged": staged, "scratch": scratch}), flush=True)
    sys.stdin.readline()
    return answer

BlobClient.stage_block = observed

def peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

url, destination = sys.argv[1], sys.argv[2]
before = peak_kib()
result = reporting.download_report(url, destination, publish=publish_to_object_storage, timeout=600)
print(json.dumps({"growth_kib": peak_kib() - before, "rows": result.rows, "bytes": result.bytes}), flush=True)
"""


def test_big_report_appears_whole_only_when_committed(
    msads_emulator, report_conn, azure_conn: AzureServer, tmp_path: Path
):
    """~30 MB to Azure in a child process, which stops after each block it staged while the
    container is looked at: blocks are staged for the name, no blob exists; once the child is
    done, the blob is there, whole, and no block is left uncommitted."""
    container = azure_conn.create_container("lake-big")
    msads_emulator.set_report_size(rows=BIG_ROWS)
    download_url = report_link(msads_emulator, MicrosoftAdsHook(), COLUMNS)
    key = "campaign/big.csv"
    errors = tmp_path / "child.err"
    with errors.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _UPLOADER, download_url, azure_conn.url(container, key)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=dict(os.environ),
        )
        assert child.stdin is not None and child.stdout is not None
        looks: list[tuple[int, int, dict[str, int]]] = []
        scratch: list[str] = []
        figures: dict[str, Any] = {}
        for line in child.stdout:
            if not line.startswith(b"{"):  # a library's own print, not ours
                continue
            message = json.loads(line)
            if "staged" not in message:
                figures = message
                continue
            staged = azure_conn.uncommitted_blocks(container, key)
            looks.append((message["staged"], len(staged), azure_conn.blobs(container)))
            scratch += message["scratch"]
            child.stdin.write(b"go\n")
            child.stdin.flush()
        child.stdin.close()
        assert child.wait(timeout=60) == 0, errors.read_text()[-3000:]
    print(
        f"\nAzure upload: {figures['bytes'] / 1e6:.0f} MB, peak RSS growth {figures['growth_kib'] / 1024:.1f} MB,"
        f" {len(looks)} looks at the container while blocks were staged"
    )
    assert len(looks) >= 3, looks  # several 8 MiB blocks staged before the commit
    assert all(uncommitted >= staged and blobs == {} for staged, uncommitted, blobs in looks), looks
    assert scratch == []  # staged while written (issue 29): no local copy of the report first
    assert azure_conn.blobs(container) == {key: figures["bytes"]}
    data = azure_conn.read(container, key)
    assert data.startswith(HEADER) and data.count(b"\r\n") - 1 == figures["rows"] == BIG_ROWS
    assert figures["bytes"] > 25_000_000
    assert azure_conn.uncommitted_blocks(container, key) == []
    # Two 8 MiB blocks in flight, each held a few times over (the block, the SDK's request body).
    assert figures["growth_kib"] < 64 * 1024, figures


def test_dag_test_writes_through_wasb_default(dags_folder: Path, msads_emulator, report_conn, azure_conn: AzureServer):
    from _support.dags import xcom_model, xcom_value
    from airflow.utils.session import create_session

    container = azure_conn.create_container("lake-dag")
    dag_id = "msads_azure_report"
    path = dags_folder / f"{dag_id}.py"
    path.write_text(
        report_dag_source(
            dag_id,
            columns=COLUMNS,
            destination=azure_conn.url(container, "{{ ds }}/campaign.csv"),
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
    assert result is not None and result["path"].startswith(f"abfs://wasb_default@{container}/")
    key = result["path"].split(f"@{container}/", 1)[1]
    assert azure_conn.blobs(container) == {key: result["bytes"]}
    data = azure_conn.read(container, key)
    assert data.startswith(HEADER) and result["rows"] == data.count(b"\r\n") - 1 > 0


def test_a_cut_download_streamed_to_azure_commits_nothing(azure_conn: AzureServer, monkeypatch):
    """Blocks are staged while the report is written; the download then breaks: no Put Block List,
    so no blob (only uncommitted blocks, which expire), and the error is the retryable damaged zip."""
    import zipfile

    from _support.zips import serving, zip_bytes
    from azure.storage.blob.aio import BlobClient

    from airflow_provider_msads import reporting

    container = azure_conn.create_container("lake-cut")
    data = zip_bytes(os.urandom(24 << 20), method=zipfile.ZIP_STORED)
    staged: list[int] = []
    stage_block = BlobClient.stage_block

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        staged.append(kwargs["length"])  # sent (it may still be in flight when the upload is abandoned)
        return await stage_block(self, *args, **kwargs)

    monkeypatch.setattr(BlobClient, "stage_block", counted)
    destination = azure_conn.url(container, "r.csv")
    with (
        serving({"/r.zip": data[: len(data) * 3 // 4]}) as base,
        pytest.raises(reporting.ReportDownloadError, match="damaged") as caught,
    ):
        reporting.download_report(f"{base}/r.zip", destination, publish=publish_to_object_storage)
    assert caught.value.retryable
    assert staged  # a block went out while the report was written, before the break
    assert azure_conn.blobs(container) == {}
