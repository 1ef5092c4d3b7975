"""MicrosoftAdsHook: the Airflow shell around the pure token core.

Reads the ``msads`` Connection, validates it without a network call, and hands it to the core
with a token store that fits the process it runs in. ``__init__`` only stores its arguments
(DAG parsing builds operators, never connections); everything else is a ``cached_property``.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_msads.get_provider_info import CONN_TYPE, HOOK_NAME

if TYPE_CHECKING:
    import httpx

    from airflow_provider_msads.auth import MicrosoftAdsAuth, TokenManager
    from airflow_provider_msads.credentials import MicrosoftAdsCredentials
    from airflow_provider_msads.token_store import TokenStore

log = logging.getLogger(__name__)

TOKEN_STORE_ENV = "MSADS_TOKEN_STORE"


def _mask_secret(value: str) -> None:
    """Airflow's masker for a token learnt at run time (tokens are not in the Connection)."""
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(value)


def default_token_store() -> TokenStore:
    """The store that every process of this deployment can share.

    Inside a task or triggerer (execution API) and in server processes (metastore), an Airflow
    Variable, so all workers share one rotated refresh token and one access token. In a bare
    script, which sees neither, a 0600 file. ``MSADS_TOKEN_STORE=variable|file|memory`` overrides.
    """
    from airflow_provider_msads import token_store as ts

    choice = os.environ.get(TOKEN_STORE_ENV, "").strip().lower()
    if choice == "file":
        return ts.FileTokenStore()
    if choice == "memory":
        global _MEMORY_STORE
        if _MEMORY_STORE is None:
            _MEMORY_STORE = ts.MemoryTokenStore()
        return _MEMORY_STORE
    if choice == "variable":
        return ts.VariableTokenStore()
    if choice:
        from airflow_provider_msads.errors import TokenStoreError

        raise TokenStoreError(
            f"Unknown {TOKEN_STORE_ENV} value {choice!r}.",
            remedy=f"Set {TOKEN_STORE_ENV} to variable, file or memory, or unset it.",
        )
    if ts._in_task_process() or os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server":
        return ts.VariableTokenStore()
    return ts.FileTokenStore()


_MEMORY_STORE: TokenStore | None = None


class MicrosoftAdsHook(BaseHook):
    """Access tokens, headers and HTTP clients for Microsoft Advertising.

    :param msads_conn_id: the ``msads`` connection holding the six credentials.
    :param token_store: where rotated refresh tokens and the shared access token live; by
        default an Airflow Variable inside Airflow and a private file elsewhere.
    :param timeout: HTTP timeout in seconds for clients made by :meth:`get_conn`.
    """

    conn_name_attr = "msads_conn_id"
    default_conn_name = "msads_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self,
        *,
        msads_conn_id: str = default_conn_name,
        token_store: TokenStore | None = None,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.msads_conn_id = msads_conn_id
        self._token_store = token_store
        self.timeout = timeout

    # -- credentials and token manager ------------------------------------------------------

    @cached_property
    def credentials(self) -> MicrosoftAdsCredentials:
        """The connection, parsed and validated (raises CredentialsError naming the field)."""
        from airflow_provider_msads.credentials import credentials_from_connection

        return credentials_from_connection(self.get_connection(self.msads_conn_id))

    async def aget_credentials(self) -> MicrosoftAdsCredentials:
        """Async twin for the triggerer: reads the connection without blocking the event loop."""
        if "credentials" not in self.__dict__:
            from airflow_provider_msads.credentials import credentials_from_connection

            aget = getattr(self, "aget_connection", None)
            if aget is not None:
                conn = await aget(self.msads_conn_id)
            else:  # Airflow 2: no async API, read in a worker thread
                import asyncio

                conn = await asyncio.to_thread(self.get_connection, self.msads_conn_id)
            self.__dict__["credentials"] = credentials_from_connection(conn)
        return self.credentials

    @cached_property
    def token_store(self) -> TokenStore:
        return self._token_store if self._token_store is not None else default_token_store()

    @cached_property
    def token_manager(self) -> TokenManager:
        from airflow_provider_msads.auth import TokenManager

        return TokenManager(self.credentials, store=self.token_store, on_secret=_mask_secret)

    @cached_property
    def auth(self) -> MicrosoftAdsAuth:
        from airflow_provider_msads.auth import MicrosoftAdsAuth

        return MicrosoftAdsAuth(self.token_manager)

    # -- public API -------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """A valid access token; costs a token request only when no fresh one is shared."""
        return self.token_manager.get_access_token()

    async def aget_access_token(self) -> str:
        await self.aget_credentials()
        return await self.token_manager.aget_access_token()

    def get_auth_headers(self) -> dict[str, str]:
        """Authorization, DeveloperToken, CustomerId and CustomerAccountId for your own HTTP calls."""
        from airflow_provider_msads.auth import ads_headers

        return ads_headers(self.credentials, self.get_access_token())

    def get_conn(self) -> httpx.Client:
        """An ``httpx.Client`` that authenticates every request and refreshes on expiry.

        Its base URL is the Customer Management service; pass absolute URLs for other services
        (campaign, reporting, bulk), the headers are added all the same.
        """
        import httpx

        return httpx.Client(
            base_url=self.credentials.endpoints.customer_management_url + "/",
            auth=self.auth,
            timeout=self.timeout,
            verify=True,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )

    def get_async_conn(self) -> httpx.AsyncClient:
        """Async twin of :meth:`get_conn` (for triggers and async user code)."""
        import httpx

        return httpx.AsyncClient(
            base_url=self.credentials.endpoints.customer_management_url + "/",
            auth=self.auth,
            timeout=self.timeout,
            verify=True,
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )

    def reset_token_store(self) -> None:
        """Forget the stored and cached tokens of this connection (after re-authorizing)."""
        self.token_manager.forget()

    # -- connection form --------------------------------------------------------------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2 reads the form behaviour from the hook; 3.x from provider info (same data)."""
        from airflow_provider_msads.get_provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }
