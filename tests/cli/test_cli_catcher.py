"""The redirect catcher: loopback only, one redirect, stray requests ignored, wrong state rejected."""

from __future__ import annotations

import html
import re
import socket
import stat
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from _support.cli import free_port

from airflow_provider_msads.cli.authorize import OnboardingError
from airflow_provider_msads.cli.catcher import (
    PortInUseError,
    RedirectCatcher,
    RedirectTimeoutError,
    RedirectURIError,
    listen_address,
)
from airflow_provider_msads.cli.console import EXIT_ERROR


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5)


def test_stray_requests_are_answered_and_the_wait_goes_on():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="st8", timeout=5) as catcher:
        assert _get(f"{base}/favicon.ico").status_code == 404
        assert _get(f"{base}/").status_code == 404  # no code, no error
        assert httpx.post(f"{base}/?code=x&state=st8", timeout=5).status_code == 405
        page = _get(f"{base}/?code=the-code&state=st8")
        assert page.status_code == 200 and "may close this window" in page.text
        assert page.headers["cache-control"] == "no-store"
        redirect = catcher.wait()
        assert redirect.code == "the-code" and not redirect.is_error
        assert catcher.stray_requests == 2
        again = _get(f"{base}/?code=other&state=st8")
        assert "already received" in again.text.lower()
    with pytest.raises(httpx.ConnectError):  # the port is free again
        _get(f"{base}/?code=x&state=st8")


def test_redirect_path_must_match():
    port = free_port()
    uri = f"http://127.0.0.1:{port}/auth/callback"
    with RedirectCatcher(uri, expected_state="s", timeout=5) as catcher:
        assert _get(f"http://127.0.0.1:{port}/?code=c&state=s").status_code == 404
        assert _get(f"{uri}?code=c&state=s").status_code == 200
        assert catcher.wait().code == "c"


def test_wrong_state_is_rejected_explained_and_the_real_redirect_still_wins():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rejected = []
    with RedirectCatcher(base, expected_state="good", timeout=5, on_rejected=rejected.append) as catcher:
        page = _get(f"{base}/?code=evil&state=bad")
        assert page.status_code == 400 and "not for the running msads-authorize" in page.text
        assert len(rejected) == 1 and "older" in str(rejected[0])
        _get(f"{base}/?code=good-code&state=good")
        assert catcher.wait().code == "good-code"


def test_error_redirect_ends_the_wait():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="s", timeout=5) as catcher:
        page = _get(f"{base}/?error=access_denied&error_description=AADSTS65004%3A+declined&state=s")
        assert page.status_code == 200 and "access_denied" in page.text
        redirect = catcher.wait()
        assert redirect.is_error and redirect.error == "access_denied"


def test_timeout_instead_of_hanging_mentions_foreign_answers():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="s", timeout=0.3) as catcher:
        _get(f"{base}/?code=c&state=old")
        with pytest.raises(RedirectTimeoutError) as info:
            catcher.wait()
    text = str(info.value)
    assert "within 0.3 seconds" in text
    assert "foreign `state`" in text and "--manual" in text and "AADSTS50011" in text


def test_busy_port_is_reported_with_both_ways_out():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError) as info:
            RedirectCatcher(f"http://127.0.0.1:{port}", expected_state="s").start()
    err = info.value
    assert err.port == port and err.field == "redirect_uri"
    assert "--redirect-uri" in err.remedy and "--manual" in err.remedy


def test_port_8080_names_airflow():
    catcher = RedirectCatcher("http://localhost:8080", expected_state="s")
    assert "Airflow's own web server" in str(catcher._busy("127.0.0.1"))


def test_localhost_listens_on_loopback_only():
    port = free_port()
    with RedirectCatcher(f"http://localhost:{port}", expected_state="s", timeout=5) as catcher:
        addresses = {server.server_address[0] for server in catcher._servers}
        assert "127.0.0.1" in addresses and addresses <= {"127.0.0.1", "::1"}
        _get(f"http://127.0.0.1:{port}/?code=c&state=s")
        assert catcher.wait().code == "c"


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("http://example.com:8080", "--manual"),
        ("http://0.0.0.0:8080", "--manual"),
        ("http://192.168.1.10:8080", "--manual"),
        ("https://localhost:8080", "https"),
        ("ftp://localhost:8080", "http URL"),
        ("http://localhost:notaport", "not a valid URL"),
    ],
)
def test_non_loopback_or_unservable_redirect_uris_are_refused(uri: str, needle: str):
    with pytest.raises(RedirectURIError) as info:
        listen_address(uri)
    assert needle in str(info.value)


