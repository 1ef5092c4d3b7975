"""P11: a Bulk file of about 1 GB of CSV from the emulator: time and peak RSS growth of the
operator's download and split into one file per record type in a local folder.

The emulator (in this process) generates the account's entities on the fly and streams the zip.
A child process (so that its memory is the downloader's alone) submits the download, waits for
it, then runs what :class:`MicrosoftAdsBulkDownloadOperator` runs for one account:
``hook.download_entities()`` (status, the zip to a scratch file, its CSV read row by row and split
per record type) and ``publish_files()`` (each type's file moved under its final name in the
folder). It reports the time and its peak RSS growth (Linux ``VmHWM`` after ``clear_refs``).

The baseline, in the same run and the same child: a fresh link for the same download, ``curl`` to
disk, then ``unzip`` to disk (the whole union file, not split). Goal: peak RSS growth under 64 MB.

Not in ``run.py`` (and so not in the quick benchmark test): at full size it takes minutes.
Run: ``python benchmarks/bench_p11_bulk_download.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

CONN_ID = "msads_bench_p11"
ENTITIES = ["Campaigns", "AdGroups", "Keywords", "Ads"]

CHILD = r"""
import json, os, resource, shutil, subprocess, sys, tempfile, time
from airflow_provider_msads.bulk.download import new_scratch
from airflow_provider_msads.bulk.request import build_account_request
from airflow_provider_msads.bulk.split import Splitter, publish_files
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

conn_id, account, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
entities = json.loads(sys.argv[4])
from benchmarks._bench_memory import ChildPeak, hwm_mb, reset_hwm


hook = MicrosoftAdsHook(msads_conn_id=conn_id)
request_id = hook.submit_bulk_download(build_account_request(account, entities))
status = hook.get_bulk_download_status(request_id)
while not status.done:
    status = hook.get_bulk_download_status(request_id)
folder = os.path.join(out_dir, "entities")
reset_ok = reset_hwm()
before = hwm_mb()
started = time.perf_counter()
scratch = new_scratch()
splitter = Splitter(scratch)
try:
    with ChildPeak() as inflating:  # the child process that inflates a big zip: its memory counts too
        result = hook.download_entities(account, entities, splitter, request_id=request_id, poll_interval=0.01)
    files = publish_files(splitter, folder, scratch=scratch)
finally:
    splitter.close()
    shutil.rmtree(scratch, ignore_errors=True)
provider_s = time.perf_counter() - started
growth = hwm_mb() - before
csv_bytes = sum(os.path.getsize(f["path"]) for f in files.values())
rows = {stem: f["rows"] for stem, f in files.items()}
shutil.rmtree(folder, ignore_errors=True)

status = hook.get_bulk_download_status(request_id)  # a fresh link for the baseline
zip_path = os.path.join(out_dir, "baseline.zip")
started = time.perf_counter()
subprocess.run(["curl", "-s", "-f", "-o", zip_path, status.url], check=True)
download_s = time.perf_counter() - started
zip_bytes = os.path.getsize(zip_path)
started = time.perf_counter()
subprocess.run(["unzip", "-q", "-o", zip_path, "-d", os.path.join(out_dir, "unzipped")], check=True)
unzip_s = time.perf_counter() - started
unzipped = os.path.join(out_dir, "unzipped")
union_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(unzipped) for f in fs)
print(json.dumps({"rows": rows, "csv_bytes": csv_bytes, "union_bytes": union_bytes, "zip_bytes": zip_bytes,
                  "provider_s": provider_s, "download_s": download_s, "unzip_s": unzip_s,
                  "rss_growth_mb": growth, "child_peak_mb": inflating.peak_mb, "hwm_reset": reset_ok}))
"""


def run(quick: bool = False) -> dict[str, Any]:
    # Under Microsoft's four million keywords per account (else 3207, by campaign ids): 3.25M keywords
    # (~175 bytes a row) and 1.3M responsive search ads make about 1 GB; quick about 30 MB.
    campaigns = 20 if quick else 650
    with MicrosoftAdsEmulator() as emulator:
        conn = emulator.connection_dict()
        conn["extra"]["bulk_url"] = emulator.bulk_url
        os.environ["AIRFLOW_CONN_MSADS_BENCH_P11"] = json.dumps(conn)
        os.environ["MSADS_TOKEN_STORE"] = "memory"
        emulator.bulk.set_tree(
            campaigns=campaigns, ad_groups_per_campaign=100, keywords_per_ad_group=50, ads_per_ad_group=20
        )
        out_dir = tempfile.mkdtemp(prefix="msads-bench-p11-")
        try:
            line = common.run_child(
                ["-c", CHILD, CONN_ID, emulator.account.id, out_dir, json.dumps(ENTITIES)],
                common.child_env(),
                timeout=3600,
            )
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
            os.environ.pop("AIRFLOW_CONN_MSADS_BENCH_P11", None)
            os.environ.pop("MSADS_TOKEN_STORE", None)
    figures = dict(json.loads(line))
    baseline = figures["download_s"] + figures["unzip_s"]
    ratio = figures["provider_s"] / baseline if baseline else float("nan")
    mb = figures["csv_bytes"] / 1024 / 1024
    result = {
        "rows": figures["rows"],
        "csv_mb": round(mb, 1),
        "union_csv_mb": round(figures["union_bytes"] / 1024 / 1024, 1),
        "zip_mb": round(figures["zip_bytes"] / 1024 / 1024, 1),
        "provider_s": round(figures["provider_s"], 2),
        "provider_mb_per_s": round(mb / figures["provider_s"], 1),
        "baseline_curl_s": round(figures["download_s"], 2),
        "baseline_unzip_s": round(figures["unzip_s"], 2),
        "ratio_provider_to_curl_plus_unzip": round(ratio, 2),
        "rss_growth_mb": round(figures["rss_growth_mb"], 1),
        "inflating_child_peak_mb": round(figures["child_peak_mb"], 1),
        "goal_rss_growth_mb": 64,
        "goal_met": figures["rss_growth_mb"] + figures["child_peak_mb"] < 64,
        "hwm_reset": figures["hwm_reset"],
    }
    common.report(
        f"P11 Bulk download, {mb:.0f} MB of CSV split ({figures['rows'].get('keyword', 0)} keywords, "
        f"zip {result['zip_mb']} MB)",
        [
            (
                "download_entities() + publish_files()",
                f"{figures['provider_s']:.2f} s  = {result['provider_mb_per_s']} MB/s",
            ),
            (
                "baseline: curl to disk + unzip",
                f"{baseline:.2f} s  ({figures['download_s']:.2f} + {figures['unzip_s']:.2f})",
            ),
            ("ratio provider / baseline", f"{ratio:.2f}"),
            (
                "peak RSS growth during download+split + inflating child",
                f"{figures['rss_growth_mb']:.1f} + {figures['child_peak_mb']:.1f} MB  (goal: < 64 MB)",
            ),
        ],
    )
    return result


if __name__ == "__main__":
    common.main(run)
