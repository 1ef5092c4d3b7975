"""Where the newest refresh token and the shared access token live between processes.

Why a store at all: Microsoft rotates the refresh token on every use and kills one unused for
90 days. Keeping only the token typed in at setup is how every peer connector died. We keep the
newest one, and the current access token, so that all tasks and workers share one.

Why encrypted, and with *that* key: the state is sealed with AES-GCM under a key derived (HKDF)
from the refresh token the **connection** holds, the connection id, the client id and the token
URL. Whoever can read the Variable alone learns nothing; whoever can read the connection could
mint tokens anyway. When a user re-authorizes and pastes a new refresh token into the connection,
the key changes and the old state no longer opens: the connection's token wins, as it should. The
client id and token URL are in the key so that pointing ``token_url`` somewhere else never opens
(and so never sends) the stored rotated token. The client secret is not in the key: rotating it
does not invalidate refresh tokens, so it loses nothing.

What is never thrown away: an entry of an envelope version this code does not know (a newer
worker wrote it) is refused, never overwritten; an entry that does not open is reported as a
warning, not dropped in silence; each sealed state carries a generation number, and a newer
generation is never replaced by an older one.

Backends (an Airflow Variable shared by every worker, a 0600 file outside Airflow, memory for
tests) live in :mod:`._stores`, the per-machine lock in :mod:`._locks`; this module seals, and is
the public import path for all of them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_provider_msads.errors import TokenStoreError
from airflow_provider_msads.tokens.locks import (
    StoreLock,
)

log = logging.getLogger(__name__)

#: The envelope this code writes; ``msads-v1`` (key without client id and token URL) is still read.
ENVELOPE_PREFIX = "msads-v2"
LEGACY_ENVELOPE_PREFIX = "msads-v1"
_KNOWN_VERSIONS = {1, 2}
VARIABLE_PREFIX = "msads_token_store__"


@dataclass(frozen=True, repr=False)
class TokenState:
    """What survives a process: the newest refresh token and the shared access token."""

    refresh_token: str
    access_token: str | None = None
    access_expires_at: float | None = None
    #: When Microsoft last handed us a new refresh token (epoch seconds).
    refresh_rotated_at: float | None = None
    updated_at: float = 0.0
    #: Incremented by every write; a store never goes back to a lower one (replays, races).
    generation: int = 0

    def __repr__(self) -> str:
        return (
            f"TokenState(refresh_token=***, access_token={'***' if self.access_token else None}, "
            f"access_expires_at={self.access_expires_at}, refresh_rotated_at={self.refresh_rotated_at}, "
            f"generation={self.generation})"
        )

    @classmethod
    def from_json(cls, data: object) -> TokenState:
        """Known fields only (a newer writer may add some); wrong types are corruption."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        refresh = values.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise ValueError("no refresh token")
        if values.get("access_token") is not None and not isinstance(values["access_token"], str):
            raise ValueError("access_token")
        for name in ("access_expires_at", "refresh_rotated_at", "updated_at"):
            value = values.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise ValueError(name)
        generation = values.get("generation", 0)
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ValueError("generation")
        return cls(**values)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Opened:
    """What a store entry turned out to be.

    ``state`` is set when it opened. ``problem`` is a sentence (no secret) when an entry was there
    but could not be used, and the connection's own token is used instead; a user must see it,
    since after 90 days that entry may have held the only live refresh token.
    """

    state: TokenState | None = None
    problem: str | None = None
    version: int | None = None


_VERSION = re.compile(r"msads-v(\d{1,6})")


