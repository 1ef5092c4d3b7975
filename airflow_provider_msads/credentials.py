"""The credentials of an ``msads`` connection, parsed and checked without Airflow or the network.

Why a module of its own: every check here exists because users paste the wrong thing (the
secret's ID instead of its value, the account *number* instead of the numeric id, an access token
instead of a refresh token, a value with a trailing newline or wrapped in quotes), and Microsoft
then answers with an error that names none of it. Catching these before the first request lets the
error name the field, its connection key and the step of the credentials guide (1-6) to redo.

Decisions, in the order a value meets them:

* **Where values come from.** ``login`` is the Client ID, ``password`` the Client Secret; the
  rest are ``extra`` keys, read under their plain name and under Airflow 2's prefixed form
  ``extra__msads__<name>``. Both forms with the same value are fine (noted); with different
  values it is an error, since we cannot know which one is current. Unknown keys are an error
  (with a "did you mean" hint): a misspelt ``acount_id`` would otherwise surface later as
  "Account ID is missing", which sends the user looking in the wrong place.
* **Types.** Values are strings; Account ID and Customer ID may also be JSON integers (booleans
  excluded). Anything else is reported with the type received, never the value.
* **Whitespace around a value is stripped** (copy/paste adds spaces, tabs, newlines and
  zero-width characters, and none of them can be part of a value); each stripping is recorded in
  :attr:`MicrosoftAdsCredentials.notes`, without the value.
* **Whitespace or control characters inside a value are rejected**: they mean a mangled paste, and
  in a value that becomes an HTTP header (DeveloperToken, CustomerAccountId, …) a line break is a
  header injection.
* **Quotes are rejected, not stripped.** A value wrapped in quotes (straight, smart or backtick),
  or with a stray quote at one end, was almost always copied out of a shell line or a JSON
  document, where other characters may have been escaped as well; silently removing the quotes
  would hide a mangled secret that then fails at Microsoft with a vaguer error.
* **Size limits** (Client ID 36, ids 20 digits, developer token 128, client secret 256, refresh
  token 16384, URLs 2048 characters) bound what can reach a header or a log line.
* **Normalisation** that cannot change meaning is done and noted: braces around the Client ID
  are removed and the GUID is lower-cased, leading zeros of ids are removed (ids are compared as
  strings later, e.g. ``ParentCustomerId == customer_id``), environment and well-known tenant
  names are lower-cased.
* **Order.** The first problem is reported, in a fixed order: connection type, shape of
  ``extra``, unknown keys, then the fields client_id, client_secret, developer_token,
  refresh_token, customer_id, account_id, then the options. Fixing errors one by one therefore
  always moves forward.
* **No secrets in errors.** Messages are built from our own sentences, labels, keys and type
  names. The values of Client Secret, Developer Token and Refresh Token never appear, not even in
  part; ids, environment, tenant and dates are not secret and are quoted (``repr``, cut to 40
  characters) because seeing the bad value is the fastest way to understand the mistake. No
  exception from parsing is chained to the error, since e.g. a JSON decode error carries the
  whole ``extra`` document.
* **No clock.** An expired ``client_secret_expires_on`` is not an error here; the health check
  warns about it. Parsing the same connection always gives the same answer.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_msads.endpoints import ENVIRONMENTS, Endpoints, check_url, resolve_endpoints
from airflow_provider_msads.errors import (
    STEP_APP,
    STEP_AUTHORIZE,
    STEP_DEVTOKEN,
    STEP_IDS,
    STEP_SECRET,
    CredentialsError,
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

CONN_TYPE = "msads"
#: Airflow 2's connection form stores custom fields as ``extra__<conn_type>__<name>``.
EXTRA_PREFIX = f"extra__{CONN_TYPE}__"

#: Fields whose values never appear in a message, a repr or a report.
SECRET_FIELDS = ("client_secret", "developer_token", "refresh_token")

#: The names users see in the connection form; messages say "Label (`key`)".
FIELD_LABELS: dict[str, str] = {
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
    "reporting_url": "Reporting URL",
    "client_secret_expires_on": "Client Secret expiry date",
    "extra": "Extra",
    "conn_type": "Connection type",
}

#: Keys allowed in ``extra`` (plain or prefixed); the first four are required.
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
        "reporting_url",
    }
)

#: Where in the credentials guide each value comes from.
FIELD_STEPS: dict[str, str] = {
    "client_id": STEP_SECRET,
    "client_secret": STEP_SECRET,
    "customer_id": STEP_IDS,
    "account_id": STEP_IDS,
    "developer_token": STEP_DEVTOKEN,
    "refresh_token": STEP_AUTHORIZE,
    "tenant": STEP_APP,
}

#: Longest accepted value per field, after stripping surrounding whitespace.
MAX_LENGTHS: dict[str, int] = {
    "client_id": 36,
    "client_secret": 256,
    "developer_token": 128,
    "refresh_token": 16384,
    "customer_id": 20,
    "account_id": 20,
    "environment": 32,
    "tenant": 253,
    "token_url": 2048,
    "authorize_url": 2048,
    "customer_management_url": 2048,
    "client_secret_expires_on": 64,
    "reporting_url": 2048,
}

_OPTION_ORDER = (
    "environment",
    "tenant",
    "token_url",
    "authorize_url",
    "customer_management_url",
    "client_secret_expires_on",
    "reporting_url",
)
_URL_FIELDS = ("token_url", "authorize_url", "customer_management_url", "reporting_url")
_ID_FIELDS = ("customer_id", "account_id")
#: The query parameter of the Microsoft Advertising web UI that carries each id.
_URL_PARAM = {"account_id": "aid", "customer_id": "cid"}
_MAX_ID = 2**63 - 1
#: An id field may hold a pasted URL; it is measured against this before the digit limit, so that
#: the user hears "copy the number after aid=" rather than "too long".
_PASTE_LIMIT = 2048

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DIGITS = re.compile(r"[0-9]+")
_ACCOUNT_NUMBER = re.compile(r"(?=[A-Za-z0-9]*[A-Za-z])(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]+")
_DOMAIN = re.compile(r"(?=.{1,253}$)(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+[A-Za-z]{2,63}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*")
_BEARER = re.compile(r"bearer\s", re.IGNORECASE)
#: A personal-account authorization code, as in guide Step 5 (``M.C519_BAY.2.U.<guid>``).
_AUTH_CODE = re.compile(r"M\.[A-Za-z0-9_]+\.2\.U\.[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]+)?)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_QUOTES = frozenset("'\"`\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb")
_TENANT_ALIASES = ("common", "organizations", "consumers")
#: Invisible characters a copy from a web page, chat or document adds around a value.
_EDGE_JUNK = "\u200b\u200c\u200d\u2060\ufeff"


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

    @property
    def endpoints(self) -> Endpoints:
        """URLs and scope for this connection: the environment's defaults with checked overrides."""
        return resolve_endpoints(
            self.environment,
            self.tenant,
            token_url=self.token_url,
            authorize_url=self.authorize_url,
            customer_management_url=self.customer_management_url,
            reporting_url=self.reporting_url,
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
        }


