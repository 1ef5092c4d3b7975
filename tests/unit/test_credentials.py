"""credentials.py: what a valid connection becomes, and one precise, secret-free error per mistake."""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

import pytest

from airflow_provider_msads.connection.credentials import (
    EXTRA_PREFIX,
    FIELD_LABELS,
    FIELD_STEPS,
    KNOWN_EXTRAS,
    SECRET_FIELDS,
    MicrosoftAdsCredentials,
    credentials_from_connection,
    parse_credentials,
)
from airflow_provider_msads.errors import CredentialsError, EndpointError
from airflow_provider_msads.errors.catalogue import STEP_AUTHORIZE, STEP_IDS, STEP_SECRET

# Made up once (uuid4) for these tests; not an app anywhere.
CLIENT_ID = "3f2b9c4e-7a1d-4e8b-9c6f-2d5a8e1b7c40"
OTHER_GUID = "a1c3e5f7-0b2d-4f6a-8c9e-1d3b5f7a9c2e"
SECRET = "SECRET-VALUE-xyz~8Q~q1w2e3r4t5y6u7i8o9p0"
DEV = "DEVTOKEN-VALUE-xyz987"
REFRESH = "M.C521_BAY.0.U.-REFRESH-VALUE-xyz!*abcdefghijklmnopqrstuvwxyz0123456789$"
SECRETS = (SECRET, DEV, REFRESH)
ACCOUNT = "180535609"
CUSTOMER = "251186883"
JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2Fkcy5taWNyb3NvZnQuY29tIn0.c2lnbmF0dXJlLXh5eg"


def extra_with(**changes: Any) -> dict[str, Any]:
    """The valid extra with changes; ``...`` removes a key."""
    extra: dict[str, Any] = {
        "account_id": ACCOUNT,
        "customer_id": CUSTOMER,
        "developer_token": DEV,
        "refresh_token": REFRESH,
    }
    for key, value in changes.items():
        if value is ...:
            extra.pop(key, None)
        else:
            extra[key] = value
    return extra


def parse(
    login: Any = CLIENT_ID, password: Any = SECRET, extra: Any = None, conn_type: str | None = "msads"
) -> MicrosoftAdsCredentials:
    return parse_credentials(
        conn_id="msads_default",
        login=login,
        password=password,
        extra=extra_with() if extra is None else extra,
        conn_type=conn_type,
    )


def secret_inputs(kwargs: dict[str, Any]) -> list[str]:
    """Every secret value a case hands in (baseline and hostile ones)."""
    values = list(SECRETS)
    if isinstance(kwargs.get("password"), str):
        values.append(kwargs["password"])
    extra = kwargs.get("extra")
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {}
    if isinstance(extra, dict):
        for key, value in extra.items():
            if isinstance(value, str) and key.removeprefix(EXTRA_PREFIX) in SECRET_FIELDS:
                values.append(value)
    # A pasted JSON answer is checked through the refresh token inside it, which is in SECRETS.
    return [v.strip() for v in values if v.strip() and not v.startswith("{")]


def assert_no_secret(text: str, secrets: list[str]) -> None:
    """Not the value, and no 10-character piece of it either."""
    for secret in secrets:
        width = min(10, len(secret))
        for start in range(len(secret) - width + 1):
            piece = secret[start : start + width]
            assert piece not in text, f"a piece of a secret leaked: {piece!r}"


# ----------------------------------------------------------------------------- valid connections


def test_valid_baseline_parses_with_defaults() -> None:
    creds = parse()
    assert (creds.client_id, creds.client_secret, creds.developer_token, creds.refresh_token) == (
        CLIENT_ID,
        SECRET,
        DEV,
        REFRESH,
    )
    assert (creds.customer_id, creds.account_id) == (CUSTOMER, ACCOUNT)
    assert (creds.environment, creds.tenant, creds.client_secret_expires_on) == ("production", "common", None)
    assert creds.notes == ()
    endpoints = creds.endpoints
    assert endpoints.token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert endpoints.customer_management_url.startswith("https://clientcenter.api.bingads.microsoft.com/")


