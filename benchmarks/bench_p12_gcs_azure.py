"""P12: a finished report uploaded to Google Cloud Storage and to Azure Blob Storage, against each
store's own Airflow provider: throughput and peak RSS growth of each uploading child.

* GCS (gcp-storage-emulator in its own process on loopback, as in the tests; ``.venv-gcs``): the
  provider's ``publish_to_object_storage()`` to ``gs://`` (ObjectStoragePath, gcsfs: a resumable
  upload in 8 MiB chunks straight to the final name, finalized at the end) against the google
  provider's ``GCSHook.upload()`` (google-cloud-storage; it finds the emulator through
  ``STORAGE_EMULATOR_HOST``), with its default 100 MiB chunks and with 8 MiB ones like ours: the
  emulator rewrites the whole upload so far for each chunk it receives (quadratic in the number
  of chunks), so the number of chunks decides the time here more than the client does.
* Azure (Microsoft's Azurite, blob service in memory on loopback; ``.venv-azure``): the provider's
  ``publish_to_object_storage()`` to ``abfs://`` (staged 8 MiB blocks, two in flight, one Put Block
  List), what it did before (adlfs's file under a hidden name, then a move: a server-side copy
  and a delete), and the azure provider's ``WasbHook.load_file()`` (the Azure SDK's
  ``upload_blob`` with its defaults).

Each upload runs in a fresh child process, which reports its time and its peak RSS growth
during the upload (Linux ``VmHWM`` after ``clear_refs``). Each store's part runs in that store's
venv (built by ``make test-gcs`` and ``make test-azure``), so this benchmark is not in ``run.py``:

    .venv/bin/python benchmarks/bench_p12_gcs_azure.py [--quick] [--json out.json] [--mb N]

(1 GB by default, 32 MB with ``--quick``, N MB with ``--mb``; ``--only gcs|azure`` for one store.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENVS = {"gcs": REPO_ROOT / ".venv-gcs", "azure": REPO_ROOT / ".venv-azure"}
MAKE = {"gcs": "make test-gcs", "azure": "make test-azure"}
CONTAINER = "bench-p12"

_MEASURE = r"""
import json, os, sys, time
from benchmarks._bench_memory import hwm_mb, reset_hwm

def measure(upload):
    reset_ok = reset_hwm()
    before = hwm_mb()
    started = time.perf_counter()
    upload()
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rss_growth_mb": hwm_mb() - before, "hwm_reset": reset_ok}))
"""

GCS_CHILD = (
    _MEASURE
    + r"""
mode, local, bucket, key = sys.argv[1:5]
import gcsfs.core, google.cloud.storage  # imported before measuring: the upload's memory, not the imports
from airflow.providers.google.cloud.hooks.gcs import GCSHook
from airflow_provider_msads.hooks.msads import publish_to_object_storage

if mode.startswith("GCSHook.upload"):
    chunk = 8 * 1024 * 1024 if "8 MiB" in mode else None  # None: google-cloud-storage's 100 MiB
    measure(lambda: GCSHook(gcp_conn_id="google_cloud_default").upload(bucket, key, filename=local, chunk_size=chunk))
else:
    measure(lambda: publish_to_object_storage(local, f"gs://google_cloud_default@{bucket}/{key}"))
"""
)
GCS_MODES = ["provider", "GCSHook.upload, 8 MiB chunks", "GCSHook.upload"]

AZURE_CHILD = (
    _MEASURE
    + r"""
mode, local, container, key = sys.argv[1:5]
import adlfs, azure.storage.blob, azure.storage.blob.aio  # imported before measuring
from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
from airflow_provider_msads.hooks.msads import publish_to_object_storage
from airflow_provider_msads.reporting import azure

if mode.startswith("before"):  # adlfs's file under a hidden name, then fs.mv (the generic path)
    azure.is_blob_fs = lambda fs: False
if mode == "WasbHook.load_file":
    measure(lambda: WasbHook(wasb_conn_id="wasb_default").load_file(local, container, key, overwrite=True))
else:
    measure(lambda: publish_to_object_storage(local, f"abfs://wasb_default@{container}/{key}"))