# ---------------------------------------------------------------------------------- the errors


def _label(name: str) -> str:
    return f"{FIELD_LABELS.get(name, name)} (`{name}`)"


def _show(value: object) -> str:
    """A NON-secret value for a message: repr (so line breaks show escaped), cut to 40 chars."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


class _Parser:
    """One parse: carries the connection id for messages and collects notes."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self.notes: list[str] = []

    # -- errors and notes

    def fail(self, name: str, problem: str, remedy: str, *, step: str | None = None) -> CredentialsError:
        """The one error of this parse: "Connection `x`: Label (`key`) <problem>"."""
        return CredentialsError(
            f"Connection {_show(self.conn_id)}: {_label(name)} {problem}",
            field=name,
            remedy=remedy,
            step=step if step is not None else FIELD_STEPS.get(name),
        )

    def note(self, name: str, what: str) -> None:
        self.notes.append(f"{what} {_label(name)}.")

    # -- extra

    def extra_mapping(self, extra: object) -> dict[str, object]:
        """``extra`` as a dict: accepts a mapping or a JSON object string; None/"" mean empty."""
        if extra is None:
            return {}
        if isinstance(extra, (bytes, bytearray)):
            extra = bytes(extra).decode("utf-8", errors="replace")
        if isinstance(extra, str):
            if not extra.strip():
                return {}
            decoded, position, duplicate = _decode_json(extra)
            if position is not None:
                # Raised outside any ``except`` block: the decode error carries the whole document.
                raise self.fail(
                    "extra",
                    f"is not valid JSON ({position}).",
                    'Write Extra as one JSON object, e.g. {"account_id": "180535609", "customer_id": "251186883", '
                    '"developer_token": "…", "refresh_token": "…"}, with double quotes around keys and values.',
                )
            if duplicate is not None:
                raise self.fail(
                    "extra",
                    f"has the key `{duplicate[:40]}` more than once.",
                    f"Keep one `{duplicate[:40]}` in Extra.",
                )
            extra = decoded
            if extra is None:
                return {}
        if not isinstance(extra, Mapping):
            raise self.fail(
                "extra",
                f"must be a JSON object of keys and values, not {_json_type(extra)}.",
                'Write Extra as {"key": "value", …}.',
            )
        return {str(key): value for key, value in extra.items()}

    def check_keys(self, raw: Mapping[str, object]) -> None:
        """Unknown keys, each reported with the nearest known key when one is close."""
        unknown = sorted(key for key in raw if _base_name(key) not in KNOWN_EXTRAS)
        if not unknown:
            return
        key = unknown[0]
        base = _base_name(key)
        shown = _key(key)
        others = f" Also unknown: {', '.join(_key(k) for k in unknown[1:4])}." if len(unknown) > 1 else ""
        known = ", ".join(sorted(KNOWN_EXTRAS))
        if base in ("client_id", "client_secret", "login", "password"):
            where = "Login" if base in ("client_id", "login") else "Password"
            target = "client_id" if where == "Login" else "client_secret"
            label = FIELD_LABELS[target]
            raise CredentialsError(
                f"Connection {_show(self.conn_id)}: Extra has the key {shown}, but {_label(target)} belongs in "
                f"the connection's {where} field, not in Extra.{others}",
                field=key[:60],
                remedy=f"Move the value into the {where} field ({label}) and remove {shown} from Extra.",
                step=STEP_SECRET,
            )
        close = difflib.get_close_matches(base, sorted(KNOWN_EXTRAS), n=1, cutoff=0.6)
        hint = ""
        if close:
            suggestion = close[0] if key == base else EXTRA_PREFIX + close[0]
            hint = f" Did you mean `{suggestion}`?"
        raise CredentialsError(
            f"Connection {_show(self.conn_id)}: Extra has an unknown key {shown}.{hint}{others}",
            field=key[:60],
            remedy=f"Rename or remove it. Known keys: {known} (each also as {EXTRA_PREFIX}<key>).",
        )

    def pick(self, raw: Mapping[str, object], name: str) -> object:
        """The value of ``name`` from its plain or prefixed key; two different values are an error."""
        plain = raw.get(name)
        prefixed = raw.get(EXTRA_PREFIX + name)
        if _is_empty(plain):
            return None if _is_empty(prefixed) else prefixed
        if _is_empty(prefixed):
            return plain
        if _comparable(plain) != _comparable(prefixed):
            raise self.fail(
                name,
                f"is set twice with different values, as `{name}` and as `{EXTRA_PREFIX}{name}`.",
                f"Remove `{EXTRA_PREFIX}{name}` from Extra (an older form of the key) and keep the correct value "
                f"in `{name}`.",
            )
        self.note(name, f"Ignored the duplicate `{EXTRA_PREFIX}{name}` (same value) of")
        return plain

    # -- the checks every value goes through

    def required(self, name: str, value: object) -> str:
        """:meth:`text` for a field the connection must have."""
        text = self.text(name, value)
        if text is None:
            raise self.fail(name, "is missing.", _missing_remedy(name))
        return text

    def text(self, name: str, value: object) -> str | None:
        """Type, surrounding whitespace, emptiness and length: the checks shared by every field."""
        if _is_empty(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool) and name in _ID_FIELDS:
            value = str(value)
        if not isinstance(value, str):
            kind = _json_type(value)
            accepted = "a string of digits or a whole number" if name in _ID_FIELDS else "a string"
            raise self.fail(
                name,
                f"must be {accepted}, but the connection holds {kind}.",
                f"Enter {FIELD_LABELS.get(name, name)} as {accepted}.",
            )
        stripped = _strip(value)
        if stripped != value:
            self.note(name, "Stripped whitespace around")
        if name == "client_id" and len(stripped) == 38 and stripped[0] == "{" and stripped[-1] == "}":
            stripped = stripped[1:-1]
            self.note(name, "Removed the braces around")
        limit = _PASTE_LIMIT if name in _ID_FIELDS else MAX_LENGTHS[name]
        if len(stripped) > limit:
            raise self.fail(
                name,
                f"is too long: {len(stripped)} characters, at most {limit} are accepted.",
                f"Paste {FIELD_LABELS.get(name, name)} alone, nothing before or after it.",
            )
        return stripped

    def characters(self, name: str, value: str, *, inside: bool = True) -> None:
        """No quotes at the ends, no whitespace or control characters inside (unless ``inside=False``)."""
        first, last = value[0] in _QUOTES, value[-1] in _QUOTES
        if first or last:
            where = "is wrapped in quotes" if first and last and len(value) > 1 else "has a stray quote at one end"
            raise self.fail(
                name,
                f"{where}; quotes are never part of the value.",
                "Remove the quotes and paste the bare value; if it was copied from a shell command or JSON, "
                "copy it again from its source, since other characters may be escaped too.",
            )
        bad = next((ch for ch in value if ch.isspace() or _is_control(ch)), None)
        if bad is not None and inside:
            raise self.fail(
                name,
                f"contains {_describe_char(bad)} inside the value; a line break, tab, space or control character "
                "cannot be part of it.",
                "Paste the value again as one unbroken piece.",
            )

    def printable_ascii(self, name: str, value: str) -> None:
        """Secrets are printable ASCII; anything else is a look-alike from a document or chat."""
        if not all("!" <= ch <= "~" for ch in value):
            raise self.fail(
                name,
                "contains a non-ASCII character (e.g. a typographic dash or a look-alike letter).",
                "Copy the value again straight from its source, not through a document or a chat.",
            )

    # -- the fields

    def client_id(self, value: object) -> str:
        text = self.required("client_id", value)
        self.characters("client_id", text)
        if not _GUID.fullmatch(text):
            raise self.fail(
                "client_id",
                f"must be the Application (client) ID GUID from the app's overview page, like "
                f"00000000-0000-0000-0000-000000000000; got {_show(text)}.",
                "Open the app registration in the Azure portal and copy 'Application (client) ID' (not the Object "
                "ID, not the Directory (tenant) ID) into the Login / Client ID field.",
            )
        if text != text.lower():
            self.note("client_id", "Lower-cased")
        return text.lower()

    def client_secret(self, value: object, client_id: str) -> str:
        text = self.required("client_secret", value)
        self.characters("client_secret", text)
        self.printable_ascii("client_secret", text)
        if _GUID.fullmatch(text):
            same = " It is even the same as the Client ID." if text.lower() == client_id else ""
            raise self.fail(
                "client_secret",
                f"looks like the secret's Secret ID (a GUID), not its Value.{same}",
                "Put the secret's Value into the Password / Client Secret field. The Value is shown only right "
                "after the secret is created; if it is gone, add a new client secret and copy its Value at once.",
            )
        return text

    def developer_token(self, value: object, client_secret: str) -> str:
        text = self.required("developer_token", value)
        self.characters("developer_token", text)
        self.printable_ascii("developer_token", text)
        if text == client_secret:
            raise self.fail(
                "developer_token",
                "holds the same value as Client Secret.",
                "Copy the developer token from Microsoft Advertising's developer settings.",
            )
        return text

    def refresh_token(self, value: object, client_secret: str, developer_token: str) -> str:
        name = "refresh_token"
        text = self.required(name, value)
        access = "holds an access token, not a refresh token"
        remedy_access = (
            "Use the `refresh_token` of the token answer, not its `access_token` (an access token lives about an "
            "hour), or run `msads-authorize`."
        )
        # Before the generic character checks: these shapes contain spaces or quotes, and the
        # specific message is the useful one.
        if _BEARER.match(text):
            raise self.fail(name, f"{access} (it starts with 'Bearer').", remedy_access)
        if text.startswith("{") and "refresh_token" in text:
            raise self.fail(
                name,
                "holds a whole JSON token answer.",
                "Copy only the value of its `refresh_token` key, without the quotes.",
            )
        if "code=" in text or "://" in text:
            raise self.fail(
                name,
                "holds a URL (the redirect after sign-in?), not a refresh token.",
                "The `code` in the redirect URL must first be exchanged for tokens; `msads-authorize` does "
                "both steps and prints the refresh token.",
            )
        self.characters(name, text)
        self.printable_ascii(name, text)
        if _JWT.fullmatch(text):
            raise self.fail(name, f"{access} (a JWT starting with 'eyJ').", remedy_access)
        if _AUTH_CODE.fullmatch(text):
            raise self.fail(
                name,
                "looks like an authorization code, not a refresh token.",
                "Exchange the code for tokens (it is valid for minutes and only once) and paste the "
                "`refresh_token` of the answer; `msads-authorize` does both steps.",
            )
        if len(text) < 20:
            raise self.fail(
                name,
                f"looks truncated: {len(text)} characters, while refresh tokens are hundreds long.",
                "Paste the whole refresh token again, nothing cut off.",
            )
        if text in (client_secret, developer_token):
            other = "Client Secret" if text == client_secret else "Developer Token"
            raise self.fail(
                name,
                f"holds the same value as {other}.",
                "Put the `refresh_token` of the token answer (or what `msads-authorize` prints) into Refresh Token.",
            )
        return text

    def account_or_customer_id(self, name: str, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
            raise self.fail(
                name,
                f"must be a positive whole number (digits only); got {_show(value)}.",
                _id_remedy(name),
            )
        text = self.required(name, value)
        param = _URL_PARAM[name]
        found = _url_param_values(text)
        if found or "://" in text or text.lower().startswith(("ui.ads.", "ads.microsoft.")):
            if param in found:
                raise self.fail(
                    name,
                    f"holds a URL; only the number after `{param}=` is wanted, here {found[param]}.",
                    f"Enter just {found[param]}.",
                )
            other = "cid" if param == "aid" else "aid"
            hint = (
                f" That URL has `{other}=` (the {FIELD_LABELS['customer_id' if other == 'cid' else 'account_id']}) "
                f"but no `{param}=`."
                if other in found
                else ""
            )
            raise self.fail(
                name,
                f"holds a URL, not the number after `{param}=`.{hint}",
                f"Open the account in Microsoft Advertising and copy the number after `{param}=` in the address bar.",
            )
        self.characters(name, text)
        if _DIGITS.fullmatch(text):
            digits = text.lstrip("0")
            if len(text) > MAX_LENGTHS[name] or len(digits) > 19:
                raise self.fail(
                    name,
                    f"has {len(text)} digits; Microsoft Advertising ids are 64-bit numbers of at most 19 digits "
                    f"(got {_show(text)}).",
                    _id_remedy(name),
                )
            if int(digits or "0") > _MAX_ID:
                raise self.fail(
                    name,
                    f"is larger than any 64-bit id (at most {_MAX_ID}); got {_show(text)}.",
                    _id_remedy(name),
                )
            if not digits:
                raise self.fail(name, f"must be a positive number, not zero (got {_show(text)}).", _id_remedy(name))
            if digits != text:
                self.note(name, "Removed leading zeros from")
            return digits
        if _ACCOUNT_NUMBER.fullmatch(text):
            raise self.fail(
                name,
                f"looks like an account *number* (like F1234ABC), got {_show(text)}; the numeric "
                f"{FIELD_LABELS[name]} is needed.",
                f"Use the numeric id from the `{param}=` ({FIELD_LABELS[name]}) parameter of the Microsoft "
                "Advertising URL, not the number shown next to the account's name.",
            )
        raise self.fail(name, f"must be a positive whole number, digits only; got {_show(text)}.", _id_remedy(name))

    def environment(self, value: object) -> str:
        text = self.text("environment", value)
        if text is None:
            return "production"
        self.characters("environment", text)
        lowered = text.lower()
        if lowered not in ENVIRONMENTS:
            raise self.fail(
                "environment",
                f"must be one of {', '.join(ENVIRONMENTS)}; got {_show(text)}.",
                "Leave it empty or write production for live accounts; write sandbox only for accounts and a "
                "developer token of Microsoft Advertising's sandbox.",
            )
        if lowered != text:
            self.note("environment", "Lower-cased")
        return lowered

    def tenant(self, value: object, client_id: str) -> str:
        text = self.text("tenant", value)
        if text is None:
            return "common"
        self.characters("tenant", text)
        lowered = text.lower()
        if lowered in _TENANT_ALIASES or _GUID.fullmatch(text) or _DOMAIN.fullmatch(text):
            if lowered == client_id:
                raise self.fail(
                    "tenant",
                    "is the Client ID; the tenant is the app's Directory (tenant) ID, a different GUID.",
                    "Leave Tenant empty (common) for a multitenant app, or copy 'Directory (tenant) ID' from the "
                    "app's overview page.",
                )
            if lowered != text:
                self.note("tenant", "Lower-cased")
            return lowered
        raise self.fail(
            "tenant",
            f"must be common, organizations, consumers, a directory (tenant) ID GUID or a domain like "
            f"contoso.onmicrosoft.com; got {_show(text)}.",
            "Leave Tenant empty for common (the app must then accept accounts in any directory and personal "
            "accounts), or give the 'Directory (tenant) ID' from the app's overview page.",
        )

    def url(self, name: str, value: object) -> str | None:
        text = self.text(name, value)
        if text is None:
            return None
        self.characters(name, text)
        return check_url(text, name)  # EndpointError names the field and the rule

    def expiry(self, value: object) -> datetime.date | None:
        name = "client_secret_expires_on"
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, datetime.date):
            return value
        text = self.text(name, value)
        if text is None:
            return None
        self.characters(name, text, inside=False)  # the patterns below allow exactly one space
        if _ISO_DATE.fullmatch(text[:10]) and (len(text) == 10 or _ISO_DATETIME.fullmatch(text)):
            # The date as written; the time (checked by the pattern) only tells when on that day.
            # Not datetime.fromisoformat: what it accepts differs between Python 3.10 and 3.11.
            try:
                return datetime.date.fromisoformat(text[:10])
            except ValueError:
                pass
        raise self.fail(
            name,
            f"is not an ISO date (YYYY-MM-DD); got {_show(text)}.",
            "Write the date from the 'Expires' column of the app's 'Certificates & secrets' page as YYYY-MM-DD, "
            "e.g. 2027-03-01, or remove the key.",
            step=STEP_SECRET,
        )


