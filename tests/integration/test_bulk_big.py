"""Bulk files bigger than the memory they may use, and an S3 destination (issue 26, finishing round).

The emulator builds an account of 200,000 keywords (about 35 MB of CSV, generated as it is
served); the download and the split into one file per record type hold a row at a time, not the
file: the peak RSS growth of the process doing it stays well under the file's size (benchmark
P11 measures a 1 GB file). The S3 test goes
through moto's server, the amazon provider's connection and ObjectStoragePath like a real bucket.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _support.fakes import FakeTI as _FakeTI
from _support.s3 import S3Server

from airflow_provider_msads.operators.bulk import MicrosoftAdsBulkDownloadOperator

pytestmark = pytest.mark.integration


ENTITIES = ["Campaigns", "AdGroups", "Keywords"]


FakeTI = functools.partial(_FakeTI, dag_id="bulk_big", task_id="entities")


_SPLITTER = """
import json, os, sys
from airflow_provider_msads.bulk.download import fetch_and_split
from airflow_provider_msads.bulk.split import Splitter

def peak_kib() -> int:
    # VmHWM belongs to this program's memory map; ru_maxrss would carry the forking pytest's peak.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

url, scratch = sys.argv[1], sys.argv[2]
splitter = Splitter(scratch)
# Made once per process whatever the file (the verifying TLS context loads the CA bundle; the
# first client and thread pull in the rest of httpx): set-up, not the file.
import httpx, threading
from airflow_provider_msads.tokens.flow import shared_tls_context
httpx.Client(verify=shared_tls_context()).close()
threading.Thread(target=lambda: None).start()
before = peak_kib()  # after every import: what remains is the download and the split
fetch_and_split(url, splitter)
growth = peak_kib() - before
files = {stem: (path, rows) for path, stem, rows in splitter.files().values()}
# The control: holding the keyword file in memory does show up, so a flat figure means something.
with open(files["keyword"][0], "rb") as handle:
    whole = handle.read()
control = peak_kib() - before
print(json.dumps({"growth_kib": growth, "control_kib": control, "rows": files["keyword"][1], "bytes": len(whole)}))
"""


def test_200k_keywords_are_split_holding_a_row_not_the_file(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    """The downloader and splitter run in a fresh process (the emulator's own memory, in this one,
    stays out of the figure)."""
    from airflow_provider_msads.bulk.request import build_account_request
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    msads_emulator.bulk.set_tree(campaigns=40, ad_groups_per_campaign=50, keywords_per_ad_group=100, ads_per_ad_group=0)
    hook = MicrosoftAdsHook()
    request_id = hook.submit_bulk_download(build_account_request(msads_emulator.account.id, ENTITIES))
    status = hook.get_bulk_download_status(request_id)
    while not status.done:
        status = hook.get_bulk_download_status(request_id)
    assert status.url
    result = subprocess.run(
        [sys.executable, "-c", _SPLITTER, status.url, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"\nbulk split: {figures['bytes'] / 1e6:.0f} MB of keywords, peak RSS growth {figures['growth_kib'] / 1024:.1f} MB"
    )
    assert figures["rows"] == 200_000 and figures["bytes"] > 32 * 1024 * 1024
    assert figures["growth_kib"] * 1024 < figures["bytes"] / 2, figures  # about 5-9 MB here: buffers, not the file
    assert figures["control_kib"] * 1024 > figures["bytes"] / 2, figures  # the measurement can see growth
    assert msads_emulator.bulk.downloads_with_credentials == 0


def test_bulk_files_into_an_s3_bucket(msads_emulator, bulk_conn, s3_conn: S3Server) -> None:
    msads_emulator.bulk.set_tree(campaigns=2, ad_groups_per_campaign=5, keywords_per_ad_group=110, ads_per_ad_group=1)
    bucket = s3_conn.create_bucket("lake-bulk")
    op = MicrosoftAdsBulkDownloadOperator(
        task_id="entities",
        entities=[*ENTITIES, "Ads"],
        destination=s3_conn.url(bucket, "msads/entities"),
        delta=False,
        poll_interval=0.01,
    )
    result = op.execute({"ti": FakeTI()})
    keys = {item["Key"]: item["Size"] for item in s3_conn.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(keys) == {f"msads/entities/{stem}.csv" for stem in result["files"]}  # nothing else left behind
    assert result["files"]["keyword"]["path"] == s3_conn.url(bucket, "msads/entities/keyword.csv")
    body = s3_conn.client().get_object(Bucket=bucket, Key="msads/entities/keyword.csv")["Body"].read()
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert len(rows) == result["files"]["keyword"]["rows"] == 1_100
    assert {"Id", "Parent Id", "Status", "Keyword"} <= set(rows[0])
    assert s3_conn.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
