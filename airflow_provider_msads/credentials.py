"""The six credentials of an ``msads`` connection, parsed and checked without any network call.

Every check here exists because a user once pasted the wrong thing: the secret's ID instead of
its value, the account *number* instead of the numeric id, a value with a trailing newline or
wrapped in quotes. Each problem raises one :class:`CredentialsError` naming the field (label and
key) and the fix, and pointing to the step of the credentials guide where the value comes from.

Whitespace around a value is stripped (copy/paste adds it, and it can never be part of a value);
the stripping is recorded in ``notes``. Quotes around a value are rejected rather than stripped:
a quoted value was usually copied out of a shell or JSON, where other characters may have been
escaped too, so silently "fixing" it would hide a mangled secret. Whitespace or control characters
*inside* a value are rejected, which also stops header injection through DeveloperToken & co.

Secret values never appear in messages or reprs; ids (not secrets) are quoted to help.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_msads.endpoints import ENVIRONMENTS, Endpoints, resolve_endpoints
from airflow_provider_msads.errors import (
    STEP_APP,
    STEP_AUTHORIZE,
    STEP_DEVTOKEN,
    STEP_IDS,
    STEP_SECRET,
    CredentialsError,
)

CONN_TYPE = "msads"
PREFIX = "extra__msads__"

SECRET_FIELDS = ("client_secret", "developer_token", "refresh_token")
FIELD_LABELS = {
    "client_id": "Client ID",
    "client_secret": "Client Secret",
    "developer_token": "Developer Token",
    "refresh_token": "Refresh Token",
    "customer_id": "Customer ID",
    "account_id": "Account ID",
    "environment": "Environment",
    "tenant": "Tenant",
    "token_url": "Token URL",
    "authorize_url": "Authorize URL",
    "customer_management_url": "Customer Management URL",
    "client_secret_expires_on": "Client secret expiry date",
    "extra": "Extra",
    "conn_type": "Connection type",
}
KNOWN_EXTRAS = frozenset(
    {
        "account_id",
        "customer_id",
        "developer_token",
        "refresh_token",
        "environment",
        "tenant",
        "token_url",
        "authorize_url",
        "customer_management_url",
        "client_secret_expires_on",
    }
)
STEPS = {
    "client_id": STEP_SECRET,
    "client_secret": STEP_SECRET,
    "customer_id": STEP_IDS,
    "account_id": STEP_IDS,
    "developer_token": STEP_DEVTOKEN,
    "refresh_token": STEP_AUTHORIZE,
    "tenant": STEP_APP,
}
MAX_LENGTH = {
    "client_id": 38,
    "client_secret": 256,
    "developer_token": 128,
    "refresh_token": 16384,
    "customer_id": 200,
    "account_id": 200,
    "environment": 32,
    "tenant": 256,
    "token_url": 2048,
    "authorize_url": 2048,
    "customer_management_url": 2048,
    "client_secret_expires_on": 40,
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DIGITS = re.compile(r"^[0-9]+$")
_ACCOUNT_NUMBER = re.compile(r"^[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_QUOTES = "'\"\u201c\u201d\u2018\u2019`"
_URL_ID = {"account_id": "aid", "customer_id": "cid"}


def _label(field: str) -> str:
    return f"{FIELD_LABELS.get(field, field)} (`{field}`)"


def _fail(field: str, problem: str, remedy: str) -> CredentialsError:
    return CredentialsError(f"{_label(field)} {problem}", field=field, remedy=remedy, step=STEPS.get(field))


def _show(field: str, value: str) -> str:
    """A non-secret value, quoted safely for a message; secrets are never shown."""
    if field in SECRET_FIELDS:
        return ""
    shown = value if len(value) <= 40 else value[:40] + "…"
    return f" (got {shown!r})"


@dataclass(frozen=True, repr=False)
class MicrosoftAdsCredentials:
    """One connection's credentials, validated; secrets are kept out of ``repr``."""

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
    notes: tuple[str, ...] = ()

    @property
    def endpoints(self) -> Endpoints:
        return resolve_endpoints(
            self.environment,
            self.tenant,
            token_url=self.token_url,
            authorize_url=self.authorize_url,
            customer_management_url=self.customer_management_url,
        )

    def public_dict(self) -> dict[str, object]:
        """The non-secret part, JSON-safe (reports, logs)."""
        return {
            "conn_id": self.conn_id,
            "client_id": self.client_id,
            "customer_id": self.customer_id,
            "account_id": self.account_id,
            "environment": self.environment,
            "tenant": self.tenant,
            "client_secret_expires_on": self.client_secret_expires_on.isoformat()
            if self.client_secret_expires_on
            else None,
        }

    def __repr__(self) -> str:
        return (
            f"MicrosoftAdsCredentials(conn_id={self.conn_id!r}, client_id={self.client_id!r}, "
            f"customer_id={self.customer_id!r}, account_id={self.account_id!r}, "
            f"environment={self.environment!r}, client_secret=***, developer_token=***, refresh_token=***)"
        )


