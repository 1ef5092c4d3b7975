"""HTML of the plugin's pages: plain server-rendered forms, every value escaped, no script.

No script and no third-party asset, so the Content-Security-Policy can forbid both; every value
that comes from a user or from Microsoft (connection ids, error texts) goes through :func:`e`.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["HEADERS", "e", "page"]

#: Sent with every page: nothing cached, no referrer (the callback URL held a code), no script.
HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'self'",
}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:62em;margin:2em auto;padding:0 1em;line-height:1.45;color:#1b1b1b}
h1{font-size:1.45em}h2{font-size:1.15em;margin-top:1.8em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:.35em .5em;text-align:left;vertical-align:top;font-size:.93em}
th{background:#f2f4f7}.ok{color:#11662b;font-weight:600}.warning{color:#8a5a00;font-weight:600}
.failed{color:#a4161a;font-weight:600}.unverified{color:#555;font-weight:600}
.box{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}.error{border-color:#a4161a;background:#fff5f5}
button{padding:.4em 1em;font-size:1em;cursor:pointer}label{display:block;margin:.4em 0}
input,select{font-size:1em;padding:.2em}.muted{color:#555;font-size:.9em}nav a{margin-right:1.2em}
"""


def e(value: Any) -> str:
    """Escaped text of ``value`` for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, prefix: str, home: str = "/") -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="referrer" content="no-referrer"><title>{e(title)}</title><style>{_STYLE}</style></head>'
        f'<body><nav><a href="{e(prefix)}/">Authorize with Microsoft</a><a href="{e(prefix)}/health">Token health</a>'
        f'<a href="{e(home)}">Back to Airflow</a></nav><h1>{e(title)}</h1>{body}</body></html>'
    )


def when(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">'


def options(values: Iterable[str], selected: str | None = None) -> str:
    return "".join(f'<option value="{e(v)}"{" selected" if v == selected else ""}>{e(v)}</option>' for v in values)


def verdict_table(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """One row per credential: label, status, message (and fix); Microsoft's texts escaped."""
    rows = []
    for v in verdicts:
        status = str(v.get("status", ""))
        text = str(v.get("message") or "")
        if v.get("remedy") and status == "failed":
            text += f" Fix: {v['remedy']}"
        if v.get("step") and status == "failed":
            text += f" Redo: {v['step']}."
        rows.append(
            f'<tr data-field="{e(v.get("field"))}"><td>{e(v.get("label") or v.get("field"))}</td>'
            f'<td class="{e(status)}">{e(status)}</td><td>{e(text)}</td></tr>'
        )
    return "<table><tr><th>Credential</th><th>Verdict</th><th>Details</th></tr>" + "".join(rows) + "</table>"
