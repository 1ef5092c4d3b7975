"""Where the newest refresh token and the shared access token live between processes.

Why a store at all: Microsoft rotates the refresh token on every use and kills one unused for
90 days. Keeping only the token typed in at setup is how every peer connector died. We keep the
newest one, and the current access token, so that all tasks and workers share one.

Why encrypted, and with *that* key: the state is sealed with AES-GCM under a key derived (HKDF)
from the refresh token the **connection** holds, plus the connection id. Whoever can read the
Variable alone learns nothing; whoever can read the connection could mint tokens anyway. When a
user re-authorizes and pastes a new refresh token into the connection, the key changes, the old
state no longer opens and is discarded: the connection's token wins, as it should. Rotating the
client secret does not invalidate refresh tokens, and is not part of the key, so it loses nothing.

Backends: an Airflow Variable (shared by every worker), a 0600 file (outside Airflow), memory
(tests). All are dumb key/value stores with a per-machine lock; the sealing is done here once.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_provider_msads._files import write_private_atomically
from airflow_provider_msads.errors import TokenStoreError

log = logging.getLogger(__name__)

ENVELOPE_PREFIX = "msads-v1"
VARIABLE_PREFIX = "msads_token_store__"
DEFAULT_DIR_ENV = "MSADS_TOKEN_STORE_DIR"


@dataclass(frozen=True, repr=False)
class TokenState:
    """What survives a process: the newest refresh token and the shared access token."""

    refresh_token: str
    access_token: str | None = None
    access_expires_at: float | None = None
    #: When Microsoft last handed us a new refresh token (epoch seconds).
    refresh_rotated_at: float | None = None
    updated_at: float = 0.0

    def __repr__(self) -> str:
        return (
            f"TokenState(refresh_token=***, access_token={'***' if self.access_token else None}, "
            f"access_expires_at={self.access_expires_at}, refresh_rotated_at={self.refresh_rotated_at})"
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenCipher:
    """Seals :class:`TokenState` for one connection; see the module docstring for the key choice."""

    def __init__(self, connection_refresh_token: str, conn_id: str) -> None:
        material = HKDF(
            algorithm=hashes.SHA256(),
            length=48,
            salt=b"airflow-provider-msads/token-store/v1",
            info=conn_id.encode(),
        ).derive(connection_refresh_token.encode())
        self._aead = AESGCM(material[:32])
        #: Names the connection's refresh token without revealing it (derived, not a plain hash).
        self.fingerprint = _b64(material[32:])
        self._aad = f"{ENVELOPE_PREFIX}|{conn_id}".encode()

    def seal(self, state: TokenState) -> str:
        nonce = os.urandom(12)
        plaintext = json.dumps(asdict(state), separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plaintext, self._aad)
        return f"{ENVELOPE_PREFIX}.{self.fingerprint}.{_b64(nonce + sealed)}"

    def open(self, blob: str | None) -> TokenState | None:
        """The state, or None when there is none for the connection's current refresh token."""
        if not blob:
            return None
        try:
            prefix, fingerprint, payload = blob.strip().split(".")
        except ValueError:
            log.warning("Token store entry has an unknown format; ignoring it and starting afresh.")
            return None
        if prefix != ENVELOPE_PREFIX:
            log.warning("Token store entry has an unknown version %r; ignoring it.", prefix[:16])
            return None
        if fingerprint != self.fingerprint:
            log.info("The connection's refresh token changed (re-authorized); discarding the stored token state.")
            return None
        try:
            raw = _unb64(payload)
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], self._aad))
            return TokenState(**data)
        except (InvalidTag, ValueError, TypeError) as exc:
            log.warning("Token store entry failed its integrity check (%s); ignoring it.", type(exc).__name__)
            return None


@runtime_checkable
class TokenStore(Protocol):
    """A key/value store for sealed token state, with a lock that makes refresh single-flight."""

    def read(self, key: str) -> str | None: ...

    def write(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]: ...


