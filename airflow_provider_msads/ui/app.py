"""The plugin's FastAPI app (mounted at ``/msads``) and the callback both redirect forms share.

Imported only by the API server, on the first request to the plugin (see :mod:`.plugin`), never
at DAG parse time. Every page checks the signed-in Airflow user with the auth manager, as
Airflow's own connection routes do: ``is_authorized_connection(method="PUT")`` for what writes a
connection (authorize, validate now), ``GET`` for what only reads (token health).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from airflow_provider_msads.cli.authorize import Redirect, authorization_error
from airflow_provider_msads.errors import MicrosoftAdsError
from airflow_provider_msads.ui import flow
from airflow_provider_msads.ui.health import (
    REFRESH_TOKEN_LIFETIME_DAYS,
    TESTS_OFF,
    _recorded,
    connection_tests_enabled,
    last_reports,
    msads_conn_ids,
    newest_verdicts,
    token_health,
)
from airflow_provider_msads.ui.pages import HEADERS, e, hidden, options, page, verdict_table, when

log = logging.getLogger(__name__)

COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
P = flow.PREFIX
#: The new-connection form's fields beyond the app (ids, environment, overrides), as check_settings names them.
_FORM_VALUES = (
    "developer_token",
    "customer_id",
    "account_id",
    "environment",
    "tenant",
    "token_url",
    "authorize_url",
    "customer_management_url",
)


def html_page(status: int, title: str, body: str, prefix: str = P) -> HTMLResponse:
    return HTMLResponse(
        page(title, body, prefix=prefix, home=airflow_root(prefix) + "/"), status_code=status, headers=dict(HEADERS)
    )


def root_path_of(scope: Mapping[str, Any]) -> str:
    """Where Airflow is served on its host, without trailing slash: ``""``, or ``/airflow`` when
    ``[api] base_url`` has a sub-path (Airflow's app sets it as the ASGI ``root_path``)."""
    return str(scope.get("root_path") or "").rstrip("/")


def prefix_of(scope: Mapping[str, Any]) -> str:
    """The plugin's pages as the browser reaches them (``/msads``, ``/airflow/msads``), from a
    request to the mounted app (whose ``root_path`` ends with the mount prefix)."""
    root = root_path_of(scope)
    return root if root.endswith(P) else root + P


def airflow_root(prefix: str) -> str:
    return prefix[: -len(P)] if prefix.endswith(P) else ""


# ------------------------------------------------------------------------------ who is asking


class Caller:
    """The signed-in Airflow user of a request and what the auth manager lets them do."""

    def __init__(self, user: Any, session: str) -> None:
        self.user = user
        self.session = session

    @property
    def id(self) -> str:
        return str(self.user.get_id())

    @property
    def name(self) -> str:
        """The user's name as the auth manager knows it (its id when it has none)."""
        with contextlib.suppress(Exception):
            if name := self.user.get_name():
                return str(name)
        return self.id

    def may(self, method: str, conn_id: str | None) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

        try:
            return bool(
                get_auth_manager().is_authorized_connection(
                    method=method,  # type: ignore[arg-type]
                    details=ConnectionDetails(conn_id=conn_id),
                    user=self.user,
                )
            )
        except Exception:  # an auth manager that fails refuses
            log.exception("The auth manager failed to answer for connection %r", conn_id)
            return False


async def caller_of(cookies: Mapping[str, str]) -> Caller | None:
    """The user of Airflow's JWT cookie, or None (not signed in, expired, forged)."""
    token = cookies.get(COOKIE)
    if not token:
        return None
    from airflow.api_fastapi.app import get_auth_manager

    try:
        found: Any = get_auth_manager().get_user_from_token(token)
        user = (await found) if inspect.isawaitable(found) else found
    except Exception:
        return None
    return Caller(user, token)


def _not_signed_in(prefix: str = P) -> HTMLResponse:
    return html_page(
        401,
        "Sign in to Airflow first",
        f'<p>This page needs an Airflow session in this browser. <a href="{e(airflow_root(prefix))}/">Sign in to '
        "Airflow</a>, then open Microsoft Advertising from Airflow's menu again.</p>",
        prefix,
    )


def _forbidden(conn_id: str | None, prefix: str = P) -> HTMLResponse:
    what = f"connection <code>{e(conn_id)}</code>" if conn_id else "Microsoft Advertising connections"
    return html_page(
        403,
        "Not allowed",
        f"<p>Your Airflow user may not edit {what}, so no authorization was started. Ask an Airflow admin to "
        "give you the right to edit connections, or to authorize it for you.</p>",
        prefix,
    )


def _base_url(request: Request) -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or str(request.base_url)).rstrip("/")


