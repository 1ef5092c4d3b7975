"""P8: a 1 GB report into an S3-compatible server: the provider's whole path against curl + unzip +
``S3Hook.load_file()``, and the upload alone against ``S3Hook.load_file()``.

moto's S3 server runs in its own process on loopback (as in the tests); an ``aws`` connection
points at it through ``endpoint_url``. The report's zip (made here once: a CSV of varied rows,
deflated as Microsoft's are) is served statically from loopback by ``python -m http.server``, so
both sides download the same bytes and nothing is generated while they run. Each row runs in a
fresh child process, which reports its wall time, its own CPU seconds (all threads, plus curl's
and unzip's), and its peak RSS growth (Linux ``VmHWM`` after ``clear_refs``); this process adds
the CPU seconds moto's server spent meanwhile (``/proc/<pid>/stat``), because on a 2-core machine
client and server compete for the same cores:

* the provider: ``download_report()`` to ``s3://…`` (download, inflate, and the upload of parts
  while the report is still arriving, two 8 MiB parts in flight, completed at the end);
* the baseline: ``curl`` the zip to disk, ``unzip`` it, the amazon provider's
  ``S3Hook.load_file()`` (boto3's managed transfer: 8 MiB parts, 10 threads);
* the upload alone of the finished CSV: ``publish_to_object_storage()`` and ``S3Hook.load_file()``.

An unmeasured ``S3Hook.load_file()`` of the same size runs first: moto's first large upload costs it
much more CPU than the later ones (its heap grows), which otherwise lands on whichever row runs
first. Full size runs the rows twice and reports each row's best run.

Run: ``python benchmarks/bench_p8_object_store.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Any

import _bench_common as common

BUCKET = "bench-p8"
CHILD = r"""
import json, os, resource, subprocess, sys, time

mode, local, key, bucket, url, scratch = sys.argv[1:7]
import s3fs, aiobotocore, boto3  # imported before measuring: the upload's memory, not the imports
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow_provider_msads import reporting
from airflow_provider_msads.hooks.msads import publish_to_object_storage
from benchmarks._bench_memory import ChildPeak, hwm_mb, reset_hwm


def cpu():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


# Both clients are made before measuring, as a task makes them before the transfer (the operator
# checks the bucket before submitting): botocore's service model is ~20 MB of either one's growth.
from airflow_provider_msads.reporting.destinations import check_destination

check_destination(f"s3://aws_default@{bucket}/{key}")
s3hook = S3Hook(aws_conn_id="aws_default")
s3hook.get_conn()
reset_ok = reset_hwm()
before = hwm_mb()
cpu_before = cpu()
started = time.perf_counter()
steps = {}
if mode == "download_report":
    with ChildPeak() as inflating:  # the child process that inflates a big zip: its memory counts too
        reporting.download_report(url, f"s3://aws_default@{bucket}/{key}", publish=publish_to_object_storage,
                                  timeout=600)
    steps["child_peak_mb"] = inflating.peak_mb
elif mode == "curl_unzip_load_file":
    zip_path, folder = os.path.join(scratch, "report.zip"), os.path.join(scratch, "unzipped")
    subprocess.run(["curl", "-s", "-f", "-o", zip_path, url], check=True)
    steps["curl_s"] = time.perf_counter() - started
    subprocess.run(["unzip", "-q", "-o", zip_path, "-d", folder], check=True)
    steps["unzip_s"] = time.perf_counter() - started - steps["curl_s"]
    (name,) = os.listdir(folder)
    s3hook.load_file(os.path.join(folder, name), key=key, bucket_name=bucket, replace=True)
elif mode == "publish_to_object_storage":
    publish_to_object_storage(local, f"s3://aws_default@{bucket}/{key}")
else:
    s3hook.load_file(local, key=key, bucket_name=bucket, replace=True)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "cpu_s": cpu() - cpu_before, "rss_growth_mb": hwm_mb() - before,
                  "hwm_reset": reset_ok, **steps}))
