"""Offline validation of msads connections: one clear error per problem, never a secret in it."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from airflow_provider_msads.credentials import credentials_from_connection, parse_credentials
from airflow_provider_msads.errors import CredentialsError

CLIENT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
SECRET = "SECRET-VALUE-xyz~8Q~abcdefghijkl"
DEV = "DEVTOKEN-VALUE-xyz123"
REFRESH = "M.C521_BAY.0.U.-REFRESH-VALUE-xyz!*$abcdefghijklmnop"
SECRETS = (SECRET, DEV, REFRESH)


def base_extra(**changes: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "account_id": "180535609",
        "customer_id": "251186883",
        "developer_token": DEV,
        "refresh_token": REFRESH,
    }
    for key, value in changes.items():
        if value is ...:
            extra.pop(key, None)
        else:
            extra[key] = value
    return extra


def parse(login: Any = CLIENT_ID, password: Any = SECRET, extra: Any = None, conn_type: str | None = "msads"):
    return parse_credentials(
        conn_id="msads_default",
        login=login,
        password=password,
        extra=base_extra() if extra is None else extra,
        conn_type=conn_type,
    )


def test_valid_connection_parses_with_defaults():
    creds = parse()
    assert creds.client_id == CLIENT_ID
    assert creds.account_id == "180535609"
    assert creds.environment == "production"
    assert creds.tenant == "common"
    assert creds.endpoints.token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert creds.notes == ()
    for secret in SECRETS:
        assert secret not in repr(creds)
        assert secret not in json.dumps(creds.public_dict())


def test_prefixed_extras_json_string_and_int_ids_are_accepted():
    extra = {f"extra__msads__{k}": v for k, v in base_extra(account_id=180535609).items()}
    creds = parse(extra=json.dumps(extra))
    assert creds.account_id == "180535609"
    assert creds.refresh_token == REFRESH


def test_whitespace_around_values_is_stripped_and_noted():
    creds = parse(login=f"  {CLIENT_ID}\n", extra=base_extra(developer_token=f"{DEV}\r\n"))
    assert creds.client_id == CLIENT_ID
    assert creds.developer_token == DEV
    assert len(creds.notes) == 2
    assert all(secret not in " ".join(creds.notes) for secret in SECRETS)


def test_options_environment_tenant_urls_and_expiry():
    creds = parse(
        extra=base_extra(
            environment=" Sandbox ",
            tenant="contoso.onmicrosoft.com",
            token_url="http://127.0.0.1:9999/common/oauth2/v2.0/token",
            customer_management_url="http://localhost:9999/CustomerManagement/v13",
            client_secret_expires_on="2027-03-01",
        )
    )
    assert creds.environment == "sandbox"
    assert creds.endpoints.scope.startswith("https://si.ads.microsoft.com/")
    assert creds.endpoints.authorize_url == "http://127.0.0.1:9999/common/oauth2/v2.0/authorize"
    assert creds.client_secret_expires_on == datetime.date(2027, 3, 1)


HOSTILE: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing client id", {"login": None}, "client_id", "missing"),
    ("missing secret", {"password": ""}, "client_secret", "missing"),
    ("missing developer token", {"extra": base_extra(developer_token=...)}, "developer_token", "missing"),
    ("missing refresh token", {"extra": base_extra(refresh_token="  ")}, "refresh_token", "missing"),
    ("missing customer id", {"extra": base_extra(customer_id=...)}, "customer_id", "missing"),
    ("missing account id", {"extra": base_extra(account_id=None)}, "account_id", "missing"),
    ("client id not a guid", {"login": "my-app"}, "client_id", "GUID"),
    ("client id guid too short", {"login": CLIENT_ID[:-1]}, "client_id", "GUID"),
    ("secret id pasted", {"password": "7b5c1d3e-0000-4a1b-9c2d-1234567890ab"}, "client_secret", "Secret ID"),
    ("account number", {"extra": base_extra(account_id="F1234ABC")}, "account_id", "account *number*"),
    (
        "customer as url",
        {"extra": base_extra(customer_id="https://ui.ads.microsoft.com/campaign?cid=251186883&aid=1")},
        "customer_id",
        "251186883",
    ),
    ("account negative", {"extra": base_extra(account_id="-5")}, "account_id", "digits only"),
    ("account zero", {"extra": base_extra(account_id="0")}, "account_id", "positive"),
    ("account float", {"extra": base_extra(account_id=1.5)}, "account_id", "float"),
    ("account bool", {"extra": base_extra(account_id=True)}, "account_id", "bool"),
    ("account list", {"extra": base_extra(account_id=["1"])}, "account_id", "list"),
    ("account overflow", {"extra": base_extra(account_id="9" * 25)}, "account_id", "19 digits"),
    ("quoted secret", {"password": f'"{SECRET}"'}, "client_secret", "quotes"),
    ("smart-quoted token", {"extra": base_extra(developer_token=f"\u201c{DEV}\u201d")}, "developer_token", "quotes"),
    (
        "crlf header injection",
        {"extra": base_extra(developer_token=f"{DEV}\r\nX-Evil: 1")},
        "developer_token",
        "line break",
    ),
    (
        "newline in refresh",
        {"extra": base_extra(refresh_token=REFRESH[:20] + "\n" + REFRESH[20:])},
        "refresh_token",
        "line break",
    ),
    ("tab in secret", {"password": SECRET[:5] + "\t" + SECRET[5:]}, "client_secret", "line break"),
    ("oversized refresh", {"extra": base_extra(refresh_token="A" * 20000)}, "refresh_token", "too long"),
    (
        "access token as refresh",
        {"extra": base_extra(refresh_token="eyJ0eXAiOiJKV1QiLCJub25jZSI6IjEyMyJ9.eyJhdWQiOiJ4In0.c2ln")},
        "refresh_token",
        "access token",
    ),
    ("truncated refresh", {"extra": base_extra(refresh_token="M.C5_BAY")}, "refresh_token", "truncated"),
    ("http token url", {"extra": base_extra(token_url="http://login.example.com/token")}, "token_url", "plain http"),
    (
        "credentials in url",
        {"extra": base_extra(customer_management_url="https://user:pw@example.com/cm")},
        "customer_management_url",
        "credentials",
    ),
    ("ftp url", {"extra": base_extra(token_url="ftp://example.com/token")}, "token_url", "https"),
    ("unknown extra with hint", {"extra": base_extra(acount_id="1")}, "acount_id", "account_id"),
    ("conflicting prefixed", {"extra": {**base_extra(), "extra__msads__account_id": "999"}}, "account_id", "twice"),
    ("bad environment", {"extra": base_extra(environment="staging")}, "environment", "production, sandbox"),
    ("bad tenant", {"extra": base_extra(tenant="not a tenant!")}, "tenant", "tenant"),
    (
        "bad expiry date",
        {"extra": base_extra(client_secret_expires_on="2027/13/45")},
        "client_secret_expires_on",
        "ISO date",
    ),
    ("extra not json", {"extra": "{not json"}, "extra", "JSON"),
    ("extra a list", {"extra": "[1, 2]"}, "extra", "object"),
    ("wrong conn type", {"conn_type": "http"}, "conn_type", "msads"),
    ("secret as number", {"password": 12345}, "client_secret", "number"),
]


@pytest.mark.parametrize(("case", "kwargs", "field", "phrase"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_names_the_field_and_leaks_nothing(case: str, kwargs: dict[str, Any], field: str, phrase: str):
    with pytest.raises(CredentialsError) as info:
        parse(**kwargs)
    err = info.value
    assert err.field == field
    assert phrase in str(err)
    assert err.remedy
    text = str(err) + repr(err) + json.dumps(err.to_dict())
    for secret in SECRETS:
        assert secret not in text
        assert secret[:12] not in text


def test_reads_airflow_like_connection_objects():
    class Conn:
        conn_id = "msads_x"
        conn_type = "msads"
        login = CLIENT_ID
        password = SECRET
        extra = json.dumps(base_extra())

    creds = credentials_from_connection(Conn())
    assert creds.conn_id == "msads_x"
    assert creds.customer_id == "251186883"
