"""A faithful, local emulator of the Microsoft services this provider talks to.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, random port, daemon
thread) that answers like

* the Microsoft identity platform v2 endpoints ``/{tenant}/oauth2/v2.0/token`` and
  ``/{tenant}/oauth2/v2.0/authorize`` (refresh-token rotation, AADSTS error bodies, PKCE,
  single-use codes that expire), and
* the Microsoft Advertising Customer Management REST API v13 (``GetUser``, ``GetAccount``,
  ``GetAccountsInfo``) with its two fault shapes (``AdApiFaultDetail`` and ``ApiFault``).

Why an emulator and not mocks: the failures that break Microsoft Ads pipelines in production
(a rotated refresh token that was never saved, the secret *ID* pasted instead of its *value*, a
developer token for the wrong environment, 90 days of inactivity, throttling, resets) only show up
when the whole HTTP exchange is played for real. Tests, users' own DAG tests (through the
``msads_emulator`` pytest fixture), the demo and the benchmarks all use this one server; the
fidelity test suite checks it against Microsoft's own ``msads`` REST SDK.

Every credential the emulator mints is fake and only valid against this emulator. Nothing here
logs a token or a secret: the HTTP request log is silenced (the default one prints query
strings) and internal errors are logged with method and path only.

Import cost matters: the pytest plugin imports this module lazily, and the module itself uses
only the standard library (no Airflow, no third-party packages).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import html
import json
import logging
import random
import re
import secrets
import socket
import socketserver
import string
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = [
    "DEFAULT_SCOPE",
    "INJECTION_ENDPOINTS",
    "INJECTION_KINDS",
    "OPERATIONS",
    "PRODUCTION_SCOPE",
    "SANDBOX_DEVELOPER_TOKEN",
    "SANDBOX_SCOPE",
    "EmulatorAccount",
    "EmulatorApp",
    "MicrosoftAdsEmulator",
]

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Constants shared with tests and users
# --------------------------------------------------------------------------------------------

PRODUCTION_SCOPE: Final = "https://ads.microsoft.com/msads.manage"
"""The resource scope of the production Microsoft Advertising API."""
SANDBOX_SCOPE: Final = "https://si.ads.microsoft.com/msads.manage"
"""The resource scope the Microsoft SDK requests for the sandbox (login.microsoftonline.com)."""
DEFAULT_SCOPE: Final = f"{PRODUCTION_SCOPE} offline_access"
SANDBOX_DEVELOPER_TOKEN: Final = "BBD37VB98"
"""Microsoft's universal sandbox developer token: answered with 105 by the production API."""

OPERATIONS: Final = ("GetUser", "GetAccount", "GetAccountsInfo")
INJECTION_ENDPOINTS: Final = ("token", "authorize", "api")
INJECTION_KINDS: Final = (
    "aadsts",
    "oauth",
    "msa_invalid_grant",
    "fault",
    "status",
    "throttle",
    "html",
    "empty",
    "malformed",
    "huge",
    "reset",
    "timeout",
    "latency",
)

_RESOURCE_ENVIRONMENT: Final = {PRODUCTION_SCOPE: "production", SANDBOX_SCOPE: "sandbox"}
_OIDC_SCOPES: Final = frozenset({"offline_access", "openid", "profile", "email"})
# Authority aliases that are not a directory: a single-tenant app cannot be used through them.
_AUTHORITY_ALIASES: Final = frozenset({"common", "organizations", "consumers"})
_CM_PREFIX: Final = "/CustomerManagement/v13"
# Keys lowercased: the REST service routes paths case-insensitively.
_CM_PATHS: Final = {
    f"{_CM_PREFIX}/User/Query".lower(): "GetUser",
    f"{_CM_PREFIX}/Account/Query".lower(): "GetAccount",
    f"{_CM_PREFIX}/AccountsInfo/Query".lower(): "GetAccountsInfo",
}
_OAUTH_PATH: Final = re.compile(r"/([^/]+)/oauth2/v2\.0/(token|authorize)")
_MAX_BODY: Final = 16 * 1024 * 1024
_HUGE_BODY_SIZE: Final = 8 * 1024 * 1024
_JSON: Final = "application/json; charset=utf-8"
_HTML: Final = "text/html; charset=utf-8"
_NINETY_DAYS: Final = 90 * 24 * 3600.0
_MSA_INVALID_GRANT_TEXT: Final = (
    "The user could not be authenticated or the grant is expired. The user must first sign in "
    "and if needed grant the client application access to the requested scope."
)


# --------------------------------------------------------------------------------------------
# Error catalogues
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AadError:
    """One AADSTS code: the OAuth ``error`` string, the HTTP status and the message template."""

    error: str
    status: int
    message: str


