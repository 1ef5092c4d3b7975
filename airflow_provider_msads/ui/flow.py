"""The server side of *Authorize with Microsoft*: pending authorizations, PKCE, CSRF, the exchange.

No FastAPI here: :mod:`.app` (the pages) and :mod:`.plugin` (the root middleware) both call it.
Why it is built this way:

* **Nothing secret is stored or sent to the browser.** The PKCE verifier is derived from the
  ``state`` with a key only the API servers hold (HMAC), so it exists only while the code is
  redeemed; the pending record (metastore Variable, so that every API-server worker and host sees
  it) holds the user, the connection id, the redirect URI and the expiry, nothing else.
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

from airflow_provider_msads.cli.authorize import (
    AuthorizationRequest,
    build_authorize_url,
    pkce_challenge,
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


def verifier_for(state: str) -> str:
    """The PKCE verifier of ``state`` (RFC 7636: 43 characters of base64url), never stored."""
    return base64.urlsafe_b64encode(_mac("pkce", state)).rstrip(b"=").decode("ascii")


def csrf_token(session: str) -> str:
    """The form token of a signed-in session (its JWT cookie): a cross-site page cannot compute it."""
    return base64.urlsafe_b64encode(_mac("csrf", session)).rstrip(b"=").decode("ascii")


def csrf_ok(session: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(session).encode(), str(token).encode())


def _key(prefix: str, state: str) -> str:
    return prefix + hashlib.sha256(state.encode()).hexdigest()[:40]


def root_redirect_uri(base_url: str) -> str:
    """The API server's root as a redirect URI, as the credentials guide registers it (no trailing slash)."""
    return base_url.rstrip("/")


def callback_uri(base_url: str) -> str:
    return base_url.rstrip("/") + CALLBACK_PATH


@dataclass(frozen=True)
class Pending:
    """A started authorization: who, which connection, which redirect URI, until when."""

    user_id: str
    conn_id: str
    redirect_uri: str
    expires_at: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Pending:
        data: Mapping[str, Any] = json.loads(text)
        return cls(
            user_id=str(data["user_id"]),
            conn_id=str(data["conn_id"]),
            redirect_uri=str(data["redirect_uri"]),
            expires_at=float(data["expires_at"]),
        )


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

    def begin(self, *, user_id: str, conn_id: str, redirect_uri: str) -> str:
        """A new ``state`` for this user and connection, stored as pending; old expired records are purged."""
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
                    val=pending.to_json(),
                    description="Microsoft Advertising: an authorization started in the UI (deleted when used).",
                )
            )
        return state

    def peek(self, state: str) -> Pending | str | None:
        """The pending record, ``"used"`` / ``"expired"`` for a state we issued earlier, or None (not ours)."""
        from airflow.models import Variable
        from sqlalchemy import select

        with self._session() as session:
            for prefix in (_PENDING, _USED):
                row = session.scalar(select(Variable).where(Variable.key == _key(prefix, state)))
                if row is None:
                    continue
                record = Pending.from_json(row.val)
                if prefix == _USED:
                    return "used"
                return "expired" if record.expires_at < self.clock() else record
        return None

    def claim(self, state: str) -> Pending | None:
        """Take the pending record once (delete it, leave a *used* marker); None when another request took it."""
        from airflow.models import Variable
        from sqlalchemy import delete, select

        key = _key(_PENDING, state)
        with self._session() as session:
            row = session.scalar(select(Variable).where(Variable.key == key))
            if row is None:
                return None
            record = Pending.from_json(row.val)
            if session.execute(delete(Variable).where(Variable.key == key)).rowcount != 1:
                return None
            session.add(
                Variable(  # type: ignore[no-untyped-call]
                    key=_key(_USED, state),
                    val=record.to_json(),
                    description="Microsoft Advertising: a used UI authorization, kept to recognise replays.",
                )
            )
        return record


def _expired(value: str | None, now: float) -> bool:
    try:
        return Pending.from_json(value or "").expires_at < now
    except (ValueError, KeyError, TypeError):
        return True


def authorization_request(*, endpoints: Any, client_id: str, redirect_uri: str, state: str) -> AuthorizationRequest:
    """The authorize URL for ``state`` with the challenge of its derived verifier (``prompt=select_account``)."""
    verifier = verifier_for(state)
    url = build_authorize_url(
        endpoints,
        client_id=client_id,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=pkce_challenge(verifier),
    )
    return AuthorizationRequest(url=url, redirect_uri=redirect_uri, state=state, code_verifier=verifier)
