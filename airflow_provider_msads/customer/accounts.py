"""The accounts under a customer, as typed values: what "report on every account" starts from.

Read with Customer Management's ``GetAccountsInfo`` ("Gets the identifiers, names, and numbers of
accounts that are accessible from the specified customer",
https://learn.microsoft.com/advertising/customer-management-service/getaccountsinfo): one call
answers every account with its id, name, number, ``AccountLifeCycleStatus`` and ``PauseReason``.
The operation takes no paging element (its request is ``CustomerId`` and ``OnlyParentAccounts``
only), so there is no page to follow; the call goes through :class:`~airflow_provider_msads.customer.api.
CustomerManagement`, which retries throttling (117 CallRateExceeded waits the minute Microsoft
asks for) and transient faults with backoff. Status filters are applied here, after the call,
since the operation has no filter either.

No Airflow import and no I/O here: the hook calls Microsoft and hands the answer to
:func:`accounts_from_answer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from airflow_provider_msads.errors import ArgumentError

#: AccountLifeCycleStatus values (Microsoft's "AccountLifeCycleStatus Value Set" page).
ACCOUNT_STATUSES = ("Active", "Draft", "Inactive", "Pause", "Pending", "Suspended")

#: ``account["Id"]`` and friends: Microsoft's JSON names of each attribute.
_KEYS = {
    "Id": "id",
    "Name": "name",
    "Number": "number",
    "AccountLifeCycleStatus": "status",
    "Status": "status",
    "PauseReason": "pause_reason",
    "CustomerId": "customer_id",
}


@dataclass(frozen=True)
class MicrosoftAdsAccount:
    """One account of the customer, typed; also readable as ``account["Id"]`` like Microsoft's JSON.

    ``id`` is the numeric account id as a string (Microsoft writes 64-bit ids as JSON strings, and
    ``Scope.AccountIds`` wants them so); ``int(account.id)`` when a number is needed.
    """

    id: str
    name: str | None
    number: str | None
    status: str
    pause_reason: int | None = None
    #: The customer whose GetAccountsInfo listed the account (the connection's, unless given).
    customer_id: str | None = None

    def __getitem__(self, key: str) -> Any:
        attribute = _KEYS.get(key, key)
        if attribute not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, attribute)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self) -> Iterator[str]:
        return iter(("Id", "Name", "Number", "AccountLifeCycleStatus", "PauseReason", "CustomerId"))

    @property
    def active(self) -> bool:
        return self.status == "Active"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for XCom (Microsoft's key names)."""
        return {key: self[key] for key in self.keys()}


def _as_id(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    return text if text.isdigit() else None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def check_statuses(statuses: Iterable[str] | str | None) -> frozenset[str] | None:
    """The status filter, checked: a misspelt status would silently select no account at all."""
    if statuses is None:
        return None
    chosen = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    wrong = [s for s in chosen if s not in ACCOUNT_STATUSES]
    if wrong or not chosen:
        raise ArgumentError(
            f"`statuses` has {', '.join(repr(s) for s in wrong) or 'no value'}.",
            field="statuses",
            remedy=f"Use None (every account) or some of {', '.join(ACCOUNT_STATUSES)} (Microsoft's "
            "AccountLifeCycleStatus values), e.g. statuses=('Active',).",
        )
    return frozenset(chosen)


def accounts_from_answer(
    answer: Mapping[str, Any], *, customer_id: str | None = None, statuses: frozenset[str] | None = None
) -> list[MicrosoftAdsAccount]:
    """The accounts of a GetAccountsInfo answer, filtered by status, in Microsoft's order, once each."""
    raw = answer.get("AccountsInfo")
    seen: dict[str, MicrosoftAdsAccount] = {}
    for info in raw if isinstance(raw, list) else ():
        if not isinstance(info, Mapping) or (account_id := _as_id(info.get("Id"))) is None:
            continue
        pause = info.get("PauseReason")
        account = MicrosoftAdsAccount(
            id=account_id,
            name=_text(info.get("Name")),
            number=_text(info.get("Number")),
            status=_text(info.get("AccountLifeCycleStatus")) or "Unknown",
            pause_reason=pause if isinstance(pause, int) and not isinstance(pause, bool) else None,
            customer_id=customer_id,
        )
        if statuses is None or account.status in statuses:
            seen.setdefault(account_id, account)
    return list(seen.values())


__all__ = ["ACCOUNT_STATUSES", "MicrosoftAdsAccount", "accounts_from_answer", "check_statuses"]