def test_repr_and_public_dict_hold_no_secret() -> None:
    creds = parse(extra=extra_with(client_secret_expires_on="2027-03-01"))
    text = repr(creds) + str(creds)
    assert CLIENT_ID in text and ACCOUNT in text and CUSTOMER in text and "'***'" in text
    public = creds.public_dict()
    dumped = json.dumps(public)
    assert public["client_secret_expires_on"] == "2027-03-01"
    assert_no_secret(text + dumped, list(SECRETS))


def test_credentials_are_frozen_and_equal_whatever_the_notes() -> None:
    creds = parse()
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.account_id = "1"  # type: ignore[misc]
    assert parse(login=f" {CLIENT_ID}\n") == creds


def test_prefixed_form_and_json_string_and_int_ids() -> None:
    extra = {f"{EXTRA_PREFIX}{key}": value for key, value in extra_with(account_id=int(ACCOUNT)).items()}
    creds = parse(extra=json.dumps(extra))
    assert creds.account_id == ACCOUNT
    assert creds.customer_id == CUSTOMER
    assert creds.refresh_token == REFRESH


def test_plain_and_prefixed_with_the_same_value_is_fine_and_noted() -> None:
    creds = parse(extra={**extra_with(), f"{EXTRA_PREFIX}account_id": f" {ACCOUNT} ", f"{EXTRA_PREFIX}tenant": ""})
    assert creds.account_id == ACCOUNT
    assert any("extra__msads__account_id" in note for note in creds.notes)


def test_empty_prefixed_value_falls_back_to_plain_and_the_other_way_round() -> None:
    extra = {**extra_with(developer_token=""), f"{EXTRA_PREFIX}developer_token": DEV, f"{EXTRA_PREFIX}account_id": ""}
    assert parse(extra=extra).developer_token == DEV


def test_int_ids_are_accepted() -> None:
    creds = parse(extra=extra_with(account_id=int(ACCOUNT), customer_id=int(CUSTOMER)))
    assert (creds.account_id, creds.customer_id) == (ACCOUNT, CUSTOMER)


def test_surrounding_whitespace_is_stripped_and_noted_without_values() -> None:
    creds = parse(
        login=f"  {CLIENT_ID}\t",
        password=f"{SECRET}\n",
        extra=extra_with(
            developer_token=f"\u200b{DEV}\r\n",
            refresh_token=f"\n{REFRESH}  ",
            account_id=f" {ACCOUNT}\n",
            environment=" sandbox ",
        ),
    )
    assert (creds.client_id, creds.client_secret, creds.developer_token, creds.refresh_token) == (
        CLIENT_ID,
        SECRET,
        DEV,
        REFRESH,
    )
    assert creds.account_id == ACCOUNT and creds.environment == "sandbox"
    assert len(creds.notes) == 6
    assert any("Developer Token (`developer_token`)" in note for note in creds.notes)
    assert_no_secret(" ".join(creds.notes), list(SECRETS))


def test_harmless_normalisations_are_done_and_noted() -> None:
    creds = parse(
        login="{" + CLIENT_ID.upper() + "}",
        extra=extra_with(account_id="000" + ACCOUNT, environment="Sandbox", tenant="Contoso.OnMicrosoft.com"),
    )
    assert creds.client_id == CLIENT_ID
    assert creds.account_id == ACCOUNT
    assert creds.environment == "sandbox"
    assert creds.tenant == "contoso.onmicrosoft.com"
    assert creds.endpoints.scope.startswith("https://si.ads.microsoft.com/")
    joined = " ".join(creds.notes)
    for phrase in ("braces", "Lower-cased Client ID", "leading zeros", "Lower-cased Environment"):
        assert phrase in joined


