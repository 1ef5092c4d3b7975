"""The per-machine lock that makes a refresh single-flight, and the private folders it lives in.

Every acquisition is a non-blocking try, so that both twins bound their waits: the blocking one
sleeps between tries, the async one awaits ``asyncio.sleep`` and never parks a thread (the
triggerer's small executor must stay free for the store calls of whoever holds the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from airflow_provider_msads.errors import TokenStoreError

DEFAULT_DIR_ENV = "MSADS_TOKEN_STORE_DIR"
#: How long a caller waits for another caller's refresh before giving up with TokenStoreError.
DEFAULT_LOCK_TIMEOUT = 150.0


@runtime_checkable
class StoreLock(Protocol):
    """One acquisition of a store's per-machine lock: never blocks, so both twins can bound waits."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


def default_file_store_dir() -> Path:
    configured = os.environ.get(DEFAULT_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "airflow-provider-msads"


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


def _waits(lock: StoreLock, timeout: float) -> Iterator[float]:
    """The pauses between non-blocking tries until ``lock`` is taken (both twins sleep them their
    own way); raises TokenStoreError once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    while not lock.try_acquire():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(lock, timeout)
        yield min(pause, remaining)
        pause = min(pause * 2, _POLL_MAX)


def acquire(lock: StoreLock, timeout: float) -> None:
    """Take ``lock`` within ``timeout`` seconds (blocking twin), else raise TokenStoreError."""
    for pause in _waits(lock, timeout):
        time.sleep(pause)


async def aacquire(lock: StoreLock, timeout: float) -> None:
    """Async twin of :func:`acquire`: tries without blocking, sleeps on the loop in between.

    A cancellation can only arrive during the sleep, when the lock is not held: nothing leaks.
    """
    for pause in _waits(lock, timeout):
        await asyncio.sleep(pause)


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
