"""validate_credentials / test_connection against the emulator: one case per way credentials go wrong.

Airflow adds nothing to these verdicts, so they run at the hook level (real Connection parsing
from AIRFLOW_CONN_*, real sockets, no dag.test); the DAG tests cover the Airflow side.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from airflow_provider_msads.errors.catalogue import STEP_AUTHORIZE, STEP_DEVTOKEN, STEP_IDS, STEP_SECRET
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.token_store import MemoryTokenStore, ReadOnlyTokenStore, storage_key
from airflow_provider_msads.tokens.auth import clear_process_cache
from airflow_provider_msads.validation.steps import FAILED, OK, UNVERIFIED, WARNING

pytestmark = pytest.mark.integration


def _use(monkeypatch: pytest.MonkeyPatch, conn: dict, conn_id: str = "msads_default") -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def _secrets(emulator, conn: dict) -> list[str]:
    values = [
        emulator.app.client_secret,
        emulator.developer_token,
        str(conn.get("password") or ""),
        str(conn["extra"].get("developer_token") or ""),
        str(conn["extra"].get("refresh_token") or ""),
        *emulator.issued_refresh_tokens,
        *emulator.issued_access_tokens,
    ]
    return [v for v in values if len(v) >= 8]


def _assert_no_secret(text: str, emulator, conn: dict) -> None:
    for secret in _secrets(emulator, conn):
        assert secret not in text


@dataclass
class Case:
    """How to break the default emulator world, and what the report must then say."""

    break_it: Callable  # (emulator, conn dict) -> None, mutates either
    field: str
    codes: list
    step: str
    words: tuple[str, ...]
    others_ok: tuple[str, ...] = ()


def _bad_secret(emu, conn):
    conn["password"] = emu.app.client_secret[:-4] + "Zz9Q"


def _secret_id(emu, conn):
    conn["password"] = emu.app.secret_id


def _expired_refresh(emu, conn):
    emu.expire_refresh_token(conn["extra"]["refresh_token"], 700082)


def _bad_developer_token(emu, conn):
    conn["extra"]["developer_token"] = "NOTMYDEVTOKEN123"


def _account_of_other_customer(emu, conn):
    conn["extra"]["account_id"] = emu.add_account(parent_customer_id="987654321").id


def _unknown_account(emu, conn):
    conn["extra"]["account_id"] = "999999999999"


def _wrong_customer(emu, conn):
    conn["extra"]["customer_id"] = "123456789"


CASES = {
    "bad secret": Case(_bad_secret, "client_secret", [7000215], STEP_SECRET, ("Value",), ("client_id",)),
    "secret ID pasted": Case(_secret_id, "client_secret", [], STEP_SECRET, ("Secret ID",)),
    "expired refresh token": Case(_expired_refresh, "refresh_token", [700082], STEP_AUTHORIZE, ("90 days",)),
    "bad developer token": Case(
        _bad_developer_token,
        "developer_token",
        [105],
        STEP_DEVTOKEN,
        ("Developer Token",),
        ("client_id", "client_secret", "refresh_token"),
    ),
    "account not under customer": Case(
        _account_of_other_customer, "account_id", [106], STEP_IDS, ("no access",), ("developer_token", "customer_id")
    ),
    "unknown account id": Case(_unknown_account, "account_id", [1102], STEP_IDS, ("aid",), ("developer_token",)),
    "wrong customer id": Case(
        _wrong_customer, "customer_id", [], STEP_IDS, ("123456789",), ("developer_token", "account_id")
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_broken_credential_gets_its_verdict(name: str, msads_emulator, monkeypatch: pytest.MonkeyPatch):
    case = CASES[name]
    conn = msads_emulator.connection_dict()
    case.break_it(msads_emulator, conn)
    _use(monkeypatch, conn)

    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    report = hook.validate_credentials()

    assert not report.ok
    assert not report.retryable and report.permanent
    verdict = report.verdict(case.field)
    assert verdict.status == FAILED, report.lines()
    assert [v.field for v in report.failed] == [case.field]
    assert list(verdict.codes) == case.codes
    assert verdict.step == case.step
    for word in case.words:
        assert word in verdict.message + " " + (verdict.remedy or "")
    for other in case.others_ok:
        assert report.verdict(other).status == OK, report.lines()

    ok, message = hook.test_connection()
    assert ok is False
    assert message.startswith(f"{verdict.label} check failed:")
    assert f"Redo: {case.step}" in message

    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["verdicts"][case.field]["status"] == "failed"
    _assert_no_secret(json.dumps(data) + message + "\n".join(report.lines()), msads_emulator, conn)
    if name == "secret ID pasted":
        assert msads_emulator.counters["token"] == 0, "caught from the connection, without a network call"
        assert all(v.status == UNVERIFIED for v in report.verdicts if v.field != "client_secret")


def test_valid_connection_reports_everything(msads_emulator, msads_conn):
    store = MemoryTokenStore()
    report = MicrosoftAdsHook(token_store=store).validate_credentials()

    assert report.ok, report.lines()
    assert [v.status for v in report.verdicts] == [OK] * 6
    assert report.user == {
        "id": msads_emulator.user_id,
        "user_name": msads_emulator.user_name,
        "customer_id": msads_emulator.customer_id,
        "customer_ids": [msads_emulator.customer_id],
    }
    account = msads_emulator.account
    assert report.account == {
        "id": account.id,
        "name": account.name,
        "number": account.number,
        "status": "Active",
        "parent_customer_id": msads_emulator.customer_id,
    }
    assert report.refresh_token_rotated is True
    assert report.refresh_token_rotated_at is not None
    assert report.access_token_expires_at is not None
    assert report.warnings == ()
    # The refresh is forced, and the rotated refresh token is what the store keeps.
    assert msads_emulator.counters["token.refresh_token"] == 1
    assert store.read(storage_key("msads_default"))
    data = report.to_dict()
    assert data["connection"]["client_id"] == msads_emulator.app.client_id
    _assert_no_secret(json.dumps(data), msads_emulator, msads_conn)

    # A second validation refreshes again, even though a fresh access token is cached.
    MicrosoftAdsHook(token_store=store).validate_credentials()
    assert msads_emulator.counters["token.refresh_token"] == 2
    assert msads_emulator.token_requests[-1]["refresh_token"] == msads_emulator.issued_refresh_tokens[-2]


def test_inactive_account_passes_with_a_warning(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    conn = msads_emulator.connection_dict()
    conn["extra"]["account_id"] = msads_emulator.add_account(status="Suspended").id
    _use(monkeypatch, conn)

    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    report = hook.validate_credentials()
    assert report.ok
    assert report.verdict("account_id").status == WARNING
    assert [w.code for w in report.warnings] == ["account_not_active"]

    ok, message = hook.test_connection()
    assert ok is True
    assert message.startswith("OK - credentials valid")
    assert "Warnings:" in message and "is Suspended, not Active" in message


def test_client_secret_expiry_warning(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    conn = msads_emulator.connection_dict()
    soon = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=10)
    conn["extra"]["client_secret_expires_on"] = soon.isoformat()
    _use(monkeypatch, conn)

    report = MicrosoftAdsHook(token_store=MemoryTokenStore()).validate_credentials()
    assert report.ok
    [warning] = report.warnings
    assert warning.code == "client_secret_expiring"
    assert soon.isoformat() in warning.message and "in 10 days" in warning.message
    assert "Step 2" in warning.message


def test_transient_outage_is_not_a_verdict(msads_emulator, msads_conn):
    msads_emulator.inject("token", "throttle", count=10, retry_after=0)
    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    report = hook.validate_credentials()

    assert not report.ok
    assert report.retryable and not report.permanent
    assert report.failed == ()
    assert {report.verdict(f).status for f in ("client_id", "client_secret", "refresh_token")} == {UNVERIFIED}
    ok, message = hook.test_connection()
    assert ok is False
    assert message.startswith("Could not validate (transient, retrying may help)")


@pytest.mark.parametrize(
    ("conn_json", "expected"),
    [
        ({"conn_type": "msads", "login": "not-a-guid", "password": "x" * 30, "extra": {}}, "Client ID"),
        (None, "not defined"),
        ({"conn_type": "msads", "login": "0f8fad5b-d9cb-469f-a165-70867728950e", "password": "s" * 30}, "missing"),
    ],
    ids=["malformed", "missing connection", "no extras"],
)
def test_test_connection_never_raises(conn_json, expected: str, monkeypatch: pytest.MonkeyPatch):
    if conn_json is None:
        monkeypatch.delenv("AIRFLOW_CONN_MSADS_NOPE", raising=False)
        hook = MicrosoftAdsHook(msads_conn_id="msads_nope", token_store=MemoryTokenStore())
    else:
        _use(monkeypatch, conn_json, "msads_bad")
        hook = MicrosoftAdsHook(msads_conn_id="msads_bad", token_store=MemoryTokenStore())
    ok, message = hook.test_connection()
    assert ok is False
    assert expected in message
    assert "\n" not in message


def test_test_connection_survives_a_crash(monkeypatch: pytest.MonkeyPatch):
    def boom(self, **kwargs):
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(MicrosoftAdsHook, "validate_credentials", boom)
    assert MicrosoftAdsHook(token_store=MemoryTokenStore()).test_connection() == (
        False,
        "Could not be validated (RuntimeError); see the log.",
    )


def test_test_connection_reports_a_broken_token_store(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MSADS_TOKEN_STORE", "nonsense")
    ok, message = MicrosoftAdsHook().test_connection()
    assert ok is False
    assert "Unknown MSADS_TOKEN_STORE value 'nonsense'" in message


def test_test_connection_reads_the_store_but_leaves_no_state(msads_emulator, msads_conn, monkeypatch):
    """The API server tests under a throwaway conn id: no Variable may be left behind."""
    store = MemoryTokenStore()
    monkeypatch.setattr("airflow_provider_msads.tokens.backends.default_token_store", lambda: store)

    # A task has rotated the token before: the stored state is what the test must use.
    MicrosoftAdsHook(token_store=store).get_access_token()
    before = dict(store.data)
    clear_process_cache()

    ok, message = MicrosoftAdsHook().test_connection()
    assert ok, message
    assert store.data == before
    assert msads_emulator.token_requests[-1]["refresh_token"] == msads_emulator.issued_refresh_tokens[-2]

    readonly = ReadOnlyTokenStore(store)
    readonly.write("k", "v")
    readonly.delete(storage_key("msads_default"))
    assert store.data == before


def test_async_twin_gives_the_same_verdicts(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    conn = msads_emulator.connection_dict()
    _use(monkeypatch, conn)

    loop_thread = threading.get_ident()  # asyncio.run drives the loop from this thread
    real_get_connection = MicrosoftAdsHook.get_connection

    def sync_get_connection(*args, **kwargs):
        # Airflow 3.1+ has aget_connection; older ones have only the sync read, which must then
        # happen in a worker thread, never on the triggerer's event loop.
        if threading.get_ident() == loop_thread:
            raise AssertionError("the async validation must not read the connection on the event loop")
        return real_get_connection(*args, **kwargs)

    good = asyncio.run(MicrosoftAdsHook(token_store=MemoryTokenStore()).avalidate_credentials())
    assert good.ok and good.account["id"] == msads_emulator.account.id

    _bad_developer_token(msads_emulator, conn)
    _use(monkeypatch, conn)
    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    monkeypatch.setattr(hook, "get_connection", sync_get_connection)
    bad = asyncio.run(hook.avalidate_credentials())
    sync = MicrosoftAdsHook(token_store=MemoryTokenStore()).validate_credentials()
    assert [(v.field, v.status, v.codes, v.step) for v in bad.verdicts] == [
        (v.field, v.status, v.codes, v.step) for v in sync.verdicts
    ]
    assert bad.failure_message().split(" (tracking id")[0] == sync.failure_message().split(" (tracking id")[0]


def test_async_credentials_are_parsed_off_the_event_loop(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    """Parsing touches extra_dejson, i.e. Airflow's masker (a regex recompile): not on the loop."""
    import airflow_provider_msads.connection.credentials as credentials_module

    _use(monkeypatch, msads_emulator.connection_dict())
    real = credentials_module.credentials_from_connection
    parsed_on: list[int] = []

    def spy(conn):
        parsed_on.append(threading.get_ident())
        return real(conn)

    monkeypatch.setattr(credentials_module, "credentials_from_connection", spy)

    async def main() -> tuple[int, str]:
        credentials = await MicrosoftAdsHook(token_store=MemoryTokenStore()).aget_credentials()
        return threading.get_ident(), credentials.account_id

    loop_thread, account_id = asyncio.run(main())
    assert account_id == msads_emulator.account.id
    assert parsed_on and loop_thread not in parsed_on


