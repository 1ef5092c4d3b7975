"""An S3-compatible server for tests: moto's server mode, started by the test itself.

moto runs in a child process (its own interpreter, so its memory and CPU do not blur the
measurements of the process under test) on a free loopback port. Airflow reaches it through an
``aws`` connection whose extra carries ``endpoint_url``, exactly as a MinIO or Ceph user would
configure it; ``s3://<conn_id>@<bucket>/<key>`` then goes through ObjectStoragePath, s3fs and the
amazon provider like a real bucket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .local_servers import free_port, stop_process, wait_answering

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto S3 server and the names a test needs to reach it."""

    endpoint_url: str
    process: subprocess.Popen[bytes]
    conn_id: str = "aws_default"
    buckets: list[str] = field(default_factory=list)
    _client: Any = None

    def connection(self) -> dict[str, Any]:
        """An ``aws`` connection (AIRFLOW_CONN_* JSON form) pointing at this server."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def client(self) -> Any:
        """A plain boto3 client, for the test's own look at the bucket (not the code under test).

        It does not check response checksums: moto before 5.2 (the matrix's older Airflow
        versions resolve 5.1) answers GetObject of a multipart upload declared with CRC32 with
        the parts' composite checksum labelled as the whole object's, which botocore then
        refuses; boto3's own managed transfer gets the same refusal there. Tests compare the
        bytes with the local file instead.
        """
        import boto3
        from botocore.config import Config

        if self._client is None:
            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                region_name=REGION,
                config=Config(response_checksum_validation="when_required"),
            )
        return self._client

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def url(self, bucket: str, key: str) -> str:
        return f"s3://{self.conn_id}@{bucket}/{key}"

    def stop(self) -> None:
        stop_process(self.process)


def start_s3_server(timeout: float = 30.0) -> S3Server:
    """Start ``moto.server`` on a free loopback port and wait until it answers."""
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    server = S3Server(endpoint_url=f"http://127.0.0.1:{port}", process=process)
    wait_answering(process, server.endpoint_url + "/moto-api/", "moto.server", server.stop, timeout)
    return server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_conn(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``aws_default`` points at the moto server (as an environment connection, like production
    deployments that keep connections in a secrets backend)."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(s3_server.connection()))
    # botocore must not pick up a developer's real credentials or profile.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
