"""The forms the result is printed in, and files written 0600."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_msads.cli.authorize import OnboardingError
from airflow_provider_msads.cli.output import (
    FORM_FIELD_DEFAULTS,
    airflow_cli_import,
    check_conn_id,
    connection_document,
    env_var_name,
    render,
    with_every_form_field,
    write_private_file,
)
from airflow_provider_msads.connection.credentials import parse_credentials
from airflow_provider_msads.errors import CredentialsError

CLIENT_ID = "00000000-1111-2222-3333-444444444444"
REFRESH = "M.C521_BAY.0.U.-refresh*token!with$odd'chars\"and spaces"


def _document(**overrides):
    values = {
        "client_id": CLIENT_ID,
        "client_secret": "abc1Q~secret-value_with.chars",
        "refresh_token": "M.C521_BAY.0.U.-Tm5iFoM-JqbtKnSw3Y1AlgNQDpBtx1yNqcuhEVZdUx",
        "developer_token": "DEVTOKEN123",
        "customer_id": "251186883",
        "account_id": "180535609",
    }
    values.update(overrides)
    return connection_document(**values)


def test_document_is_the_contract_json_form_and_parses_back():
    doc = _document()
    assert doc == {
        "conn_type": "msads",
        "login": CLIENT_ID,
        "password": "abc1Q~secret-value_with.chars",
        "extra": {
            "account_id": "180535609",
            "customer_id": "251186883",
            "developer_token": "DEVTOKEN123",
            "refresh_token": "M.C521_BAY.0.U.-Tm5iFoM-JqbtKnSw3Y1AlgNQDpBtx1yNqcuhEVZdUx",
            "environment": "production",
        },
    }
    creds = parse_credentials(conn_id="x", login=doc["login"], password=doc["password"], extra=doc["extra"])
    assert creds.account_id == "180535609" and creds.environment == "production"


def test_every_form_field_key_is_written_and_options_only_when_not_default():
    """Airflow 3.2+'s Edit dialog draws only the form fields whose keys the saved extra holds."""
    doc = _document(
        environment="sandbox",
        tenant="contoso.onmicrosoft.com",
        token_url="http://127.0.0.1:1/common/oauth2/v2.0/token",
        developer_token=None,
        account_id=None,
    )
    assert doc["extra"]["environment"] == "sandbox" and doc["extra"]["tenant"] == "contoso.onmicrosoft.com"
    assert doc["extra"]["token_url"].endswith("/token")
    assert doc["extra"]["developer_token"] == "" and doc["extra"]["account_id"] == ""
    assert set(FORM_FIELD_DEFAULTS) <= set(doc["extra"])
    assert "tenant" not in _document()["extra"] and "token_url" not in _document()["extra"]
    with pytest.raises(CredentialsError, match=r"Developer Token .* is missing"):
        parse_credentials(conn_id="x", login=doc["login"], password=doc["password"], extra=doc["extra"])


def test_every_form_field_key_is_added_to_an_extra_that_lacks_it():
    extra = {"account_id": "1", "extra__msads__customer_id": "2", "token_url": "http://127.0.0.1:1/t"}
    completed = with_every_form_field(extra)
    assert completed == {
        **extra,
        "developer_token": "",
        "refresh_token": "",
        "environment": "production",
    }, "a prefixed key counts as present"
    assert with_every_form_field({"environment": "sandbox"})["environment"] == "sandbox"


def test_json_env_and_airflow_cli_forms_round_trip_through_a_shell():
    doc = _document(refresh_token=REFRESH)
    assert json.loads(render("json", "msads_default", doc)) == doc
    env = shlex.split(render("env", "msads_default", doc))
    assert env[0] == "export"
    name, _, value = env[1].partition("=")
    assert name == "AIRFLOW_CONN_MSADS_DEFAULT" and json.loads(value) == doc
    with pytest.raises(ValueError):  # no form puts the secrets on a command line any more
        render("airflow-cli", "msads-prod", doc)


def _secrets(doc: dict) -> list[str]:
    return [doc["password"], doc["extra"]["refresh_token"], doc["extra"]["developer_token"]]


def test_airflow_cli_form_is_a_private_file_and_a_command_without_secrets():
    """Issue 25 item 4: `airflow connections add --conn-json '<secrets>'` put the secrets on a
    command line (other users' `ps`) and in the shell history; the command now names a file."""
    doc = _document(refresh_token=REFRESH)
    command, path = airflow_cli_import("msads-prod", doc)
    try:
        for secret in _secrets(doc):
            assert secret not in command
        words = shlex.split(command.replace("&&", "; &&"))
        assert words[:4] == ["airflow", "connections", "import", str(path)]
        assert words[-3:] == ["rm", "-r", str(path.parent)]  # removed once imported
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert json.loads(path.read_text()) == {"msads-prod": doc}
    finally:
        path.unlink()
        path.parent.rmdir()


def test_airflow_cli_form_with_output_file(tmp_path: Path):
    doc = _document()
    command, path = airflow_cli_import("msads_default", doc, str(tmp_path / "conn.json"))
    assert shlex.split(command) == ["airflow", "connections", "import", str(tmp_path / "conn.json")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and json.loads(path.read_text()) == {"msads_default": doc}
    with pytest.raises(OnboardingError, match=r"\.json") as caught:
        airflow_cli_import("msads_default", doc, str(tmp_path / "conn.cmd"))
    assert caught.value.field == "output_file"


def test_the_printed_command_imports_the_connection(cli_airflow_db, tmp_path: Path):
    """What is printed is what Airflow's own `airflow connections import` reads, extra and all."""
    from airflow_provider_msads.cli.metastore import find_connection

    doc = _document(refresh_token=REFRESH)
    command, path = airflow_cli_import("msads_imported", doc)
    run = subprocess.run(
        [sys.executable, "-m", "airflow", *shlex.split(command.split("&&")[0])[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    subprocess.run(["sh", "-c", command.split("&&", 1)[1]], check=True)  # the printed clean-up
    assert not path.parent.exists()
    stored = find_connection("msads_imported")
    assert stored is not None and stored.conn_type == doc["conn_type"]
    assert stored.extra["refresh_token"] == REFRESH and stored.extra["customer_id"] == doc["extra"]["customer_id"]


def test_conn_id_and_env_var_name_rules():
    assert check_conn_id("msads_default") == "msads_default"
    assert env_var_name("msads_prod") == "AIRFLOW_CONN_MSADS_PROD"
    with pytest.raises(OnboardingError, match="environment variable"):
        env_var_name("msads-prod")
    for bad in ("", "has space", "-lead", "x" * 201, "a;b"):
        with pytest.raises(OnboardingError):
            check_conn_id(bad)


def test_private_file_is_0600_and_not_overwritten_unless_asked(tmp_path):
    target = tmp_path / "conn.json"
    write_private_file(target, "one\n", overwrite=False)
    assert target.read_text() == "one\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    with pytest.raises(OnboardingError, match="already exists"):
        write_private_file(target, "two\n", overwrite=False)
    os.chmod(target, 0o644)  # a world-readable old file is replaced by a private one
    write_private_file(target, "two\n", overwrite=True)
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["conn.json"]  # no temp file left behind
