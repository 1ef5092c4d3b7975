"""*Authorize with Microsoft* and *Token health* in a real browser against a real API server.

The API server runs with the provider's plugin (registered by get_provider_info, nothing in
plugins/), Airflow's simple auth manager with an admin, an op (may write Variables), a user (may
post XComs) and a viewer, connection tests Enabled, and DEBUG logging; Microsoft
is the emulator (its authorize endpoint redirects at once, as Microsoft does for a signed-in user
who consented before). Both redirect forms are driven: the API server's root (the guide's
``http://localhost:8080`` form) and the plugin's ``/msads/callback``.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from _support.api_server import auth_token, simple_auth_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
PASSWORDS = {"admin": "admin-pw-ui", "viewer": "viewer-pw-ui", "user": "user-pw-ui", "op": "op-pw-ui"}
#: ``MSADS_DOCS_SCREENSHOTS=1`` also writes the README's screenshots into docs/img (committed).
DOCS_SCREENSHOTS = os.environ.get("MSADS_DOCS_SCREENSHOTS") == "1"


def _shot(page: Any, name: str, output_dir: Path) -> None:
    page.screenshot(path=str(output_dir / name), full_page=True)
    if DOCS_SCREENSHOTS:
        page.screenshot(path=str(IMG / name), full_page=True)


@pytest.fixture(scope="module")
def ui_server(browser_airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``airflow api-server`` (conftest's start and stop helpers) with two users and DEBUG logs."""
    # One JWT secret for the server and this process (which computes form tokens the way the pages
    # do): whatever an earlier test left in airflow.cfg or the environment cannot make them differ.
    secret = secrets.token_hex(32)
    previous_secret = os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET")
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secret
    env = {
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # Validate now (test_browser_ui_subpath: the default)
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
    }
    try:
        # The provider's hook module is loaded while the server starts.
        with simple_auth_server(
            tmp_path_factory.mktemp("ui-server"),
            PASSWORDS,
            env,
            workers=2,
            while_starting=lambda: importlib.import_module("airflow_provider_msads.hooks.msads"),
        ) as server:
            yield server
    finally:
        if previous_secret is None:
            os.environ.pop("AIRFLOW__API_AUTH__JWT_SECRET", None)
        else:
            os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = previous_secret


def _jwt(base_url: str, user: str) -> str:
    return auth_token(base_url, user, PASSWORDS[user])


def _signed_in(chromium: Any, base_url: str, user: str) -> Any:
    """A browser context holding the user's Airflow session cookie, as after the login page."""
    context = chromium.new_context(viewport={"width": 1200, "height": 1100})
    host = urlsplit(base_url).hostname
    context.add_cookies([{"name": "_token", "value": _jwt(base_url, user), "domain": host, "path": "/"}])
    return context