"""
)
AZURE_MODES = ["provider", "before: hidden name, then move", "WasbHook.load_file"]


def _write_file(path: str, size: int) -> None:
    """CSV-looking bytes (the content does not matter to an upload; random would cost time)."""
    row = b'"2026-10-01","123456789","987654321","Campaign name","12345","678","90.12"\r\n'
    block = row * (1024 * 1024 // len(row))
    with open(path, "wb") as out:
        written = 0
        while written < size:
            out.write(block)
            written += len(block)


def _slug(mode: str) -> str:
    return re.sub(r"\W+", "_", mode).strip("_").lower()


def _part_gcs(local: str) -> dict[str, dict[str, Any]]:
    import _bench_common as common

    from tests._support.gcs import start_gcs_server

    server = start_gcs_server()
    figures: dict[str, dict[str, Any]] = {}
    try:
        server.create_bucket(CONTAINER)
        env = common.child_env(
            {
                "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(server.connection()),
                "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",  # see tests/_support/gcs.py
                "STORAGE_EMULATOR_HOST": server.endpoint_url,  # google-cloud-storage (GCSHook)
                "NO_GCE_CHECK": "True",
            }
        )
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        for mode in GCS_MODES:
            key = f"p12/{_slug(mode)}.csv"
            line = common.run_child(["-c", GCS_CHILD, mode, local, CONTAINER, key], env, timeout=3600)
            figures[mode] = dict(json.loads(line))
            size = server.objects(CONTAINER).get(key)
            assert size == os.path.getsize(local), (mode, size)
    finally:
        server.stop()
    return figures


def _part_azure(local: str) -> dict[str, dict[str, Any]]:
    import _bench_common as common

    from tests._support.azurite import start_azurite

    server = start_azurite()
    figures: dict[str, dict[str, Any]] = {}
    try:
        server.create_container(CONTAINER)
        env = common.child_env({"AIRFLOW_CONN_WASB_DEFAULT": json.dumps(server.connection())})
        for mode in AZURE_MODES:
            key = f"p12/{_slug(mode)}.csv"
            line = common.run_child(["-c", AZURE_CHILD, mode, local, CONTAINER, key], env, timeout=3600)
            figures[mode] = dict(json.loads(line))
            blobs = server.blobs(CONTAINER)
            assert blobs == {key: os.path.getsize(local)}, (mode, blobs)  # whole, and nothing else left
            server.service.get_blob_client(CONTAINER, key).delete_blob()  # Azurite keeps blobs in memory
    finally:
        server.stop()
    return figures


def part(store: str, size: int) -> None:
    """One store's uploads, in that store's venv; prints its figures as one JSON line."""
    sys.path[:0] = [str(BENCH_DIR), str(REPO_ROOT)]
    folder = tempfile.mkdtemp(prefix="msads-bench-p12-")
    try:
        local = os.path.join(folder, "report.csv")
        _write_file(local, size)
        figures = _part_gcs(local) if store == "gcs" else _part_azure(local)
        print(json.dumps({"bytes": os.path.getsize(local), "figures": figures}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(quick: bool = False, mb: int | None = None, only: str | None = None) -> dict[str, Any]:
    import _bench_common as common

    size_mb = mb or (32 if quick else 1024)
    result: dict[str, Any] = {}
    for store, venv in VENVS.items():
        if only and store != only:
            continue
        python = venv / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{venv.name} is missing: build it with `{MAKE[store]}` first.")
        answer = subprocess.run(
            [str(python), __file__, "--part", store, str(size_mb * 1024 * 1024)],
            capture_output=True,
            text=True,
            cwd=str(REPO_ROOT),
            env=common.child_env(),
            timeout=7200,
            check=False,
        )
        if answer.returncode != 0:
            raise RuntimeError(f"the {store} part failed ({answer.returncode}):\n{answer.stderr[-3000:]}")
        data = json.loads(answer.stdout.strip().splitlines()[-1])
        file_mb = data["bytes"] / 1024 / 1024
        modes = GCS_MODES if store == "gcs" else AZURE_MODES
        rows = []
        result[f"{store}_file_mb"] = round(file_mb, 1)
        for mode in modes:
            f = data["figures"][mode]
            key = f"{store}_{_slug(mode)}"
            result[f"{key}_s"] = round(f["seconds"], 2)
            result[f"{key}_mb_per_s"] = round(file_mb / f["seconds"], 1)
            result[f"{key}_rss_growth_mb"] = round(f["rss_growth_mb"], 1)
            rows.append(
                (
                    mode,
                    f"{f['seconds']:.2f} s = {file_mb / f['seconds']:.1f} MB/s, peak RSS +{f['rss_growth_mb']:.1f} MB",
                )
            )
        theirs = modes[-1]
        ratio = data["figures"]["provider"]["seconds"] / data["figures"][theirs]["seconds"]
        result[f"{store}_ratio_provider_to_hook"] = round(ratio, 2)
        result[f"{store}_hwm_reset"] = all(f["hwm_reset"] for f in data["figures"].values())
        rows.append((f"ratio provider / {theirs}", f"{ratio:.2f}"))
        where = "gcp-storage-emulator" if store == "gcs" else "Azurite"
        common.report(f"P12 upload of {file_mb:.0f} MB to {where} (loopback)", rows)
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--part":
        part(sys.argv[2], int(sys.argv[3]))
        return
    import argparse

    sys.path.insert(0, str(BENCH_DIR))
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that it runs, figures are rough")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--mb", type=int, help="the file's size in MB")
    parser.add_argument("--only", choices=sorted(VENVS), help="one store")
    args = parser.parse_args()
    figures = run(quick=args.quick, mb=args.mb, only=args.only)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
