"""The pure report logic of validation.py: verdicts from answers and errors, warnings, text, table.

The flow is driven with scripted answers (no network, no Airflow): each test says what the
connection, the token endpoint, GetUser and GetAccount answered, and checks the report.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest
from _support.fakes import CLIENT_SECRET, CONN_REFRESH, DEV_TOKEN, make_credentials

from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials
from airflow_provider_msads.errors import (
    CredentialsError,
    ProtocolError,
    TokenStoreError,
    TransientError,
    api_error_from_fault,
    token_error_from_body,
)
from airflow_provider_msads.errors.catalogue import STEP_APP, STEP_AUTHORIZE, STEP_DEVTOKEN, STEP_IDS, STEP_SECRET
from airflow_provider_msads.validation import steps as v
from airflow_provider_msads.validation.steps import (
    FAILED,
    OK,
    UNVERIFIED,
    WARNING,
    Check,
    CredentialsReport,
    TokenOutcome,
    arun_validation,
    run_validation,
    validation_flow,
)

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc).timestamp()
DAY = 86400.0
CUSTOMER = "251186883"
ACCOUNT = "180535609"
ACCESS = "eyJ0eXAi.ACCESS-TOKEN-SECRET.sig"
SECRETS = (CLIENT_SECRET, DEV_TOKEN, CONN_REFRESH, ACCESS)


def user_answer(*customers: str, own: str = CUSTOMER) -> dict[str, Any]:
    roles = [{"CustomerId": c, "AccountIds": None, "RoleId": 41} for c in (customers or (CUSTOMER,))]
    return {"User": {"Id": "7001", "UserName": "ads@example.com", "CustomerId": own}, "CustomerRoles": roles}


def account_answer(status: str = "Active", parent: str = CUSTOMER) -> dict[str, Any]:
    return {
        "Account": {
            "Id": ACCOUNT,
            "Name": "Shop EU",
            "Number": "F1234ABC",
            "ParentCustomerId": parent,
            "AccountLifeCycleStatus": status,
        }
    }


TOKENS = TokenOutcome(expires_at=NOW + 3600, refresh_rotated_at=NOW, rotated=True)


def script(**overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "connection": make_credentials(),
        "token": TOKENS,
        "GetUser": user_answer(),
        "GetAccount": account_answer(),
    }
    answers.update(overrides)
    return answers


def run(answers: dict[str, Any], **options: Any) -> CredentialsReport:
    seen: list[Check] = []

    def perform(check: Check) -> Any:
        seen.append(check)
        answer = answers[check.name]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    report = run_validation(validation_flow("msads_unit", clock=lambda: NOW, **options), perform)
    if len(seen) == 4:
        assert seen[3] == Check("GetAccount", account_id=ACCOUNT)
    return report


def statuses(report: CredentialsReport) -> dict[str, str]:
    return {verdict.field: verdict.status for verdict in report.verdicts}


def assert_no_secret(report: CredentialsReport) -> None:
    text = json.dumps(report.to_dict()) + "\n".join(report.lines()) + report.failure_message()
    for secret in SECRETS:
        assert secret not in text


def token_error(code: int, error: str = "invalid_client", status: int = 401):
    return token_error_from_body(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: Something.\r\nTrace ID: t-1\r\nCorrelation ID: c-1",
            "error_codes": [code],
            "trace_id": "t-1",
            "correlation_id": "c-1",
        },
    )


def fault(code: int, operation: str, status: int = 400):
    shape = (
        {"OperationErrors": [{"Code": code, "Message": "x"}]}
        if code >= 1000
        else {"Errors": [{"Code": code, "ErrorCode": "E", "Message": "x"}]}
    )
    return api_error_from_fault(status, {"TrackingId": "trk-1", **shape}, operation=operation)


# ----------------------------------------------------------------------------------- success


def test_all_good():
    report = run(script())
    assert report.ok and not report.retryable and not report.permanent
    assert statuses(report) == dict.fromkeys(v.CREDENTIAL_FIELDS, OK)
    assert report.warnings == ()
    assert report.user == {
        "id": "7001",
        "user_name": "ads@example.com",
        "customer_id": CUSTOMER,
        "customer_ids": [CUSTOMER],
    }
    assert report.account == {
        "id": ACCOUNT,
        "name": "Shop EU",
        "number": "F1234ABC",
        "status": "Active",
        "parent_customer_id": CUSTOMER,
    }
    assert report.summary() == (
        "msads_unit: OK - credentials valid; user ads@example.com (id 7001); account 'Shop EU' F1234ABC "
        f"(id {ACCOUNT}, Active) under customer {CUSTOMER}; access token valid until 2026-03-01 13:00 UTC; "
        "refresh token rotated."
    )
    assert report.summary(with_conn_id=False).startswith("OK - credentials valid;")
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["checked_at"] == "2026-03-01T12:00:00Z"
    assert data["access_token_expires_at"] == "2026-03-01T13:00:00Z"
    assert data["connection"]["account_id"] == ACCOUNT
    assert list(data["verdicts"]) == list(v.CREDENTIAL_FIELDS)
    assert_no_secret(report)


def test_numeric_ids_in_answers_are_accepted():
    answer = account_answer()
    answer["Account"]["Id"] = int(ACCOUNT)
    answer["Account"]["ParentCustomerId"] = int(CUSTOMER)
    report = run(script(GetAccount=answer, GetUser=user_answer(own=int(CUSTOMER))))  # type: ignore[arg-type]
    assert report.ok, report.lines()


@pytest.mark.parametrize("status", ["Suspended", "Pause", "Inactive", "Draft", "Pending"])
def test_not_active_account_is_a_warning(status: str):
    report = run(script(GetAccount=account_answer(status)))
    assert report.ok
    assert report.verdict("account_id").status == WARNING
    [warning] = report.warnings
    assert warning.code == "account_not_active" and warning.field == "account_id"
    assert f"is {status}, not Active" in warning.message
    assert report.summary().endswith(warning.message)


def accounts_info(*ids: str) -> dict[str, Any]:
    return {"AccountsInfo": [{"Id": i, "Name": f"Account {i}", "AccountLifeCycleStatus": "Active"} for i in ids]}


def test_customer_reached_through_a_role_is_accepted_once_it_lists_the_account():
    answers = script(
        GetUser=user_answer(CUSTOMER, "999"),
        GetAccount=account_answer(parent="999"),
        GetAccountsInfo=accounts_info(ACCOUNT),
    )
    seen: list[Check] = []
    report = run_validation(
        validation_flow("msads_unit", clock=lambda: NOW), lambda check: seen.append(check) or answers[check.name]
    )
    assert report.ok
    assert "managed through this customer" in report.verdict("customer_id").message
    assert seen[-1] == Check("GetAccountsInfo", customer_id=CUSTOMER)


def test_a_role_in_the_customer_alone_does_not_vouch_for_an_unrelated_account():
    """The independent check's case: parent 999999, Customer ID the user's own, unrelated customer."""
    answers = script(GetAccount=account_answer(parent="999999"), GetAccountsInfo=accounts_info("111", "222"))
    report = run(answers)
    verdict = report.verdict("customer_id")
    assert verdict.status == FAILED
    assert verdict.step == STEP_IDS
    assert f"Customer ID {CUSTOMER}" in verdict.message and "999999" in verdict.message
    assert "Set Customer ID to 999999" in (verdict.remedy or "")
    assert not report.ok


def test_a_role_naming_the_account_confirms_the_link_without_another_call():
    user = user_answer(CUSTOMER)
    user["CustomerRoles"][0]["AccountIds"] = [int(ACCOUNT)]
    seen: list[Check] = []
    answers = script(GetUser=user, GetAccount=account_answer(parent="999999"))
    report = run_validation(
        validation_flow("msads_unit", clock=lambda: NOW), lambda check: seen.append(check) or answers[check.name]
    )
    assert report.ok
    assert "names account" in report.verdict("customer_id").message
    assert [check.name for check in seen] == ["connection", "token", "GetUser", "GetAccount"]


def test_customer_neither_parent_nor_role_fails_naming_the_right_one():
    credentials = make_credentials(extra={"customer_id": "123"})
    report = run(
        script(connection=credentials, GetUser=user_answer("555", own="555"), GetAccount=account_answer(parent="555"))
    )
    verdict = report.verdict("customer_id")
    assert verdict.status == FAILED and verdict.step == STEP_IDS
    assert "Set Customer ID to 555" in (verdict.remedy or "")
    assert report.permanent
    assert report.failure_message().startswith("Customer ID check failed: Customer ID 123 is neither")


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "field", "step", "ok_fields"),
    [
        (token_error(7000215), "client_secret", STEP_SECRET, ("client_id",)),
        (token_error(7000222), "client_secret", STEP_SECRET, ("client_id",)),
        (token_error(700016, "unauthorized_client", 400), "client_id", STEP_SECRET, ()),
        (token_error(50194, "invalid_request", 400), "client_id", STEP_APP, ()),
        (token_error(700082, "invalid_grant", 400), "refresh_token", STEP_AUTHORIZE, ()),
        (token_error(70011, "invalid_scope", 400), "refresh_token", None, ()),
    ],
    ids=["wrong secret", "expired secret", "unknown app", "single tenant", "expired grant", "wrong environment"],
)
def test_token_endpoint_errors_fail_the_field_they_name(error, field: str, step, ok_fields):
    report = run(script(token=error))
    verdict = report.verdict(field)
    assert verdict.status == FAILED
    assert verdict.step == step
    assert verdict.codes == error.codes
    assert ("trace id", "t-1") in verdict.support_ids
    for name in v.CREDENTIAL_FIELDS:
        if name != field:
            assert report.verdict(name).status == (OK if name in ok_fields else UNVERIFIED)
    assert report.permanent and not report.retryable
    assert report.error is not None and report.error["codes"] == list(error.codes)
    message = report.failure_message()
    assert message.startswith(f"{v.LABELS[field]} check failed: ")
    assert "trace id t-1" in message
    if error.field not in v.CREDENTIAL_FIELDS:
        assert f"(option `{error.field}`)" in verdict.message
    assert_no_secret(report)


@pytest.mark.parametrize(
    ("step", "error", "field", "guide"),
    [
        ("GetUser", fault(105, "GetUser"), "developer_token", STEP_DEVTOKEN),
        ("GetAccount", fault(1102, "GetAccount"), "account_id", STEP_IDS),
        ("GetAccount", fault(106, "GetAccount"), "account_id", STEP_IDS),
        ("GetAccount", fault(1490, "GetAccount"), "customer_id", STEP_IDS),
    ],
)
def test_api_faults_fail_the_field_they_name(step: str, error, field: str, guide: str):
    report = run(script(**{step: error}))
    verdict = report.verdict(field)
    assert verdict.status == FAILED and verdict.step == guide
    assert verdict.support_ids == (("tracking id", "trk-1"),)
    assert report.verdict("refresh_token").status == OK
    assert report.permanent
    assert_no_secret(report)


def test_account_failure_keeps_the_customer_verdict_from_the_roles():
    report = run(script(GetAccount=fault(106, "GetAccount")))
    assert report.verdict("customer_id").status == OK
    report = run(script(GetUser=user_answer("555", own="555"), GetAccount=fault(106, "GetAccount")))
    assert report.verdict("customer_id").status == UNVERIFIED
    assert "no role in customer" in report.verdict("customer_id").message


@pytest.mark.parametrize(
    "error",
    [
        TransientError("Token endpoint: HTTP 503.", retryable=True),
        fault(117, "GetUser", 429),
        fault(0, "GetUser", 500),
    ],
    ids=["token outage", "throttled", "internal error"],
)
def test_transient_errors_are_not_verdicts(error):
    where = "token" if isinstance(error, TransientError) else "GetUser"
    report = run(script(**{where: error}))
    assert not report.ok and report.failed == ()
    assert report.retryable and not report.permanent
    assert all(verdict.status in (OK, UNVERIFIED) for verdict in report.verdicts)
    assert report.failure_message().startswith("Could not validate (transient, retrying may help): ")


def test_protocol_error_is_permanent_without_blaming_a_credential():
    report = run(script(token=ProtocolError("Token endpoint: HTTP 200 with an HTML page.", remedy="Check token_url.")))
    assert report.failed == () and report.permanent
    assert "Check token_url." in report.failure_message()


def test_token_store_error_is_reported():
    report = run(script(token=TokenStoreError("Cannot read the Airflow Variable.", remedy="Check the metastore.")))
    assert not report.ok and "Cannot read the Airflow Variable." in report.failure_message()


def test_connection_errors():
    missing = CredentialsError("Developer Token (`developer_token`) is missing.", field="developer_token")
    report = run(script(connection=missing))
    assert statuses(report) == {**dict.fromkeys(v.CREDENTIAL_FIELDS, UNVERIFIED), "developer_token": FAILED}
    assert report.connection is None

    bad_extra = CredentialsError("Extra is not valid JSON.", field="extra", remedy="Write Extra as JSON.")
    report = run(script(connection=bad_extra))
    assert report.failed == () and report.permanent
    assert report.failure_message().endswith("Write Extra as JSON.")

    class AirflowNotFoundException(Exception):
        pass

    report = run(script(connection=AirflowNotFoundException(f"conn {CLIENT_SECRET}")))
    assert report.permanent and "The connection is not defined." in report.summary()
    assert_no_secret(report)


def test_unexpected_exception_names_only_its_type():
    report = run(script(GetUser=RuntimeError(f"leaky {ACCESS}")))
    assert report.retryable
    assert "Unexpected RuntimeError during the GetUser check." in report.failure_message()
    assert_no_secret(report)


def test_odd_answers_do_not_crash():
    report = run(script(GetUser={"User": None, "CustomerRoles": "nope"}, GetAccount={"Account": []}))
    assert report.verdict("developer_token").status == OK
    assert report.account is not None and report.account["status"] == "Unknown"
    assert report.verdict("account_id").status == WARNING


# ------------------------------------------------------------------------------------ warnings


def _with_expiry(days: int) -> MicrosoftAdsCredentials:
    day = (datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc) + datetime.timedelta(days=days)).date()
    return make_credentials(extra={"client_secret_expires_on": day.isoformat()})


@pytest.mark.parametrize(
    ("days", "code"),
    [(40, None), (30, "client_secret_expiring"), (0, "client_secret_expiring"), (-3, "client_secret_expiry_passed")],
)
def test_client_secret_expiry(days: int, code):
    report = run(script(connection=_with_expiry(days)))
    assert report.ok
    assert [w.code for w in report.warnings] == ([code] if code else [])
    if code == "client_secret_expiring":
        assert f"in {days} days" in report.warnings[0].message
        assert STEP_SECRET in report.warnings[0].message


def test_expiry_threshold_is_an_option():
    report = run(script(connection=_with_expiry(40)), secret_expiry_warning_days=60)
    assert [w.code for w in report.warnings] == ["client_secret_expiring"]


@pytest.mark.parametrize(
    ("tokens", "codes"),
    [
        (TokenOutcome(NOW + 3600, NOW - 10 * DAY, rotated=False), []),
        (TokenOutcome(NOW + 3600, NOW - 40 * DAY, rotated=False), ["refresh_token_stale"]),
        (TokenOutcome(NOW + 3600, None, rotated=False), ["refresh_token_not_rotated"]),
        (TokenOutcome(NOW + 3600, NOW, rotated=True, used_fallback=True), ["stored_refresh_token_rejected"]),
        (TokenOutcome(NOW + 3600, NOW, rotated=True, persist_error="disk full"), ["token_store_not_saved"]),
    ],
    ids=["recent", "stale", "never", "fallback", "not saved"],
)
def test_rotation_warnings(tokens: TokenOutcome, codes: list[str]):
    report = run(script(token=tokens))
    assert report.ok
    assert [w.code for w in report.warnings] == codes
    if codes == ["refresh_token_stale"]:
        assert "40 days ago" in report.warnings[0].message
    if tokens.refresh_rotated_at == NOW - 10 * DAY:
        assert report.summary().endswith("refresh token last rotated 2026-02-19 12:00 UTC.")


# ------------------------------------------------------------------------------- async driver


@pytest.mark.parametrize(
    "answers",
    [
        script(),
        script(token=token_error(7000215)),
        script(GetUser=fault(105, "GetUser")),
        script(GetAccount=account_answer("Suspended")),
    ],
    ids=["ok", "secret", "devtoken", "suspended"],
)
def test_async_driver_builds_the_same_report(answers: dict[str, Any]):
    async def perform(check: Check) -> Any:
        await asyncio.sleep(0)
        answer = answers[check.name]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async_report = asyncio.run(arun_validation(validation_flow("msads_unit", clock=lambda: NOW), perform))
    assert async_report.to_dict() == run(answers).to_dict()
