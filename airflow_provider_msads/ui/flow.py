"""The server side of *Authorize with Microsoft*: pending authorizations, PKCE, CSRF, the exchange.

No FastAPI here: :mod:`.app` (the pages) and :mod:`.plugin` (the root middleware) both call it.
Why it is built this way:

* **Nothing secret is stored or sent to the browser.** The PKCE verifier is derived from the
  ``state``, the Airflow user, the connection id and the redirect URI with a key only the API
  servers hold (HMAC), so it exists only while the code is redeemed; the pending record (metastore
  Variable, so that every API-server worker and host sees it) holds the user, the connection id,
  the redirect URI and the expiry, nothing else.
* **The pending record is sealed.** More people may write Variables than may edit connections
  (Airflow's threat model trusts connection editors, not Variable editors), so a record is
  believed only when its HMAC under the server key opens for its own ``state``: a record made up
  for a chosen state, or an attacker's own one rewritten to name an admin and another connection,
  is refused before its code is used. Should a record be swapped anyway, the verifier derived from
  the record's user and connection differs from the one whose challenge went to Microsoft, and
  Microsoft refuses the code.
* **``state`` is bound to the Airflow user, single use, and expires** (:data:`STATE_TTL`). A used
  one leaves a marker until it would have expired, so a replay is recognised and explained
  instead of passing silently to the Airflow UI.
* **One save path**: :func:`airflow_provider_msads.cli.metastore.store_authorization`, as
  ``msads-authorize --save`` / ``--reauthorize`` use it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_msads.cli.authorize import (
    AuthorizationRequest,
    authorization_for,
)
from airflow_provider_msads.errors import MicrosoftAdsError

__all__ = [
    "CALLBACK_PATH",
    "PREFIX",
    "STATE_TTL",
    "Pending",
    "PendingStore",
    "callback_uri",
    "csrf_token",
    "record_key",
    "root_redirect_uri",
    "verifier_for",
]

#: Where the plugin's pages are mounted on the API server.
PREFIX = "/msads"
CALLBACK_PATH = f"{PREFIX}/callback"
#: Seconds a started authorization may take (sign-in, MFA, consent); Microsoft's code lives 10 minutes.
STATE_TTL = 600
_PENDING = "msads_ui_authorization_"
_USED = "msads_ui_authorization_used_"


class UiError(MicrosoftAdsError):
    """The UI flow cannot go on (no server key, unknown connection); the text says why."""

    default_remedy = "Start again from the Microsoft Advertising page of the Airflow UI."


def _server_key() -> bytes:
    """A key every API server of the deployment shares and no browser sees: Airflow's JWT secret.

    ``[api_auth] jwt_secret`` must already be the same on every API server (the JWTs the UI sends
    would not validate otherwise); ``[api] secret_key`` and ``[core] fernet_key`` are fallbacks.
    """
    from airflow.configuration import conf

    for section, key in (("api_auth", "jwt_secret"), ("api", "secret_key"), ("core", "fernet_key")):
        value = conf.get(section, key, fallback=None)
        if value:
            return hashlib.sha256(f"msads-ui\0{section}.{key}\0{value}".encode()).digest()
    raise UiError(
        "The API server has no [api_auth] jwt_secret, [api] secret_key or [core] fernet_key to sign the "
        "authorization with.",
        remedy="Set [api_auth] jwt_secret (the same on every API server) and restart the API server.",
    )


def _mac(purpose: str, value: str) -> bytes:
    return hmac.new(_server_key(), f"{purpose}\0{value}".encode(), hashlib.sha256).digest()


def verifier_for(state: str, *, user_id: str, conn_id: str, redirect_uri: str) -> str:
    """The PKCE verifier of ``state`` for this user, connection and redirect URI (RFC 7636: 43
    characters of base64url), never stored: the code of one authorization redeems only for it."""
    bound = json.dumps([state, user_id, conn_id, redirect_uri])
    return base64.urlsafe_b64encode(_mac("pkce", bound)).rstrip(b"=").decode("ascii")


def record_key() -> bytes:
    """The key that seals what Validate now records for the token-health page (only API servers hold it)."""
    return _mac("validation-record", "")


def csrf_token(session: str) -> str:
    """The form token of a signed-in session (its JWT cookie): a cross-site page cannot compute it."""
    return base64.urlsafe_b64encode(_mac("csrf", session)).rstrip(b"=").decode("ascii")


def csrf_ok(session: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(session).encode(), str(token).encode())


def _key(prefix: str, state: str) -> str:
    return prefix + hashlib.sha256(state.encode()).hexdigest()[:40]


def root_redirect_uri(base_url: str) -> str:
    """The API server's root as a redirect URI: as the credentials guide registers it (no trailing
    slash) on a host's root; with one under a sub-path (``https://host/airflow/``), since Airflow's
    session cookie is scoped to ``/airflow/`` and a browser would not send it to ``/airflow``."""
    base = base_url.rstrip("/")
    return base + "/" if urlsplit(base).path else base


def callback_uri(base_url: str) -> str:
    return base_url.rstrip("/") + CALLBACK_PATH


@dataclass(frozen=True)
class Pending:
    """A started authorization: who, which connection, which redirect URI, until when."""

    user_id: str
    conn_id: str
    redirect_uri: str
    expires_at: float

    def seal(self, state: str) -> str:
        """The record as stored: its JSON and an HMAC over it and ``state`` under the server key."""
        body = json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))
        return json.dumps({"v": _SEAL_VERSION, "record": body, "mac": _seal_mac(state, body)})

    @classmethod
    def open(cls, state: str, text: str | None) -> Pending | None:
        """The record sealed for ``state``, or None: not sealed, altered, or sealed for another state."""
        try:
            envelope = json.loads(text or "")
            body, mac = envelope["record"], envelope["mac"]
            if envelope.get("v") != _SEAL_VERSION or not isinstance(body, str) or not isinstance(mac, str):
                return None
        except (ValueError, TypeError, KeyError):
            return None
        if not hmac.compare_digest(mac, _seal_mac(state, body)):
            return None
        try:
            data: Mapping[str, Any] = json.loads(body)
            return cls(
                user_id=str(data["user_id"]),
                conn_id=str(data["conn_id"]),
                redirect_uri=str(data["redirect_uri"]),
                expires_at=float(data["expires_at"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


_SEAL_VERSION = "msads-ui-pending-v1"


def _seal_mac(state: str, body: str) -> str:
    return base64.urlsafe_b64encode(_mac("pending", f"{state}\n{body}")).rstrip(b"=").decode("ascii")


class PendingStore:
    """Started authorizations as metastore Variables, seen by every API-server worker.

    A Variable (not process memory) because ``airflow api-server`` runs several workers by
    default and the browser's return may reach any of them. Claiming deletes the row; the
    database's row count makes the claim single even when two requests race.
    """

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        from airflow.utils.session import create_session

        from airflow_provider_msads.cli.metastore import server_context

        with server_context(), create_session() as session:
            yield session

    def begin(self, *, user_id: str, conn_id: str, redirect_uri: str) -> tuple[str, Pending]:
        """A new ``state`` for this user and connection, stored as pending (sealed); old expired
        records are purged."""
        from airflow.models import Variable
        from sqlalchemy import delete, select

        state = secrets.token_urlsafe(32)
        now = self.clock()
        pending = Pending(user_id=user_id, conn_id=conn_id, redirect_uri=redirect_uri, expires_at=now + STATE_TTL)
        with self._session() as session:
            rows = session.scalars(select(Variable).where(Variable.key.like(_PENDING + "%"))).all()
            stale = [row.key for row in rows if _expired(row.val, now)]
            if stale:
                session.execute(delete(Variable).where(Variable.key.in_(stale)))
            session.add(
                Variable(  # type: ignore[no-untyped-call]
                    key=_key(_PENDING, state),
                    val=pending.seal(state),
                    description="Microsoft Advertising: an authorization started in the UI (deleted when used).",
                )
            )
        return state, pending

    def peek(self, state: str) -> Pending | str | None:
        """The pending record, ``"used"`` / ``"expired"`` for a state we issued earlier, or None (not ours).

        A record whose seal does not open for ``state`` (made up, altered, copied from another
        state) counts as not ours: None, and its code is never used.
        """
        from airflow.models import Variable
        from sqlalchemy import select

        with self._session() as session:
            for prefix in (_PENDING, _USED):
                row = session.scalar(select(Variable).where(Variable.key == _key(prefix, state)))
                if row is None:
                    continue
                record = Pending.open(state, row.val)
                if record is None:
                    return None
                if prefix == _USED:
                    return "used"
                return "expired" if record.expires_at < self.clock() else record
        return None

    def claim(self, state: str) -> Pending | None:
        """Take the pending record once (delete it, leave a *used* marker); None when another request
        took it or its seal does not open."""
        from airflow.models import Variable
        from sqlalchemy import delete, select

        key = _key(_PENDING, state)
        with self._session() as session:
            row = session.scalar(select(Variable).where(Variable.key == key))
            if row is None:
                return None
            sealed = row.val
            record = Pending.open(state, sealed)
            if record is None:
                return None
            if session.execute(delete(Variable).where(Variable.key == key)).rowcount != 1:
                return None
            session.add(
                Variable(  # type: ignore[no-untyped-call]
                    key=_key(_USED, state),
                    val=sealed,
                    description="Microsoft Advertising: a used UI authorization, kept to recognise replays.",
                )
            )
        return record


def _expired(value: str | None, now: float) -> bool:
    """Whether a stored record is past its expiry, read without its seal (only to purge it: whoever
    could alter it could delete it as well); unreadable ones are purged too."""
    try:
        return float(json.loads(json.loads(value or "")["record"])["expires_at"]) < now
    except (ValueError, KeyError, TypeError):
        return True


def authorization_request(*, endpoints: Any, client_id: str, pending: Pending, state: str) -> AuthorizationRequest:
    """The authorize URL for ``state`` with the challenge of the verifier derived for its user,
    connection and redirect URI (``prompt=select_account``)."""
    redirect_uri = pending.redirect_uri
    verifier = verifier_for(state, user_id=pending.user_id, conn_id=pending.conn_id, redirect_uri=redirect_uri)
    return authorization_for(endpoints, client_id=client_id, redirect_uri=redirect_uri, state=state, verifier=verifier)
