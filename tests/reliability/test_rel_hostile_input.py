"""Hostile and broken connection configs: a clear error naming the field, and not one request.

Each case is an env-var connection (JSON form, as users write ``AIRFLOW_CONN_*``) read through
``MicrosoftAdsHook``. Every entry point that could talk to Microsoft (token, headers, sync and
async clients) must refuse it with a ``CredentialsError`` whose ``field`` names the culprit; the
emulator must see zero requests; the message must not echo a secret or carry a raw line break
(log injection).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msads.errors import CredentialsError
from airflow_provider_msads.token_store import MemoryTokenStore

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2Fkcy5taWNyb3NvZnQuY29tIn0.c2lnbmF0dXJl"
OVERSIZED_SECRET = "S" * 1_000  # limits: 256 (secret), 16384 (refresh token), 128 (developer token)
OVERSIZED_REFRESH = "M.C521_BAY." + "R" * 20_000  # Airflow masks (regex-compiles) it on every read: keep it modest

Mutation = Callable[[dict[str, Any]], None]


def _set(key: str, value: Any) -> Mutation:
    def apply(conn: dict[str, Any]) -> None:
        conn[key] = value

    return apply


def _extra(key: str, value: Any) -> Mutation:
    def apply(conn: dict[str, Any]) -> None:
        conn["extra"][key] = value

    return apply


def _drop(key: str) -> Mutation:
    def apply(conn: dict[str, Any]) -> None:
        conn.pop(key, None)
        conn["extra"].pop(key, None)

    return apply


def _both(*mutations: Mutation) -> Mutation:
    def apply(conn: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(conn)

    return apply


# id -> (mutation, field the error must name)
CASES: dict[str, tuple[Mutation, str]] = {
    # missing fields
    "missing_client_id": (_drop("login"), "client_id"),
    "missing_client_secret": (_drop("password"), "client_secret"),
    "blank_client_secret": (_set("password", "   "), "client_secret"),
    "missing_developer_token": (_drop("developer_token"), "developer_token"),
    "missing_refresh_token": (_drop("refresh_token"), "refresh_token"),
    "missing_account_id": (_drop("account_id"), "account_id"),
    "missing_customer_id": (_drop("customer_id"), "customer_id"),
    # wrong types
    "account_id_bool": (_extra("account_id", True), "account_id"),
    "customer_id_list": (_extra("customer_id", ["251186883"]), "customer_id"),
    "account_id_float": (_extra("account_id", 1.5), "account_id"),
    "developer_token_object": (_extra("developer_token", {"value": "x"}), "developer_token"),
    "extra_is_a_list": (_set("extra", ["account_id", "1"]), "extra"),
    # GUID and id errors
    "client_id_not_a_guid": (_set("login", "my-ads-app"), "client_id"),
    "client_id_guid_one_digit_short": (_set("login", GUID[:-1]), "client_id"),
    "client_secret_is_the_secret_id": (_set("password", GUID), "client_secret"),
    "account_id_is_the_account_number": (_extra("account_id", "F1234ABC"), "account_id"),
    "customer_id_is_a_url": (
        _extra("customer_id", "https://ui.ads.microsoft.com/campaign/vnext/overview?aid=180535609&cid=251186883"),
        "customer_id",
    ),
    "account_id_zero": (_extra("account_id", "0"), "account_id"),
    "account_id_over_int64": (_extra("account_id", "99999999999999999999"), "account_id"),
    "refresh_token_is_an_access_token": (_extra("refresh_token", JWT), "refresh_token"),
    "refresh_token_truncated": (_extra("refresh_token", "M.C521_BAY"), "refresh_token"),
    # injected newlines / headers / control characters
    "developer_token_header_injection": (_extra("developer_token", "DEVTOKEN\r\nX-Injected: yes"), "developer_token"),
    "refresh_token_header_injection": (
        _extra("refresh_token", "M.C521_BAY.0.U.-aaaaaaaaaaaaaaaaaaaa\nAuthorization: Bearer stolen"),
        "refresh_token",
    ),
    "client_id_crlf": (_set("login", GUID + "\r\nHost: evil.example.com"), "client_id"),
    "client_secret_tab_inside": (_set("password", "abc\tdef~Q~ghijklmnop"), "client_secret"),
    "customer_id_nul": (_extra("customer_id", "251186883\x00"), "customer_id"),
    "account_id_header_injection": (_extra("account_id", "180535609\r\nCustomerId: 1"), "account_id"),
    "quoted_client_secret": (_set("password", '"Sx~8Q~quoted-secret-value"'), "client_secret"),
    "developer_token_non_ascii": (_extra("developer_token", "DEVT\u041eKEN1234"), "developer_token"),
    # oversized values
    "oversized_client_secret": (_set("password", OVERSIZED_SECRET), "client_secret"),
    "oversized_refresh_token": (_extra("refresh_token", OVERSIZED_REFRESH), "refresh_token"),
    "oversized_developer_token": (_extra("developer_token", "D" * 1000), "developer_token"),
    "oversized_token_url": (_extra("token_url", "https://login.example.com/" + "p" * 5000), "token_url"),
    # URLs: non-https, credentials-bearing, other schemes
    "token_url_plain_http_remote": (
        _extra("token_url", "http://login.example.com/common/oauth2/v2.0/token"),
        "token_url",
    ),
    "cm_url_plain_http_private_ip": (
        _extra("customer_management_url", "http://10.0.0.5/CustomerManagement/v13"),
        "customer_management_url",
    ),
    "token_url_with_credentials": (
        _extra("token_url", "https://user:hunter2@login.microsoftonline.com/common/oauth2/v2.0/token"),
        "token_url",
    ),
    "cm_url_with_credentials_on_loopback": (
        _extra("customer_management_url", "http://admin:pw@127.0.0.1:9/CustomerManagement/v13"),
        "customer_management_url",
    ),
    "token_url_ftp": (_extra("token_url", "ftp://login.microsoftonline.com/token"), "token_url"),
    "token_url_javascript": (_extra("token_url", "javascript:alert(1)"), "token_url"),
    "token_url_lookalike_loopback": (_extra("token_url", "http://127.0.0.1.evil.example.com/token"), "token_url"),
    "authorize_url_plain_http": (_extra("authorize_url", "http://login.example.com/authorize"), "authorize_url"),
    "prefixed_token_url_plain_http": (
        _extra("extra__msads__token_url", "http://login.example.com/common/oauth2/v2.0/token"),
        "token_url",
    ),
    # unknown or conflicting extras and options
    "unknown_extra_verify_false": (_extra("verify", False), "verify"),
    "unknown_extra_typo": (_extra("acount_id", "180535609"), "acount_id"),
    "unknown_extra_proxy": (_extra("proxy", "http://attacker.example.com:8080"), "proxy"),
    "conflicting_prefixed_key": (_extra("extra__msads__account_id", "111111111"), "account_id"),
    "environment_unknown": (_extra("environment", "staging"), "environment"),
    "tenant_path_traversal": (_extra("tenant", "../../evil.example.com"), "tenant"),
    "secret_expiry_not_a_date": (_extra("client_secret_expires_on", "next year"), "client_secret_expires_on"),
    "wrong_conn_type": (_set("conn_type", "http"), "conn_type"),
}


def _entry_points(hook) -> list[tuple[str, Callable[[], Any]]]:
    async def async_token() -> str:
        return await hook.aget_access_token()

    return [
        ("get_access_token", hook.get_access_token),
        ("get_auth_headers", hook.get_auth_headers),
        ("get_conn", hook.get_conn),
        ("get_async_conn", hook.get_async_conn),
        ("aget_access_token", lambda: asyncio.run(async_token())),
    ]


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_connection_is_refused_naming_the_field_without_a_request(
    msads_emulator, monkeypatch: pytest.MonkeyPatch, case: str
):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    mutate, field = CASES[case]
    base = msads_emulator.connection_dict()
    conn = copy.deepcopy(base)
    mutate(conn)
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_HOSTILE", json.dumps(conn))
    extra = conn["extra"] if isinstance(conn["extra"], dict) else {}
    secrets = [
        str(v)
        for v in (conn.get("password"), extra.get("developer_token"), extra.get("refresh_token"))
        if isinstance(v, str) and len(v.strip()) >= 8
    ]

    for name, call in _entry_points(MicrosoftAdsHook(msads_conn_id="msads_hostile", token_store=MemoryTokenStore())):
        with pytest.raises(CredentialsError) as caught:
            call()
        err = caught.value
        text = str(err)
        assert err.field == field, f"{name}: field {err.field!r}, expected {field!r}: {text}"
        assert f"`{field}`" in text or f"Field: {field}" in text, text
        assert "Fix:" in text and err.remedy
        assert "\n" not in text and "\r" not in text, f"{name}: raw line break in the message: {text!r}"
        assert len(text) < 1500
        for secret in secrets:
            assert secret.strip()[:12] not in text, f"{name}: the message echoes a secret"

    assert sum(msads_emulator.counters.values()) == 0, dict(msads_emulator.counters)


def test_at_least_twenty_hostile_cases():
    assert len(CASES) >= 20


def test_the_baseline_connection_is_valid(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    """The cases above fail because of their mutation, not because the baseline is broken."""
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    monkeypatch.setenv("AIRFLOW_CONN_MSADS_HOSTILE", json.dumps(msads_emulator.connection_dict()))
    hook = MicrosoftAdsHook(msads_conn_id="msads_hostile", token_store=MemoryTokenStore())
    assert hook.get_access_token() == msads_emulator.issued_access_tokens[-1]
    assert msads_emulator.counters["token"] == 1


def test_the_hook_takes_no_verify_switch():
    """TLS verification has no knob on the hook: an unknown keyword is a TypeError, not ignored."""
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    with pytest.raises(TypeError):
        MicrosoftAdsHook(msads_conn_id="msads_hostile", verify=False)
