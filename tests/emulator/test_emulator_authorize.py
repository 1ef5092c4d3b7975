"""Authorize endpoint and authorization-code grant: redirects, PKCE, single use, expiry."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

import pytest
from _support.emulator import Driver, FakeClock, assert_aad_error, redirect_params

from airflow_provider_msads.testing.emulator import PRODUCTION_SCOPE

CODE = re.compile(r"^M\.C519_BAY\.2\.U\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_signed_in_user_is_redirected_with_code_and_state(ms: Driver) -> None:
    response = ms.authorize(state="xyz 123")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("http://localhost:8080?code=")
    params = redirect_params(response)
    assert CODE.match(params["code"])
    assert params["state"] == "xyz 123"
    assert ms.emu.counters["authorize"] == 1


def test_state_is_echoed_only_when_given(ms: Driver) -> None:
    assert set(redirect_params(ms.authorize())) == {"code"}


def test_code_exchange_round_trip(ms: Driver) -> None:
    code = ms.authorize_code()
    response = ms.exchange(code)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    refreshed = ms.refresh(body["refresh_token"])
    assert refreshed.status_code == 200
    assert ms.emu.counters["token.authorization_code"] == 1
    assert ms.emu.token_requests[0]["code"] == code
    assert ms.emu.token_requests[0]["redirect_uri"] == "http://localhost:8080"


def test_code_exchange_without_scope_uses_the_consented_one(ms: Driver) -> None:
    """Microsoft's Python SDK redeems codes without a scope parameter."""
    body = ms.exchange(ms.authorize_code(), scope=None).json()
    assert body["refresh_token"]
    assert PRODUCTION_SCOPE in body["scope"]


def test_no_refresh_token_without_offline_access(ms: Driver) -> None:
    body = ms.exchange(ms.authorize_code(scope=PRODUCTION_SCOPE), scope=None).json()
    assert "refresh_token" not in body


def test_pkce_s256_round_trip(ms: Driver) -> None:
    verifier, challenge = pkce_pair()
    code = ms.authorize_code(code_challenge=challenge, code_challenge_method="S256")
    assert ms.exchange(code, code_verifier=verifier).status_code == 200


@pytest.mark.parametrize("verifier", [None, "wrong-verifier-wrong-verifier-wrong-verifier-x"])
def test_pkce_missing_or_wrong_verifier(ms: Driver, verifier: str | None) -> None:
    _, challenge = pkce_pair()
    code = ms.authorize_code(code_challenge=challenge, code_challenge_method="S256")
    body = assert_aad_error(ms.exchange(code, code_verifier=verifier), 400, "invalid_grant", 501481)
    assert "Code_Verifier" in body["error_description"]


def test_pkce_plain(ms: Driver) -> None:
    code = ms.authorize_code(code_challenge="plain-challenge-plain-challenge-plain-challenge")
    assert ms.exchange(code, code_verifier="plain-challenge-plain-challenge-plain-challenge").status_code == 200


def test_code_is_single_use(ms: Driver) -> None:
    code = ms.authorize_code()
    assert ms.exchange(code).status_code == 200
    assert_aad_error(ms.exchange(code), 400, "invalid_grant", 54005)


def test_code_expires(ms: Driver, clock: FakeClock) -> None:
    ms.emu.code_lifetime = 60
    fresh, stale = ms.authorize_code(), ms.authorize_code()
    assert ms.exchange(fresh).status_code == 200
    clock.advance(61)
    body = assert_aad_error(ms.exchange(stale), 400, "invalid_grant", 70008)
    assert "The code has expired" in body["error_description"]


def test_redirect_uri_must_match_at_exchange(ms: Driver) -> None:
    code = ms.authorize_code()
    body = assert_aad_error(ms.exchange(code, redirect_uri="http://localhost:8080/"), 400, "invalid_grant", 50011)
    assert "http://localhost:8080/" in body["error_description"]
    assert_aad_error(ms.exchange(code, redirect_uri=None), 400, "invalid_request", 900144)
    assert ms.exchange(code).status_code == 200  # failures do not burn the code


def test_code_is_bound_to_its_client(ms: Driver) -> None:
    other = ms.emu.add_app()
    code = ms.authorize_code(client_id=other.client_id)
    assert_aad_error(ms.exchange(code), 400, "invalid_grant", 70000)


def test_unknown_code(ms: Driver) -> None:
    assert_aad_error(ms.exchange("M.C519_BAY.2.U.nope"), 400, "invalid_grant", 70000)


def test_unknown_client_gets_an_error_page_not_a_redirect(ms: Driver) -> None:
    response = ms.authorize(client_id="00000000-0000-0000-0000-000000000000")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "AADSTS700016" in response.text


def test_unregistered_redirect_uri_gets_an_error_page(ms: Driver) -> None:
    response = ms.authorize(redirect_uri="http://localhost:9999/callback")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "AADSTS50011" in response.text
    assert "http://localhost:9999/callback" in response.text


def test_single_tenant_app_on_common_gets_an_error_page(ms: Driver) -> None:
    ms.emu.app.multi_tenant = False
    assert "AADSTS50194" in ms.authorize().text
    assert ms.authorize(tenant=ms.emu.tenant_id).status_code == 302


def test_unsupported_response_type_is_redirected(ms: Driver) -> None:
    params = redirect_params(ms.authorize(response_type="token", state="s"))
    assert params["error"] == "unsupported_response_type"
    assert params["error_description"].startswith("AADSTS700054:")
    assert params["state"] == "s"


def test_invalid_scope_is_redirected(ms: Driver) -> None:
    params = redirect_params(ms.authorize(scope="https://graph.microsoft.com/.default"))
    assert params["error"] == "invalid_scope"
    assert params["error_description"].startswith("AADSTS70011:")


def test_user_declines_consent(ms: Driver) -> None:
    ms.emu.authorize_error = "access_denied"
    params = redirect_params(ms.authorize(state="abc"))
    assert params == {
        "error": "access_denied",
        "error_description": "AADSTS65004: User declined to consent to access the app.",
        "state": "abc",
    }


def test_fragment_response_mode(ms: Driver) -> None:
    response = ms.authorize(response_mode="fragment")
    assert response.headers["Location"].startswith("http://localhost:8080#code=M.C519_")
