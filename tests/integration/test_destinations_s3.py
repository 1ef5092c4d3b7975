"""Reports into an S3 bucket (issue 19): moto's S3 server, started by the test, reached through the
amazon provider's connection, ObjectStoragePath and s3fs exactly like a real bucket.

What is proven: a report of a few hundred MB arrives whole with bounded memory; the final key
appears only once the upload completes (another client watches the bucket meanwhile); gzip; a
bucket that does not exist fails before the report is submitted and is not created; a failed
upload leaves neither a partial object nor an open multipart upload.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _support import s3 as s3_support
from _support.s3 import S3Server

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook, publish_to_object_storage
from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator
from airflow_provider_msads.reporting import destinations

pytestmark = pytest.mark.integration

s3_server = s3_support.s3_server  # fixtures: the moto server (one per session) and aws_default
s3_conn = s3_support.s3_conn

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"]
HEADER = b'"TimePeriod","AccountId","CampaignId","CampaignName","Impressions","Clicks","Spend"\r\n'
#: About 200 MB of CSV (the emulator's rows are ~75 bytes): a few hundred MB, kept quick.
BIG_ROWS = 2_700_000


class FakeTI:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "t", -1, 1

    def xcom_push(self, key: str, value: object) -> None:
        pass


def _operator(destination: str, **changes: Any) -> MicrosoftAdsReportOperator:
    args: dict[str, Any] = {
        "task_id": "report",
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "date_from": "2026-10-01",
        "date_to": "2026-10-02",
        "destination": destination,
        "poll_interval": 0.01,
        "timeout": 30,
    }
    args.update(changes)
    return MicrosoftAdsReportOperator(**args)


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


def test_failed_upload_leaves_no_object_and_no_open_upload(s3_conn: S3Server, tmp_path: Path, monkeypatch):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    bucket = s3_conn.create_bucket("lake-broken")
    local = tmp_path / "report.csv"
    local.write_bytes(b"x" * (3 * destinations.UPLOAD_BLOCK_SIZE))  # several parts
    real_copy = destinations.shutil.copyfileobj

    def copy_then_break(source: Any, target: Any, length: int = 0) -> None:
        target.write(source.read(2 * destinations.UPLOAD_BLOCK_SIZE))  # two parts uploaded...
        assert _open_uploads(s3_conn, bucket) == ["r.csv"]
        raise OSError("disk went away")  # ... then the worker's disk fails

    monkeypatch.setattr(destinations.shutil, "copyfileobj", copy_then_break)
    path = ObjectStoragePath(s3_conn.url(bucket, "r.csv"))
    with pytest.raises(OSError, match="disk went away"):
        destinations.upload_file(str(local), path.fs, path.path, path.protocol)
    assert _keys(s3_conn, bucket) == {}
    assert _open_uploads(s3_conn, bucket) == []  # aborted, not left to the lifecycle rule
    monkeypatch.setattr(destinations.shutil, "copyfileobj", real_copy)


_UPLOADER = """
import json, sys
import s3fs, aiobotocore, airflow.providers.amazon.aws.fs.s3  # imported before measuring
from airflow_provider_msads import reporting
from airflow_provider_msads.hooks.msads import publish_to_object_storage

def peak_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

url, destination = sys.argv[1], sys.argv[2]
before = peak_kib()
result = reporting.download_report(url, destination, publish=publish_to_object_storage, timeout=600)
print(json.dumps({"growth_kib": peak_kib() - before, "rows": result.rows, "bytes": result.bytes}))
"""


def test_big_report_appears_whole_with_bounded_memory(msads_emulator, report_conn, s3_conn: S3Server):
    """~200 MB to S3 in a child process; meanwhile this process watches the bucket: the final key
    never exists while the multipart upload is open, and appears, whole, once the child is done."""
    bucket = s3_conn.create_bucket("lake-big")
    hook = MicrosoftAdsHook()
    msads_emulator.set_report_size(rows=BIG_ROWS)
    from airflow_provider_msads.reporting import build_report_request

    request_id = hook.submit_report(
        build_report_request(
            report_type="CampaignPerformanceReportRequest",
            columns=COLUMNS,
            account_ids=[msads_emulator.account.id],
            date_from="2026-10-01",
            date_to="2026-10-03",
        )
    )
    status = hook.poll_report(request_id)
    while status.status == "Pending":
        status = hook.poll_report(request_id)
    assert status.download_url
    key = "campaign/big.csv"
    child = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER, status.download_url, s3_conn.url(bucket, key)],
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
    assert figures["growth_kib"] < 96 * 1024, figures
