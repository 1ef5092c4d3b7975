"""test_connection where Airflow calls it: the CLI command and the API server's Test route."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


CLI_TWICE = """
import sys
from airflow.cli import cli_parser

for conn_id in sys.argv[1:]:
    args = cli_parser.get_parser().parse_args(["connections", "test", conn_id])
    try:
        args.func(args)
        code = 0
    except SystemExit as exit:
        code = exit.code
    print(f"\\n=== {conn_id} exit {code} ===", flush=True)
"""


def test_cli_connections_test(airflow_db, msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch):
    """`airflow connections test` passes on a good connection and prints the failing verdict otherwise.

    Both commands run in one interpreter (the CLI's own parser and handler), to pay Airflow's
    start-up once.
    """
    broken = msads_emulator.connection_dict()
    broken["extra"]["developer_token"] = "NOTMYDEVTOKEN123"
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_BROKEN", json.dumps(broken))
    result = subprocess.run(
        [sys.executable, "-c", CLI_TWICE, "msads_default", "msads_broken"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"},
        check=False,
    )
    good, _, bad = result.stdout.partition("=== msads_default exit 0 ===")
    assert _, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Connection success!" in good
    # Only newer Airflow CLIs exit non-zero on a failed test; the message is what we own.
    assert "=== msads_broken exit 1 ===" in bad or "=== msads_broken exit 0 ===" in bad
    output = " ".join(bad.split())  # the console wraps long lines
    assert "Connection failed!" in output
    assert "Developer Token check failed" in output
    assert "Redo: Step 4 (developer token)" in output
    for secret in (msads_emulator.app.client_secret, msads_emulator.developer_token, "NOTMYDEVTOKEN123"):
        assert secret not in result.stdout + result.stderr
    assert msads_emulator.counters["api.GetUser"] >= 2


def test_api_server_test_route(airflow_db, msads_emulator, monkeypatch: pytest.MonkeyPatch):
    """The form's Test button: the API server tests under a throwaway connection id, in its own process type."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    monkeypatch.delenv("MSADS_TOKEN_STORE", raising=False)
    from airflow.models.connection import Connection

    conn = msads_emulator.connection_dict()
    suspended = msads_emulator.add_account(status="Suspended")

    def ui_test(**changes) -> tuple[bool, str]:
        extra = {**conn["extra"], **changes.pop("extra", {})}
        body = {"conn_type": "msads", "login": conn["login"], "password": conn["password"], **changes}
        # What POST /api/v2/connections/test does: a transient conn id exported as an env var.
        transient = Connection(conn_id="qZ3xT9aB", extra=json.dumps(extra), **body)
        monkeypatch.setenv("AIRFLOW_CONN_QZ3XT9AB", transient.get_uri())
        return transient.test_connection()

    with create_session() as session:
        before = {v.key for v in session.query(Variable)}

    ok, message = ui_test()
    assert ok is True, message
    assert message.startswith("OK - credentials valid; user ")

    ok, message = ui_test(extra={"account_id": suspended.id})
    assert ok is True
    assert "Warnings: Account 'Emulated Account 2'" in message and "is Suspended, not Active" in message

    ok, message = ui_test(password=msads_emulator.app.secret_id)
    assert ok is False
    assert message.startswith("Client Secret check failed: ")
    assert "Secret ID" in message and "Redo: Step 2" in message

    ok, message = ui_test(extra={"developer_token": None})
    assert ok is False and "Developer Token" in message and "missing" in message

    with create_session() as session:
        after = {v.key for v in session.query(Variable)}
    assert after == before, "a connection test must not leave token-store Variables behind"
