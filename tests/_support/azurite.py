"""An Azure Blob Storage emulator for tests: Microsoft's Azurite (npm package ``azurite``, the blob
service only), which `make test-azure` installs into the .venv-azure folder and the test itself
starts on a free loopback port, in memory, and stops after.

Airflow reaches it through a ``wasb`` connection whose extra carries a connection string (account
``devstoreaccount1``, Azurite's well-known key, the blob endpoint); ``abfs://<conn_id>@<container>/
<path>`` then goes through ObjectStoragePath, the microsoft-azure provider's fs and adlfs like a
real storage account. The test's own looks at the account use the Azure SDK directly.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .local_servers import free_port, stop_process, wait_answering

#: Azurite's account and its well-known key (published in Azurite's README; it guards nothing).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#: Where `make test-azure` puts Azurite: inside the venv that runs these tests.
AZURITE = Path(sys.prefix) / "azurite" / "node_modules" / ".bin" / "azurite-blob"


@dataclass
class AzureServer:
    """A running Azurite and the names a test needs to reach it."""

    endpoint_url: str  # the blob endpoint, account included: http://127.0.0.1:<port>/devstoreaccount1
    process: subprocess.Popen[bytes]
    workspace: str
    conn_id: str = "wasb_default"
    _service: Any = field(default=None, repr=False)

    def connection_string(self, sas: str | None = None) -> str:
        if sas is not None:
            return f"BlobEndpoint={self.endpoint_url};SharedAccessSignature={sas}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint_url};"
        )

    def connection(self, sas: str | None = None, **extra: Any) -> dict[str, Any]:
        """A ``wasb`` connection (AIRFLOW_CONN_* JSON form) for this server: the account key, or a SAS."""
        return {"conn_type": "wasb", "extra": {"connection_string": self.connection_string(sas), **extra}}

    def write_only_sas(self, container: str) -> str:
        """A SAS that may create and write blobs in ``container`` but not look at it (no read, no list)."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        return generate_container_sas(
            ACCOUNT,
            container,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(write=True, create=True),
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
        )

    # The test's own look at the account, through the Azure SDK (not the code under test).

    @property
    def service(self) -> Any:
        if self._service is None:
            from azure.storage.blob import BlobServiceClient

            self._service = BlobServiceClient.from_connection_string(self.connection_string())
        return self._service

    def create_container(self, name: str) -> str:
        self.service.create_container(name)
        return name

    def containers(self) -> set[str]:
        return {item.name for item in self.service.list_containers()}

    def blobs(self, container: str) -> dict[str, int]:
        """Committed blobs (what a reader sees) and their sizes."""
        return {item.name: item.size for item in self.service.get_container_client(container).list_blobs()}

    def read(self, container: str, name: str) -> bytes:
        return bytes(self.service.get_blob_client(container, name).download_blob().readall())

    def uncommitted_blocks(self, container: str, name: str) -> list[int]:
        """Sizes of the blocks staged for ``name`` and not committed (none when nothing was staged)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            _, uncommitted = self.service.get_blob_client(container, name).get_block_list("uncommitted")
        except ResourceNotFoundError:
            return []
        return [block.size for block in uncommitted]

    def url(self, container: str, path: str) -> str:
        return f"abfs://{self.conn_id}@{container}/{path}"

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.workspace, ignore_errors=True)


def start_azurite(timeout: float = 60.0) -> AzureServer:
    """Start Azurite's blob service on a free loopback port and wait until it answers."""
    if not AZURITE.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE}: run `make test-azure` (it installs it with npm).")
    port = free_port()
    workspace = tempfile.mkdtemp(prefix="msads-azurite-")
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",  # the blobs stay in memory (no --location then: run in a temp folder)
            "--skipApiVersionCheck",  # the SDK may be newer than the Azurite of the pin
            "--disableTelemetry",  # no call to anything but loopback
            "--silent",
        ],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = AzureServer(endpoint_url=f"http://127.0.0.1:{port}/{ACCOUNT}", process=process, workspace=workspace)
    wait_answering(process, f"http://127.0.0.1:{port}/", "azurite", server.stop, timeout)
    return server


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureServer]:
    server = start_azurite()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def azure_conn(azure_server: AzureServer, monkeypatch: pytest.MonkeyPatch) -> AzureServer:
    """``wasb_default`` points at Azurite (as an environment connection)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{azure_server.conn_id.upper()}", json.dumps(azure_server.connection()))
    # The SDK logs every request's headers at INFO (redacted, but hundreds of lines per report).
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    return azure_server
