"""The Airflow side of onboarding: save or update the connection, reset its token store, validate.

Imported only for ``--save``, ``--reauthorize`` and validation, so that the rest of the command
does not pay Airflow's import time (seconds) and works where Airflow is not configured.

The metastore is written like Airflow 3.3's own ``airflow connections add`` does it: the
``airflow.models.Connection`` model in a ``create_session()`` session. Reads that go through
the hook (validation) need the *server* process context, which Airflow's CLI commands set with
``_AIRFLOW_PROCESS_CONTEXT=server``; here it is set only for the duration of the call, so that
an in-process caller (tests, scripts) is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_msads.cli.authorize import OnboardingError
from airflow_provider_msads.cli.output import with_every_form_field
from airflow_provider_msads.connection.credentials import CONN_TYPE, EXTRA_PREFIX

if TYPE_CHECKING:
    from airflow_provider_msads.tokens.auth import TokenSet

__all__ = [
    "MetastoreError",
    "StoredConnection",
    "find_connection",
    "record_validation",
    "recorded_validations",
    "reset_token_store",
    "save_connection",
    "server_context",
    "shadowing_env_var",
    "store_authorization",
    "update_refresh_token",
    "validate_connection",
    "validate_document",
]

_CONTEXT_VAR = "_AIRFLOW_PROCESS_CONTEXT"
#: The id under which a not-saved result is validated (an in-process env-var connection).
CHECK_CONN_ID = "msads_authorize_check"


class MetastoreError(OnboardingError):
    """The Airflow metastore could not be read or written, or holds something unexpected."""


def server_context() -> contextlib.AbstractContextManager[None]:
    """Behave as an Airflow server-side process (CLI command) while inside; restore afterwards."""
    return _temporary_env(_CONTEXT_VAR, "server")


@contextlib.contextmanager
def _temporary_env(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _metastore_error(exc: BaseException, action: str) -> MetastoreError:
    """Why the metastore failed, without the exception text (SQL errors may quote parameters)."""
    name = type(exc).__name__
    hint = ""
    text = str(exc).lower()
    if "no such table" in text or "does not exist" in text or "undefinedtable" in text:
        hint = " The metastore has no tables yet."
    return MetastoreError(
        f"Cannot {action} the Airflow metastore ({name}).{hint}",
        remedy="Run this where Airflow is configured (same AIRFLOW_HOME / [database] sql_alchemy_conn as the "
        "scheduler); on a new installation run `airflow db migrate` first. Or use --output instead of --save.",
    )


@dataclass(frozen=True, repr=False)
class StoredConnection:
    """A connection row as read from the metastore (values copied out of the session)."""

    conn_id: str
    conn_type: str | None
    login: str | None
    password: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    extra_is_valid: bool = True

    def option(self, name: str) -> Any:
        """An extra value under its plain or its Airflow 2 prefixed key."""
        value = self.extra.get(name)
        if value in (None, ""):
            value = self.extra.get(EXTRA_PREFIX + name)
        return None if value in (None, "") else value

    def __repr__(self) -> str:
        return f"StoredConnection(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, password=***, extra=***)"


def _parse_extra(raw: str | None) -> tuple[dict[str, Any], bool]:
    if not raw:
        return {}, True
    try:
        value = json.loads(raw)
    except ValueError:
        return {}, False
    return (value, True) if isinstance(value, dict) else ({}, False)


def _select(session: Any, conn_id: str) -> Any:
    from airflow.models import Connection
    from sqlalchemy import select

    return session.scalar(select(Connection).where(Connection.conn_id == conn_id).limit(1))


def find_connection(conn_id: str) -> StoredConnection | None:
    """The metastore's row for ``conn_id`` (env-var and secrets-backend connections are not rows)."""
    try:
        from airflow.utils.session import create_session

        with server_context(), create_session() as session:
            row = _select(session, conn_id)
            if row is None:
                return None
            extra, valid = _parse_extra(row.extra)
            return StoredConnection(
                conn_id=conn_id,
                conn_type=row.conn_type,
                login=row.login,
                password=row.password,
                extra=extra,
                extra_is_valid=valid,
            )
    except OnboardingError:
        raise
    except Exception as exc:
        raise _metastore_error(exc, "read") from None


