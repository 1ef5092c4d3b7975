"""P5: a report of about 1 GB of CSV from the emulator, and a 400 MB one served as a static file.

The emulator (in this process) generates the report on the fly and streams its zip. A child
process (so that its memory is the downloader's alone) polls the report and runs
``hook.download_report()``: zip to a temporary file, the CSV entry read in chunks, BOM stripped,
rows counted, written next to the destination and moved into place. It reports the time and its
peak RSS growth during the download (Linux ``VmHWM`` after resetting it with ``clear_refs``), plus
the peak of the child process that inflates a big zip (its ``VmHWM``, sampled while it runs:
``_bench_memory.ChildPeak``).

The baseline, in the same run and the same child: download the same zip to disk with a plain
httpx stream, then ``unzip`` it to disk. The ratio is provider time / baseline time (1.0 = as fast
as downloading and unzipping by hand). Goal: peak RSS growth under 64 MB.

Both sides of that run are bound by the emulator generating and zipping the report on the fly. So
the same child also downloads one pre-built zip (about 400 MB of report-like CSV, about 95 MB
deflated; a few MB with ``--quick``) served as a static file from loopback by a small HTTP server
in this process (``sendfile``): ``download_report()`` to a local file (the zip inflated as it
arrives) against ``curl`` to disk, then ``unzip`` (httpx and zipfile when those tools are missing,
and the table says so), three rounds alternating, medians. Goal: the provider at least 1.2x
faster than curl + unzip, peak RSS growth plus the inflating child's peak under 64 MB; CPU time
counts the child's too.

Run: ``python benchmarks/bench_p5_report_download.py [--quick]``.
"""

from __future__ import annotations

import http.server
import json
import os
import random
import shutil
import tempfile
import threading
import zipfile
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
from benchmarks._bench_memory import ChildPeak, hwm_mb, reset_hwm


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
with ChildPeak() as inflating:
    result = hook.download_report(status.download_url, destination, request_id=request_id)
provider_s = time.perf_counter() - started
growth = hwm_mb() - before
child_peak = inflating.peak_mb
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
                  "rss_growth_mb": growth, "child_peak_mb": child_peak, "hwm_reset": reset_ok,
                  "unzip_tool": bool(unzip)}))
"""


STATIC_CHILD = r"""
import json, os, shutil, statistics, subprocess, sys, time, zipfile
import httpx
from airflow_provider_msads.reporting.download import download_report

url, out_dir = sys.argv[1], sys.argv[2]
from benchmarks._bench_memory import ChildPeak, hwm_mb, reset_hwm


curl, unzip = shutil.which("curl"), shutil.which("unzip")
provider, baseline, growth, rows, child_peak = [], [], [], 0, 0.0
provider_cpu, baseline_cpu = [], []
for _ in range(3):
    destination = os.path.join(out_dir, "report.csv")
    reset_ok = reset_hwm()
    before = hwm_mb()
    cpu = os.times()
    started = time.perf_counter()
    with ChildPeak() as inflating:
        rows = download_report(url, destination).rows
    provider.append(time.perf_counter() - started)
    after = os.times()
    fields = ("user", "system", "children_user", "children_system")  # the inflating child's too
    provider_cpu.append(sum(getattr(after, k) - getattr(cpu, k) for k in fields))
    growth.append(hwm_mb() - before)
    child_peak = max(child_peak, inflating.peak_mb)
    os.unlink(destination)

    zip_path, unzipped = os.path.join(out_dir, "baseline.zip"), os.path.join(out_dir, "unzipped")
    cpu = os.times()
    started = time.perf_counter()
    if curl:
        subprocess.run([curl, "-sS", "-f", "-o", zip_path, url], check=True)
    else:
        with httpx.Client(timeout=600) as client, client.stream("GET", url) as response, open(zip_path, "wb") as f:
            for chunk in response.iter_bytes(1024 * 1024):
                f.write(chunk)
    if unzip:
        subprocess.run([unzip, "-q", "-o", zip_path, "-d", unzipped], check=True)
    else:
        zipfile.ZipFile(zip_path).extractall(unzipped)
    baseline.append(time.perf_counter() - started)
    after = os.times()
    fields = ("user", "system", "children_user", "children_system")
    baseline_cpu.append(sum(getattr(after, k) - getattr(cpu, k) for k in fields))
    shutil.rmtree(unzipped)
    os.unlink(zip_path)
print(json.dumps({"rows": rows, "provider_s": statistics.median(provider), "baseline_s": statistics.median(baseline),
                  "provider_all": provider, "baseline_all": baseline, "rss_growth_mb": max(growth),
                  "child_peak_mb": child_peak,
                  "provider_cpu_s": statistics.median(provider_cpu), "baseline_cpu_s": statistics.median(baseline_cpu),
                  "hwm_reset": reset_ok, "curl": bool(curl), "unzip": bool(unzip)}))
