"""Fault matrix: every misbehaviour of the token endpoint and of Customer Management, over a socket.

For each fault the emulator plays (429 + Retry-After, 500, 503, read timeout, connection reset,
malformed JSON, an HTML error page, an empty body, a huge body) we check three things:

* the classification: transient faults are retried (Retry-After honoured) and, when they
  persist, end in a ``TransientError`` with ``retryable=True`` after exactly ``attempts``
  requests; permanent ones raise at once, after exactly one request, ``retryable=False``;
* recovery: a transient fault that happens once costs exactly one more request, then succeeds;
* the bound: the call returns within the policy's budget (checked loosely, never a tight timing).

The policy is the production one's shape with small numbers (see ``_rel_support.FAST``).
The Customer Management API is exercised through the hook's authenticated client (the path users
take) and, to tell the API layer's own classification apart, through a client with fixed headers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from _support.reliability import (
    CLIENT_TIMEOUT,
    FAST,
    SLOW_ANSWER,
    RecordingTransport,
    SleepRecorder,
    StaticAuth,
    credentials_for,
    token_client,
)

from airflow_provider_msads.customer.api import CustomerManagement
from airflow_provider_msads.errors import (
    ApiError,
    InvalidClientError,
    InvalidGrantError,
    MicrosoftAdsError,
    ProtocolError,
    TransientError,
)
from airflow_provider_msads.token_store import MemoryTokenStore
from airflow_provider_msads.tokens.auth import TokenManager
from airflow_provider_msads.tokens.flow import MAX_BODY_BYTES, RetryPolicy

RETRY_AFTER = 0.05

#: name -> (emulator kind, inject kwargs, transient?)
FAULTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "429_retry_after": ("throttle", {"retry_after": RETRY_AFTER}, True),
    "500": ("status", {"status": 500}, True),
    "503": ("status", {"status": 503}, True),
    "read_timeout": ("timeout", {"delay": SLOW_ANSWER}, True),
    "connection_reset": ("reset", {}, True),
    "html_error_page_502": ("html", {"status": 502}, True),
    "malformed_json": ("malformed", {}, False),
    "html_page_200": ("html", {"status": 200}, False),
    "empty_body": ("empty", {}, False),
    "huge_body": ("huge", {}, False),
}
TRANSIENT = [name for name, (_, _, transient) in FAULTS.items() if transient]
PERMANENT = [name for name, (_, _, transient) in FAULTS.items() if not transient]

# What the error text must say, so that a human knows what happened.
SAYS = {
    "429_retry_after": "HTTP 429",
    "500": "HTTP 500",
    "503": "HTTP 503",
    "read_timeout": "timed out",
    "connection_reset": "failed",
    "html_error_page_502": "HTTP 502",
    "malformed_json": "not a JSON object",
    "html_page_200": "not a JSON object",
    "empty_body": "empty answer",
    "huge_body": "KiB",
}


def _bound(policy: RetryPolicy, attempts: int) -> float:
    """Loose wall-time bound: the waiting budget, one client timeout per attempt, and slack."""
    return policy.total_budget + attempts * CLIENT_TIMEOUT + 2.0


def _assert_no_secret(err: BaseException, *secrets: str) -> None:
    text = str(err) + repr(err)
    for secret in secrets:
        assert secret not in text


# ------------------------------------------------------------------------------ token endpoint


@pytest.mark.parametrize("fault", TRANSIENT)
def test_token_transient_fault_persisting_is_retried_then_raises(msads_emulator, fault: str):
    kind, kwargs, _ = FAULTS[fault]
    credentials = credentials_for(msads_emulator)
    sleeps = SleepRecorder()
    client = token_client(credentials, sleep=sleeps)
    msads_emulator.inject("token", kind, count=50, **kwargs)

    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        client.refresh(credentials.refresh_token)
    elapsed = time.monotonic() - started

    err = caught.value
    assert err.retryable is True
    assert msads_emulator.counters["token"] == FAST.attempts  # bounded: exactly the policy's attempts
    assert SAYS[fault] in str(err)
    assert "Fix:" in str(err)
    if fault == "429_retry_after":
        assert sleeps.pauses == [RETRY_AFTER] * (FAST.attempts - 1)  # Retry-After honoured, not backoff
    else:
        assert len(sleeps.pauses) == FAST.attempts - 1
        assert all(0 < p <= FAST.backoff_max for p in sleeps.pauses)
    assert elapsed < _bound(FAST, FAST.attempts)
    _assert_no_secret(err, credentials.client_secret, credentials.refresh_token)


@pytest.mark.parametrize("fault", TRANSIENT)
def test_token_transient_fault_once_costs_one_retry(msads_emulator, fault: str):
    kind, kwargs, _ = FAULTS[fault]
    credentials = credentials_for(msads_emulator)
    sleeps = SleepRecorder()
    msads_emulator.inject("token", kind, count=1, **kwargs)

    tokens = token_client(credentials, sleep=sleeps).refresh(credentials.refresh_token)

    assert tokens.access_token == msads_emulator.issued_access_tokens[-1]
    assert msads_emulator.counters["token"] == 2
    assert len(sleeps.pauses) == 1
    if fault == "429_retry_after":
        assert sleeps.pauses == [RETRY_AFTER]


@pytest.mark.parametrize("fault", PERMANENT)
def test_token_permanent_fault_raises_at_once(msads_emulator, fault: str):
    kind, kwargs, _ = FAULTS[fault]
    credentials = credentials_for(msads_emulator)
    sleeps = SleepRecorder()
    msads_emulator.inject("token", kind, count=50, **kwargs)

    started = time.monotonic()
    with pytest.raises(ProtocolError) as caught:
        token_client(credentials, sleep=sleeps).refresh(credentials.refresh_token)

    err = caught.value
    assert err.retryable is False
    assert msads_emulator.counters["token"] == 1
    assert sleeps.pauses == []
    assert SAYS[fault] in str(err)
    assert time.monotonic() - started < _bound(FAST, 1)
    _assert_no_secret(err, credentials.client_secret, credentials.refresh_token)


def test_token_huge_body_is_refused_after_reading_little_more_than_the_cap(msads_emulator):
    credentials = credentials_for(msads_emulator)
    transport = RecordingTransport()
    msads_emulator.inject("token", "huge")
    with pytest.raises(ProtocolError):
        token_client(credentials, transport=transport).refresh(credentials.refresh_token)
    assert MAX_BODY_BYTES < transport.bytes_read < MAX_BODY_BYTES + 512 * 1024  # the 8 MiB were not read


def test_token_retry_after_is_capped_and_the_budget_bounds_the_wait(msads_emulator):
    """Microsoft asking for 2 minutes must not hold a worker slot: 60 s cap, 90 s budget."""
    credentials = credentials_for(msads_emulator)
    sleeps = SleepRecorder(real=False)  # the production policy, with a fake sleep
    client = token_client(credentials, retry=RetryPolicy(), sleep=sleeps)
    msads_emulator.inject("token", "throttle", retry_after=120, count=50)

    with pytest.raises(TransientError) as caught:
        client.refresh(credentials.refresh_token)

    assert caught.value.retry_after == 120
    assert sleeps.pauses == [60.0]  # capped at max_retry_after; a second 60 s would pass 90 s
    assert msads_emulator.counters["token"] == 2


def test_token_budget_bounds_wall_time_of_slow_failures(msads_emulator):
    """Many attempts allowed, but a 1 s budget: the clock, not the attempt count, stops it."""
    credentials = credentials_for(msads_emulator)
    policy = RetryPolicy(attempts=50, backoff_base=0.05, backoff_max=0.05, total_budget=1.0, jitter=False)
    msads_emulator.inject("token", "timeout", delay=SLOW_ANSWER, count=100)

    started = time.monotonic()
    with pytest.raises(TransientError):
        token_client(credentials, retry=policy).refresh(credentials.refresh_token)
    elapsed = time.monotonic() - started

    assert 2 <= msads_emulator.counters["token"] < 10
    assert elapsed < policy.total_budget + CLIENT_TIMEOUT + 2.0


@pytest.mark.parametrize(
    ("inject", "expected", "requests"),
    [
        ({"kind": "aadsts", "code": 7000215}, InvalidClientError, 1),
        ({"kind": "aadsts", "code": 700082}, InvalidGrantError, 1),
        ({"kind": "msa_invalid_grant"}, InvalidGrantError, 1),
        ({"kind": "aadsts", "code": 70000}, InvalidGrantError, 2),  # retried once, as documented
        ({"kind": "oauth", "error": "temporarily_unavailable"}, TransientError, FAST.attempts),
        ({"kind": "oauth", "error": "server_error"}, TransientError, FAST.attempts),
        ({"kind": "aadsts", "code": 50196}, TransientError, FAST.attempts),
    ],
    ids=["7000215", "700082", "msa_invalid_grant", "70000", "temporarily_unavailable", "server_error", "50196"],
)
def test_token_oauth_errors_are_classified(msads_emulator, inject: dict, expected: type, requests: int):
    credentials = credentials_for(msads_emulator)
    kind = inject.pop("kind")
    msads_emulator.inject("token", kind, count=50, **inject)
    with pytest.raises(expected) as caught:
        token_client(credentials).refresh(credentials.refresh_token)
    assert msads_emulator.counters["token"] == requests
    assert caught.value.retryable is (expected is TransientError)
    _assert_no_secret(caught.value, credentials.client_secret, credentials.refresh_token)


def test_token_manager_survives_a_transient_storm_without_losing_state(msads_emulator):
    """A refresh that fails transiently leaves the store as it was; the next call succeeds."""
    credentials = credentials_for(msads_emulator)
    store = MemoryTokenStore()
    manager = TokenManager(credentials, store=store, client=token_client(credentials))
    first = manager.get_token(force_refresh=True)
    before = dict(store.data)

    msads_emulator.inject("token", "status", status=503, count=FAST.attempts)
    with pytest.raises(TransientError):
        manager.get_token(force_refresh=True)
    assert store.data == before

    again = manager.get_token(force_refresh=True)
    assert again.access_token != first.access_token
    assert again.access_token == msads_emulator.issued_access_tokens[-1]


# ------------------------------------------------------------------------------ Customer Management


def _hook(timeout: float = CLIENT_TIMEOUT):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    hook = MicrosoftAdsHook(msads_conn_id="msads_default", token_store=MemoryTokenStore(), timeout=timeout)
    hook.get_access_token()  # the token first: the matrix is about the API endpoint
    return hook


def _plain_client(hook, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    return httpx.Client(
        auth=StaticAuth(hook.credentials, hook.get_access_token()), timeout=CLIENT_TIMEOUT, transport=transport
    )


def _api_params(transient: bool) -> list:
    names = TRANSIENT if transient else PERMANENT
    return [pytest.param(name, via, id=f"{name}-{via}") for name in names for via in ("plain", "hook")]


def _api_client(hook, via: str, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    if via == "hook":
        client = hook.get_conn()
        if transport is not None:
            client._transport = transport  # count bytes on the hook's own client
        return client
    return _plain_client(hook, transport)


@pytest.mark.parametrize(("fault", "via"), _api_params(transient=True))
def test_api_transient_fault_persisting_is_retried_then_raises(msads_emulator, msads_conn, fault: str, via: str):
    kind, kwargs, _ = FAULTS[fault]
    hook = _hook()
    api = CustomerManagement(hook.credentials.endpoints.customer_management_url, retry=FAST)
    transport = RecordingTransport()
    msads_emulator.reset_counters()
    msads_emulator.inject("api", kind, count=50, **kwargs)

    started = time.monotonic()
    with _api_client(hook, via, transport) as client, pytest.raises(TransientError) as caught:
        api.get_user(client)
    elapsed = time.monotonic() - started

    err = caught.value
    assert err.retryable is True
    assert msads_emulator.counters["api"] == FAST.attempts
    assert msads_emulator.counters["token"] == 0
    assert SAYS[fault] in str(err)
    if fault == "429_retry_after":  # Retry-After honoured: the requests are spaced by it
        gaps = [b - a for a, b in zip(transport.sent_at, transport.sent_at[1:])]
        assert len(gaps) == FAST.attempts - 1
        assert all(gap >= RETRY_AFTER * 0.9 for gap in gaps)
    assert elapsed < _bound(FAST, FAST.attempts)
    _assert_no_secret(err, hook.credentials.developer_token, hook.get_access_token())


@pytest.mark.parametrize(("fault", "via"), _api_params(transient=True))
def test_api_transient_fault_once_costs_one_retry(msads_emulator, msads_conn, fault: str, via: str):
    kind, kwargs, _ = FAULTS[fault]
    hook = _hook()
    api = CustomerManagement(hook.credentials.endpoints.customer_management_url, retry=FAST)
    msads_emulator.reset_counters()
    msads_emulator.inject("api", kind, count=1, **kwargs)

    with _api_client(hook, via) as client:
        answer = api.get_user(client)

    assert answer["User"]["Id"] == msads_emulator.user_id
    assert msads_emulator.counters["api"] == 2


@pytest.mark.parametrize(("fault", "via"), _api_params(transient=False))
def test_api_permanent_fault_raises_at_once(msads_emulator, msads_conn, fault: str, via: str):
    kind, kwargs, _ = FAULTS[fault]
    hook = _hook()
    api = CustomerManagement(hook.credentials.endpoints.customer_management_url, retry=FAST)
    transport = RecordingTransport()
    msads_emulator.reset_counters()
    msads_emulator.inject("api", kind, count=50, **kwargs)

    with _api_client(hook, via, transport) as client, pytest.raises(ProtocolError) as caught:
        api.get_user(client)

    err = caught.value
    assert err.retryable is False
    assert msads_emulator.counters["api"] == 1
    assert SAYS[fault] in str(err)
    if fault == "huge_body":
        assert transport.bytes_read < MAX_BODY_BYTES + 512 * 1024
    _assert_no_secret(err, hook.credentials.developer_token, hook.get_access_token())


@pytest.mark.parametrize("via", ["hook", "plain"])
def test_api_huge_error_body_is_refused_after_reading_little_more_than_the_cap(msads_emulator, msads_conn, via: str):
    """An 8 MiB error page (a hostile or broken proxy) must not be read whole: the cap holds for errors too."""
    hook = _hook()
    api = CustomerManagement(hook.credentials.endpoints.customer_management_url, retry=FAST)
    transport = RecordingTransport()
    msads_emulator.inject("api", "huge", status=500, count=50)
    with _api_client(hook, via, transport) as client, pytest.raises(MicrosoftAdsError):
        api.get_user(client)
    assert transport.bytes_read < MAX_BODY_BYTES + 512 * 1024


@pytest.mark.parametrize(
    ("code", "expected", "requests"),
    [
        (117, TransientError, FAST.attempts),  # CallRateExceeded: retried after Retry-After
        (0, TransientError, FAST.attempts),  # InternalError
        (1102, ApiError, 1),  # InvalidAccountId: permanent, names the field
        (106, ApiError, 1),
    ],
)
@pytest.mark.parametrize("via", ["plain", "hook"])
def test_api_faults_are_classified(msads_emulator, msads_conn, code: int, expected: type, requests: int, via: str):
    hook = _hook()
    api = CustomerManagement(hook.credentials.endpoints.customer_management_url, retry=FAST)
    msads_emulator.reset_counters()
    msads_emulator.inject("api", "fault", code=code, count=50, retry_after=RETRY_AFTER)
    with _api_client(hook, via) as client, pytest.raises(expected) as caught:
        api.get_account(client, msads_emulator.account.id)
    assert msads_emulator.counters["api.GetAccount"] == requests
    assert caught.value.code == code
    assert caught.value.tracking_id  # support needs it
    if code == 1102:
        assert caught.value.field == "account_id"


@pytest.mark.parametrize(
    "fault",
    ["503", "connection_reset", "read_timeout", "huge_body"],
)
def test_api_async_twin_classifies_the_same(msads_emulator, msads_conn, fault: str):
    kind, kwargs, transient = FAULTS[fault]
    hook = _hook()
    api = CustomerManagement(hook.credentials.endpoints.customer_management_url, retry=FAST)
    msads_emulator.reset_counters()
    msads_emulator.inject("api", kind, count=50, **kwargs)

    async def main() -> MicrosoftAdsError:
        async with hook.get_async_conn() as client:
            with pytest.raises(MicrosoftAdsError) as caught:
                await api.aget_user(client)
        return caught.value

    err = asyncio.run(main())
    assert isinstance(err, TransientError if transient else ProtocolError)
    assert err.retryable is transient
    assert msads_emulator.counters["api"] == (FAST.attempts if transient else 1)
