"""msads-authorize end to end against the emulator: the command in a thread, the test as the browser."""

from __future__ import annotations

import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import threading

import httpx
import pytest
from _support.cli import CliRun, FeedStdin, browser, flow_args, follow, free_port, query, sign_in

from airflow_provider_msads.cli.console import EXIT_ERROR, EXIT_OK, EXIT_USAGE


def _secrets(emulator, refresh_token: str | None = None) -> list[str]:
    values = [emulator.app.client_secret, emulator.developer_token]
    return [*values, refresh_token] if refresh_token else values


def test_happy_path_prints_the_connection_json_and_the_token_works(emulator, redirect_uri):
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--no-validate"))
    url = run.authorize_url()
    assert query(url)["redirect_uri"] == redirect_uri
    page = browser(url)
    assert page.status_code == 200 and "You may close this window" in page.text
    assert run.wait() == EXIT_OK

    doc = json.loads(run.stdout.text)
    refresh = doc["extra"]["refresh_token"]
    assert doc["conn_type"] == "msads" and doc["login"] == emulator.app.client_id
    assert doc["password"] == emulator.app.client_secret
    assert doc["extra"]["account_id"] == emulator.account.id
    assert doc["extra"]["token_url"] == emulator.token_url()
    assert emulator.is_refresh_token_valid(refresh)
    # One exchange, with the very redirect URI of the sign-in; the emulator redeems a code sent
    # with an S256 challenge only against the matching verifier (else AADSTS501481).
    assert query(url)["code_challenge_method"] == "S256"
    assert emulator.counters["token.authorization_code"] == 1
    (exchange,) = [r for r in emulator.token_requests if r.get("grant_type") == "authorization_code"]
    assert exchange["redirect_uri"] == redirect_uri
    # stderr (the conversation) carries no secret; only the asked-for stdout does.
    for secret in _secrets(emulator, refresh):
        assert secret not in run.stderr.text


def test_validation_runs_after_printing(emulator, redirect_uri):
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "env", "--conn-id", "msads_new"))
    browser(run.authorize_url())
    assert run.wait(60) == EXIT_OK, run.output
    line = run.stdout.text
    assert line.startswith("export AIRFLOW_CONN_MSADS_NEW=")
    doc = json.loads(shlex.split(line)[1].partition("=")[2])
    assert emulator.is_refresh_token_valid(doc["extra"]["refresh_token"])
    assert "OK - credentials valid" in run.stderr.text
    assert emulator.counters["api.GetUser"] == 1 and emulator.counters["api.GetAccount"] == 1
    assert "AIRFLOW_CONN_MSADS_NEW" not in os.environ  # the check left the environment as it was
    # The validation used the exchange's access token: the printed refresh token was never spent,
    # so it is the newest one (a refresh would have rotated it behind the user's back).
    assert emulator.counters["token.refresh_token"] == 0
    assert doc["extra"]["refresh_token"] == emulator.issued_refresh_tokens[-1]
    assert "not spent by this check" in run.stderr.text


def test_secrets_on_the_command_line_get_the_ps_note(emulator, redirect_uri):
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--no-validate"))
    browser(run.authorize_url())
    assert run.wait() == EXIT_OK
    for option in ("--client-secret", "--developer-token"):
        assert f"Note: {option} on a command line is visible to other users (ps)" in run.stderr.text


def test_output_file_is_private_and_stdout_holds_no_secret(emulator, redirect_uri, tmp_path):
    target = tmp_path / "conn.json"
    run = CliRun(
        flow_args(emulator, redirect_uri, "--output", "airflow-cli", "--output-file", str(target), "--no-validate")
    )
    browser(run.authorize_url())
    assert run.wait() == EXIT_OK, run.output
    assert shlex.split(run.stdout.text) == ["airflow", "connections", "import", str(target)]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    doc = json.loads(target.read_text())["msads_default"]
    assert doc["extra"]["customer_id"] == emulator.customer_id
    for secret in (doc["password"], doc["extra"]["refresh_token"]):
        assert secret not in run.stdout.text and secret not in run.stderr.text


def test_airflow_cli_output_file_must_be_json(emulator, redirect_uri, tmp_path):
    args = flow_args(emulator, redirect_uri, "--output", "airflow-cli", "--output-file", str(tmp_path / "conn.cmd"))
    run = CliRun(args)
    assert run.wait() == EXIT_USAGE
    assert ".json" in run.stderr.text and not (tmp_path / "conn.cmd").exists()


