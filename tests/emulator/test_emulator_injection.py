"""Fault injection, counters, concurrency and shutdown behaviour."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _support.emulator import AADSTS_DESCRIPTION, Driver, assert_aad_error

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator


def get_user(ms: Driver, access: str) -> httpx.Response:
    return ms.api("User/Query", {"UserId": None}, access_token=access)


# ------------------------------------------------------------------ token endpoint kinds


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (700082, 400, "invalid_grant"),
        (7000215, 401, "invalid_client"),
        (700016, 400, "unauthorized_client"),
        (65001, 400, "invalid_grant"),
        (650052, 401, "invalid_client"),
        (50076, 400, "invalid_grant"),
        (50196, 400, "temporarily_unavailable"),
    ],
)
def test_aadsts_injection(ms: Driver, code: int, status: int, error: str) -> None:
    refresh = ms.emu.issue_refresh_token()
    ms.emu.inject("token", "aadsts", code=code)
    assert_aad_error(ms.refresh(refresh), status, error, code)
    assert ms.refresh(refresh).status_code == 200
    assert ms.emu.counters["injected"] == 1


def test_injection_count_and_fifo(ms: Driver) -> None:
    refresh = ms.emu.issue_refresh_token()
    ms.emu.inject("token", "aadsts", code=70000, count=2)
    ms.emu.inject("token", "throttle", retry_after=3)
    assert_aad_error(ms.refresh(refresh), 400, "invalid_grant", 70000)
    assert_aad_error(ms.refresh(refresh), 400, "invalid_grant", 70000)
    assert ms.refresh(refresh).status_code == 429
    assert ms.refresh(refresh).status_code == 200
    assert ms.emu.counters["injected"] == 3


def test_unknown_aadsts_code_needs_an_error_string(ms: Driver) -> None:
    with pytest.raises(ValueError, match="catalogue"):
        ms.emu.inject("token", "aadsts", code=12345)
    ms.emu.inject("token", "aadsts", code=12345, error="invalid_grant")
    assert_aad_error(ms.refresh(ms.emu.issue_refresh_token()), 400, "invalid_grant", 12345)


def test_oauth_injection(ms: Driver) -> None:
    refresh = ms.emu.issue_refresh_token()
    ms.emu.inject("token", "oauth")
    ms.emu.inject("token", "oauth", error="server_error", code=90033)
    ms.emu.inject("token", "oauth", error="slow_down", body=b'{"error":"slow_down"}', status=400)

    unavailable = ms.refresh(refresh)
    assert unavailable.status_code == 503
    assert unavailable.json()["error"] == "temporarily_unavailable"
    assert "error_codes" not in unavailable.json()
    assert_aad_error(ms.refresh(refresh), 500, "server_error", 90033)
    custom = ms.refresh(refresh)
    assert (custom.status_code, custom.json()) == (400, {"error": "slow_down"})


def test_personal_account_invalid_grant_has_no_aadsts_code(ms: Driver) -> None:
    ms.emu.inject("token", "msa_invalid_grant")
    response = ms.refresh(ms.emu.issue_refresh_token())
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_grant"
    assert "AADSTS" not in body["error_description"]


def test_aadsts_injection_on_authorize_redirects(ms: Driver) -> None:
    ms.emu.inject("authorize", "aadsts", code=65001)
    response = ms.authorize(state="s1")
    assert response.status_code == 302
    assert "error=invalid_grant" in response.headers["Location"]
    assert "AADSTS65001" in response.headers["Location"]
    assert "state=s1" in response.headers["Location"]


# ------------------------------------------------------------------ api faults


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [
        (0, 500, "InternalError"),
        (105, 401, "InvalidCredentials"),
        (106, 400, "UserIsNotAuthorized"),
        (109, 401, "AuthenticationTokenExpired"),
        (116, 400, "RequestMissingHeaders"),
        (117, 400, "CallRateExceeded"),
        (207, 400, "ConcurrentRequestOverLimit"),
    ],
)
def test_ad_api_fault_injection(ms: Driver, code: int, status: int, error_code: str) -> None:
    access = ms.access_token()
    ms.emu.inject("api", "fault", code=code)
    response = get_user(ms, access)
    assert response.status_code == status
    body = response.json()
    assert body["Type"] == "AdApiFaultDetail"
    assert body["TrackingId"] == response.headers["TrackingId"]
    assert [(e["Code"], e["ErrorCode"]) for e in body["Errors"]] == [(code, error_code)]


@pytest.mark.parametrize("code", [1102, 1490])
def test_api_fault_injection(ms: Driver, code: int) -> None:
    access = ms.access_token()
    ms.emu.inject("api", "fault", code=code)
    body = get_user(ms, access).json()
    assert body["Type"] == "ApiFault"
    assert [e["Code"] for e in body["OperationErrors"]] == [code]


def test_fault_injection_can_be_narrowed_to_one_operation(ms: Driver) -> None:
    access = ms.access_token()
    ms.emu.inject("api", "fault", code=117, operation="GetAccount", status=429, retry_after=60)
    assert get_user(ms, access).status_code == 200
    throttled = ms.api("Account/Query", {"AccountId": ms.emu.account.id}, access_token=access)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "60"
    assert throttled.json()["Errors"][0]["ErrorCode"] == "CallRateExceeded"


# ------------------------------------------------------------------ transport-level kinds


@pytest.mark.parametrize("endpoint", ["token", "api"])
def test_status_injection(ms: Driver, endpoint: str) -> None:
    access = ms.access_token()
    refresh = ms.emu.issue_refresh_token()
    ms.emu.inject(endpoint, "status", status=502, retry_after=5)
    ms.emu.inject(endpoint, "status", status=503, body=b'{"message":"busy"}')

    def call() -> httpx.Response:
        return ms.refresh(refresh) if endpoint == "token" else get_user(ms, access)

    bare = call()
    assert (bare.status_code, bare.content, bare.headers["Retry-After"]) == (502, b"", "5")
    with_body = call()
    assert (with_body.status_code, with_body.json()) == (503, {"message": "busy"})
    assert with_body.headers["content-type"].startswith("application/json")
    assert call().status_code == 200


def test_throttle_injection(ms: Driver) -> None:
    ms.emu.inject("token", "throttle")
    ms.emu.inject("token", "throttle", retry_after=0.25)
    first, second = ms.refresh(ms.emu.issue_refresh_token()), ms.refresh(ms.emu.issue_refresh_token())
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "0.25")


@pytest.mark.parametrize(
    ("endpoint", "kind", "code"),
    [
        ("token", "aadsts", 50196),
        ("token", "throttle", None),
        ("authorize", "aadsts", 65001),
        ("authorize", "html", None),
        ("api", "fault", 117),
    ],
)
def test_retry_after_goes_on_every_kind_once(ms: Driver, endpoint: str, kind: str, code: int | None) -> None:
    """``inject(retry_after=...)`` adds one Retry-After header whatever the endpoint and kind."""
    access = ms.access_token()
    refresh = ms.emu.issue_refresh_token()
    ms.emu.inject(endpoint, kind, code=code, retry_after=7)
    if endpoint == "token":
        response = ms.refresh(refresh)
    elif endpoint == "authorize":
        response = ms.authorize(state="s1")
    else:
        response = get_user(ms, access)
    assert response.status_code != 200
    assert response.headers.get_list("Retry-After") == ["7"]


@pytest.mark.parametrize("endpoint", ["token", "authorize", "api"])
def test_html_injection(ms: Driver, endpoint: str) -> None:
    access = ms.access_token()
    ms.emu.inject(endpoint, "html", status=502)
    if endpoint == "token":
        response = ms.refresh(ms.emu.issue_refresh_token())
    elif endpoint == "authorize":
        response = ms.authorize()
    else:
        response = get_user(ms, access)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_empty_malformed_and_huge(ms: Driver) -> None:
    access = ms.access_token()
    ms.emu.inject("api", "empty")
    ms.emu.inject("api", "malformed")
    ms.emu.inject("api", "huge")
    ms.emu.inject("token", "malformed")

    empty = get_user(ms, access)
    assert (empty.status_code, empty.content) == (200, b"")
    malformed = get_user(ms, access)
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    huge = get_user(ms, access)
    assert huge.status_code == 200
    assert len(huge.content) >= 8 * 1024 * 1024
    with pytest.raises(json.JSONDecodeError):
        ms.refresh(ms.emu.issue_refresh_token()).json()


@pytest.mark.parametrize("endpoint", ["token", "api"])
def test_reset_injection_is_a_connection_error(ms: Driver, endpoint: str) -> None:
    access = ms.access_token()
    refresh = ms.emu.issue_refresh_token()

    def call() -> httpx.Response:
        return ms.refresh(refresh) if endpoint == "token" else get_user(ms, access)

    ms.emu.inject(endpoint, "reset")
    with pytest.raises(httpx.ReadError, match="reset"):  # a TCP RST, not a clean close
        call()
    assert get_user(ms, access).status_code == 200  # the server lives on


def test_timeout_injection_trips_the_client_without_blocking_others(ms: Driver) -> None:
    refresh = ms.emu.issue_refresh_token()
    access = ms.access_token()
    ms.emu.inject("token", "timeout", delay=30)
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post(
            ms.emu.token_url(),
            data={
                "grant_type": "refresh_token",
                "client_id": ms.emu.app.client_id,
                "client_secret": ms.emu.app.client_secret,
                "refresh_token": refresh,
            },
        )
    started = time.monotonic()
    assert get_user(ms, access).status_code == 200  # the server still answers others at once
    assert ms.refresh(refresh).status_code == 200
    assert time.monotonic() - started < 2


def test_latency(ms: Driver) -> None:
    refresh = ms.emu.issue_refresh_token()
    ms.emu.inject("token", "latency", delay=0.2)
    started = time.monotonic()
    assert ms.refresh(refresh).status_code == 200
    assert time.monotonic() - started >= 0.2

    ms.emu.latency = 0.1
    started = time.monotonic()
    assert ms.refresh(refresh).status_code == 200
    assert time.monotonic() - started >= 0.1


def test_stop_returns_promptly_with_a_pending_timeout(
    msads_emulator_factory: Callable[..., MicrosoftAdsEmulator],
) -> None:
    emulator = msads_emulator_factory()
    emulator.inject("token", "timeout")  # 30 s by default
    outcome: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            httpx.post(emulator.token_url(), data={"grant_type": "refresh_token"}, timeout=60)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=slow_request)
    worker.start()
    deadline = time.monotonic() + 5
    while emulator.counters["token"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # wait for the request to reach the server (synchronisation, not timing)

    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 1.5
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), httpx.RemoteProtocolError)


def test_clear_injections(ms: Driver) -> None:
    ms.emu.inject("token", "reset", count=5)
    ms.emu.inject("api", "reset")
    ms.emu.clear_injections()
    assert ms.refresh(ms.emu.issue_refresh_token()).status_code == 200


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("nope", "reset"), {}, "endpoint"),
        (("token", "nope"), {}, "kind"),
        (("token", "reset"), {"count": 0}, "count"),
        (("token", "reset"), {"operation": "GetUser"}, "operation"),
        (("api", "reset"), {"operation": "DeleteAccount"}, "operation"),
        (("api", "aadsts"), {"code": 70000}, "token and authorize"),
        (("token", "fault"), {"code": 105}, "api"),
        (("api", "msa_invalid_grant"), {}, "token endpoint"),
        (("token", "aadsts"), {}, "code"),
    ],
)
def test_inject_validates_its_arguments(
    msads_emulator: MicrosoftAdsEmulator, args: tuple[str, str], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        msads_emulator.inject(*args, **kwargs)


# ------------------------------------------------------------------ counters and concurrency


def test_counters(ms: Driver) -> None:
    access = ms.access_token()  # token, token.refresh_token
    ms.exchange(ms.authorize_code())  # authorize, token, token.authorization_code
    ms.api("User/Query", {"UserId": None}, access_token=access)
    ms.api("Account/Query", {"AccountId": ms.emu.account.id}, access_token=access)
    ms.api("AccountsInfo/Query", {"CustomerId": None}, access_token=access)
    ms.emu.inject("api", "status", status=500)
    ms.api("User/Query", {"UserId": None}, access_token=access)

    assert dict(ms.emu.counters) == {
        "token": 2,
        "token.refresh_token": 1,
        "token.authorization_code": 1,
        "authorize": 1,
        "api": 4,
        "api.GetUser": 2,
        "api.GetAccount": 1,
        "api.GetAccountsInfo": 1,
        "injected": 1,
    }
    ms.emu.reset_counters()
    assert not ms.emu.counters
    assert ms.emu.token_requests == []
    assert len(ms.emu.issued_access_tokens) == 2  # kept for leak tests


def test_concurrent_refreshes_are_consistent(ms: Driver) -> None:
    refresh = ms.emu.issue_refresh_token()
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=10) as http:
            driver = Driver(ms.emu, http)
            for _ in range(20):
                status = driver.refresh(refresh).status_code
                with lock:
                    results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [200] * 160
    assert ms.emu.counters["token.refresh_token"] == 160
    assert len(set(ms.emu.issued_refresh_tokens)) == 161
    assert len(set(ms.emu.issued_access_tokens)) == 160


def test_request_log_is_silent(ms: Driver, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # The test's own httpx client logs each request at INFO where Airflow 2.11/3.0 configured the root
    # logger to print; only the emulator's output is under test.
    caplog.set_level(logging.WARNING, logger="httpx")
    refresh = ms.emu.issue_refresh_token()
    ms.refresh(refresh)
    ms.authorize(state="secret-state")
    ms.emu.inject("token", "reset")
    with pytest.raises(httpx.TransportError):
        ms.refresh(refresh)
    out, err = capfd.readouterr()
    assert out == err == ""


def test_error_descriptions_carry_trace_ids(ms: Driver) -> None:
    body = ms.refresh("garbage").json()
    match = AADSTS_DESCRIPTION.match(body["error_description"])
    assert match is not None
    assert match["trace"] == body["trace_id"]


def test_injected_aadsts_text_names_the_request(ms: Driver) -> None:
    ms.emu.inject("token", "aadsts", code=7000215)
    ms.emu.inject("token", "aadsts", code=700082)
    secret = assert_aad_error(ms.refresh(ms.emu.issue_refresh_token()), 401, "invalid_client", 7000215)
    assert f"app '{ms.emu.app.client_id}'" in secret["error_description"]
    inactive = assert_aad_error(ms.refresh(ms.emu.issue_refresh_token()), 400, "invalid_grant", 700082)
    assert "issued on  " not in inactive["error_description"]
