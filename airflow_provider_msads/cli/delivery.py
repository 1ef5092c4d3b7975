"""Where the result goes: settled before the sign-in, carried out right after the exchange.

Every question about the result (save or print, which id, replace what exists) is asked
*before* the browser opens, because an authorization code expires within minutes; once the
refresh token exists, nothing may lose it: a failed save offers the printed form instead.
"""

from __future__ import annotations

import argparse
import datetime
import os
from typing import Any

from airflow_provider_msads.cli.authorize import OnboardingError
from airflow_provider_msads.cli.console import EXIT_ERROR, AlreadyExplained, Console, UsageError
from airflow_provider_msads.cli.output import (
    OUTPUT_FORMS,
    airflow_cli_import,
    check_conn_id,
    check_import_file,
    env_var_name,
    render,
    write_private_file,
)
from airflow_provider_msads.cli.settings import DEFAULT_CONN_ID, Settings
from airflow_provider_msads.errors import MicrosoftAdsError

__all__ = ["Delivery"]


class Delivery:
    """The destination of one run: the metastore (``--save`` / ``--reauthorize``) and/or a printed form."""

    def __init__(self, args: argparse.Namespace, console: Console, interactive: bool) -> None:
        self.args = args
        self.console = console
        self.interactive = interactive
        self.conn_id: str = args.save or args.reauthorize or args.conn_id or DEFAULT_CONN_ID
        self.form: str | None = args.output
        self.replace_existing = False
        self.saved = False

    def plan(self) -> None:
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
            if self.form == "airflow-cli" and a.output_file:
                check_import_file(a.output_file)
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
        self.console.say(
            "  2) write it to a private file (0600) and print the `airflow connections import` command that reads it"
        )
        self.console.say("  3) print an AIRFLOW_CONN_<ID> export line (carries the secrets)")
        self.console.say("  4) print the connection JSON (carries the secrets)")
        for _ in range(3):
            answer = self.console.ask("Choice [1]: ").strip() or "1"
            if answer == "1":
                conn_id = self.console.ask(f"Connection id [{self.conn_id}]: ").strip() or self.conn_id
                self.args.save = check_conn_id(conn_id)
                self.conn_id = conn_id
                return
            forms = {str(number): form for number, form in enumerate(OUTPUT_FORMS, start=2)}
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
                    what = metastore.store_authorization(
                        a.save, refresh_token, document=document, replace=self.replace_existing, description=description
                    )
                else:
                    what = metastore.store_authorization(a.reauthorize, refresh_token)
            except MicrosoftAdsError as err:
                self.console.say(f"Error: {err}")
                if (
                    self.form is None
                    and self.interactive
                    and self.console.confirm(
                        "Write the connection (with its secrets) to a private file for `airflow connections import` "
                        "instead, so this authorization is not lost?",
                        default=True,
                    )
                ):
                    self.form = "airflow-cli"
                    self._print(document)
                elif self.form is not None:
                    self._print(document)
                raise AlreadyExplained(EXIT_ERROR) from None
            self.saved = True
            self.console.say(f"{what}; its token store was reset so the new refresh token is used from now on.")
        if self.form:
            self._print(document)

    def _print(self, document: dict[str, Any]) -> None:
        assert self.form is not None
        if self.form == "airflow-cli":
            command, path = airflow_cli_import(self.conn_id, document, self.args.output_file)
            self.console.result(command)
            self.console.say(
                f"Wrote the connection to {path}, readable by you only (0600); the command above imports it and "
                "holds no secret. "
                + ("Delete the file once imported." if self.args.output_file else "It removes the file once imported.")
                + " `airflow connections import` skips an id that exists (it says so): add --overwrite to replace "
                "it, or use msads-authorize --save / --reauthorize."
            )
            return
        text = render(self.form, self.conn_id, document)
        if self.args.output_file:
            path = write_private_file(self.args.output_file, text, overwrite=True)
            self.console.say(f"Wrote the connection ({self.form}) to {path}, readable by you only (0600).")
        else:
            self.console.result(text)
            self.console.say("The output carries the client secret and the refresh token: keep it out of logs.")
