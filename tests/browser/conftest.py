"""Fixtures of the browser suite: a migrated metastore, a real Airflow API server, headless Chromium.

The browser is Debian's ``chromium`` driven by the ``playwright`` Python package with
``executable_path``; Playwright's own browser download (``playwright install``) is never used.
``make test`` installs Chromium when it can (root and apt-get, ``scripts/debian-deps.sh``).
Where it could not, the browser tests are left out with one line naming the install command, so
that ``make test`` on a developer's machine is not an error. ``.ci/run`` sets
``MSADS_REQUIRE_BROWSER=1``, which makes them fail instead: in CI a silently skipped UI
test would hide a broken connection form.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.api_server import api_server

CHROMIUM_ENV = "MSADS_BROWSER_EXECUTABLE"
REQUIRE_ENV = "MSADS_REQUIRE_BROWSER"  # "1" in .ci/run: a missing browser fails instead of skipping
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# What Chromium needs on a closed, screenless machine (as root): no sandbox, no GPU, and none of
# the background calls to Google's hosts that this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "Install it with `sudo apt-get install -y chromium` (Debian's package; `make test` runs this itself "
    "as root); `playwright` comes with the test extra (`pip install -e '.[test]'`); never `playwright install`. "
    f"{CHROMIUM_ENV} names another Chromium binary"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the Airflow UI in headless Chromium")


@pytest.fixture(scope="session")
def browser_airflow_db(airflow_db: Path) -> Path:
    """The session's migrated metastore (tests/conftest.py), under this folder's historic name."""
    return airflow_db


def _load_airflow() -> None:
    # While the server starts, load Airflow here too: the test reads the saved connection back
    # through the hook, and that first import costs about 10 s that would otherwise add up.
    from airflow.models.connection import Connection  # noqa: F401

    import airflow_provider_msads.hooks.msads  # noqa: F401


@pytest.fixture(scope="module")
def airflow_api_server(browser_airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``airflow api-server`` on a free loopback port, everyone admin (no login page); its base URL."""
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the Test button, as in `make demo`
    }
    with api_server(log_path, env, while_starting=_load_airflow) as base_url:
        print(f"Airflow API server at {base_url}, log {log_path}")
        yield base_url


def _browser_problem() -> str | None:
    """Why the browser tests cannot run here (Chromium or playwright missing), or None."""
    executable = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        return f"Chromium not found at {executable}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the `playwright` Python package is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a browser, leave the browser tests out and say so in ONE line at the end.

    Not under MSADS_REQUIRE_BROWSER=1 (.ci/run): there the ``chromium`` fixture fails them.
    """
    problem = _browser_problem()
    if problem is None or os.environ.get(REQUIRE_ENV) == "1":
        return
    browser = [item for item in items if item.get_closest_marker("browser")]
    if browser:
        items[:] = [item for item in items if not item.get_closest_marker("browser")]
        config.hook.pytest_deselected(items=browser)
        config.stash[_NOT_RUN] = f"BROWSER TESTS NOT RUN ({len(browser)} left out): {problem}. {INSTALL_HINT}."


_NOT_RUN = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _NOT_RUN in config.stash:
        terminalreporter.write_line(config.stash[_NOT_RUN], yellow=True, bold=True)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``). A missing browser fails here only under
    MSADS_REQUIRE_BROWSER=1 (otherwise the tests were left out at collection)."""
    problem = _browser_problem()
    if problem is not None:
        pytest.fail(f"{problem}. {INSTALL_HINT}. ({REQUIRE_ENV}=1: CI requires the browser tests.)", pytrace=False)
    from playwright.sync_api import sync_playwright

    executable = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    # launch() gives every run a fresh temporary profile (user-data-dir) and deletes it on close.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where the test writes its screenshots: ``$MSADS_TEST_OUTPUT/<test>`` or the test's tmp_path."""
    root = os.environ.get("MSADS_TEST_OUTPUT")
    folder = Path(root) / request.node.name if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"Screenshots of {request.node.name}: {folder}")
    return folder
