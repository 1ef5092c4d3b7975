"""Customer Management REST (v13) calls needed to prove credentials, and their faults.

The calls go through a client that already carries :class:`~airflow_provider_msads.tokens.auth.MicrosoftAdsAuth`,
so an expired access token is refreshed transparently; what reaches the parser is a real fault,
mapped through the catalogue in :mod:`errors` to the field the user must fix. Microsoft writes
64-bit ids as JSON strings; we send strings and accept either when reading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from airflow_provider_msads.tokens.flow import (
    Flow,
    RetryPolicy,
    drive_async,
    drive_sync,
    read_json,
    retrying,
)
from airflow_provider_msads.tokens.rest import Refusal

OPERATIONS = {
    "GetUser": "User/Query",
    "GetAccount": "Account/Query",
    "GetAccountsInfo": "AccountsInfo/Query",
}


def _parse(operation: str) -> Callable[[httpx.Response], dict[str, Any]]:
    def parse(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise Refusal.read(response, operation).fallback()
        return read_json(response, operation)

    return parse


class CustomerManagement:
    """GetUser, GetAccount, GetAccountsInfo over one authenticated httpx client (sync or async)."""

    def __init__(self, base_url: str, *, retry: RetryPolicy | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()

    def _flow(self, operation: str, body: dict[str, Any]) -> Flow[dict[str, Any]]:
        url = f"{self.base_url}/{OPERATIONS[operation]}"

        def build() -> httpx.Request:
            return httpx.Request(
                "POST",
                url,
                json=body,
                headers={"Accept": "application/json", "Content-Type": "application/json"},
            )

        return retrying(build, _parse(operation), what=operation, policy=self.retry)

    # The request bodies, in one place for both twins.
    @staticmethod
    def user_body(user_id: str | None = None) -> dict[str, Any]:
        return {"UserId": user_id}

    @staticmethod
    def account_body(account_id: str) -> dict[str, Any]:
        return {"AccountId": str(account_id)}

    @staticmethod
    def accounts_info_body(customer_id: str, only_parent_accounts: bool = False) -> dict[str, Any]:
        return {"CustomerId": str(customer_id), "OnlyParentAccounts": only_parent_accounts}

    def call(self, client: httpx.Client, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        return drive_sync(self._flow(operation, body), client)

    async def acall(self, client: httpx.AsyncClient, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        return await drive_async(self._flow(operation, body), client)

    def get_user(self, client: httpx.Client) -> dict[str, Any]:
        return self.call(client, "GetUser", self.user_body())

    def get_account(self, client: httpx.Client, account_id: str) -> dict[str, Any]:
        return self.call(client, "GetAccount", self.account_body(account_id))

    def get_accounts_info(self, client: httpx.Client, customer_id: str) -> dict[str, Any]:
        return self.call(client, "GetAccountsInfo", self.accounts_info_body(customer_id))

    async def aget_user(self, client: httpx.AsyncClient) -> dict[str, Any]:
        return await self.acall(client, "GetUser", self.user_body())

    async def aget_account(self, client: httpx.AsyncClient, account_id: str) -> dict[str, Any]:
        return await self.acall(client, "GetAccount", self.account_body(account_id))

    async def aget_accounts_info(self, client: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
        return await self.acall(client, "GetAccountsInfo", self.accounts_info_body(customer_id))
