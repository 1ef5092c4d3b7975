"""The interactive onboarding: one run of ``msads-authorize`` from the values to the checked result.

The sequence (:meth:`Onboarding.run`): gather and check the settings offline; settle where the
result goes; sign in (the redirect caught on the redirect URI, or pasted with ``--manual``);
redeem the code at once; deliver the result; validate it with the exchange's access token.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from airflow_provider_msads.cli.authorize import (
    AuthorizationRequest,
    OnboardingError,
    Redirect,
    authorization_error,
    exchange,
    new_authorization_request,
    parse_redirect,
)
from airflow_provider_msads.cli.catcher import ListenError, RedirectCatcher, listen_address
from airflow_provider_msads.cli.console import (
    EXIT_ERROR,
    EXIT_OK,
    AlreadyExplained,
    Console,
    UsageError,
    open_browser,
)
from airflow_provider_msads.cli.delivery import Delivery
from airflow_provider_msads.cli.settings import Settings, settings_from_args, settings_from_connection
from airflow_provider_msads.errors import MicrosoftAdsError, TokenError

if TYPE_CHECKING:
    from airflow_provider_msads.tokens.auth import TokenSet

__all__ = ["Onboarding"]


class Onboarding:
    """One run of the command; each public method is one step of the module docstring's sequence."""

    def __init__(self, args: argparse.Namespace, console: Console, interactive: bool) -> None:
        self.args = args
        self.console = console
        self.interactive = interactive
        self.manual: bool = bool(args.manual)
        self.delivery = Delivery(args, console, interactive)
        #: The redirect catcher while it listens (from the sign-in until the result is delivered).
        self.catcher: RedirectCatcher | None = None

    @property
    def conn_id(self) -> str:
        """The connection's id; the destination menu may still change it."""
        return self.delivery.conn_id

    # -- sign-in -----------------------------------------------------------------------------

    def _show_url(self, request: AuthorizationRequest, catcher: RedirectCatcher | None = None) -> None:
        """Print the authorize URL on a line of its own (the terminal is private); open the browser with
        the catcher's one-time start link instead, since a browser's command line is not (see catcher)."""
        say = self.console.say
        say("")
        say("Open this address in a browser, sign in as a user who can open the Microsoft Advertising account, and")
        say("click Accept:")
        say("")
        say(request.url)
        say("")
        opens = catcher is not None and not (self.args.no_browser or self.manual)
        # Opened on a private file that forwards to the one-time link: the link itself never sits on
        # the browser's command line, where another local user could open it first (see catcher).
        if opens and catcher is not None and open_browser(catcher.start_file(request.url).as_uri()):
            say("(A browser window was opened on it, through a one-time link of this run.)")

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
                    raise AlreadyExplained(EXIT_ERROR) from None
                self.manual = True
            else:
                # Listening goes on until the result is delivered: a start link opened again after the
                # answer was accepted must still stop the run (:meth:`run` checks, then closes).
                self.catcher = catcher
                try:
                    self._show_url(request, catcher)
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
                except BaseException:
                    self._close_catcher()
                    raise
        return self._manual(request)

    def _close_catcher(self) -> None:
        catcher, self.catcher = self.catcher, None
        if catcher is not None:
            catcher.close()

    def _check_start_link(self) -> None:
        """Before anything is saved or printed: fail when the start link was opened more than once."""
        if self.catcher is not None:
            try:
                self.catcher.check_start_link()
            finally:
                self._close_catcher()

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

    # -- exchange ----------------------------------------------------------------------------

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
            raise AlreadyExplained(EXIT_ERROR) from None
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
            if self.delivery.saved:
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
        settings = (
            settings_from_connection(a, self.conn_id)
            if a.reauthorize
            else settings_from_args(a, self.console, interactive=self.interactive, conn_id=self.conn_id)
        )
        for note in settings.notes:
            self.console.say(f"Note: {note}")
        endpoints = settings.endpoints
        if not self.manual:
            try:
                listen_address(a.redirect_uri)
            except OnboardingError as err:
                raise UsageError(str(err)) from None
        self.delivery.plan()
        request = new_authorization_request(endpoints, client_id=settings.client_id, redirect_uri=a.redirect_uri)
        try:
            redirect = self.authorize(request)
            if redirect.is_error:
                raise authorization_error(redirect)
            tokens = self.redeem(settings, request, redirect)
            assert tokens.refresh_token is not None
            self._check_start_link()
        finally:
            self._close_catcher()
        self.console.say(
            f"Authorized: Microsoft issued a refresh token for app {settings.client_id} ({settings.environment})."
        )
        self.delivery.deliver(settings, tokens.refresh_token)
        return self.validate(settings, tokens)
