"""A one-shot HTTP listener on the redirect URI that catches Microsoft's redirect.

Why it is built this way:

* **Loopback only.** The redirect carries a code that, with the client secret, becomes a refresh
  token: it must not be served to the network. A redirect URI whose host is not loopback is
  refused (use ``--manual`` there). ``localhost`` binds both 127.0.0.1 and ::1, since browsers
  resolve it to either.
* **Busy port detected before the URL is shown.** Port 8080 is Airflow's own default port;
  binding first means the user is told (with the two ways out) before signing in, not after.
  No ``SO_REUSEADDR`` on Windows, where it would let us steal a port that is in use.
* **Exactly one redirect.** Stray requests (``/favicon.ico``, other paths, a request without
  ``code``/``error``) get a short answer and the wait goes on; a redirect with the wrong ``state``
  is rejected, explained (in the browser and through ``on_rejected``) and the wait goes on, so a
  stale tab cannot end the run; the first redirect with the right state ends it.
* **Never hangs.** :meth:`RedirectCatcher.wait` gives up after ``timeout`` seconds.
* **Quiet.** The default request log would print the query string, i.e. the code.
* **The browser gets a one-time start link, not the authorize URL.** A browser started with a URL
  shows it on its command line (``/proc/<pid>/cmdline``), readable by every local user; with the
  authorize URL there, another user could sign in with *their* account using our ``state`` and
  deliver their code here (login CSRF; PKCE does not help, the challenge is public). So the
  browser is opened with :meth:`RedirectCatcher.start_url`: used once, it sets a random cookie
  and redirects to Microsoft; from then on only a redirect carrying that cookie is taken. A second
  use of the start link means someone else has it: the run stops, nothing is exchanged. The
  authorize URL itself is printed in the terminal only (``--no-browser`` and ``--manual`` paths:
  ``state`` then never leaves the terminal and the user's own browser).
* **The start link is not on a command line either.** A link on the browser's command line is a
  capability too: another user who opens it first, and whose Microsoft redirect arrives before
  the user's browser loads it, would have their grant saved. So the browser is opened on a
  private file (:meth:`RedirectCatcher.start_file`: 0600, in a 0700 folder of its own, removed as
  soon as the link is used and when the run ends) that forwards to the link, as Jupyter does;
  only the file's name is public. And a start link opened more than once fails the run even
  after a redirect was accepted (:meth:`RedirectCatcher.check_start_link`, called before anything
  is saved): the accepted answer may be the other user's.
"""

from __future__ import annotations

import errno
import html
import ipaddress
import os
import queue
import secrets
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_msads.cli.authorize import OnboardingError, Redirect, StateMismatchError, redirect_from_params
from airflow_provider_msads.connection.endpoints import is_loopback_host
from airflow_provider_msads.errors.catalogue import STEP_APP, STEP_AUTHORIZE

__all__ = [
    "DEFAULT_TIMEOUT",
    "ListenError",
    "PortInUseError",
    "RedirectCatcher",
    "RedirectTimeoutError",
    "RedirectURIError",
    "listen_address",
]

#: Seconds to wait for the redirect: time to sign in, do MFA and read the consent screen.
DEFAULT_TIMEOUT = 300.0


class RedirectURIError(OnboardingError):
    """The redirect URI cannot be listened on (not loopback, https, malformed)."""


class ListenError(OnboardingError):
    """The redirect URI's port cannot be listened on; ``--manual`` or another redirect URI helps.

    Always about the redirect URI registered in step 1, hence the default field and step.
    """

    def __init__(self, message: str, *, host: str, port: int, **kwargs: Any) -> None:
        self.host = host
        self.port = port
        kwargs.setdefault("field", "redirect_uri")
        kwargs.setdefault("step", STEP_APP)
        super().__init__(message, **kwargs)


class PortInUseError(ListenError):
    """Something else listens on the redirect URI's port (often Airflow's own web server on 8080)."""


class RedirectTimeoutError(OnboardingError):
    """No redirect arrived in time."""


