"""Helpers for the emulator tests (a uniquely named module, importable from every test file)."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from airflow_provider_msads.testing.emulator import DEFAULT_SCOPE, MicrosoftAdsEmulator

AADSTS_DESCRIPTION = re.compile(
    r"^AADSTS(?P<code>\d+): (?P<text>.+)\r\nTrace ID: (?P<trace>[0-9a-f-]{36})\r\n"
    r"Correlation ID: (?P<corr>[0-9a-f-]{36})\r\nTimestamp: (?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)$",
    re.DOTALL,
)


class Driver:
    """Speaks to one emulator the way a client would (form posts, bearer headers)."""

    def __init__(self, emulator: MicrosoftAdsEmulator, http: httpx.Client) -> None:
        self.emu = emulator
        self.http = http

    def token(self, *, tenant: str = "common", **form: Any) -> httpx.Response:
        data = {
            "client_id": self.emu.app.client_id,
            "client_secret": self.emu.app.client_secret,
            "scope": DEFAULT_SCOPE,
        }
        data.update(form)
        return self.http.post(self.emu.token_url(tenant), data={k: v for k, v in data.items() if v is not None})

    def refresh(self, refresh_token: str, /, **form: Any) -> httpx.Response:
        return self.token(**{"grant_type": "refresh_token", "refresh_token": refresh_token, **form})

    def exchange(self, code: str, /, **form: Any) -> httpx.Response:
        form.setdefault("redirect_uri", "http://localhost:8080")
        return self.token(**{"grant_type": "authorization_code", "code": code, **form})

    def authorize(self, *, tenant: str = "common", **params: Any) -> httpx.Response:
        query = {
            "client_id": self.emu.app.client_id,
            "response_type": "code",
            "redirect_uri": "http://localhost:8080",
            "scope": DEFAULT_SCOPE,
        }
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        return self.http.get(self.emu.authorize_url(tenant), params=query, follow_redirects=False)

    def authorize_code(self, **params: Any) -> str:
        response = self.authorize(**params)
        assert response.status_code == 302, response.text
        return redirect_params(response)["code"]

    def access_token(self) -> str:
        response = self.refresh(self.emu.issue_refresh_token())
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def api(
        self,
        path: str,
        payload: Any,
        *,
        access_token: str | None = None,
        developer_token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {
            "Authorization": f"Bearer {access_token or self.access_token()}",
            "DeveloperToken": developer_token or self.emu.developer_token,
        }
        if headers is not None:
            sent = headers
        return self.http.post(f"{self.emu.customer_management_url}/{path}", json=payload, headers=sent)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a 302 answer's Location."""
    location = response.headers["Location"]
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def assert_aad_error(response: httpx.Response, status: int, error: str, code: int) -> dict[str, Any]:
    """Microsoft's error JSON, field by field (clients branch on error and error_codes)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    match = AADSTS_DESCRIPTION.match(body["error_description"])
    assert match is not None, body["error_description"]
    assert int(match["code"]) == code
    assert match["trace"] == body["trace_id"]
    assert match["corr"] == body["correlation_id"]
    assert match["ts"] == body["timestamp"]
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    return body


class FakeClock:
    """A settable clock for ``emulator.clock``: time moves only when the test says so."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
