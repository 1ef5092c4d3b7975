"""Customer Management REST v13: the three operations a credential check uses, and their faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _support.emulator import Driver, FakeClock

from airflow_provider_msads.testing.emulator import SANDBOX_DEVELOPER_TOKEN, SANDBOX_SCOPE


def assert_fault(response: httpx.Response, status: int, code: int, error_code: str | None) -> dict[str, Any]:
    """Both fault shapes: AdApiFaultDetail (with ErrorCode) and ApiFault (OperationErrors, no ErrorCode)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["TrackingId"] == response.headers["TrackingId"]
    if error_code is None:
        assert body["Type"] == "ApiFault"
        assert body["OperationErrors"] == [
            {"Code": code, "Details": None, "Message": body["OperationErrors"][0]["Message"]}
        ]
    else:
        assert body["Type"] == "AdApiFaultDetail"
        [error] = body["Errors"]
        assert (error["Code"], error["ErrorCode"], error["Detail"]) == (code, error_code, None)
        assert error["Message"]
    return body


def test_get_user(ms: Driver) -> None:
    response = ms.api("User/Query", {"UserId": None})

    assert response.status_code == 200
    assert response.headers["TrackingId"]
    body = response.json()
    user = body["User"]
    assert user["Id"] == ms.emu.user_id
    assert isinstance(user["Id"], str)
    assert user["CustomerId"] == ms.emu.customer_id
    assert user["UserName"] == ms.emu.user_name
    assert user["ContactInfo"]["Email"] == ms.emu.user_name
    assert user["Name"] == {"FirstName": "Emulated", "LastName": "User", "MiddleInitial": None}
    assert user["UserLifeCycleStatus"] == "Active"
    assert body["CustomerRoles"] == [
        {
            "RoleId": 41,
            "CustomerId": ms.emu.customer_id,
            "AccountIds": None,
            "LinkedAccountIds": None,
            "CustomerLinkPermission": None,
        }
    ]
    assert ms.emu.counters["api.GetUser"] == 1


def test_get_user_by_its_own_numeric_id(ms: Driver) -> None:
    assert ms.api("User/Query", {"UserId": int(ms.emu.user_id)}).status_code == 200


@pytest.mark.parametrize("account_id", ["string", "number"])
def test_get_account(ms: Driver, account_id: str) -> None:
    requested: object = ms.emu.account.id if account_id == "string" else int(ms.emu.account.id)
    response = ms.api("Account/Query", {"AccountId": requested})

    assert response.status_code == 200
    account = response.json()["Account"]
    assert account["Id"] == ms.emu.account.id
    assert account["Name"] == ms.emu.account.name
    assert account["Number"] == ms.emu.account.number
    assert account["ParentCustomerId"] == ms.emu.customer_id
    assert account["AccountLifeCycleStatus"] == "Active"
    assert account["CurrencyCode"] == "USD"
    assert account["PauseReason"] is None
    assert isinstance(account["TimeZone"], str)


def test_get_account_shows_its_status(ms: Driver) -> None:
    paused = ms.emu.add_account(status="Pause")
    account = ms.api("Account/Query", {"AccountId": paused.id}).json()["Account"]
    assert (account["AccountLifeCycleStatus"], account["PauseReason"]) == ("Pause", 1)


def test_get_accounts_info(ms: Driver) -> None:
    second = ms.emu.add_account(status="Suspended", name="Second")
    ms.emu.add_account(parent_customer_id="999999999")
    response = ms.api("AccountsInfo/Query", {"CustomerId": ms.emu.customer_id, "OnlyParentAccounts": False})

    assert response.status_code == 200
    assert response.json() == {
        "AccountsInfo": [
            {
                "Id": ms.emu.account.id,
                "Name": ms.emu.account.name,
                "Number": ms.emu.account.number,
                "AccountLifeCycleStatus": "Active",
                "PauseReason": None,
            },
            {
                "Id": second.id,
                "Name": "Second",
                "Number": second.number,
                "AccountLifeCycleStatus": "Suspended",
                "PauseReason": None,
            },
        ]
    }