class TokenCipher:
    """Seals :class:`TokenState` for one connection; see the module docstring for the key choice."""

    def __init__(
        self,
        connection_refresh_token: str,
        conn_id: str,
        *,
        client_id: str = "",
        token_url: str = "",
        read_legacy: bool = False,
    ) -> None:
        info = json.dumps([conn_id, client_id, token_url]).encode()
        material = self._derive(connection_refresh_token, b"airflow-provider-msads/token-store/v2", info)
        self._aead = AESGCM(material[:32])
        #: Names the key without revealing the token (derived, not a plain hash).
        self.fingerprint = _b64(material[32:])
        self._aad = f"{ENVELOPE_PREFIX}|{conn_id}".encode()
        # v1 keys knew only token and connection id. Opening such an entry is safe only where the
        # token URL is Microsoft's own (the caller decides): else a changed token_url could open it.
        self._legacy: tuple[AESGCM, str, bytes] | None = None
        if read_legacy:
            old = self._derive(connection_refresh_token, b"airflow-provider-msads/token-store/v1", conn_id.encode())
            self._legacy = (AESGCM(old[:32]), _b64(old[32:]), f"{LEGACY_ENVELOPE_PREFIX}|{conn_id}".encode())

    @staticmethod
    def _derive(secret: str, salt: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=48, salt=salt, info=info).derive(secret.encode())

    @classmethod
    def for_credentials(cls, credentials: Any) -> TokenCipher:
        """The cipher the token manager uses for a :class:`MicrosoftAdsCredentials`."""
        from airflow_provider_msads.connection.endpoints import is_microsoft_login_url

        token_url = credentials.endpoints.token_url
        return cls(
            credentials.refresh_token,
            credentials.conn_id,
            client_id=credentials.client_id,
            token_url=token_url,
            read_legacy=is_microsoft_login_url(token_url),
        )

    def seal(self, state: TokenState) -> str:
        nonce = os.urandom(12)
        plaintext = json.dumps(asdict(state), separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plaintext, self._aad)
        return f"{ENVELOPE_PREFIX}.{self.fingerprint}.{_b64(nonce + sealed)}"

    def open_entry(self, blob: str | None) -> Opened:
        """Open an entry; raise :class:`TokenStoreError` for a version this code must not touch."""
        if not blob:
            return Opened()
        parts = blob.strip().split(".")
        match = _VERSION.fullmatch(parts[0]) if parts else None
        if match is None or len(parts) != 3:
            return Opened(problem="the stored token state has an unknown format (corrupted or not ours)")
        version = int(match.group(1))
        if version not in _KNOWN_VERSIONS:
            raise TokenStoreError(
                f"The stored token state is envelope version {version}, written by a newer "
                "airflow-provider-msads than this one, which will neither use nor overwrite it.",
                remedy="Run the same airflow-provider-msads version on every worker, triggerer and API server "
                "(upgrade this one). If you rolled back on purpose, upgrade again, or re-run msads-authorize, "
                "save the new refresh token in the connection and delete the token store entry.",
            )
        _, fingerprint, payload = parts
        if version == 2:
            aead, expected, aad = self._aead, self.fingerprint, self._aad
        elif self._legacy is not None:
            aead, expected, aad = self._legacy
        else:  # msads-v1 opens only for Microsoft's token URL (its key did not cover the URL)
            return Opened(version=version)
        if fingerprint != expected:  # sealed under another refresh token (re-authorized): not a problem
            return Opened(version=version)
        try:
            raw = _unb64(payload)
            state = TokenState.from_json(json.loads(aead.decrypt(raw[:12], raw[12:], aad)))
        except (InvalidTag, ValueError, TypeError) as exc:
            return Opened(
                problem=f"the stored token state failed its integrity check ({type(exc).__name__}): corrupted or "
                "tampered with",
                version=version,
            )
        return Opened(state=state, version=version)

    def open(self, blob: str | None) -> TokenState | None:
        """The state, or None when there is none (or none usable) for the connection's current key."""
        return self.open_entry(blob).state


@runtime_checkable
class TokenStore(Protocol):
    """A key/value store for sealed token state, with a lock that makes refresh single-flight."""

    def read(self, key: str) -> str | None: ...

    def write(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def lock(self, key: str) -> StoreLock: ...


def storage_key(conn_id: str) -> str:
    """A Variable/file name for a connection id: readable, and safe whatever the id contains."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", conn_id)[:100]
    if safe != conn_id:
        safe += "_" + hashlib.sha256(conn_id.encode()).hexdigest()[:8]
    return VARIABLE_PREFIX + safe
