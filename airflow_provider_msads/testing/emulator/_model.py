"""The emulated world's records: apps, accounts, tokens, codes and queued injections."""

from __future__ import annotations

import collections
import random
import secrets
import string
import threading
import uuid
from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------


@dataclass
class EmulatorApp:
    """An Entra ID app registration, as the user creates it in step 1-2 of the setup guide.

    ``secret_id`` exists because users paste the secret's *ID* (a GUID) instead of its *value*;
    the token endpoint answers that with AADSTS7000215 like Microsoft does. Mutate the fields in a
    test (``emulator.app.multi_tenant = False``) to play a misconfigured registration.
    """

    client_id: str
    client_secret: str
    secret_id: str
    redirect_uris: list[str] = field(default_factory=lambda: ["http://localhost:8080"])
    multi_tenant: bool = True
    secret_expired: bool = False
    display_name: str = "Airflow Microsoft Ads (emulated)"


@dataclass
class EmulatorAccount:
    """A Microsoft Advertising account (ids are numeric strings, as the REST API writes them)."""

    id: str
    name: str
    number: str
    parent_customer_id: str
    status: str = "Active"
    #: A customer that manages this account through a link (an agency): lists and reads it.
    managed_by: str | None = None
    currency_code: str = "USD"
    time_zone: str = "PacificTimeUSCanadaTijuana"


#: Every account's fixed tree: 3 campaigns of 2 ad groups of 2 keywords/ads each. Report rows are
#: entities of this tree, so a scope naming campaigns or ad groups selects rows a test can predict.
CAMPAIGNS_PER_ACCOUNT = 3
AD_GROUPS_PER_CAMPAIGN = 2


def _entity_id(account_id: str, salt: int, index: int) -> str:
    """Stable nine-digit ids per (account, entity kind, index); the report rows use the same ones."""
    return str(100000000 + (int(account_id) * 7 + salt + index * 13) % 899999999)


def campaign_id(account_id: str, index: int) -> str:
    """The id of campaign ``index`` (0-based) of an account, as report rows and scopes carry it."""
    return _entity_id(account_id, len("Campaign") * 101, index)


def ad_group_id(account_id: str, index: int) -> str:
    """The id of ad group ``index`` (0-based, counted across the account's campaigns)."""
    return _entity_id(account_id, len("AdGroup") * 101, index)


# --------------------------------------------------------------------------------------------
# Internal state records
# --------------------------------------------------------------------------------------------


@dataclass
class _RefreshToken:
    """A refresh token and its place in a rotation chain (``parent`` is its predecessor)."""

    token: str
    client_id: str
    resource: str  # the consented resource scope (production or sandbox)
    issued_at: float
    last_used: float
    parent: str | None = None
    revoked_code: int | None = None
    uses: int = 0


@dataclass
class _AccessToken:
    token: str
    client_id: str
    environment: str
    issued_at: float
    expires_at: float
    expired: bool = False
    revoked: bool = False


@dataclass
class _AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    resource: str
    offline_access: bool
    issued_at: float
    code_challenge: str | None
    code_challenge_method: str | None
    redeemed: bool = False


@dataclass
class _Injection:
    kind: str
    remaining: int
    status: int | None
    retry_after: float | None
    code: int | None
    body: bytes | None
    delay: float | None
    operation: str | None
    error: str | None


class _Values(dict[str, str]):
    """Template values; an unknown placeholder renders empty instead of raising."""

    def __missing__(self, key: str) -> str:
        return ""


class _Random:
    """Random values: ``secrets`` by default, a seeded ``random.Random`` for reproducible runs."""

    def __init__(self, seed: int | None) -> None:
        # Not for cryptography: only makes an emulator's fake world reproducible on request.
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311

    def bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n) if self._rng is not None else secrets.token_bytes(n)

    def text(self, alphabet: str, n: int) -> str:
        return "".join(alphabet[b % len(alphabet)] for b in self.bytes(n))

    def digits(self, n: int) -> str:
        return self.text("123456789", 1) + self.text(string.digits, n - 1)

    def guid(self) -> str:
        return str(uuid.UUID(bytes=self.bytes(16), version=4))

    @staticmethod
    def fresh(make: Callable[[], str], taken: Container[str]) -> str:
        """A value of ``make`` that is not in ``taken``: no id or token is handed out twice."""
        value = make()
        while value in taken:
            value = make()
        return value


def _as_id(value: object) -> str | None:
    """A request id as the API reads it: a number or a numeric string (the REST API writes strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value.strip()))
    return None


class _EmulatorState:
    """The attributes every part of the emulator shares; set in ``MicrosoftAdsEmulator.__init__``.

    The services are mixins over this one state (one lock, one clock, one world), so that each
    Microsoft service lives in a file of its own while a test still talks to one object.
    """

    access_token_lifetime: int
    strict_rotation: bool
    clock: Callable[[], float]
    latency: float
    authorize_error: str | None
    code_lifetime: float
    refresh_token_inactivity: float
    counters: collections.Counter[str]
    token_requests: list[dict[str, str]]
    issued_access_tokens: list[str]
    issued_refresh_tokens: list[str]
    tenant_id: str
    app: EmulatorApp
    user_id: str
    customer_id: str
    role_customer_ids: list[str]
    user_name: str
    developer_token: str
    account: EmulatorAccount
    _lock: threading.RLock
    _rand: _Random
    _stopping: threading.Event
    _apps: dict[str, EmulatorApp]
    _accounts: dict[str, EmulatorAccount]
    _refresh: dict[str, _RefreshToken]
    _access: dict[str, _AccessToken]
    _codes: dict[str, _AuthCode]
    _injections: dict[str, deque[_Injection]]

    @property
    def base_url(self) -> str:
        """Where the server answers; the façade's, valid once it is started."""
        raise NotImplementedError
