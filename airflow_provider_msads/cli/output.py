"""The forms the result is handed over in, and the one way files are written (0600).

Every form carries the client secret and the refresh token, so none is printed unless the user
asked for it (``--output``); ``--save`` prints no secret at all. The forms are exactly what
Airflow reads: the JSON connection form of the design contract, ``AIRFLOW_CONN_<ID>`` with that
JSON, and for ``airflow-cli`` a private file that ``airflow connections import <file>`` reads.

``airflow-cli`` used to print ``airflow connections add <id> --conn-json '<secrets>'``: run as
printed, the secrets sat on a command line (``/proc/<pid>/cmdline``, readable by every local
user while it runs) and in the shell's history. The secrets now go to a 0600 file (in a 0700
folder of its own unless ``--output-file`` names one), and the printed command names only the file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_msads.cli.authorize import OnboardingError
from airflow_provider_msads.connection.credentials import EXTRA_PREFIX
from airflow_provider_msads.connection.fields import CONN_TYPE
from airflow_provider_msads.connection.form import CONN_FIELDS
from airflow_provider_msads.tokens.files import write_private_atomically

__all__ = [
    "FORM_FIELD_DEFAULTS",
    "OUTPUT_FORMS",
    "airflow_cli_import",
    "check_conn_id",
    "connection_document",
    "env_var_name",
    "render",
    "with_every_form_field",
    "write_private_file",
]

#: ``--output`` values, in the order the interactive menu shows them.
OUTPUT_FORMS = ("airflow-cli", "env", "json")

#: Every extra the connection form shows, with the value written when there is none. Airflow 3.2+
#: draws in the *Edit* dialog only the form fields whose keys the saved extra holds, so every
#: connection the provider writes carries all of them; an empty value reads as missing.
FORM_FIELD_DEFAULTS: dict[str, str] = {
    name: str(spec["schema"].get("default") or "") for name, spec in CONN_FIELDS.items()
}

_CONN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_ENV_SAFE = re.compile(r"[A-Za-z0-9_]+")


def check_conn_id(conn_id: str) -> str:
    """A connection id Airflow accepts everywhere: letters, digits, ``_ . -``, at most 200."""
    if not _CONN_ID.fullmatch(conn_id or ""):
        raise OnboardingError(
            f"{conn_id!r} is not a usable connection id.",
            field="conn_id",
            remedy="Use letters, digits, '_', '.' and '-' only (e.g. msads_default), starting with a letter or digit.",
        )
    return conn_id


def env_var_name(conn_id: str) -> str:
    """``AIRFLOW_CONN_<ID>``, as Airflow looks it up (upper-cased id); ids with . or - cannot be one."""
    if not _ENV_SAFE.fullmatch(conn_id):
        raise OnboardingError(
            f"The connection id {conn_id!r} cannot be an environment variable name (it has '.' or '-').",
            field="conn_id",
            remedy="Pick an id of letters, digits and '_' with --conn-id (e.g. msads_default), or use "
            "--output airflow-cli / --save.",
        )
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def connection_document(
    *,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    developer_token: str | None = None,
    customer_id: str | None = None,
    account_id: str | None = None,
    environment: str = "production",
    tenant: str = "common",
    token_url: str | None = None,
    authorize_url: str | None = None,
    customer_management_url: str | None = None,
) -> dict[str, Any]:
    """The connection in the contract's JSON form: every form field's key (see
    :data:`FORM_FIELD_DEFAULTS`), then the other options only when they differ from the defaults.

    A missing id is written empty (the hook then names the missing field) so that the form's
    *Edit* dialog still shows its field for the user to fill in.
    """
    extra: dict[str, str] = {
        "account_id": account_id or "",
        "customer_id": customer_id or "",
        "developer_token": developer_token or "",
        "refresh_token": refresh_token,
        "environment": environment,
    }
    if tenant != "common":
        extra["tenant"] = tenant
    for key, value in (
        ("token_url", token_url),
        ("authorize_url", authorize_url),
        ("customer_management_url", customer_management_url),
    ):
        if value:
            extra[key] = value
    return {"conn_type": CONN_TYPE, "login": client_id, "password": client_secret, "extra": extra}


def with_every_form_field(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` plus the key of each form field it lacks (an Airflow 2 prefixed key counts)."""
    completed = dict(extra)
    for key, default in FORM_FIELD_DEFAULTS.items():
        if key not in completed and EXTRA_PREFIX + key not in completed:
            completed[key] = default
    return completed


def render(form: str, conn_id: str, document: dict[str, Any]) -> str:
    """``json`` or ``env`` as text (one line, ends with a newline); ``airflow-cli`` is a file, see
    :func:`airflow_cli_import`."""
    body = json.dumps(document, separators=(", ", ": "))
    if form == "json":
        return body + "\n"
    if form == "env":
        return f"export {env_var_name(conn_id)}={shlex.quote(body)}\n"
    raise ValueError(f"unknown output form {form!r}")


def check_import_file(path: str) -> None:
    """``airflow connections import`` picks its reader by the file's suffix: ours is JSON."""
    if not path.lower().endswith(".json"):
        raise OnboardingError(
            f"--output airflow-cli writes the connection to {path!r} for `airflow connections import`, which reads "
            "only files named *.json, *.yaml or *.env.",
            field="output_file",
            remedy="Give --output-file a name ending in .json, e.g. msads_default.json.",
        )


def airflow_cli_import(conn_id: str, document: dict[str, Any], output_file: str | None = None) -> tuple[str, Path]:
    """Write ``{conn_id: document}`` to a private file and return the command that imports it, and the file.

    The command holds no secret: it can sit in a shell's history and on a command line. Without
    ``output_file`` the file goes to a new 0700 folder in the temp folder, which the command
    removes once the import succeeded; a file the user named is left for them (the text says so).
    """
    text = json.dumps({conn_id: document}, indent=2) + "\n"
    if output_file:
        check_import_file(output_file)
        path = write_private_file(output_file, text, overwrite=True)
        return f"airflow connections import {shlex.quote(str(path))}\n", path
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="msads-authorize-"))  # 0700, ours alone
    path = write_private_file(folder / f"{conn_id}.json", text, overwrite=False)
    quoted = shlex.quote(str(path))
    return f"airflow connections import {quoted} && rm -r {shlex.quote(str(folder))}\n", path


def write_private_file(path: str | os.PathLike[str], text: str, *, overwrite: bool) -> Path:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically.

    The content is written to a 0600 temporary file in the same folder and renamed over the
    target, so no moment exists where the secret sits in a file with wider permissions, and a
    crash leaves either the old file or the new one.
    """
    target = Path(path).expanduser()
    if target.exists() and not overwrite:
        raise OnboardingError(
            f"{target} already exists.",
            field="output_file",
            remedy="Choose another --output-file, or add --yes to replace it.",
        )
    if target.is_dir():
        raise OnboardingError(f"{target} is a folder.", field="output_file", remedy="Give a file name.")
    write_private_atomically(target, text)
    return target
