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

Backends: an Airflow Variable (shared by every worker), a 0600 file (outside Airflow), memory
(tests). All are dumb key/value stores with a per-machine lock; the sealing is done here once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import stat
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
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

#: The envelope this code writes; ``msads-v1`` (key without client id and token URL) is still read.
ENVELOPE_PREFIX = "msads-v2"
LEGACY_ENVELOPE_PREFIX = "msads-v1"
_KNOWN_VERSIONS = {1, 2}
VARIABLE_PREFIX = "msads_token_store__"
DEFAULT_DIR_ENV = "MSADS_TOKEN_STORE_DIR"
#: How long a caller waits for another caller's refresh before giving up with TokenStoreError.
DEFAULT_LOCK_TIMEOUT = 150.0


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
    #: The entry belongs to another refresh token of the connection (re-authorized): not a problem.
    superseded: bool = False
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
        from airflow_provider_msads.endpoints import is_microsoft_login_url

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
        else:
            return Opened(superseded=True, version=version)
        if fingerprint != expected:
            return Opened(superseded=True, version=version)
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
class StoreLock(Protocol):
    """One acquisition of a store's per-machine lock: never blocks, so both twins can bound waits."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


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


# ---------------------------------------------------------------------------------------- locks

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(name: str) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(name, threading.Lock())


def default_lock_dir() -> Path:
    """A folder only this user can enter: ``$XDG_RUNTIME_DIR`` (per-user tmpfs) or the store's folder.

    Never the shared temp folder: another local user could create our path there first, and own
    (or hold) every lock in it.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "airflow-provider-msads"
    return default_file_store_dir() / "locks"