def test_wrong_state_is_rejected_and_the_real_redirect_still_completes(emulator, redirect_uri):
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--no-validate"))
    url = run.authorize_url()
    location = sign_in(url)
    forged = location.replace(f"state={query(url)['state']}", "state=forged")
    page = follow(forged)
    assert page.status_code == 400
    run.stderr.wait_for_text("Ignored a sign-in answer")
    assert "does not belong to the authorization URL printed by this run" in run.stderr.text
    assert follow(location).status_code == 200
    assert run.wait() == EXIT_OK
    assert emulator.counters["token.authorization_code"] == 1


def test_only_a_wrong_state_ends_in_an_explained_timeout(emulator, redirect_uri):
    args = flow_args(emulator, redirect_uri, "--output", "json", "--no-validate")
    args[args.index("--timeout") + 1] = "1"
    run = CliRun(args)
    url = run.authorize_url()
    follow(sign_in(url).replace(f"state={query(url)['state']}", "state=old"))
    assert run.wait() == EXIT_ERROR
    assert "foreign `state`" in run.stderr.text and "nothing was exchanged" in run.stderr.text
    assert emulator.counters.get("token.authorization_code", 0) == 0
    assert run.stdout.text == ""


def test_error_redirect_is_explained(emulator, redirect_uri):
    emulator.authorize_error = "access_denied"
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--no-validate"))
    page = browser(run.authorize_url())
    assert page.status_code == 200 and "did not authorize" in page.text
    assert run.wait() == EXIT_ERROR
    text = run.stderr.text
    assert "access_denied" in text and "AADSTS65004" in text and "click Accept" in text
    assert run.stdout.text == ""


def test_catalogued_authorize_error_uses_the_catalogue(emulator, redirect_uri):
    emulator.inject("authorize", "aadsts", code=50194)
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--no-validate"))
    browser(run.authorize_url())
    assert run.wait() == EXIT_ERROR
    assert "AADSTS50194" in run.stderr.text and "tenant" in run.stderr.text


def test_wrong_secret_at_the_exchange_is_explained(emulator, redirect_uri):
    emulator.inject("token", "aadsts", code=7000215)
    run = CliRun(flow_args(emulator, redirect_uri, "--output", "json", "--no-validate"))
    browser(run.authorize_url())
    assert run.wait() == EXIT_ERROR
    assert "AADSTS7000215" in run.stderr.text and "Value" in run.stderr.text
    assert emulator.app.client_secret not in run.stderr.text
    assert emulator.counters["token.authorization_code"] == 1  # a code exchange is never retried


def test_secret_id_instead_of_value_is_caught_before_sign_in(emulator, redirect_uri):
    args = flow_args(emulator, redirect_uri, "--output", "json")
    args[args.index("--client-secret") + 1] = emulator.app.secret_id
    run = CliRun(args)
    assert run.wait() == EXIT_ERROR
    assert "Secret ID" in run.stderr.text
    assert emulator.counters.get("authorize", 0) == 0 and "/authorize?" not in run.stderr.text


def test_account_number_instead_of_id_is_caught_before_sign_in(emulator, redirect_uri):
    args = flow_args(emulator, redirect_uri, "--output", "json")
    args[args.index("--account-id") + 1] = emulator.account.number
    run = CliRun(args)
    assert run.wait() == EXIT_ERROR
    assert "account_id" in run.stderr.text and "account *number*" in run.stderr.text


def test_interactive_questions_secret_ids_and_a_second_chance(emulator, redirect_uri):
    args = flow_args(emulator, redirect_uri, "--output", "json", "--no-validate", ids=False)
    secret_at = args.index("--client-secret")
    del args[secret_at : secret_at + 2]
    stdin = FeedStdin(
        [
            emulator.app.client_secret,  # Client Secret (read without echo)
            emulator.developer_token,
            emulator.customer_id,
            emulator.account.number,  # wrong: the account *number*
            emulator.account.id,  # asked again, right
        ]
    )
    run = CliRun(args, stdin=stdin, interactive=True)
    browser(run.authorize_url())
    assert run.wait() == EXIT_OK, run.output
    text = run.stderr.text
    assert "Client Secret" in text and "Account ID" in text and "account *number*" in text
    for prompt in (
        "Client Secret (the secret's Value, not its ID): ",
        "Developer Token (Enter to skip): ",
        "Customer ID (the number after cid= in the Microsoft Advertising URL) (Enter to skip): ",
        "Account ID (the number after aid= in the Microsoft Advertising URL) (Enter to skip): ",
    ):
        assert prompt in text
    assert emulator.app.client_secret not in text
    doc = json.loads(run.stdout.text)
    assert doc["extra"]["account_id"] == emulator.account.id


