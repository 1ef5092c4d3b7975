"""Where sealed token state is kept: an Airflow Variable, a private file, or memory; and which one.

The backends are dumb key/value stores with a per-machine lock; sealing happens in
:mod:`token_store`. :func:`default_token_store` picks the backend every process of a deployment
can share.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_msads.compat.versions import airflow_2_component, in_task_process, server_process, variable_api
from airflow_provider_msads.errors import TokenStoreError
from airflow_provider_msads.tokens.files import write_private_atomically
from airflow_provider_msads.tokens.locks import (
    DEFAULT_DIR_ENV,
    MachineLock,
    StoreLock,
    default_file_store_dir,
    machine_lock,
)

if TYPE_CHECKING:
    from airflow_provider_msads.tokens.store import TokenStore

log = logging.getLogger(__name__)

TOKEN_STORE_ENV = "MSADS_TOKEN_STORE"


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
        return variable_api()

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


class ReadOnlyTokenStore:
    """Reads (and locks) through another store; writes and deletes are dropped.

    For checks that must see the newest rotated refresh token but must not leave state behind
    (``test_connection``).
    """

    def __init__(self, inner: TokenStore) -> None:
        self.inner = inner

    def read(self, key: str) -> str | None:
        return self.inner.read(key)

    def write(self, key: str, value: str) -> None:
        log.debug("Not saving token state for %s: read-only store (connection test).", key)

    def delete(self, key: str) -> None:
        return None

    def lock(self, key: str) -> StoreLock:
        return self.inner.lock(key)


_MEMORY_STORE: MemoryTokenStore | None = None


def default_token_store() -> TokenStore:
    """The store that every process of this deployment can share.

    Inside a task or triggerer (execution API) and in server processes (metastore), an Airflow
    Variable, so all workers share one rotated refresh token and one access token (on Airflow 2:
    in tasks and Airflow's own processes, which talk to the metastore directly). In a bare
    script, which may see no metastore, a 0600 file. ``MSADS_TOKEN_STORE=variable|file|memory`` overrides.
    """
    global _MEMORY_STORE
    choice = os.environ.get(TOKEN_STORE_ENV, "").strip().lower()
    if choice == "file":
        return FileTokenStore()
    if choice == "memory":
        if _MEMORY_STORE is None:
            _MEMORY_STORE = MemoryTokenStore()
        return _MEMORY_STORE
    if choice == "variable":
        return VariableTokenStore()
    if choice:
        raise TokenStoreError(
            f"Unknown {TOKEN_STORE_ENV} value {choice!r}.",
            remedy=f"Set {TOKEN_STORE_ENV} to variable, file or memory, or unset it.",
        )
    if in_task_process() or server_process() or airflow_2_component():
        return VariableTokenStore()
    return FileTokenStore()
