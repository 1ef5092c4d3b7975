"""Helpers of the reliability suite (a unique module name, importable from the test files)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials, parse_credentials
from airflow_provider_msads.tokens.auth import TokenClient, ads_headers
from airflow_provider_msads.tokens.flow import RetryPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]
PYCACHE = str(Path(tempfile.gettempdir()) / f"msads-reliability-pycache-{os.getuid()}")

#: The production policy's shape (4 attempts, Retry-After honoured, bounded budget) with small
#: numbers, so that the fault matrix runs in seconds. No jitter: sleeps are exact.
FAST = RetryPolicy(
    attempts=4,
    backoff_base=0.01,
    backoff_max=0.02,
    max_retry_after=1.0,
    total_budget=3.0,
    jitter=False,
)
#: Client timeout of the matrix; injected "timeout" faults hold the answer far longer.
CLIENT_TIMEOUT = 0.25
SLOW_ANSWER = 3.0


def credentials_for(
    emulator: Any, conn_id: str = "msads_rel", refresh_token: str | None = None
) -> MicrosoftAdsCredentials:
    conn = emulator.connection_dict(refresh_token)
    return parse_credentials(conn_id=conn_id, login=conn["login"], password=conn["password"], extra=conn["extra"])


class SleepRecorder:
    """A ``sleep`` for TokenClient that records each pause (and really waits unless told not to)."""

    def __init__(self, real: bool = True) -> None:
        self.real = real
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if self.real:
            time.sleep(seconds)


def token_client(credentials: MicrosoftAdsCredentials, *, retry: RetryPolicy = FAST, **kwargs: Any) -> TokenClient:
    kwargs.setdefault("timeout", CLIENT_TIMEOUT)
    return TokenClient(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        endpoints=credentials.endpoints,
        retry=retry,
        **kwargs,
    )


class StaticAuth(httpx.Auth):
    """The Ads headers with a fixed access token and no refresh logic (to test the API layer alone)."""

    def __init__(self, credentials: MicrosoftAdsCredentials, access_token: str) -> None:
        self.headers = ads_headers(credentials, access_token)

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers.update(self.headers)
        yield request


class RecordingTransport(httpx.HTTPTransport):
    """Counts the bytes read off the socket and the time each request was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_read = 0
        self.sent_at: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_at.append(time.monotonic())
        response = super().handle_request(request)
        inner = response.stream
        outer = self

        class _Counted(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for chunk in inner:  # type: ignore[union-attr]
                    outer.bytes_read += len(chunk)
                    yield chunk

            def close(self) -> None:
                inner.close()  # type: ignore[union-attr]

        response.stream = _Counted()
        return response


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child Python: this checkout first on the path, no connections inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    # The venv here has no bytecode and PYTHONDONTWRITEBYTECODE is set: every child would compile
    # Airflow from source. A private cache outside the repo and the venv keeps children fast.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    if extra:
        env.update(extra)
    return env


def run_python(
    code: str, *, env: Mapping[str, str] | None = None, timeout: float = 120, args: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *(args or [])],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(env),
        cwd=str(REPO_ROOT),
        check=False,
    )


def secret_values(emulator: Any, conn: Mapping[str, Any]) -> dict[str, str]:
    """Every secret a leak must never show: the connection's three secrets and every issued token."""
    values = {
        "client_secret": str(conn["password"]),
        "developer_token": str(conn["extra"]["developer_token"]),
        "refresh_token": str(conn["extra"]["refresh_token"]),
    }
    for n, token in enumerate(emulator.issued_access_tokens):
        values[f"access_token[{n}]"] = token
    for n, token in enumerate(emulator.issued_refresh_tokens):
        values[f"refresh_token[{n}]"] = token
    return values


def find_secrets(text: str, secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets found in ``text`` (also their distinctive middle part, in case of cutting)."""
    hits = []
    for name, value in secrets.items():
        probes = {value}
        if len(value) >= 40:
            probes.add(value[len(value) // 2 - 12 : len(value) // 2 + 12])
        if any(p and p in text for p in probes):
            hits.append(name)
    return hits