# ------------------------------------------------------------------------------ the callback


def _finish(params: dict[str, str], caller: Caller, prefix: str = P) -> tuple[int, str, str]:
    """Check the state, redeem the code, store and validate: ``(status, title, body)`` (runs in a thread).

    Whatever the pending record says is believed only because its seal opened for this state
    (:meth:`flow.Pending.open`); a made-up or rewritten record reads as "not issued", before any
    code is sent anywhere.
    """
    from airflow_provider_msads.cli import metastore
    from airflow_provider_msads.cli.authorize import exchange
    from airflow_provider_msads.cli.settings import settings_of_connection

    state = params.get("state") or ""
    store = flow.PendingStore()
    found = store.peek(state) if state else None
    if not isinstance(found, flow.Pending):
        why = {
            "used": "was already used: each authorization link works once",
            "expired": f"expired: an authorization must be finished within {flow.STATE_TTL // 60} minutes",
        }.get(str(found), "was not issued by this Airflow for you")
        return (
            400,
            "Sign-in answer refused",
            (
                f"<p>This sign-in answer {e(why)}, so its code was not used.</p>"
                f'<p><a href="{prefix}/">Start the authorization again</a>.</p>'
            ),
        )
    if found.user_id != caller.id:
        return (
            403,
            "Sign-in answer refused",
            (
                "<p>This authorization was started by another Airflow user; its code was not used. "
                f'<a href="{prefix}/">Start your own</a>.</p>'
            ),
        )
    if not caller.may("PUT", found.conn_id):
        return 403, "Not allowed", f"<p>Your Airflow user may not edit connection <code>{e(found.conn_id)}</code>.</p>"
    pending = store.claim(state)
    if pending is None:
        return (
            400,
            "Sign-in answer refused",
            "<p>This sign-in answer was already used; its code was not used again.</p>",
        )
    conn_id = pending.conn_id
    again = f'<p><a href="{prefix}/?conn_id={e(conn_id)}">Try again</a>.</p>'
    if "error" in params:
        err = authorization_error(
            Redirect(
                state=state,
                error=params.get("error") or "unknown_error",
                error_description=params.get("error_description"),
            )
        )
        return (
            400,
            "Microsoft did not authorize the app",
            (
                f'<div class="box error"><p>{e(err)}</p></div>'
                f"<p>Connection <code>{e(conn_id)}</code> was left unchanged.</p>{again}"
            ),
        )
    code = params.get("code")
    if not code:
        return 400, "Sign-in answer refused", f"<p>The answer carries no code.</p>{again}"
    try:
        settings = settings_of_connection(conn_id)
        request = flow.authorization_request(
            endpoints=settings.endpoints, client_id=settings.client_id, pending=pending, state=state
        )
        tokens = exchange(
            request,
            code,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            endpoints=settings.endpoints,
        )
        assert tokens.refresh_token is not None
        what = metastore.store_authorization(conn_id, tokens.refresh_token)
    except MicrosoftAdsError as err:
        return (
            400,
            "The authorization failed",
            (
                f'<div class="box error"><p>{e(err)}</p></div><p>Connection <code>{e(conn_id)}</code> was left '
                f"unchanged.</p>{again}"
            ),
        )
    log.info("Connection %r authorized from the UI by user %s", conn_id, caller.id)
    reset = "its token store was reset so the new refresh token is used from now on"
    body = f'<div class="box"><p>{e(what)}; {reset}.</p></div>'
    try:
        report = metastore.validate_connection(conn_id, tokens)
    except Exception as exc:
        return 200, "Authorized", body + f"<p>Could not run the validation ({e(type(exc).__name__)}).</p>"
    data = report.to_dict()
    verdicts = list(data["verdicts"].values())
    headline = "Authorized; every credential is valid" if report.ok else "Authorized; some credentials need attention"
    return 200, headline, body + f'<p id="summary">{e(data["summary"])}</p>' + verdict_table(verdicts)