@pytest.mark.parametrize(
    ("choice", "starts"),
    [
        ("2", "airflow connections import /"),
        ("3", "export AIRFLOW_CONN_MSADS_DEFAULT="),
        ("4", "{"),
    ],
)
def test_interactive_destination_menu_prints_the_chosen_form(emulator, redirect_uri, choice, starts):
    run = CliRun(flow_args(emulator, redirect_uri, "--no-validate"), stdin=FeedStdin([choice]), interactive=True)
    browser(run.authorize_url())
    assert run.wait() == EXIT_OK, run.output
    assert "Choice [1]: " in run.stderr.text
    assert run.stdout.text.startswith(starts)
    if choice == "2":  # the private file the command imports: its printed clean-up removes it
        import subprocess

        cleanup = run.stdout.text.split("&&", 1)[1]
        assert cleanup.strip().startswith("rm -r ")
        subprocess.run(["sh", "-c", cleanup], check=True)


def test_non_interactive_without_destination_is_a_usage_error(emulator, redirect_uri):
    run = CliRun(flow_args(emulator, redirect_uri))
    assert run.wait() == EXIT_USAGE
    assert "--save" in run.stderr.text and "--output" in run.stderr.text
    assert "/authorize?" not in run.stderr.text


def test_missing_secret_without_a_terminal_is_a_usage_error(emulator, redirect_uri, monkeypatch):
    args = flow_args(emulator, redirect_uri, "--output", "json")
    del args[args.index("--client-secret") : args.index("--client-secret") + 2]
    assert CliRun(args).wait() == EXIT_USAGE
    monkeypatch.setenv("MSADS_CLIENT_SECRET", emulator.app.client_secret)
    run = CliRun([*args, "--no-validate"])
    browser(run.authorize_url())
    assert run.wait() == EXIT_OK  # read from MSADS_CLIENT_SECRET


def test_no_browser_ever_times_out_with_advice(emulator, redirect_uri):
    args = flow_args(emulator, redirect_uri, "--output", "json")
    args[args.index("--timeout") + 1] = "0.5"
    run = CliRun(args)
    run.authorize_url()
    assert run.wait() == EXIT_ERROR
    assert "AADSTS50011" in run.stderr.text and "--manual" in run.stderr.text


def test_unregistered_redirect_uri_shows_microsofts_page_then_the_command_explains(emulator):
    unregistered = f"http://127.0.0.1:{free_port()}"
    args = flow_args(emulator, unregistered, "--output", "json")
    args[args.index("--timeout") + 1] = "1"
    run = CliRun(args)
    page = httpx.get(run.authorize_url(), follow_redirects=False, timeout=10)
    assert page.status_code == 400 and "AADSTS50011" in page.text  # Microsoft's page, no redirect
    assert run.wait() == EXIT_ERROR
    assert "AADSTS50011 means the redirect URI is not registered" in run.stderr.text


# -- busy port and --manual ------------------------------------------------------------------


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_busy_port_non_interactive_says_so_and_offers_both_ways(emulator, busy_port):
    uri = f"http://127.0.0.1:{busy_port}"
    emulator.app.redirect_uris.append(uri)
    run = CliRun(flow_args(emulator, uri, "--output", "json"))
    assert run.wait() == EXIT_ERROR
    text = run.stderr.text
    assert f"Port {busy_port}" in text and "already in use" in text
    assert "--redirect-uri" in text and "--manual" in text
    assert "/authorize?" not in text  # said before the user signs in


def test_busy_port_interactive_switches_to_manual(emulator, busy_port):
    uri = f"http://127.0.0.1:{busy_port}"
    emulator.app.redirect_uris.append(uri)
    stdin = FeedStdin(["y"])
    run = CliRun(flow_args(emulator, uri, "--output", "json", "--no-validate"), stdin=stdin, interactive=True)
    location = sign_in(run.authorize_url())
    stdin.feed(location)  # pasted from the address bar
    assert run.wait() == EXIT_OK, run.output
    assert "already in use" in run.stderr.text
    assert emulator.is_refresh_token_valid(json.loads(run.stdout.text)["extra"]["refresh_token"])


