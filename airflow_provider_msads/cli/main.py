"""``msads-authorize``: steps 5-6 of the credentials guide in one command, plus the connection.

The command is a thin sequence over small parts (:mod:`.authorize`, :mod:`.catcher`,
:mod:`.output`, :mod:`.metastore`); this module only gathers the values, asks the questions and
maps failures to exit codes: 0 done, 1 an error Microsoft, the credentials or the machine caused
(always explained: what happened, which field or guide step, what to do), 2 a usage error.

Streams: everything said to the user, the authorize URL included (on a line of its own), goes
to **stderr**; **stdout** carries only the result asked for with ``--output``, so that
``msads-authorize --output json > conn.json`` captures exactly the connection.

Questions are asked only when stdin is a terminal and ``--yes`` is not given; otherwise every
question takes its default answer ("yes": replace, validate) and a value that would have been
asked for must come from an option or an environment variable.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import os
import sys
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from airflow_provider_msads.cli.authorize import (
    AuthorizationRequest,
    OnboardingError,
    Redirect,
    authorization_error,
    exchange,
    new_authorization_request,
    parse_redirect,
)
from airflow_provider_msads.cli.catcher import DEFAULT_TIMEOUT, ListenError, RedirectCatcher, listen_address
from airflow_provider_msads.cli.output import OUTPUT_FORMS, check_conn_id, connection_document, env_var_name, render
from airflow_provider_msads.endpoints import ENVIRONMENTS, Endpoints, resolve_endpoints
from airflow_provider_msads.errors import CredentialsError, MicrosoftAdsError, TokenError

if TYPE_CHECKING:
    from airflow_provider_msads.auth import TokenSet

__all__ = [
    "ENV_VARS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "Console",
    "Onboarding",
    "Settings",
    "UsageError",
    "build_parser",
    "check_settings",
    "main",
    "open_browser",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

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
_LABELS = {
    "client_id": "Client ID (the app's Application (client) ID)",
    "client_secret": "Client Secret (the secret's Value, not its ID)",
    "developer_token": "Developer Token",
    "customer_id": "Customer ID (the number after cid= in the Microsoft Advertising URL)",
    "account_id": "Account ID (the number after aid= in the Microsoft Advertising URL)",
}
_SECRET_FIELDS = frozenset({"client_secret", "developer_token"})
_ID_FIELDS = ("developer_token", "customer_id", "account_id")
#: Valid stand-ins for values not known yet, so that ``parse_credentials`` checks the known ones.
_PLACEHOLDERS = {
    "developer_token": "PLACEHOLDERDEVTOKEN0",
    "refresh_token": "placeholder-refresh-token-" + "0" * 40,
    "customer_id": "1",
    "account_id": "1",
}
_CONSOLE_BROWSERS = frozenset({"www-browser", "links", "links2", "elinks", "lynx", "w3m"})


class UsageError(Exception):
    """Wrong or missing options: exit code 2."""


class _Done(Exception):
    """The explanation was already printed; leave with ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# ------------------------------------------------------------------------------------ console


