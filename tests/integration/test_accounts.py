"""MicrosoftAdsHook.list_accounts / alist_accounts against the emulator on a real socket."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from airflow_provider_msads.customer.accounts import MicrosoftAdsAccount, accounts_from_answer
from airflow_provider_msads.errors import ArgumentError, TransientApiError
from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.token_store import MemoryTokenStore

pytestmark = pytest.mark.integration


def _hook() -> MicrosoftAdsHook:
    return MicrosoftAdsHook(token_store=MemoryTokenStore())


def test_every_account_of_the_customer_typed_and_readable_as_json(msads_emulator, msads_conn):
    paused = msads_emulator.add_account(status="Pause", name="Paused shop")
    other = msads_emulator.add_account(parent_customer_id="999000111")  # another customer's, not linked
    accounts = _hook().list_accounts()
    ids = [a.id for a in accounts]
    assert msads_emulator.account.id in ids and paused.id in ids and other.id not in ids
    shop = next(a for a in accounts if a.id == paused.id)
    assert isinstance(shop, MicrosoftAdsAccount)
    assert (shop.name, shop.number, shop.status, shop.pause_reason) == ("Paused shop", paused.number, "Pause", 1)
    assert shop["Id"] == paused.id and shop["AccountLifeCycleStatus"] == "Pause" and shop["Name"] == "Paused shop"
    assert shop.to_dict()["Number"] == paused.number and shop.customer_id == msads_emulator.customer_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        shop.status = "Active"  # type: ignore[misc]
    with pytest.raises(KeyError):
        shop["Password"]


def test_status_filter_and_linked_accounts(msads_emulator, msads_conn):
    msads_emulator.add_account(status="Pause")
    msads_emulator.add_account(status="Suspended")
    linked = msads_emulator.add_account(parent_customer_id="999000222", managed_by=msads_emulator.customer_id)
    hook = _hook()
    active = hook.list_accounts(statuses=("Active",))
    assert {a.status for a in active} == {"Active"}
    assert linked.id in {a.id for a in active}
    assert linked.id not in {a.id for a in hook.list_accounts(only_parent_accounts=True)}
    assert {a.status for a in hook.list_accounts(statuses="Pause")} == {"Pause"}


def test_a_misspelt_status_is_refused_before_any_call(msads_emulator, msads_conn):
    with pytest.raises(ArgumentError) as caught:
        _hook().list_accounts(statuses=("active",))
    assert caught.value.field == "statuses" and "'active'" in str(caught.value) and "Active" in caught.value.remedy
    assert msads_emulator.counters["api.GetAccountsInfo"] == 0


def test_call_rate_exceeded_is_retried_and_logged(msads_emulator, msads_conn, caplog: pytest.LogCaptureFixture):
    msads_emulator.inject("api", "fault", code=117, count=2, retry_after=0, operation="GetAccountsInfo")
    with caplog.at_level(logging.WARNING, logger="airflow_provider_msads.tokens.flow"):
        accounts = _hook().list_accounts()
    assert [a.id for a in accounts] == [msads_emulator.account.id]
    assert msads_emulator.counters["api.GetAccountsInfo"] == 3
    backoffs = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(backoffs) == 2 and all("GetAccountsInfo: Microsoft code 117" in m for m in backoffs)


def test_throttling_that_persists_raises_a_retryable_error(msads_emulator, msads_conn):
    msads_emulator.inject("api", "fault", code=117, count=10, retry_after=0, operation="GetAccountsInfo")
    with pytest.raises(TransientApiError) as caught:
        _hook().list_accounts()
    assert caught.value.retryable and 117 in caught.value.codes


def test_async_twin(msads_emulator, msads_conn):
    extra = msads_emulator.add_account(status="Inactive")
    msads_emulator.inject("api", "fault", code=117, count=1, retry_after=0, operation="GetAccountsInfo")
    accounts = asyncio.run(_hook().alist_accounts(statuses=("Active", "Inactive")))
    assert {a.id for a in accounts} == {msads_emulator.account.id, extra.id}


def test_odd_entries_are_skipped_and_duplicates_kept_once():
    answer = {
        "AccountsInfo": [
            {"Id": "12", "Name": "A", "Number": "F1", "AccountLifeCycleStatus": "Active"},
            {"Id": 12, "Name": "A again"},
            {"Id": None},
            {"Id": "F1234ABC"},
            "junk",
            {"Id": 13, "AccountLifeCycleStatus": "Pause", "PauseReason": 4},
        ]
    }
    accounts = accounts_from_answer(answer)
    assert [(a.id, a.name, a.status, a.pause_reason) for a in accounts] == [
        ("12", "A", "Active", None),
        ("13", None, "Pause", 4),
    ]
    assert accounts_from_answer({"AccountsInfo": None}) == []
