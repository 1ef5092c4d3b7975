"""The façade: builds the default world, starts and stops the server, routes each request to
the service that owns its path. Each Microsoft service is a mixin in a module of its own."""

from __future__ import annotations

import collections
import json
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from urllib.parse import parse_qsl

from airflow_provider_msads.testing.emulator._bulk import _Bulk
from airflow_provider_msads.testing.emulator._catalogues import (
    _BULK_DOWNLOAD_PREFIX,
    _BULK_PATHS,
    _BULK_PREFIX,
    _CM_PATHS,
    _CM_PREFIX,
    _DOWNLOAD_PREFIX,
    _NINETY_DAYS,
    _OAUTH_PATH,
    _REPORTING_PATHS,
    _REPORTING_PREFIX,
    _TEXT,
    DEFAULT_SCOPE,
    INJECTION_ENDPOINTS,
)
from airflow_provider_msads.testing.emulator._customer_management import _CustomerManagement
from airflow_provider_msads.testing.emulator._http import _Reply, _Server
from airflow_provider_msads.testing.emulator._identity import _IdentityPlatform
from airflow_provider_msads.testing.emulator._model import (
    EmulatorAccount,
    EmulatorApp,
    _AccessToken,
    _AuthCode,
    _Injection,
    _Random,
    _RefreshToken,
)
from airflow_provider_msads.testing.emulator._reporting import _Reporting

# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class MicrosoftAdsEmulator(_Bulk, _Reporting, _CustomerManagement, _IdentityPlatform):
    """Microsoft identity platform + Microsoft Advertising Customer Management and Reporting APIs, locally.

    Create it, ``start()`` it (or use it as a context manager) and point the provider at
    :attr:`base_url`, :meth:`token_url`, :attr:`customer_management_url` and
    :attr:`reporting_url`. The default world
    (one app, one user, one customer, one Active account, one developer token) is created in
    ``__init__``; :meth:`connection_dict` gives an Airflow connection for it.

    :param access_token_lifetime: ``expires_in`` of issued access tokens, in seconds; the API
        answers 109 once :attr:`clock` passes it.
    :param strict_rotation: Microsoft keeps old refresh tokens valid after rotation. With True, a
        refresh token is revoked (70008) as soon as its successor has been *used*, which catches
        clients that do not persist the rotated token.
    :param host: interface to bind; keep it on loopback, the credentials are fake but usable here.
    :param port: 0 picks a free port.
    :param seed: make every generated id, secret and token reproducible.

    Time: token lifetimes, code expiry and refresh-token inactivity read :attr:`clock` (a
    ``Callable[[], float]``, default ``time.time``). Tests replace it instead of sleeping.
    Delays (``latency``, ``timeout``/``latency`` injections) are real waits that ``stop()`` cuts.
    """

    def __init__(
        self,
        *,
        access_token_lifetime: int = 3600,
        strict_rotation: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.strict_rotation = strict_rotation
        self.host = host
        self.port = port
        self.clock: Callable[[], float] = time.time
        self.latency: float = 0.0
        self.authorize_error: str | None = None
        self.code_lifetime: float = 600.0
        self.refresh_token_inactivity: float = _NINETY_DAYS
        self.counters: collections.Counter[str] = collections.Counter()
        self.token_requests: list[dict[str, str]] = []
        self.issued_access_tokens: list[str] = []
        self.issued_refresh_tokens: list[str] = []

        self._lock = threading.RLock()
        self._rand = _Random(seed)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._apps: dict[str, EmulatorApp] = {}
        self._accounts: dict[str, EmulatorAccount] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._access: dict[str, _AccessToken] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._injections: dict[str, deque[_Injection]] = {name: deque() for name in INJECTION_ENDPOINTS}

        # The default world.
        self.tenant_id: str = self._rand.guid()
        self.app: EmulatorApp = self.add_app()
        self.user_id: str = self._rand.digits(9)
        self.customer_id: str = self._rand.digits(9)
        #: Further customers the user has a role in (``GetUser``'s CustomerRoles), besides their own.
        self.role_customer_ids: list[str] = []
        self.user_name: str = f"msads.emulator.{self._rand.digits(4)}@example.com"
        self.developer_token: str = self._rand.text(string.ascii_uppercase + string.digits, 16)
        self.account: EmulatorAccount = self.add_account()
        self._init_reporting()
        self._init_bulk()

    # ---------------------------------------------------------------------- lifecycle

    def start(self) -> MicrosoftAdsEmulator:
        """Bind and serve in a daemon thread; returns self so ``emu = MicrosoftAdsEmulator().start()``."""
        if self._server is not None:
            raise RuntimeError("MicrosoftAdsEmulator is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), self)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits up to one poll interval
            name=f"msads-emulator:{server.server_port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving. Returns promptly even while requests are being delayed."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes delayed handlers, which then close without answering
        server.shutdown()
        server.server_close()
        server.close_all_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MicrosoftAdsEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # ---------------------------------------------------------------------- addresses

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; valid after :meth:`start`."""
        if self._server is None:
            raise RuntimeError("MicrosoftAdsEmulator is not started; call start() or use it as a context manager")
        host = self._server.server_name
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._server.server_port}"

    def token_url(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/token"

    def authorize_url(self, tenant: str = "common") -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/authorize"

    @property
    def customer_management_url(self) -> str:
        return f"{self.base_url}{_CM_PREFIX}"

    # ---------------------------------------------------------------------- world building

    def add_app(
        self,
        *,
        redirect_uris: list[str] | None = None,
        multi_tenant: bool = True,
        secret_expired: bool = False,
    ) -> EmulatorApp:
        """Register another Entra app (a refresh token of one app is refused to another: 70000)."""
        secret = (
            self._rand.text(string.ascii_letters + string.digits, 3)
            + self._rand.text(string.digits, 1)
            + "Q~"
            + self._rand.text(string.ascii_letters + string.digits + "_.~-", 34)
        )
        app = EmulatorApp(
            client_id=self._rand.guid(),
            client_secret=secret,
            secret_id=self._rand.guid(),
            redirect_uris=list(redirect_uris) if redirect_uris is not None else ["http://localhost:8080"],
            multi_tenant=multi_tenant,
            secret_expired=secret_expired,
        )
        with self._lock:
            self._apps[app.client_id] = app
        return app

    def add_account(
        self,
        *,
        status: str = "Active",
        parent_customer_id: str | None = None,
        name: str | None = None,
        managed_by: str | None = None,
    ) -> EmulatorAccount:
        """Add an account; under the user's customer unless ``parent_customer_id`` says otherwise.

        ``managed_by``: a customer that manages the account through a link (an agency); the user
        reads the account when they have a role in its parent or in that customer.
        """
        with self._lock:
            account_id = self._rand.fresh(lambda: self._rand.digits(9), self._accounts)
            number = (
                self._rand.text(string.ascii_uppercase, 1)
                + self._rand.text(string.digits, 4)
                + self._rand.text(string.ascii_uppercase, 3)
            )
            account = EmulatorAccount(
                id=account_id,
                name=name if name is not None else f"Emulated Account {len(self._accounts) + 1}",
                number=number,
                parent_customer_id=parent_customer_id if parent_customer_id is not None else self.customer_id,
                status=status,
                managed_by=managed_by,
            )
            self._accounts[account_id] = account
            return account

    def issue_refresh_token(self, *, client_id: str | None = None, scope: str = DEFAULT_SCOPE) -> str:
        """A refresh token as if the user had completed authorize + code exchange (Steps 5-6)."""
        client = client_id if client_id is not None else self.app.client_id
        resource, problem = self._parse_scope(scope)
        if resource is None:
            raise ValueError(f"scope must name one Microsoft Advertising resource ({problem})")
        with self._lock:
            if client not in self._apps:
                raise ValueError("client_id is not an app registered in this emulator")
            return self._new_refresh_token(client, resource, parent=None)

    def connection_extra(self, refresh_token: str | None = None) -> dict[str, str]:
        """The connection ``extra`` for the default world; mints a refresh token when None.

        Every key of the connection form is present (fields.py): the optional ones at their
        defaults (``environment`` production, ``tenant`` common, no secret expiry date), the URLs
        pointing here.
        """
        token = refresh_token if refresh_token is not None else self.issue_refresh_token()
        return {
            "account_id": self.account.id,
            "customer_id": self.customer_id,
            "developer_token": self.developer_token,
            "refresh_token": token,
            "environment": "production",
            "tenant": "common",
            "token_url": self.token_url(),
            "authorize_url": self.authorize_url(),
            "customer_management_url": self.customer_management_url,
            "reporting_url": self.reporting_url,
            "bulk_url": self.bulk_url,
            "client_secret_expires_on": "",
        }

    def connection_dict(self, refresh_token: str | None = None) -> dict[str, object]:
        """An Airflow connection (JSON form): conn_type msads, login = client id, password = secret."""
        return {
            "conn_type": "msads",
            "login": self.app.client_id,
            "password": self.app.client_secret,
            "extra": self.connection_extra(refresh_token),
        }

    def connection_uri_json(self, refresh_token: str | None = None) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` (Airflow accepts JSON there)."""
        return json.dumps(self.connection_dict(refresh_token))

    def reset_counters(self) -> None:
        """Forget counters and recorded token requests (issued-token lists are kept for leak tests)."""
        with self._lock:
            self.counters.clear()
            self.token_requests.clear()
            self.download_credential_headers.clear()

    # ==================================================================== request handling

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        match = _OAUTH_PATH.fullmatch(path)
        if match is not None:
            tenant, endpoint = match.group(1), match.group(2)
            if endpoint == "token":
                return self._token_endpoint(tenant, method, headers, body)
            return self._authorize_endpoint(tenant, method, dict(parse_qsl(query, keep_blank_values=True)))
        lowered = path.lower()
        operation = _CM_PATHS.get(lowered)
        if operation is not None or lowered.startswith(_CM_PREFIX.lower() + "/"):
            return self._api_endpoint(operation, method, headers, body)
        operation = _REPORTING_PATHS.get(lowered)
        if operation is not None or lowered.startswith(_REPORTING_PREFIX.lower() + "/"):
            return self._reporting_endpoint(operation, method, headers, body)
        if path.startswith(_DOWNLOAD_PREFIX):
            return self._download_endpoint(method, path, query, headers)
        operation = _BULK_PATHS.get(lowered)
        if operation is not None or lowered.startswith(_BULK_PREFIX.lower() + "/"):
            return self._bulk_endpoint(operation, method, headers, body)
        if path.startswith(_BULK_DOWNLOAD_PREFIX):
            return self._bulk_download_endpoint(method, path, query, headers)
        with self._lock:
            self.counters["unknown"] += 1
        return _Reply(404, b"Not Found", _TEXT)
