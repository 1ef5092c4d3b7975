"""The checks every value of an ``msads`` connection goes through, one function per field.

Each check exists because users paste the wrong thing (the secret's ID instead of its value, the
account *number* instead of the numeric id, an access token instead of a refresh token, a value in
quotes or with a trailing newline) and Microsoft then answers with an error that names none of it.
The rules, and the order in which they are applied, are listed in docs/validation.md; messages are
built from our own sentences, labels and type names, never from a secret value.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from airflow_provider_msads.connection.endpoints import ENVIRONMENTS, check_url
from airflow_provider_msads.connection.fields import (
    FIELD_LABELS,
    FIELD_STEPS,
    ID_FIELDS,
    MAX_LENGTHS,
    URL_PARAM,
)
from airflow_provider_msads.errors import CredentialsError
from airflow_provider_msads.errors.catalogue import STEP_SECRET

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


def label(name: str) -> str:
    return f"{FIELD_LABELS.get(name, name)} (`{name}`)"


def show(value: object) -> str:
    """A NON-secret value for a message: repr (so line breaks show escaped), cut to 40 chars."""
    text = str(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


@dataclass
class Parse:
    """One parse of one connection: the connection id for messages, and the notes it collects."""

    conn_id: str
    notes: list[str] = field(default_factory=list)

    def fail(self, name: str, problem: str, remedy: str, *, step: str | None = None) -> CredentialsError:
        """The one error of this parse: "Connection `x`: Label (`key`) <problem>"."""
        return CredentialsError(
            f"Connection {show(self.conn_id)}: {label(name)} {problem}",
            field=name,
            remedy=remedy,
            step=step if step is not None else FIELD_STEPS.get(name),
        )

    def note(self, name: str, what: str) -> None:
        self.notes.append(f"{what} {label(name)}.")


# -- the checks every value goes through


def required(p: Parse, name: str, value: object) -> str:
    """:meth:`text` for a field the connection must have."""
    text = as_text(p, name, value)
    if text is None:
        raise p.fail(name, "is missing.", _missing_remedy(name))
    return text


def as_text(p: Parse, name: str, value: object) -> str | None:
    """Type, surrounding whitespace, emptiness and length: the checks shared by every field."""
    if is_empty(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and name in ID_FIELDS:
        value = str(value)
    if not isinstance(value, str):
        kind = json_type(value)
        accepted = "a string of digits or a whole number" if name in ID_FIELDS else "a string"
        raise p.fail(
            name,
            f"must be {accepted}, but the connection holds {kind}.",
            f"Enter {FIELD_LABELS.get(name, name)} as {accepted}.",
        )
    stripped = strip_edges(value)
    if stripped != value:
        p.note(name, "Stripped whitespace around")
    if name == "client_id" and len(stripped) == 38 and stripped[0] == "{" and stripped[-1] == "}":
        stripped = stripped[1:-1]
        p.note(name, "Removed the braces around")
    limit = _PASTE_LIMIT if name in ID_FIELDS else MAX_LENGTHS[name]
    if len(stripped) > limit:
        raise p.fail(
            name,
            f"is too long: {len(stripped)} characters, at most {limit} are accepted.",
            f"Paste {FIELD_LABELS.get(name, name)} alone, nothing before or after it.",
        )
    return stripped


def characters(p: Parse, name: str, value: str, *, inside: bool = True) -> None:
    """No quotes at the ends, no whitespace or control characters inside (unless ``inside=False``)."""
    first, last = value[0] in _QUOTES, value[-1] in _QUOTES
    if first or last:
        where = "is wrapped in quotes" if first and last and len(value) > 1 else "has a stray quote at one end"
        raise p.fail(
            name,
            f"{where}; quotes are never part of the value.",
            "Remove the quotes and paste the bare value; if it was copied from a shell command or JSON, "
            "copy it again from its source, since other characters may be escaped too.",
        )
    bad = next((ch for ch in value if ch.isspace() or _is_control(ch)), None)
    if bad is not None and inside:
        raise p.fail(
            name,
            f"contains {_describe_char(bad)} inside the value; a line break, tab, space or control character "
            "cannot be part of it.",
            "Paste the value again as one unbroken piece.",
        )


def printable_ascii(p: Parse, name: str, value: str) -> None:
    """Secrets are printable ASCII; anything else is a look-alike from a document or chat."""
    if not all("!" <= ch <= "~" for ch in value):
        raise p.fail(
            name,
            "contains a non-ASCII character (e.g. a typographic dash or a look-alike letter).",
            "Copy the value again straight from its source, not through a document or a chat.",
        )


# -- the fields


def client_id(p: Parse, value: object) -> str:
    text = required(p, "client_id", value)
    characters(p, "client_id", text)
    if not _GUID.fullmatch(text):
        raise p.fail(
            "client_id",
            f"must be the Application (client) ID GUID from the app's overview page, like "
            f"00000000-0000-0000-0000-000000000000; got {show(text)}.",
            "Open the app registration in the Azure portal and copy 'Application (client) ID' (not the Object "
            "ID, not the Directory (tenant) ID) into the Login / Client ID field.",
        )
    if text != text.lower():
        p.note("client_id", "Lower-cased")
    return text.lower()


def client_secret(p: Parse, value: object, client_id: str) -> str:
    text = required(p, "client_secret", value)
    characters(p, "client_secret", text)
    printable_ascii(p, "client_secret", text)
    if _GUID.fullmatch(text):
        same = " It is even the same as the Client ID." if text.lower() == client_id else ""
        raise p.fail(
            "client_secret",
            f"looks like the secret's Secret ID (a GUID), not its Value.{same}",
            "Put the secret's Value into the Password / Client Secret field. The Value is shown only right "
            "after the secret is created; if it is gone, add a new client secret and copy its Value at once.",
        )
    return text


def developer_token(p: Parse, value: object, client_secret: str) -> str:
    text = required(p, "developer_token", value)
    characters(p, "developer_token", text)
    printable_ascii(p, "developer_token", text)
    if text == client_secret:
        raise p.fail(
            "developer_token",
            "holds the same value as Client Secret.",
            "Copy the developer token from Microsoft Advertising's developer settings.",
        )
    return text


def refresh_token(p: Parse, value: object, client_secret: str, developer_token: str) -> str:
    name = "refresh_token"
    text = required(p, name, value)
    access = "holds an access token, not a refresh token"
    remedy_access = (
        "Use the `refresh_token` of the token answer, not its `access_token` (an access token lives about an "
        "hour), or run `msads-authorize`."
    )
    # Before the generic character checks: these shapes contain spaces or quotes, and the
    # specific message is the useful one.
    if _BEARER.match(text):
        raise p.fail(name, f"{access} (it starts with 'Bearer').", remedy_access)
    if text.startswith("{") and "refresh_token" in text:
        raise p.fail(
            name,
            "holds a whole JSON token answer.",
            "Copy only the value of its `refresh_token` key, without the quotes.",
        )
    if "code=" in text or "://" in text:
        raise p.fail(
            name,
            "holds a URL (the redirect after sign-in?), not a refresh token.",
            "The `code` in the redirect URL must first be exchanged for tokens; `msads-authorize` does "
            "both steps and prints the refresh token.",
        )
    characters(p, name, text)
    printable_ascii(p, name, text)
    if _JWT.fullmatch(text):
        raise p.fail(name, f"{access} (a JWT starting with 'eyJ').", remedy_access)
    if _AUTH_CODE.fullmatch(text):
        raise p.fail(
            name,
            "looks like an authorization code, not a refresh token.",
            "Exchange the code for tokens (it is valid for minutes and only once) and paste the "
            "`refresh_token` of the answer; `msads-authorize` does both steps.",
        )
    if len(text) < 20:
        raise p.fail(
            name,
            f"looks truncated: {len(text)} characters, while refresh tokens are hundreds long.",
            "Paste the whole refresh token again, nothing cut off.",
        )
    if text in (client_secret, developer_token):
        other = "Client Secret" if text == client_secret else "Developer Token"
        raise p.fail(
            name,
            f"holds the same value as {other}.",
            "Put the `refresh_token` of the token answer (or what `msads-authorize` prints) into Refresh Token.",
        )
    return text


def account_or_customer_id(p: Parse, name: str, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        raise p.fail(
            name,
            f"must be a positive whole number (digits only); got {show(value)}.",
            _id_remedy(name),
        )
    text = required(p, name, value)
    param = URL_PARAM[name]
    found = _url_param_values(text)
    if found or "://" in text or text.lower().startswith(("ui.ads.", "ads.microsoft.")):
        if param in found:
            raise p.fail(
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
        raise p.fail(
            name,
            f"holds a URL, not the number after `{param}=`.{hint}",
            f"Open the account in Microsoft Advertising and copy the number after `{param}=` in the address bar.",
        )
    characters(p, name, text)
    if _DIGITS.fullmatch(text):
        digits = text.lstrip("0")
        if len(text) > MAX_LENGTHS[name] or len(digits) > 19:
            raise p.fail(
                name,
                f"has {len(text)} digits; Microsoft Advertising ids are 64-bit numbers of at most 19 digits "
                f"(got {show(text)}).",
                _id_remedy(name),
            )
        if int(digits or "0") > _MAX_ID:
            raise p.fail(
                name,
                f"is larger than any 64-bit id (at most {_MAX_ID}); got {show(text)}.",
                _id_remedy(name),
            )
        if not digits:
            raise p.fail(name, f"must be a positive number, not zero (got {show(text)}).", _id_remedy(name))
        if digits != text:
            p.note(name, "Removed leading zeros from")
        return digits
    if _ACCOUNT_NUMBER.fullmatch(text):
        raise p.fail(
            name,
            f"looks like an account *number* (like F1234ABC), got {show(text)}; the numeric "
            f"{FIELD_LABELS[name]} is needed.",
            f"Use the numeric id from the `{param}=` ({FIELD_LABELS[name]}) parameter of the Microsoft "
            "Advertising URL, not the number shown next to the account's name.",
        )
    raise p.fail(name, f"must be a positive whole number, digits only; got {show(text)}.", _id_remedy(name))


def environment(p: Parse, value: object) -> str:
    text = as_text(p, "environment", value)
    if text is None:
        return "production"
    characters(p, "environment", text)
    lowered = text.lower()
    if lowered not in ENVIRONMENTS:
        raise p.fail(
            "environment",
            f"must be one of {', '.join(ENVIRONMENTS)}; got {show(text)}.",
            "Leave it empty or write production for live accounts; write sandbox only for accounts and a "
            "developer token of Microsoft Advertising's sandbox.",
        )
    if lowered != text:
        p.note("environment", "Lower-cased")
    return lowered


def tenant(p: Parse, value: object, client_id: str) -> str:
    text = as_text(p, "tenant", value)
    if text is None:
        return "common"
    characters(p, "tenant", text)
    lowered = text.lower()
    if lowered in _TENANT_ALIASES or _GUID.fullmatch(text) or _DOMAIN.fullmatch(text):
        if lowered == client_id:
            raise p.fail(
                "tenant",
                "is the Client ID; the tenant is the app's Directory (tenant) ID, a different GUID.",
                "Leave Tenant empty (common) for a multitenant app, or copy 'Directory (tenant) ID' from the "
                "app's overview page.",
            )
        if lowered != text:
            p.note("tenant", "Lower-cased")
        return lowered
    raise p.fail(
        "tenant",
        f"must be common, organizations, consumers, a directory (tenant) ID GUID or a domain like "
        f"contoso.onmicrosoft.com; got {show(text)}.",
        "Leave Tenant empty for common (the app must then accept accounts in any directory and personal "
        "accounts), or give the 'Directory (tenant) ID' from the app's overview page.",
    )


def url(p: Parse, name: str, value: object) -> str | None:
    text = as_text(p, name, value)
    if text is None:
        return None
    characters(p, name, text)
    return check_url(text, name)  # EndpointError names the field and the rule


def expiry(p: Parse, value: object) -> datetime.date | None:
    name = "client_secret_expires_on"
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = as_text(p, name, value)
    if text is None:
        return None
    characters(p, name, text, inside=False)  # the patterns below allow exactly one space
    if _ISO_DATE.fullmatch(text[:10]) and (len(text) == 10 or _ISO_DATETIME.fullmatch(text)):
        # The date as written; the time (checked by the pattern) only tells when on that day.
        # Not datetime.fromisoformat: what it accepts differs between Python 3.10 and 3.11.
        try:
            return datetime.date.fromisoformat(text[:10])
        except ValueError:
            pass
    raise p.fail(
        name,
        f"is not an ISO date (YYYY-MM-DD); got {show(text)}.",
        "Write the date from the 'Expires' column of the app's 'Certificates & secrets' page as YYYY-MM-DD, "
        "e.g. 2027-03-01, or remove the key.",
        step=STEP_SECRET,
    )


def strip_edges(value: str) -> str:
    """Remove surrounding whitespace and the invisible characters a copy from a web page adds."""
    return value.strip().strip(_EDGE_JUNK).strip()


def is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not strip_edges(value))


def json_type(value: object) -> str:
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
    param = URL_PARAM[name]
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