@dataclass
class Console:
    """The three streams and how to ask; tests hand in their own.

    :param interactive: None means "stdin is a terminal".
    :param read_secret: reads a value without echo; defaults to :func:`getpass.getpass` on a
        terminal and to a plain line read otherwise.
    """

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    interactive: bool | None = None
    read_secret: Callable[[str], str] | None = None

    @classmethod
    def system(cls) -> Console:
        return cls(sys.stdin, sys.stdout, sys.stderr)

    def is_interactive(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        try:
            return bool(self.stdin.isatty())
        except (AttributeError, ValueError):
            return False

    def say(self, text: str = "") -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def result(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def ask(self, prompt: str) -> str:
        self.stderr.write(prompt)
        self.stderr.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    def ask_secret(self, prompt: str) -> str:
        if self.read_secret is not None:
            return self.read_secret(prompt)
        if self.stdin is sys.stdin and self.is_interactive():
            return getpass.getpass(prompt, stream=self.stderr)
        return self.ask(prompt)

    def confirm(self, question: str, *, default: bool) -> bool:
        hint = "[Y/n]" if default else "[y/N]"
        for _ in range(3):
            answer = self.ask(f"{question} {hint} ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
        return default


# ------------------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
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
        raise _Done(status)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def build_parser(console: Console | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
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
        help="print the connection (with its secrets) as an `airflow connections add` command, an "
        "AIRFLOW_CONN_<ID> export line, or the JSON",
    )
    result.add_argument("--output-file", metavar="PATH", help="write the --output form (default json) to PATH (0600)")
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


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything the flow and the connection need; ``None`` ids mean "not given"."""

    client_id: str
    client_secret: str
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
    def endpoints(self) -> Endpoints:
        return resolve_endpoints(
            self.environment,
            self.tenant,
            token_url=self.token_url,
            authorize_url=self.authorize_url,
            customer_management_url=self.customer_management_url,
        )

    @property
    def missing(self) -> list[str]:
        return [name for name in _ID_FIELDS if not getattr(self, name)]

    def document(self, refresh_token: str) -> dict[str, Any]:
        return connection_document(
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=refresh_token,
            developer_token=self.developer_token,
            customer_id=self.customer_id,
            account_id=self.account_id,
            environment=self.environment,
            tenant=self.tenant,
            token_url=self.token_url,
            authorize_url=self.authorize_url,
            customer_management_url=self.customer_management_url,
        )


def check_settings(values: dict[str, Any], conn_id: str) -> Settings:
    """Check every given value offline with the connection parser; return them normalised.

    Values not known yet are replaced by valid stand-ins, so the first error always names a value
    the user gave (the secret's ID pasted for its value, an account *number* for the id, ...).
    """
    extra: dict[str, Any] = {name: values.get(name) or _PLACEHOLDERS[name] for name in _ID_FIELDS}
    extra["refresh_token"] = _PLACEHOLDERS["refresh_token"]
    for name in ("environment", "tenant", "token_url", "authorize_url", "customer_management_url"):
        if values.get(name):
            extra[name] = values[name]
    from airflow_provider_msads.credentials import parse_credentials

    parsed = parse_credentials(
        conn_id=conn_id, login=values.get("client_id"), password=values.get("client_secret"), extra=extra
    )
    return Settings(
        client_id=parsed.client_id,
        client_secret=parsed.client_secret,
        environment=parsed.environment,
        tenant=parsed.tenant,
        token_url=parsed.token_url,
        authorize_url=parsed.authorize_url,
        customer_management_url=parsed.customer_management_url,
        developer_token=parsed.developer_token if values.get("developer_token") else None,
        customer_id=parsed.customer_id if values.get("customer_id") else None,
        account_id=parsed.account_id if values.get("account_id") else None,
        notes=parsed.notes,
    )


# ---------------------------------------------------------------------------------------- run


def open_browser(url: str) -> bool:
    """Open ``url`` in a graphical browser when there is one; never a text browser in this terminal."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if getattr(browser, "name", "") in _CONSOLE_BROWSERS:
        return False
    try:
        return bool(browser.open(url, new=1, autoraise=True))
    except Exception:
        return False


class Onboarding:
    """One run of the command; each method is one step of the module docstring's sequence."""

    def __init__(self, args: argparse.Namespace, console: Console, interactive: bool) -> None:
        self.args = args
        self.console = console
        self.interactive = interactive
        self.conn_id: str = args.save or args.reauthorize or args.conn_id or DEFAULT_CONN_ID
        self.manual: bool = bool(args.manual)
        self.replace_existing = False
        self.form: str | None = args.output
        self.saved = False

    # -- values ----------------------------------------------------------------------------

    def _given(self, name: str) -> str | None:
        value = getattr(self.args, name)
        if value is None:
            value = os.environ.get(ENV_VARS[name]) if name in ENV_VARS else None
        return value if value is None else str(value)

    def _prompt(self, name: str, *, optional: bool) -> str:
        label = _LABELS[name] + (" (Enter to skip)" if optional else "")
        reader = self.console.ask_secret if name in _SECRET_FIELDS else self.console.ask
        for _ in range(3):
            value = reader(f"{label}: ").strip()
            if value or optional:
                return value
            self.console.say(f"{_LABELS[name].split(' (')[0]} is needed.")
        raise UsageError(f"no {_LABELS[name].split(' (')[0]} given")

    def settings_from_args(self) -> Settings:
        a = self.args
        values: dict[str, Any] = {name: self._given(name) for name in ("client_id", "client_secret", *_ID_FIELDS)}
        values.update(
            environment=a.environment,
            tenant=a.tenant,
            token_url=a.token_url,
            authorize_url=a.authorize_url,
            customer_management_url=a.customer_management_url,
        )
        for secret in ("client_secret", "developer_token"):
            if getattr(a, secret, None):
                self.console.say(
                    f"Note: --{secret.replace('_', '-')} on a command line is visible to other users (ps) and kept in "
                    f"shell history; {ENV_VARS[secret]} or the prompt keep it private."
                )
        for _ in range(5):
            for name in ("client_id", "client_secret"):
                if not values.get(name):
                    if not self.interactive:
                        raise UsageError(
                            f"--{name.replace('_', '-')} (or {ENV_VARS[name]}) is required when no questions "
                            "can be asked"
                        )
                    values[name] = self._prompt(name, optional=False)
            if self.interactive:
                for name in _ID_FIELDS:
                    if values.get(name) is None:
                        values[name] = self._prompt(name, optional=True)
            try:
                return check_settings(values, self.conn_id)
            except CredentialsError as err:
                if not self.interactive or err.field not in ENV_VARS:
                    raise
                self.console.say(str(err))
                values[err.field] = None  # ask again for the value that was wrong
        raise UsageError("too many invalid answers")

    def settings_from_connection(self) -> Settings:
        """``--reauthorize``: the app, options and ids come from the stored connection."""
        a = self.args
        clashing = [
            f"--{name.replace('_', '-')}"
            for name in (
                "client_id",
                "client_secret",
                "environment",
                "tenant",
                "token_url",
                "customer_management_url",
                "developer_token",
                "customer_id",
                "account_id",
            )
            if getattr(a, name) is not None
        ]
        if clashing:
            raise UsageError(
                f"--reauthorize takes the app and the options from the connection; drop {', '.join(clashing)} "
                "(to change them, replace the whole connection with --save)"
            )
        from airflow_provider_msads.cli.metastore import MetastoreError, find_connection

        stored = find_connection(self.conn_id)
        if stored is None:
            raise MetastoreError(
                f"There is no connection {self.conn_id!r} in the Airflow metastore.",
                field="conn_id",
                remedy="Check the id (`airflow connections list`). A connection defined by an AIRFLOW_CONN_ variable "
                "or a secrets backend cannot be updated from here: run msads-authorize with --output and put the "
                "result where that connection lives. To create it, use --save.",
            )
        if stored.conn_type not in (None, "", "msads"):
            raise MetastoreError(
                f"Connection {self.conn_id!r} is of type {stored.conn_type!r}, not msads.",
                field="conn_type",
                remedy="Pass the id of a Microsoft Advertising connection, or create one with --save.",
            )
        if not stored.extra_is_valid:
            raise MetastoreError(
                f"The extra of connection {self.conn_id!r} is not a JSON object.",
                field="extra",
                remedy="Fix the connection's Extra, or replace the whole connection with --save.",
            )
        values: dict[str, Any] = {"client_id": stored.login, "client_secret": stored.password}
        for name in (*_ID_FIELDS, "environment", "tenant", "token_url", "authorize_url", "customer_management_url"):
            values[name] = stored.option(name)
        if a.authorize_url:
            values["authorize_url"] = a.authorize_url
        try:
            return check_settings(values, self.conn_id)
        except CredentialsError as err:
            raise CredentialsError(
                f"The stored connection cannot be re-authorized as it is. {err.message}",
                field=err.field,
                step=err.step,
                remedy=err.remedy + " Or replace the whole connection with --save.",
            ) from None

    # -- where the result goes ---------------------------------------------------------------

    def plan_delivery(self) -> None:
        """Settle every question about the result *before* the sign-in, so the code is never kept waiting."""
        a = self.args
        if a.output_file and not self.form:
            self.form = "json"
        if not (a.save or a.reauthorize or self.form):
            if not self.interactive:
                raise UsageError(
                    "say where the result goes: --save CONN_ID (an Airflow connection; prints no secret) or "
                    "--output airflow-cli|env|json (printed, with the secrets)"
                )
            self._choose_destination()
        try:
            if not a.reauthorize:  # an existing id is whatever Airflow accepted
                check_conn_id(self.conn_id)
            if self.form == "env":
                env_var_name(self.conn_id)
        except OnboardingError as err:
            raise UsageError(str(err)) from None
        if (
            a.output_file
            and os.path.exists(os.path.expanduser(a.output_file))
            and self.interactive
            and not self.console.confirm(f"{a.output_file} exists. Replace it?", default=False)
        ):
            raise UsageError("choose another --output-file")
        if self.args.save:
            self._check_save_target(self.args.save)
        if self.args.save or self.args.reauthorize:
            from airflow_provider_msads.cli.metastore import shadowing_env_var

            shadow = shadowing_env_var(self.conn_id)
            if shadow:
                self.console.say(
                    f"Warning: {shadow} is set in this environment. Airflow reads it before the metastore, so "
                    f"processes that see it will not use the connection saved here."
                )

    def _choose_destination(self) -> None:
        self.console.say("Where should the result go?")
        self.console.say("  1) save it into the Airflow metastore as a connection (no secret is printed)")
        self.console.say("  2) print an `airflow connections add` command (carries the secrets)")
        self.console.say("  3) print an AIRFLOW_CONN_<ID> export line (carries the secrets)")
        self.console.say("  4) print the connection JSON (carries the secrets)")
        for _ in range(3):
            answer = self.console.ask("Choice [1]: ").strip() or "1"
            if answer == "1":
                conn_id = self.console.ask(f"Connection id [{self.conn_id}]: ").strip() or self.conn_id
                self.args.save = check_conn_id(conn_id)
                self.conn_id = conn_id
                return
            forms = {"2": "airflow-cli", "3": "env", "4": "json"}
            if answer in forms:
                self.form = forms[answer]
                return
        raise UsageError("no destination chosen")

    def _check_save_target(self, conn_id: str) -> None:
        from airflow_provider_msads.cli.metastore import find_connection

        self.console.say("Checking the Airflow metastore...")
        existing = find_connection(conn_id)
        if existing is None:
            return
        if self.interactive:
            if not self.console.confirm(
                f"A connection {conn_id!r} already exists. Replace it entirely? (To renew only its refresh token, "
                f"answer no and run msads-authorize --reauthorize {conn_id}.)",
                default=False,
            ):
                raise UsageError(f"connection {conn_id!r} exists and was left unchanged")
        else:
            self.console.say(f"Connection {conn_id!r} exists and will be replaced (--yes / no terminal).")
        self.replace_existing = True

    # -- sign-in -----------------------------------------------------------------------------

    def _show_url(self, request: AuthorizationRequest) -> None:
        say = self.console.say
        say("")
        say("Open this address in a browser, sign in as a user who can open the Microsoft Advertising account, and")
        say("click Accept:")
        say("")
        say(request.url)
        say("")
        if not (self.args.no_browser or self.manual) and open_browser(request.url):
            say("(A browser window was opened with it.)")

    def authorize(self, request: AuthorizationRequest) -> Redirect:
        """The redirect of this run: caught on the redirect URI, or pasted with ``--manual``."""
        if not self.manual:
            catcher = RedirectCatcher(
                request.redirect_uri,
                expected_state=request.state,
                timeout=self.args.timeout,
                on_rejected=lambda err: self.console.say(f"Ignored a sign-in answer: {err}"),
            )
            try:
                catcher.start()
            except ListenError as err:
                if not self.interactive:
                    raise
                self.console.say(f"Error: {err}")
                if not self.console.confirm(
                    "Continue with --manual now (you paste the redirected address)?", default=True
                ):
                    raise _Done(EXIT_ERROR) from None
                self.manual = True
            else:
                with catcher:
                    self._show_url(request)
                    if os.environ.get("SSH_CONNECTION") and not os.environ.get("DISPLAY"):
                        self.console.say(
                            f"This is an SSH session: the browser's redirect goes to port {catcher.port} of the "
                            "machine the browser runs on. Forward it (ssh -L "
                            f"{catcher.port}:localhost:{catcher.port} …) or press Ctrl+C and use --manual."
                        )
                    self.console.say(
                        f"Waiting up to {self.args.timeout:g} s for the browser to come back to "
                        f"{request.redirect_uri} (Ctrl+C cancels)..."
                    )
                    return catcher.wait()
        return self._manual(request)

    def _manual(self, request: AuthorizationRequest) -> Redirect:
        self._show_url(request)
        self.console.say(
            f"After you click Accept the browser is sent to {request.redirect_uri}?code=… and may say it cannot "
            "connect: that is expected. Copy the whole address from the address bar and paste it here; it is "
            "used once, right away."
        )
        attempts = 3 if self.interactive else 1
        for attempt in range(1, attempts + 1):
            try:
                text = self.console.ask("Address (or code): ")
            except EOFError:
                raise OnboardingError(
                    "No address was pasted (input ended).",
                    remedy="Run msads-authorize --manual in a terminal, or pipe the redirected address into it.",
                ) from None
            try:
                return parse_redirect(text, expected_state=request.state)
            except OnboardingError as err:
                if attempt == attempts:
                    raise
                self.console.say(str(err))
        raise AssertionError("unreachable")

    # -- exchange and delivery ---------------------------------------------------------------

    def redeem(self, settings: Settings, request: AuthorizationRequest, redirect: Redirect) -> TokenSet:
        assert redirect.code is not None
        try:
            tokens = exchange(
                request,
                redirect.code,
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                endpoints=settings.endpoints,
            )
        except TokenError as err:
            self.console.say(f"Error: {err}")
            hint = self._exchange_hint(err)
            if hint:
                self.console.say(hint)
            raise _Done(EXIT_ERROR) from None
        assert tokens.refresh_token is not None
        return tokens

    def _exchange_hint(self, err: MicrosoftAdsError) -> str:
        if 70008 in err.codes:
            if self.manual:
                return "In --manual mode, paste the address within a few minutes of clicking Accept."
            return "The code was exchanged the moment it arrived; check that this machine's clock is right."
        if 54005 in err.codes:
            return "That code had already been used; codes work once. Run msads-authorize again and sign in again."
        return ""

    def deliver(self, settings: Settings, refresh_token: str) -> None:
        a = self.args
        document = settings.document(refresh_token)
        if a.save or a.reauthorize:
            from airflow_provider_msads.cli import metastore

            try:
                if a.save:
                    description = (
                        f"Microsoft Advertising; authorized with msads-authorize on {datetime.date.today().isoformat()}"
                    )
                    how = metastore.save_connection(
                        a.save, document, replace=self.replace_existing, description=description
                    )
                    what = f"Saved connection {a.save!r} into the Airflow metastore ({how})"
                else:
                    metastore.update_refresh_token(a.reauthorize, refresh_token)
                    what = f"Updated the refresh token of connection {a.reauthorize!r}; every other value was kept"
            except MicrosoftAdsError as err:
                self.console.say(f"Error: {err}")
                if (
                    self.form is None
                    and self.interactive
                    and self.console.confirm(
                        "Print the connection (with its secrets) as an `airflow connections add` command instead, so "
                        "this authorization is not lost?",
                        default=True,
                    )
                ):
                    self.console.result(render("airflow-cli", self.conn_id, document))
                elif self.form is not None:
                    self._print(document)
                raise _Done(EXIT_ERROR) from None
            metastore.reset_token_store(self.conn_id)
            self.saved = True
            self.console.say(f"{what}; its token store was reset so the new refresh token is used from now on.")
        if self.form:
            self._print(document)

    def _print(self, document: dict[str, Any]) -> None:
        assert self.form is not None
        text = render(self.form, self.conn_id, document)
        if self.args.output_file:
            from airflow_provider_msads.cli.output import write_private_file

            path = write_private_file(self.args.output_file, text, overwrite=True)
            self.console.say(f"Wrote the connection ({self.form}) to {path}, readable by you only (0600).")
        else:
            self.console.result(text)
            self.console.say("The output carries the client secret and the refresh token: keep it out of logs.")
        if self.form == "airflow-cli":
            self.console.say(
                "`airflow connections add` refuses an existing id: delete the old connection first, or use "
                "msads-authorize --save / --reauthorize."
            )

    # -- validation --------------------------------------------------------------------------

    def validate(self, settings: Settings, tokens: TokenSet) -> int:
        """The full check, with the exchange's access token: nothing refreshes (spends) the refresh token
        that was just saved or printed, so it stays the newest."""
        refresh_token = tokens.refresh_token
        assert refresh_token is not None
        if self.args.no_validate:
            return EXIT_OK
        if settings.missing:
            names = ", ".join(name.replace("_", " ") for name in settings.missing)
            self.console.say(
                f"The connection still lacks: {names}. Add them before use; then `airflow connections test "
                f"{self.conn_id}` or the health-check DAG validates everything."
            )
            return EXIT_OK
        try:
            from airflow_provider_msads.cli import metastore

            available = metastore.can_validate()
        except Exception:  # Airflow not importable or not configured here: validation is an extra
            available = False
        if not available:
            return EXIT_OK
        if self.interactive and not self.console.confirm(
            "Run the full validation now (refresh the token, GetUser, GetAccount)?", default=True
        ):
            return EXIT_OK
        self.console.say("Validating...")
        try:
            if self.saved:
                report = metastore.validate_connection(self.conn_id, tokens)
            else:
                report = metastore.validate_document(settings.document(refresh_token), tokens)
        except Exception as exc:  # the result is delivered; a validation that cannot run is only a warning
            self.console.say(
                f"Could not run the validation ({type(exc).__name__}); the result above is complete. Validate later "
                f"with `airflow connections test {self.conn_id}`."
            )
            return EXIT_OK
        for line in report.lines():
            self.console.say(line)
        return EXIT_OK if report.ok else EXIT_ERROR

    # -- the whole sequence -----------------------------------------------------------------

    def run(self) -> int:
        a = self.args
        settings = self.settings_from_connection() if a.reauthorize else self.settings_from_args()
        for note in settings.notes:
            self.console.say(f"Note: {note}")
        endpoints = settings.endpoints
        if not self.manual:
            try:
                listen_address(a.redirect_uri)
            except OnboardingError as err:
                raise UsageError(str(err)) from None
        self.plan_delivery()
        request = new_authorization_request(endpoints, client_id=settings.client_id, redirect_uri=a.redirect_uri)
        redirect = self.authorize(request)
        if redirect.is_error:
            raise authorization_error(redirect)
        tokens = self.redeem(settings, request, redirect)
        assert tokens.refresh_token is not None
        self.console.say(
            f"Authorized: Microsoft issued a refresh token for app {settings.client_id} ({settings.environment})."
        )
        self.deliver(settings, tokens.refresh_token)
        return self.validate(settings, tokens)


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Entry point of ``msads-authorize`` and ``python -m airflow_provider_msads.cli``; returns the exit code."""
    console = console or Console.system()
    parser = build_parser(console)
    try:
        args = parser.parse_args(argv)
    except _Done as done:
        return done.code
    interactive = console.is_interactive() and not args.yes
    try:
        return Onboarding(args, console, interactive).run()
    except _Done as done:
        return done.code
    except UsageError as err:
        console.say(f"msads-authorize: error: {err}")
        return EXIT_USAGE
    except MicrosoftAdsError as err:
        console.say(f"Error: {err}")
        return EXIT_ERROR
    except EOFError:
        console.say(
            "msads-authorize: error: input ended before every question was answered; pass the values as options."
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.say("\nCancelled.")
        return EXIT_INTERRUPTED
