"""P8: a finished 1 GB report uploaded to an S3-compatible server: throughput and peak RSS.

moto's S3 server runs in its own process on loopback (as in the tests); an ``aws`` connection
points at it through ``endpoint_url``. Each upload runs in a fresh child process, which reports
its time and its peak RSS growth during the upload (Linux ``VmHWM`` after ``clear_refs``):

* the provider: ``publish_to_object_storage()`` (ObjectStoragePath's s3fs client: a multipart
  upload straight to the final key, CRC32 declared, two 8 MiB parts in flight, completed at the end);
* what the provider did before, for the time: an uncommitted s3fs file, one 8 MiB part at a time
  (and no checksum declared: moto then builds a full-object checksum, copying the whole object);
* and before that, for the memory: an s3fs file with the default 50 MiB block;
* the baseline: the amazon provider's own ``S3Hook.load_file()`` (boto3's managed transfer,
  8 MiB parts, 10 threads).

Run: ``python benchmarks/bench_p8_object_store.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any

import _bench_common as common

BUCKET = "bench-p8"
CHILD = r"""
import json, os, sys, time

mode, local, key = sys.argv[1], sys.argv[2], sys.argv[3]
import s3fs, aiobotocore, boto3  # imported before measuring: the upload's memory, not the imports
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow_provider_msads.hooks.msads import publish_to_object_storage
from airflow_provider_msads.reporting import destinations


def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


if mode.startswith("before"):  # the s3fs file object, as the provider used it before
    destinations._is_s3fs = lambda fs: False
if mode == "before: s3fs file, 50 MiB block":
    destinations.UPLOAD_BLOCK_SIZE = 50 * 1024 * 1024
reset_ok = reset_hwm()
before = hwm_mb()
started = time.perf_counter()
if mode == "S3Hook.load_file":
    S3Hook(aws_conn_id="aws_default").load_file(local, key=key, bucket_name=sys.argv[4], replace=True)
else:
    publish_to_object_storage(local, f"s3://aws_default@{sys.argv[4]}/{key}")
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_growth_mb": hwm_mb() - before, "hwm_reset": reset_ok}))
"""
MODES = [
    "provider",
    "before: s3fs file, one 8 MiB part at a time",
    "before: s3fs file, 50 MiB block",
    "S3Hook.load_file",
]


def _write_file(path: str, size: int) -> None:
    """CSV-looking bytes (the content does not matter to an upload; random would cost time)."""
    row = b'"2026-10-01","123456789","987654321","Campaign name","12345","678","90.12"\r\n'
    block = row * (1024 * 1024 // len(row))
    with open(path, "wb") as out:
        written = 0
        while written < size:
            out.write(block)
            written += len(block)


def run(quick: bool = False) -> dict[str, Any]:
    from tests._support.s3 import start_s3_server

    size = (32 if quick else 1024) * 1024 * 1024
    server = start_s3_server()
    folder = tempfile.mkdtemp(prefix="msads-bench-p8-")
    local = os.path.join(folder, "report.csv")
    figures: dict[str, dict[str, Any]] = {}
    try:
        server.create_bucket(BUCKET)
        _write_file(local, size)
        size = os.path.getsize(local)
        conn = server.connection()
        # moto joins the parts of a 1 GB upload in memory when it is completed, which takes longer
        # than botocore's 60 s read timeout on a busy machine (and a retry then finds no upload).
        conn["extra"]["config_kwargs"] = {"read_timeout": 900, "retries": {"max_attempts": 1}}
        env = common.child_env({"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn)})
        for mode in MODES:
            key = "p8/" + re.sub(r"\W+", "-", mode) + ".csv"
            line = common.run_child(["-c", CHILD, mode, local, key, BUCKET], env, timeout=1800)
            figures[mode] = dict(json.loads(line))
            head = server.client().head_object(Bucket=BUCKET, Key=key)
            assert head["ContentLength"] == size, (mode, head["ContentLength"], size)
            server.client().delete_object(Bucket=BUCKET, Key=key)  # moto keeps objects in memory
    finally:
        server.stop()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    mb = size / 1024 / 1024
    ours, theirs = figures["provider"], figures["S3Hook.load_file"]
    result: dict[str, Any] = {
        "file_mb": round(mb, 1),
        "ratio_provider_to_s3hook": round(ours["seconds"] / theirs["seconds"], 2),
        "rss_growth_mb": round(ours["rss_growth_mb"], 1),
        "hwm_reset": all(f["hwm_reset"] for f in figures.values()),
    }
    rows = []
    for mode in MODES:
        f = figures[mode]
        slug = re.sub(r"\W+", "_", mode).strip("_").lower()
        result[f"{slug}_s"] = round(f["seconds"], 2)
        result[f"{slug}_mb_per_s"] = round(mb / f["seconds"], 1)
        result[f"{slug}_rss_growth_mb"] = round(f["rss_growth_mb"], 1)
        rows.append(
            (mode, f"{f['seconds']:.2f} s = {mb / f['seconds']:.1f} MB/s, peak RSS +{f['rss_growth_mb']:.1f} MB")
        )
    rows.append(("ratio provider / S3Hook.load_file", f"{result['ratio_provider_to_s3hook']:.2f}"))
    common.report(f"P8 upload of {mb:.0f} MB to moto's S3 server (loopback)", rows)
    return result


if __name__ == "__main__":
    common.main(run)
