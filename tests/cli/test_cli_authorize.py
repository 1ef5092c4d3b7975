"""The OAuth pieces of msads-authorize: URL, PKCE, state, pasted redirects, ?error= explanations."""

from __future__ import annotations

import pytest
from _support.cli import query

from airflow_provider_msads.cli.authorize import (
    AuthorizationError,
    OnboardingError,
    Redirect,
    StateMismatchError,
    authorization_error,
    build_authorize_url,
    new_authorization_request,
    parse_redirect,
    pkce_challenge,
    redirect_from_params,
)
from airflow_provider_msads.connection.endpoints import resolve_endpoints
from airflow_provider_msads.errors import MicrosoftAdsError
from airflow_provider_msads.errors.catalogue import (
    OAUTH_ERROR_CATALOGUE,
    STEP_APP,
    STEP_AUTHORIZE,
    TRANSIENT_OAUTH_ERRORS,
)

CLIENT_ID = "00000000-1111-2222-3333-444444444444"


def test_pkce_challenge_matches_rfc7636_example():
    # RFC 7636, appendix B.
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_authorize_url_has_state_pkce_scope_and_the_exact_redirect_uri():
    endpoints = resolve_endpoints("production", "common")
    url = build_authorize_url(
        endpoints, client_id=CLIENT_ID, redirect_uri="http://localhost:8080", state="s1", code_challenge="c1"
    )
    assert url.startswith("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?")
    assert " " not in url and "+" not in url  # spaces as %20: the URL survives any paste
    params = query(url)
    assert params == {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": "http://localhost:8080",
        "response_mode": "query",
        "scope": "https://ads.microsoft.com/msads.manage offline_access",
        "state": "s1",
        "code_challenge": "c1",
        "code_challenge_method": "S256",
        "prompt": "select_account",
    }


def test_sandbox_tenant_and_override_change_url_and_scope():
    endpoints = resolve_endpoints("sandbox", "contoso.onmicrosoft.com")
    url = build_authorize_url(
        endpoints, client_id=CLIENT_ID, redirect_uri="http://localhost:8080", state="s", code_challenge="c"
    )
    assert url.startswith("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?")
    assert query(url)["scope"] == "https://si.ads.microsoft.com/msads.manage offline_access"
    emulated = resolve_endpoints(token_url="http://127.0.0.1:9/common/oauth2/v2.0/token")
    assert build_authorize_url(
        emulated, client_id=CLIENT_ID, redirect_uri="http://localhost:8080", state="s", code_challenge="c"
    ).startswith("http://127.0.0.1:9/common/oauth2/v2.0/authorize?")


def test_each_request_has_its_own_state_and_verifier():
    endpoints = resolve_endpoints()
    one = new_authorization_request(endpoints, client_id=CLIENT_ID, redirect_uri="http://localhost:8080")
    two = new_authorization_request(endpoints, client_id=CLIENT_ID, redirect_uri="http://localhost:8080")
    assert one.state != two.state and one.code_verifier != two.code_verifier
    assert 43 <= len(one.code_verifier) <= 128
    params = query(one.url)
    assert params["state"] == one.state
    assert params["code_challenge"] == pkce_challenge(one.code_verifier)
    assert one.code_verifier not in one.url and one.code_verifier not in repr(one)


# -- pasted redirects (--manual) -------------------------------------------------------------


def test_parse_whole_address_query_only_and_bare_code():
    code = "M.C519_BAY.2.U.0a895e39-774a-e677-b4bb-8589ce3e0beb"
    assert parse_redirect(f"http://localhost:8080/?code={code}&state=abc", expected_state="abc").code == code
    assert parse_redirect(f"  'http://localhost:8080?code={code}&state=abc'\n", expected_state="abc").code == code
    assert parse_redirect(f"?code={code}&state=abc", expected_state="abc").code == code
    assert parse_redirect(f"code={code}&state=abc", expected_state="abc").code == code
    assert parse_redirect(code, expected_state="abc").code == code
    # An address without state (edited by hand) is accepted: the user pasted it from their browser.
    assert parse_redirect(f"http://localhost:8080/?code={code}", expected_state="abc").code == code