def _extra_mapping(extra: object) -> dict[str, Any]:
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError as exc:
            raise _fail(
                "extra", "is not valid JSON.", 'Write Extra as a JSON object, e.g. {"account_id": "123"}.'
            ) from exc
    if not isinstance(extra, Mapping):
        raise _fail("extra", f"must be a JSON object, not {type(extra).__name__}.", "Write Extra as a JSON object.")
    return dict(extra)


def _merge_extras(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Plain keys and ``extra__msads__`` keys into one mapping; unknown keys are an error."""
    merged: dict[str, Any] = {}
    for key, value in raw.items():
        name = key[len(PREFIX) :] if key.startswith(PREFIX) else key
        if name not in KNOWN_EXTRAS:
            close = difflib.get_close_matches(name, sorted(KNOWN_EXTRAS), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise CredentialsError(
                f"Extra has an unknown key `{key[:60]}`.{hint}",
                field=key[:60],
                remedy="Remove it or fix its name. Known keys: " + ", ".join(sorted(KNOWN_EXTRAS)) + ".",
            )
        if value is None or (isinstance(value, str) and value.strip() == ""):
            continue
        if name in merged and merged[name] != value:
            raise _fail(
                name,
                f"is set twice with different values (as `{name}` and as `{PREFIX}{name}`).",
                f"Keep only `{name}` in Extra.",
            )
        merged[name] = value
    return merged


def _clean(field: str, value: object, notes: list[str], *, required: bool = True) -> str | None:
    """Type, emptiness, whitespace, quotes, control characters and length, for every field."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _fail(field, "is missing.", f"Fill {FIELD_LABELS.get(field, field)}." + _where(field))
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _fail(
            field, f"must be text, not {type(value).__name__}.", f"Enter {FIELD_LABELS.get(field, field)} as a string."
        )
    if isinstance(value, int):
        if field not in ("account_id", "customer_id"):
            raise _fail(field, "must be text, not a number.", f"Enter {FIELD_LABELS.get(field, field)} as a string.")
        value = str(value)
    stripped = value.strip()
    if stripped != value:
        notes.append(f"Stripped whitespace around {FIELD_LABELS.get(field, field)}.")
    limit = MAX_LENGTH.get(field, 2048)
    if len(stripped) > limit:
        raise _fail(
            field,
            f"is too long ({len(stripped)} characters, at most {limit}).",
            "Paste the value alone, nothing else." + _where(field),
        )
    if stripped[0] in _QUOTES or stripped[-1] in _QUOTES:
        raise _fail(field, "is wrapped in quotes.", "Remove the quotes; enter the bare value." + _where(field))
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in stripped):
        raise _fail(
            field,
            "contains a line break, tab, space or control character inside the value.",
            "Paste the value again as one unbroken piece." + _where(field),
        )
    return stripped


def _where(field: str) -> str:
    step = STEPS.get(field)
    return f" It comes from {step}." if step else ""


def _check_id(field: str, value: str) -> str:
    if _DIGITS.match(value):
        if len(value.lstrip("0")) > 19 or int(value) > 2**63 - 1:
            raise _fail(
                field, f"has more than 19 digits{_show(field, value)}; ids are 64-bit numbers.", _id_remedy(field)
            )
        if int(value) <= 0:
            raise _fail(field, f"must be a positive number{_show(field, value)}.", _id_remedy(field))
        return value
    param = _URL_ID[field]
    found = re.search(rf"[?&]{param}=([0-9]+)", value)
    if found:
        raise _fail(
            field,
            f"looks like a whole URL; only the number after `{param}=` is wanted (here {found.group(1)}).",
            f"Enter just {found.group(1)}.",
        )
    if _ACCOUNT_NUMBER.match(value) and any(ch.isdigit() for ch in value):
        raise _fail(
            field,
            f"looks like an account *number*{_show(field, value)}, not the numeric id.",
            _id_remedy(field),
        )
    raise _fail(field, f"must contain digits only{_show(field, value)}.", _id_remedy(field))


def _id_remedy(field: str) -> str:
    return (
        f"Use the numeric id after `{_URL_ID[field]}=` in the Microsoft Advertising URL "
        f"({'Account ID' if field == 'account_id' else 'Customer ID'}), e.g. 180535609."
    )