# ----------------------------------------------------------------------------------- helpers


def _strip(value: str) -> str:
    """Remove surrounding whitespace and the invisible characters a copy from a web page adds."""
    return value.strip().strip(_EDGE_JUNK).strip()


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not _strip(value))


def _comparable(value: object) -> object:
    """Plain and prefixed values compare equal when they differ only by surrounding whitespace."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _strip(value)
    return value


def _key(key: str) -> str:
    """An extra key for a message: in backticks when short and plain, else escaped and cut."""
    return f"`{key}`" if key.isprintable() and len(key) <= 40 else _show(key)


def _base_name(key: str) -> str:
    return key[len(EXTRA_PREFIX) :] if key.startswith(EXTRA_PREFIX) else key


def _json_type(value: object) -> str:
    """What the user typed, in JSON words (the value itself may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, int):
        return "a number (int)"
    if isinstance(value, float):
        return "a number with a fraction (float)"
    if isinstance(value, Mapping):
        return "an object (dict)"
    if isinstance(value, (list, tuple)):
        return "an array (list)"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _decode_json(text: str) -> tuple[object, str | None, str | None]:
    """``(value, where it stops being JSON, first key found twice in one object)``.

    The decode error is reduced to its position and not kept: it carries the whole document,
    secrets included. Duplicate keys are reported because ``json.loads`` silently keeps the last.
    """
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                duplicates.append(key)
            seen.add(key)
        return dict(pairs)

    try:
        value = json.loads(text, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno}, column {exc.colno}: {exc.msg}", None
    except (ValueError, RecursionError):
        return None, "it cannot be decoded", None
    return value, None, duplicates[0] if duplicates else None