def test_missing_headers_are_116(ms: Driver) -> None:
    access = ms.access_token()
    no_developer_token = ms.api("User/Query", {"UserId": None}, headers={"Authorization": f"Bearer {access}"})
    no_authorization = ms.api("User/Query", {"UserId": None}, headers={"DeveloperToken": ms.emu.developer_token})
    assert_fault(no_developer_token, 400, 116, "RequestMissingHeaders")
    assert_fault(no_authorization, 400, 116, "RequestMissingHeaders")


def test_wrong_developer_token_is_105(ms: Driver) -> None:
    assert_fault(ms.api("User/Query", {"UserId": None}, developer_token="WRONG"), 401, 105, "InvalidCredentials")
    sandbox = ms.api("User/Query", {"UserId": None}, developer_token=SANDBOX_DEVELOPER_TOKEN)
    assert_fault(sandbox, 401, 105, "InvalidCredentials")


def test_unknown_or_revoked_access_token_is_105(ms: Driver) -> None:
    assert_fault(ms.api("User/Query", {"UserId": None}, access_token="EwAnope"), 401, 105, "InvalidCredentials")
    access = ms.access_token()
    ms.emu.revoke_access_token(access)
    assert_fault(ms.api("User/Query", {"UserId": None}, access_token=access), 401, 105, "InvalidCredentials")


def test_sandbox_access_token_on_production_is_105(ms: Driver) -> None:
    refresh = ms.emu.issue_refresh_token(scope=f"{SANDBOX_SCOPE} offline_access")
    access = ms.refresh(refresh, scope=f"{SANDBOX_SCOPE} offline_access").json()["access_token"]
    assert_fault(ms.api("User/Query", {"UserId": None}, access_token=access), 401, 105, "InvalidCredentials")


def test_access_token_expires_after_its_lifetime(ms: Driver, clock: FakeClock) -> None:
    access = ms.access_token()
    clock.advance(3599)
    assert ms.api("User/Query", {"UserId": None}, access_token=access).status_code == 200
    clock.advance(1)
    assert_fault(ms.api("User/Query", {"UserId": None}, access_token=access), 401, 109, "AuthenticationTokenExpired")


def test_expire_access_tokens(ms: Driver) -> None:
    access = ms.access_token()
    ms.emu.expire_access_tokens()
    assert_fault(ms.api("User/Query", {"UserId": None}, access_token=access), 401, 109, "AuthenticationTokenExpired")
    assert ms.api("User/Query", {"UserId": None}).status_code == 200  # a fresh token works


def test_account_of_another_customer_is_106(ms: Driver) -> None:
    foreign = ms.emu.add_account(parent_customer_id="999999999")
    assert_fault(ms.api("Account/Query", {"AccountId": foreign.id}), 400, 106, "UserIsNotAuthorized")


@pytest.mark.parametrize("account_id", ["1", None, "F1234ABC"], ids=["unknown", "null", "account-number"])
def test_bad_account_id_is_1102(ms: Driver, account_id: str | None) -> None:
    if account_id == "F1234ABC":
        account_id = ms.emu.account.number  # the alphanumeric number pasted instead of the id
    assert_fault(ms.api("Account/Query", {"AccountId": account_id}), 400, 1102, None)


def test_other_customer_id_is_1490(ms: Driver) -> None:
    response = ms.api("AccountsInfo/Query", {"CustomerId": "123", "OnlyParentAccounts": False})
    assert_fault(response, 400, 1490, None)


def test_invalid_json_is_null_request(ms: Driver) -> None:
    access = ms.access_token()
    response = ms.http.post(
        f"{ms.emu.customer_management_url}/User/Query",
        content=b"{not json",
        headers={"Authorization": f"Bearer {access}", "DeveloperToken": ms.emu.developer_token},
    )
    assert_fault(response, 400, 100, "NullRequest")


def test_other_methods_and_paths(ms: Driver) -> None:
    assert ms.http.get(f"{ms.emu.customer_management_url}/User/Query").status_code == 405
    unknown = ms.http.post(f"{ms.emu.customer_management_url}/Nope/Query", json={})
    assert unknown.status_code == 404
    assert unknown.headers["TrackingId"]
    assert ms.http.get(f"{ms.emu.base_url}/nothing/here").status_code == 404


def test_paths_are_case_insensitive(ms: Driver) -> None:
    assert ms.api("user/query", {"UserId": None}).status_code == 200