def listen_address(redirect_uri: str) -> tuple[str, int, str]:
    """``(host, port, path)`` to listen on for ``redirect_uri``, or :class:`RedirectURIError` saying why not."""
    try:
        parts = urlsplit(redirect_uri)
        port = parts.port
    except ValueError:
        raise RedirectURIError(
            f"The redirect URI {redirect_uri!r} is not a valid URL.",
            field="redirect_uri",
            remedy="Pass --redirect-uri exactly as registered in the app, e.g. http://localhost:8080.",
            step=STEP_APP,
        ) from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise RedirectURIError(
            f"The redirect URI {redirect_uri!r} must be a full http URL with a host.",
            field="redirect_uri",
            remedy="Pass --redirect-uri exactly as registered in the app, e.g. http://localhost:8080.",
            step=STEP_APP,
        )
    if not is_loopback_host(host):
        raise RedirectURIError(
            f"The redirect URI's host {host!r} is not this machine's loopback address, so msads-authorize "
            "cannot receive the redirect there (and will not listen on the network for it).",
            field="redirect_uri",
            remedy="Add --manual: after signing in, paste the address the browser was sent to. Or register a "
            "loopback redirect URI such as http://localhost:8765 in the app (Authentication, platform Web) "
            "and pass it with --redirect-uri.",
            step=STEP_APP,
        )
    if parts.scheme == "https":
        raise RedirectURIError(
            f"The redirect URI {redirect_uri!r} uses https; msads-authorize listens with plain http only "
            "(it has no certificate for localhost).",
            field="redirect_uri",
            remedy="Register an http loopback redirect URI such as http://localhost:8080 (Microsoft allows "
            "http for localhost) and pass it, or add --manual to paste the redirected address instead.",
            step=STEP_APP,
        )
    if parts.fragment:
        raise RedirectURIError(
            "The redirect URI must not contain a #fragment.",
            field="redirect_uri",
            remedy="Remove the #… part.",
            step=STEP_APP,
        )
    return host, port if port is not None else 80, parts.path or "/"