@pytest.fixture
def ui_connection(browser_airflow_db: Path, msads_emulator: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """An msads connection at the emulator (authorize URL included) with a refresh token to be replaced."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from airflow_provider_msads.cli import metastore
    from airflow_provider_msads.token_store import storage_key
    from airflow_provider_msads.tokens.auth import clear_process_cache

    conn_id = (
        "msads_"
        + request.node.name.removeprefix("test_").split("[")[0][:12]
        + ("_" + request.node.callspec.params["form"] if hasattr(request.node, "callspec") else "")
    )
    document = msads_emulator.connection_dict()
    document["extra"]["authorize_url"] = msads_emulator.authorize_url()
    metastore.save_connection(conn_id, document, replace=True, description="ui test")
    yield conn_id
    clear_process_cache()
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.query(Variable).filter(Variable.key.like("msads_ui_authorization_%")).delete(synchronize_session=False)
    Variable.delete(storage_key(conn_id))


def _stored_refresh_token(conn_id: str) -> str:
    from airflow_provider_msads.cli.metastore import find_connection

    stored = find_connection(conn_id)
    assert stored is not None
    return str(stored.option("refresh_token"))


def _secrets_of(emulator: Any) -> list[str]:
    return [emulator.app.client_secret, *emulator.issued_refresh_tokens, *emulator.issued_access_tokens]


@pytest.mark.parametrize("form", ["root", "callback"])
def test_authorize_in_the_browser(
    chromium: Any, ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str, form: str, output_dir: Path
) -> None:
    from playwright.sync_api import expect

    base_url, log_path = ui_server
    redirect_uri = base_url if form == "root" else f"{base_url}/msads/callback"
    msads_emulator.app.redirect_uris = [redirect_uri]  # only this one: the other form would be refused
    old_refresh_token = _stored_refresh_token(ui_connection)
    context = _signed_in(chromium, base_url, "admin")
    page = context.new_page()
    page.set_default_timeout(30_000)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    try:
        page.goto(f"{base_url}/msads/")
        page.select_option("#conn_id", ui_connection)
        page.check(f"input[name='redirect'][value='{form}']")
        if form == "root":
            _shot(page, "ui-authorize.png", output_dir)
        page.click("#authorize")
        expect(page.locator("h1")).to_have_text("Authorized; every credential is valid")
        assert urlsplit(page.url).path == ("/" if form == "root" else "/msads/callback")
        verdicts = page.locator("tr[data-field]")
        assert verdicts.count() >= 6
        for status in page.locator("tr[data-field] td:nth-child(2)").all_inner_texts():
            assert status in ("ok", "warning"), page.content()
        if form == "root":
            _shot(page, "ui-verdict.png", output_dir)
        page.screenshot(path=str(output_dir / f"verdict-{form}.png"), full_page=True)
        html = page.content()
        # The next get_access_token() of the connection uses the new refresh token.
        new_refresh_token = _stored_refresh_token(ui_connection)
        exchange_access_token = msads_emulator.issued_access_tokens[-1]
        assert new_refresh_token != old_refresh_token
        assert new_refresh_token in msads_emulator.issued_refresh_tokens
        from airflow_provider_msads.cli.metastore import server_context
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
        from airflow_provider_msads.tokens.auth import clear_process_cache

        clear_process_cache()
        msads_emulator.reset_counters()
        with server_context():
            hook = MicrosoftAdsHook(msads_conn_id=ui_connection)
            # The token store was reset and then seeded with the exchange's tokens: the next access
            # token is the exchange's, and the next refresh presents the new refresh token.
            assert hook.get_access_token() == exchange_access_token
            hook.token_manager.get_token(force_refresh=True)
        refreshes = [r for r in msads_emulator.token_requests if r.get("grant_type") == "refresh_token"]
        assert [r["refresh_token"] for r in refreshes] == [new_refresh_token]
        # No secret in any page, URL or log (DEBUG).
        secrets = _secrets_of(msads_emulator)
        codes = [q["code"][0] for q in (parse_qs(urlsplit(u).query) for u in seen) if "code" in q]
        assert codes, seen
        log_text = log_path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in html
            assert not any(secret in url for url in seen)
            assert secret not in log_text
        for code in codes:
            assert code not in log_text
        assert context.storage_state()["origins"] == [] or all(
            not o.get("localStorage") for o in context.storage_state()["origins"]
        )
    finally:
        context.close()


def test_replayed_and_forged_state_are_refused(
    chromium: Any, ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str
) -> None:
    base_url, _ = ui_server
    msads_emulator.app.redirect_uris = [f"{base_url}/msads/callback"]
    context = _signed_in(chromium, base_url, "admin")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{base_url}/msads/")
        page.select_option("#conn_id", ui_connection)
        page.check("input[name='redirect'][value='callback']")
        page.click("#authorize")
        page.wait_for_selector("h1:text('Authorized; every credential is valid')")
        used_url = page.url
        stored = _stored_refresh_token(ui_connection)
        page.goto(used_url)  # the same answer again
        assert page.locator("h1").inner_text() == "Sign-in answer refused"
        assert "already used" in page.content()
        page.goto(f"{base_url}/msads/callback?code=M.C519_BAY.forged&state=not-issued-here")
        assert page.locator("h1").inner_text() == "Sign-in answer refused"
        assert "not issued by this Airflow" in page.content()
        assert _stored_refresh_token(ui_connection) == stored
        # A foreign state on the root is not ours: Airflow's own UI answers it.
        answer = httpx.get(f"{base_url}/?code=x&state=not-issued-here", cookies={"_token": _jwt(base_url, "admin")})
        assert "Sign-in answer refused" not in answer.text
    finally:
        context.close()


def test_microsoft_error_is_explained(
    chromium: Any, ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str
) -> None:
    base_url, _ = ui_server
    msads_emulator.app.redirect_uris = [base_url]
    msads_emulator.authorize_error = "access_denied"
    stored = _stored_refresh_token(ui_connection)
    context = _signed_in(chromium, base_url, "admin")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{base_url}/msads/")
        page.select_option("#conn_id", ui_connection)
        page.click("#authorize")
        page.wait_for_selector("h1:text('Microsoft did not authorize the app')")
        text = page.locator("body").inner_text()
        assert "AADSTS65004" in text or "access_denied" in text, text
        assert "was left unchanged" in text
        assert _stored_refresh_token(ui_connection) == stored
    finally:
        msads_emulator.authorize_error = None
        context.close()


def test_a_user_who_may_not_edit_connections_gets_403(
    ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str
) -> None:
    base_url, _ = ui_server
    before = msads_emulator.counters.get("authorize", 0)
    cookies = {"_token": _jwt(base_url, "viewer")}
    with httpx.Client(base_url=base_url, cookies=cookies, timeout=30) as client:
        assert client.get("/msads/").status_code == 403
        from airflow_provider_msads.ui import flow

        # Even with a valid form token for this session, the POST is refused and nothing starts.
        token = flow.csrf_token(cookies["_token"])
        answer = client.post("/msads/authorize", data={"conn_id": ui_connection, "csrf": token})
        assert answer.status_code == 403
        assert "may not edit" in answer.text
    with httpx.Client(base_url=base_url, timeout=30) as anonymous:
        assert anonymous.get("/msads/").status_code == 401
    with httpx.Client(base_url=base_url, cookies={"_token": _jwt(base_url, "admin")}, timeout=30) as admin:
        # An admin without the page's form token (a cross-site form): refused, nothing started.
        forged = admin.post("/msads/authorize", data={"conn_id": ui_connection, "csrf": "forged"})
        assert forged.status_code == 403
    assert msads_emulator.counters.get("authorize", 0) == before


def test_token_health_page(
    chromium: Any,
    ui_server: tuple[str, Path],
    msads_emulator: Any,
    ui_connection: str,
    dags_folder: Path,
    output_dir: Path,
) -> None:
    """The health-check DAG's verdict, the rotation date and days left, and Validate now."""
    import shutil

    from _support.dags import load_dag

    from airflow_provider_msads.cli.metastore import server_context

    base_url, _ = ui_server
    target = dags_folder / "msads_token_health_check.py"
    shutil.copy(ROOT / "dags_example" / "msads_token_health_check.py", target)
    with server_context():
        run = load_dag(target, "msads_token_health_check").test(run_conf={"conn_ids": [ui_connection]})
    assert str(run.state) in ("success", "DagRunState.SUCCESS"), run.state
    context = _signed_in(chromium, base_url, "admin")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{base_url}/msads/health")
        row = page.locator(f"tr[data-conn-id='{ui_connection}']")
        assert row.count() == 1
        text = row.inner_text()
        assert "valid" in text and "OK - credentials valid" in text, text  # the DAG's verdict
        assert "(health-check DAG)" in text, text
        assert "90 of 90 days left" in text, text  # the DAG's validation rotated the refresh token
        row.get_by_role("button", name="Validate now").click()
        page.wait_for_selector("#summary")
        assert "OK - credentials valid" in page.locator("#summary").inner_text()
        page.goto(f"{base_url}/msads/health")
        row = page.locator(f"tr[data-conn-id='{ui_connection}']")
        text = row.inner_text()
        assert "90 of 90 days left" in text, text
        # The newer verdict is Validate now's, kept for the page (it used to show the DAG's still).
        assert "(Validate now, admin)" in text and "OK - credentials valid" in text, text
        _shot(page, "ui-token-health.png", output_dir)
        html = page.content()
        for secret in _secrets_of(msads_emulator):
            assert secret not in html
    finally:
        context.close()


def test_new_connection_from_the_form(
    chromium: Any, ui_server: tuple[str, Path], msads_emulator: Any, browser_airflow_db: Path
) -> None:
    """Fill the fields of a new connection, authorize it, and the saved connection works."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_msads.cli.metastore import find_connection

    base_url, log_path = ui_server
    conn_id = "msads_ui_new_form"
    msads_emulator.app.redirect_uris = [f"{base_url}/msads/callback"]
    context = _signed_in(chromium, base_url, "admin")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{base_url}/msads/")
        form = page.locator("form[action='/msads/new']")
        form.locator("input[name='conn_id']").fill(conn_id)
        form.locator("input[name='client_id']").fill(msads_emulator.app.client_id)
        form.locator("input[name='client_secret']").fill(msads_emulator.app.client_secret)
        form.locator("input[name='developer_token']").fill(msads_emulator.developer_token)
        form.locator("input[name='customer_id']").fill(msads_emulator.customer_id)
        form.locator("input[name='account_id']").fill(msads_emulator.account.id)
        form.locator("summary").click()
        form.locator("input[name='authorize_url']").fill(msads_emulator.authorize_url())
        form.locator("input[name='token_url']").fill(msads_emulator.token_url())
        form.locator("input[name='customer_management_url']").fill(msads_emulator.customer_management_url)
        form.locator("input[name='redirect'][value='callback']").check()
        form.get_by_role("button").click()
        page.wait_for_selector("h1:text('Authorized; every credential is valid')")
        stored = find_connection(conn_id)
        assert stored is not None and stored.login == msads_emulator.app.client_id
        assert stored.option("refresh_token") == msads_emulator.issued_refresh_tokens[0]
        for secret in _secrets_of(msads_emulator):
            assert secret not in page.content()
            assert secret not in log_path.read_text(errors="replace")
    finally:
        context.close()
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        from airflow.models.variable import Variable

        from airflow_provider_msads.token_store import storage_key

        Variable.delete(storage_key(conn_id))


# ------------------------------------------------------------------------------ forged records (issue #25)


def _csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def _answer_for(base_url: str, user: str, conn_id: str, form: str = "callback") -> tuple[str, dict[str, str]]:
    """As ``user``: start *Authorize with Microsoft* for ``conn_id`` and let the emulator answer;
    the answer's URL (not opened) and its query."""
    with httpx.Client(base_url=base_url, cookies={"_token": _jwt(base_url, user)}, timeout=30) as client:
        csrf = _csrf_of(client.get("/msads/").text)
        start = client.post("/msads/authorize", data={"conn_id": conn_id, "csrf": csrf, "redirect": form})
        assert start.status_code == 303, start.text
    to_microsoft = httpx.get(start.headers["location"], timeout=30)
    assert to_microsoft.status_code == 302, to_microsoft.text
    answer = to_microsoft.headers["location"]
    return answer, {k: v[0] for k, v in parse_qs(urlsplit(answer).query).items()}


def _pending_variable(state: str) -> str:
    import hashlib

    return "msads_ui_authorization_" + hashlib.sha256(state.encode()).hexdigest()[:40]


def _rewrite(value: str, **changes: str) -> str:
    """The pending record with ``changes``, whatever its form (plain JSON, or a sealed envelope
    whose seal is kept as it was: the attacker cannot compute another)."""
    document = json.loads(value)
    if isinstance(document.get("record"), str):
        document["record"] = json.dumps({**json.loads(document["record"]), **changes})
        return json.dumps(document)
    return json.dumps({**document, **changes})


def _code_exchanges(emulator: Any) -> int:
    return len([r for r in emulator.token_requests if r.get("grant_type") == "authorization_code"])


def test_a_rewritten_or_made_up_pending_record_steers_no_token(
    ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str
) -> None:
    """Whoever may write Variables (the op here; in Airflow's threat model Variable editors are not
    trusted with connections) starts an authorization of their own connection, then rewrites its
    pending record to name the admin and the admin's connection, and sends the admin the answer's
    link: one click must not put the attacker's refresh token into the admin's connection. A record
    made up for a state of the attacker's choosing is refused the same way."""
    from airflow.models.variable import Variable

    from airflow_provider_msads.cli import metastore

    base_url, _ = ui_server
    msads_emulator.app.redirect_uris = [f"{base_url}/msads/callback"]
    own = "msads_attackers_own"
    metastore.save_connection(own, msads_emulator.connection_dict(), replace=True, description="attacker")
    try:
        answer, query = _answer_for(base_url, "op", own)
        key = _pending_variable(query["state"])
        with metastore.server_context():
            Variable.set(key, _rewrite(Variable.get(key), user_id="admin", conn_id=ui_connection))
        made_up = secrets.token_urlsafe(32)
        record = {"user_id": "admin", "conn_id": ui_connection, "redirect_uri": f"{base_url}/msads/callback"}
        with metastore.server_context():
            Variable.set(_pending_variable(made_up), json.dumps({**record, "expires_at": 4102444800.0}))

        stored = _stored_refresh_token(ui_connection)
        exchanges = _code_exchanges(msads_emulator)
        admin = {"_token": _jwt(base_url, "admin")}
        for link in (answer, f"{base_url}/msads/callback?code={query['code']}&state={made_up}"):
            page = httpx.get(link, cookies=admin, timeout=60)
            assert page.status_code == 400, page.text
            assert "Sign-in answer refused" in page.text and "not issued by this Airflow" in page.text
        assert _stored_refresh_token(ui_connection) == stored
        assert _code_exchanges(msads_emulator) == exchanges  # the code was never sent to Microsoft
    finally:
        from airflow.models.connection import Connection
        from airflow.utils.session import create_session

        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == own).delete()


