"""The *Edit* dialog of connections the provider writes, in a real browser, and its Test button.

Airflow 3.2+ draws in the Edit dialog only the form fields whose keys the saved extra holds, so a
connection written without ``environment`` could not be switched to sandbox in the form. The two
writers of the provider, ``msads-authorize --save`` (run as the user runs it, a subprocess signing
in at the emulator) and ``make demo``'s setup step (``scripts/demo.py``'s own code, run against
this session's metastore), must write every key: the dialog then shows all five extra fields with
their saved values. The row's **Test** button (enabled as the demo enables it) then runs the
hook's ``test_connection()`` in the API server, and the verdict it shows is read.

Screenshots are written to the folder printed by the ``output_dir`` fixture.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_browser_connection_form import _field, _labels, _open_section

from airflow_provider_msads.connection.fields import OPTION_ORDER

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXTRA_LABELS = ["Developer Token", "Refresh Token", "Customer ID", "Account ID", "Environment"]


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _save_with_msads_authorize(emulator: Any, conn_id: str) -> None:
    """``msads-authorize ... --save CONN_ID`` as a user runs it; the test signs in as the browser."""
    redirect_uri = f"http://127.0.0.1:{_free_port()}"
    emulator.app.redirect_uris = [*emulator.app.redirect_uris, redirect_uri]
    script = Path(sys.executable).with_name("msads-authorize")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "airflow_provider_msads.cli"]
    # No --environment: the default must still be written into the extra.
    argv = [
        *command,
        *("--client-id", emulator.app.client_id, "--client-secret", emulator.app.client_secret),
        *("--token-url", emulator.token_url(), "--customer-management-url", emulator.customer_management_url),
        *("--developer-token", emulator.developer_token, "--customer-id", emulator.customer_id),
        *("--account-id", emulator.account.id, "--redirect-uri", redirect_uri),
        *("--no-browser", "--timeout", "60", "--save", conn_id),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSADS_")}
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            output.append(line)
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(
                    "msads-authorize printed no sign-in URL within 60 s:\n" + "".join(output)
                ) from None
            if line.startswith("http") and "/authorize?" in line:
                break
        # The user's browser: sign in at the emulator, follow the redirect into the catcher.
        location = httpx.get(line.strip(), follow_redirects=False, timeout=10).headers["location"]
        httpx.get(location, follow_redirects=False, timeout=10)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    reader.join(timeout=10)
    text = "".join(output)
    assert code == 0, text
    assert f"Saved connection {conn_id!r}" in text, text
    assert emulator.app.client_secret not in text


def _save_with_the_demo_setup(emulator: Any, conn_id: str) -> None:
    """The demo's own setup step (``UPSERT_CONNECTION`` with ``connection_payload``), as it runs it."""
    spec = importlib.util.spec_from_file_location("msads_demo_script", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = demo  # its dataclasses look their module up there
        spec.loader.exec_module(demo)
    payload = demo.connection_payload(emulator.connection_dict(), conn_id=conn_id)
    result = subprocess.run(
        [sys.executable, "-c", demo.UPSERT_CONNECTION],
        env={**os.environ, "MSADS_DEMO_CONNECTION": payload},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "connection saved" in result.stdout


WRITERS = {"msads-authorize --save": _save_with_msads_authorize, "make demo": _save_with_the_demo_setup}


@pytest.fixture
def written_connection(request: pytest.FixtureRequest, browser_airflow_db: Path, msads_emulator: Any) -> Iterator[str]:
    """The connection written by the writer named by the test's parameter; deleted afterwards."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_msads.token_store import storage_key
    from airflow_provider_msads.tokens.auth import clear_process_cache

    conn_id = "msads_edit_" + request.param.split()[0].replace("-", "_")
    WRITERS[request.param](msads_emulator, conn_id)
    yield conn_id
    clear_process_cache()
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
    Variable.delete(storage_key(conn_id))


def _open_connections(chromium: Any, base_url: str, conn_id: str) -> tuple[Any, Any, Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base_url}/connections", wait_until="networkidle")
    row = page.get_by_role("row").filter(has_text=conn_id)
    return context, page, row


@pytest.mark.parametrize("written_connection", list(WRITERS), indirect=True)
def test_edit_dialog_shows_every_field(
    chromium: Any,
    airflow_api_server: str,
    msads_emulator: Any,
    written_connection: str,
    output_dir: Path,
) -> None:
    from playwright.sync_api import expect

    context, page, row = _open_connections(chromium, airflow_api_server, written_connection)
    try:
        expect(row).to_have_count(1)
        row.get_by_role("button", name="Edit Connection").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        standard = _open_section(dialog, "Standard Fields")
        expect(_field(standard, "Client ID").locator("input")).to_have_value(msads_emulator.app.client_id)
        extras = _open_section(dialog, "Extra Fields")
        # The five form fields first; then Airflow lists the other saved extras (the emulator's
        # URLs) as plain key/value fields.
        assert _labels(extras)[:5] == EXTRA_LABELS
        assert {"token_url", "customer_management_url"} <= set(_labels(extras)[5:])
        # The other options the connection carries (the emulator's connection has every form field's key).
        assert set(_labels(extras)[5:]) <= set(OPTION_ORDER) - {"environment"}
        expect(_field(extras, "Account ID").locator("input[name='element_account_id']")).to_have_value(
            msads_emulator.account.id
        )
        expect(_field(extras, "Customer ID").locator("input[name='element_customer_id']")).to_have_value(
            msads_emulator.customer_id
        )
        environment = _field(extras, "Environment")
        expect(environment.locator("input[name='element_environment']")).to_have_value("production")
        dialog.screenshot(path=str(output_dir / "edit-extra-fields.png"))
    except Exception:
        page.screenshot(path=str(output_dir / "failure.png"), full_page=True)
        raise
    finally:
        context.close()


@pytest.mark.parametrize("written_connection", list(WRITERS), indirect=True)
def test_test_button_runs_the_check(
    chromium: Any,
    airflow_api_server: str,
    msads_emulator: Any,
    written_connection: str,
    output_dir: Path,
) -> None:
    """The row's Test button (enabled as in the demo): the hook's check, run by the API server.

    Also on Airflow 3.3.0-3.3.2, whose Test button fails for a connection without a port
    (apache/airflow#73298): both writers store port 0 there, which the UI's request matches.
    """
    from playwright.sync_api import expect

    context, page, row = _open_connections(chromium, airflow_api_server, written_connection)
    try:
        expect(row).to_have_count(1)
        calls_before = msads_emulator.counters.get("api.GetUser", 0)
        with page.expect_response("**/api/v2/connections/test") as answer:
            row.get_by_role("button", name="Test Connection").click()
        # The verdict as the user reads it: a toast with a title and the message.
        expect(page.get_by_text(re.compile("^Test Connection (Successful|Failed)$"))).to_be_visible()
        page.screenshot(path=str(output_dir / "test-verdict.png"))
        shown = page.locator("body").inner_text()
        print(f"Test button: HTTP {answer.value.status}; shown: {shown[-300:]!r}")
        assert "Test Connection Successful" in shown, shown[-500:]
        assert "OK - credentials valid" in shown
        assert msads_emulator.counters.get("api.GetUser", 0) == calls_before + 1
    finally:
        context.close()
