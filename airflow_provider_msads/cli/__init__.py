"""``msads-authorize``: onboarding in one command (steps 5-6 of the credentials guide).

``main`` is the console script's entry point (``msads-authorize = airflow_provider_msads.cli:main``,
also ``python -m airflow_provider_msads.cli``); :mod:`.main` lists the modules of the command.
The parts are importable for scripts and tests:
:func:`build_authorize_url` / :func:`new_authorization_request`, :class:`RedirectCatcher`,
:func:`parse_redirect`, :func:`exchange`, :func:`render`, and, in
:mod:`airflow_provider_msads.cli.metastore` (imports Airflow), ``save_connection``.

Nothing here imports Airflow or httpx at import time: ``--help`` and printing the sign-in URL
stay fast; Airflow is loaded only for ``--save``, ``--reauthorize`` and the validation.

May import: the core rooms, ``compat``, ``hooks`` and ``get_provider_info``; never ``ui``.
"""

from __future__ import annotations

from airflow_provider_msads.cli.authorize import (
    AuthorizationError,
    AuthorizationRequest,
    OnboardingError,
    Redirect,
    StateMismatchError,
    authorization_error,
    build_authorize_url,
    exchange,
    new_authorization_request,
    parse_redirect,
    pkce_challenge,
)
from airflow_provider_msads.cli.catcher import (
    ListenError,
    PortInUseError,
    RedirectCatcher,
    RedirectTimeoutError,
    RedirectURIError,
)
from airflow_provider_msads.cli.console import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Console
from airflow_provider_msads.cli.main import main
from airflow_provider_msads.cli.output import connection_document, render, write_private_file

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "AuthorizationError",
    "AuthorizationRequest",
    "Console",
    "ListenError",
    "OnboardingError",
    "PortInUseError",
    "Redirect",
    "RedirectCatcher",
    "RedirectTimeoutError",
    "RedirectURIError",
    "StateMismatchError",
    "authorization_error",
    "build_authorize_url",
    "connection_document",
    "exchange",
    "main",
    "new_authorization_request",
    "parse_redirect",
    "pkce_challenge",
    "render",
    "write_private_file",
]
