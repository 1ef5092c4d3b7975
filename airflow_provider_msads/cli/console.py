"""The terminal ``msads-authorize`` talks through, and the exit codes it leaves with.

Exit codes: 0 done, 1 an error Microsoft, the credentials or the machine caused (always
explained: what happened, which field or guide step, what to do), 2 a usage error.

Streams: everything said to the user, the authorize URL included (on a line of its own), goes
to **stderr**; **stdout** carries only the result asked for with ``--output``, so that
``msads-authorize --output json > conn.json`` captures exactly the connection.

Questions are asked only when stdin is a terminal and ``--yes`` is not given; otherwise every
question takes its default answer ("yes": replace, validate) and a value that would have been
asked for must come from an option or an environment variable.
"""

from __future__ import annotations

import getpass
import os
import sys
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "AlreadyExplained",
    "Console",
    "UsageError",
    "open_browser",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_CONSOLE_BROWSERS = frozenset({"www-browser", "links", "links2", "elinks", "lynx", "w3m"})


class UsageError(Exception):
    """Wrong or missing options: exit code 2."""


class AlreadyExplained(Exception):
    """The explanation was already printed; leave with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Console:
    """The three streams and how to ask; tests hand in their own.

    :param interactive: None means "stdin is a terminal".
    :param read_secret: reads a value without echo; defaults to :func:`getpass.getpass` on a
        terminal and to a plain line read otherwise.
    """

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    interactive: bool | None = None
    read_secret: Callable[[str], str] | None = None

    @classmethod
    def system(cls) -> Console:
        return cls(sys.stdin, sys.stdout, sys.stderr)

    def is_interactive(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        try:
            return bool(self.stdin.isatty())
        except (AttributeError, ValueError):
            return False

    def say(self, text: str = "") -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def result(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def ask(self, prompt: str) -> str:
        self.stderr.write(prompt)
        self.stderr.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def ask_secret(self, prompt: str) -> str:
        if self.read_secret is not None:
            return self.read_secret(prompt)
        if self.stdin is sys.stdin and self.is_interactive():
            return getpass.getpass(prompt, stream=self.stderr)
        return self.ask(prompt)

    def confirm(self, question: str, *, default: bool) -> bool:
        hint = "[Y/n]" if default else "[y/N]"
        for _ in range(3):
            answer = self.ask(f"{question} {hint} ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
        return default


def open_browser(url: str) -> bool:
    """Open ``url`` in a graphical browser when there is one; never a text browser in this terminal."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if getattr(browser, "name", "") in _CONSOLE_BROWSERS:
        return False
    try:
        return bool(browser.open(url, new=1, autoraise=True))
    except Exception:
        return False
