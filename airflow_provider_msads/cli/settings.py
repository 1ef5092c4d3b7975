"""What the run works with: the options, the environment variables, the answers, checked offline.

Every value is checked with the connection parser
(:func:`~airflow_provider_msads.connection.credentials.parse_credentials`)
before anyone signs in, so a secret's ID pasted for its value or an account *number* for the id
is caught while the user is still at the prompt, not after the code was spent.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any, NoReturn

from airflow_provider_msads.cli.catcher import DEFAULT_TIMEOUT
from airflow_provider_msads.cli.console import AlreadyExplained, Console, UsageError
from airflow_provider_msads.cli.output import OUTPUT_FORMS, connection_document
from airflow_provider_msads.connection.credentials import CONN_TYPE, FIELD_LABELS, SECRET_FIELDS, parse_credentials
from airflow_provider_msads.connection.endpoints import ENVIRONMENTS, Endpoints
from airflow_provider_msads.errors import CredentialsError

__all__ = [
    "DEFAULT_CONN_ID",
    "DEFAULT_REDIRECT_URI",
    "ENV_VARS",
    "Settings",
    "build_parser",
    "check_settings",
    "settings_from_args",
    "settings_from_connection",
    "settings_of_connection",
]

DEFAULT_REDIRECT_URI = "http://localhost:8080"
DEFAULT_CONN_ID = "msads_default"

#: Environment variables read when the option is not given (keeps secrets out of ``ps`` and history).
ENV_VARS = {
    "client_id": "MSADS_CLIENT_ID",
    "client_secret": "MSADS_CLIENT_SECRET",
    "developer_token": "MSADS_DEVELOPER_TOKEN",
    "customer_id": "MSADS_CUSTOMER_ID",
    "account_id": "MSADS_ACCOUNT_ID",
}
#: Where to find a value, added to its form label when it is asked for.
_WHERE = {
    "client_id": "the app's Application (client) ID",
    "client_secret": "the secret's Value, not its ID",
    "customer_id": "the number after cid= in the Microsoft Advertising URL",
    "account_id": "the number after aid= in the Microsoft Advertising URL",
}
#: The Microsoft Advertising account's values (guide steps 3-4): asked for, but the command can do
#: without them (the connection then names what is missing).
_ACCOUNT_VALUES = ("developer_token", "customer_id", "account_id")
#: The connection's options beyond the app and the ids; given as options, or read from the stored connection.
_OPTIONS = ("environment", "tenant", "token_url", "authorize_url", "customer_management_url")
#: Valid stand-ins for values not known yet, so that ``parse_credentials`` checks the known ones.
_PLACEHOLDERS = {
    "developer_token": "PLACEHOLDERDEVTOKEN0",
    "refresh_token": "placeholder-refresh-token-" + "0" * 40,
    "customer_id": "1",
    "account_id": "1",
}


# ------------------------------------------------------------------------------------ options


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that writes to the console's streams and returns instead of exiting the process."""

    console: Console

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            stream = self.console.stdout if file is None or file is sys.stdout else self.console.stderr
            stream.write(message)
            stream.flush()

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise AlreadyExplained(status)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def build_parser(console: Console | None = None) -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="msads-authorize",
        description="Authorize an app for Microsoft Advertising and get the refresh token (steps 5-6 of the "
        "credentials guide) in one go: it prints the sign-in URL (and opens the browser), catches Microsoft's "
        "redirect on the redirect URI, exchanges the code at once, and saves the connection into Airflow or "
        "prints it.",
        epilog="Secrets may also come from MSADS_CLIENT_ID, MSADS_CLIENT_SECRET, MSADS_DEVELOPER_TOKEN, "
        "MSADS_CUSTOMER_ID and MSADS_ACCOUNT_ID; missing ones are asked for (the secret without echo). Messages and "
        "the URL go to stderr, the --output result to stdout. Exit codes: 0 done, 1 error (explained), 2 usage.",
    )
    parser.console = console or Console.system()
    app = parser.add_argument_group("the app (guide steps 1-2)")
    app.add_argument("--client-id", help="Application (client) ID of the app registration [MSADS_CLIENT_ID]")
    app.add_argument(
        "--client-secret",
        help="the client secret's Value [MSADS_CLIENT_SECRET]; prefer the variable or the prompt (a command line "
        "is visible to other users)",
    )
    app.add_argument("--environment", choices=ENVIRONMENTS, help="production (default) or sandbox")
    app.add_argument("--tenant", help="directory: common (default), organizations, consumers, a tenant id or domain")
    app.add_argument(
        "--redirect-uri",
        default=DEFAULT_REDIRECT_URI,
        help=f"redirect URI registered in the app, platform Web (default {DEFAULT_REDIRECT_URI}); a loopback "
        "address is listened on, bound to loopback only",
    )
    app.add_argument("--authorize-url", help="override of the authorize endpoint (e.g. the emulator)")
    app.add_argument("--token-url", help="override of the token endpoint (e.g. the emulator); saved in the connection")
    app.add_argument(
        "--customer-management-url", help="override of the Customer Management API URL; saved in the connection"
    )
    ads = parser.add_argument_group("the Microsoft Advertising account (guide steps 3-4)")
    ads.add_argument("--developer-token", help="developer token [MSADS_DEVELOPER_TOKEN]")
    ads.add_argument("--customer-id", help="numeric customer id, cid= in the UI's URL [MSADS_CUSTOMER_ID]")
    ads.add_argument("--account-id", help="numeric account id, aid= in the UI's URL [MSADS_ACCOUNT_ID]")
    flow = parser.add_argument_group("sign-in")
    flow.add_argument("--no-browser", action="store_true", help="do not open a browser; only print the URL")
    flow.add_argument(
        "--manual",
        action="store_true",
        help="do not listen: paste the redirected address (or the code) instead; for a busy port or a headless "
        "server over SSH",
    )
    flow.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the redirect (default {DEFAULT_TIMEOUT:.0f})",
    )
    result = parser.add_argument_group("the result")
    where = result.add_mutually_exclusive_group()
    where.add_argument("--save", metavar="CONN_ID", help="save as an Airflow connection in the metastore")
    where.add_argument(
        "--reauthorize",
        metavar="CONN_ID",
        help="renew only the refresh token of this existing metastore connection (app and ids are read from it)",
    )
    result.add_argument(
        "--output",
        choices=OUTPUT_FORMS,
        help="hand the connection over: airflow-cli writes it (with its secrets) to a private file and prints "
        "the `airflow connections import` command that reads it; env and json print an AIRFLOW_CONN_<ID> export "
        "line or the JSON (with the secrets)",
    )
    result.add_argument(
        "--output-file",
        metavar="PATH",
        help="write the --output form (default json) to PATH (0600; for airflow-cli, a .json file to import)",
    )
    result.add_argument(
        "--conn-id",
        help=f"connection id used in the printed forms (default: the --save/--reauthorize id, else {DEFAULT_CONN_ID})",
    )
    result.add_argument("--no-validate", action="store_true", help="do not run the full validation afterwards")
    result.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="ask no questions (replace an existing connection or file, validate); implied when stdin is not a "
        "terminal",
    )
    return parser