# Texts follow Microsoft's wording where it is public; placeholders are filled per request.
# HTTP status: 400 for everything but invalid_client (401), as the reference prescribes.
# 50196 (request loop) has no documented token-endpoint shape: we answer 400
# "temporarily_unavailable" because the remedy is to back off, which is what clients do for it.
# 501481 is Microsoft's PKCE mismatch code; we also use it when code_verifier is missing.
_AADSTS: Final[dict[int, _AadError]] = {
    7000215: _AadError(
        "invalid_client",
        401,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client "
        "secret value, not the client secret ID, for a secret added to app '{client_id}'.",
    ),
    7000222: _AadError(
        "invalid_client",
        401,
        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal "
        "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
        "certificate credentials for added security: https://aka.ms/certCreds.",
    ),
    7000218: _AadError(
        "invalid_client",
        401,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
    70002: _AadError(
        "invalid_client", 401, "Error validating credentials. AADSTS50012: Invalid client secret provided."
    ),
    700016: _AadError(
        "unauthorized_client",
        400,
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This "
        "can happen if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You may have sent your authentication request to "
        "the wrong tenant.",
    ),
    50194: _AadError(
        "invalid_request",
        400,
        "Application '{client_id}'({app_name}) is not configured as a multi-tenant application. "
        "Usage of the /common endpoint is not supported for such applications created after "
        "'10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
    ),
    50011: _AadError(
        "invalid_grant",
        400,
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
        "configured for the application '{client_id}'. Make sure the redirect URI sent in the request "
        "matches one added to your application in the Azure portal. Navigate to "
        "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    ),
    70008: _AadError(
        "invalid_grant",
        400,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new "
        "interactive authorization request for this user and resource.",
    ),
    54005: _AadError(
        "invalid_grant",
        400,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
        "an existing refresh token.",
    ),
    700082: _AadError(
        "invalid_grant",
        400,
        "The refresh token has expired due to inactivity. The token was issued on {issued} and was "
        "inactive for 90.00:00:00.",
    ),
    50173: _AadError(
        "invalid_grant",
        400,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The "
        "user might have changed or reset their password. The grant was issued on '{issued}' and the "
        "TokensValidFrom date (before which tokens are not valid) for this user is '{now}'.",
    ),
    70043: _AadError(
        "invalid_grant",
        400,
        "The refresh token has expired or is invalid due to sign-in frequency checks by conditional "
        "access. The token was issued on {issued} and the maximum allowed lifetime for this request "
        "is 86400.",
    ),
    50076: _AadError(
        "invalid_grant",
        400,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must use multi-factor authentication to access 'https://ads.microsoft.com'.",
    ),
    50079: _AadError(
        "invalid_grant",
        400,
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must enroll in multi-factor authentication to access 'https://ads.microsoft.com'.",
    ),
    65001: _AadError(
        "invalid_grant",
        400,
        "The user or administrator has not consented to use the application with ID '{client_id}' "
        "named '{app_name}'. Send an interactive authorization request for this user and resource.",
    ),
    650052: _AadError(
        "invalid_client",
        401,
        "The app is trying to access a service 'https://ads.microsoft.com' (Microsoft Advertising API "
        "Service) that your organization '{tenant}' lacks a service principal for. Contact your IT "
        "Admin to review the configuration of your service subscriptions or consent to the "
        "application in order to create the required service principal.",
    ),
    70000: _AadError(
        "invalid_grant",
        400,
        "The request was denied because one or more scopes requested are unauthorized or expired. "
        "The user must first sign in and grant the client application access to the requested scope.",
    ),
    9002313: _AadError("invalid_grant", 400, "Invalid request. Request is malformed or invalid."),
    70011: _AadError(
        "invalid_scope",
        400,
        "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist.",
    ),
    50196: _AadError(
        "temporarily_unavailable",
        400,
        "The server terminated an operation because it encountered a client request loop. Please "
        "contact your app vendor.",
    ),
    501481: _AadError(
        "invalid_grant",
        400,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    ),
    900144: _AadError("invalid_request", 400, "The request body must contain the following parameter: '{parameter}'."),
    70003: _AadError("unsupported_grant_type", 400, "The app requested an unsupported grant type '{grant_type}'."),
    90002: _AadError(
        "invalid_request",
        400,
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may happen "
        "if there are no active subscriptions for the tenant.",
    ),
    900561: _AadError(
        "invalid_request", 400, "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
    ),
    900971: _AadError("invalid_request", 400, "No reply address provided."),
    700054: _AadError(
        "unsupported_response_type", 400, "response_type '{response_type}' is not enabled for the application."
    ),
    65004: _AadError("access_denied", 400, "User declined to consent to access the app."),
    50058: _AadError("login_required", 400, "A silent sign-in request was sent but no user is signed in."),
    90033: _AadError("temporarily_unavailable", 503, "A transient error has occurred. Please try again."),
    # Emulator's choice of number: Microsoft documents no code for an unknown challenge method.
    501491: _AadError("invalid_request", 400, "The code_challenge_method '{method}' is not supported."),
}

# authorize_error -> AADSTS code used for its description (when one is known).
_AUTHORIZE_ERROR_CODES: Final = {
    "access_denied": 65004,
    "consent_required": 65001,
    "interaction_required": 50076,
    "login_required": 50058,
    "temporarily_unavailable": 90033,
}


@dataclass(frozen=True)
class _Fault:
    """One Microsoft Advertising operation error: symbolic name, message, default HTTP status."""

    error_code: str
    message: str
    status: int
    api_fault: bool  # True: ApiFault/OperationErrors shape, False: AdApiFaultDetail/Errors shape


# HTTP statuses: Microsoft's REST SDK maps 400, 401, 403 and 500 to ApplicationFault, and the
# real statuses are unverified. We use 401 for the authentication faults (105, 109), 500 for
# InternalError and 400 otherwise. Customer Management OperationErrors carry no ErrorCode
# (Microsoft: "The BatchError and OperationError objects for Customer Billing and Customer
# Management services do not contain the ErrorCode element"), so ApiFault bodies omit it.
_FAULTS: Final[dict[int, _Fault]] = {
    0: _Fault(
        "InternalError",
        "An unidentified error has occurred. You may obtain additional information about this "
        "error by contacting Microsoft Advertising Support.",
        500,
        False,
    ),
    100: _Fault("NullRequest", "The request message is null.", 400, False),
    105: _Fault(
        "InvalidCredentials",
        "Authentication failed. Either supplied credentials are invalid or the account is inactive",
        401,
        False,
    ),
    106: _Fault("UserIsNotAuthorized", "The user is not authorized to perform this action.", 400, False),
    109: _Fault(
        "AuthenticationTokenExpired",
        "Authentication token expired. Please renew it or obtain a new authentication token.",
        401,
        False,
    ),
    116: _Fault(
        "RequestMissingHeaders", "One or more required header elements are missing from the request.", 400, False
    ),
    117: _Fault(
        "CallRateExceeded",
        "You have exceeded the number of calls that you are allowed to make in one minute. Please "
        "reduce the number of calls that you make per minute.",
        400,
        False,
    ),
    207: _Fault(
        "ConcurrentRequestOverLimit",
        "You have exceeded the number of concurrent requests allowed. Please reduce the number of concurrent requests.",
        400,
        False,
    ),
    1102: _Fault("InvalidAccountId", "The account ID is invalid.", 400, True),
    1490: _Fault("InvalidCustomerId", "The customer ID is invalid.", 400, True),
}


# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------


@dataclass
class EmulatorApp:
    """An Entra ID app registration, as the user creates it in step 1-2 of the setup guide.

    ``secret_id`` exists because users paste the secret's *ID* (a GUID) instead of its *value*;
    the token endpoint answers that with AADSTS7000215 like Microsoft does. Mutate the fields in a
    test (``emulator.app.multi_tenant = False``) to play a misconfigured registration.
    """

    client_id: str
    client_secret: str
    secret_id: str
    redirect_uris: list[str] = field(default_factory=lambda: ["http://localhost:8080"])
    multi_tenant: bool = True
    secret_expired: bool = False
    display_name: str = "Airflow Microsoft Ads (emulated)"


@dataclass
class EmulatorAccount:
    """A Microsoft Advertising account (ids are numeric strings, as the REST API writes them)."""

    id: str
    name: str
    number: str
    parent_customer_id: str
    status: str = "Active"
    currency_code: str = "USD"
    time_zone: str = "PacificTimeUSCanadaTijuana"


# --------------------------------------------------------------------------------------------
# Internal state records
# --------------------------------------------------------------------------------------------


@dataclass
class _RefreshToken:
    """A refresh token and its place in a rotation chain (``parent`` is its predecessor)."""

    token: str
    client_id: str
    resource: str  # the consented resource scope (production or sandbox)
    issued_at: float
    last_used: float
    parent: str | None = None
    revoked_code: int | None = None
    uses: int = 0


@dataclass
class _AccessToken:
    token: str
    client_id: str
    environment: str
    issued_at: float
    expires_at: float
    expired: bool = False
    revoked: bool = False


@dataclass
class _AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    resource: str
    offline_access: bool
    issued_at: float
    code_challenge: str | None
    code_challenge_method: str | None
    redeemed: bool = False


@dataclass
class _Injection:
    kind: str
    remaining: int
    status: int | None
    retry_after: float | None
    code: int | None
    body: bytes | None
    delay: float | None
    operation: str | None
    error: str | None


@dataclass
class _Reply:
    """What the HTTP layer should do: answer, answer after a delay, or reset the connection."""

    status: int
    body: bytes = b""
    content_type: str | None = _JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    reset: bool = False


class _Values(dict[str, str]):
    """Template values; an unknown placeholder renders empty instead of raising."""

    def __missing__(self, key: str) -> str:
        return ""


class _Random:
    """Random values: ``secrets`` by default, a seeded ``random.Random`` for reproducible runs."""

    def __init__(self, seed: int | None) -> None:
        # Not for cryptography: only makes an emulator's fake world reproducible on request.
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311

    def bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n) if self._rng is not None else secrets.token_bytes(n)

    def text(self, alphabet: str, n: int) -> str:
        return "".join(alphabet[b % len(alphabet)] for b in self.bytes(n))

    def digits(self, n: int) -> str:
        return self.text("123456789", 1) + self.text(string.digits, n - 1)

    def guid(self) -> str:
        return str(uuid.UUID(bytes=self.bytes(16), version=4))


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _as_id(value: object) -> str | None:
    """A request id as the API reads it: a number or a numeric string (the REST API writes strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value.strip()))
    return None


def _format_retry_after(seconds: float) -> str:
    """Retry-After in whole seconds when possible; fractions are kept so tests can stay fast."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


_HUGE_BODY: bytes | None = None
_HUGE_LOCK = threading.Lock()


def _huge_body() -> bytes:
    """An 8 MiB valid-JSON body, built once: clients must cap what they read."""
    global _HUGE_BODY
    with _HUGE_LOCK:
        if _HUGE_BODY is None:
            pad = _HUGE_BODY_SIZE - len(b'{"padding":""}')
            _HUGE_BODY = b'{"padding":"' + b"A" * pad + b'"}'
        return _HUGE_BODY


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
            self._send(_Reply(400, b"Bad request body", "text/plain; charset=utf-8"))
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


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class MicrosoftAdsEmulator:
    """Microsoft identity platform + Microsoft Advertising Customer Management API, locally.

    Create it, ``start()`` it (or use it as a context manager) and point the provider at
    :attr:`base_url`, :meth:`token_url` and :attr:`customer_management_url`. The default world
    (one app, one user, one customer, one Active account, one developer token) is created in
    ``__init__``; :meth:`connection_dict` gives an Airflow connection for it.

    :param access_token_lifetime: ``expires_in`` of issued access tokens, in seconds; the API
        answers 109 once :attr:`clock` passes it.
    :param strict_rotation: Microsoft keeps old refresh tokens valid after rotation. With True, a
        refresh token is revoked (70008) as soon as its successor has been *used*, which catches
        clients that do not persist the rotated token.
    :param host: interface to bind; keep it on loopback, the credentials are fake but usable here.
    :param port: 0 picks a free port.
    :param seed: make every generated id, secret and token reproducible.

    Time: token lifetimes, code expiry and refresh-token inactivity read :attr:`clock` (a
    ``Callable[[], float]``, default ``time.time``). Tests replace it instead of sleeping.
    Delays (``latency``, ``timeout``/``latency`` injections) are real waits that ``stop()`` cuts.
    """

    def __init__(
        self,
        *,
        access_token_lifetime: int = 3600,
        strict_rotation: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.strict_rotation = strict_rotation
        self.host = host
        self.port = port
        self.clock: Callable[[], float] = time.time
        self.latency: float = 0.0
        self.authorize_error: str | None = None
        self.code_lifetime: float = 600.0
        self.refresh_token_inactivity: float = _NINETY_DAYS
        self.counters: collections.Counter[str] = collections.Counter()
        self.token_requests: list[dict[str, str]] = []
        self.issued_access_tokens: list[str] = []
        self.issued_refresh_tokens: list[str] = []

        self._lock = threading.RLock()
        self._rand = _Random(seed)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._apps: dict[str, EmulatorApp] = {}
        self._accounts: dict[str, EmulatorAccount] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._access: dict[str, _AccessToken] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._injections: dict[str, deque[_Injection]] = {name: deque() for name in INJECTION_ENDPOINTS}

        # The default world.
        self.tenant_id: str = self._rand.guid()
        self.app: EmulatorApp = self.add_app()
        self.user_id: str = self._rand.digits(9)
        self.customer_id: str = self._rand.digits(9)
        self.user_name: str = f"msads.emulator.{self._rand.digits(4)}@example.com"
        self.developer_token: str = self._rand.text(string.ascii_uppercase + string.digits, 16)
        self.account: EmulatorAccount = self.add_account()

    # ---------------------------------------------------------------------- lifecycle

    def start(self) -> MicrosoftAdsEmulator:
        """Bind and serve in a daemon thread; returns self so ``emu = MicrosoftAdsEmulator().start()``."""
        if self._server is not None:
            raise RuntimeError("MicrosoftAdsEmulator is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits up to one poll interval
            name=f"msads-emulator:{server.server_port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving. Returns promptly even while requests are being delayed."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes delayed handlers, which then close without answering
        server.shutdown()
        server.server_close()
        server.close_all_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MicrosoftAdsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # ---------------------------------------------------------------------- addresses

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; valid after :meth:`start`."""
        if self._server is None:
            raise RuntimeError("MicrosoftAdsEmulator is not started; call start() or use it as a context manager")
        host = self._server.server_name
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._server.server_port}"

    def token_url(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/token"

    def authorize_url(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/authorize"

    @property
    def customer_management_url(self) -> str:
        return f"{self.base_url}{_CM_PREFIX}"

    # ---------------------------------------------------------------------- world building

    def add_app(
        self,
        *,
        redirect_uris: list[str] | None = None,
        multi_tenant: bool = True,
        secret_expired: bool = False,
    ) -> EmulatorApp:
        """Register another Entra app (a refresh token of one app is refused to another: 70000)."""
        secret = (
            self._rand.text(string.ascii_letters + string.digits, 3)
            + self._rand.text(string.digits, 1)
            + "Q~"
            + self._rand.text(string.ascii_letters + string.digits + "_.~-", 34)
        )
        app = EmulatorApp(
            client_id=self._rand.guid(),
            client_secret=secret,
            secret_id=self._rand.guid(),
            redirect_uris=list(redirect_uris) if redirect_uris is not None else ["http://localhost:8080"],
            multi_tenant=multi_tenant,
            secret_expired=secret_expired,
        )
        with self._lock:
            self._apps[app.client_id] = app
        return app

    def add_account(
        self,
        *,
        status: str = "Active",
        parent_customer_id: str | None = None,
        name: str | None = None,
    ) -> EmulatorAccount:
        """Add an account; under the user's customer unless ``parent_customer_id`` says otherwise."""
        with self._lock:
            account_id = self._rand.digits(9)
            while account_id in self._accounts:
                account_id = self._rand.digits(9)
            number = (
                self._rand.text(string.ascii_uppercase, 1)
                + self._rand.text(string.digits, 4)
                + self._rand.text(string.ascii_uppercase, 3)
            )
            account = EmulatorAccount(
                id=account_id,
                name=name if name is not None else f"Emulated Account {len(self._accounts) + 1}",
                number=number,
                parent_customer_id=parent_customer_id if parent_customer_id is not None else self.customer_id,
                status=status,
            )
            self._accounts[account_id] = account
            return account

    def issue_refresh_token(self, *, client_id: str | None = None, scope: str = DEFAULT_SCOPE) -> str:
        """A refresh token as if the user had completed authorize + code exchange (Steps 5-6)."""
        client = client_id if client_id is not None else self.app.client_id
        resource, problem = self._parse_scope(scope)
        if resource is None:
            raise ValueError(f"scope must name one Microsoft Advertising resource ({problem})")
        with self._lock:
            if client not in self._apps:
                raise ValueError("client_id is not an app registered in this emulator")
            return self._new_refresh_token(client, resource, parent=None)

    def connection_extra(self, refresh_token: str | None = None) -> dict[str, str]:
        """The connection ``extra`` for the default world; mints a refresh token when None."""
        token = refresh_token if refresh_token is not None else self.issue_refresh_token()
        return {
            "account_id": self.account.id,
            "customer_id": self.customer_id,
            "developer_token": self.developer_token,
            "refresh_token": token,
            "token_url": self.token_url(),
            "customer_management_url": self.customer_management_url,
        }

    def connection_dict(self, refresh_token: str | None = None) -> dict[str, object]:
        """An Airflow connection (JSON form): conn_type msads, login = client id, password = secret."""
        return {
            "conn_type": "msads",
            "login": self.app.client_id,
            "password": self.app.client_secret,
            "extra": self.connection_extra(refresh_token),
        }

    def connection_uri_json(self, refresh_token: str | None = None) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` (Airflow accepts JSON there)."""
        return json.dumps(self.connection_dict(refresh_token))

    # ---------------------------------------------------------------------- token lifecycle controls

    def expire_refresh_token(self, token: str, code: int = 700082) -> None:
        """Make the next use of ``token`` fail with ``invalid_grant`` AADSTS ``code``.

        700082: inactivity (90 days), 70008: expired or revoked, 50173: revoked (password reset),
        or any other AADSTS code the emulator knows (70043, 50076, 65001, ...).
        """
        self._known_aadsts(code)
        with self._lock:
            record = self._refresh.get(token)
            if record is None:
                raise ValueError("not a refresh token issued by this emulator")
            record.revoked_code = code

    def expire_all_refresh_tokens(self, code: int = 700082) -> None:
        self._known_aadsts(code)
        with self._lock:
            for record in self._refresh.values():
                record.revoked_code = code

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 109 AuthenticationTokenExpired from now on."""
        with self._lock:
            for record in self._access.values():
                record.expired = True

    def revoke_access_token(self, token: str) -> None:
        """This access token answers 105 InvalidCredentials from now on."""
        with self._lock:
            record = self._access.get(token)
            if record is None:
                raise ValueError("not an access token issued by this emulator")
            record.revoked = True

    def is_refresh_token_valid(self, token: str) -> bool:
        with self._lock:
            record = self._refresh.get(token)
            return record is not None and self._refresh_token_problem(record) is None

    # ---------------------------------------------------------------------- fault injection

    def inject(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
        code: int | None = None,
        body: bytes | None = None,
        delay: float | None = None,
        operation: str | None = None,
        error: str | None = None,
    ) -> None:
        """Queue a misbehaviour for the next ``count`` requests to ``endpoint``.

        ``endpoint`` is ``"token"``, ``"authorize"`` or ``"api"`` (``operation`` narrows ``"api"``
        to ``"GetUser"``, ``"GetAccount"`` or ``"GetAccountsInfo"``). Queues are FIFO per endpoint:
        a request takes the oldest injection that matches it. Kinds:

        * ``aadsts`` - token/authorize: the AADSTS ``code`` error (body, ``error`` and status from
          the catalogue; ``error``/``status`` override; an unknown code needs ``error``).
          On authorize it redirects with ``error``/``error_description`` like Microsoft.
        * ``oauth`` - an OAuth error named by ``error`` (default ``temporarily_unavailable``;
          status 503 for it, 500 for ``server_error``, 401 for ``invalid_client``, else 400),
          AADSTS ``code`` optional; ``body`` replaces the whole body.
        * ``msa_invalid_grant`` - token: personal-account ``invalid_grant`` without AADSTS code.
        * ``fault`` - api: Microsoft Advertising fault ``code`` (default 0) in its real shape.
        * ``status`` - bare ``status`` (default 503), body ``body`` (default empty).
        * ``throttle`` - 429 (or ``status``) with ``Retry-After`` (default 1 s).
        * ``html`` - an HTML error page, status default 500.
        * ``empty`` - 200 with an empty body. ``malformed`` - 200 with truncated JSON.
        * ``huge`` - 200 with an 8 MiB body (or ``body``).
        * ``reset`` - the connection is aborted with a TCP RST, no answer.
        * ``timeout`` - the request is processed, then the answer waits ``delay`` s (default 30).
        * ``latency`` - like timeout, default ``delay`` 1 s: a slow but successful answer.

        ``retry_after`` adds a ``Retry-After`` header to any kind.
        """
        if endpoint not in INJECTION_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {INJECTION_ENDPOINTS}, not {endpoint!r}")
        if kind not in INJECTION_KINDS:
            raise ValueError(f"kind must be one of {INJECTION_KINDS}, not {kind!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if operation is not None and (endpoint != "api" or operation not in OPERATIONS):
            raise ValueError(f"operation only narrows endpoint 'api' and must be one of {OPERATIONS}")
        if kind in ("aadsts", "oauth") and endpoint == "api":
            raise ValueError(f"kind {kind!r} applies to the token and authorize endpoints")
        if kind == "msa_invalid_grant" and endpoint != "token":
            raise ValueError("kind 'msa_invalid_grant' applies to the token endpoint")
        if kind == "fault" and endpoint != "api":
            raise ValueError("kind 'fault' applies to endpoint 'api'")
        if kind == "aadsts":
            if code is None:
                raise ValueError("kind 'aadsts' needs code=<AADSTS number>")
            if code not in _AADSTS and error is None:
                raise ValueError(f"AADSTS{code} is not in the emulator's catalogue; pass error=... too")
        with self._lock:
            self._injections[endpoint].append(
                _Injection(kind, count, status, retry_after, code, body, delay, operation, error)
            )

    def clear_injections(self) -> None:
        with self._lock:
            for queue in self._injections.values():
                queue.clear()

    def reset_counters(self) -> None:
        """Forget counters and recorded token requests (issued-token lists are kept for leak tests)."""
        with self._lock:
            self.counters.clear()
            self.token_requests.clear()

    # ==================================================================== request handling

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        match = _OAUTH_PATH.fullmatch(path)
        if match is not None:
            tenant, endpoint = match.group(1), match.group(2)
            if endpoint == "token":
                return self._token_endpoint(tenant, method, headers, body)
            return self._authorize_endpoint(tenant, method, dict(parse_qsl(query, keep_blank_values=True)))
        operation = _CM_PATHS.get(path.lower())
        if operation is not None or path.lower().startswith(_CM_PREFIX.lower() + "/"):
            return self._api_endpoint(operation, method, headers, body)
        with self._lock:
            self.counters["unknown"] += 1
        return _Reply(404, b"Not Found", "text/plain; charset=utf-8")

    # ---------------------------------------------------------------------- helpers

    def _now_text(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")

    def _date_text(self, at: float) -> str:
        return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

    def _take_injection(self, endpoint: str, operation: str | None = None) -> _Injection | None:
        with self._lock:
            queue = self._injections[endpoint]
            for injection in queue:
                if injection.operation is None or injection.operation == operation:
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        queue.remove(injection)
                    self.counters["injected"] += 1
                    return injection
        return None

    @staticmethod
    def _known_aadsts(code: int) -> None:
        if code not in _AADSTS:
            raise ValueError(f"AADSTS{code} is not in the emulator's catalogue: {sorted(_AADSTS)}")

    def _aad_body(self, code: int | None, error: str, text: str) -> dict[str, object]:
        """Microsoft's error JSON: description ends with trace id, correlation id and timestamp."""
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        timestamp = self._now_text()
        prefix = f"AADSTS{code}: " if code is not None else ""
        body: dict[str, object] = {
            "error": error,
            "error_description": (
                f"{prefix}{text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
        }
        if code is not None:
            body["error_codes"] = [code]
        body.update(timestamp=timestamp, trace_id=trace_id, correlation_id=correlation_id)
        if code is not None:
            body["error_uri"] = f"https://login.microsoftonline.com/error?code={code}"
        return body

    def _aad_text(self, code: int, values: Mapping[str, str] | None = None) -> str:
        spec = _AADSTS[code]
        filled = _Values(values or {})
        filled.setdefault("now", self._date_text(self.clock()))
        filled.setdefault("issued", filled["now"])
        filled.setdefault("app_name", EmulatorApp.display_name)
        return spec.message.format_map(filled)

    def _token_error(self, code: int, values: Mapping[str, str] | None = None, *, text: str | None = None) -> _Reply:
        spec = _AADSTS[code]
        body = self._aad_body(code, spec.error, text if text is not None else self._aad_text(code, values))
        return self._token_reply(spec.status, body)

    @staticmethod
    def _token_reply(status: int, body: Mapping[str, object]) -> _Reply:
        headers = [("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache")]
        trace_id = body.get("trace_id")
        if isinstance(trace_id, str):
            headers.append(("x-ms-request-id", trace_id))
        return _Reply(status, _json_bytes(dict(body)), _JSON, headers)

    def _parse_scope(self, scope: str) -> tuple[str | None, str]:
        """The one resource scope named by ``scope``, or None and the offending part."""
        items = scope.split()
        if not items:
            return None, ""
        resources = [item for item in items if item not in _OIDC_SCOPES]
        for item in resources:
            if item not in _RESOURCE_ENVIRONMENT:
                return None, item
        if len(set(resources)) != 1:
            return None, " ".join(resources) or scope
        return resources[0], ""

    def _new_refresh_token(self, client_id: str, resource: str, parent: str | None) -> str:
        """Mint a refresh token. Shaped like Microsoft-account ones: they carry '!', '*' and '$',
        which breaks clients that put tokens into URLs or forms without encoding them."""
        alphabet = string.ascii_letters + string.digits + "-_!*"
        while True:
            token = "M.C521_BAY.0.U.-" + self._rand.text(alphabet, 180) + "$"
            if token not in self._refresh:
                break
        now = self.clock()
        self._refresh[token] = _RefreshToken(token, client_id, resource, now, now, parent=parent)
        self.issued_refresh_tokens.append(token)
        return token

    def _new_access_token(self, client_id: str, resource: str) -> str:
        while True:
            token = "EwA" + base64.b64encode(self._rand.bytes(96)).decode("ascii")
            if token not in self._access:
                break
        now = self.clock()
        self._access[token] = _AccessToken(
            token, client_id, _RESOURCE_ENVIRONMENT[resource], now, now + self.access_token_lifetime
        )
        self.issued_access_tokens.append(token)
        return token

    def _refresh_token_problem(self, record: _RefreshToken) -> int | None:
        if record.revoked_code is not None:
            return record.revoked_code
        if self.clock() - record.last_used > self.refresh_token_inactivity:
            return 700082
        return None

    # ---------------------------------------------------------------------- generic injected replies

    def _generic_injection(self, injection: _Injection, endpoint: str) -> _Reply | None:
        """Replies that look the same on every endpoint; None for kinds handled per endpoint."""
        kind = injection.kind
        reply: _Reply | None = None
        if kind == "status":
            status = injection.status if injection.status is not None else 503
            content_type = _JSON if injection.body and injection.body.lstrip()[:1] in (b"{", b"[") else None
            if injection.body and content_type is None:
                content_type = "text/plain; charset=utf-8"
            reply = _Reply(status, injection.body or b"", content_type)
        elif kind == "throttle":
            status = injection.status if injection.status is not None else 429
            retry_after = injection.retry_after if injection.retry_after is not None else 1.0
            reply = _Reply(status, injection.body or b"", _JSON if injection.body else None)
            reply.headers.append(("Retry-After", _format_retry_after(retry_after)))
            return reply
        elif kind == "html":
            status = injection.status if injection.status is not None else 500
            page = (
                injection.body
                or (
                    f"<!DOCTYPE html><html><head><title>{status} - Server Error</title></head><body>"
                    f"<h1>Server Error</h1><h2>{status} - The service is temporarily unavailable.</h2>"
                    "</body></html>"
                ).encode()
            )
            reply = _Reply(status, page, _HTML)
        elif kind == "empty":
            reply = _Reply(injection.status or 200, b"", _JSON)
        elif kind == "malformed":
            truncated = b'{"token_type":"Bearer","access_token":"EwA' if endpoint == "token" else b'{"User":{"Id":'
            reply = _Reply(injection.status or 200, injection.body or truncated, _JSON)
        elif kind == "huge":
            reply = _Reply(injection.status or 200, injection.body or _huge_body(), _JSON)
        elif kind == "reset":
            reply = _Reply(0, reset=True)
        if reply is not None and injection.retry_after is not None:
            reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
        return reply

    @staticmethod
    def _delay_of(injection: _Injection | None) -> float:
        if injection is None:
            return 0.0
        if injection.kind == "timeout":
            return injection.delay if injection.delay is not None else 30.0
        if injection.kind == "latency":
            return injection.delay if injection.delay is not None else 1.0
        return 0.0

    # ---------------------------------------------------------------------- token endpoint

    def _token_endpoint(self, tenant: str, method: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        form: dict[str, str] = {}
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if method == "POST" and content_type == "application/x-www-form-urlencoded":
            # Microsoft ignores a JSON body: the request then simply lacks grant_type.
            form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        record = {"tenant": tenant}
        for key in ("grant_type", "client_id", "scope", "redirect_uri", "refresh_token", "code"):
            if key in form:
                record[key] = form[key]
        with self._lock:
            self.counters["token"] += 1
            if form.get("grant_type"):
                self.counters[f"token.{form['grant_type']}"] += 1
            self.token_requests.append(record)

        injection = self._take_injection("token")
        if injection is not None:
            values = {"client_id": form.get("client_id", ""), "tenant": tenant, "scope": form.get("scope", "")}
            injected = self._injected_token_reply(injection, values)
            if injected is not None:
                return injected
        reply = self._token_logic(tenant, method, form)
        reply.delay += self._delay_of(injection)
        return reply

    def _injected_token_reply(self, injection: _Injection, values: Mapping[str, str]) -> _Reply | None:
        generic = self._generic_injection(injection, "token")
        if generic is not None:
            return generic
        reply: _Reply | None = None
        if injection.kind == "aadsts" and injection.code is not None:
            spec = _AADSTS.get(injection.code)
            error = injection.error or (spec.error if spec else "invalid_request")
            status = injection.status or (spec.status if spec else 400)
            text = self._aad_text(injection.code, values) if spec else "Emulated identity platform error."
            reply = self._token_reply(status, self._aad_body(injection.code, error, text))
        elif injection.kind == "oauth":
            error = injection.error or "temporarily_unavailable"
            default_status = {"temporarily_unavailable": 503, "server_error": 500, "invalid_client": 401}
            status = injection.status or default_status.get(error, 400)
            if injection.body is not None:
                reply = _Reply(status, injection.body, _JSON)
            else:
                text = (
                    self._aad_text(injection.code, values)
                    if injection.code in _AADSTS
                    else "The service is temporarily unavailable. Please try again."
                )
                reply = self._token_reply(status, self._aad_body(injection.code, error, text))
        elif injection.kind == "msa_invalid_grant":
            body = {"error": "invalid_grant", "error_description": _MSA_INVALID_GRANT_TEXT}
            reply = _Reply(injection.status or 400, _json_bytes(body), _JSON)
        if reply is not None and injection.retry_after is not None:
            reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
        return reply

    def _token_logic(self, tenant: str, method: str, form: Mapping[str, str]) -> _Reply:
        if method != "POST":
            return self._token_error(900561, {"method": method})
        if tenant not in _AUTHORITY_ALIASES and tenant != self.tenant_id:
            return self._token_error(90002, {"tenant": tenant})
        grant_type = form.get("grant_type", "")
        if not grant_type:
            return self._token_error(900144, {"parameter": "grant_type"})
        if grant_type not in ("refresh_token", "authorization_code"):
            return self._token_error(70003, {"grant_type": grant_type})
        client_id = form.get("client_id", "")
        if not client_id:
            return self._token_error(900144, {"parameter": "client_id"})
        with self._lock:
            app = self._apps.get(client_id)
            if app is None:
                return self._token_error(700016, {"client_id": client_id, "tenant": tenant})
            values = {"client_id": client_id, "tenant": tenant, "app_name": app.display_name}
            if tenant in _AUTHORITY_ALIASES and not app.multi_tenant:
                return self._token_error(50194, values)
            secret = form.get("client_secret", "")
            if not secret:
                return self._token_error(7000218, values)
            if secret != app.client_secret:
                # The secret ID (a GUID) pasted instead of the value lands here too, as at Microsoft.
                return self._token_error(7000215, values)
            if app.secret_expired:
                return self._token_error(7000222, values)
            requested: str | None = None
            if "scope" in form:
                requested = form["scope"]
                resource, bad = self._parse_scope(requested)
                if resource is None:
                    return self._token_error(70011, {**values, "scope": bad or requested})
            if grant_type == "refresh_token":
                return self._refresh_grant(app, form, requested, values)
            return self._code_grant(app, form, requested, values)

    def _token_success(self, client_id: str, resource: str, offline: bool, parent: str | None) -> _Reply:
        access = self._new_access_token(client_id, resource)
        body: dict[str, object] = {
            "token_type": "Bearer",
            "scope": f"{resource} offline_access" if offline else resource,
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
        }
        if offline:
            body["refresh_token"] = self._new_refresh_token(client_id, resource, parent)
        return self._token_reply(200, body)

    def _refresh_grant(
        self, app: EmulatorApp, form: Mapping[str, str], requested: str | None, values: dict[str, str]
    ) -> _Reply:
        presented = form.get("refresh_token", "")
        if not presented:
            return self._token_error(900144, {"parameter": "refresh_token"})
        record = self._refresh.get(presented)
        if record is None:  # garbled, truncated or made up
            return self._token_error(9002313)
        if record.client_id != app.client_id:
            return self._token_error(
                70000,
                text="Provided grant is invalid or malformed. The refresh token was issued to a different client.",
            )
        problem = self._refresh_token_problem(record)
        if problem is not None:
            issued = self._date_text(record.issued_at)
            return self._token_error(problem, {**values, "issued": issued})
        scope = requested if requested is not None else f"{record.resource} offline_access"
        resource, _ = self._parse_scope(scope)
        if resource != record.resource:
            return self._token_error(65001, values)
        record.uses += 1
        record.last_used = self.clock()
        if self.strict_rotation and record.parent is not None:
            parent = self._refresh.get(record.parent)
            if parent is not None and parent.revoked_code is None:
                parent.revoked_code = 70008  # its successor is in use: the predecessor dies
        return self._token_success(app.client_id, record.resource, "offline_access" in scope.split(), presented)

    def _code_grant(
        self, app: EmulatorApp, form: Mapping[str, str], requested: str | None, values: dict[str, str]
    ) -> _Reply:
        code = form.get("code", "")
        if not code:
            return self._token_error(900144, {"parameter": "code"})
        record = self._codes.get(code)
        if record is None or record.client_id != app.client_id:
            return self._token_error(70000, text="The provided value for the 'code' parameter is not valid.")
        if record.redeemed:
            return self._token_error(54005)
        if self.clock() - record.issued_at > self.code_lifetime:
            return self._token_error(
                70008, text="The provided value for the 'code' parameter is not valid. The code has expired."
            )
        redirect_uri = form.get("redirect_uri", "")
        if not redirect_uri:
            return self._token_error(900144, {"parameter": "redirect_uri"})
        if redirect_uri != record.redirect_uri:
            return self._token_error(50011, {**values, "redirect_uri": redirect_uri})
        if record.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if record.code_challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
            else:
                computed = verifier
            if not verifier or not secrets.compare_digest(computed, record.code_challenge):
                return self._token_error(501481)
        if requested is not None:
            resource, _ = self._parse_scope(requested)
            if resource != record.resource:
                return self._token_error(70000)
            offline = "offline_access" in requested.split()
        else:  # Microsoft's SDK sends no scope when redeeming a code: the consented one applies
            offline = record.offline_access
        record.redeemed = True
        return self._token_success(app.client_id, record.resource, offline, None)

    # ---------------------------------------------------------------------- authorize endpoint

    def _authorize_endpoint(self, tenant: str, method: str, params: Mapping[str, str]) -> _Reply:
        with self._lock:
            self.counters["authorize"] += 1
        injection = self._take_injection("authorize")
        if injection is not None:
            injected = self._injected_authorize_reply(injection, params)
            if injected is not None:
                return injected
        reply = self._authorize_logic(tenant, method, params)
        reply.delay += self._delay_of(injection)
        return reply

    def _error_page(self, code: int, values: Mapping[str, str]) -> _Reply:
        """Microsoft's sign-in error page: shown (no redirect) when the redirect URI is not trusted."""
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        message = html.escape(f"AADSTS{code}: {self._aad_text(code, values)}")
        page = (
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
            '<div id="login"><h1>Sign in</h1><p>Sorry, but we\'re having trouble signing you in.</p>'
            f'<p id="error">{message}</p>'
            f"<p>Request Id: {trace_id}<br>Correlation Id: {correlation_id}<br>"
            f"Timestamp: {self._now_text()}</p></div></body></html>"
        )
        return _Reply(_AADSTS[code].status, page.encode("utf-8"), _HTML, [("x-ms-request-id", trace_id)])

    @staticmethod
    def _redirect(redirect_uri: str, params: Mapping[str, str], fragment: bool = False) -> _Reply:
        separator = "#" if fragment else ("&" if "?" in redirect_uri else "?")
        location = f"{redirect_uri}{separator}{urlencode(dict(params))}"
        return _Reply(302, b"", None, [("Location", location), ("Cache-Control", "no-store, no-cache")])

    def _redirect_error(
        self, redirect_uri: str, state: str | None, error: str, description: str, fragment: bool = False
    ) -> _Reply:
        params = {"error": error, "error_description": description}
        if state is not None:
            params["state"] = state
        return self._redirect(redirect_uri, params, fragment)

    def _trusted_redirect(self, params: Mapping[str, str]) -> str | None:
        app = self._apps.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri")
        if app is not None and redirect_uri is not None and redirect_uri in app.redirect_uris:
            return redirect_uri
        return None

    def _injected_authorize_reply(self, injection: _Injection, params: Mapping[str, str]) -> _Reply | None:
        generic = self._generic_injection(injection, "authorize")
        if generic is not None:
            return generic
        if injection.kind not in ("aadsts", "oauth"):
            return None
        code = injection.code
        spec = _AADSTS.get(code) if code is not None else None
        error = injection.error or (spec.error if spec else "temporarily_unavailable")
        with self._lock:
            redirect_uri = self._trusted_redirect(params)
        if redirect_uri is None and code is not None and spec is not None:
            return self._error_page(code, {"client_id": params.get("client_id", ""), "tenant": "common"})
        values = {"client_id": params.get("client_id", ""), "redirect_uri": params.get("redirect_uri", "")}
        text = self._aad_text(code, values) if code in _AADSTS and code is not None else "Emulated authorization error."
        description = f"AADSTS{code}: {text}" if code is not None else text
        if redirect_uri is None:
            return _Reply(injection.status or 400, html.escape(description).encode(), _HTML)
        return self._redirect_error(redirect_uri, params.get("state"), error, description)

    def _authorize_logic(self, tenant: str, method: str, params: Mapping[str, str]) -> _Reply:
        if method != "GET":
            return _Reply(405, b"", None, [("Allow", "GET")])
        client_id = params.get("client_id", "")
        if tenant not in _AUTHORITY_ALIASES and tenant != self.tenant_id:
            return self._error_page(90002, {"tenant": tenant})
        if not client_id:
            return self._error_page(900144, {"parameter": "client_id"})
        with self._lock:
            app = self._apps.get(client_id)
            if app is None:
                return self._error_page(700016, {"client_id": client_id, "tenant": tenant})
            values = {"client_id": client_id, "tenant": tenant, "app_name": app.display_name}
            if tenant in _AUTHORITY_ALIASES and not app.multi_tenant:
                return self._error_page(50194, values)
            redirect_uri = params.get("redirect_uri")
            if not redirect_uri:
                return self._error_page(900971, values)
            if redirect_uri not in app.redirect_uris:
                return self._error_page(50011, {**values, "redirect_uri": redirect_uri})
            state = params.get("state")
            fragment = params.get("response_mode") == "fragment"

            def fail(code: int, extra: Mapping[str, str] | None = None) -> _Reply:
                text = self._aad_text(code, {**values, **(extra or {})})
                return self._redirect_error(redirect_uri, state, _AADSTS[code].error, f"AADSTS{code}: {text}", fragment)

            response_type = params.get("response_type", "")
            if not response_type:
                return fail(900144, {"parameter": "response_type"})
            if response_type != "code":
                return fail(700054, {"response_type": response_type})
            scope = params.get("scope", "")
            if not scope:
                return fail(900144, {"parameter": "scope"})
            resource, bad = self._parse_scope(scope)
            if resource is None:
                return fail(70011, {"scope": bad or scope})
            challenge = params.get("code_challenge") or None
            challenge_method: str | None = None
            if challenge is not None:
                challenge_method = params.get("code_challenge_method") or "plain"
                if challenge_method not in ("S256", "plain"):
                    return fail(501491, {"method": challenge_method})
            if self.authorize_error is not None:
                error = self.authorize_error
                code = _AUTHORIZE_ERROR_CODES.get(error)
                if code is not None:
                    description = f"AADSTS{code}: {self._aad_text(code, values)}"
                else:
                    description = f"The authorization request failed: {error}."
                return self._redirect_error(redirect_uri, state, error, description, fragment)
            code_value = f"M.C519_BAY.2.U.{self._rand.guid()}"
            self._codes[code_value] = _AuthCode(
                code=code_value,
                client_id=client_id,
                redirect_uri=redirect_uri,
                resource=resource,
                offline_access="offline_access" in scope.split(),
                issued_at=self.clock(),
                code_challenge=challenge,
                code_challenge_method=challenge_method,
            )
        answer = {"code": code_value}
        if state is not None:
            answer["state"] = state
        return self._redirect(redirect_uri, answer, fragment)

    # ---------------------------------------------------------------------- Customer Management API

    def _api_endpoint(self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        tracking_id = str(uuid.uuid4())
        with self._lock:
            self.counters["api"] += 1
            if operation is not None:
                self.counters[f"api.{operation}"] += 1
        injection = self._take_injection("api", operation)
        if injection is not None:
            injected = self._injected_api_reply(injection, tracking_id)
            if injected is not None:
                return injected
        reply = self._api_logic(operation, method, headers, body, tracking_id)
        reply.headers.append(("TrackingId", tracking_id))
        reply.delay += self._delay_of(injection)
        return reply

    def _injected_api_reply(self, injection: _Injection, tracking_id: str) -> _Reply | None:
        reply = self._generic_injection(injection, "api")
        if reply is None and injection.kind == "fault":
            reply = self._fault(injection.code if injection.code is not None else 0, tracking_id)
            if injection.status is not None:
                reply.status = injection.status
            if injection.retry_after is not None:
                reply.headers.append(("Retry-After", _format_retry_after(injection.retry_after)))
        if reply is not None:
            reply.headers.append(("TrackingId", tracking_id))
        return reply

    @staticmethod
    def _fault(code: int, tracking_id: str, message: str | None = None) -> _Reply:
        spec = _FAULTS.get(code) or _Fault(f"Error{code}", f"Emulated fault {code}.", 400, code >= 1000)
        text = message or spec.message
        body: dict[str, object]
        if spec.api_fault:
            body = {
                "TrackingId": tracking_id,
                "Type": "ApiFault",
                "OperationErrors": [{"Code": code, "Details": None, "Message": text}],
            }
        else:
            body = {
                "TrackingId": tracking_id,
                "Type": "AdApiFaultDetail",
                "Errors": [{"Code": code, "Detail": None, "ErrorCode": spec.error_code, "Message": text}],
            }
        return _Reply(spec.status, _json_bytes(body), _JSON)

    def _api_logic(
        self, operation: str | None, method: str, headers: Mapping[str, str], body: bytes, tracking_id: str
    ) -> _Reply:
        if operation is None:
            return _Reply(404, b"", None)
        if method != "POST":
            return _Reply(405, b"", None, [("Allow", "POST")])
        authorization = headers.get("authorization", "").strip()
        developer_token = headers.get("developertoken", "").strip()
        if not authorization or not developer_token:
            return self._fault(116, tracking_id)
        scheme, _, access = authorization.partition(" ")
        with self._lock:
            record = self._access.get(access.strip()) if scheme.lower() == "bearer" else None
            if record is None or record.revoked:
                return self._fault(105, tracking_id)
            if record.expired or self.clock() >= record.expires_at:
                return self._fault(109, tracking_id)
            if record.environment != "production" or developer_token != self.developer_token:
                return self._fault(105, tracking_id)
            try:
                payload = json.loads(body) if body.strip() else None
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                return self._fault(100, tracking_id)
            if operation == "GetUser":
                return self._get_user(payload, tracking_id)
            if operation == "GetAccount":
                return self._get_account(payload, tracking_id)
            return self._get_accounts_info(payload, tracking_id)

    def _get_user(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        requested = payload.get("UserId")
        if requested is not None and _as_id(requested) != self.user_id:
            return self._fault(106, tracking_id)
        user: dict[str, object] = {
            "ContactInfo": {
                "Address": {
                    "City": "Redmond",
                    "CountryCode": "US",
                    "Id": str(int(self.user_id) + 1),
                    "Line1": "1 Emulator Way",
                    "Line2": None,
                    "Line3": None,
                    "Line4": None,
                    "PostalCode": "98052",
                    "StateOrProvince": "WA",
                    "TimeStamp": None,
                    "BusinessName": None,
                },
                "ContactByPhone": False,
                "ContactByPostalMail": False,
                "Email": self.user_name,
                "EmailFormat": "Html",
                "Fax": None,
                "HomePhone": None,
                "Id": str(int(self.user_id) + 2),
                "Mobile": None,
                "Phone1": "4255550100",
                "Phone2": None,
            },
            "CustomerId": self.customer_id,
            "Id": self.user_id,
            "JobTitle": None,
            "LastModifiedByUserId": self.user_id,
            "LastModifiedTime": "2024-01-15T09:30:00.123",
            "Lcid": "EnglishUS",
            "Name": {"FirstName": "Emulated", "LastName": "User", "MiddleInitial": None},
            "Password": None,
            "SecretAnswer": None,
            "SecretQuestion": "None",
            "UserLifeCycleStatus": "Active",
            "TimeStamp": "AAAAAAAbHXs=",
            "UserName": self.user_name,
            "ForwardCompatibilityMap": [],
            "AuthenticationToken": None,
        }
        roles = [
            {
                "RoleId": 41,
                "CustomerId": self.customer_id,
                "AccountIds": None,
                "LinkedAccountIds": None,
                "CustomerLinkPermission": None,
            }
        ]
        return _Reply(200, _json_bytes({"User": user, "CustomerRoles": roles}), _JSON)

    def _account_json(self, account: EmulatorAccount) -> dict[str, object]:
        return {
            "BillToCustomerId": account.parent_customer_id,
            "CurrencyCode": account.currency_code,
            "AccountFinancialStatus": "ClearFinancialStatus",
            "Id": account.id,
            "Language": "English",
            "LastModifiedByUserId": self.user_id,
            "LastModifiedTime": "2024-01-15T09:31:00.456",
            "Name": account.name,
            "Number": account.number,
            "ParentCustomerId": account.parent_customer_id,
            "PaymentMethodId": None,
            "PaymentMethodType": None,
            "PrimaryUserId": self.user_id,
            "AccountLifeCycleStatus": account.status,
            "TimeStamp": "AAAAAAAbHX0=",
            "TimeZone": account.time_zone,
            "PauseReason": 1 if account.status == "Pause" else None,
            "ForwardCompatibilityMap": [],
            "LinkedAgencies": [],
            "SalesHouseCustomerId": None,
            "TaxInformation": None,
            "BackUpPaymentInstrumentId": None,
            "BillingThresholdAmount": None,
            "BusinessAddress": {
                "City": "Redmond",
                "CountryCode": "US",
                "Id": str(int(account.id) + 1),
                "Line1": "1 Emulator Way",
                "Line2": None,
                "Line3": None,
                "Line4": None,
                "PostalCode": "98052",
                "StateOrProvince": "WA",
                "TimeStamp": None,
                "BusinessName": account.name,
            },
            "AutoTagType": "Inactive",
            "SoldToPaymentInstrumentId": None,
            "TaxCertificate": None,
            "AccountMode": "Expert",
        }

    def _get_account(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        account_id = _as_id(payload.get("AccountId"))
        account = self._accounts.get(account_id) if account_id is not None else None
        if account is None:  # also an account *number* such as "F1234ABC" given as the id
            return self._fault(1102, tracking_id)
        if account.parent_customer_id != self.customer_id:
            return self._fault(106, tracking_id)
        return _Reply(200, _json_bytes({"Account": self._account_json(account)}), _JSON)

    def _get_accounts_info(self, payload: Mapping[str, object], tracking_id: str) -> _Reply:
        raw = payload.get("CustomerId")
        customer_id = self.customer_id if raw is None else _as_id(raw)
        if customer_id != self.customer_id:
            return self._fault(1490, tracking_id)
        infos = [
            {
                "Id": account.id,
                "Name": account.name,
                "Number": account.number,
                "AccountLifeCycleStatus": account.status,
                "PauseReason": 1 if account.status == "Pause" else None,
            }
            for account in self._accounts.values()
            if account.parent_customer_id == self.customer_id
        ]
        return _Reply(200, _json_bytes({"AccountsInfo": infos}), _JSON)
