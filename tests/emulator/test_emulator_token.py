"""Token endpoint: both grants, rotation, and every AADSTS answer the provider must understand."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from _support.emulator import Driver, FakeClock, assert_aad_error

from airflow_provider_msads.testing.emulator import (
    DEFAULT_SCOPE,
    PRODUCTION_SCOPE,
    SANDBOX_SCOPE,
    MicrosoftAdsEmulator,
)

REFRESH_TOKEN = re.compile(r"^M\.C521_BAY\.0\.U\.-[A-Za-z0-9_!*-]{180}\$$")
ACCESS_TOKEN = re.compile(r"^EwA[A-Za-z0-9+/]{128}$")


def test_refresh_grant_answers_like_microsoft(ms: Driver) -> None:
    refresh_token = ms.emu.issue_refresh_token()
    response = ms.refresh(refresh_token)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert list(body) == ["token_type", "scope", "expires_in", "ext_expires_in", "access_token", "refresh_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ms.emu.access_token_lifetime == 3600
    assert PRODUCTION_SCOPE in body["scope"].split()
    assert ACCESS_TOKEN.match(body["access_token"])
    assert REFRESH_TOKEN.match(body["refresh_token"])
    assert body["refresh_token"] != refresh_token
    assert ms.emu.issued_access_tokens == [body["access_token"]]
    assert ms.emu.issued_refresh_tokens == [refresh_token, body["refresh_token"]]


def test_access_token_lifetime_is_configurable(
    msads_emulator_factory: Callable[..., MicrosoftAdsEmulator], http: httpx.Client
) -> None:
    emulator = msads_emulator_factory(access_token_lifetime=120)
    body = Driver(emulator, http).refresh(emulator.issue_refresh_token()).json()
    assert body["expires_in"] == 120


def test_every_refresh_rotates_and_old_tokens_stay_valid(ms: Driver) -> None:
    """Microsoft does not revoke on rotation: old tokens keep working (but clients must keep the newest)."""
    first = ms.emu.issue_refresh_token()
    second = ms.refresh(first).json()["refresh_token"]
    third = ms.refresh(second).json()["refresh_token"]
    again = ms.refresh(first)

    assert again.status_code == 200
    tokens = [first, second, third, again.json()["refresh_token"]]
    assert len(set(tokens)) == 4
    assert all(ms.emu.is_refresh_token_valid(token) for token in tokens)


def test_token_requests_record_the_presented_refresh_token(ms: Driver) -> None:
    first = ms.emu.issue_refresh_token()
    second = ms.refresh(first).json()["refresh_token"]
    ms.refresh(second)

    presented = [record["refresh_token"] for record in ms.emu.token_requests]
    assert presented == [first, second]
    record = ms.emu.token_requests[-1]
    assert record["grant_type"] == "refresh_token"
    assert record["client_id"] == ms.emu.app.client_id
    assert record["scope"] == DEFAULT_SCOPE
    assert record["tenant"] == "common"
    assert "client_secret" not in record


def test_strict_rotation_revokes_a_token_once_its_successor_is_used(
    msads_emulator_factory: Callable[..., MicrosoftAdsEmulator], http: httpx.Client
) -> None:
    emulator = msads_emulator_factory(strict_rotation=True)
    ms = Driver(emulator, http)
    first = emulator.issue_refresh_token()
    second = ms.refresh(first).json()["refresh_token"]
    # The successor exists but was never used (e.g. the client crashed before saving it).
    assert ms.refresh(first).status_code == 200
    third = ms.refresh(second).json()["refresh_token"]

    assert not emulator.is_refresh_token_valid(first)
    assert_aad_error(ms.refresh(first), 400, "invalid_grant", 70008)
    assert emulator.is_refresh_token_valid(second)  # third not used yet
    assert ms.refresh(third).status_code == 200
    assert_aad_error(ms.refresh(second), 400, "invalid_grant", 70008)


def test_no_offline_access_no_refresh_token(ms: Driver) -> None:
    body = ms.refresh(ms.emu.issue_refresh_token(), scope=PRODUCTION_SCOPE).json()
    assert "refresh_token" not in body
    assert body["access_token"]


def test_scope_may_be_omitted_on_refresh(ms: Driver) -> None:
    """Microsoft's own SDK omits scope on code redemption; the consented scope then applies."""
    body = ms.refresh(ms.emu.issue_refresh_token(), scope=None).json()
    assert body["refresh_token"]


def test_sandbox_scope_is_accepted(ms: Driver) -> None:
    refresh_token = ms.emu.issue_refresh_token(scope=f"{SANDBOX_SCOPE} offline_access")
    response = ms.refresh(refresh_token, scope=f"{SANDBOX_SCOPE} offline_access")
    assert response.status_code == 200
    assert SANDBOX_SCOPE in response.json()["scope"]


def test_refresh_token_for_another_environment_needs_consent(ms: Driver) -> None:
    refresh_token = ms.emu.issue_refresh_token(scope=f"{SANDBOX_SCOPE} offline_access")
    assert_aad_error(ms.refresh(refresh_token), 400, "invalid_grant", 65001)