def test_manual_mode_with_the_whole_address(emulator, redirect_uri):
    stdin = FeedStdin()
    run = CliRun(flow_args(emulator, redirect_uri, "--manual", "--output", "json", "--no-validate"), stdin=stdin)
    stdin.feed(sign_in(run.authorize_url()))
    assert run.wait() == EXIT_OK, run.output
    assert "Copy the whole address" in run.stderr.text


def test_manual_mode_with_the_bare_code_and_a_non_loopback_redirect_uri(emulator):
    stdin = FeedStdin()
    args = flow_args(emulator, "https://example.com/callback", "--manual", "--output", "json", "--no-validate")
    run = CliRun(args, stdin=stdin)
    stdin.feed(query(sign_in(run.authorize_url()))["code"])
    assert run.wait() == EXIT_OK, run.output
    (exchange,) = [r for r in emulator.token_requests if r.get("grant_type") == "authorization_code"]
    assert exchange["redirect_uri"] == "https://example.com/callback"


def test_non_loopback_redirect_uri_needs_manual(emulator):
    run = CliRun(flow_args(emulator, "https://example.com/callback", "--output", "json"))
    assert run.wait() == EXIT_USAGE
    assert "--manual" in run.stderr.text


def test_manual_mode_wrong_state_and_expired_code(emulator, redirect_uri):
    stdin = FeedStdin()
    run = CliRun(flow_args(emulator, redirect_uri, "--manual", "--output", "json"), stdin=stdin)
    url = run.authorize_url()
    stdin.feed(sign_in(url).replace(query(url)["state"], "stale"))
    assert run.wait() == EXIT_ERROR
    assert "older run" in run.stderr.text

    emulator.code_lifetime = -1  # every code has expired by the time it is redeemed
    stdin = FeedStdin()
    run = CliRun(flow_args(emulator, redirect_uri, "--manual", "--output", "json"), stdin=stdin)
    stdin.feed(sign_in(run.authorize_url()))
    assert run.wait() == EXIT_ERROR
    assert "AADSTS70008" in run.stderr.text and "within a few minutes" in run.stderr.text


def test_manual_mode_without_input_is_explained(emulator, redirect_uri):
    stdin = FeedStdin()
    stdin.close_input()
    run = CliRun(flow_args(emulator, redirect_uri, "--manual", "--output", "json"), stdin=stdin)
    assert run.wait() == EXIT_ERROR
    assert "No address was pasted" in run.stderr.text


# -- the console script contract -------------------------------------------------------------


def test_python_dash_m_end_to_end(emulator, redirect_uri):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSADS_CLIENT")}
    env["MSADS_CLIENT_SECRET"] = emulator.app.client_secret
    args = flow_args(emulator, redirect_uri, "--output", "json", "--no-validate")
    del args[args.index("--client-secret") : args.index("--client-secret") + 2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_msads.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    err_lines: list[str] = []
    url = None
    timer = threading.Timer(20, proc.kill)
    timer.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("http") and "/authorize?" in line:
                url = line.strip()
                break
        assert url, "".join(err_lines)
        assert browser(url).status_code == 200
        out, rest = proc.communicate(timeout=20)
    finally:
        timer.cancel()
    assert proc.returncode == EXIT_OK, "".join(err_lines) + rest
    assert json.loads(out)["extra"]["developer_token"] == emulator.developer_token
    assert emulator.app.client_secret not in "".join(err_lines) + rest


def test_help_and_bad_options():
    run = CliRun(["--help"])
    assert run.wait() == EXIT_OK
    for option in ("--client-id", "--manual", "--save", "--reauthorize", "--output", "--yes", "--timeout"):
        assert option in run.stdout.text
    assert CliRun(["--output", "xml"]).wait() == EXIT_USAGE
    assert CliRun(["--save", "a", "--reauthorize", "b"]).wait() == EXIT_USAGE
    assert CliRun(["--timeout", "0"]).wait() == EXIT_USAGE


def test_bad_connection_ids_are_usage_errors_before_sign_in():
    app = ["--client-id", "00000000-1111-2222-3333-444444444444", "--client-secret", "abc1Q~not-a-guid-secret"]
    run = CliRun([*app, "--output", "env", "--conn-id", "msads-prod"])
    assert run.wait() == EXIT_USAGE
    assert "environment variable" in run.stderr.text and "/authorize?" not in run.stderr.text
    assert CliRun([*app, "--save", "has space"]).wait() == EXIT_USAGE
