"""Starting the stand-ins for object stores (moto for S3, gcp-storage-emulator for GCS): one way to
wait until a server started on a free loopback port answers (a unique module name, unlike conftest)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx

from .api_server import free_port

__all__ = ["free_port", "stop_process", "wait_answering"]


def wait_answering(
    process: subprocess.Popen[bytes], url: str, name: str, stop: Callable[[], object], timeout: float
) -> None:
    """Return once ``url`` answers at all; raise naming ``name`` if the process exits or ``timeout``
    seconds pass (``stop`` is called first)."""
    deadline = time.monotonic() + timeout
    while True:  # readiness, not timing: the first answer ends the wait
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                stop()
                raise RuntimeError(f"{name} did not answer in time") from None
            time.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server, killing it if it has not stopped after 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