def shadowing_env_var(conn_id: str) -> str | None:
    """``AIRFLOW_CONN_<ID>`` when set here: Airflow reads it before the metastore, hiding a saved row."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    return name if os.environ.get(name) else None


def save_connection(conn_id: str, document: Mapping[str, Any], *, replace: bool, description: str) -> str:
    """Add the connection, or replace the row of the same id when ``replace``; ``"added"``/``"replaced"``."""
    try:
        from airflow.models import Connection
        from airflow.utils.session import create_session

        from airflow_provider_msads.compat.versions import port_for_a_connection_without_one

        with server_context(), create_session() as session:
            row = _select(session, conn_id)
            if row is not None and not replace:
                raise MetastoreError(
                    f"A connection {conn_id!r} already exists in the metastore; it was left unchanged.",
                    field="conn_id",
                    remedy=f"Add --yes to replace it, pick another id, or run `msads-authorize --reauthorize "
                    f"{conn_id}` to renew only its refresh token.",
                )
            extra = json.dumps(document["extra"])
            if row is None:
                session.add(
                    Connection(
                        conn_id=conn_id,
                        conn_type=CONN_TYPE,
                        description=description,
                        login=document["login"],
                        password=document["password"],
                        extra=extra,
                        port=port_for_a_connection_without_one(),
                    )
                )
                return "added"
            row.conn_type = CONN_TYPE
            row.description = description
            row.host = row.schema = None
            row.port = port_for_a_connection_without_one()
            row.login = document["login"]
            row.password = document["password"]
            row.extra = extra
            return "replaced"
    except OnboardingError:
        raise
    except Exception as exc:
        raise _metastore_error(exc, "write the connection to") from None


def update_refresh_token(conn_id: str, refresh_token: str) -> None:
    """Re-authorization: replace only the refresh token in the row's extra; keep every other value.

    A stale Airflow 2 prefixed copy (``extra__msads__refresh_token``) is removed, since two
    different values would make the connection unreadable. A form field's key that the extra
    lacks is added (empty, or ``production``), so that the *Edit* dialog shows that field.
    """
    try:
        from airflow.utils.session import create_session

        with server_context(), create_session() as session:
            row = _select(session, conn_id)
            if row is None:
                raise MetastoreError(
                    f"The connection {conn_id!r} disappeared from the metastore during the authorization.",
                    field="conn_id",
                    remedy="Run msads-authorize again with --save to create it.",
                )
            extra, valid = _parse_extra(row.extra)
            if not valid:
                raise MetastoreError(
                    f"The extra of connection {conn_id!r} is not a JSON object; its refresh token cannot be replaced.",
                    field="extra",
                    remedy="Fix the connection's Extra, or replace the whole connection with --save.",
                )
            extra.pop(EXTRA_PREFIX + "refresh_token", None)
            extra["refresh_token"] = refresh_token
            row.extra = json.dumps(with_every_form_field(extra))
    except OnboardingError:
        raise
    except Exception as exc:
        raise _metastore_error(exc, "update the connection in") from None


def reset_token_store(conn_id: str) -> None:
    """Forget the connection's rotated refresh token and cached access token everywhere they may be.

    The sealed state would not open anyway once the connection holds a new refresh token (the key
    derives from it), but deleting it makes the new token win at once and leaves nothing stale.
    The hook's own reset covers whichever store this process would use; the Variable and file
    stores are cleared explicitly, since workers and scripts may use either.
    """
    from airflow_provider_msads.tokens.auth import clear_process_cache
    from airflow_provider_msads.tokens.backends import FileTokenStore, VariableTokenStore
    from airflow_provider_msads.tokens.store import storage_key

    key = storage_key(conn_id)
    with server_context():
        with contextlib.suppress(Exception):
            from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

            MicrosoftAdsHook(msads_conn_id=conn_id).reset_token_store()
        with contextlib.suppress(Exception):
            VariableTokenStore().delete(key)
    with contextlib.suppress(Exception):
        FileTokenStore().delete(key)
    clear_process_cache()


def store_authorization(
    conn_id: str,
    refresh_token: str,
    *,
    document: Mapping[str, Any] | None = None,
    replace: bool = False,
    description: str = "",
) -> str:
    """Put a new authorization into the metastore and make it win at once; the sentence saying what was done.

    The one implementation behind ``msads-authorize --save`` / ``--reauthorize`` and the Airflow
    UI's *Authorize with Microsoft*: with ``document`` (the whole connection, holding
    ``refresh_token``) the row is added or replaced; without, only the refresh token of the
    existing row is replaced. Either way the token store is reset, since a rotated token kept
    there would otherwise be sent before the new one.
    """
    if document is not None:
        extra = dict(document.get("extra") or {})
        extra["refresh_token"] = refresh_token
        how = save_connection(conn_id, {**document, "extra": extra}, replace=replace, description=description)
        what = f"Saved connection {conn_id!r} into the Airflow metastore ({how})"
    else:
        update_refresh_token(conn_id, refresh_token)
        what = f"Updated the refresh token of connection {conn_id!r}; every other value was kept"
    reset_token_store(conn_id)
    return what


def _validator(conn_id: str, token_store: Any = None) -> Any:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    return MicrosoftAdsHook(msads_conn_id=conn_id, token_store=token_store)


def can_validate() -> bool:
    """True when Airflow, and so the hook, can be imported here (raises otherwise)."""
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    return MicrosoftAdsHook is not None


def validate_connection(conn_id: str, tokens: TokenSet | None = None) -> Any:
    """The hook's full validation of a saved connection.

    With ``tokens`` (the code exchange's answer) the token store is seeded with them and nothing is
    refreshed: the refresh token just saved is then the newest, as the one handed out must be.
    """
    with server_context():
        hook = _validator(conn_id)
        if tokens is not None:
            hook.token_manager.seed(tokens)
        return hook.validate_credentials(force_refresh=tokens is None)


def validate_document(document: Mapping[str, Any], tokens: TokenSet | None = None) -> Any:
    """Validate a result that was printed, not saved: as an in-process env-var connection.

    A memory token store is used, so nothing is left behind; the refresh token printed stays valid
    (Microsoft does not revoke a refresh token when it rotates it).
    """
    from airflow_provider_msads.tokens.backends import MemoryTokenStore

    with _temporary_env(f"AIRFLOW_CONN_{CHECK_CONN_ID.upper()}", json.dumps(dict(document))):
        hook = _validator(CHECK_CONN_ID, MemoryTokenStore())
        if tokens is not None:
            hook.token_manager.seed(tokens)
        return hook.validate_credentials(force_refresh=tokens is None)


#: Variable name prefix of the verdicts of validations run outside the health-check DAG.
VALIDATION_PREFIX = "msads_last_validation__"
_VALIDATION_DESCRIPTION = (
    "Last verdict of a validation of this Microsoft Advertising connection run outside the health-check DAG "
    "(the UI's Validate now), shown on the token-health page. No secret; safe to delete."
)
#: What of a report is kept: what the token-health page shows (no secret is in a report at all).
_RECORDED_FIELDS = ("conn_id", "ok", "retryable", "checked_at", "summary")
_VALIDATION_VERSION = "msads-validation-v1"


def _validation_key(conn_id: str) -> str:
    from airflow_provider_msads.tokens.store import VARIABLE_PREFIX, storage_key

    return VALIDATION_PREFIX + storage_key(conn_id)[len(VARIABLE_PREFIX) :]


def _validation_mac(key: bytes, variable: str, body: str) -> str:
    return hmac.new(key, f"{variable}\n{body}".encode(), hashlib.sha256).hexdigest()


def record_validation(conn_id: str, report: Mapping[str, Any], source: str, *, key: bytes) -> None:
    """Keep the verdict of a validation that no task recorded (the UI's *Validate now*), so that
    the token-health page shows the newest verdict whoever ran it, not the health-check DAG's
    older one (a user who fixed a credential and validated would still see it failed).

    An Airflow Variable per connection, like the token store: every API-server worker sees it,
    and it outlives a restart. Only the page's fields are kept, sealed with an HMAC under ``key``
    (the API servers' own, :func:`airflow_provider_msads.ui.flow.record_key`) over the Variable's
    name and the verdict: more people may write Variables than may validate the connection, and a
    verdict they wrote must not show on the page.
    """
    from airflow_provider_msads.compat.versions import variable_api

    document = {name: report.get(name) for name in _RECORDED_FIELDS}
    document["source"] = source
    variable = _validation_key(conn_id)
    body = json.dumps(document, sort_keys=True, separators=(",", ":"))
    sealed = json.dumps({"v": _VALIDATION_VERSION, "record": body, "mac": _validation_mac(key, variable, body)})
    with server_context():
        variable_api().set(variable, sealed, description=_VALIDATION_DESCRIPTION)


def recorded_validations(conn_ids: list[str], *, key: bytes) -> dict[str, dict[str, Any]]:
    """The verdicts :func:`record_validation` kept, per connection id (absent: none kept, or one
    whose seal does not open under ``key`` for that connection's Variable)."""
    from airflow_provider_msads.compat.versions import variable_api

    found: dict[str, dict[str, Any]] = {}
    with server_context():
        variables = variable_api()
        for conn_id in conn_ids:
            variable = _validation_key(conn_id)
            raw = variables.get(variable, None)
            try:
                envelope = json.loads(raw or "")
                body, mac = envelope["record"], envelope["mac"]
                if envelope.get("v") != _VALIDATION_VERSION or not isinstance(body, str) or not isinstance(mac, str):
                    continue
                if not hmac.compare_digest(mac, _validation_mac(key, variable, body)):
                    continue
                document = json.loads(body)
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
            if isinstance(document, dict) and document.get("conn_id") == conn_id:
                found[conn_id] = document
    return found
