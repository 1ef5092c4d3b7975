"""Helpers for driving ``msads-authorize`` in tests: streams to read from, a browser to act as.

The command runs in a thread with a :class:`~airflow_provider_msads.cli.console.Console` whose
streams are these objects, so a test can wait for the authorize URL, act as the browser (GET the
URL on the emulator, follow its redirect into the catcher) and then read the exit code.
"""

from __future__ import annotations

import io
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, urlsplit

import httpx

from airflow_provider_msads.cli.console import Console
from airflow_provider_msads.cli.main import main
from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LineStream(io.TextIOBase):
    """A write-only text stream that keeps everything and lets a test wait for a line."""

    def __init__(self) -> None:
        super().__init__()
        self._text = ""
        self._cond = threading.Condition()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._cond:
            self._text += text
            self._cond.notify_all()
        return len(text)

    @property
    def text(self) -> str:
        with self._cond:
            return self._text

    def lines(self) -> list[str]:
        return self.text.splitlines()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The first complete line matching ``predicate``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                complete = self._text.split("\n")[:-1]
                for line in complete:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching line within {timeout}s; output so far:\n{self._text}")
                self._cond.wait(left)

    def wait_for_text(self, fragment: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while fragment not in self._text:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{fragment!r} not printed within {timeout}s; output so far:\n{self._text}")
                self._cond.wait(left)


class FeedStdin(io.TextIOBase):
    """A stdin whose lines the test feeds while the command waits; ``close_input()`` means EOF."""

    def __init__(self, lines: Sequence[str] = (), *, tty: bool = False) -> None:
        super().__init__()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tty = tty
        for line in lines:
            self.feed(line)

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def feed(self, line: str) -> None:
        self._lines.put(line if line.endswith("\n") else line + "\n")

    def close_input(self) -> None:
        self._lines.put(None)

    def readline(self, size: int | None = -1) -> str:
        item = self._lines.get(timeout=30)
        if item is None:
            self._lines.put(None)
            return ""
        return item


class CliRun:
    """``main(argv)`` in a thread with captured streams."""

    def __init__(self, argv: Sequence[str], *, stdin: FeedStdin | None = None, interactive: bool = False) -> None:
        self.stdout = LineStream()
        self.stderr = LineStream()
        self.stdin = stdin or FeedStdin()
        self.console = Console(
            self.stdin,  # type: ignore[arg-type]
            self.stdout,  # type: ignore[arg-type]
            self.stderr,  # type: ignore[arg-type]
            interactive=interactive,
            read_secret=lambda prompt: self.console.ask(prompt),
        )
        self.code: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(list(argv),), daemon=True)
        self._thread.start()

    def _run(self, argv: list[str]) -> None:
        try:
            self.code = main(argv, console=self.console)
        except BaseException as exc:  # surfaced by wait()
            self.error = exc

    def authorize_url(self, timeout: float = 10.0) -> str:
        """The URL line, printed on a line of its own."""
        return self.stderr.wait_for(lambda line: line.startswith("http") and "/authorize?" in line, timeout)

    def wait(self, timeout: float = 30.0) -> int:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the command did not finish; stderr:\n{self.stderr.text}"
        if self.error is not None:
            raise self.error
        assert self.code is not None
        return self.code

    @property
    def output(self) -> str:
        return self.stderr.text + self.stdout.text


def sign_in(authorize_url: str) -> str:
    """Act as the user's browser at Microsoft: GET the authorize URL, return the redirect's Location."""
    response = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return response.headers["location"]


def follow(location: str) -> httpx.Response:
    """Act as the browser following the redirect into the catcher."""
    return httpx.get(location, follow_redirects=False, timeout=10)


def browser(authorize_url: str) -> httpx.Response:
    """Sign in and land on the catcher, like a browser."""
    return follow(sign_in(authorize_url))


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def flow_args(emu: MicrosoftAdsEmulator, redirect_uri: str, *extra: str, ids: bool = True) -> list[str]:
    """Options for a non-interactive run against the emulator."""
    args = [
        "--client-id",
        emu.app.client_id,
        "--client-secret",
        emu.app.client_secret,
        "--token-url",
        emu.token_url(),
        "--customer-management-url",
        emu.customer_management_url,
        "--redirect-uri",
        redirect_uri,
        "--no-browser",
        "--timeout",
        "10",
    ]
    if ids:
        args += [
            "--developer-token",
            emu.developer_token,
            "--customer-id",
            emu.customer_id,
            "--account-id",
            emu.account.id,
        ]
    return [*args, *extra]