def _redact(scope: dict[str, Any]) -> None:
    """Replace code and state in the request's query, which the access log prints when the request ends."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    scope["query_string"] = urlencode([(k, "***" if k in ("code", "state") else v) for k, v in pairs]).encode("latin-1")


#: The plugin's page for a sign-in answer whose state this deployment no longer knows.
UNKNOWN_ANSWER_PATH = "/answer-unknown"
#: What ``secrets.token_urlsafe(32)`` makes: the shape of a state this plugin issues.
_STATE_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


async def callback(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Microsoft's redirect, on the API server's root or on ``/msads/callback`` (under ``[api]
    base_url``'s sub-path, if any)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request as StarletteRequest

    request = StarletteRequest(scope, receive)
    params = dict(request.query_params)
    _redact(scope)
    prefix = root_path_of(scope) + P
    caller = await caller_of(request.cookies)
    if caller is None:
        response: Response = _not_signed_in(prefix)
    else:
        status, title, body = await run_in_threadpool(_finish, params, caller, prefix)
        response = html_page(status, title, body, prefix)
    await response(scope, receive, send)


async def unknown_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A sign-in answer on the root whose state is no longer known (its record was purged):
    redirected to the plugin's page that says so, so that neither the URL the browser lands on
    nor Airflow's access log (the query is redacted first) holds the code or the state."""
    _redact(scope)
    location = root_path_of(scope) + P + UNKNOWN_ANSWER_PATH
    await RedirectResponse(location, status_code=303, headers=dict(HEADERS))(scope, receive, send)


def looks_like_an_answer(query_string: bytes) -> bool:
    """A query such as Microsoft sends back to a redirect URI for a state of this plugin's shape."""
    params = dict(parse_qsl(query_string.decode("latin-1")))
    state = params.get("state") or ""
    return bool(_STATE_SHAPE.fullmatch(state)) and ("code" in params or "error" in params)


async def is_issued_state(query_string: bytes) -> bool:
    """True when the query's ``state`` is one this deployment issued (pending, used or expired)."""
    from starlette.concurrency import run_in_threadpool

    params = dict(parse_qsl(query_string.decode("latin-1")))
    state = params.get("state")
    if not state or not ("code" in params or "error" in params):
        return False
    try:
        return await run_in_threadpool(lambda: flow.PendingStore().peek(state) is not None)
    except Exception as exc:
        # The exception's type only: a traceback could carry the Variable key derived from state.
        log.warning("Could not look up an authorization state (%s).", type(exc).__name__)
        return False


# ------------------------------------------------------------------------------ the pages


