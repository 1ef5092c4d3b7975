"""The Microsoft identity platform v2 endpoints ``/{tenant}/oauth2/v2.0/token`` and ``/authorize``
(refresh-token rotation, AADSTS error bodies, PKCE, single-use codes that expire).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import string
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode

from airflow_provider_msads.testing.emulator._catalogues import (
    _AADSTS,
    _AUTHORITY_ALIASES,
    _AUTHORIZE_ERROR_CODES,
    _HTML,
    _JSON,
    _MSA_INVALID_GRANT_TEXT,
    _OIDC_SCOPES,
    _RESOURCE_ENVIRONMENT,
)
from airflow_provider_msads.testing.emulator._http import _json_bytes, _Reply
from airflow_provider_msads.testing.emulator._injection import _FaultInjection
from airflow_provider_msads.testing.emulator._model import (
    EmulatorApp,
    _AccessToken,
    _AuthCode,
    _Injection,
    _RefreshToken,
    _Values,
)


class _Refusal(NamedTuple):
    """An AADSTS code refusing a request and the values its message template needs."""

    code: int
    values: dict[str, str]


class _IdentityPlatform(_FaultInjection):
    """The Microsoft identity platform v2: token and authorize endpoints, refresh-token rotation."""

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

    # ---------------------------------------------------------------------- helpers

    def _now_text(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")

    def _date_text(self, at: float) -> str:
        return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

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

    def _unknown_tenant(self, tenant: str) -> bool:
        """Neither an authority alias nor the emulated directory (AADSTS90002)."""
        return tenant not in _AUTHORITY_ALIASES and tenant != self.tenant_id

    def _client_app(self, tenant: str, client_id: str) -> tuple[EmulatorApp, dict[str, str]] | _Refusal:
        """The app a token or authorize request names, with the values AADSTS texts about it need,
        or why the identity platform refuses it (caller holds the lock)."""
        if not client_id:
            return _Refusal(900144, {"parameter": "client_id"})
        app = self._apps.get(client_id)
        if app is None:
            return _Refusal(700016, {"client_id": client_id, "tenant": tenant})
        values = {"client_id": client_id, "tenant": tenant, "app_name": app.display_name}
        if tenant in _AUTHORITY_ALIASES and not app.multi_tenant:
            return _Refusal(50194, values)
        return app, values

    def _new_refresh_token(self, client_id: str, resource: str, parent: str | None) -> str:
        """Mint a refresh token. Shaped like Microsoft-account ones: they carry '!', '*' and '$',
        which breaks clients that put tokens into URLs or forms without encoding them."""
        alphabet = string.ascii_letters + string.digits + "-_!*"
        token = self._rand.fresh(lambda: "M.C521_BAY.0.U.-" + self._rand.text(alphabet, 180) + "$", self._refresh)
        now = self.clock()
        self._refresh[token] = _RefreshToken(token, client_id, resource, now, now, parent=parent)
        self.issued_refresh_tokens.append(token)
        return token

    def _new_access_token(self, client_id: str, resource: str) -> str:
        token = self._rand.fresh(lambda: "EwA" + base64.b64encode(self._rand.bytes(96)).decode("ascii"), self._access)
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

        values = {"client_id": form.get("client_id", ""), "tenant": tenant, "scope": form.get("scope", "")}
        return self._with_injection(
            "token",
            lambda injection: self._injected_token_reply(injection, values),
            lambda: self._token_logic(tenant, method, form),
        )

    def _injected_token_reply(self, injection: _Injection, values: Mapping[str, str]) -> _Reply | None:
        """The identity platform's own kinds: ``aadsts``, ``oauth``, ``msa_invalid_grant``."""
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
        return reply

    def _token_logic(self, tenant: str, method: str, form: Mapping[str, str]) -> _Reply:
        if method != "POST":
            return self._token_error(900561, {"method": method})
        if self._unknown_tenant(tenant):
            return self._token_error(90002, {"tenant": tenant})
        grant_type = form.get("grant_type", "")
        if not grant_type:
            return self._token_error(900144, {"parameter": "grant_type"})
        if grant_type not in ("refresh_token", "authorization_code"):
            return self._token_error(70003, {"grant_type": grant_type})
        with self._lock:
            found = self._client_app(tenant, form.get("client_id", ""))
            if isinstance(found, _Refusal):
                return self._token_error(found.code, found.values)
            app, values = found
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
        return self._with_injection(
            "authorize",
            lambda injection: self._injected_authorize_reply(injection, params),
            lambda: self._authorize_logic(tenant, method, params),
        )

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
        """``aadsts`` and ``oauth``: redirected like Microsoft, or its error page for an untrusted redirect."""
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
        if self._unknown_tenant(tenant):
            return self._error_page(90002, {"tenant": tenant})
        with self._lock:
            found = self._client_app(tenant, params.get("client_id", ""))
            if isinstance(found, _Refusal):
                return self._error_page(found.code, found.values)
            app, values = found
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
                client_id=app.client_id,
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
