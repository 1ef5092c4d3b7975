"""A Google Cloud Storage emulator for tests: gcp-storage-emulator (pure Python, from PyPI), started
by the test itself on a free loopback port, in a child process of its own.

Airflow reaches it through a ``google_cloud_platform`` connection whose extra carries
``gcs.endpoint`` (the google provider's ObjectStoragePath option for a GCS-compatible endpoint)
and anonymous credentials; ``gs://<conn_id>@<bucket>/<key>`` then goes through ObjectStoragePath,
the google provider's fs and gcsfs like a real bucket.

Two additions to the emulator, both on the real service's terms (nothing about our client):

* **cancelling a resumable upload**: GCS cancels a session on ``DELETE`` of its session URI and
  answers 499 (https://cloud.google.com/storage/docs/performing-resumable-uploads#cancel-upload);
  the emulator answers 501 and keeps the session;
* **a look at open resumable sessions** (``GET /_msads/uploads``, internal like the emulator's own
  ``/wipe``): what S3 tests read with ListMultipartUploads, which GCS has no API for.

gcsfs (2026.x) asks a bucket's storage layout over gRPC before using it, which no emulator serves
(each ask would wait 60 s): the tests use gcsfs's plain file system, as gcsfs does itself when the
answer is "unknown" (``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from .local_servers import free_port, stop_process, wait_answering

PROJECT = "msads-test-project"

#: The emulator, its two additions, and a counter of bucket creations, run with ``python -c``.
_LAUNCHER = r"""
import sys
import types
from http import HTTPStatus

from gcp_storage_emulator import server
from gcp_storage_emulator.storage import RESUMABLE_DIR

CANCELLED = types.SimpleNamespace(value=499, phrase="Client Closed Request")


def cancel_upload(request, response, storage, *args, **kwargs):
    upload_id = (request.query.get("upload_id") or [""])[0]
    if upload_id not in storage.resumable:
        response.status = HTTPStatus.NOT_FOUND
        return
    storage.delete_resumable_file_obj(upload_id)
    storage._delete_file(RESUMABLE_DIR, storage.safe_id(upload_id))
    storage._write_config_to_file()
    response.status = CANCELLED


def open_uploads(request, response, storage, *args, **kwargs):
    response.json({"uploads": sorted(f"{o['bucket']}/{o['name']}" for o in storage.resumable.values())})


handlers = []
for regex, methods in server.HANDLERS:
    if regex.startswith("^/upload/") and regex.endswith("/o$"):
        methods = {**methods, "DELETE": cancel_upload}
    handlers.append((regex, methods))
server.HANDLERS = (("^/_msads/uploads$", {"GET": open_uploads}), *handlers)

host, port = sys.argv[1], int(sys.argv[2])
server.create_server(host, port, in_memory=True).run()
"""


@dataclass
class GCSServer:
    """A running emulator and the names a test needs to reach it."""

    endpoint_url: str
    process: subprocess.Popen[bytes]
    conn_id: str = "google_cloud_default"

    def connection(self) -> dict[str, Any]:
        """A ``google_cloud_platform`` connection (AIRFLOW_CONN_* JSON form) pointing at this server."""
        return {
            "conn_type": "google_cloud_platform",
            "extra": {"project": PROJECT, "is_anonymous": True, "gcs.endpoint": self.endpoint_url},
        }

    # The test's own look at the store, over the JSON API (not the code under test).

    def _get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.endpoint_url + path, params=params, timeout=30.0)

    def create_bucket(self, name: str) -> str:
        answer = httpx.post(
            f"{self.endpoint_url}/storage/v1/b", params={"project": PROJECT}, json={"name": name}, timeout=30.0
        )
        answer.raise_for_status()
        return name

    def buckets(self) -> set[str]:
        answer = self._get("/storage/v1/b", project=PROJECT)
        answer.raise_for_status()
        return {item["name"] for item in answer.json().get("items", [])}

    def objects(self, bucket: str) -> dict[str, int]:
        answer = self._get(f"/storage/v1/b/{bucket}/o")
        answer.raise_for_status()
        return {item["name"]: int(item["size"]) for item in answer.json().get("items", [])}

    def read(self, bucket: str, name: str) -> bytes:
        answer = self._get(f"/download/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}", alt="media")
        answer.raise_for_status()
        return answer.content

    def open_uploads(self) -> list[str]:
        """``bucket/name`` of every resumable upload session still open."""
        answer = self._get("/_msads/uploads")
        answer.raise_for_status()
        return list(answer.json()["uploads"])

    def url(self, bucket: str, key: str) -> str:
        return f"gs://{self.conn_id}@{bucket}/{key}"

    def stop(self) -> None:
        stop_process(self.process)


def start_gcs_server(timeout: float = 30.0) -> GCSServer:
    """Start the emulator on a free loopback port and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = GCSServer(endpoint_url=f"http://127.0.0.1:{port}", process=process)
    wait_answering(process, server.endpoint_url + "/", "gcp-storage-emulator", server.stop, timeout)
    return server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    server = start_gcs_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gcs_conn(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> GCSServer:
    """``google_cloud_default`` points at the emulator (as an environment connection)."""
    import gcsfs
    import gcsfs.core

    monkeypatch.setenv(f"AIRFLOW_CONN_{gcs_server.conn_id.upper()}", json.dumps(gcs_server.connection()))
    # The plain gcsfs file system (see the module's docstring), here and in child processes.
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    monkeypatch.setattr(gcsfs, "GCSFileSystem", gcsfs.core.GCSFileSystem)
    # google-auth must not pick up a developer's real credentials, nor look for a metadata server.
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    return gcs_server
