"""The pure token core against a scripted token endpoint (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from _support.fakes import (
    CLIENT_SECRET,
    CONN_REFRESH,
    DEV_TOKEN,
    FakeTokenEndpoint,
    aadsts,
    make_credentials,
)

from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials
from airflow_provider_msads.errors import (
    InvalidClientError,
    InvalidGrantError,
    MicrosoftAdsError,
    ProtocolError,
    TransientError,
)
from airflow_provider_msads.errors.catalogue import AADSTS_CATALOGUE
from airflow_provider_msads.token_store import MemoryTokenStore, TokenCipher, storage_key
from airflow_provider_msads.tokens.auth import (
    MicrosoftAdsAuth,
    TokenClient,
    TokenManager,
    _worth_refreshing,
    clear_process_cache,
)
from airflow_provider_msads.tokens.flow import RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_client(
    creds: MicrosoftAdsCredentials, endpoint: FakeTokenEndpoint, sleeps: list[float] | None = None, **kw: Any
) -> TokenClient:
    record = sleeps if sleeps is not None else []
    return TokenClient(
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        endpoints=creds.endpoints,
        transport=endpoint.transport,
        async_transport=endpoint.transport,
        sleep=record.append,
        retry=kw.pop("retry", RetryPolicy(jitter=False)),
        **kw,
    )


def make_manager(
    creds: MicrosoftAdsCredentials, endpoint: FakeTokenEndpoint, store: MemoryTokenStore | None = None, **kw: Any
) -> TokenManager:
    clock = kw.pop("clock", Clock())
    masked: list[str] = kw.pop("masked", [])
    return TokenManager(
        creds,
        store=store if store is not None else MemoryTokenStore(),
        client=make_client(creds, endpoint, clock=clock, on_secret=masked.append),
        clock=clock,
        on_secret=masked.append,
        **kw,
    )


# ------------------------------------------------------------------------------ token client


def test_refresh_sends_the_grant_with_scope_and_parses_expiry(credentials: MicrosoftAdsCredentials, endpoint):
    clock = Clock()
    tokens = make_client(credentials, endpoint, clock=clock).refresh(CONN_REFRESH)
    sent = endpoint.requests[0]
    assert sent["grant_type"] == "refresh_token"
    assert sent["refresh_token"] == CONN_REFRESH
    assert sent["client_id"] == credentials.client_id
    assert sent["client_secret"] == CLIENT_SECRET
    assert sent["scope"] == "https://ads.microsoft.com/msads.manage offline_access"
    assert tokens.access_token == "ACCESS-0001-unit"
    assert tokens.refresh_token == "M.C5_BAY.ROTATED-0001-unit-refresh"
    assert tokens.expires_at == clock.now + 3600
    assert "ACCESS" not in repr(tokens)


def test_sandbox_uses_the_sandbox_scope(endpoint):
    creds = make_credentials(extra={"environment": "sandbox"})
    make_client(creds, endpoint).refresh(CONN_REFRESH)
    assert endpoint.requests[0]["scope"] == "https://si.ads.microsoft.com/msads.manage offline_access"


def test_code_exchange_sends_redirect_uri_and_verifier(credentials, endpoint):
    make_client(credentials, endpoint).exchange_code(
        "CODE-1", redirect_uri="http://localhost:8080", code_verifier="v" * 43
    )
    sent = endpoint.requests[0]
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == "CODE-1"
    assert sent["redirect_uri"] == "http://localhost:8080"
    assert sent["code_verifier"] == "v" * 43


def test_code_exchange_is_never_retried(credentials, endpoint):
    endpoint.answers = [httpx.Response(503, json={"error": "temporarily_unavailable"})]
    with pytest.raises(TransientError):
        make_client(credentials, endpoint).exchange_code("CODE-1", redirect_uri="http://localhost:8080")
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("code", sorted(AADSTS_CATALOGUE))
def test_every_catalogued_code_maps_to_its_remedy(code: int, credentials, endpoint):
    entry = AADSTS_CATALOGUE[code]
    status = 401 if entry.name == "invalid_client" else 400
    endpoint.answers = [aadsts(code, entry.name, status) for _ in range(6)]
    sleeps: list[float] = []
    with pytest.raises(MicrosoftAdsError) as info:
        make_client(credentials, endpoint, sleeps).refresh(CONN_REFRESH)
    err = info.value
    assert code in err.codes
    assert err.remedy == entry.remedy
    assert err.field == entry.field
    assert err.step == entry.step
    assert err.retryable == entry.retryable
    assert err.trace_id == f"t-{code}"
    assert err.correlation_id == "c-1"
    assert f"trace id t-{code}" in str(err)
    assert CLIENT_SECRET not in str(err) and CONN_REFRESH not in str(err)
    expected_requests = 4 if entry.retryable else (2 if entry.retry_once else 1)
    assert len(endpoint.requests) == expected_requests
    if entry.name == "invalid_client":
        assert isinstance(err, InvalidClientError)
    if entry.name == "invalid_grant":
        assert isinstance(err, InvalidGrantError)


def test_secret_id_pasted_names_the_value_and_step_2(credentials, endpoint):
    endpoint.answers = [aadsts(7000215, "invalid_client", 401)]
    with pytest.raises(InvalidClientError) as info:
        make_client(credentials, endpoint).refresh(CONN_REFRESH)
    assert "Value" in info.value.remedy and "Secret ID" in info.value.remedy
    assert "Step 2" in str(info.value)


def test_personal_account_invalid_grant_without_code_means_reauthorize(credentials, endpoint):
    endpoint.answers = [
        httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "The user could not be authenticated."}
        )
    ]
    with pytest.raises(InvalidGrantError) as info:
        make_client(credentials, endpoint).refresh(CONN_REFRESH)
    assert info.value.reauthorize and info.value.field == "refresh_token"


def test_429_honours_retry_after_then_succeeds(credentials, endpoint):
    endpoint.answers = [httpx.Response(429, headers={"Retry-After": "7"}, json={})]
    sleeps: list[float] = []
    tokens = make_client(credentials, endpoint, sleeps).refresh(CONN_REFRESH)
    assert tokens.access_token.startswith("ACCESS")
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="<html>oops</html>", headers={"content-type": "text/html"}),
        httpx.Response(503, json={"error": "temporarily_unavailable"}),
        httpx.Response(400, json={"error": "server_error"}),
        httpx.ConnectError("boom"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("reset"),
    ],
    ids=["html-500", "503", "server_error", "connect", "timeout", "reset"],
)
def test_transient_failures_are_retried_with_backoff(answer, credentials, endpoint):
    endpoint.answers = [answer, answer]
    sleeps: list[float] = []
    tokens = make_client(credentials, endpoint, sleeps).refresh(CONN_REFRESH)
    assert tokens.access_token.startswith("ACCESS")
    assert sleeps == [0.5, 1.0]
    assert len(endpoint.requests) == 3


def test_transient_failures_are_bounded(credentials, endpoint):
    endpoint.answers = [httpx.Response(503, json={}) for _ in range(10)]
    sleeps: list[float] = []
    with pytest.raises(TransientError) as info:
        make_client(credentials, endpoint, sleeps).refresh(CONN_REFRESH)
    assert len(endpoint.requests) == 4
    assert info.value.retryable


def test_retry_budget_bounds_total_wait(credentials, endpoint):
    endpoint.answers = [httpx.Response(429, headers={"Retry-After": "50"}, json={}) for _ in range(5)]
    sleeps: list[float] = []
    client = make_client(credentials, endpoint, sleeps, retry=RetryPolicy(total_budget=60, jitter=False))
    with pytest.raises(TransientError):
        client.refresh(CONN_REFRESH)
    assert sum(sleeps) <= 60


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, content=b""),
        httpx.Response(200, json={"token_type": "Bearer"}),
        httpx.Response(404, text="<html>Not found</html>"),
    ],
    ids=["malformed", "empty", "no-access-token", "html-404"],
)
def test_unreadable_answers_are_permanent_protocol_errors(answer, credentials, endpoint):
    endpoint.answers = [answer]
    with pytest.raises(ProtocolError):
        make_client(credentials, endpoint).refresh(CONN_REFRESH)
    assert len(endpoint.requests) == 1


def test_huge_answer_is_refused_unread(credentials, endpoint):
    endpoint.answers = [httpx.Response(200, content=b"{" + b" " * (3 * 1024 * 1024) + b"}")]
    with pytest.raises(ProtocolError, match="KiB"):
        make_client(credentials, endpoint).refresh(CONN_REFRESH)


def test_error_messages_never_quote_the_body(credentials, endpoint):
    endpoint.answers = [httpx.Response(418, text=f"echo {CLIENT_SECRET} {CONN_REFRESH}")]
    with pytest.raises(MicrosoftAdsError) as info:
        make_client(credentials, endpoint).refresh(CONN_REFRESH)
    text = str(info.value) + repr(info.value.to_dict())
    assert CLIENT_SECRET not in text and CONN_REFRESH not in text


# ----------------------------------------------------------------------------- token manager


def test_many_calls_cost_one_token_request_and_mask_each_token(credentials, endpoint):
    masked: list[str] = []
    manager = make_manager(credentials, endpoint, masked=masked)
    tokens = {manager.get_access_token() for _ in range(50)}
    assert tokens == {"ACCESS-0001-unit"}
    assert len(endpoint.requests) == 1
    assert "ACCESS-0001-unit" in masked and "M.C5_BAY.ROTATED-0001-unit-refresh" in masked


def test_rotated_refresh_token_is_persisted_and_presented_next_time(credentials, endpoint):
    store = MemoryTokenStore()
    clock = Clock()
    manager = make_manager(credentials, endpoint, store, clock=clock)
    manager.get_access_token()
    state = TokenCipher.for_credentials(credentials).open(store.read(storage_key(credentials.conn_id)))
    assert state is not None and state.refresh_token == "M.C5_BAY.ROTATED-0001-unit-refresh"
    assert state.refresh_rotated_at == clock.now
    clock.now += 3600  # the access token is now stale
    clear_process_cache()
    fresh = make_manager(credentials, endpoint, store, clock=clock)
    assert fresh.get_access_token() == "ACCESS-0002-unit"
    assert endpoint.requests[1]["refresh_token"] == "M.C5_BAY.ROTATED-0001-unit-refresh"


def test_refresh_happens_early_before_expiry(credentials, endpoint):
    clock = Clock()
    manager = make_manager(credentials, endpoint, clock=clock)
    manager.get_access_token()
    clock.now += 3600 - 301
    assert manager.get_access_token() == "ACCESS-0001-unit"
    clock.now += 2
    assert manager.get_access_token() == "ACCESS-0002-unit"


def test_new_process_reads_the_shared_access_token_from_the_store(credentials, endpoint):
    store = MemoryTokenStore()
    make_manager(credentials, endpoint, store).get_access_token()
    clear_process_cache()  # as if another worker process
    assert make_manager(credentials, endpoint, store).get_access_token() == "ACCESS-0001-unit"
    assert len(endpoint.requests) == 1


def test_state_is_written_before_the_token_is_handed_out(credentials, endpoint):
    class CrashingStore(MemoryTokenStore):
        def write(self, key: str, value: str) -> None:
            super().write(key, value)
            raise KeyboardInterrupt  # the process dies right after persisting

    store = CrashingStore()
    with pytest.raises(KeyboardInterrupt):
        make_manager(credentials, endpoint, store).get_access_token()
    state = TokenCipher.for_credentials(credentials).open(store.read(storage_key(credentials.conn_id)))
    assert state is not None and state.refresh_token.endswith("ROTATED-0001-unit-refresh")


def test_reauthorized_connection_discards_the_old_state(endpoint):
    store = MemoryTokenStore()
    old = make_credentials()
    make_manager(old, endpoint, store).get_access_token()
    clear_process_cache()
    new = make_credentials(extra={"refresh_token": "M.C5_BAY.PASTED-AFTER-REAUTHORIZE-0002"})
    make_manager(new, endpoint, store).get_access_token()
    assert endpoint.requests[-1]["refresh_token"] == "M.C5_BAY.PASTED-AFTER-REAUTHORIZE-0002"
    assert len(endpoint.requests) == 2


def test_rejected_stored_token_falls_back_once_to_the_connection_token(credentials, endpoint):
    store = MemoryTokenStore()
    clock = Clock()
    make_manager(credentials, endpoint, store, clock=clock).get_access_token()
    clear_process_cache()
    clock.now += 4000
    endpoint.answers = [aadsts(70008)]
    manager = make_manager(credentials, endpoint, store, clock=clock)
    assert manager.get_access_token() == "ACCESS-0002-unit"
    assert [r["refresh_token"] for r in endpoint.requests[1:]] == [
        "M.C5_BAY.ROTATED-0001-unit-refresh",
        CONN_REFRESH,
    ]
    assert manager.info.used_fallback


def test_both_tokens_rejected_raises_the_connection_tokens_error(credentials, endpoint):
    store = MemoryTokenStore()
    clock = Clock()
    make_manager(credentials, endpoint, store, clock=clock).get_access_token()
    clear_process_cache()
    clock.now += 4000
    endpoint.answers = [aadsts(70008), aadsts(700082)]
    with pytest.raises(InvalidGrantError) as info:
        make_manager(credentials, endpoint, store, clock=clock).get_access_token()
    assert info.value.codes == (700082,)
    assert len(endpoint.requests) == 3


def test_non_grant_errors_do_not_fall_back(credentials, endpoint):
    endpoint.answers = [aadsts(7000215, "invalid_client", 401)]
    with pytest.raises(InvalidClientError):
        make_manager(credentials, endpoint).get_access_token()
    assert len(endpoint.requests) == 1


def test_force_refresh_reuses_a_token_someone_else_already_refreshed(credentials, endpoint):
    store = MemoryTokenStore()
    first = make_manager(credentials, endpoint, store)
    old = first.get_access_token()
    clear_process_cache()
    other = make_manager(credentials, endpoint, store)
    newer = other.get_token(force_refresh=True, stale_token=old).access_token
    assert newer != old
    clear_process_cache()
    assert first.get_token(force_refresh=True, stale_token=old).access_token == newer
    assert len(endpoint.requests) == 2


def test_store_write_failure_still_hands_out_the_token(credentials, endpoint):
    from airflow_provider_msads.errors import TokenStoreError

    class ReadOnly(MemoryTokenStore):
        def write(self, key: str, value: str) -> None:
            raise TokenStoreError("read-only", remedy="fix it")

    manager = make_manager(credentials, endpoint, ReadOnly())
    assert manager.get_access_token() == "ACCESS-0001-unit"
    assert manager.info.persist_error == "read-only"


def test_async_twin_shares_the_same_logic(credentials, endpoint):
    store = MemoryTokenStore()
    manager = make_manager(credentials, endpoint, store)

    async def main() -> list[str]:
        return [await manager.aget_access_token() for _ in range(5)]

    assert set(asyncio.run(main())) == {"ACCESS-0001-unit"}
    assert len(endpoint.requests) == 1
    assert store.read(storage_key(credentials.conn_id))


# -------------------------------------------------------------------------------- httpx.Auth


def _api(responses: list[httpx.Response], seen: list[httpx.Headers]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(httpx.Headers(request.headers))
        return responses.pop(0) if responses else httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


def test_auth_sets_all_ads_headers(credentials, endpoint):
    seen: list[httpx.Headers] = []
    auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
    with httpx.Client(transport=_api([], seen), auth=auth) as http:
        http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={})
    headers = seen[0]
    assert headers["Authorization"] == "Bearer ACCESS-0001-unit"
    assert headers["DeveloperToken"] == DEV_TOKEN
    assert headers["CustomerId"] == "251186883"
    assert headers["CustomerAccountId"] == "180535609"


@pytest.mark.parametrize(
    "expired",
    [
        httpx.Response(401, json={}),
        httpx.Response(
            400,
            json={
                "TrackingId": "x",
                "Type": "AdApiFaultDetail",
                "Errors": [{"Code": 109, "ErrorCode": "AuthenticationTokenExpired"}],
            },
        ),
    ],
    ids=["401", "fault-109"],
)
def test_auth_refreshes_once_when_microsoft_says_expired(expired, credentials, endpoint):
    seen: list[httpx.Headers] = []
    auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
    with httpx.Client(transport=_api([expired], seen), auth=auth) as http:
        response = http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={})
    assert response.status_code == 200
    assert [h["Authorization"] for h in seen] == ["Bearer ACCESS-0001-unit", "Bearer ACCESS-0002-unit"]


BAD_DEVELOPER_TOKEN = {
    "TrackingId": "x",
    "Type": "AdApiFaultDetail",
    "Errors": [{"Code": 105, "ErrorCode": "InvalidCredentials"}],
}


def test_fault_105_on_a_token_minted_in_this_call_costs_no_second_refresh(credentials, endpoint):
    """105 with a brand-new access token can only be the developer token: refreshing again would
    rotate the refresh token on every call and change nothing."""
    seen: list[httpx.Headers] = []
    auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
    refused = [httpx.Response(401, json=BAD_DEVELOPER_TOKEN) for _ in range(3)]
    with httpx.Client(transport=_api(refused, seen), auth=auth) as http:
        assert http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={}).status_code == 401
        assert len(endpoint.requests) == 1 and len(seen) == 1
        # The next call reuses the cached token; 105 may now mean it was revoked: one refresh.
        assert http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={}).status_code == 401
    assert len(endpoint.requests) == 2 and len(seen) == 3


def test_async_fault_105_on_a_fresh_token_costs_no_second_refresh(credentials, endpoint):
    seen: list[httpx.Headers] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(httpx.Headers(request.headers))
        return httpx.Response(401, json=BAD_DEVELOPER_TOKEN)

    async def main() -> int:
        auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as http:
            return (await http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={})).status_code

    assert asyncio.run(main()) == 401
    assert len(seen) == 1 and len(endpoint.requests) == 1


def test_auth_does_not_loop_when_still_refused(credentials, endpoint):
    seen: list[httpx.Headers] = []
    auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
    with httpx.Client(transport=_api([httpx.Response(401), httpx.Response(401)], seen), auth=auth) as http:
        response = http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={})
    assert response.status_code == 401
    assert len(seen) == 2 and len(endpoint.requests) == 2


def test_async_auth_flow_refreshes_on_expiry(credentials, endpoint):
    seen: list[httpx.Headers] = []
    responses = [httpx.Response(401, json={})]

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(httpx.Headers(request.headers))
        return responses.pop(0) if responses else httpx.Response(200, json={})

    async def main() -> int:
        auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as http:
            return (await http.post("https://clientcenter.api.bingads.microsoft.com/User/Query", json={})).status_code

    assert asyncio.run(main()) == 200
    assert [h["Authorization"] for h in seen] == ["Bearer ACCESS-0001-unit", "Bearer ACCESS-0002-unit"]


def test_only_401_or_fault_109_is_worth_a_refresh():
    fault = {"Errors": [{"Code": 105, "ErrorCode": "InvalidCredentials", "Message": "id 109"}]}
    assert not _worth_refreshing(httpx.Response(400, json=fault), minted_now=False)
    assert not _worth_refreshing(httpx.Response(200, json={"Code": 109}), minted_now=False)
    assert _worth_refreshing(httpx.Response(400, json={"Errors": [{"Code": 109}]}), minted_now=False)
    assert _worth_refreshing(httpx.Response(401), minted_now=False)


def test_a_token_served_from_the_store_builds_no_http_client(credentials, endpoint):
    store = MemoryTokenStore()
    make_manager(credentials, endpoint, store).get_access_token()
    clear_process_cache()
    manager = make_manager(credentials, endpoint, store)

    def no_client() -> httpx.Client:
        raise AssertionError("an HTTP client was built although the store had a fresh token")

    manager.client.client = no_client  # type: ignore[method-assign]
    assert manager.get_access_token() == "ACCESS-0001-unit"


def test_successful_answers_can_be_streamed(credentials, endpoint):
    big = b"x" * 100_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(big))

    auth = MicrosoftAdsAuth(make_manager(credentials, endpoint))
    with (
        httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as http,
        http.stream("GET", "https://download.example.test/report.zip") as response,
    ):
        assert not response.is_stream_consumed
        assert b"".join(response.iter_bytes()) == big