def test_a_sign_in_answer_whose_record_was_purged_lands_on_the_plugins_page(
    ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str
) -> None:
    """An answer on the root for a state no longer known (its record purged) used to fall through
    to Airflow's UI, and the access log showed its code and state: now it is redirected to the
    plugin's page, whose URL holds neither."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    base_url, log_path = ui_server
    msads_emulator.app.redirect_uris = [base_url]
    answer, query = _answer_for(base_url, "admin", ui_connection, form="root")
    with create_session() as session:  # what begin() does with records past their expiry
        session.query(Variable).filter(Variable.key.like("msads_ui_authorization_%")).delete(synchronize_session=False)
    with httpx.Client(cookies={"_token": _jwt(base_url, "admin")}, timeout=30) as client:
        first = client.get(answer)
        assert first.status_code == 303, first.text
        landed = first.headers["location"]
        assert landed == "/msads/answer-unknown"
        page = client.get(base_url + landed)
    assert page.status_code == 400 and "Sign-in answer not recognised" in page.text
    log_text = log_path.read_text(errors="replace")
    assert query["code"] not in log_text and query["state"] not in log_text
    assert query["code"] not in landed and query["state"] not in landed


def test_the_token_health_verdict_comes_only_from_the_health_check_dag_and_sealed_records(
    ui_server: tuple[str, Path], msads_emulator: Any, ui_connection: str, dags_folder: Path
) -> None:
    """The USER role may post an XCom named ``report`` to any task of any DAG (and patch one), and
    an op may write the Variable Validate now keeps: none of them shows on the page, nor does a
    verdict dated in year 9999; the health-check DAG's own verdict does."""
    import shutil

    from _support.dags import load_dag

    from airflow_provider_msads.cli import metastore

    base_url, _ = ui_server
    target = dags_folder / "msads_token_health_check.py"
    shutil.copy(ROOT / "dags_example" / "msads_token_health_check.py", target)
    with metastore.server_context():
        run = load_dag(target, "msads_token_health_check").test(run_conf={"conn_ids": [ui_connection]})
    forged = {"conn_id": ui_connection, "ok": True, "retryable": False, "checked_at": "9999-12-31T23:59:59Z"}
    run_path = f"/api/v2/dags/msads_token_health_check/dagRuns/{run.run_id}/taskInstances"

    def health_row() -> str:
        page = httpx.get(f"{base_url}/msads/health", cookies={"_token": _jwt(base_url, "admin")}, timeout=60)
        assert page.status_code == 200
        row = re.search(rf'<tr data-conn-id="{ui_connection}">.*?</tr>', page.text, re.S)
        assert row, page.text
        return row.group(0)

    with httpx.Client(base_url=base_url, timeout=30) as op:
        op.headers["Authorization"] = f"Bearer {_jwt(base_url, 'op')}"
        variable = {**forged, "summary": "FORGED by a Variable", "source": "Validate now, admin"}
        made = op.post(
            "/api/v2/variables", json={"key": metastore._validation_key(ui_connection), "value": json.dumps(variable)}
        )
        assert made.status_code in (200, 201), made.text
    with httpx.Client(base_url=base_url, timeout=30) as user:
        user.headers["Authorization"] = f"Bearer {_jwt(base_url, 'user')}"
        posted = user.post(
            f"{run_path}/connection_ids/xcomEntries",
            json={"key": "report", "value": {**forged, "summary": "FORGED by an XCom of another task"}},
        )
        assert posted.status_code in (200, 201), posted.text
        row = health_row()
        assert "FORGED" not in row and "9999" not in row, row
        assert "(health-check DAG)" in row and "OK - credentials valid" in row, row  # the DAG's own verdict
        # Patching the DAG's own XCom replaces it: the patched value (written after the task
        # instance ended) is not believed either, so the page says it has no verdict.
        patched = user.patch(
            f"{run_path}/validate/xcomEntries/report",
            json={"value": {**forged, "summary": "FORGED by patching the DAG's XCom"}, "map_index": 0},
        )
        assert patched.status_code == 200, patched.text
    row = health_row()
    assert "FORGED" not in row and "9999" not in row, row
    assert "not checked by the health-check DAG yet" in row, row