def _check_fields(values: dict[str, str | None]) -> None:
    client_id = values["client_id"] or ""
    if not _GUID.match(client_id.strip("{}")):
        raise _fail(
            "client_id",
            f"must be a GUID like 00000000-0000-0000-0000-000000000000{_show('client_id', client_id)}.",
            "Copy the 'Application (client) ID' from the app registration's overview page.",
        )
    secret = values["client_secret"] or ""
    if _GUID.match(secret):
        raise _fail(
            "client_secret",
            "looks like the secret's *Secret ID* (a GUID), not its *Value*.",
            "Paste the secret's Value; if it is no longer shown, create a new secret and copy its Value at once.",
        )
    if not secret.isascii():
        raise _fail("client_secret", "contains non-ASCII characters.", "Paste the secret's Value again.")
    token = values["developer_token"] or ""
    if not token.isascii():
        raise _fail(
            "developer_token",
            "contains non-ASCII characters.",
            "Paste the developer token again." + _where("developer_token"),
        )
    refresh = values["refresh_token"] or ""
    if refresh.lower().startswith("bearer") or _JWT.match(refresh):
        raise _fail(
            "refresh_token",
            "holds an access token, not a refresh token.",
            "Use the refresh_token value of the token answer (or run `msads-authorize`).",
        )
    if len(refresh) < 20 or not refresh.isascii():
        raise _fail(
            "refresh_token",
            "looks truncated or mangled.",
            "Paste the whole refresh token again." + _where("refresh_token"),
        )


def _check_tenant(tenant: str) -> str:
    if tenant.lower() in ("common", "organizations", "consumers"):
        return tenant.lower()
    if _GUID.match(tenant) or _DOMAIN.match(tenant):
        return tenant
    raise _fail(
        "tenant",
        f"must be common, organizations, consumers, a tenant GUID or a domain{_show('tenant', tenant)}.",
        "Leave Tenant empty for `common`, or give your directory (tenant) id.",
    )


def _check_date(value: str) -> datetime.date:
    try:
        if len(value) > 10:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(
            "client_secret_expires_on",
            f"is not an ISO date{_show('client_secret_expires_on', value)}.",
            "Write it as YYYY-MM-DD (the 'Expires' column of the app's Certificates & secrets page).",
        ) from exc


def parse_credentials(
    *, conn_id: str, login: object, password: object, extra: object, conn_type: str | None = None
) -> MicrosoftAdsCredentials:
    """Validate a connection's parts; the first problem found raises, in a stable order."""
    if conn_type not in (None, "", CONN_TYPE):
        raise _fail("conn_type", f"is {conn_type!r}, not {CONN_TYPE!r}.", f"Set the connection type to {CONN_TYPE}.")
    extras = _merge_extras(_extra_mapping(extra))
    notes: list[str] = []
    values: dict[str, str | None] = {
        "client_id": _clean("client_id", login, notes),
        "client_secret": _clean("client_secret", password, notes),
    }
    for field in ("developer_token", "refresh_token", "customer_id", "account_id"):
        values[field] = _clean(field, extras.get(field), notes)
    _check_fields(values)
    customer_id = _check_id("customer_id", values["customer_id"] or "")
    account_id = _check_id("account_id", values["account_id"] or "")
    options = {
        name: _clean(name, extras.get(name), notes, required=False)
        for name in (
            "environment",
            "tenant",
            "token_url",
            "authorize_url",
            "customer_management_url",
            "client_secret_expires_on",
        )
    }
    environment = (options["environment"] or "production").lower()
    if environment not in ENVIRONMENTS:
        raise _fail(
            "environment",
            f"must be one of {', '.join(ENVIRONMENTS)}{_show('environment', environment)}.",
            "Pick production (live accounts) or sandbox (Microsoft Advertising sandbox).",
        )
    tenant = _check_tenant(options["tenant"] or "common")
    expires = _check_date(options["client_secret_expires_on"]) if options["client_secret_expires_on"] else None
    credentials = MicrosoftAdsCredentials(
        conn_id=conn_id,
        client_id=(values["client_id"] or "").strip("{}").lower(),
        client_secret=values["client_secret"] or "",
        developer_token=values["developer_token"] or "",
        refresh_token=values["refresh_token"] or "",
        customer_id=customer_id,
        account_id=account_id,
        environment=environment,
        tenant=tenant,
        token_url=options["token_url"],
        authorize_url=options["authorize_url"],
        customer_management_url=options["customer_management_url"],
        client_secret_expires_on=expires,
        notes=tuple(notes),
    )
    _ = credentials.endpoints  # every URL problem surfaces now, not at the first request
    return credentials


def credentials_from_connection(conn: object) -> MicrosoftAdsCredentials:
    """Read an Airflow Connection (or anything shaped like one) without importing Airflow."""
    extra: object = getattr(conn, "extra_dejson", None)
    if extra is None:
        extra = getattr(conn, "extra", None)
    return parse_credentials(
        conn_id=str(getattr(conn, "conn_id", None) or "msads_default"),
        login=getattr(conn, "login", None),
        password=getattr(conn, "password", None),
        extra=extra,
        conn_type=getattr(conn, "conn_type", None),
    )