# ----------------------------------------------------------------------------------- settings


@dataclass(frozen=True, repr=False, kw_only=True)
class Settings:
    """Everything the flow and the connection need; ``None`` ids mean "not given"."""

    client_id: str
    client_secret: str
    #: Resolved and checked by the connection parser from the options below.
    endpoints: Endpoints = field(compare=False)
    environment: str = "production"
    tenant: str = "common"
    token_url: str | None = None
    authorize_url: str | None = None
    customer_management_url: str | None = None
    developer_token: str | None = None
    customer_id: str | None = None
    account_id: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        return f"Settings(client_id={self.client_id!r}, environment={self.environment!r}, client_secret=***)"

    @property
    def missing(self) -> list[str]:
        return [name for name in _ACCOUNT_VALUES if not getattr(self, name)]

    def document(self, refresh_token: str) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in ("client_id", "client_secret", *_OPTIONS, *_ACCOUNT_VALUES)}
        return connection_document(refresh_token=refresh_token, **values)


def check_settings(values: dict[str, Any], conn_id: str) -> Settings:
    """Check every given value offline with the connection parser; return them normalised.

    Values not known yet are replaced by valid stand-ins, so the first error always names a value
    the user gave (the secret's ID pasted for its value, an account *number* for the id, ...).
    """
    extra: dict[str, Any] = {name: values.get(name) or _PLACEHOLDERS[name] for name in _ACCOUNT_VALUES}
    extra["refresh_token"] = _PLACEHOLDERS["refresh_token"]
    extra.update((name, values[name]) for name in _OPTIONS if values.get(name))
    parsed = parse_credentials(
        conn_id=conn_id, login=values.get("client_id"), password=values.get("client_secret"), extra=extra
    )
    # the ids not given stay None: the stand-ins must not reach the connection
    given: dict[str, Any] = {name: getattr(parsed, name) if values.get(name) else None for name in _ACCOUNT_VALUES}
    options: dict[str, Any] = {name: getattr(parsed, name) for name in _OPTIONS}
    return Settings(
        client_id=parsed.client_id,
        client_secret=parsed.client_secret,
        endpoints=parsed.endpoints,
        notes=parsed.notes,
        **options,
        **given,
    )