def create_app() -> FastAPI:
    app = FastAPI(title="Microsoft Advertising", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request, conn_id: str | None = None) -> Response:
        p = prefix_of(request.scope)
        caller = await caller_of(request.cookies)
        if caller is None:
            return _not_signed_in(p)
        if not caller.may("PUT", None):
            return _forbidden(None, p)
        ids = await _threaded(msads_conn_ids)
        base = _base_url(request)
        csrf = flow.csrf_token(caller.session)
        root, cb = flow.root_redirect_uri(base), flow.callback_uri(base)
        redirect_choice = (
            "<fieldset><legend>Redirect URI registered in the app (Authentication, platform Web)</legend>"
            f'<label><input type="radio" name="redirect" value="root" checked> <code>{e(root)}</code> '
            "(the API server's root, as the credentials guide registers it for a local Airflow)</label>"
            f'<label><input type="radio" name="redirect" value="callback"> <code>{e(cb)}</code> '
            "(this page's callback, for a deployed Airflow)</label></fieldset>"
        )
        existing = (
            f'<form method="post" action="{p}/authorize" class="box">{hidden("csrf", csrf)}'
            f'<label>Connection <select name="conn_id" id="conn_id">{options(ids, conn_id)}</select></label>'
            f'{redirect_choice}<p><button type="submit" id="authorize">Authorize with Microsoft</button></p></form>'
            if ids
            else "<p>No Microsoft Advertising connection yet: create one below.</p>"
        )
        new = (
            f'<form method="post" action="{p}/new" class="box" autocomplete="off">{hidden("csrf", csrf)}'
            '<label>Connection id <input name="conn_id" required value="msads_default"></label>'
            '<label>Client ID <input name="client_id" required></label>'
            '<label>Client Secret (its Value) <input name="client_secret" type="password" required></label>'
            '<label>Developer Token <input name="developer_token" type="password"></label>'
            '<label>Customer ID <input name="customer_id"></label><label>Account ID <input name="account_id"></label>'
            f'<label>Environment <select name="environment">{options(["production", "sandbox"])}</select></label>'
            "<details><summary>Overrides (a tenant, or endpoints other than Microsoft's defaults)</summary>"
            '<label>Tenant <input name="tenant" placeholder="common"></label>'
            '<label>Authorize URL <input name="authorize_url" size="60"></label>'
            '<label>Token URL <input name="token_url" size="60"></label>'
            '<label>Customer Management URL <input name="customer_management_url" size="60"></label></details>'
            f'{redirect_choice}<p><button type="submit">Save and authorize with Microsoft</button></p></form>'
        )
        body = (
            "<p>Sign in at Microsoft as a user who can open the Microsoft Advertising account and click Accept; "
            "the refresh token goes straight into the connection (nothing to copy), its token store is reset, and "
            "the credentials are validated. The redirect URI you choose must be registered exactly in the app.</p>"
            f"<h2>Authorize an existing connection</h2>{existing}<h2>Or create a connection</h2>{new}"
        )
        return html_page(200, "Authorize with Microsoft", body, p)

    async def _start(request: Request, caller: Caller, conn_id: str, redirect: str) -> Response:
        from airflow_provider_msads.cli.settings import settings_of_connection

        p = prefix_of(request.scope)
        base = _base_url(request)
        redirect_uri = flow.callback_uri(base) if redirect == "callback" else flow.root_redirect_uri(base)

        def start() -> str:
            settings = settings_of_connection(conn_id)
            state, pending = flow.PendingStore().begin(user_id=caller.id, conn_id=conn_id, redirect_uri=redirect_uri)
            return flow.authorization_request(
                endpoints=settings.endpoints, client_id=settings.client_id, pending=pending, state=state
            ).url

        try:
            url = await _threaded(start)
        except MicrosoftAdsError as err:
            return html_page(400, "Cannot start the authorization", f'<div class="box error"><p>{e(err)}</p></div>', p)
        return RedirectResponse(url, status_code=303, headers=dict(HEADERS))

    async def _checked(request: Request, csrf: str, conn_id: str) -> Caller | Response:
        p = prefix_of(request.scope)
        caller = await caller_of(request.cookies)
        if caller is None:
            return _not_signed_in(p)
        if not flow.csrf_ok(caller.session, csrf):
            return html_page(
                403, "Form expired", f'<p>The form was not sent by this page. <a href="{p}/">Reload</a>.</p>', p
            )
        if not caller.may("PUT", conn_id):
            return _forbidden(conn_id, p)
        return caller

    @app.post("/authorize")
    async def authorize(
        request: Request, conn_id: str = Form(...), csrf: str = Form(""), redirect: str = Form("root")
    ) -> Response:
        caller = await _checked(request, csrf, conn_id)
        if not isinstance(caller, Caller):
            return caller
        return await _start(request, caller, conn_id, redirect)

    @app.post("/new")
    async def new(request: Request) -> Response:
        form = await request.form()
        values = {k: str(v).strip() for k, v in form.items() if isinstance(v, str)}
        conn_id = values.get("conn_id", "")
        caller = await _checked(request, values.get("csrf", ""), conn_id)
        if not isinstance(caller, Caller):
            return caller
        if not caller.may("POST", conn_id):
            return _forbidden(conn_id, prefix_of(request.scope))

        def save() -> None:
            from airflow_provider_msads.cli import metastore
            from airflow_provider_msads.cli.output import check_conn_id
            from airflow_provider_msads.cli.settings import check_settings

            check_conn_id(conn_id)
            if metastore.find_connection(conn_id) is not None:
                raise flow.UiError(
                    f"A connection {conn_id!r} already exists; it was left unchanged.",
                    field="conn_id",
                    remedy="Pick it under 'Authorize an existing connection', or choose another id.",
                )
            names = ("client_id", "client_secret", *_FORM_VALUES)
            settings = check_settings({k: values.get(k) or None for k in names}, conn_id)
            metastore.save_connection(
                conn_id,
                settings.document(""),
                replace=False,
                description="Microsoft Advertising; created in the Airflow UI",
            )

        try:
            await _threaded(save)
        except MicrosoftAdsError as err:
            return html_page(
                400,
                "Cannot create the connection",
                f'<div class="box error"><p>{e(err)}</p></div>',
                prefix_of(request.scope),
            )
        return await _start(request, caller, conn_id, values.get("redirect", "root"))

    @app.get(UNKNOWN_ANSWER_PATH, response_class=HTMLResponse)
    async def answer_unknown(request: Request) -> Response:
        p = prefix_of(request.scope)
        return html_page(
            400,
            "Sign-in answer not recognised",
            (
                "<p>This sign-in answer belongs to no authorization this Airflow is waiting for: it was started "
                f"more than {flow.STATE_TTL // 60} minutes ago, or elsewhere. Its code was not used, and it is not "
                f'kept.</p><p><a href="{p}/">Start the authorization again</a>.</p>'
            ),
            p,
        )

    @app.get("/health", response_class=HTMLResponse)
    async def health(request: Request) -> Response:
        p = prefix_of(request.scope)
        caller = await caller_of(request.cookies)
        if caller is None:
            return _not_signed_in(p)
        ids = [i for i in await _threaded(msads_conn_ids) if caller.may("GET", i)]
        dag_reports = await _threaded(last_reports)
        reports = newest_verdicts(dag_reports, await _threaded(lambda: _recorded(ids)))
        rows = await _threaded(lambda: [token_health(i) for i in ids])
        csrf = flow.csrf_token(caller.session)
        tests = connection_tests_enabled()
        out = []
        for row in rows:
            conn_id = row["conn_id"]
            report = reports.get(conn_id)
            verdict = (
                f'<span class="{"ok" if report.get("ok") else "failed"}">{"valid" if report.get("ok") else "failed"}'
                f"</span> {e(report.get('checked_at'))} <span class='muted'>({e(report.get('source'))})</span>"
                f"<br><span class='muted'>{e(report.get('summary'))}</span>"
                if report
                else '<span class="muted">not checked by the health-check DAG yet</span>'
            )
            days = row.get("days_left")
            rotated = (
                f"{when(row['refresh_rotated_at'])}<br>{e(days)} of {REFRESH_TOKEN_LIFETIME_DAYS} days left"
                if row.get("refresh_rotated_at")
                else "not since it was saved (no rotation recorded)"
            )
            button = (
                f'<form method="post" action="{p}/validate">{hidden("csrf", csrf)}{hidden("conn_id", conn_id)}'
                '<button type="submit">Validate now</button></form>'
                if tests and caller.may("PUT", conn_id)
                else ""
            )
            access = when(row["access_expires_at"]) if row.get("access_expires_at") else "none cached"
            problem = f"<br><span class='failed'>{e(row['problem'])}</span>" if row.get("problem") else ""
            out.append(
                f'<tr data-conn-id="{e(conn_id)}"><td><code>{e(conn_id)}</code>{problem}</td><td>{verdict}</td>'
                f"<td>{rotated}</td><td>{e(access)}</td>"
                f"<td>{e(row.get('client_secret_expires_on') or 'not recorded')}</td>"
                + (f"<td>{button}</td>" if tests else "")
                + "</tr>"
            )
        table = (
            "<table><tr><th>Connection</th><th>Last validation</th><th>Refresh token last rotated</th>"
            "<th>Access token expires</th><th>Client secret expires</th>"
            + ("<th></th>" if tests else "")
            + "</tr>"
            + "".join(out)
            + "</table>"
            if out
            else "<p>No Microsoft Advertising connection you may read.</p>"
        )
        body = (
            "<p>Microsoft revokes a refresh token that has not been used for 90 days; each refresh rotates it and "
            "restarts the count. The health-check DAG (dags_example/msads_token_health_check.py) keeps them alive "
            "and records the verdicts shown here, as does Validate now (the newer of the two is shown).</p>"
            + ("" if tests else f'<p class="muted" id="tests-off">{e(TESTS_OFF)}</p>')
            + table
        )
        return html_page(200, "Token health", body, p)

    @app.post("/validate")
    async def validate(request: Request, conn_id: str = Form(...), csrf: str = Form("")) -> Response:
        p = prefix_of(request.scope)
        caller = await _checked(request, csrf, conn_id)
        if not isinstance(caller, Caller):
            return caller
        if not connection_tests_enabled():
            return html_page(403, "Validate now is off", f"<p>{e(TESTS_OFF)}</p>", p)

        def run() -> Any:
            from airflow_provider_msads.cli import metastore

            # The hook itself, as a task builds it: its URL rules (endpoints.check_url) decide
            # where the secrets may go, and a URL a task would refuse is refused here too.
            return metastore.validate_connection(conn_id)

        try:
            report = (await _threaded(run)).to_dict()
        except MicrosoftAdsError as err:
            return html_page(400, f"{conn_id}: cannot validate", f'<div class="box error"><p>{e(err)}</p></div>', p)
        source = f"Validate now, {caller.name}"

        def record() -> None:
            from airflow_provider_msads.cli import metastore

            metastore.record_validation(conn_id, report, source, key=flow.record_key())

        try:
            await _threaded(record)
        except Exception as exc:  # the verdict is shown anyway; the health page keeps the older one
            log.warning("Could not record the validation of %r (%s)", conn_id, type(exc).__name__)
        title = f"{conn_id}: valid" if report["ok"] else f"{conn_id}: needs attention"
        return html_page(
            200,
            title,
            f'<p id="summary">{e(report["summary"])}</p>' + verdict_table(list(report["verdicts"].values())),
            p,
        )

    return app


async def _threaded(function: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function)