"""


def run(quick: bool = False) -> dict[str, Any]:
    result = _emulator_run(quick)
    result.update(_static_run(quick))
    return result


def _emulator_run(quick: bool) -> dict[str, Any]:
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
        "child_peak_mb": round(figures["child_peak_mb"], 1),
        "goal_rss_growth_mb": 64,
        "goal_met": figures["rss_growth_mb"] + figures["child_peak_mb"] < 64,
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
            (
                "peak RSS growth + inflating child's peak",
                f"{figures['rss_growth_mb']:.1f} + {figures['child_peak_mb']:.1f} MB  (goal: < 64 MB)",
            ),
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


def static_zip(csv_bytes: int) -> str:
    """A report-like zip of about ``csv_bytes`` of CSV (built once, kept in the temp folder):
    a column row, then rows with varied ids, names and figures, deflated at zip's usual level."""
    path = os.path.join(tempfile.gettempdir(), f"msads-bench-p5-static-{csv_bytes}.zip")
    if os.path.exists(path):
        return path
    rng = random.Random(5)
    names = ["Shoes", "Boots", "Red", "Summer sale", "Brand", "Exact", "Running", "Kids", "Winter", "Outlet"]
    rows = []
    for i in range(40_000):
        rows.append(
            f'"2026-10-{i % 28 + 1:02d}","{rng.randrange(10**8)}","{rng.randrange(10**9)}",'
            f'"{rng.choice(names)} {rng.choice(names)} {rng.randrange(1000)}","{rng.randrange(100000)}",'
            f'"{rng.randrange(5000)}","{rng.randrange(10**6) / 100:.2f}"\r\n'
        )
    block = "".join(rows).encode()
    header = ('"' + '","'.join(COLUMNS) + '"\r\n').encode()
    partial = path + f".{os.getpid()}.part"
    with (
        zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
        archive.open("report.csv", "w", force_zip64=True) as entry,
    ):
        entry.write(b"\xef\xbb\xbf" + header)
        for _ in range(max(csv_bytes // len(block), 1)):
            entry.write(block)
    os.replace(partial, path)
    return path


class _Static(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_on_disk = ""

    def do_GET(self) -> None:
        size = os.path.getsize(self.path_on_disk)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        with open(self.path_on_disk, "rb") as handle:
            self.connection.sendfile(handle)

    def log_message(self, *args: Any) -> None:
        return


def _static_run(quick: bool) -> dict[str, Any]:
    zip_path = static_zip((8 if quick else 400) * 1024 * 1024)
    handler = type("Static", (_Static,), {"path_on_disk": zip_path})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    out_dir = tempfile.mkdtemp(prefix="msads-bench-p5-")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/report.zip?sig=static"
        line = common.run_child(["-c", STATIC_CHILD, url, out_dir], common.child_env(), timeout=1800)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(out_dir, ignore_errors=True)
    figures = dict(json.loads(line))
    with zipfile.ZipFile(zip_path) as archive:
        csv_mb = archive.infolist()[0].file_size / 1024 / 1024
    zip_mb = os.path.getsize(zip_path) / 1024 / 1024
    speedup = figures["baseline_s"] / figures["provider_s"]
    tools = (
        ("curl" if figures["curl"] else "httpx (no curl here)")
        + " + "
        + ("unzip" if figures["unzip"] else "zipfile (no unzip here)")
    )
    rate = csv_mb / figures["provider_s"]
    rounds = zip(figures["provider_all"], figures["baseline_all"], strict=True)
    common.report(
        f"P5 static zip from loopback, {csv_mb:.0f} MB of CSV (zip {zip_mb:.0f} MB), median of 3 rounds",
        [
            ("download_report() to a local file", f"{figures['provider_s']:.2f} s  = {rate:.0f} MB/s"),
            (f"baseline: {tools} to disk", f"{figures['baseline_s']:.2f} s"),
            ("speed-up baseline / provider", f"{speedup:.2f}x  (goal >= 1.2x)"),
            (
                "peak RSS growth + inflating child's peak",
                f"{figures['rss_growth_mb']:.1f} + {figures['child_peak_mb']:.1f} MB  (goal: < 64 MB)",
            ),
            ("rounds (provider | baseline)", " ".join(f"{p:.2f}|{b:.2f}" for p, b in rounds)),
            (
                "CPU time (provider | baseline)",
                f"{figures['provider_cpu_s']:.2f} s | {figures['baseline_cpu_s']:.2f} s  (load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
            ),
        ],
    )
    return {
        "static_csv_mb": round(csv_mb, 1),
        "static_zip_mb": round(zip_mb, 1),
        "static_rows": figures["rows"],
        "static_provider_s": round(figures["provider_s"], 2),
        "static_baseline_s": round(figures["baseline_s"], 2),
        "static_baseline_tools": tools,
        "static_speedup_baseline_to_provider": round(speedup, 2),
        "static_goal_speedup": 1.2,
        "static_speedup_goal_met": speedup >= 1.2,
        "static_rss_growth_mb": round(figures["rss_growth_mb"], 1),
        "static_child_peak_mb": round(figures["child_peak_mb"], 1),
        "static_rss_goal_met": figures["rss_growth_mb"] + figures["child_peak_mb"] < 64,
        "static_provider_cpu_s": round(figures["provider_cpu_s"], 2),
        "static_baseline_cpu_s": round(figures["baseline_cpu_s"], 2),
        "load_average": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    common.main(run)
