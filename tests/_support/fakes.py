"""Shared helpers of the unit tests (a unique module name, importable from every test dir)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials, parse_credentials

CLIENT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CLIENT_SECRET = "Sx~8Q~CLIENT-SECRET-VALUE-unit-test-123"
DEV_TOKEN = "DEVTOKENUNIT1234"
CONN_REFRESH = "M.C5_BAY.CONN-REFRESH-TOKEN-unit-test-0001"
TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"


def make_credentials(**overrides: Any) -> MicrosoftAdsCredentials:
    extra = {
        "account_id": "180535609",
        "customer_id": "251186883",
        "developer_token": DEV_TOKEN,
        "refresh_token": CONN_REFRESH,
        "token_url": TOKEN_URL,
    }
    extra.update(overrides.pop("extra", {}))
    return parse_credentials(
        conn_id=overrides.pop("conn_id", "msads_unit"),
        login=overrides.pop("login", CLIENT_ID),
        password=overrides.pop("password", CLIENT_SECRET),
        extra=extra,
    )


@dataclass
class FakeTokenEndpoint:
    """A scripted token endpoint for MockTransport: queue answers, record requests."""

    answers: list[Callable[[httpx.Request], httpx.Response] | httpx.Response | Exception] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    lifetime: int = 3600
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def ok(self, request: httpx.Request) -> httpx.Response:
        n = next(self.counter)
        return httpx.Response(
            200,
            json={
                "token_type": "Bearer",
                "scope": "https://ads.microsoft.com/msads.manage",
                "expires_in": self.lifetime,
                "access_token": f"ACCESS-{n:04d}-unit",
                "refresh_token": f"M.C5_BAY.ROTATED-{n:04d}-unit-refresh",
            },
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.requests.append(form)
        answer = self.answers.pop(0) if self.answers else self.ok
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def aadsts(code: int, error: str = "invalid_grant", status: int = 400) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error": error,
            "error_description": f"AADSTS{code}: Something happened.\r\nTrace ID: t-{code}\r\n"
            "Correlation ID: c-1\r\nTimestamp: 2026-11-28 10:00:00Z",
            "error_codes": [code],
            "timestamp": "2026-11-28 10:00:00Z",
            "trace_id": f"t-{code}",
            "correlation_id": "c-1",
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )


def dumps(value: Any) -> str:
    return json.dumps(value)


@dataclass
class FakeTI:
    """The task instance an operator's ``execute`` reads outside a DAG run: the names its saved
    state is keyed by, and the XComs it pushes (kept in ``xcom``)."""

    try_number: int = 1
    dag_id: str = "d"
    run_id: str = "r"
    task_id: str = "t"
    map_index: int = -1
    xcom: dict[str, object] = field(default_factory=dict)

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value
