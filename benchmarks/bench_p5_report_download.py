"""P5: a report of about 1 GB of CSV from the emulator: throughput and peak RSS growth.

The emulator (in this process) generates the report on the fly and streams its zip. A child
process (so that its memory is the downloader's alone) polls the report and runs
``hook.download_report()``: zip to a temporary file, the CSV entry read in chunks, BOM stripped,
rows counted, written next to the destination and moved into place. It reports the time and its
peak RSS growth during the download (Linux ``VmHWM`` after resetting it with ``clear_refs``).

The baseline, in the same run and the same child: download the same zip to disk with a plain
httpx stream, then ``unzip`` it to disk. The ratio is provider time / baseline time (1.0 = as fast
as downloading and unzipping by hand). Goal: peak RSS growth under 64 MB.

Run: ``python benchmarks/bench_p5_report_download.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

CONN_ID = "msads_bench_p5"
COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"]

CHILD = r"""
import json, os, resource, shutil, subprocess, sys, tempfile, time
import httpx
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.reporting import build_report_request

conn_id, account, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
columns = json.loads(sys.argv[4])


def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


hook = MicrosoftAdsHook(msads_conn_id=conn_id)
request = build_report_request(report_type="CampaignPerformanceReportRequest", columns=columns,
                               account_ids=[account], date_from="2026-10-01", date_to="2026-10-01")
request_id = hook.submit_report(request)
status = hook.poll_report(request_id)
while status.status == "Pending":
    status = hook.poll_report(request_id)
destination = os.path.join(out_dir, "report.csv")
reset_ok = reset_hwm()
before = hwm_mb()
started = time.perf_counter()
result = hook.download_report(status.download_url, destination, request_id=request_id)
provider_s = time.perf_counter() - started
growth = hwm_mb() - before
os.unlink(destination)

status = hook.poll_report(request_id)  # a fresh link for the baseline
zip_path = os.path.join(out_dir, "baseline.zip")
started = time.perf_counter()
with httpx.Client(timeout=600) as client, client.stream("GET", status.download_url) as response, \
        open(zip_path, "wb") as target:
    for chunk in response.iter_bytes(1024 * 1024):
        target.write(chunk)
download_s = time.perf_counter() - started
zip_bytes = os.path.getsize(zip_path)
started = time.perf_counter()
unzip = shutil.which("unzip")
if unzip:
    subprocess.run([unzip, "-q", "-o", zip_path, "-d", os.path.join(out_dir, "unzipped")], check=True)
else:
    import zipfile
    zipfile.ZipFile(zip_path).extractall(os.path.join(out_dir, "unzipped"))
unzip_s = time.perf_counter() - started
print(json.dumps({"rows": result.rows, "csv_bytes": result.csv_bytes, "zip_bytes": zip_bytes,
                  "provider_s": provider_s, "download_s": download_s, "unzip_s": unzip_s,
                  "rss_growth_mb": growth, "hwm_reset": reset_ok, "unzip_tool": bool(unzip)}))
"""


def run(quick: bool = False) -> dict[str, Any]:
    target = (16 if quick else 1024) * 1024 * 1024
    with MicrosoftAdsEmulator() as emulator:
        conn = emulator.connection_dict()
        conn["extra"]["reporting_url"] = emulator.reporting_url
        os.environ["AIRFLOW_CONN_MSADS_BENCH_P5"] = json.dumps(conn)
        os.environ["MSADS_TOKEN_STORE"] = "memory"
        try:
            # Calibrate the row width of this report shape, then ask for about `target` bytes.
            probe = _child(emulator, rows=20_000)
            per_row = probe["csv_bytes"] / max(probe["rows"], 1)
            figures = _child(emulator, rows=int(target / per_row))
        finally:
            os.environ.pop("AIRFLOW_CONN_MSADS_BENCH_P5", None)
            os.environ.pop("MSADS_TOKEN_STORE", None)
    baseline = figures["download_s"] + figures["unzip_s"]
    ratio = figures["provider_s"] / baseline if baseline else float("nan")
    mb = figures["csv_bytes"] / 1024 / 1024
    result = {
        "rows": figures["rows"],
        "csv_mb": round(mb, 1),
        "zip_mb": round(figures["zip_bytes"] / 1024 / 1024, 1),
        "provider_s": round(figures["provider_s"], 2),
        "provider_mb_per_s": round(mb / figures["provider_s"], 1),
        "baseline_download_s": round(figures["download_s"], 2),
        "baseline_unzip_s": round(figures["unzip_s"], 2),
        "ratio_provider_to_download_plus_unzip": round(ratio, 2),
        "rss_growth_mb": round(figures["rss_growth_mb"], 1),
        "goal_rss_growth_mb": 64,
        "goal_met": figures["rss_growth_mb"] < 64,
        "hwm_reset": figures["hwm_reset"],
        "unzip_tool": figures["unzip_tool"],
    }
    common.report(
        f"P5 report download, {mb:.0f} MB of CSV ({figures['rows']} rows, zip {result['zip_mb']} MB)",
        [
            ("hook.download_report()", f"{figures['provider_s']:.2f} s  = {result['provider_mb_per_s']} MB/s"),
            (
                "baseline: httpx to disk + " + ("unzip" if figures["unzip_tool"] else "zipfile"),
                f"{baseline:.2f} s  ({figures['download_s']:.2f} + {figures['unzip_s']:.2f})",
            ),
            ("ratio provider / baseline", f"{ratio:.2f}"),
            ("peak RSS growth during download", f"{figures['rss_growth_mb']:.1f} MB  (goal: < 64 MB)"),
        ],
    )
    return result


def _child(emulator: MicrosoftAdsEmulator, rows: int) -> dict[str, Any]:
    emulator.set_report_size(rows)
    out_dir = tempfile.mkdtemp(prefix="msads-bench-p5-")
    try:
        line = common.run_child(
            ["-c", CHILD, "msads_bench_p5", emulator.account.id, out_dir, json.dumps(COLUMNS)],
            common.child_env(),
            timeout=1800,
        )
    finally:
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)
    return dict(json.loads(line))


if __name__ == "__main__":
    common.main(run)