def test_customer_that_reaches_the_account_through_a_link_is_confirmed(msads_emulator, monkeypatch):
    """An agency: the account's parent is its client's customer; the agency's customer lists it."""
    account = msads_emulator.add_account(parent_customer_id="999999", managed_by=msads_emulator.customer_id)
    conn = msads_emulator.connection_dict()
    conn["extra"]["account_id"] = account.id
    _use(monkeypatch, conn)
    report = MicrosoftAdsHook(token_store=MemoryTokenStore()).validate_credentials()
    assert report.ok, report.lines()
    verdict = report.verdict("customer_id")
    assert verdict.status == OK
    assert "lists account" in verdict.message
    assert msads_emulator.counters["api.GetAccountsInfo"] == 1


def test_a_role_in_an_unrelated_customer_does_not_pass_the_customer_check(msads_emulator, monkeypatch):
    """The independent check's case: the account's parent is 999999, which the user can also read,
    while Customer ID is the user's own, unrelated customer. Before: OK ("managed through")."""
    msads_emulator.role_customer_ids.append("999999")
    account = msads_emulator.add_account(parent_customer_id="999999")
    conn = msads_emulator.connection_dict()
    conn["extra"]["account_id"] = account.id
    _use(monkeypatch, conn)
    report = MicrosoftAdsHook(token_store=MemoryTokenStore()).validate_credentials()
    assert not report.ok
    verdict = report.verdict("customer_id")
    assert verdict.status == FAILED, report.lines()
    assert verdict.step == STEP_IDS
    assert msads_emulator.customer_id in verdict.message and account.id in verdict.message
    assert "Set Customer ID to 999999" in (verdict.remedy or "")
    assert report.verdict("account_id").status == OK

    async def again() -> object:  # the triggerer's path says the same
        return await MicrosoftAdsHook(token_store=MemoryTokenStore()).avalidate_credentials()

    clear_process_cache()
    areport = asyncio.run(again())
    assert areport.verdict("customer_id").status == FAILED
