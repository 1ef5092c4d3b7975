"""The ``msads`` Connection form in a real browser, saved, and read back by the hook.

Airflow 3.3's React UI draws the form from the provider info (``conn-fields`` and
``ui-field-behaviour``) without importing the hook, so the only proof that users see the right
form is to open it: a real ``airflow api-server`` on loopback, headless Chromium, the "Add
Connection" dialog. The values typed in are the emulator's, and the emulator's URLs go in through
the form's "Extra Fields JSON" editor, so the saved connection then works against the emulator:
``MicrosoftAdsHook`` parses it, gets an access token and passes ``test_connection()``.

Screenshots of the filled form are written to the folder printed by the ``output_dir`` fixture.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CONN_ID = "msads_browser_form"
HOOK_NAME = "Microsoft Advertising"
SECRET_TYPE = "password"


@pytest.fixture
def cleanup_connection(browser_airflow_db: Path) -> Iterator[None]:
    """Leave the session's metastore as we found it: no form connection, no token-store Variable."""
    from airflow_provider_msads.tokens.auth import clear_process_cache

    clear_process_cache()
    yield
    clear_process_cache()
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_msads.token_store import storage_key

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == CONN_ID).delete()
    Variable.delete(storage_key(CONN_ID))


def _field(dialog: Any, label: str) -> Any:
    """The form field (a ``role=group`` with its label, input and help text) labelled ``label``.

    Found through the label's text, not the input's name, because the label is what users read.
    (Airflow's extra-field labels carry a ``for`` that does not match their input's id, so
    ``get_by_label`` cannot be used for them.)
    """
    label_re = re.compile(rf"^\s*{re.escape(label)}\s*$")
    group = dialog.get_by_role("group").filter(has=dialog.page.locator("label").filter(has_text=label_re))
    return group


def _open_section(dialog: Any, name: str) -> Any:
    """Expand one accordion section of the form (only one is open at a time) and return it."""
    from playwright.sync_api import expect

    trigger = dialog.get_by_role("button", name=name, exact=True)
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    expect(trigger).to_have_attribute("aria-expanded", "true")
    region = dialog.locator(f"[id='{trigger.get_attribute('aria-controls')}']")
    expect(region).to_be_visible()
    return region


def _labels(region: Any) -> list[str]:
    return [" ".join(text.replace("*", "").split()) for text in region.locator("label").all_inner_texts()]


def _editor_text(region: Any) -> str:
    """What the Monaco JSON editor shows (it renders spaces as no-break spaces)."""
    return region.locator(".monaco-editor .view-lines").inner_text().replace("\xa0", " ")


_EDITOR_SHOWS = """([region, expected]) => {
    const lines = region.querySelector('.monaco-editor .view-lines');
    return lines !== null && lines.innerText.replace(/\u00a0/g, ' ') === expected;
}"""


