"""The token store's documented import path: sealed state, its cipher, and the backends, in one name.

``docs/token-store.md`` and users' settings import from here (``FileTokenStore``,
``VariableTokenStore``, ``default_token_store`` …). The code lives in the ``tokens`` room:
:mod:`~airflow_provider_msads.tokens.store` (what is sealed and how) and
:mod:`~airflow_provider_msads.tokens.backends` (where it is kept), which imports the former only;
this face imports both (and the locks), so the two no longer import each other. Imports only
``tokens``.
"""

from __future__ import annotations

from airflow_provider_msads.tokens.backends import (
    TOKEN_STORE_ENV,
    FileTokenStore,
    MemoryTokenStore,
    ReadOnlyTokenStore,
    VariableTokenStore,
    default_token_store,
)
from airflow_provider_msads.tokens.locks import (
    DEFAULT_DIR_ENV,
    DEFAULT_LOCK_TIMEOUT,
    MachineLock,
    StoreLock,
    aacquire,
    acquire,
    aheld,
    default_file_store_dir,
    default_lock_dir,
    ensure_private_dir,
    held,
    loop_lock,
    machine_lock,
)
from airflow_provider_msads.tokens.store import (
    ENVELOPE_PREFIX,
    LEGACY_ENVELOPE_PREFIX,
    VARIABLE_PREFIX,
    Opened,
    TokenCipher,
    TokenState,
    TokenStore,
    _b64,
    _unb64,
    storage_key,
)

__all__ = [
    "DEFAULT_DIR_ENV",
    "DEFAULT_LOCK_TIMEOUT",
    "ENVELOPE_PREFIX",
    "LEGACY_ENVELOPE_PREFIX",
    "TOKEN_STORE_ENV",
    "VARIABLE_PREFIX",
    "FileTokenStore",
    "MachineLock",
    "MemoryTokenStore",
    "Opened",
    "ReadOnlyTokenStore",
    "StoreLock",
    "TokenCipher",
    "TokenState",
    "TokenStore",
    "VariableTokenStore",
    "_b64",
    "_unb64",
    "aacquire",
    "acquire",
    "aheld",
    "default_file_store_dir",
    "default_lock_dir",
    "default_token_store",
    "ensure_private_dir",
    "held",
    "loop_lock",
    "machine_lock",
    "storage_key",
]
