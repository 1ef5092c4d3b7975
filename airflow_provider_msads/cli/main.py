"""``msads-authorize``: steps 5-6 of the credentials guide in one command, plus the connection.

The command is a thin sequence over small parts: :mod:`.settings` (options, environment, answers),
:mod:`.onboarding` (sign-in, exchange, validation), :mod:`.delivery` (save or print the result),
:mod:`.console` (streams, questions, exit codes), and :mod:`.authorize`, :mod:`.catcher`,
:mod:`.output`, :mod:`.metastore` below them. This module only maps failures to exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_msads.cli.console import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    AlreadyExplained,
    Console,
    UsageError,
)
from airflow_provider_msads.cli.onboarding import Onboarding
from airflow_provider_msads.cli.settings import build_parser
from airflow_provider_msads.errors import MicrosoftAdsError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, console: Console | None = None) -> int:
    """Entry point of ``msads-authorize`` and ``python -m airflow_provider_msads.cli``; returns the exit code."""
    console = console or Console.system()
    parser = build_parser(console)
    try:
        args = parser.parse_args(argv)
    except AlreadyExplained as done:
        return done.code
    interactive = console.is_interactive() and not args.yes
    try:
        return Onboarding(args, console, interactive).run()
    except AlreadyExplained as done:
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
