"""Is this connection good enough to ingest with? One report, one verdict per credential.

A credential check is three calls: a token refresh (proves client id, client secret and refresh
token), GetUser (proves the developer token; lists the customers the user has roles in) and
GetAccount (proves the account id, its parent customer and that it is Active). Each answer - or
each error from :mod:`errors` - becomes a :class:`Verdict` on the credential it proves, so a person
reading the report at 3 a.m. sees *which* field is wrong and *which setup step* to redo.

Like :mod:`_flow`, the logic is written once as a generator: :func:`validation_flow` yields
:class:`Check` objects ("connection", "token", "GetUser", "GetAccount") and receives their results
(or has their exceptions thrown in). :func:`run_validation` and :func:`arun_validation` perform
the checks with callables the hook supplies, blocking or async, so the sync hook, the async trigger
and the unit tests share every verdict rule.

No Airflow import here, and no I/O: the driver does it. The report holds no secret by construction: it is built
from ids, names, timestamps, error codes and this package's own sentences, never from a token,
a secret or a request body.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_msads.errors import MicrosoftAdsError
from airflow_provider_msads.errors.catalogue import STEP_AUTHORIZE, STEP_IDS, STEP_SECRET
from airflow_provider_msads.tokens.flow import arun_flow, run_flow
from airflow_provider_msads.validation.report import (
    CREDENTIAL_FIELDS,
    FAILED,
    LABELS,
    OK,
    UNVERIFIED,
    WARNING,
    CredentialsReport,
    ReportWarning,
    Verdict,
)

if TYPE_CHECKING:
    from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ vocabulary

CHECK_CONNECTION = "connection"
CHECK_TOKEN = "token"
CHECK_GET_USER = "GetUser"
CHECK_GET_ACCOUNT = "GetAccount"
CHECK_ACCOUNTS_INFO = "GetAccountsInfo"

#: Which credentials each check proves.
CHECK_FIELDS: dict[str, tuple[str, ...]] = {
    CHECK_CONNECTION: CREDENTIAL_FIELDS,
    CHECK_TOKEN: ("client_id", "client_secret", "refresh_token"),
    CHECK_GET_USER: ("developer_token",),
    CHECK_GET_ACCOUNT: ("account_id", "customer_id"),
    CHECK_ACCOUNTS_INFO: ("customer_id",),
}
CHECKED_BY: dict[str, str] = {
    "client_id": "token endpoint",
    "client_secret": "token endpoint",
    "refresh_token": "token endpoint",
    "developer_token": "GetUser",
    "customer_id": "GetUser roles / GetAccount ParentCustomerId / GetAccountsInfo",
    "account_id": "GetAccount",
}
#: Error fields that are not credentials, and the credentials whose verdict may carry them (the first
#: one the failing step checks): a wrong tenant shows as a client-id problem, a wrong environment as a
#: refresh-token problem at the token endpoint (scope) and a developer-token one at the API (105).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "tenant": ("client_id",),
    "redirect_uri": ("client_id",),
    "environment": ("refresh_token", "developer_token"),
}

DEFAULT_SECRET_EXPIRY_WARNING_DAYS = 30
DEFAULT_ROTATION_WARNING_DAYS = 30
DAY = 86400.0


def _as_id(value: object) -> str | None:
    """Microsoft writes 64-bit ids as JSON strings; accept numbers too."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, str)):
        text = str(value).strip()
        return text or None
    return None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


# ------------------------------------------------------------------------------------ the checks


@dataclass(frozen=True)
class Check:
    """One thing the driver must do for the flow: read the connection, refresh, or call an operation."""

    name: str
    account_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True)
class TokenOutcome:
    """What a forced refresh revealed; deliberately holds no token, only times and flags."""

    expires_at: float
    refresh_rotated_at: float | None = None
    #: This refresh got a new refresh token from Microsoft (and the store now keeps it).
    rotated: bool = False
    #: The stored rotated token was rejected and the connection's own token worked.
    used_fallback: bool = False
    #: Why the rotated token could not be saved, if it could not.
    persist_error: str | None = None
    #: The store held an entry that could not be used (corrupt, tampered, replayed).
    store_warning: str | None = None
    #: False when the access token was not refreshed for the check (it came with a code exchange).
    refreshed: bool = True


