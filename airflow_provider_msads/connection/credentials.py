"""The credentials of an ``msads`` connection: one validated value, parsed without Airflow or the network.

Catching a wrong paste before the first request lets the error name the field, its connection key
and the step of the credentials guide (1-6) to redo; Microsoft's own answer would name none of it.
The checks themselves are in :mod:`._checks`, one function per field; their rules and order are
listed in docs/validation.md.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from functools import cached_property

from airflow_provider_msads.connection import checks
from airflow_provider_msads.connection.endpoints import Endpoints, resolve_endpoints
from airflow_provider_msads.connection.extra import check_keys, extra_mapping, pick
from airflow_provider_msads.connection.fields import (
    CONN_TYPE,
    EXTRA_PREFIX,
    FIELD_LABELS,
    FIELD_STEPS,
    KNOWN_EXTRAS,
    MAX_LENGTHS,
    OPTION_ORDER,
    SECRET_FIELDS,
    URL_FIELDS,
)

__all__ = [
    "CONN_TYPE",
    "EXTRA_PREFIX",
    "FIELD_LABELS",
    "FIELD_STEPS",
    "KNOWN_EXTRAS",
    "MAX_LENGTHS",
    "SECRET_FIELDS",
    "MicrosoftAdsCredentials",
    "credentials_from_connection",
    "parse_credentials",
]


# ----------------------------------------------------------------------------------- the value


@dataclass(frozen=True, repr=False)
class MicrosoftAdsCredentials:
    """One connection's credentials, validated; build it with :func:`parse_credentials`.

    Frozen so that a hook cannot half-update it; ``repr`` masks the secrets because credentials
    end up in tracebacks and debug logs. ``refresh_token`` is the one typed into the connection:
    the token store may hold a newer, rotated one, which is what the token manager uses first.
    """

    conn_id: str
    client_id: str
    client_secret: str
    developer_token: str
    refresh_token: str
    customer_id: str
    account_id: str
    environment: str = "production"
    tenant: str = "common"
    token_url: str | None = None
    authorize_url: str | None = None
    customer_management_url: str | None = None
    client_secret_expires_on: datetime.date | None = None
    #: What parsing normalised (e.g. stripped whitespace), for humans; never holds a value.
    notes: tuple[str, ...] = field(default=(), compare=False)
    #: Full Reporting v13 URL overriding the environment's default (the emulator's, in tests).
    reporting_url: str | None = None
    #: Full Bulk v13 URL overriding the environment's default (the emulator's, in tests).
    bulk_url: str | None = None

    @cached_property
    def endpoints(self) -> Endpoints:
        """URLs and scope for this connection: the environment's defaults with checked overrides.

        Resolved once per value (every HTTP request asks which origins may get credentials); the
        value is frozen, and :func:`parse_credentials` already resolved it once to fail early.
        """
        return resolve_endpoints(
            self.environment,
            self.tenant,
            token_url=self.token_url,
            authorize_url=self.authorize_url,
            customer_management_url=self.customer_management_url,
            reporting_url=self.reporting_url,
            bulk_url=self.bulk_url,
        )

    def __repr__(self) -> str:
        return (
            f"MicrosoftAdsCredentials(conn_id={self.conn_id!r}, client_id={self.client_id!r}, "
            f"customer_id={self.customer_id!r}, account_id={self.account_id!r}, "
            f"environment={self.environment!r}, client_secret='***', developer_token='***', "
            "refresh_token='***')"
        )

    def public_dict(self) -> dict[str, object]:
        """The non-secret part, JSON-safe: for reports, XCom and logs."""
        return {
            "conn_id": self.conn_id,
            "client_id": self.client_id,
            "customer_id": self.customer_id,
            "account_id": self.account_id,
            "environment": self.environment,
            "tenant": self.tenant,
            "token_url": self.token_url,
            "authorize_url": self.authorize_url,
            "customer_management_url": self.customer_management_url,
            "client_secret_expires_on": (
                self.client_secret_expires_on.isoformat() if self.client_secret_expires_on else None
            ),
            "notes": list(self.notes),
            "reporting_url": self.reporting_url,
            "bulk_url": self.bulk_url,
        }


# ------------------------------------------------------------------------------------ the API


def parse_credentials(
    *,
    conn_id: str,
    login: object,
    password: object,
    extra: object,
    conn_type: str | None = None,
) -> MicrosoftAdsCredentials:
    """Validate a connection's parts and return the credentials, or raise one CredentialsError.

    ``extra`` may be a mapping or a JSON object string. The first problem is reported, in the
    order described in the module docstring, so the user fixes one thing at a time and always
    moves forward. Every URL is checked here (not at the first request) so that a bad override
    fails the connection test, not a task at 3 a.m.
    """
    p = checks.Parse(str(conn_id) if conn_id is not None else "")
    if conn_type is not None and conn_type != "" and conn_type != CONN_TYPE:
        raise p.fail(
            "conn_type",
            f"is {checks.show(conn_type)}, but this hook reads connections of type {CONN_TYPE!r}.",
            f"Set the connection type to {CONN_TYPE} (Microsoft Advertising).",
        )
    raw = extra_mapping(p, extra)
    check_keys(p, raw)

    client_id = checks.client_id(p, login)
    client_secret = checks.client_secret(p, password, client_id)
    developer_token = checks.developer_token(p, pick(p, raw, "developer_token"), client_secret)
    refresh_token = checks.refresh_token(p, pick(p, raw, "refresh_token"), client_secret, developer_token)
    customer_id = checks.account_or_customer_id(p, "customer_id", pick(p, raw, "customer_id"))
    account_id = checks.account_or_customer_id(p, "account_id", pick(p, raw, "account_id"))

    options = {name: pick(p, raw, name) for name in OPTION_ORDER}
    environment = checks.environment(p, options["environment"])
    tenant = checks.tenant(p, options["tenant"], client_id)
    urls = {name: checks.url(p, name, options[name]) for name in URL_FIELDS}
    expires_on = checks.expiry(p, options["client_secret_expires_on"])

    credentials = MicrosoftAdsCredentials(
        conn_id=p.conn_id,
        client_id=client_id,
        client_secret=client_secret,
        developer_token=developer_token,
        refresh_token=refresh_token,
        customer_id=customer_id,
        account_id=account_id,
        environment=environment,
        tenant=tenant,
        token_url=urls["token_url"],
        authorize_url=urls["authorize_url"],
        customer_management_url=urls["customer_management_url"],
        client_secret_expires_on=expires_on,
        notes=tuple(p.notes),
        reporting_url=urls["reporting_url"],
        bulk_url=urls["bulk_url"],
    )
    _ = credentials.endpoints  # any remaining URL problem surfaces now, not at the first request
    return credentials


def credentials_from_connection(conn: object) -> MicrosoftAdsCredentials:
    """Parse an Airflow ``Connection`` (or anything shaped like one) without importing Airflow.

    Reads ``conn_id``, ``conn_type``, ``login``, ``password`` and the extra. ``extra_dejson`` is
    always read, since Airflow registers the extra's secrets with its log masker there; but when
    ``extra`` is JSON text, that text is what gets parsed: Airflow turns invalid JSON into ``{}``
    (reported as "Developer Token is missing" instead of "Extra is not valid JSON") and silently
    keeps the last of two equal keys. Without text, ``extra_dejson`` or a dict ``extra`` is used.
    """
    # Read first for its side effect: Airflow registers the extra's secrets with its log masker.
    dejson = getattr(conn, "extra_dejson", None)
    if callable(dejson):
        dejson = dejson()
    raw_extra = getattr(conn, "extra", None)
    extra: object = raw_extra if isinstance(raw_extra, str) and raw_extra.strip() else dejson
    if extra is None:
        extra = raw_extra
    conn_id = getattr(conn, "conn_id", None)
    conn_type = getattr(conn, "conn_type", None)
    return parse_credentials(
        conn_id=str(conn_id) if conn_id else "msads_default",
        login=getattr(conn, "login", None),
        password=getattr(conn, "password", None),
        extra=extra,
        conn_type=conn_type if isinstance(conn_type, str) or conn_type is None else str(conn_type),
    )
