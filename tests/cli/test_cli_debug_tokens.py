"""msads-authorize with every logger at DEBUG: no token it learns appears on stderr or in a log record.

The command's purpose is to hand the user the new refresh token, in the file they asked for; the
exchange also returns an access token, which the validation then uses. Neither may show anywhere
else, whatever the log level (httpx and httpcore log requests at DEBUG).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from _support.cli import CliRun, browser, flow_args

from airflow_provider_msads.cli.console import EXIT_OK


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    saved = root.level, {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "airflow")}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in saved[1]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def test_no_token_on_stderr_or_in_debug_logs(emulator, redirect_uri, tmp_path, debug_log):
    target = tmp_path / "conn.json"
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--output-file", str(target)))
    browser(run.authorize_url())
    assert run.wait(60) == EXIT_OK, run.output
    assert "OK - credentials valid" in run.stderr.text  # the validation ran, with the access token
    logged = debug_log.getvalue()
    assert "httpx" in logged or "httpcore" in logged  # DEBUG really was on for the HTTP stack
    tokens = [*emulator.issued_access_tokens, *emulator.issued_refresh_tokens]
    assert tokens and emulator.issued_refresh_tokens[-1] in target.read_text()  # where it belongs
    for token in tokens:
        assert token not in run.stderr.text
        assert token not in run.stdout.text
        assert token not in logged
