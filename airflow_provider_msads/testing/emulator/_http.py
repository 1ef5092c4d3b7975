"""HTTP plumbing: a threading stdlib server that turns requests into ``_dispatch`` calls and
executes the ``_Reply`` it gets back (answer, delay, or reset the connection).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from airflow_provider_msads.testing.emulator._catalogues import _HUGE_BODY_SIZE, _JSON, _MAX_BODY, _TEXT

if TYPE_CHECKING:
    from airflow_provider_msads.testing.emulator._facade import MicrosoftAdsEmulator

log = logging.getLogger("airflow_provider_msads.testing.emulator")


@dataclass
class _Reply:
    """What the HTTP layer should do: answer, answer after a delay, or reset the connection."""

    status: int
    body: bytes = b""
    content_type: str | None = _JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    reset: bool = False
    # A body too big to hold: called with a file-like writer, sent with chunked transfer encoding.
    stream: Callable[[BinaryIO], None] | None = None


class _ChunkedWriter(io.RawIOBase):
    """Chunked transfer encoding over the socket, 64 KiB per chunk, so memory stays flat.

    Writable but not seekable: ``zipfile`` then writes data descriptors instead of seeking back.
    """

    _CHUNK = 64 * 1024

    def __init__(self, wfile: io.BufferedIOBase) -> None:
        super().__init__()
        self._wfile = wfile
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self._buffer += view
        if len(self._buffer) >= self._CHUNK:
            self._emit()
        return len(view)

    def _emit(self) -> None:
        if self._buffer:
            self._wfile.write(b"%x\r\n" % len(self._buffer) + bytes(self._buffer) + b"\r\n")
            self._buffer.clear()

    def finish(self) -> None:
        self._emit()
        self._wfile.write(b"0\r\n\r\n")
        self._wfile.flush()


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _format_retry_after(seconds: float) -> str:
    """Retry-After in whole seconds when possible; fractions are kept so tests can stay fast."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _built_once(build: Callable[[], bytes]) -> Callable[[], bytes]:
    """``build`` runs once per process, under a lock: a big body that concurrent first callers share."""
    lock = threading.Lock()
    built: list[bytes] = []

    def get() -> bytes:
        with lock:
            if not built:
                built.append(build())
            return built[0]

    return get


@_built_once
def _huge_body() -> bytes:
    """An 8 MiB valid-JSON body: clients must cap what they read."""
    pad = _HUGE_BODY_SIZE - len(b'{"padding":""}')
    return b'{"padding":"' + b"A" * pad + b'"}'


# --------------------------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Translates HTTP to ``MicrosoftAdsEmulator._dispatch`` and executes its ``_Reply``."""

    protocol_version = "HTTP/1.1"  # keep-alive: benchmarks reuse connections like real clients
    server_version = "MicrosoftAdsEmulator"
    sys_version = ""
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add
        # ~40 ms to every keep-alive answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the stdlib request log prints the request line, query string included."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            return None
        if length < 0 or length > _MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        emulator = self.server.emulator
        stopping = emulator._stopping
        if stopping.is_set():
            self.close_connection = True
            return
        split = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(_Reply(400, b"Bad request body", _TEXT))
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            reply = emulator._dispatch(self.command, split.path, split.query, headers, body)
        except Exception:
            # Method and path only: the query string and body may hold (fake) secrets.
            log.exception("Microsoft Ads emulator failed on %s %s", self.command, split.path)
            reply = _Reply(500, _json_bytes({"error": "emulator_internal_error"}))
        delay = reply.delay + max(0.0, float(emulator.latency))
        if delay > 0 and stopping.wait(delay):
            self.close_connection = True  # stopped while waiting: close without answering
            return
        if reply.reset:
            self._reset()
            return
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            if reply.content_type is not None:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.stream is not None:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if self.command != "HEAD":
                    writer = _ChunkedWriter(self.wfile)
                    reply.stream(writer)  # type: ignore[arg-type]
                    writer.finish()
                return
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.body and self.command != "HEAD":
                self.wfile.write(reply.body)
        except OSError:  # the client gave up (timeouts, capped reads): nothing to answer to
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The read buffer holds a reference to the socket; drop it so close() really closes.
        self.rfile.close()
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler (timeout injection) must never block stop()
    request_queue_size = 256  # many benchmark processes connect at once
    block_on_close = False

    def __init__(self, address: tuple[str, int], emulator: MicrosoftAdsEmulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_all_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, capped reads, resets) are normal in fault tests.
        log.debug("Microsoft Ads emulator connection error from %s", client_address, exc_info=True)
