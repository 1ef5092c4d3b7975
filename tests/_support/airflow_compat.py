"""Test helpers that work the same on every Airflow in the matrix (2.11, 3.0, 3.3).

Lives beside tests/conftest.py, so every test folder can import it.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

#: Where each Airflow keeps its secrets masker: 3.1+ (two copies), 3.0, 2.11.
MASKER_MODULES = (
    "airflow.sdk._shared.secrets_masker",
    "airflow._shared.secrets_masker",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.utils.log.secrets_masker",
)


def reset_secrets_masker(*, import_first: bool = False) -> None:
    """Empty Airflow's secrets masker(s): every one already loaded, or every one there is.

    The masker recompiles one regex of every secret it has seen whenever a new one arrives; tests
    that mint hundreds of emulator tokens would otherwise slow down quadratically.
    """
    for name in MASKER_MODULES:
        if import_first and name not in sys.modules:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        module = sys.modules.get(name)
        if module is None:
            continue
        reset = getattr(module, "reset_secrets_masker", None)
        if reset is not None:
            reset()
        else:  # Airflow 2.11 has no reset function
            masker = module._secrets_masker()
            masker.patterns = set()
            masker.replacer = None


def cipher_for(conn: dict, conn_id: str = "msads_default"):
    """The token store cipher the hook uses for a connection given as a dict (login, password, extra)."""
    from airflow_provider_msads.connection.credentials import parse_credentials
    from airflow_provider_msads.token_store import TokenCipher

    credentials = parse_credentials(
        conn_id=conn_id, login=conn["login"], password=conn["password"], extra=conn["extra"]
    )
    return TokenCipher.for_credentials(credentials)