"""
#: (mode, label): the rows, in the order they run.
ROWS = [
    ("download_report", "provider: download_report() to s3://"),
    ("curl_unzip_load_file", "baseline: curl + unzip + S3Hook.load_file()"),
    ("publish_to_object_storage", "upload alone: publish_to_object_storage()"),
    ("load_file", "upload alone: S3Hook.load_file()"),
]
COLUMNS = b'"TimePeriod","AccountId","CampaignId","CampaignName","Impressions","Clicks","Spend"\r\n'


def _write_report(csv_path: str, zip_path: str, size: int) -> None:
    """A CSV of varied rows (a 4 MiB block repeated: beyond deflate's 32 KiB window, so the zip's
    ratio is that of varied rows, about Microsoft's), and its zip at level 1 as the emulator's."""
    rng = random.Random(8)
    rows = []
    length = 0
    while length < 4 * 1024 * 1024:
        row = (
            f'"2026-10-{rng.randint(1, 31):02d}","{rng.randint(10**8, 10**9)}","{rng.randint(10**8, 10**9)}",'
            f'"Campaign {rng.randint(1, 99999)}","{rng.randint(0, 10**6)}","{rng.randint(0, 9999)}",'
            f'"{rng.random() * 1000:.2f}"\r\n'
        ).encode()
        rows.append(row)
        length += len(row)
    block = b"".join(rows)
    with open(csv_path, "wb") as out:
        out.write(COLUMNS)
        written = len(COLUMNS)
        while written < size:
            out.write(block)
            written += len(block)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.write(csv_path, "report.csv")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(quick: bool = False, size_mb: int | None = None, rounds: int | None = None) -> dict[str, Any]:
    from tests._support.local_servers import free_port, stop_process, wait_answering
    from tests._support.s3 import start_s3_server

    size = (size_mb or (32 if quick else 1024)) * 1024 * 1024
    rounds = rounds or (1 if quick else 2)
    server = start_s3_server()
    folder = tempfile.mkdtemp(prefix="msads-bench-p8-")
    served = os.path.join(folder, "served")
    os.makedirs(served)
    local, zipped = os.path.join(folder, "report.csv"), os.path.join(served, "report.zip")
    port = free_port()
    static = subprocess.Popen(
        [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", served, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/report.zip"
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode, _ in ROWS}
    try:
        wait_answering(static, url, "http.server", lambda: stop_process(static), 30.0)
        server.create_bucket(BUCKET)
        _write_report(local, zipped, size)
        size = os.path.getsize(local)
        conn = server.connection()
        # moto joins the parts of a 1 GB upload in memory when it is completed, which takes longer
        # than botocore's 60 s read timeout on a busy machine (and a retry then finds no upload).
        conn["extra"]["config_kwargs"] = {"read_timeout": 900, "retries": {"max_attempts": 1}}
        env = common.child_env({"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn)})
        for mode in ["warm-up"] + [mode for _ in range(rounds) for mode, _ in ROWS]:
            key = f"p8/{mode}.csv"
            scratch = tempfile.mkdtemp(dir=folder)
            server_cpu = _cpu_seconds(server.process.pid)
            child = ["-c", CHILD, mode, local, key, BUCKET, url, scratch]
            figures = dict(json.loads(common.run_child(child, env, timeout=1800)))
            figures["server_cpu_s"] = _cpu_seconds(server.process.pid) - server_cpu
            shutil.rmtree(scratch, ignore_errors=True)
            head = server.client().head_object(Bucket=BUCKET, Key=key)
            assert head["ContentLength"] == size, (mode, head["ContentLength"], size)
            server.client().delete_object(Bucket=BUCKET, Key=key)  # moto keeps objects in memory
            if mode in runs:
                runs[mode].append(figures)
    finally:
        stop_process(static)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return _summary(runs, size, os.getloadavg())


def _summary(runs: dict[str, list[dict[str, Any]]], size: int, load: tuple[float, float, float]) -> dict[str, Any]:
    mb = size / 1024 / 1024
    best = {mode: min(figures, key=lambda f: f["seconds"]) for mode, figures in runs.items()}
    result: dict[str, Any] = {
        "file_mb": round(mb, 1),
        "rounds": len(runs["load_file"]),
        "load_average_at_end": [round(x, 2) for x in load],
        "ratio_download_report_to_curl_unzip_load_file": round(
            best["download_report"]["seconds"] / best["curl_unzip_load_file"]["seconds"], 2
        ),
        "ratio_provider_to_s3hook": round(
            best["publish_to_object_storage"]["seconds"] / best["load_file"]["seconds"], 2
        ),
        "rss_growth_mb": round(best["download_report"]["rss_growth_mb"], 1),
        "inflating_child_peak_mb": round(best["download_report"]["child_peak_mb"], 1),
        "hwm_reset": all(f["hwm_reset"] for figures in runs.values() for f in figures),
    }
    rows = []
    for mode, label in ROWS:
        f = best[mode]
        slug = re.sub(r"\W+", "_", mode)
        result[f"{slug}_s"] = round(f["seconds"], 2)
        result[f"{slug}_all_s"] = [round(r["seconds"], 2) for r in runs[mode]]
        result[f"{slug}_cpu_s"] = round(f["cpu_s"], 2)
        result[f"{slug}_server_cpu_s"] = round(f["server_cpu_s"], 2)
        result[f"{slug}_rss_growth_mb"] = round(f["rss_growth_mb"], 1)
        steps = f" (curl {f['curl_s']:.1f} s, unzip {f['unzip_s']:.1f} s)" if "curl_s" in f else ""
        rows.append(
            (
                label,
                f"{f['seconds']:.2f} s{steps} = {mb / f['seconds']:.1f} MB/s; CPU {f['cpu_s']:.1f} s,"
                f" moto {f['server_cpu_s']:.1f} s; peak RSS +{f['rss_growth_mb']:.1f} MB"
                + (f" (+ inflating child {f['child_peak_mb']:.1f} MB)" if "child_peak_mb" in f else ""),
            )
        )
    rows.append(
        ("ratio download_report() / curl+unzip+load_file", f"{result['ratio_download_report_to_curl_unzip_load_file']}")
    )
    rows.append(("ratio upload alone, provider / S3Hook", f"{result['ratio_provider_to_s3hook']}"))
    rows.append(("load average at the end", " ".join(str(x) for x in result["load_average_at_end"])))
    title = f"P8 a {mb:.0f} MB report into moto's S3 server (loopback), best of {result['rounds']}"
    common.report(title, rows)
    return result


if __name__ == "__main__":
    common.main(run)