# -------------------------------------------------------------------------- gathering values


def _given(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name)
    if value is None:
        value = os.environ.get(ENV_VARS[name]) if name in ENV_VARS else None
    return value if value is None else str(value)


def _prompt(console: Console, name: str, *, optional: bool) -> str:
    label = FIELD_LABELS[name]
    question = f"{label} ({_WHERE[name]})" if name in _WHERE else label
    question += " (Enter to skip)" if optional else ""
    reader = console.ask_secret if name in SECRET_FIELDS else console.ask
    for _ in range(3):
        value = reader(f"{question}: ").strip()
        if value or optional:
            return value
        console.say(f"{label} is needed.")
    raise UsageError(f"no {label} given")


def settings_from_args(args: argparse.Namespace, console: Console, *, interactive: bool, conn_id: str) -> Settings:
    """The options, else the environment variables, else the answers; a wrong answer is asked again."""
    values: dict[str, Any] = {name: _given(args, name) for name in ("client_id", "client_secret", *_ACCOUNT_VALUES)}
    values.update((name, getattr(args, name)) for name in _OPTIONS)
    for secret in (name for name in ENV_VARS if name in SECRET_FIELDS):
        if getattr(args, secret, None):
            console.say(
                f"Note: --{secret.replace('_', '-')} on a command line is visible to other users (ps) and kept in "
                f"shell history; {ENV_VARS[secret]} or the prompt keep it private."
            )
    for _ in range(5):
        for name in ("client_id", "client_secret"):
            if not values.get(name):
                if not interactive:
                    raise UsageError(
                        f"--{name.replace('_', '-')} (or {ENV_VARS[name]}) is required when no questions can be asked"
                    )
                values[name] = _prompt(console, name, optional=False)
        if interactive:
            for name in _ACCOUNT_VALUES:
                if values.get(name) is None:
                    values[name] = _prompt(console, name, optional=True)
        try:
            return check_settings(values, conn_id)
        except CredentialsError as err:
            if not interactive or err.field not in ENV_VARS:
                raise
            console.say(str(err))
            values[err.field] = None  # ask again for the value that was wrong
    raise UsageError("too many invalid answers")


def settings_from_connection(args: argparse.Namespace, conn_id: str) -> Settings:
    """``--reauthorize``: the app, options and ids come from the stored connection."""
    clashing = [
        f"--{name.replace('_', '-')}"
        # --authorize-url is allowed: only the sign-in uses it, never the connection at run time
        for name in ("client_id", "client_secret", *(o for o in _OPTIONS if o != "authorize_url"), *_ACCOUNT_VALUES)
        if getattr(args, name) is not None
    ]
    if clashing:
        raise UsageError(
            f"--reauthorize takes the app and the options from the connection; drop {', '.join(clashing)} "
            "(to change them, replace the whole connection with --save)"
        )
    return settings_of_connection(conn_id, authorize_url=args.authorize_url)


def settings_of_connection(conn_id: str, *, authorize_url: str | None = None) -> Settings:
    """The app, options and ids of a stored connection, checked; shared by ``--reauthorize`` and the UI."""
    from airflow_provider_msads.cli.metastore import MetastoreError, find_connection

    stored = find_connection(conn_id)
    if stored is None:
        raise MetastoreError(
            f"There is no connection {conn_id!r} in the Airflow metastore.",
            field="conn_id",
            remedy="Check the id (`airflow connections list`). A connection defined by an AIRFLOW_CONN_ variable "
            "or a secrets backend cannot be updated from here: run msads-authorize with --output and put the "
            "result where that connection lives. To create it, use --save.",
        )
    if stored.conn_type not in (None, "", CONN_TYPE):
        raise MetastoreError(
            f"Connection {conn_id!r} is of type {stored.conn_type!r}, not msads.",
            field="conn_type",
            remedy="Pass the id of a Microsoft Advertising connection, or create one with --save.",
        )
    if not stored.extra_is_valid:
        raise MetastoreError(
            f"The extra of connection {conn_id!r} is not a JSON object.",
            field="extra",
            remedy="Fix the connection's Extra, or replace the whole connection with --save.",
        )
    values: dict[str, Any] = {"client_id": stored.login, "client_secret": stored.password}
    values.update((name, stored.option(name)) for name in (*_ACCOUNT_VALUES, *_OPTIONS))
    if authorize_url:
        values["authorize_url"] = authorize_url
    try:
        return check_settings(values, conn_id)
    except CredentialsError as err:
        raise CredentialsError(
            f"The stored connection cannot be re-authorized as it is. {err.message}",
            field=err.field,
            step=err.step,
            remedy=err.remedy + " Or replace the whole connection with --save.",
        ) from None
