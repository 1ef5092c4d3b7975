"""The credentials report: one verdict per credential, warnings, and how it reads for a person.

What :mod:`validation` builds and the hook, operator, sensor, trigger and health check hand on
(XCom, logs, the Test button). It holds no secret by construction: ids, names, timestamps, error
codes and this package's own sentences only.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_msads.connection.fields import FIELD_LABELS
from airflow_provider_msads.errors import format_support_ids

#: The six credentials, in the order a human fixes them (the order of the credentials guide).
CREDENTIAL_FIELDS: tuple[str, ...] = (
    "client_id",
    "client_secret",
    "refresh_token",
    "developer_token",
    "customer_id",
    "account_id",
)
LABELS: dict[str, str] = {name: FIELD_LABELS[name] for name in CREDENTIAL_FIELDS}

OK = "ok"
WARNING = "warning"
FAILED = "failed"
UNVERIFIED = "unverified"


_STATUS_WORDS = {OK: "OK", WARNING: "WARNING", FAILED: "FAILED", UNVERIFIED: "NOT VERIFIED"}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _human_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Verdict:
    """The answer for one credential: ok, warning, failed (proven wrong) or unverified."""

    field: str
    status: str
    message: str
    checked_by: str
    #: The setup step (credentials guide) to redo; set on failures.
    step: str | None = None
    remedy: str | None = None
    codes: tuple[int | str, ...] = ()
    #: Trace / correlation / tracking ids for Microsoft support (not secrets).
    support_ids: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return LABELS.get(self.field, self.field)

    @property
    def passed(self) -> bool:
        return self.status in (OK, WARNING)

    def describe(self) -> str:
        """One line: label, status, what happened, and for failures the fix and the step."""
        if self.status == FAILED:
            text = f"{self.label} check failed: {self.message}"
            if self.remedy:
                text += f" Fix: {self.remedy}"
            if self.step:
                text += f" Redo: {self.step}."
        else:
            text = f"{self.label}: {_STATUS_WORDS.get(self.status, self.status)} - {self.message}"
        if self.support_ids:
            text += " " + format_support_ids(self.support_ids)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "label": self.label,
            "status": self.status,
            "message": self.message,
            "checked_by": self.checked_by,
            "step": self.step,
            "remedy": self.remedy,
            "codes": list(self.codes),
            "support_ids": dict(self.support_ids),
        }


@dataclass(frozen=True)
class ReportWarning:
    """Not a failure yet, but a person should act before it becomes one."""

    code: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class CredentialsReport:
    """The outcome of one validation; :meth:`to_dict` is JSON-safe and free of secrets."""

    conn_id: str
    checked_at: float
    verdicts: tuple[Verdict, ...]
    warnings: tuple[ReportWarning, ...] = ()
    connection: Mapping[str, Any] | None = None
    user: Mapping[str, Any] | None = None
    account: Mapping[str, Any] | None = None
    access_token_expires_at: float | None = None
    refresh_token_rotated_at: float | None = None
    refresh_token_rotated: bool = False
    notes: tuple[str, ...] = ()
    #: The error that stopped the check (``MicrosoftAdsError.to_dict()`` shape), if any.
    error: Mapping[str, Any] | None = None

    # -- verdict queries --------------------------------------------------------------------

    def verdict(self, field_name: str) -> Verdict:
        return next(v for v in self.verdicts if v.field == field_name)

    @property
    def ok(self) -> bool:
        """Every credential proven (warnings allowed) and nothing stopped the check."""
        return self.error is None and all(v.passed for v in self.verdicts)

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.status == FAILED)

    @property
    def retryable(self) -> bool:
        """Not proven wrong, only not checked for a transient reason: retrying can help."""
        if self.ok or self.failed:
            return False
        return bool(self.error and self.error.get("retryable"))

    @property
    def permanent(self) -> bool:
        """A failure that retrying cannot fix: a person must change the connection."""
        return not self.ok and not self.retryable

    # -- text -------------------------------------------------------------------------------

    def failure_message(self) -> str:
        """The verdict that failed (or why nothing could be checked), with its fix and setup step."""
        if self.ok:
            return ""
        if self.failed:
            first = self.failed[0]
            text = first.describe()
            if len(self.failed) > 1:
                text += " Also failed: " + ", ".join(v.label for v in self.failed[1:]) + "."
            return text
        error = self.error or {}
        kind = "transient, retrying may help" if self.retryable else "not a credential verdict"
        text = f"Could not validate ({kind}): {error.get('message') or 'unknown error'}"
        if error.get("remedy"):
            text += f" Fix: {error['remedy']}"
        if error.get("step"):
            text += f" Redo: {error['step']}."
        ids = [
            f"{name.replace('_', ' ')} {error[name]}"
            for name in ("trace_id", "correlation_id", "tracking_id")
            if error.get(name)
        ]
        if ids:
            text += " (" + ", ".join(ids) + ")"
        return text

    def summary(self, *, with_conn_id: bool = True) -> str:
        """One line for ``test_connection``, logs and the health-check summary."""
        prefix = f"{self.conn_id}: " if with_conn_id else ""
        if not self.ok:
            return prefix + self.failure_message()
        parts: list[str] = []
        if self.user:
            parts.append(f"user {self.user.get('user_name') or '?'} (id {self.user.get('id') or '?'})")
        if self.account:
            parts.append(
                f"account {self.account.get('name')!r} {self.account.get('number') or ''} "
                f"(id {self.account.get('id')}, {self.account.get('status')}) "
                f"under customer {self.account.get('parent_customer_id')}".replace("  ", " ")
            )
        if self.access_token_expires_at is not None:
            parts.append(f"access token valid until {_human_time(self.access_token_expires_at)}")
        if self.refresh_token_rotated:
            parts.append("refresh token rotated")
        elif self.refresh_token_rotated_at is not None:
            parts.append(f"refresh token last rotated {_human_time(self.refresh_token_rotated_at)}")
        text = prefix + "OK - credentials valid; " + "; ".join(parts) + "."
        if self.warnings:
            text += " Warnings: " + " ".join(w.message for w in self.warnings)
        return text

    def lines(self) -> list[str]:
        """The summary, then one line per verdict and warning (for task logs)."""
        out = [self.summary()]
        out += [f"  {v.describe()}" for v in self.verdicts]
        out += [f"  warning [{w.code}]: {w.message}" for w in self.warnings]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "ok": self.ok,
            "retryable": self.retryable,
            "checked_at": _iso(self.checked_at),
            "summary": self.summary(),
            "verdicts": {v.field: v.to_dict() for v in self.verdicts},
            "warnings": [w.to_dict() for w in self.warnings],
            "connection": dict(self.connection) if self.connection is not None else None,
            "user": dict(self.user) if self.user is not None else None,
            "account": dict(self.account) if self.account is not None else None,
            "access_token_expires_at": _iso(self.access_token_expires_at),
            "refresh_token_rotated_at": _iso(self.refresh_token_rotated_at),
            "refresh_token_rotated": self.refresh_token_rotated,
            "notes": list(self.notes),
            "error": dict(self.error) if self.error is not None else None,
        }
