"""Reading a connection's Extra: a mapping or JSON text, its keys, and each value's plain or prefixed key.

Airflow stores Extra as JSON text typed by hand or pasted from docs; both old (``extra__msads__x``)
and plain keys exist in the wild. Mistakes here (a typo in a key, a secret in Extra instead of the
Password field, a key given twice) otherwise surface as "field missing" much later.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_msads.connection.checks import Parse, is_empty, json_type, label, show, strip_edges
from airflow_provider_msads.connection.fields import EXTRA_PREFIX, FIELD_LABELS, KNOWN_EXTRAS
from airflow_provider_msads.errors import CredentialsError
from airflow_provider_msads.errors.catalogue import STEP_SECRET


def extra_mapping(p: Parse, extra: object) -> dict[str, object]:
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
            raise p.fail(
                "extra",
                f"is not valid JSON ({position}).",
                'Write Extra as one JSON object, e.g. {"account_id": "180535609", "customer_id": "251186883", '
                '"developer_token": "…", "refresh_token": "…"}, with double quotes around keys and values.',
            )
        if duplicate is not None:
            raise p.fail(
                "extra",
                f"has the key `{duplicate[:40]}` more than once.",
                f"Keep one `{duplicate[:40]}` in Extra.",
            )
        extra = decoded
        if extra is None:
            return {}
    if not isinstance(extra, Mapping):
        raise p.fail(
            "extra",
            f"must be a JSON object of keys and values, not {json_type(extra)}.",
            'Write Extra as {"key": "value", …}.',
        )
    return {str(key): value for key, value in extra.items()}


def check_keys(p: Parse, raw: Mapping[str, object]) -> None:
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
        raise CredentialsError(
            f"Connection {show(p.conn_id)}: Extra has the key {shown}, but {label(target)} belongs in "
            f"the connection's {where} field, not in Extra.{others}",
            field=key[:60],
            remedy=f"Move the value into the {where} field ({FIELD_LABELS[target]}) and remove {shown} from Extra.",
            step=STEP_SECRET,
        )
    close = difflib.get_close_matches(base, sorted(KNOWN_EXTRAS), n=1, cutoff=0.6)
    hint = ""
    if close:
        suggestion = close[0] if key == base else EXTRA_PREFIX + close[0]
        hint = f" Did you mean `{suggestion}`?"
    raise CredentialsError(
        f"Connection {show(p.conn_id)}: Extra has an unknown key {shown}.{hint}{others}",
        field=key[:60],
        remedy=f"Rename or remove it. Known keys: {known} (each also as {EXTRA_PREFIX}<key>).",
    )


def pick(p: Parse, raw: Mapping[str, object], name: str) -> object:
    """The value of ``name`` from its plain or prefixed key; two different values are an error."""
    plain = raw.get(name)
    prefixed = raw.get(EXTRA_PREFIX + name)
    if is_empty(plain):
        return None if is_empty(prefixed) else prefixed
    if is_empty(prefixed):
        return plain
    if _comparable(plain) != _comparable(prefixed):
        raise p.fail(
            name,
            f"is set twice with different values, as `{name}` and as `{EXTRA_PREFIX}{name}`.",
            f"Remove `{EXTRA_PREFIX}{name}` from Extra (an older form of the key) and keep the correct value "
            f"in `{name}`.",
        )
    p.note(name, f"Ignored the duplicate `{EXTRA_PREFIX}{name}` (same value) of")
    return plain


def _comparable(value: object) -> object:
    """Plain and prefixed values compare equal when they differ only by surrounding whitespace."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return strip_edges(value)
    return value


def _key(key: str) -> str:
    """An extra key for a message: in backticks when short and plain, else escaped and cut."""
    return f"`{key}`" if key.isprintable() and len(key) <= 40 else show(key)


def _base_name(key: str) -> str:
    return key[len(EXTRA_PREFIX) :] if key.startswith(EXTRA_PREFIX) else key


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