def test_validate_now_sends_credentials_only_where_a_task_would(
    ui_server: tuple[str, Path], msads_emulator: Any, browser_airflow_db: Path
) -> None:
    """With connection tests Enabled, Validate now runs the hook as a task does, with its URL rules:
    a token URL on a host that is neither Microsoft's, loopback nor in MSADS_ALLOWED_HOSTS gets the
    hook's refusal, and nothing is sent anywhere (the emulator sees no request)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_msads.cli import metastore

    base_url, _ = ui_server
    conn_id = "msads_ui_foreign_host"
    document = msads_emulator.connection_dict()
    document["extra"]["token_url"] = "https://login.example.net/common/oauth2/v2.0/token"
    metastore.save_connection(conn_id, document, replace=True, description="foreign host")
    before = dict(msads_emulator.counters)
    try:
        with httpx.Client(base_url=base_url, cookies={"_token": _jwt(base_url, "admin")}, timeout=60) as admin:
            csrf = _csrf_of(admin.get("/msads/").text)
            answer = admin.post("/msads/validate", data={"conn_id": conn_id, "csrf": csrf})
        assert answer.status_code in (200, 400), answer.text
        assert "login.example.net" in answer.text and "MSADS_ALLOWED_HOSTS" in answer.text, answer.text
        assert "valid</title>" not in answer.text
        assert dict(msads_emulator.counters) == before
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
