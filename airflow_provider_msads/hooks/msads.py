"""MicrosoftAdsHook: the Airflow shell around the pure token core.

Reads the ``msads`` Connection, validates it without a network call, and hands it to the core
with a token store that fits the process it runs in. ``__init__`` only stores its arguments
(DAG parsing builds operators, never connections); everything else is a ``cached_property``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_msads.connection.fields import CONN_TYPE
from airflow_provider_msads.get_provider_info import HOOK_NAME

if TYPE_CHECKING:
    import httpx

    from airflow_provider_msads.bulk.flow import AccountResult
    from airflow_provider_msads.bulk.service import Bulk, BulkStatus
    from airflow_provider_msads.bulk.split import AccountSync, Splitter
    from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials
    from airflow_provider_msads.customer.accounts import MicrosoftAdsAccount
    from airflow_provider_msads.reporting import DownloadResult, Reporting, ReportStatus
    from airflow_provider_msads.tokens.auth import MicrosoftAdsAuth, TokenManager
    from airflow_provider_msads.tokens.store import TokenStore
    from airflow_provider_msads.validation.steps import Check, CredentialsReport, TokenOutcome

log = logging.getLogger(__name__)


_T = TypeVar("_T")


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
        from airflow_provider_msads.connection.credentials import credentials_from_connection
        from airflow_provider_msads.tokens.masking import prepare_masking

        prepare_masking()
        return credentials_from_connection(self.get_connection(self.msads_conn_id))

    async def aget_credentials(self) -> MicrosoftAdsCredentials:
        """Async twin for the triggerer: reads the connection without blocking the event loop."""
        if "credentials" not in self.__dict__:
            from airflow_provider_msads.connection.credentials import credentials_from_connection
            from airflow_provider_msads.tokens.masking import prepare_masking

            prepare_masking()
            from airflow_provider_msads.compat.channel import to_thread_on_channel

            aget = getattr(self, "aget_connection", None)
            if aget is not None:
                conn = await aget(self.msads_conn_id)
            else:  # Airflow 2 and 3.0: no async API, read in a worker thread
                conn = await to_thread_on_channel(self.get_connection, self.msads_conn_id)
            # Parsing reads ``extra_dejson``: its secrets go to Airflow's masker (a growing regex
            # recompile in a triggerer; on Airflow 3 a MaskSecret request to the supervisor).
            self.__dict__["credentials"] = await to_thread_on_channel(credentials_from_connection, conn)
        return self.credentials

    @cached_property
    def token_store(self) -> TokenStore:
        from airflow_provider_msads.tokens.backends import default_token_store

        return self._token_store if self._token_store is not None else default_token_store()

    @cached_property
    def token_manager(self) -> TokenManager:
        from airflow_provider_msads.tokens.auth import TokenManager
        from airflow_provider_msads.tokens.masking import mask_runtime_secret

        return TokenManager(self.credentials, store=self.token_store, on_secret=mask_runtime_secret)

    @cached_property
    def auth(self) -> MicrosoftAdsAuth:
        from airflow_provider_msads.tokens.auth import MicrosoftAdsAuth

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
        from airflow_provider_msads.tokens.auth import ads_headers

        return ads_headers(self.credentials, self.get_access_token())

    def get_conn(self) -> httpx.Client:
        """An ``httpx.Client`` that authenticates every request and refreshes on expiry.

        Its base URL is the Customer Management service; pass absolute URLs for other services
        (campaign, reporting, bulk) of the connection's environment. Credentials are attached only
        to Microsoft Advertising's API (or the connection's configured URLs): a request or redirect
        to any other host, such as a report download link, goes out without them.
        """
        import httpx

        from airflow_provider_msads.tokens.auth import credential_guard

        return httpx.Client(**self._client_options(credential_guard))

    def get_async_conn(self) -> httpx.AsyncClient:
        """Async twin of :meth:`get_conn` (for triggers and async user code)."""
        import httpx

        from airflow_provider_msads.tokens.auth import async_credential_guard

        return httpx.AsyncClient(**self._client_options(async_credential_guard))

    def _client_options(self, guard: Any) -> dict[str, Any]:
        """What both clients share: base URL, auth, TLS, no proxy for loopback, the credential guard."""
        from airflow_provider_msads.tokens.flow import direct_mounts, shared_tls_context

        endpoints = self.credentials.endpoints
        return {
            "base_url": endpoints.customer_management_url + "/",
            "auth": self.auth,
            "timeout": self.timeout,
            "verify": shared_tls_context(),
            "mounts": direct_mounts(*endpoints.configured_urls()),
            "event_hooks": {"request": [guard(endpoints)]},
            "headers": {"Accept": "application/json", "Content-Type": "application/json"},
        }

    def reset_token_store(self) -> None:
        """Forget the stored and cached tokens of this connection (after re-authorizing)."""
        self.token_manager.forget()

    # -- validation -------------------------------------------------------------------------

    def _token_outcome(self, started: float, expires_at: float, refreshed: bool = True) -> TokenOutcome:
        from airflow_provider_msads.validation.steps import TokenOutcome

        info = self.token_manager.info
        rotated_at = info.refresh_rotated_at
        return TokenOutcome(
            expires_at=expires_at,
            refresh_rotated_at=rotated_at,
            rotated=rotated_at is not None and rotated_at >= started,
            used_fallback=info.used_fallback,
            persist_error=info.persist_error,
            store_warning=info.store_warning,
            refreshed=refreshed,
        )

    def validate_credentials(
        self,
        *,
        secret_expiry_warning_days: int = 30,
        rotation_warning_days: int = 30,
        force_refresh: bool = True,
    ) -> CredentialsReport:
        """Prove all six credentials: forced refresh, GetUser, GetAccount; a report, never a raise.

        The refresh is forced because a cached access token proves neither the client secret nor
        the refresh token, and because refreshing is what rotates (and so keeps alive) the refresh
        token; the rotated one is saved in the token store like any other refresh.
        ``force_refresh=False`` is for a token store just seeded by a code exchange
        (``msads-authorize``), whose refresh token must not be spent before it is handed out.
        """
        import time

        from airflow_provider_msads.customer.api import CustomerManagement
        from airflow_provider_msads.validation import steps

        clients: list[httpx.Client] = []

        def perform(check: Check) -> Any:
            if check.name == steps.CHECK_CONNECTION:
                return self.credentials
            if check.name == steps.CHECK_TOKEN:
                started = time.time()
                tokens = self.token_manager.get_token(force_refresh=force_refresh)
                return self._token_outcome(started, tokens.expires_at, refreshed=force_refresh)
            if not clients:
                clients.append(self.get_conn())
            api = CustomerManagement(self.credentials.endpoints.customer_management_url)
            if check.name == steps.CHECK_GET_USER:
                return api.get_user(clients[0])
            if check.name == steps.CHECK_ACCOUNTS_INFO:
                return api.get_accounts_info(clients[0], check.customer_id or self.credentials.customer_id)
            return api.get_account(clients[0], check.account_id or self.credentials.account_id)

        flow = steps.validation_flow(
            self.msads_conn_id,
            secret_expiry_warning_days=secret_expiry_warning_days,
            rotation_warning_days=rotation_warning_days,
        )
        try:
            return steps.run_validation(flow, perform)
        finally:
            for client in clients:
                client.close()

    async def avalidate_credentials(
        self,
        *,
        secret_expiry_warning_days: int = 30,
        rotation_warning_days: int = 30,
    ) -> CredentialsReport:
        """Async twin of :meth:`validate_credentials` for the triggerer: async connection read,
        ``aget_token`` and an ``httpx.AsyncClient``; the token store runs in worker threads."""
        import time

        from airflow_provider_msads.customer.api import CustomerManagement
        from airflow_provider_msads.validation import steps

        clients: list[httpx.AsyncClient] = []

        async def perform(check: Check) -> Any:
            if check.name == steps.CHECK_CONNECTION:
                return await self.aget_credentials()
            if check.name == steps.CHECK_TOKEN:
                started = time.time()
                tokens = await self.token_manager.aget_token(force_refresh=True)
                return self._token_outcome(started, tokens.expires_at)
            if not clients:
                import asyncio

                from airflow_provider_msads.tokens.flow import shared_tls_context

                await asyncio.to_thread(shared_tls_context)  # reads the CA bundle once, off the loop
                clients.append(self.get_async_conn())
            api = CustomerManagement(self.credentials.endpoints.customer_management_url)
            if check.name == steps.CHECK_GET_USER:
                return await api.aget_user(clients[0])
            if check.name == steps.CHECK_ACCOUNTS_INFO:
                return await api.aget_accounts_info(clients[0], check.customer_id or self.credentials.customer_id)
            return await api.aget_account(clients[0], check.account_id or self.credentials.account_id)

        flow = steps.validation_flow(
            self.msads_conn_id,
            secret_expiry_warning_days=secret_expiry_warning_days,
            rotation_warning_days=rotation_warning_days,
        )
        try:
            return await steps.arun_validation(flow, perform)
        finally:
            for client in clients:
                await client.aclose()

    def test_connection(self) -> tuple[bool, str]:
        """For the UI's Test button and ``airflow connections test``: never raises.

        ``(True, summary with any warnings)`` or ``(False, the verdict that failed and its fix)``.

        The test reads the shared token store (the newest rotated refresh token may be the only
        live one) but never writes it: the API server tests a connection under a throwaway random
        connection id, and a test should leave no state behind. Not saving the rotated token
        loses nothing, as Microsoft keeps the previous refresh token valid.
        """
        try:
            from airflow_provider_msads.tokens.backends import ReadOnlyTokenStore, default_token_store

            hook = self
            if self._token_store is None:
                hook = type(self)(
                    msads_conn_id=self.msads_conn_id,
                    token_store=ReadOnlyTokenStore(default_token_store()),
                    timeout=self.timeout,
                )
            report = hook.validate_credentials()
        except Exception as exc:  # the contract is a tuple, whatever happens
            from airflow_provider_msads.errors import MicrosoftAdsError

            if isinstance(exc, MicrosoftAdsError):  # our messages hold no secret by construction
                return False, str(exc)
            log.warning("Validating connection %r failed unexpectedly.", self.msads_conn_id, exc_info=True)
            return False, f"Could not be validated ({type(exc).__name__}); see the log."
        return report.ok, report.summary(with_conn_id=False)

    # -- connection form --------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The same five extra fields as ``conn-fields``, as wtforms for Airflow 2.11 to 3.1 (see
        :mod:`airflow_provider_msads.connection.form` for why everything is imported at call time)."""
        from airflow_provider_msads.connection.form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2 reads the form behaviour from the hook; 3.x from provider info (same data)."""
        from airflow_provider_msads.connection.form import airflow_2_field_behaviour

        return airflow_2_field_behaviour()

    # -- accounts -----------------------------------------------------------------------------

    def list_accounts(
        self,
        *,
        statuses: Iterable[str] | str | None = None,
        customer_id: str | None = None,
        only_parent_accounts: bool = False,
    ) -> list[MicrosoftAdsAccount]:
        """The accounts under the connection's customer (GetAccountsInfo), typed, in Microsoft's order.

        Each is a frozen :class:`~airflow_provider_msads.customer.accounts.MicrosoftAdsAccount` (``id``,
        ``name``, ``number``, ``status``, ``pause_reason``) that also reads as ``account["Id"]``.
        ``statuses=("Active",)`` keeps only those AccountLifeCycleStatus values. Linked accounts of
        other customers (an agency's clients) are included unless ``only_parent_accounts``.
        Throttling (117 CallRateExceeded) and transient faults are retried with backoff, logged
        once per wait; GetAccountsInfo answers every account at once, so there is no paging.
        """
        from airflow_provider_msads.customer.accounts import accounts_from_answer, check_statuses
        from airflow_provider_msads.customer.api import CustomerManagement

        wanted = check_statuses(statuses)
        customer = str(customer_id or self.credentials.customer_id)
        api = CustomerManagement(self.credentials.endpoints.customer_management_url)
        body = api.accounts_info_body(customer, only_parent_accounts)
        answer = self._with_client(lambda client: api.call(client, "GetAccountsInfo", body))
        return accounts_from_answer(answer, customer_id=customer, statuses=wanted)

    async def alist_accounts(
        self,
        *,
        statuses: Iterable[str] | str | None = None,
        customer_id: str | None = None,
        only_parent_accounts: bool = False,
    ) -> list[MicrosoftAdsAccount]:
        """Async twin of :meth:`list_accounts`."""
        from airflow_provider_msads.customer.accounts import accounts_from_answer, check_statuses
        from airflow_provider_msads.customer.api import CustomerManagement

        wanted = check_statuses(statuses)
        await self._aready()
        customer = str(customer_id or self.credentials.customer_id)
        api = CustomerManagement(self.credentials.endpoints.customer_management_url)
        body = api.accounts_info_body(customer, only_parent_accounts)
        answer = await self._with_aclient(lambda client: api.acall(client, "GetAccountsInfo", body))
        return accounts_from_answer(answer, customer_id=customer, statuses=wanted)

    # -- reporting (Reporting v13; the logic lives in airflow_provider_msads.reporting) ------

    def _reporting(self) -> Reporting:
        from airflow_provider_msads.reporting import Reporting

        return Reporting(self.credentials.endpoints.reporting_url)

    async def _aready(self) -> None:
        """Connection read and CA bundle loaded off the event loop (the triggerer runs many triggers)."""
        import asyncio

        from airflow_provider_msads.tokens.flow import shared_tls_context

        await self.aget_credentials()
        await asyncio.to_thread(shared_tls_context)

    def _with_client(self, call: Callable[[httpx.Client], _T]) -> _T:
        """One service call on a fresh authorised client (every Reporting/Bulk call goes this way)."""
        with self.get_conn() as client:
            return call(client)

    async def _with_aclient(self, call: Callable[[httpx.AsyncClient], Awaitable[_T]]) -> _T:
        await self._aready()
        async with self.get_async_conn() as client:
            return await call(client)

    def submit_report(self, report_request: dict[str, Any]) -> str:
        """Submit a ``ReportRequest`` (the object, without the outer key); returns its ReportRequestId."""
        return self._with_client(lambda client: self._reporting().submit(client, report_request))

    async def asubmit_report(self, report_request: dict[str, Any]) -> str:
        return await self._with_aclient(lambda client: self._reporting().asubmit(client, report_request))

    def poll_report(self, request_id: str) -> ReportStatus:
        """One Poll: ``status`` Pending, Success or Error; ``download_url`` None for an empty report."""
        return self._with_client(lambda client: self._reporting().poll(client, request_id))

    async def apoll_report(self, request_id: str) -> ReportStatus:
        return await self._with_aclient(lambda client: self._reporting().apoll(client, request_id))

    def download_report(
        self,
        url: str,
        destination: str,
        *,
        compression: str | None = None,
        request_id: str | None = None,
    ) -> DownloadResult:
        """Stream the report zip behind ``url`` to ``destination`` (a path or ObjectStoragePath URL).

        The link gets no credentials. Given ``request_id``, an expired link (403/404) is renewed by
        polling again instead of failing a task that merely waited too long.
        """
        from airflow_provider_msads.reporting.destinations import publish_to_object_storage
        from airflow_provider_msads.reporting.download import Fetch, PollAgain, download_report, renewing_download
        from airflow_provider_msads.tokens.flow import run_flow

        def perform(step: Fetch | PollAgain) -> Any:
            if isinstance(step, PollAgain):
                return self.poll_report(step.request_id)
            return download_report(step.url, destination, compression=compression, publish=publish_to_object_storage)

        result: DownloadResult = run_flow(renewing_download(url, request_id), perform)
        return result

    async def adownload_report(
        self,
        url: str,
        destination: str,
        *,
        compression: str | None = None,
        request_id: str | None = None,
    ) -> DownloadResult:
        from airflow_provider_msads.reporting.destinations import publish_to_object_storage
        from airflow_provider_msads.reporting.download import Fetch, PollAgain, adownload_report, renewing_download
        from airflow_provider_msads.tokens.flow import arun_flow

        async def perform(step: Fetch | PollAgain) -> Any:
            if isinstance(step, PollAgain):
                return await self.apoll_report(step.request_id)
            return await adownload_report(
                step.url, destination, compression=compression, publish=publish_to_object_storage
            )

        result: DownloadResult = await arun_flow(renewing_download(url, request_id), perform)
        return result

    # -- Bulk (Bulk v13 entity downloads; the logic lives in airflow_provider_msads.bulk) ----

    def _bulk(self) -> Bulk:
        from airflow_provider_msads.bulk.service import Bulk

        return Bulk(self.credentials.endpoints.bulk_url)

    def submit_bulk_download(self, request: dict[str, Any]) -> str:
        """Submit a DownloadCampaignsByAccountIds body (or, with ``Campaigns``, ByCampaignIds); its request id."""
        return self._with_client(lambda client: self._bulk().submit(client, request))

    async def asubmit_bulk_download(self, request: dict[str, Any]) -> str:
        return await self._with_aclient(lambda client: self._bulk().asubmit(client, request))

    def get_bulk_download_status(self, request_id: str) -> BulkStatus:
        """One GetBulkDownloadStatus: InProgress, Completed (with a link that lives 5 minutes), Failed,
        FailedFullSyncRequired."""
        return self._with_client(lambda client: self._bulk().status(client, request_id))

    async def aget_bulk_download_status(self, request_id: str) -> BulkStatus:
        return await self._with_aclient(lambda client: self._bulk().astatus(client, request_id))

    def download_bulk_file(self, url: str, splitter: Splitter) -> AccountSync:
        """Fetch the result file behind ``url`` (no credentials) and split it per record type."""
        from airflow_provider_msads.bulk.download import fetch_and_split

        return fetch_and_split(url, splitter)

    async def adownload_bulk_file(self, url: str, splitter: Splitter) -> AccountSync:
        from airflow_provider_msads.bulk.download import afetch_and_split

        return await afetch_and_split(url, splitter)

    def download_entities(
        self,
        account_id: str,
        entities: list[str],
        splitter: Splitter,
        *,
        last_sync: Any = None,
        data_scope: list[str] | None = None,
        poll_interval: float | None = None,
        timeout: float = 3600.0,
        request_id: str | None = None,
    ) -> AccountResult:
        """One account's download, submit to split: full, or delta since ``last_sync`` (a UTC datetime).

        Microsoft's FailedFullSyncRequired makes it download in full; 3207 by campaign ids. With
        ``request_id`` (submitted earlier with ``last_sync``), that download is followed instead.
        """
        import time

        from airflow_provider_msads.bulk import flow as bf
        from airflow_provider_msads.tokens.flow import run_flow

        def perform(step: bf.Step) -> Any:
            if isinstance(step, bf.Submit):
                return self.submit_bulk_download(step.request)
            if isinstance(step, bf.Status):
                return self.get_bulk_download_status(step.request_id)
            if isinstance(step, bf.Wait):
                return time.sleep(step.seconds)
            return self.download_bulk_file(step.url, splitter)

        flow = bf.account_download(
            account_id,
            entities,
            data_scope=data_scope or ["EntityData"],
            last_sync=last_sync,
            poll_interval=poll_interval,
            timeout=timeout,
            request_id=request_id,
        )
        result: AccountResult = run_flow(flow, perform)
        return result

    async def adownload_entities(
        self,
        account_id: str,
        entities: list[str],
        splitter: Splitter,
        *,
        last_sync: Any = None,
        data_scope: list[str] | None = None,
        poll_interval: float | None = None,
        timeout: float = 3600.0,
        request_id: str | None = None,
    ) -> AccountResult:
        import asyncio

        from airflow_provider_msads.bulk import flow as bf
        from airflow_provider_msads.tokens.flow import arun_flow

        async def perform(step: bf.Step) -> Any:
            if isinstance(step, bf.Submit):
                return await self.asubmit_bulk_download(step.request)
            if isinstance(step, bf.Status):
                return await self.aget_bulk_download_status(step.request_id)
            if isinstance(step, bf.Wait):
                return await asyncio.sleep(step.seconds)
            return await self.adownload_bulk_file(step.url, splitter)

        flow = bf.account_download(
            account_id,
            entities,
            data_scope=data_scope or ["EntityData"],
            last_sync=last_sync,
            poll_interval=poll_interval,
            timeout=timeout,
            request_id=request_id,
        )
        result: AccountResult = await arun_flow(flow, perform)
        return result

    # -- Microsoft's SDK ---------------------------------------------------------------------

    def get_sdk_authorization_data(self) -> Any:
        """A ``bingads.AuthorizationData`` for Microsoft's SDK (``pip install airflow-provider-msads[sdk]``).

        Its authentication asks this hook for the access token on every call, so the SDK shares the
        token store (rotated refresh token, shared access token) instead of refreshing on its own,
        which would fork the refresh-token chain.
        """
        from airflow_provider_msads.tokens.sdk import authorization_data

        return authorization_data(self.credentials, self.get_access_token)


def __getattr__(name: str) -> Any:
    """The documented ``publish_to_object_storage``, from ``reporting.destinations`` on first use (light import)."""
    if name == "publish_to_object_storage":
        from airflow_provider_msads.reporting.destinations import publish_to_object_storage

        return publish_to_object_storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