def test_options_urls_tenant_and_expiry() -> None:
    creds = parse(
        extra=extra_with(
            tenant=OTHER_GUID,
            token_url="http://127.0.0.1:9999/tenant/oauth2/v2.0/token/",
            customer_management_url="http://localhost:9999/CustomerManagement/v13",
            client_secret_expires_on="2027-03-01T10:00:00Z",
        )
    )
    assert creds.tenant == OTHER_GUID
    assert creds.token_url == "http://127.0.0.1:9999/tenant/oauth2/v2.0/token"
    assert creds.endpoints.authorize_url == "http://127.0.0.1:9999/tenant/oauth2/v2.0/authorize"
    assert creds.endpoints.customer_management_url == "http://localhost:9999/CustomerManagement/v13"
    assert creds.client_secret_expires_on == datetime.date(2027, 3, 1)


@pytest.mark.parametrize(
    "value",
    [
        "2027-03-01",
        "2027-03-01T23:59:59Z",
        "2027-03-01T10:00:00.1234567+01:00",
        "2027-03-01 10:00",
        "2027-03-01T10:00z",
    ],
)
def test_expiry_accepts_an_iso_date_or_datetime_and_keeps_the_date(value: str) -> None:
    assert parse(extra=extra_with(client_secret_expires_on=value)).client_secret_expires_on == datetime.date(2027, 3, 1)


def test_expiry_accepts_date_objects_from_python_extras() -> None:
    when = datetime.datetime(2027, 3, 1, 12, 0)
    assert parse(extra=extra_with(client_secret_expires_on=when)).client_secret_expires_on == datetime.date(2027, 3, 1)


@pytest.mark.parametrize("tenant", ["common", "ORGANIZATIONS", "consumers", "contoso.onmicrosoft.com", OTHER_GUID])
def test_accepted_tenants(tenant: str) -> None:
    assert parse(extra=extra_with(tenant=tenant)).tenant == tenant.lower()


def test_empty_extra_values_count_as_missing_and_null_options_mean_default() -> None:
    creds = parse(extra=extra_with(environment=None, tenant="", token_url=None, client_secret_expires_on=" "))
    assert (creds.environment, creds.tenant, creds.token_url) == ("production", "common", None)


def test_conn_type_may_be_absent() -> None:
    assert parse(conn_type=None).conn_id == "msads_default"
    assert parse(conn_type="").client_id == CLIENT_ID


# ----------------------------------------------------------------------------- Connection objects


class FakeConnection:
    """What the hook hands in: an Airflow Connection's attributes, nothing more."""

    def __init__(self, extra: Any, *, dejson: Any = None, with_dejson: bool = True) -> None:
        self.conn_id = "msads_x"
        self.conn_type = "msads"
        self.login = CLIENT_ID
        self.password = SECRET
        self.extra = extra
        self.dejson_reads = 0
        self._dejson = dejson
        self._with_dejson = with_dejson

    def __getattr__(self, name: str) -> Any:
        if name == "extra_dejson" and self.__dict__.get("_with_dejson"):
            self.dejson_reads += 1
            return self._dejson
        raise AttributeError(name)


def test_connection_with_extra_dejson() -> None:
    conn = FakeConnection(json.dumps(extra_with()), dejson=extra_with())
    creds = credentials_from_connection(conn)
    assert (creds.conn_id, creds.customer_id) == ("msads_x", CUSTOMER)
    assert conn.dejson_reads == 1  # read for Airflow's secret masking


def test_connection_with_dict_extra_and_no_extra_dejson() -> None:
    creds = credentials_from_connection(FakeConnection(extra_with(), with_dejson=False))
    assert creds.account_id == ACCOUNT


def test_connection_with_only_extra_dejson() -> None:
    creds = credentials_from_connection(FakeConnection(None, dejson=extra_with()))
    assert creds.refresh_token == REFRESH


def test_connection_invalid_json_is_reported_even_though_airflow_returns_an_empty_dict() -> None:
    conn = FakeConnection('{"account_id": "1", "refresh_token": "' + REFRESH + '",}', dejson={})
    with pytest.raises(CredentialsError) as info:
        credentials_from_connection(conn)
    assert info.value.field == "extra"
    assert "not valid JSON" in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert_no_secret(str(info.value) + repr(info.value), list(SECRETS))


# ----------------------------------------------------------------------------- hostile input

# (id, kwargs for parse(), expected error field, phrase expected in the message)
HOSTILE: list[tuple[str, dict[str, Any], str, str]] = [
    # connection type and the shape of extra
    ("conn-type-wrong", {"conn_type": "http"}, "conn_type", "'msads'"),
    ("extra-invalid-json", {"extra": '{"account_id": 1,'}, "extra", "not valid JSON"),
    ("extra-json-array", {"extra": "[1, 2]"}, "extra", "JSON object"),
    ("extra-json-string", {"extra": '"just a string"'}, "extra", "JSON object"),
    ("extra-a-list", {"extra": [("account_id", ACCOUNT)]}, "extra", "JSON object"),
    (
        "extra-duplicate-key",
        {"extra": '{"account_id": "1", "account_id": "2", "refresh_token": "' + REFRESH + '"}'},
        "extra",
        "more than once",
    ),
    # unknown keys
    ("unknown-key-with-hint", {"extra": extra_with(acount_id="1")}, "acount_id", "Did you mean `account_id`?"),
    (
        "unknown-prefixed-key-with-hint",
        {"extra": extra_with(extra__msads__developer_tokn=DEV)},
        "extra__msads__developer_tokn",
        "`extra__msads__developer_token`?",
    ),
    ("unknown-key-far-off", {"extra": extra_with(colour="blue")}, "colour", "unknown key `colour`"),
    ("client-secret-in-extra", {"extra": extra_with(client_secret=SECRET)}, "client_secret", "Password field"),
    # plain and prefixed disagree
    (
        "conflicting-prefixed-and-plain",
        {"extra": {**extra_with(), "extra__msads__account_id": "999"}},
        "account_id",
        "Remove `extra__msads__account_id`",
    ),
    (
        "conflicting-secret-forms",
        {"extra": {**extra_with(), "extra__msads__refresh_token": REFRESH + "x"}},
        "refresh_token",
        "set twice with different values",
    ),
    # missing values
    ("missing-client-id", {"login": None}, "client_id", "Client ID (`client_id`) is missing"),
    ("missing-client-secret", {"password": ""}, "client_secret", "is missing"),
    ("missing-developer-token", {"extra": extra_with(developer_token=...)}, "developer_token", "is missing"),
    ("blank-refresh-token", {"extra": extra_with(refresh_token=" \n ")}, "refresh_token", "is missing"),
    ("missing-customer-id", {"extra": extra_with(customer_id=...)}, "customer_id", "is missing"),
    ("null-account-id", {"extra": extra_with(account_id=None)}, "account_id", "is missing"),
    ("extra-empty", {"extra": ""}, "developer_token", "is missing"),
    # wrong types
    ("secret-as-int", {"password": 12345}, "client_secret", "number (int)"),
    ("client-id-as-list", {"login": [CLIENT_ID]}, "client_id", "array (list)"),
    ("dev-token-as-dict", {"extra": extra_with(developer_token={"value": DEV})}, "developer_token", "object (dict)"),
    ("account-as-float", {"extra": extra_with(account_id=180535609.0)}, "account_id", "float"),
    ("account-as-bool", {"extra": extra_with(account_id=True)}, "account_id", "boolean"),
    ("environment-as-int", {"extra": extra_with(environment=1)}, "environment", "must be a string"),
    # client id
    ("client-id-not-guid", {"login": "my-app"}, "client_id", "Application (client) ID GUID"),
    ("client-id-guid-short", {"login": CLIENT_ID[:-1]}, "client_id", "GUID"),
    ("client-id-too-long", {"login": CLIENT_ID + "0" * 40}, "client_id", "at most 36"),
    ("client-id-non-hex", {"login": CLIENT_ID[:-1] + "g"}, "client_id", "'3f2b9c4e-7a1d-4e8b-9c6f-2d5a8e1b7c4g'"),
    # client secret
    ("secret-id-pasted", {"password": OTHER_GUID}, "client_secret", "Secret ID"),
    ("secret-is-client-id", {"password": CLIENT_ID}, "client_secret", "same as the Client ID"),
    ("secret-quoted", {"password": f'"{SECRET}"'}, "client_secret", "wrapped in quotes"),
    ("secret-single-quoted", {"password": f"'{SECRET}'"}, "client_secret", "wrapped in quotes"),
    ("secret-stray-quote", {"password": f"{SECRET}'"}, "client_secret", "stray quote at one end"),
    ("secret-tab-inside", {"password": SECRET[:6] + "\t" + SECRET[6:]}, "client_secret", "a tab"),
    ("secret-crlf-header", {"password": f"{SECRET}\r\nX-Header: evil"}, "client_secret", "line break"),
    ("secret-non-ascii", {"password": SECRET.replace("-", "\u2013")}, "client_secret", "non-ASCII"),
    ("secret-oversized", {"password": "S" * 300}, "client_secret", "at most 256"),
    # developer token
    (
        "dev-token-smart-quotes",
        {"extra": extra_with(developer_token=f"\u201c{DEV}\u201d")},
        "developer_token",
        "quotes",
    ),
    (
        "dev-token-crlf-header",
        {"extra": extra_with(developer_token=f"{DEV}\r\nX-Header: evil")},
        "developer_token",
        "line break",
    ),
    (
        "dev-token-zero-width-inside",
        {"extra": extra_with(developer_token=DEV[:5] + "\u200b" + DEV[5:])},
        "developer_token",
        "U+200B",
    ),
    ("dev-token-oversized", {"extra": extra_with(developer_token="D" * 129)}, "developer_token", "at most 128"),
    ("dev-token-is-the-secret", {"extra": extra_with(developer_token=SECRET)}, "developer_token", "same value"),
    # refresh token
    (
        "refresh-crlf-header",
        {"extra": extra_with(refresh_token=f"{REFRESH}\r\nX-Header: evil")},
        "refresh_token",
        "line break",
    ),
    (
        "refresh-smart-single-quotes",
        {"extra": extra_with(refresh_token=f"\u2018{REFRESH}\u2019")},
        "refresh_token",
        "quotes",
    ),
    ("refresh-is-jwt-access-token", {"extra": extra_with(refresh_token=JWT)}, "refresh_token", "access token"),
    ("refresh-bearer-header", {"extra": extra_with(refresh_token=f"Bearer {JWT}")}, "refresh_token", "access token"),
    ("refresh-truncated", {"extra": extra_with(refresh_token="M.C521_BAY.0.U.-ab")}, "refresh_token", "truncated"),
    (
        "refresh-is-auth-code",
        {"extra": extra_with(refresh_token="M.C519_BAY.2.U.0a895e39-774a-e677-b4bb-8589ce3e0beb")},
        "refresh_token",
        "authorization code",
    ),
    (
        "refresh-is-redirect-url",
        {"extra": extra_with(refresh_token="http://localhost:8080/?code=M.C519_BAY.2.U.0a895e39-774a")},
        "refresh_token",
        "URL",
    ),
    (
        "refresh-is-json-answer",
        {"extra": extra_with(refresh_token='{"token_type": "Bearer", "refresh_token": "' + REFRESH + '"}')},
        "refresh_token",
        "whole JSON token answer",
    ),
    ("refresh-oversized", {"extra": extra_with(refresh_token="R" * 20000)}, "refresh_token", "at most 16384"),
    (
        "refresh-huge-in-json-extra",
        {"extra": json.dumps(extra_with(refresh_token="M.C521_BAY." + "R" * 100_000))},
        "refresh_token",
        "at most 16384",
    ),
    ("refresh-is-the-secret", {"extra": extra_with(refresh_token=SECRET)}, "refresh_token", "same value"),
    # account and customer ids
    ("account-number-instead-of-id", {"extra": extra_with(account_id="F1234ABC")}, "account_id", "account *number*"),
    ("customer-number-instead-of-id", {"extra": extra_with(customer_id="B012345XYZ")}, "customer_id", "`cid=`"),
    (
        "customer-url-pasted",
        {
            "extra": extra_with(
                customer_id=f"https://ui.ads.microsoft.com/campaign/vnext/overview?aid={ACCOUNT}&cid={CUSTOMER}"
            )
        },
        "customer_id",
        f"here {CUSTOMER}",
    ),
    (
        "account-url-pasted",
        {"extra": extra_with(account_id=f"https://ui.ads.microsoft.com/campaign?cid={CUSTOMER}&aid={ACCOUNT}&uid=1")},
        "account_id",
        f"here {ACCOUNT}",
    ),
    (
        "account-url-without-aid",
        {"extra": extra_with(account_id=f"https://ui.ads.microsoft.com/accounts?cid={CUSTOMER}")},
        "account_id",
        "but no `aid=`",
    ),
    ("account-negative", {"extra": extra_with(account_id="-5")}, "account_id", "positive whole number"),
    ("account-negative-int", {"extra": extra_with(account_id=-5)}, "account_id", "positive whole number"),
    ("account-zero", {"extra": extra_with(account_id="0")}, "account_id", "not zero"),
    ("account-decimal", {"extra": extra_with(account_id="1805.35")}, "account_id", "digits only"),
    ("account-overflow", {"extra": extra_with(account_id=str(2**63))}, "account_id", "larger than any 64-bit id"),
    ("account-oversized", {"extra": extra_with(account_id="9" * 25)}, "account_id", "at most 19 digits"),
    ("account-newline-inside", {"extra": extra_with(account_id="1805\n35609")}, "account_id", "line break"),
    ("customer-quoted", {"extra": extra_with(customer_id=f"'{CUSTOMER}'")}, "customer_id", "quotes"),
    # options
    ("environment-unknown", {"extra": extra_with(environment="staging")}, "environment", "production, sandbox"),
    ("environment-prod-alias", {"extra": extra_with(environment="prod")}, "environment", "'prod'"),
    ("tenant-bad", {"extra": extra_with(tenant="not_a_tenant!")}, "tenant", "contoso.onmicrosoft.com"),
    ("tenant-path-injection", {"extra": extra_with(tenant="common/../evil")}, "tenant", "must be common"),
    ("tenant-is-client-id", {"extra": extra_with(tenant=CLIENT_ID)}, "tenant", "is the Client ID"),
    (
        "token-url-plain-http",
        {"extra": extra_with(token_url="http://login.example.com/token")},
        "token_url",
        "plain http",
    ),
    (
        "cm-url-with-userinfo",
        {"extra": extra_with(customer_management_url="https://user:pass@example.com/cm")},
        "customer_management_url",
        "credentials in the URL",
    ),
    ("authorize-url-ftp", {"extra": extra_with(authorize_url="ftp://example.com/authorize")}, "authorize_url", "https"),
    (
        "token-url-oversized",
        {"extra": extra_with(token_url="https://e.com/" + "a" * 2100)},
        "token_url",
        "at most 2048",
    ),
    (
        "expiry-not-iso",
        {"extra": extra_with(client_secret_expires_on="3/1/2027")},
        "client_secret_expires_on",
        "not an ISO date",
    ),
    (
        "expiry-bad-time",
        {"extra": extra_with(client_secret_expires_on="2027-03-01T25:00:00")},
        "client_secret_expires_on",
        "not an ISO date",
    ),
    (
        "expiry-impossible-date",
        {"extra": extra_with(client_secret_expires_on="2027-13-45")},
        "client_secret_expires_on",
        "YYYY-MM-DD",
    ),
]


