"""Fidelity: Microsoft's own REST SDK (``msads`` on PyPI, import ``bingads`` + ``openapi_client``)
talks to the emulator as it would to Microsoft.

What the SDK allows and how it is pointed at the emulator:

* Customer Management calls: ``ServiceClient('CustomerManagementService', 13, authorization_data,
  location=<base URL>)``. ``location`` replaces the host only; the SDK appends
  ``/CustomerManagement/v13/User/Query`` (etc.) itself, so it gets ``emulator.base_url``, not
  ``customer_management_url``. It sends ``Authorization: Bearer``, ``DeveloperToken``,
  ``CustomerId``/``CustomerAccountId`` (the string ``"None"`` when unset: the emulator ignores
  them for Customer Management, as the service does).
* OAuth: the SDK has no public way to change the login host. Its token and authorize URLs are
  hard-coded in the private tables ``bingads.authorization._UriOAuthService.AUTH_TOKEN_URI`` and
  ``AUTHORIZE_URI``; the tests patch those two entries with ``monkeypatch``. The SDK then posts
  extra form fields (``environment``, ``oauth_scope``, ``tenant``) and **no scope when it redeems
  a code**: the emulator, like Microsoft, ignores the extras and applies the consented scope.
* Faults: the SDK maps HTTP 400/401/403/500 to ``BadRequestException`` / ``UnauthorizedException``
  / ``ForbiddenException`` / ``ServiceException`` (all ``openapi_client.exceptions.ApiException``).
  Its typed fault object is useless for Customer Management: ``ApiClient`` resolves the response
  type ``"ApplicationFault"`` by name on ``openapi_client.models``, where the *Ad Insight* class
  (imported last) shadows the Customer Management one and only knows ``ApiFaultDetail``, so
  ``exc.data`` comes back as an empty ``ApplicationFault``. The details are in ``exc.body``; the
  tests parse it with the SDK's Customer Management ``ApplicationFault.from_json``, which proves the
  emulator's fault bodies have exactly the shape the SDK models describe.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

pytest.importorskip("bingads")

# The SDK's pydantic models emit hundreds of DeprecationWarnings at import; they are not ours.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from bingads.authorization import (
        MSADS_MANAGE,
        PRODUCTION,
        AuthorizationData,
        OAuthTokenRequestException,
        OAuthTokens,
        OAuthWebAuthCodeGrant,
        _UriOAuthService,
    )
    from bingads.service_client import ServiceClient
    from openapi_client.exceptions import ApiException, BadRequestException, UnauthorizedException
    from openapi_client.models.customer import (
        GetAccountRequest,
        GetAccountsInfoRequest,
        GetUserRequest,
    )
    from openapi_client.models.customer.ad_api_fault_detail import AdApiFaultDetail
    from openapi_client.models.customer.api_fault import ApiFault
    from openapi_client.models.customer.application_fault import ApplicationFault


@pytest.fixture
def sdk_oauth(msads_emulator: MicrosoftAdsEmulator, monkeypatch: pytest.MonkeyPatch) -> OAuthWebAuthCodeGrant:
    """An SDK OAuth object whose (private, hard-coded) login URLs point at the emulator."""
    key = (PRODUCTION, MSADS_MANAGE)
    monkeypatch.setitem(_UriOAuthService.AUTH_TOKEN_URI, key, msads_emulator.token_url())
    monkeypatch.setitem(
        _UriOAuthService.AUTHORIZE_URI,
        key,
        msads_emulator.authorize_url()
        + "?client_id={0}&scope=https%3A%2F%2Fads.microsoft.com%2Fmsads.manage%20offline_access"
        "&response_type={1}&redirect_uri={2}",
    )
    return OAuthWebAuthCodeGrant(
        msads_emulator.app.client_id, msads_emulator.app.client_secret, "http://localhost:8080"
    )


def service(emulator: MicrosoftAdsEmulator, access_token: str, developer_token: str | None = None) -> Any:
    authentication = OAuthWebAuthCodeGrant(
        emulator.app.client_id,
        emulator.app.client_secret,
        "http://localhost:8080",
        oauth_tokens=OAuthTokens(access_token=access_token, access_token_expires_in_seconds=3600),
    )
    authorization = AuthorizationData(
        account_id=emulator.account.id,
        customer_id=emulator.customer_id,
        developer_token=developer_token or emulator.developer_token,
        authentication=authentication,
    )
    return ServiceClient("CustomerManagementService", 13, authorization, location=emulator.base_url)


def access_token(emulator: MicrosoftAdsEmulator) -> str:
    response = httpx.post(
        emulator.token_url(),
        data={
            "grant_type": "refresh_token",
            "client_id": emulator.app.client_id,
            "client_secret": emulator.app.client_secret,
            "refresh_token": emulator.issue_refresh_token(),
            "scope": "https://ads.microsoft.com/msads.manage offline_access",
        },
    )
    return str(response.json()["access_token"])


def fault_of(exc: ApiException) -> Any:
    return ApplicationFault.from_json(exc.body)


# ------------------------------------------------------------------ OAuth through the SDK


def test_sdk_refreshes_and_gets_the_rotated_token(
    msads_emulator: MicrosoftAdsEmulator, sdk_oauth: OAuthWebAuthCodeGrant
) -> None:
    first = msads_emulator.issue_refresh_token()
    sdk_oauth.request_oauth_tokens_by_refresh_token(first)

    tokens = sdk_oauth.oauth_tokens
    assert tokens.access_token in msads_emulator.issued_access_tokens
    assert tokens.refresh_token == msads_emulator.issued_refresh_tokens[-1] != first
    assert tokens.access_token_expires_in_seconds == 3600
    assert msads_emulator.token_requests[-1]["refresh_token"] == first


def test_sdk_authorization_code_flow(msads_emulator: MicrosoftAdsEmulator, sdk_oauth: OAuthWebAuthCodeGrant) -> None:
    sdk_oauth.state = "sdk-state"
    redirect = httpx.get(sdk_oauth.get_authorization_endpoint(), follow_redirects=False)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert "state=sdk-state" in location

    tokens = sdk_oauth.request_oauth_tokens_by_response_uri(location)
    assert tokens.refresh_token in msads_emulator.issued_refresh_tokens
    assert msads_emulator.counters["token.authorization_code"] == 1
    assert "scope" not in msads_emulator.token_requests[-1]  # the SDK sends none here


def test_sdk_surfaces_aadsts_errors(msads_emulator: MicrosoftAdsEmulator, sdk_oauth: OAuthWebAuthCodeGrant) -> None:
    refresh = msads_emulator.issue_refresh_token()
    sdk_oauth._client_secret = msads_emulator.app.secret_id  # the classic mistake
    with pytest.raises(OAuthTokenRequestException) as caught:
        sdk_oauth.request_oauth_tokens_by_refresh_token(refresh)
    assert caught.value.error_code == "invalid_client"
    assert caught.value.error_description.startswith("AADSTS7000215:")


# ------------------------------------------------------------------ Customer Management through the SDK


def test_sdk_parses_get_user(msads_emulator: MicrosoftAdsEmulator) -> None:
    response = service(msads_emulator, access_token(msads_emulator)).GetUser(GetUserRequest(UserId=None))
    assert response.user.id == msads_emulator.user_id
    assert response.user.user_name == msads_emulator.user_name
    assert response.user.customer_id == msads_emulator.customer_id
    assert response.user.user_life_cycle_status.value == "Active"
    assert response.user.last_modified_time is not None
    [role] = response.customer_roles
    assert (role.role_id, role.customer_id, role.account_ids) == (41, msads_emulator.customer_id, None)


def test_sdk_parses_get_account(msads_emulator: MicrosoftAdsEmulator) -> None:
    client = service(msads_emulator, access_token(msads_emulator))
    account = client.GetAccount(GetAccountRequest(AccountId=msads_emulator.account.id)).account
    assert account.id == msads_emulator.account.id
    assert account.name == msads_emulator.account.name
    assert account.number == msads_emulator.account.number
    assert account.parent_customer_id == msads_emulator.customer_id
    assert account.account_life_cycle_status.value == "Active"
    assert account.currency_code.value == "USD"
    assert account.business_address.city == "Redmond"


def test_sdk_parses_get_accounts_info(msads_emulator: MicrosoftAdsEmulator) -> None:
    paused = msads_emulator.add_account(status="Pause")
    client = service(msads_emulator, access_token(msads_emulator))
    infos = client.GetAccountsInfo(
        GetAccountsInfoRequest(CustomerId=msads_emulator.customer_id, OnlyParentAccounts=False)
    ).accounts_info
    assert [(i.id, i.account_life_cycle_status.value, i.pause_reason) for i in infos] == [
        (msads_emulator.account.id, "Active", None),
        (paused.id, "Pause", 1),
    ]


def test_sdk_fault_for_a_bad_developer_token(msads_emulator: MicrosoftAdsEmulator) -> None:
    client = service(msads_emulator, access_token(msads_emulator), developer_token="BBD37VB98")
    with pytest.raises(UnauthorizedException) as caught:
        client.GetUser(GetUserRequest(UserId=None))
    fault = fault_of(caught.value)
    assert isinstance(fault, AdApiFaultDetail)
    assert [(e.code, e.error_code) for e in fault.errors] == [(105, "InvalidCredentials")]
    assert fault.tracking_id == dict(caught.value.headers)["TrackingId"]


def test_sdk_fault_for_an_expired_access_token(msads_emulator: MicrosoftAdsEmulator) -> None:
    client = service(msads_emulator, access_token(msads_emulator))
    msads_emulator.expire_access_tokens()
    with pytest.raises(UnauthorizedException) as caught:
        client.GetUser(GetUserRequest(UserId=None))
    assert [(e.code, e.error_code) for e in fault_of(caught.value).errors] == [(109, "AuthenticationTokenExpired")]


def test_sdk_fault_for_a_foreign_account(msads_emulator: MicrosoftAdsEmulator) -> None:
    foreign = msads_emulator.add_account(parent_customer_id="999999999")
    client = service(msads_emulator, access_token(msads_emulator))
    with pytest.raises(BadRequestException) as caught:
        client.GetAccount(GetAccountRequest(AccountId=foreign.id))
    assert [e.code for e in fault_of(caught.value).errors] == [106]


def test_sdk_fault_for_an_unknown_account(msads_emulator: MicrosoftAdsEmulator) -> None:
    client = service(msads_emulator, access_token(msads_emulator))
    with pytest.raises(BadRequestException) as caught:
        client.GetAccount(GetAccountRequest(AccountId="1"))
    fault = fault_of(caught.value)
    assert isinstance(fault, ApiFault)
    assert [e.code for e in fault.operation_errors] == [1102]


def test_sdk_fault_for_another_customer(msads_emulator: MicrosoftAdsEmulator) -> None:
    client = service(msads_emulator, access_token(msads_emulator))
    with pytest.raises(BadRequestException) as caught:
        client.GetAccountsInfo(GetAccountsInfoRequest(CustomerId="123", OnlyParentAccounts=False))
    assert [e.code for e in fault_of(caught.value).operation_errors] == [1490]


@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_sdk_accepts_faults_on_every_mapped_status(msads_emulator: MicrosoftAdsEmulator, status: int) -> None:
    """Microsoft's real statuses are unverified: the SDK treats all four the same way."""
    client = service(msads_emulator, access_token(msads_emulator))
    msads_emulator.inject("api", "fault", code=0, status=status)
    with pytest.raises(ApiException) as caught:
        client.GetUser(GetUserRequest(UserId=None))
    assert caught.value.status == status
    assert [e.code for e in fault_of(caught.value).errors] == [0]


def test_sdk_typed_fault_object_loses_the_details(msads_emulator: MicrosoftAdsEmulator) -> None:
    """Documents the SDK defect described in the module docstring (so a fix upstream is noticed)."""
    client = service(msads_emulator, access_token(msads_emulator), developer_token="WRONG")
    with pytest.raises(UnauthorizedException) as caught:
        client.GetUser(GetUserRequest(UserId=None))
    assert type(caught.value.data).__module__ == "openapi_client.models.adinsight.application_fault"
    assert '"Code":105' in caught.value.body