def _bind_targets(host: str) -> list[tuple[str, socket.AddressFamily, bool]]:
    """``(address, family, required)``: localhost means both loopbacks, the IPv6 one optional."""
    literal = host.strip("[]")
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:  # localhost or *.localhost
        return [("127.0.0.1", socket.AF_INET, True), ("::1", socket.AF_INET6, False)]
    return [(str(ip), socket.AF_INET6 if ip.version == 6 else socket.AF_INET, True)]


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="referrer" content="no-referrer"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1 style="font-size: 1.4em">{title}</h1><p>{body}</p></body></html>
"""


_COOKIE = "msads_authorize_run"


def _start_reused(*, after_answer: bool = False) -> OnboardingError:
    if after_answer:
        what = (
            "was opened again after a sign-in answer had been accepted, so that answer may be another user's of this "
            "machine (who opened the link first). Nothing was saved or printed."
        )
    else:
        what = "was opened twice, so another user of this machine may have it. Nothing was exchanged."
    return OnboardingError(
        f"The one-time start link that msads-authorize opened in the browser {what}",
        field="state",
        step=STEP_AUTHORIZE,
        remedy="Run msads-authorize again; or use --no-browser and paste the printed URL into your browser yourself.",
    )


#: The private page the browser is opened on: it forwards to the start link once (no script, so
#: nothing can follow it twice); the link is shown for a browser that does not follow.
_FORWARD_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url={url}"><title>msads-authorize</title></head>
<body style="font-family: system-ui, sans-serif"><p>Continuing to Microsoft's sign-in page&hellip;
If nothing happens, <a href="{url}">continue here</a>.</p></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    """Hands each GET to the catcher; everything else is refused."""

    server: _Server
    timeout = 10  # an idle browser pre-connection must not hold a thread for long
    protocol_version = "HTTP/1.0"
    server_version = "msads-authorize"
    sys_version = ""
    extra_headers: list[tuple[str, str]]

    def setup(self) -> None:
        super().setup()
        self.extra_headers = []

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default log line contains the query string, i.e. the code."""

    def do_GET(self) -> None:
        self.server.catcher._handle(self)

    def do_HEAD(self) -> None:
        self.page(405, "Method not allowed", "Only the browser's redirect (GET) is expected here.")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD

    def page(self, status: int, title: str, body: str) -> None:
        content = _PAGE.format(title=html.escape(title), body=body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
            for name, value in self.extra_headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)
        except OSError:  # the browser went away; nothing to do
            pass


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    # SO_REUSEADDR lets a restart bind despite TIME_WAIT sockets on POSIX; on Windows it would let
    # us bind a port another program is listening on, so there we ask for exclusive use instead.
    allow_reuse_address = os.name != "nt"

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, catcher: RedirectCatcher) -> None:
        self.address_family = family
        self.catcher = catcher
        super().__init__(address, _Handler, bind_and_activate=False)
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise

    def server_bind(self) -> None:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)
        if os.name == "nt" and exclusive is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        if self.address_family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # TCPServer's bind, not HTTPServer's: that one does a reverse DNS lookup (getfqdn), which
        # can take seconds on a machine with a slow resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class RedirectCatcher:
    """Listen on the redirect URI (loopback only) until the one redirect of this run arrives.

    Use as a context manager: ``start()`` binds (raising :class:`PortInUseError` before the user
    is sent to sign in), :meth:`wait` returns the :class:`Redirect` or raises
    :class:`RedirectTimeoutError`; leaving the block stops listening.

    :param on_rejected: called (from a server thread) with the explanation of each redirect whose
        ``state`` was wrong; the wait goes on.
    """

    def __init__(
        self,
        redirect_uri: str,
        *,
        expected_state: str,
        timeout: float = DEFAULT_TIMEOUT,
        on_rejected: Callable[[StateMismatchError], None] | None = None,
    ) -> None:
        self.redirect_uri = redirect_uri
        self.host, self.port, self.path = listen_address(redirect_uri)
        self.expected_state = expected_state
        self.timeout = timeout
        self.on_rejected = on_rejected
        self.rejected: list[StateMismatchError] = []
        self.stray_requests = 0
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._result: Redirect | OnboardingError | None = None
        self._results: queue.Queue[Redirect | OnboardingError] = queue.Queue(maxsize=1)
        self._page_sent = threading.Event()
        #: The one-time start link (path and token), the authorize URL it leads to, the cookie it sets.
        self._start_path = f"/msads-authorize/start/{secrets.token_urlsafe(24)}"
        self._start_target: str | None = None
        self._start_used = False
        self._start_uses = 0
        self._start_folder: Path | None = None
        self._cookie_value = secrets.token_urlsafe(32)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> RedirectCatcher:
        """Bind and serve; a second call (e.g. ``with catcher:`` after ``start()``) does nothing."""
        if self._servers:
            return self
        for address, family, required in _bind_targets(self.host):
            try:
                server = _Server((address, self.port), family, self)
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
                    self.close()
                    raise self._busy(address) from None
                if exc.errno in (errno.EACCES, errno.EPERM) and required:
                    self.close()
                    raise self._forbidden(address) from None
                if required:
                    self.close()
                    raise ListenError(
                        f"Cannot listen on {address} port {self.port} ({exc.strerror or type(exc).__name__}).",
                        host=address,
                        port=self.port,
                        remedy="Pass another loopback --redirect-uri registered in the app, or add --manual.",
                    ) from None
                continue  # e.g. no IPv6 on this machine: 127.0.0.1 alone is fine
            self._servers.append(server)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"msads-authorize-redirect:{address}:{self.port}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        return self

    def close(self) -> None:
        self._remove_start_file()
        if self._result is not None:
            self._page_sent.wait(2.0)  # let the browser get its "you may close this window" page
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> RedirectCatcher:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- waiting ----------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> Redirect:
        """The redirect of this run; :class:`RedirectTimeoutError` when none came in time.

        Raises :class:`OnboardingError` when the start link was opened twice (someone else has it).
        """
        limit = self.timeout if timeout is None else timeout
        try:
            result = self._results.get(timeout=limit)
        except queue.Empty:
            raise self._timed_out(limit) from None
        if isinstance(result, OnboardingError):
            raise result
        return result

    def start_url(self, authorize_url: str) -> str:
        """A one-time link on this catcher that sets the run's cookie and redirects to ``authorize_url``.

        Open the browser with this, never with ``authorize_url``: a command line is public.
        """
        self._start_target = authorize_url
        scheme, netloc = urlsplit(self.redirect_uri)[:2]
        return f"{scheme}://{netloc}{self._start_path}"

    def start_file(self, authorize_url: str) -> Path:
        """A private file (0600, in a new 0700 folder) that forwards the browser to :meth:`start_url`.

        Open the browser on this (its ``file://`` URL): the browser's command line then names a
        file nobody else can read, not the link. It is removed once the link is used, and by
        :meth:`close`.
        """
        link = html.escape(self.start_url(authorize_url), quote=True)
        self._remove_start_file()
        folder = Path(tempfile.mkdtemp(prefix="msads-authorize-"))  # mkdtemp: 0700, this user's alone
        self._start_folder = folder
        path = folder / "sign-in.html"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_FORWARD_PAGE.format(url=link))
        return path

    def _remove_start_file(self) -> None:
        folder, self._start_folder = self._start_folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    @property
    def start_link_reused(self) -> bool:
        """Whether the start link was opened more than once (at any time while listening)."""
        return self._start_uses > 1

    def check_start_link(self) -> None:
        """Raise when the start link was opened more than once, even after a redirect was accepted.

        Call it before saving or printing anything: the accepted redirect may be another user's
        who opened the link first.
        """
        if self.start_link_reused:
            raise _start_reused(after_answer=True)

    def _cookie_header(self, handler: _Handler) -> str | None:
        for part in (handler.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == _COOKIE:
                return value
        return None

    def _handle_start(self, handler: _Handler) -> None:
        with self._lock:
            first = not self._start_used and self._start_target is not None and self._result is None
            self._start_used = True
            self._start_uses += 1
            if not first and self._result is None:
                # Opened twice: the link (from the browser's command line) is in other hands. Stop.
                self._result = _start_reused()
                self._results.put(self._result)
                self._page_sent.set()
        if not first:
            handler.page(
                409,
                "This sign-in link was already used",
                "msads-authorize opens its start link once. It was opened a second time, so someone else may "
                "have it; the run stopped and nothing was exchanged. Run msads-authorize again.",
            )
            return
        assert self._start_target is not None
        self._remove_start_file()  # the browser has read it: nothing is left to read
        handler.extra_headers = [
            ("Set-Cookie", f"{_COOKIE}={self._cookie_value}; Path=/; HttpOnly; SameSite=Lax"),
            ("Location", self._start_target),
        ]
        handler.page(302, "Continue to Microsoft", "Continuing to Microsoft's sign-in page.")

    # -- requests (server threads) ----------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        if parts.path == self._start_path:
            self._handle_start(handler)
            return
        if (parts.path or "/") != self.path:
            self.stray_requests += 1
            handler.page(404, "Not found", "This address only receives Microsoft's sign-in redirect.")
            return
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            redirect = redirect_from_params(params, expected_state=self.expected_state)
        except StateMismatchError as err:
            self.rejected.append(err)
            try:
                # Explained in the terminal before the browser shows its page, never after it.
                if self.on_rejected is not None:
                    self.on_rejected(err)
            finally:
                handler.page(
                    400,
                    "This sign-in answer is not for the running msads-authorize",
                    "It came from an older authorization link or another page, and was ignored. Open the link "
                    "that msads-authorize printed most recently in your terminal.",
                )
            return
        if redirect is not None and self._start_used:
            cookie = self._cookie_header(handler) or ""
            if not secrets.compare_digest(cookie.encode(), self._cookie_value.encode()):
                foreign = StateMismatchError(
                    "A sign-in answer came from a browser that did not open this run's start link (it lacks the "
                    "link's cookie), e.g. another user of this machine signing in with their own account. Its code "
                    "was not used.",
                    field="state",
                    step=STEP_AUTHORIZE,
                    remedy="Finish signing in in the browser window msads-authorize opened.",
                )
                self.rejected.append(foreign)
                try:
                    if self.on_rejected is not None:
                        self.on_rejected(foreign)
                finally:
                    handler.page(
                        400,
                        "This sign-in answer is not for the running msads-authorize",
                        "It did not come from the browser window that msads-authorize opened, and was ignored.",
                    )
                return
        if redirect is None:
            self.stray_requests += 1
            handler.page(
                404,
                "Waiting for Microsoft",
                "msads-authorize is waiting for Microsoft's redirect after you sign in; this request had none.",
            )
            return
        with self._lock:
            first = self._result is None
            if first:
                self._result = redirect
                self._results.put(redirect)  # the main thread exchanges the code right now
        if not first:
            handler.page(200, "Already received", "The sign-in answer was already received. You may close this window.")
            return
        if redirect.is_error:
            handler.page(
                200,
                "Microsoft did not authorize the app",
                f"Microsoft answered <code>{html.escape(redirect.error or '')}</code>. The terminal running "
                "msads-authorize explains what to do. You may close this window.",
            )
        else:
            handler.page(
                200,
                "Microsoft Advertising authorization received",
                "msads-authorize got the authorization and is finishing in the terminal. You may close this window.",
            )
        self._page_sent.set()

    # -- explanations -----------------------------------------------------------------------

    def _busy(self, address: str) -> PortInUseError:
        airflow = " Port 8080 is also Airflow's own web server port, the usual reason." if self.port == 8080 else ""
        return PortInUseError(
            f"Port {self.port} on {address} is already in use by another program, so msads-authorize cannot "
            f"receive the redirect to {self.redirect_uri}.{airflow}",
            host=address,
            port=self.port,
            remedy="Either (1) add another loopback redirect URI to the app registration (Authentication > Web > "
            "Add URI), e.g. http://localhost:8765, and pass it with --redirect-uri http://localhost:8765; or "
            "(2) add --manual and paste the address the browser is sent to after signing in (works on a headless "
            "server over SSH too). Stopping the program on that port for a minute also works.",
        )

    def _forbidden(self, address: str) -> ListenError:
        return ListenError(
            f"This user may not listen on port {self.port} (ports below 1024 need administrator rights), so "
            f"msads-authorize cannot receive the redirect to {self.redirect_uri}.",
            host=address,
            port=self.port,
            remedy="Register a redirect URI with a port above 1024, e.g. http://localhost:8765, and pass it with "
            "--redirect-uri; or add --manual.",
        )

    def _timed_out(self, limit: float) -> RedirectTimeoutError:
        if self.rejected:
            detail = (
                f" {len(self.rejected)} answer(s) with a foreign `state` arrived and were ignored: they belonged to "
                "an older authorization link."
            )
        else:
            detail = ""
        return RedirectTimeoutError(
            f"No sign-in answer reached {self.redirect_uri} within {limit:g} seconds; nothing was exchanged.{detail}",
            field="redirect_uri",
            step=STEP_AUTHORIZE,
            remedy="Run msads-authorize again and finish signing in within the time (raise it with --timeout). If "
            "the browser showed a Microsoft error page instead of returning here, that page names the problem: "
            "AADSTS50011 means the redirect URI is not registered exactly as given (Step 1), AADSTS700016 a wrong "
            "Client ID. If the browser runs on another machine (SSH), use --manual or forward the port "
            f"(ssh -L {self.port}:localhost:{self.port} …).",
        )