def test_default_port_and_path():
    assert listen_address("http://localhost") == ("localhost", 80, "/")
    assert listen_address("http://127.0.0.1:8765/cb") == ("127.0.0.1", 8765, "/cb")


def test_concurrent_redirects_yield_exactly_one():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="s", timeout=5) as catcher:
        threads = [threading.Thread(target=_get, args=(f"{base}/?code=c{i}&state=s",)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first = catcher.wait()
        assert first.code in {f"c{i}" for i in range(5)}
        with pytest.raises(RedirectTimeoutError):
            catcher.wait(timeout=0.1)


# -- the one-time start link (issue 18 item 6): another local user reads the browser's command line


AUTHORIZE = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=c&state=st8"


def test_start_link_sets_the_cookie_and_only_its_browser_is_believed():
    """The user's browser opens the start link; the other user's answer (their own sign-in, even with
    the right state) lacks the link's cookie and is refused, while the user's own answer is taken.
    (Opening the link a second time stops the run: next test.)"""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rejected = []
    with RedirectCatcher(base, expected_state="st8", timeout=5, on_rejected=rejected.append) as catcher:
        start = catcher.start_url(AUTHORIZE)
        assert "st8" not in start and start.startswith(base)  # nothing of the request on the command line
        with httpx.Client(timeout=5) as user, httpx.Client(timeout=5) as other:
            first = user.get(start)
            assert first.status_code == 302 and first.headers["location"] == AUTHORIZE
            assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Lax" in first.headers["set-cookie"]
            # The other user signs in with their own account, somehow knowing the state: refused.
            forged = other.get(f"{base}/?code=attacker-code&state=st8")
            assert forged.status_code == 400
            assert len(rejected) == 1 and "cookie" in str(rejected[0])
            ours = user.get(f"{base}/?code=user-code&state=st8")
            assert ours.status_code == 200
        assert catcher.wait().code == "user-code"


def test_start_link_opened_first_by_someone_else_stops_the_run():
    """The other user wins the race to the start link: the user's browser then finds it used, and
    the run stops before any code is accepted, theirs included."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="st8", timeout=5) as catcher:
        start = catcher.start_url(AUTHORIZE)
        with httpx.Client(timeout=5) as user, httpx.Client(timeout=5) as other:
            assert other.get(start).status_code == 302  # the other user now has the state and a cookie
            page = user.get(start)
            assert page.status_code == 409 and "already used" in page.text
            with pytest.raises(OnboardingError, match="opened twice"):
                catcher.wait()
            late = other.get(f"{base}/?code=attacker-code&state=st8")
            assert "already received" in late.text.lower()  # the run is over; nothing more is taken


def test_printed_url_without_start_link_still_works():
    """--no-browser: the user pastes the printed authorize URL; no start link, the state alone decides."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="st8", timeout=5) as catcher:
        assert _get(f"{base}/?code=c&state=st8").status_code == 200
        assert catcher.wait().code == "c"


def _forwarded_link(page: Path) -> str:
    """What the browser does with the private page: follow its meta refresh (read as its owner)."""
    match = re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', page.read_text())
    assert match is not None
    return html.unescape(match.group(1))


def test_the_command_opens_the_browser_on_a_private_file_and_prints_the_authorize_url(
    emulator, redirect_uri, monkeypatch
):
    """The browser's command line names a private file (issue 25 item 3), not the one-time link nor
    the authorize URL; the file forwards to the link and is gone once the link is used."""
    from _support.cli import CliRun, flow_args

    from airflow_provider_msads.cli import onboarding

    opened: list[str] = []
    monkeypatch.setattr(onboarding, "open_browser", lambda url: opened.append(url) or True)
    argv = [a for a in flow_args(emulator, redirect_uri, "--output", "json", "--no-validate") if a != "--no-browser"]
    run = CliRun(argv)
    printed = run.authorize_url()
    with httpx.Client(timeout=5) as browser:
        run.stderr.wait_for_text("one-time link")
        (command_line,) = opened
        assert command_line.startswith("file:///") and "msads-authorize/start" not in command_line
        page = Path(urlsplit(command_line).path)
        assert stat.S_IMODE(page.stat().st_mode) == 0o600 and stat.S_IMODE(page.parent.stat().st_mode) == 0o700
        start = _forwarded_link(page)
        assert start.startswith(redirect_uri + "/msads-authorize/start/")
        state = printed.split("state=")[1].split("&")[0]
        assert state not in start and "client_id" not in start
        to_microsoft = browser.get(start)
        assert to_microsoft.headers["location"] == printed
        assert not page.parent.exists()  # removed once the link was used
        back = httpx.get(printed, follow_redirects=False, timeout=5).headers["location"]
        assert browser.get(back).status_code == 200  # the browser that opened the link, with its cookie
    assert run.wait() == 0, run.output


def test_the_private_file_goes_when_the_run_ends_unused():
    port = free_port()
    with RedirectCatcher(f"http://127.0.0.1:{port}", expected_state="st8", timeout=5) as catcher:
        page = catcher.start_file(AUTHORIZE)
        assert catcher.start_url(AUTHORIZE) in html.unescape(page.read_text())
    assert not page.parent.exists()


def test_start_link_opened_again_after_an_answer_was_accepted_fails_closed():
    """The other user opened the link first and their answer was accepted before the user's browser
    loaded it: the user's load is the second use, and the run must not keep that answer."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with RedirectCatcher(base, expected_state="st8", timeout=5) as catcher:
        start = catcher.start_url(AUTHORIZE)
        catcher.check_start_link()  # nothing wrong yet
        with httpx.Client(timeout=5) as user, httpx.Client(timeout=5) as other:
            assert other.get(start).status_code == 302
            assert other.get(f"{base}/?code=attacker-code&state=st8").status_code == 200
            assert catcher.wait().code == "attacker-code"  # accepted: it had the cookie
            assert user.get(start).status_code == 409
        assert catcher.start_link_reused
        with pytest.raises(OnboardingError, match="after a sign-in answer had been accepted") as caught:
            catcher.check_start_link()
        assert "Nothing was saved" in str(caught.value)


def test_the_command_refuses_to_save_when_the_link_was_opened_after_the_answer(emulator, redirect_uri, monkeypatch):
    """The whole race through the command: the other user's redirect is accepted and even exchanged,
    then the user's browser loads the link; nothing is printed, the run says why."""
    from _support.cli import CliRun, flow_args

    from airflow_provider_msads.cli import onboarding

    opened: list[str] = []
    monkeypatch.setattr(onboarding, "open_browser", lambda url: opened.append(url) or True)
    user_loaded = threading.Event()
    real_exchange = onboarding.exchange

    def exchange_after_the_user_loads(*args, **kwargs):  # the exchange happens while the user's browser loads
        assert user_loaded.wait(10)
        return real_exchange(*args, **kwargs)

    monkeypatch.setattr(onboarding, "exchange", exchange_after_the_user_loads)
    argv = [a for a in flow_args(emulator, redirect_uri, "--output", "json", "--no-validate") if a != "--no-browser"]
    run = CliRun(argv)
    printed = run.authorize_url()
    run.stderr.wait_for_text("one-time link")
    start = _forwarded_link(Path(urlsplit(opened[0]).path))  # what the other user got hold of
    with httpx.Client(timeout=5) as user, httpx.Client(timeout=5) as other:
        assert other.get(start).status_code == 302
        back = httpx.get(printed, follow_redirects=False, timeout=5).headers["location"]
        assert other.get(back).status_code == 200
        assert user.get(start).status_code == 409
        user_loaded.set()
    assert run.wait() == EXIT_ERROR, run.output
    assert run.stdout.text == ""  # nothing printed (nor saved)
    assert "after a sign-in answer had been accepted" in run.stderr.text