# ------------------------------------------------------------------------------ verdict builder


def _unexpected(check: str, exc: Exception) -> dict[str, Any]:
    """An exception that is not ours: name its type only (its text might quote anything)."""
    not_found = "NotFound" in type(exc).__name__
    if check == CHECK_CONNECTION and not_found:
        return {
            "error": type(exc).__name__,
            "message": "The connection is not defined.",
            "remedy": "Create the msads connection (UI, CLI or AIRFLOW_CONN_<ID> variable) or fix the connection id.",
            "retryable": False,
            "field": None,
            "step": None,
            "codes": [],
        }
    return {
        "error": type(exc).__name__,
        "message": f"Unexpected {type(exc).__name__} during the {check} check.",
        "remedy": "See the task log for the traceback; retried as a transient problem.",
        "retryable": True,
        "field": None,
        "step": None,
        "codes": [],
    }


@dataclass
class _Builder:
    conn_id: str
    now: float
    secret_expiry_warning_days: int
    rotation_warning_days: int
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    warnings: list[ReportWarning] = field(default_factory=list)
    credentials: MicrosoftAdsCredentials | None = None
    user: dict[str, Any] | None = None
    account: dict[str, Any] | None = None
    role_customers: tuple[str, ...] = ()
    #: Account ids the user's roles name per customer (Microsoft lists them for account-level roles).
    role_accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tokens: TokenOutcome | None = None
    error: dict[str, Any] | None = None

    def set(self, name: str, status: str, message: str, **extra: Any) -> None:
        self.verdicts[name] = Verdict(name, status, message, CHECKED_BY[name], **extra)

    # -- failures ---------------------------------------------------------------------------

    def fail(self, check: str, exc: Exception) -> CredentialsReport:
        """Turn an error at ``check`` into verdicts; nothing after it was checked."""
        if isinstance(exc, MicrosoftAdsError):
            self.error = exc.to_dict()
            candidates = (exc.field,) if exc.field in CREDENTIAL_FIELDS else FIELD_ALIASES.get(exc.field or "", ())
            target = next((name for name in candidates if name in CHECK_FIELDS[check]), None)
            if target is not None and not exc.retryable:
                message = exc.message
                if exc.field and exc.field != target:
                    message += f" (option `{exc.field}`)"
                self.set(
                    target,
                    FAILED,
                    message,
                    step=exc.step,
                    remedy=exc.remedy,
                    codes=exc.codes,
                    support_ids=exc.support_ids,
                )
                if check == CHECK_TOKEN and target == "client_secret":
                    # Microsoft found the app to check its secret: the client id is right.
                    self.set("client_id", OK, "The app exists (Microsoft checked its client secret).")
            else:
                reason = exc.message
                for name in CHECK_FIELDS[check]:
                    if name not in self.verdicts:
                        self.set(name, UNVERIFIED, f"Not checked: {reason}", codes=exc.codes)
        else:
            self.error = _unexpected(check, exc)
            if self.error["retryable"]:  # a surprise: keep the traceback for whoever reads the log
                log.warning("Unexpected error during the %s check of %r.", check, self.conn_id, exc_info=True)
        if check == CHECK_GET_ACCOUNT and "customer_id" not in self.verdicts:
            self._customer_without_account()
        return self.finish()

    def _customer_without_account(self) -> None:
        cid = self.credentials.customer_id if self.credentials else None
        if cid and cid in self.role_customers:
            self.set("customer_id", OK, f"The user has a role in customer {cid}.")
        elif cid and self.role_customers:
            self.set(
                "customer_id",
                UNVERIFIED,
                f"The user has no role in customer {cid} (roles in: {', '.join(self.role_customers)}) and the "
                "account could not be read to show its parent customer.",
            )

    # -- successes --------------------------------------------------------------------------

    def connection_ok(self, credentials: MicrosoftAdsCredentials) -> None:
        self.credentials = credentials
        expires = credentials.client_secret_expires_on
        if expires is not None:
            today = datetime.datetime.fromtimestamp(self.now, datetime.timezone.utc).date()
            left = (expires - today).days
            if left < 0:
                self.warnings.append(
                    ReportWarning(
                        "client_secret_expiry_passed",
                        f"client_secret_expires_on ({expires.isoformat()}) is in the past; if the secret still "
                        "works the date is wrong - update it from the app's Certificates & secrets page.",
                        "client_secret",
                    )
                )
            elif left <= self.secret_expiry_warning_days:
                self.warnings.append(
                    ReportWarning(
                        "client_secret_expiring",
                        f"The client secret expires on {expires.isoformat()} (in {left} days): add a new "
                        f"client secret ({STEP_SECRET}) and update Client Secret and client_secret_expires_on "
                        "before then.",
                        "client_secret",
                    )
                )

    def token_ok(self, tokens: TokenOutcome) -> None:
        self.tokens = tokens
        self.set("client_id", OK, "Accepted by the token endpoint.")
        self.set("client_secret", OK, "Accepted by the token endpoint.")
        if not tokens.refreshed:
            message = "Issued just now by the code exchange; not spent by this check, so it is still the newest."
        elif tokens.rotated:
            message = "Accepted; Microsoft issued a new (rotated) refresh token, which keeps the grant alive."
        else:
            message = "Accepted by the token endpoint (no new refresh token was issued)."
        self.set("refresh_token", OK, message)
        if tokens.used_fallback:
            self.warnings.append(
                ReportWarning(
                    "stored_refresh_token_rejected",
                    "The stored (rotated) refresh token was rejected; the connection's own refresh token "
                    "worked instead. Another deployment may share this connection id.",
                    "refresh_token",
                )
            )
        if tokens.store_warning:
            self.warnings.append(
                ReportWarning(
                    "token_store_unreadable",
                    f"{tokens.store_warning[0].upper()}{tokens.store_warning[1:]}. If the connection's own refresh "
                    f"token is over 90 days old it will stop working: authorize again ({STEP_AUTHORIZE}) and save the "
                    "new refresh token in the connection.",
                    "refresh_token",
                )
            )
        if tokens.persist_error:
            self.warnings.append(
                ReportWarning(
                    "token_store_not_saved",
                    f"The rotated refresh token could not be saved ({tokens.persist_error}); fix the token "
                    "store, or the connection's refresh token will expire after 90 days.",
                    "refresh_token",
                )
            )
        if not tokens.rotated:
            rotated_at = tokens.refresh_rotated_at
            if rotated_at is None:
                self.warnings.append(
                    ReportWarning(
                        "refresh_token_not_rotated",
                        "Microsoft did not issue a new refresh token, so the token is not being kept alive; "
                        f"check the scope includes offline_access and authorize again ({STEP_AUTHORIZE}).",
                        "refresh_token",
                    )
                )
            elif self.now - rotated_at > self.rotation_warning_days * DAY:
                days = int((self.now - rotated_at) // DAY)
                self.warnings.append(
                    ReportWarning(
                        "refresh_token_stale",
                        f"The refresh token was last rotated {days} days ago; it dies after 90 days without "
                        "use. Schedule the msads_token_health_check DAG.",
                        "refresh_token",
                    )
                )

    def user_ok(self, answer: Mapping[str, Any]) -> None:
        raw_user, raw_roles = answer.get("User"), answer.get("CustomerRoles")
        user: Mapping[str, Any] = raw_user if isinstance(raw_user, Mapping) else {}
        roles: list[Any] = raw_roles if isinstance(raw_roles, list) else []
        customers = [_as_id(role.get("CustomerId")) for role in roles if isinstance(role, Mapping)]
        for role in roles:
            if not isinstance(role, Mapping) or not (customer := _as_id(role.get("CustomerId"))):
                continue
            named = [*(role.get("AccountIds") or []), *(role.get("LinkedAccountIds") or [])]
            ids = tuple(a for a in (_as_id(x) for x in named if not isinstance(x, (list, dict))) if a)
            self.role_accounts[customer] = self.role_accounts.get(customer, ()) + ids
        own = _as_id(user.get("CustomerId"))
        self.role_customers = tuple(dict.fromkeys(c for c in [*customers, own] if c))
        self.user = {
            "id": _as_id(user.get("Id")),
            "user_name": _text(user.get("UserName")),
            "customer_id": own,
            "customer_ids": list(self.role_customers),
        }
        self.set("developer_token", OK, f"Accepted by GetUser (user {self.user['user_name'] or self.user['id']}).")

    def account_ok(self, answer: Mapping[str, Any]) -> bool:
        """Verdicts from GetAccount; True when the customer link still needs GetAccountsInfo."""
        assert self.credentials is not None
        raw = answer.get("Account")
        account: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        aid = _as_id(account.get("Id")) or self.credentials.account_id
        parent = _as_id(account.get("ParentCustomerId"))
        status = _text(account.get("AccountLifeCycleStatus")) or "Unknown"
        self.account = {
            "id": aid,
            "name": _text(account.get("Name")),
            "number": _text(account.get("Number")),
            "status": status,
            "parent_customer_id": parent,
        }
        name = f"{self.account['name']!r} ({self.account['number'] or aid})"
        if status == "Active":
            self.set("account_id", OK, f"Account {name} is Active.")
        else:
            message = (
                f"Account {name} is {status}, not Active: Microsoft Advertising serves no ads for it and "
                "reports may be empty."
            )
            self.set("account_id", WARNING, message)
            self.warnings.append(ReportWarning("account_not_active", message, "account_id"))
        cid = self.credentials.customer_id
        if parent == cid:
            self.set("customer_id", OK, f"Customer {cid} is the parent customer of account {aid}.")
            return False
        if cid in self.role_customers and aid in self.role_accounts.get(cid, ()):
            self.set(
                "customer_id",
                OK,
                f"The user's role in customer {cid} names account {aid}; its parent customer is {parent} "
                "(managed through this customer).",
            )
            return False
        if cid in self.role_customers:
            return True  # a role in the customer alone does not show that it reaches this account
        self._customer_mismatch(
            cid, aid, parent, f"nor a customer the user has a role in ({', '.join(self.role_customers) or 'none'})"
        )
        return False

    def _customer_mismatch(self, cid: str, aid: str, parent: str | None, why: str) -> None:
        right = parent or "the account's parent customer"
        self.set(
            "customer_id",
            FAILED,
            f"Customer ID {cid} is neither the parent customer of account {aid} ({parent}) {why}.",
            step=STEP_IDS,
            remedy=f"Set Customer ID to {right}, the number after cid= in the Microsoft Advertising URL when "
            f"account {aid} is open.",
        )

    def accounts_info_ok(self, answer: Mapping[str, Any]) -> None:
        """GetAccountsInfo of the connection's customer: does it list the account?"""
        assert self.credentials is not None
        assert self.account is not None
        cid, aid, parent = self.credentials.customer_id, self.account["id"], self.account["parent_customer_id"]
        raw = answer.get("AccountsInfo")
        listed = (
            {_as_id(info.get("Id")) for info in raw if isinstance(info, Mapping)} if isinstance(raw, list) else set()
        )
        if aid in listed:
            self.set(
                "customer_id",
                OK,
                f"Customer {cid} lists account {aid} (GetAccountsInfo); its parent customer is {parent} "
                "(managed through this customer).",
            )
        else:
            self._customer_mismatch(
                cid,
                aid,
                parent,
                f"nor a customer whose accounts include it (customer {cid} lists {len(listed)} other accounts)",
            )

    # -- the report -------------------------------------------------------------------------

    def finish(self) -> CredentialsReport:
        verdicts = tuple(
            self.verdicts.get(name)
            or Verdict(name, UNVERIFIED, "Not checked: an earlier check failed.", CHECKED_BY[name])
            for name in CREDENTIAL_FIELDS
        )
        tokens = self.tokens
        return CredentialsReport(
            conn_id=self.conn_id,
            checked_at=self.now,
            verdicts=verdicts,
            warnings=tuple(self.warnings),
            connection=self.credentials.public_dict() if self.credentials else None,
            user=self.user,
            account=self.account,
            access_token_expires_at=tokens.expires_at if tokens else None,
            refresh_token_rotated_at=tokens.refresh_rotated_at if tokens else None,
            refresh_token_rotated=tokens.rotated if tokens else False,
            notes=tuple(self.credentials.notes) if self.credentials else (),
            error=self.error,
        )


ValidationFlow = Generator[Check, Any, CredentialsReport]


def validation_flow(
    conn_id: str,
    *,
    clock: Callable[[], float] = time.time,
    secret_expiry_warning_days: int = DEFAULT_SECRET_EXPIRY_WARNING_DAYS,
    rotation_warning_days: int = DEFAULT_ROTATION_WARNING_DAYS,
) -> ValidationFlow:
    """Read the connection, refresh, GetUser, GetAccount; each answer or error becomes verdicts.

    The driver answers :class:`Check` ``connection`` with :class:`MicrosoftAdsCredentials`,
    ``token`` with a :class:`TokenOutcome` (after a *forced* refresh: a cached access token proves
    neither the secret nor the refresh token, and refreshing is what keeps the refresh token alive),
    ``GetUser``/``GetAccount`` with the operation's JSON answer; or throws the check's exception in.
    """
    b = _Builder(conn_id, clock(), secret_expiry_warning_days, rotation_warning_days)
    try:
        credentials = yield from _ask(b, Check(CHECK_CONNECTION))
        b.connection_ok(credentials)
        b.token_ok((yield from _ask(b, Check(CHECK_TOKEN))))
        b.user_ok((yield from _ask(b, Check(CHECK_GET_USER))))
        account = yield from _ask(b, Check(CHECK_GET_ACCOUNT, account_id=credentials.account_id))
        if b.account_ok(account):
            b.accounts_info_ok((yield from _ask(b, Check(CHECK_ACCOUNTS_INFO, customer_id=credentials.customer_id))))
    except _Failed as failed:
        return failed.report
    return b.finish()


class _Failed(Exception):
    """A check failed: carries the report that says so (nothing after that check is asked)."""

    def __init__(self, report: CredentialsReport) -> None:
        super().__init__(report)
        self.report = report


def _ask(b: _Builder, check: Check) -> Generator[Check, Any, Any]:
    """The driver's answer to ``check``; the exception it throws in becomes the failing report."""
    try:
        return (yield check)
    except Exception as exc:
        raise _Failed(b.fail(check.name, exc)) from exc


def run_validation(flow: ValidationFlow, perform: Callable[[Check], Any]) -> CredentialsReport:
    """Drive ``flow`` with a blocking ``perform(check)``."""
    return run_flow(flow, perform)


async def arun_validation(flow: ValidationFlow, perform: Callable[[Check], Awaitable[Any]]) -> CredentialsReport:
    """Drive ``flow`` with an async ``perform(check)`` (the triggerer's event loop never blocks here)."""
    return await arun_flow(flow, perform)


__all__ = [
    "CHECK_ACCOUNTS_INFO",
    "CHECK_CONNECTION",
    "CHECK_GET_ACCOUNT",
    "CHECK_GET_USER",
    "CHECK_TOKEN",
    "CREDENTIAL_FIELDS",
    "FAILED",
    "LABELS",
    "OK",
    "UNVERIFIED",
    "WARNING",
    "Check",
    "CredentialsReport",
    "ReportWarning",
    "TokenOutcome",
    "Verdict",
    "arun_validation",
    "run_validation",
    "validation_flow",
]
