"""Zips as zipfile writes them, in memory: sizes in the local header, or a data descriptor (an
unseekable target), zip64, stored or deflated, a second entry."""

from __future__ import annotations

import contextlib
import glob
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from typing import Any

DATA = b"".join(b'"2026-10-%02d","Campaign %d","%d"\r\n' % (i % 28 + 1, i, i * 7) for i in range(20_000))


class _Unseekable(io.RawIOBase):
    """Writable, not seekable: zipfile then writes a data descriptor after the entry's data."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def zip_bytes(
    data: bytes = DATA,
    *,
    name: str = "report.csv",
    method: int = zipfile.ZIP_DEFLATED,
    descriptor: bool = False,
    zip64: bool = False,
    more: dict[str, bytes] | None = None,
) -> bytes:
    target: io.RawIOBase | io.BytesIO = _Unseekable() if descriptor else io.BytesIO()
    with zipfile.ZipFile(target, "w", compression=method) as archive:  # type: ignore[arg-type]
        info = zipfile.ZipInfo(name, (2026, 10, 1, 0, 0, 0))
        info.compress_type = method
        with archive.open(info, "w", force_zip64=zip64) as entry:
            entry.write(data)
        for other, body in (more or {}).items():
            archive.writestr(other, body)
    return bytes(target.data) if isinstance(target, _Unseekable) else target.getvalue()


def inflating_children() -> list[str]:
    """Child processes of this one running the inflater program ("inflater <pid>"), and any child
    that ended without being waited for ("zombie <pid>": its command line is gone by then)."""
    found = []
    for path in glob.glob("/proc/self/task/*/children"):
        try:
            with open(path) as f:
                pids = f.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        found.append(f"zombie {pid}")
                        continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"_inflater.py" in f.read():
                        found.append(f"inflater {pid}")
            except OSError:
                continue
    return found


class _Blob(http.server.BaseHTTPRequestHandler):
    """A blob store on loopback: ``routes`` maps paths to bodies; a path starting with ``/cut``
    drops the connection half-way through its body."""

    protocol_version = "HTTP/1.1"
    routes: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = type(self).routes[self.path]
        cut = self.path.startswith("/cut")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may hang up mid-way: that is what is tested
            for start in range(0, len(body) // 2 if cut else len(body), 65536):
                self.wfile.write(body[start : start + 65536])
        if cut:
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        return


@contextlib.contextmanager
def serving(routes: dict[str, bytes]) -> Iterator[str]:
    """``routes`` served over a real loopback socket while inside: the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("B", (_Blob,), {"routes": routes}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