def _set_editor_text(region: Any, text: str) -> None:
    """Replace the editor's content as a paste would (typing would trigger auto-closing brackets).

    Monaco may still add a closing quote or brace after the cursor, and not always at once: drop
    what follows the paste until the editor shows exactly ``text`` (a condition, not a delay).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page = region.page
    region.locator(".monaco-editor .view-lines").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    handle = region.element_handle()
    for _ in range(5):
        page.keyboard.press("Shift+Control+End")
        page.keyboard.press("Delete")
        try:
            page.wait_for_function(_EDITOR_SHOWS, arg=[handle, text], timeout=2000)
            return
        except PlaywrightTimeoutError:
            continue
    raise AssertionError(f"the JSON editor never showed the pasted text; it shows {_editor_text(region)!r}")


def test_connection_form_in_the_browser(
    chromium: Any,  # first: a missing browser fails the test before the server costs half a minute
    airflow_api_server: str,
    msads_emulator: Any,
    output_dir: Path,
    cleanup_connection: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.sync_api import expect

    conn = msads_emulator.connection_dict()
    extra = conn["extra"]
    form_extras = {k: extra[k] for k in ("developer_token", "refresh_token", "customer_id", "account_id")}
    # The whole Extra JSON as saved: the six fields' extras, the environment, the emulator's URLs.
    saved_extra = {
        **form_extras,
        "environment": "production",
        "token_url": msads_emulator.token_url(),
        "customer_management_url": msads_emulator.customer_management_url,
    }

    context = chromium.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{airflow_api_server}/connections", wait_until="networkidle")
        page.get_by_role("button", name="Add Connection").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()

        # -- connection id and type -----------------------------------------------------------
        dialog.get_by_label("Connection ID").fill(CONN_ID)
        dialog.get_by_role("combobox").fill(HOOK_NAME)
        page.get_by_role("option", name=HOOK_NAME, exact=True).click()

        # -- standard fields: relabelled login/password; host, schema and port hidden ---------
        standard = _open_section(dialog, "Standard Fields")
        assert _labels(standard) == ["Description", "Client ID", "Client Secret"]
        for hidden in ("host", "schema", "port"):
            assert dialog.locator(f"input[name='{hidden}']").count() == 0, f"{hidden} should be hidden"
        client_id = _field(standard, "Client ID").locator("input")
        client_secret = _field(standard, "Client Secret").locator("input")
        assert client_id.evaluate("input => input.type") == "text"
        expect(client_id).to_have_attribute("placeholder", re.compile("Application \\(client\\) ID"))
        expect(client_secret).to_have_attribute("type", SECRET_TYPE)
        expect(client_secret).to_have_attribute("placeholder", re.compile("Value, not its Secret ID"))
        client_id.fill(conn["login"])
        client_secret.fill(conn["password"])
        dialog.screenshot(path=str(output_dir / "1-standard-fields.png"))

        # -- extra fields: the four ids and tokens, and the environment -----------------------
        extras = _open_section(dialog, "Extra Fields")
        assert _labels(extras) == ["Developer Token", "Refresh Token", "Customer ID", "Account ID", "Environment"]
        inputs = {
            "developer_token": (_field(extras, "Developer Token"), SECRET_TYPE, "Developer settings"),
            "refresh_token": (_field(extras, "Refresh Token"), SECRET_TYPE, "msads-authorize"),
            "customer_id": (_field(extras, "Customer ID"), "text", "cid="),
            "account_id": (_field(extras, "Account ID"), "text", "aid="),
        }
        for name, (group, input_type, help_text) in inputs.items():
            field_input = group.locator(f"input[name='element_{name}']")
            assert field_input.evaluate("input => input.type") == input_type, name
            expect(group).to_contain_text(help_text)
            field_input.fill(form_extras[name])
        environment = _field(extras, "Environment")
        environment.get_by_role("combobox").click()
        options = page.get_by_role("option")
        expect(options).to_have_text(["production", "sandbox"])
        page.get_by_role("option", name="production", exact=True).click()
        expect(environment.locator("input[name='element_environment']")).to_have_value("production")
        dialog.screenshot(path=str(output_dir / "2-extra-fields.png"))

        # -- Extra Fields JSON: mirrors the fields; add the emulator's URLs there ---------------
        extra_json = _open_section(dialog, "Extra Fields JSON")
        assert json.loads(_editor_text(extra_json)) == {**form_extras, "environment": "production"}
        _set_editor_text(extra_json, json.dumps(saved_extra))
        assert json.loads(_editor_text(extra_json)) == saved_extra
        dialog.screenshot(path=str(output_dir / "3-extra-fields-json.png"))

        # The fields still hold their values after the JSON edit.
        extras = _open_section(dialog, "Extra Fields")
        for name, (group, _, _) in inputs.items():
            expect(group.locator(f"input[name='element_{name}']")).to_have_value(form_extras[name])
        dialog.screenshot(path=str(output_dir / "4-filled-form.png"))

        # -- save ---------------------------------------------------------------------------
        dialog.get_by_role("button", name="Save").click()
        expect(page.get_by_role("dialog")).to_have_count(0)
        expect(page.get_by_role("row").filter(has_text=CONN_ID)).to_have_count(1)
        page.screenshot(path=str(output_dir / "5-saved.png"))
    except Exception:
        page.screenshot(path=str(output_dir / "failure.png"), full_page=True)
        raise
    finally:
        context.close()

    # -- read back through the hook, as a server-side process (it reads the metastore) ----------
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    hook = MicrosoftAdsHook(msads_conn_id=CONN_ID)
    creds = hook.credentials
    assert (creds.client_id, creds.client_secret) == (conn["login"], conn["password"])
    assert (creds.developer_token, creds.refresh_token) == (extra["developer_token"], extra["refresh_token"])
    assert (creds.customer_id, creds.account_id, creds.environment) == (
        extra["customer_id"],
        extra["account_id"],
        "production",
    )
    assert creds.endpoints.token_url == msads_emulator.token_url()
    assert creds.endpoints.customer_management_url == msads_emulator.customer_management_url

    token = hook.get_access_token()
    assert token == msads_emulator.issued_access_tokens[-1]
    assert msads_emulator.counters["token.refresh_token"] == 1
    ok, message = hook.test_connection()
    assert ok, message
    assert msads_emulator.counters["api.GetUser"] == 1
    assert msads_emulator.counters["api.GetAccount"] == 1