def test_single_tenant_app_works_through_its_tenant(ms: Driver) -> None:
    ms.emu.app.multi_tenant = False
    refresh_token = ms.emu.issue_refresh_token()
    assert_aad_error(ms.refresh(refresh_token), 400, "invalid_request", 50194)
    assert ms.refresh(refresh_token, tenant=ms.emu.tenant_id).status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        pytest.param({"client_id": "00000000-0000-0000-0000-000000000000"}, 400, "unauthorized_client", 700016),
        pytest.param({"client_secret": None}, 401, "invalid_client", 7000218, id="missing-secret"),
        pytest.param({"client_secret": "wrong"}, 401, "invalid_client", 7000215, id="wrong-secret"),
        pytest.param({"scope": "https://graph.microsoft.com/User.Read offline_access"}, 400, "invalid_scope", 70011),
        pytest.param({"scope": "msads.manage offline_access"}, 400, "invalid_scope", 70011, id="bare-scope"),
        pytest.param({"scope": "offline_access"}, 400, "invalid_scope", 70011, id="no-resource"),
        pytest.param({"scope": f"{PRODUCTION_SCOPE} {SANDBOX_SCOPE}"}, 400, "invalid_scope", 70011, id="two-resources"),
        pytest.param({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        pytest.param({"grant_type": None}, 400, "invalid_request", 900144, id="missing-grant"),
        pytest.param({"refresh_token": None}, 400, "invalid_request", 900144, id="missing-refresh-token"),
    ],
)
def test_client_and_request_errors(ms: Driver, form: dict[str, str | None], status: int, error: str, code: int) -> None:
    refresh_token = ms.emu.issue_refresh_token()
    assert_aad_error(ms.refresh(refresh_token, **form), status, error, code)


def test_secret_id_pasted_instead_of_value_is_7000215(ms: Driver) -> None:
    body = assert_aad_error(
        ms.refresh(ms.emu.issue_refresh_token(), client_secret=ms.emu.app.secret_id), 401, "invalid_client", 7000215
    )
    assert "client secret value, not the client secret ID" in body["error_description"]
    assert ms.emu.app.client_id in body["error_description"]


def test_expired_secret_is_7000222(ms: Driver) -> None:
    ms.emu.app.secret_expired = True
    assert_aad_error(ms.refresh(ms.emu.issue_refresh_token()), 401, "invalid_client", 7000222)


def test_truncated_refresh_token_is_malformed(ms: Driver) -> None:
    refresh_token = ms.emu.issue_refresh_token()
    assert_aad_error(ms.refresh(refresh_token[:-20]), 400, "invalid_grant", 9002313)


def test_refresh_token_is_bound_to_its_client(ms: Driver) -> None:
    other = ms.emu.add_app()
    refresh_token = ms.emu.issue_refresh_token(client_id=other.client_id)
    assert_aad_error(ms.refresh(refresh_token), 400, "invalid_grant", 70000)
    ok = ms.refresh(refresh_token, client_id=other.client_id, client_secret=other.client_secret)
    assert ok.status_code == 200


@pytest.mark.parametrize("code", [700082, 70008, 50173, 70043])
def test_expired_refresh_token_answers_its_code(ms: Driver, code: int) -> None:
    refresh_token = ms.emu.issue_refresh_token()
    ms.emu.expire_refresh_token(refresh_token, code=code)
    assert not ms.emu.is_refresh_token_valid(refresh_token)
    assert_aad_error(ms.refresh(refresh_token), 400, "invalid_grant", code)


def test_expire_all_refresh_tokens(ms: Driver) -> None:
    tokens = [ms.emu.issue_refresh_token() for _ in range(3)]
    ms.emu.expire_all_refresh_tokens()
    for token in tokens:
        body = assert_aad_error(ms.refresh(token), 400, "invalid_grant", 700082)
        assert "inactive for 90.00:00:00" in body["error_description"]


def test_ninety_days_of_inactivity_kill_a_refresh_token(ms: Driver, clock: FakeClock) -> None:
    kept_alive = ms.emu.issue_refresh_token()
    forgotten = ms.emu.issue_refresh_token()
    clock.advance(60 * 86400)
    kept_alive = ms.refresh(kept_alive).json()["refresh_token"]
    clock.advance(31 * 86400)

    assert ms.refresh(kept_alive).status_code == 200
    assert_aad_error(ms.refresh(forgotten), 400, "invalid_grant", 700082)


def test_unknown_expiry_code_is_refused(ms: Driver) -> None:
    with pytest.raises(ValueError, match="catalogue"):
        ms.emu.expire_refresh_token(ms.emu.issue_refresh_token(), code=12345)
    with pytest.raises(ValueError, match="not a refresh token"):
        ms.emu.expire_refresh_token("M.C521_nope")


def test_json_body_is_ignored_like_microsoft_does(ms: Driver) -> None:
    response = ms.http.post(
        ms.emu.token_url(),
        json={"grant_type": "refresh_token", "client_id": ms.emu.app.client_id},
    )
    body = assert_aad_error(response, 400, "invalid_request", 900144)
    assert "'grant_type'" in body["error_description"]


def test_get_on_token_endpoint(ms: Driver) -> None:
    assert_aad_error(ms.http.get(ms.emu.token_url()), 400, "invalid_request", 900561)


def test_unknown_tenant(ms: Driver) -> None:
    response = ms.refresh(ms.emu.issue_refresh_token(), tenant="11111111-2222-3333-4444-555555555555")
    assert_aad_error(response, 400, "invalid_request", 90002)


def test_issue_refresh_token_validates_its_input(msads_emulator: MicrosoftAdsEmulator) -> None:
    with pytest.raises(ValueError, match="not an app"):
        msads_emulator.issue_refresh_token(client_id="nope")
    with pytest.raises(ValueError, match="resource"):
        msads_emulator.issue_refresh_token(scope="offline_access")


def test_seeded_worlds_are_reproducible() -> None:
    first, second = MicrosoftAdsEmulator(seed=7), MicrosoftAdsEmulator(seed=7)
    assert first.issue_refresh_token() == second.issue_refresh_token()
    assert (first.app, first.account, first.developer_token) == (second.app, second.account, second.developer_token)
    assert MicrosoftAdsEmulator(seed=8).app != first.app