def ensure_private_dir(path: Path, what: str = "token lock folder") -> Path:
    """Create ``path`` (0700) if needed, then prove with ``lstat`` that it is ours and private.

    Refuses, naming the path, a symlink, a folder of another user, or one that others may open:
    whoever controls the folder controls (or blocks) our locks.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.lstat(path)
    except OSError as exc:
        raise TokenStoreError(
            f"Cannot create the {what} {path} ({exc.strerror}).",
            remedy=f"Set {DEFAULT_DIR_ENV} (or XDG_RUNTIME_DIR) to a folder this user owns.",
        ) from exc
    problem = None
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if not stat.S_ISDIR(info.st_mode):
        problem = "is a symlink or not a folder"
    elif uid is not None and info.st_uid != uid:
        problem = f"belongs to uid {info.st_uid}, not to this user (uid {uid})"
    elif sys.platform != "win32" and stat.S_IMODE(info.st_mode) & 0o077:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}; only its owner may enter it (0700)"
    if problem:
        raise TokenStoreError(
            f"The {what} {path} {problem}, so it is not private; refusing to use it.",
            remedy=f"Remove {path} (or `chmod 700` it if it is yours), or set {DEFAULT_DIR_ENV} / "
            "XDG_RUNTIME_DIR to a private folder of this user.",
        )
    return path


class MachineLock:
    """Single-flight on this machine for one key: a thread lock, then ``flock`` on a private file.

    Every acquisition is a non-blocking try, so the sync twin waits with a deadline and the async
    twin with ``asyncio.sleep``: no thread is ever parked on a lock the event loop needs. Across
    machines there is no lock to take (Variables have no compare-and-swap); that is safe because
    Microsoft does not revoke a refresh token when it issues the next one, and generations keep
    the newest write.
    """

    def __init__(self, name: str, directory: Path | None) -> None:
        self.name = name
        self.directory = directory
        self._thread_lock = _thread_lock(name)
        self._fd: int | None = None

    @property
    def path(self) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha256(self.name.encode()).hexdigest()[:32] + ".lock")

    def try_acquire(self) -> bool:
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            if self.path is None or sys.platform == "win32":  # pragma: no cover - no flock on Windows
                return True
            import fcntl

            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._thread_lock.release()
                return False
            self._fd = fd
            return True
        except BaseException:  # e.g. a refused lock folder: the thread lock must not stay taken
            self._thread_lock.release()
            raise

    def _open(self) -> int:
        assert self.directory is not None
        assert self.path is not None
        ensure_private_dir(self.directory)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise TokenStoreError(
                f"Cannot open the token lock file {self.path} ({exc.strerror}); a symlink there is refused.",
                remedy=f"Remove {self.path}; it is recreated as a plain file.",
            ) from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "geteuid") and info.st_uid != os.geteuid()):
            os.close(fd)
            raise TokenStoreError(
                f"The token lock file {self.path} is not a plain file of this user.",
                remedy=f"Remove {self.path}; it is recreated as a plain file.",
            )
        return fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                import fcntl

                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        finally:
            self._thread_lock.release()

    # Context-manager use (sync, bounded by DEFAULT_LOCK_TIMEOUT) for scripts and tests.
    def __enter__(self) -> MachineLock:
        acquire(self, DEFAULT_LOCK_TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _timed_out(lock: StoreLock, timeout: float) -> TokenStoreError:
    where = getattr(lock, "path", None)
    return TokenStoreError(
        f"Waited {timeout:.0f} s for another process's token refresh (lock {where or 'in this process'}); giving up.",
        remedy="A process holding the lock is stuck or very slow (see its log); the next try usually succeeds. "
        "If it keeps happening, look for a hung worker on this machine.",
        retryable=True,
    )


_POLL_FIRST, _POLL_MAX = 0.002, 0.1


def acquire(lock: StoreLock, timeout: float) -> None:
    """Take ``lock`` within ``timeout`` seconds (blocking twin), else raise TokenStoreError."""
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    while not lock.try_acquire():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(lock, timeout)
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)


async def aacquire(lock: StoreLock, timeout: float) -> None:
    """Async twin of :func:`acquire`: tries without blocking, sleeps on the loop in between.

    A cancellation can only arrive during the sleep, when the lock is not held: nothing leaks.
    """
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    while not lock.try_acquire():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(lock, timeout)
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX)


@contextlib.contextmanager
def held(lock: StoreLock, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    acquire(lock, timeout)
    try:
        yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def aheld(lock: StoreLock, timeout: float = DEFAULT_LOCK_TIMEOUT) -> AsyncIterator[None]:
    await aacquire(lock, timeout)
    try:
        yield
    finally:
        lock.release()


_LOOP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def loop_lock(name: str) -> asyncio.Lock:
    """The in-process single-flight lock of ``name`` on the running event loop.

    Waiting callers queue on it without any thread, however many there are; only its holder goes
    on to the machine lock and the store.
    """
    loop = asyncio.get_running_loop()
    locks = _LOOP_LOCKS.get(loop)
    if locks is None:
        locks = _LOOP_LOCKS[loop] = {}
    lock = locks.get(name)
    if lock is None:
        lock = locks[name] = asyncio.Lock()
    return lock


def machine_lock(key: str, lock_dir: Path | None = None) -> MachineLock:
    """The per-machine lock of ``key`` in ``lock_dir`` (default: :func:`default_lock_dir`)."""
    return MachineLock(key, lock_dir or default_lock_dir())


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

    def lock(self, key: str) -> StoreLock:
        return MachineLock(f"memory:{id(self)}:{key}", None)


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
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenStoreError(
                f"Cannot read the token store file {self._path(key)} ({getattr(exc, 'strerror', None) or exc}).",
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

    def lock(self, key: str) -> StoreLock:
        self._ensure_dir()
        return MachineLock(key, self.directory / ".locks")


def _in_task_process() -> bool:
    """True inside an Airflow 3 task (or triggerer) process, which talks to the execution API."""
    module = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(module, "SUPERVISOR_COMMS", None) is not None


_VARIABLE_DESCRIPTION = (
    "Sealed token state of airflow-provider-msads (the newest rotated refresh token and the cached access "
    "token). Do not delete: the connection's own refresh token may be older than Microsoft's 90-day limit; "
    "if it is gone, re-run msads-authorize."
)


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
            backend = self._backend()
            try:
                backend.set(key, value, description=_VARIABLE_DESCRIPTION)
            except TypeError:  # a Variable API without descriptions
                backend.set(key, value)
        except Exception as exc:
            raise TokenStoreError(
                f"Cannot write the Airflow Variable {key!r} ({type(exc).__name__}).",
                remedy="Check that this process may write Variables (execution API / metastore).",
            ) from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(Exception):
            self._backend().delete(key)

    def lock(self, key: str) -> StoreLock:
        return machine_lock(key)