def storage_key(conn_id: str) -> str:
    """A Variable/file name for a connection id: readable, and safe whatever the id contains."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", conn_id)[:100]
    if safe != conn_id:
        safe += "_" + hashlib.sha256(conn_id.encode()).hexdigest()[:8]
    return VARIABLE_PREFIX + safe


# ---------------------------------------------------------------------------------------- locks

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _default_lock_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"airflow-provider-msads-{uid}" / "locks"


@contextlib.contextmanager
def machine_lock(key: str, lock_dir: Path | None = None) -> Iterator[None]:
    """Single-flight on this machine: a thread lock, then an exclusive ``flock`` on a lock file.

    Across machines there is no lock to take (Variables have no compare-and-swap). That is safe
    because Microsoft does not revoke a refresh token when it issues the next one: two workers
    refreshing at once both get valid tokens, and the later write wins.
    """
    with _THREAD_LOCKS_GUARD:
        tlock = _THREAD_LOCKS.setdefault(key, threading.Lock())
    with tlock:
        if sys.platform == "win32":  # pragma: no cover - no flock; threads are still serialised
            yield
            return
        import fcntl

        directory = lock_dir or _default_lock_dir()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------- backends


class MemoryTokenStore:
    """In-process store for tests and one-off scripts."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    def read(self, key: str) -> str | None:
        return self.data.get(key)

    def write(self, key: str, value: str) -> None:
        self.writes += 1
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        with _THREAD_LOCKS_GUARD:
            return _THREAD_LOCKS.setdefault(f"memory:{id(self)}:{key}", threading.Lock())  # type: ignore[return-value]


def default_file_store_dir() -> Path:
    configured = os.environ.get(DEFAULT_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "airflow-provider-msads"


class FileTokenStore:
    """One 0600 file per connection in a 0700 folder; writes are atomic (temp file + rename).

    For use outside Airflow (scripts, the onboarding command) and for single-machine setups.
    The folder defaults to ``$MSADS_TOKEN_STORE_DIR`` or ``~/.local/state/airflow-provider-msads``.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_file_store_dir()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise TokenStoreError(
                f"Cannot create the token store folder {self.directory} ({exc.strerror}).",
                remedy=f"Set {DEFAULT_DIR_ENV} to a writable folder.",
            ) from exc

    def read(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(
                f"Cannot read the token store file {self._path(key)} ({exc.strerror}).",
                remedy=f"Fix its permissions or set {DEFAULT_DIR_ENV} to a folder this user owns.",
            ) from exc

    def write(self, key: str, value: str) -> None:
        self._ensure_dir()
        target = self._path(key)
        self._sweep_leftovers(key)
        try:
            write_private_atomically(target, value, temp_prefix=f".{key}.")
        except OSError as exc:
            raise TokenStoreError(
                f"Cannot write the token store file {target} ({exc.strerror}).",
                remedy=f"Fix its permissions or set {DEFAULT_DIR_ENV} to a folder this user owns.",
            ) from exc

    #: A temp file this old belongs to a writer that was killed between write and rename.
    LEFTOVER_AGE = 300.0

    def _sweep_leftovers(self, key: str) -> None:
        """Remove sealed temp files of writers killed mid-write (they would pile up otherwise).

        Only old ones: a younger one may be another process's write in flight.
        """
        cutoff = time.time() - self.LEFTOVER_AGE
        for leftover in self.directory.glob(f".{key}.*.tmp"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        self._ensure_dir()
        return machine_lock(key, self.directory / ".locks")


def _in_task_process() -> bool:
    """True inside an Airflow 3 task (or triggerer) process, which talks to the execution API."""
    module = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(module, "SUPERVISOR_COMMS", None) is not None


class VariableTokenStore:
    """An Airflow Variable per connection: every worker, Celery or Kubernetes, sees the same state.

    Tasks cannot write Connections on Airflow 3, but they can write Variables, through the task
    SDK; server-side processes (CLI, API server, scheduler) use the metastore model instead.
    The value is already sealed; Airflow's Fernet encryption at rest comes on top.
    """

    def _backend(self) -> Any:
        if _in_task_process():
            from airflow.sdk import Variable

            return Variable
        from airflow.models.variable import Variable as ModelVariable

        return ModelVariable

    def read(self, key: str) -> str | None:
        try:
            value = self._backend().get(key, None)  # positional: `default` (SDK) vs `default_var` (models)
        except Exception as exc:
            raise TokenStoreError(
                f"Cannot read the Airflow Variable {key!r} ({type(exc).__name__}).",
                remedy="Check that this process can reach the Airflow metastore / API server.",
            ) from exc
        return None if value is None else str(value)

    def write(self, key: str, value: str) -> None:
        try:
            self._backend().set(
                key,
                value,
                description="Sealed token state of airflow-provider-msads (the newest rotated refresh token "
                "and the cached access token). Do not delete: the connection's own refresh token may be "
                "older than Microsoft's 90-day limit; if it is gone, re-run msads-authorize.",
            )
        except TypeError:
            self._backend().set(key, value)
        except Exception as exc:
            raise TokenStoreError(
                f"Cannot write the Airflow Variable {key!r} ({type(exc).__name__}).",
                remedy="Check that this process may write Variables (execution API / metastore).",
            ) from exc

    def delete(self, key: str) -> None:
        backend = self._backend()
        with contextlib.suppress(Exception):
            backend.delete(key)

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        return machine_lock(key)