# Folded in from the former test_connection_parsing.py (its other cases are above already).
HOSTILE += [
    ("account-list", {"extra": extra_with(account_id=["1"])}, "account_id", "an array (list)"),
    ("oversized-refresh", {"extra": extra_with(refresh_token="A" * 20000)}, "refresh_token", "too long"),
    ("ftp-token-url", {"extra": extra_with(token_url="ftp://login.microsoftonline.com/token")}, "token_url", "https"),
    ("conflicting-prefixed", {"extra": {**extra_with(), "extra__msads__account_id": "999"}}, "account_id", "twice"),
    ("bad-tenant", {"extra": extra_with(tenant="not_a_tenant!")}, "tenant", "must be common"),
]


@pytest.mark.parametrize(("kwargs", "field", "phrase"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_names_the_field_and_leaks_nothing(kwargs: dict[str, Any], field: str, phrase: str) -> None:
    with pytest.raises(CredentialsError) as info:
        parse(**kwargs)
    err = info.value
    assert err.field == field
    assert phrase in str(err)
    assert err.remedy and err.remedy != CredentialsError.default_remedy
    if field in FIELD_LABELS and not isinstance(err, EndpointError):
        assert f"{FIELD_LABELS[field]} (`{field}`)" in err.message
    if field in FIELD_STEPS and field in KNOWN_EXTRAS | {"client_id", "client_secret"} and "extra" not in kwargs:
        assert err.step == FIELD_STEPS[field]
    assert "\n" not in err.message and "\r" not in err.message
    assert err.__cause__ is None and err.__context__ is None
    assert_no_secret(str(err) + repr(err) + json.dumps(err.to_dict()), secret_inputs(kwargs))


def test_there_are_enough_hostile_cases() -> None:
    assert len(HOSTILE) >= 25


def test_non_secret_values_are_quoted_escaped_and_cut_to_40_characters() -> None:
    with pytest.raises(CredentialsError) as info:
        parse(extra=extra_with(account_id="ABC" * 30))
    assert "'" + "ABC" * 13 + "A…'" in info.value.message
    with pytest.raises(CredentialsError) as info:
        parse(conn_type="http\r\nX-Header: evil")
    assert "'http\\r\\nX-Header: evil'" in info.value.message
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("field", "kwargs", "step"),
    [
        ("client_id", {"login": None}, STEP_SECRET),
        ("client_secret", {"password": None}, STEP_SECRET),
        ("refresh_token", {"extra": extra_with(refresh_token=None)}, STEP_AUTHORIZE),
        ("account_id", {"extra": extra_with(account_id="F1234ABC")}, STEP_IDS),
    ],
)
def test_errors_point_to_the_guide_step(field: str, kwargs: dict[str, Any], step: str) -> None:
    with pytest.raises(CredentialsError) as info:
        parse(**kwargs)
    assert (info.value.field, info.value.step) == (field, step)


# ----------------------------------------------------------------------------- first problem wins


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"conn_type": "http", "extra": "{bad json"}, "conn_type"),
        ({"extra": "{bad json", "login": None}, "extra"),
        ({"extra": extra_with(acount_id="1", customer_id=...), "login": None}, "acount_id"),
        ({"login": "nope", "password": OTHER_GUID}, "client_id"),
        ({"password": OTHER_GUID, "extra": extra_with(developer_token=...)}, "client_secret"),
        ({"extra": extra_with(developer_token=..., refresh_token=...)}, "developer_token"),
        ({"extra": extra_with(refresh_token=JWT, customer_id="x")}, "refresh_token"),
        ({"extra": extra_with(customer_id="x", account_id="y")}, "customer_id"),
        ({"extra": extra_with(account_id="y", environment="nope")}, "account_id"),
        ({"extra": extra_with(environment="nope", tenant="!")}, "environment"),
        ({"extra": extra_with(tenant="!", token_url="http://evil.example")}, "tenant"),
        ({"extra": extra_with(token_url="http://evil.example", client_secret_expires_on="x")}, "token_url"),
    ],
)
def test_the_first_problem_is_reported_in_a_stable_order(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(CredentialsError) as info:
        parse(**kwargs)
    assert info.value.field == field