def _is_control(ch: str) -> bool:
    """Control, format (zero-width, bidi), separator or unassigned characters."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")


def _describe_char(ch: str) -> str:
    if ch in "\r\n\u2028\u2029\x85\v\f":
        return "a line break"
    if ch == "\t":
        return "a tab"
    if ch.isspace():
        return "a space"
    return f"an invisible control character (U+{ord(ch):04X})"


def _missing_remedy(name: str) -> str:
    if name == "client_id":
        return "Fill the Login / Client ID field with the app's 'Application (client) ID'."
    if name == "client_secret":
        return "Fill the Password / Client Secret field with the client secret's Value."
    return f"Add `{name}` to Extra (the {FIELD_LABELS[name]} field of the connection form)."


def _id_remedy(name: str) -> str:
    param = _URL_PARAM[name]
    return (
        f"Open the account in Microsoft Advertising and copy the number after `{param}=` in the address bar into "
        f"{FIELD_LABELS[name]}, e.g. {'180535609' if name == 'account_id' else '251186883'}."
    )


_PARAM_RE = re.compile(r"(?:^|[?&#;/])(aid|cid)=([0-9]{1,20})", re.IGNORECASE)


def _url_param_values(text: str) -> dict[str, str]:
    """``aid``/``cid`` numbers in a pasted URL or query string (ids are not secret: we may show them)."""
    found: dict[str, str] = {}
    for param, number in _PARAM_RE.findall(text):
        found.setdefault(param.lower(), number)
    return found


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
    parser = _Parser(str(conn_id) if conn_id is not None else "")
    if conn_type is not None and conn_type != "" and conn_type != CONN_TYPE:
        raise parser.fail(
            "conn_type",
            f"is {_show(conn_type)}, but this hook reads connections of type {CONN_TYPE!r}.",
            f"Set the connection type to {CONN_TYPE} (Microsoft Advertising).",
        )
    raw = parser.extra_mapping(extra)
    parser.check_keys(raw)

    client_id = parser.client_id(login)
    client_secret = parser.client_secret(password, client_id)
    developer_token = parser.developer_token(parser.pick(raw, "developer_token"), client_secret)
    refresh_token = parser.refresh_token(parser.pick(raw, "refresh_token"), client_secret, developer_token)
    customer_id = parser.account_or_customer_id("customer_id", parser.pick(raw, "customer_id"))
    account_id = parser.account_or_customer_id("account_id", parser.pick(raw, "account_id"))

    options = {name: parser.pick(raw, name) for name in _OPTION_ORDER}
    environment = parser.environment(options["environment"])
    tenant = parser.tenant(options["tenant"], client_id)
    urls = {name: parser.url(name, options[name]) for name in _URL_FIELDS}
    expires_on = parser.expiry(options["client_secret_expires_on"])

    credentials = MicrosoftAdsCredentials(
        conn_id=parser.conn_id,
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
        notes=tuple(parser.notes),
        reporting_url=urls["reporting_url"],
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
