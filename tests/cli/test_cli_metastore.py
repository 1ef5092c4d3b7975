"""--save and --reauthorize into a real Airflow metastore, read back through the hook."""

from __future__ import annotations

import json

import pytest
from _support.cli import CliRun, FeedStdin, browser, flow_args

from airflow_provider_msads.cli.console import EXIT_ERROR, EXIT_OK, EXIT_USAGE

pytestmark = pytest.mark.integration


def _row(conn_id: str):
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        if row is None:
            return None
        return {
            "conn_type": row.conn_type,
            "login": row.login,
            "password": row.password,
            "extra": json.loads(row.extra),
            "description": row.description,
        }


def _variable(key: str):
    from airflow.models.variable import Variable

    return Variable.get(key, default_var=None)


def test_save_read_back_through_the_hook_then_reauthorize(cli_airflow_db, emulator, redirect_uri, monkeypatch):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.token_store import storage_key
    from airflow_provider_msads.tokens.auth import clear_process_cache

    conn_id = "msads_cli_saved"
    key = storage_key(conn_id)

    # 1. --save, no terminal (so --yes is implied): saved, validated, nothing secret printed.
    run = CliRun(flow_args(emulator, redirect_uri, "--save", conn_id))
    browser(run.authorize_url())
    assert run.wait(120) == EXIT_OK, run.output
    assert run.stdout.text == ""
    assert f"Saved connection {conn_id!r} into the Airflow metastore (added)" in run.stderr.text
    assert "OK - credentials valid" in run.stderr.text
    row = _row(conn_id)
    assert row["conn_type"] == "msads" and row["login"] == emulator.app.client_id
    assert row["password"] == emulator.app.client_secret
    assert row["extra"]["account_id"] == emulator.account.id
    assert row["extra"]["customer_management_url"] == emulator.customer_management_url
    # Every form field's key, so that Airflow 3.2+'s Edit dialog draws every field.
    assert row["extra"]["environment"] == "production"
    assert {"developer_token", "refresh_token", "customer_id", "account_id", "environment"} <= set(row["extra"])
    assert "msads-authorize" in row["description"]
    first_refresh = row["extra"]["refresh_token"]
    for secret in (emulator.app.client_secret, emulator.developer_token, first_refresh):
        assert secret not in run.output
    assert _variable(key), "the validation's rotated refresh token was kept in the Variable store"

    # 2. Read it back through the hook, as a server-side process (like `airflow connections test`).
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    clear_process_cache()
    hook = MicrosoftAdsHook(msads_conn_id=conn_id)
    token = hook.get_access_token()
    assert token in emulator.issued_access_tokens
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT")

    # 3. --reauthorize: only the refresh token changes; the token store is reset.
    run = CliRun(
        [
            "--reauthorize",
            conn_id,
            "--redirect-uri",
            redirect_uri,
            "--no-browser",
            "--timeout",
            "10",
            "--no-validate",
        ]
    )
    browser(run.authorize_url())
    assert run.wait(60) == EXIT_OK, run.output
    assert "every other value was kept" in run.stderr.text
    after = _row(conn_id)
    new_refresh = after["extra"].pop("refresh_token")
    assert new_refresh != first_refresh and emulator.is_refresh_token_valid(new_refresh)
    row["extra"].pop("refresh_token")
    assert after == row
    assert _variable(key) is None, "the token store of the re-authorized connection was reset"

    # 4. --save onto the existing id: an interactive "no" leaves it alone, before any sign-in.
    stdin = FeedStdin(["n"])
    run = CliRun(flow_args(emulator, redirect_uri, "--save", conn_id), stdin=stdin, interactive=True)
    assert run.wait(30) == EXIT_USAGE
    assert "already exists" in run.stderr.text and "--reauthorize" in run.stderr.text
    assert "/authorize?" not in run.stderr.text
    assert _row(conn_id)["extra"]["refresh_token"] == new_refresh


def test_reauthorize_needs_an_existing_metastore_connection(cli_airflow_db, emulator, redirect_uri):
    run = CliRun(["--reauthorize", "msads_nowhere", "--redirect-uri", redirect_uri, "--no-browser"])
    assert run.wait(30) == EXIT_ERROR
    assert "no connection 'msads_nowhere'" in run.stderr.text and "--output" in run.stderr.text
    run = CliRun(["--reauthorize", "x", "--client-id", emulator.app.client_id])
    assert run.wait(30) == EXIT_USAGE
    assert "--client-id" in run.stderr.text


def test_reauthorize_adds_the_form_field_keys_a_connection_lacks(cli_airflow_db, emulator, redirect_uri):
    """A connection added by hand without `environment` gets it, so that its Edit dialog shows it."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    conn_id = "msads_cli_by_hand"
    by_hand = {
        "account_id": emulator.account.id,
        "customer_id": emulator.customer_id,
        "developer_token": emulator.developer_token,
        "refresh_token": emulator.issue_refresh_token(),
        "token_url": emulator.token_url(),
    }
    with create_session() as session:
        session.add(
            Connection(
                conn_id=conn_id,
                conn_type="msads",
                login=emulator.app.client_id,
                password=emulator.app.client_secret,
                extra=json.dumps(by_hand),
            )
        )
    try:
        run = CliRun(["--reauthorize", conn_id, "--redirect-uri", redirect_uri, "--no-browser", "--no-validate"])
        browser(run.authorize_url())
        assert run.wait(60) == EXIT_OK, run.output
        extra = _row(conn_id)["extra"]
        assert extra.pop("environment") == "production"
        assert extra.pop("refresh_token") != by_hand.pop("refresh_token")
        assert extra == by_hand
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