def test_parse_rejects_a_foreign_state_and_junk():
    with pytest.raises(StateMismatchError) as info:
        parse_redirect("http://localhost:8080/?code=abc&state=old", expected_state="new")
    assert info.value.step == STEP_AUTHORIZE and "older" in str(info.value)
    with pytest.raises(OnboardingError, match="neither a `code` nor an `error`"):
        parse_redirect("http://localhost:8080/?foo=1", expected_state="s")
    with pytest.raises(OnboardingError, match="Nothing was pasted"):
        parse_redirect("   ", expected_state="s")
    with pytest.raises(OnboardingError, match="neither an address nor an authorization code"):
        parse_redirect("the code is abc", expected_state="s")


def test_parse_error_address():
    redirect = parse_redirect(
        "http://localhost:8080/?error=access_denied&error_description=AADSTS65004%3A+User+declined&state=s",
        expected_state="s",
    )
    assert redirect.is_error and redirect.error == "access_denied" and redirect.code is None


def test_catcher_params_need_the_state():
    assert redirect_from_params({"foo": "1"}, expected_state="s") is None
    with pytest.raises(StateMismatchError, match="no `state`"):
        redirect_from_params({"code": "abc"}, expected_state="s")
    with pytest.raises(StateMismatchError):
        redirect_from_params({"error": "access_denied", "state": "other"}, expected_state="s")


def test_redirect_repr_hides_the_code():
    assert "secretcode" not in repr(Redirect(code="secretcode", state="st"))


# -- Microsoft's ?error= redirects ------------------------------------------------------------


def _error(error: str, description: str = "") -> AuthorizationError:
    return authorization_error(Redirect(error=error, error_description=description, state="s"))


def test_catalogued_code_in_the_description_wins():
    err = _error(
        "invalid_request",
        "AADSTS50011: The redirect URI 'http://localhost:9999' specified in the request does not match.\r\n"
        "Trace ID: 1111-aaaa\r\nCorrelation ID: 2222-bbbb\r\nTimestamp: 2026-01-01 00:00:00Z",
    )
    assert isinstance(err, MicrosoftAdsError)
    assert err.codes == (50011,) and err.field == "redirect_uri" and err.step == STEP_APP
    assert err.trace_id == "1111-aaaa" and err.correlation_id == "2222-bbbb"
    text = str(err)
    assert "AADSTS50011" in text and "Register exactly the redirect URI" in text
    assert "Timestamp" not in text  # Microsoft's trace lines are cut, the ids are kept
    assert "trace id 1111-aaaa" in text


def test_consent_declined_is_explained():
    err = _error("access_denied", "AADSTS65004: User declined to consent to access the app.")
    assert "Accept" in err.remedy and err.step == STEP_AUTHORIZE
    assert 65004 in err.codes and "AADSTS65004" in str(err)


@pytest.mark.parametrize(
    ("code", "field"),
    [(700016, "client_id"), (50194, "tenant"), (65001, "refresh_token"), (70011, "environment")],
)
def test_catalogue_codes(code: int, field: str):
    err = _error("invalid_request", f"AADSTS{code}: something.")
    assert err.codes == (code,) and err.field == field


def test_uncatalogued_errors_by_name():
    assert _error("server_error").retryable
    assert "Web" in _error("unsupported_response_type").remedy
    unknown = _error("weird_error", "no code here")
    assert unknown.codes == ("weird_error",) and "weird_error" in str(unknown)


@pytest.mark.parametrize("name", sorted(OAUTH_ERROR_CATALOGUE))
def test_every_oauth_error_of_the_catalogue_explains_its_redirect(name: str):
    entry = OAUTH_ERROR_CATALOGUE[name]
    err = _error(name, "Something went wrong.")
    assert err.message == f"{entry.meaning} Microsoft says: Something went wrong." and err.remedy == entry.remedy
    assert (err.field, err.step, err.retryable) == (entry.field, entry.step, entry.retryable)
    assert err.codes == (name,)


def test_unknown_oauth_error_points_at_the_app_registration():
    err = _error("weird_error", "AADSTS123456: not catalogued.")
    assert err.codes == (123456,) and err.step == STEP_APP and err.field is None and not err.retryable
    assert err.message.startswith("Microsoft refused the authorization (weird_error). (AADSTS123456)")


def test_transient_oauth_errors_are_the_retryable_entries():
    assert {"server_error", "temporarily_unavailable"} == TRANSIENT_OAUTH_ERRORS
