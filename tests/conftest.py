"""Isolate Airflow before anything imports it.

Airflow reads its configuration once, at import time. Every test session therefore gets its own
AIRFLOW_HOME in a temp folder (SQLite metastore, DAGs folder, no example DAGs) and its own token
store folder, so a developer's ~/airflow and ~/.local/state are never touched. With
``MSADS_TEST_METASTORE=postgres`` the metastore is a throwaway local PostgreSQL instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="msads-airflow-home-"))
(_HOME / "dags").mkdir()
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
_POSTGRES = None
if os.environ.get("MSADS_TEST_METASTORE", "sqlite") == "postgres":
    from _support.pg_metastore import PostgresServer

    _POSTGRES = PostgresServer()
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = _POSTGRES.start()
elif os.environ.get("MSADS_TEST_METASTORE", "sqlite") != "sqlite":
    raise SystemExit("MSADS_TEST_METASTORE must be sqlite (the default) or postgres.")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
# One Fernet key for this process and every child (airflow db migrate, CLI runs, DAG tasks):
# otherwise the first migrate writes a random key into airflow.cfg that this process never read,
# and Variables written by a child cannot be read back here.
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "tVHlVQ3TsAfzQyC0b2ktWMhMAvnTDMRy6SQw-2sRN9w="
os.environ["MSADS_TOKEN_STORE_DIR"] = str(_HOME / "token-store")
os.environ.pop("MSADS_TOKEN_STORE", None)
for _name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
    os.environ.pop(_name)


def pytest_collection_modifyitems(items: list) -> None:
    """Run the tests that use Microsoft's ``msads`` SDK last (a second guard; see below).

    A test module that imports the SDK at collection replaces pydantic's attribute access before
    the per-test restore below has seen the original, so every later dag.test() fails on
    ``_ti_context_from_server``: refuse that at once, naming the cause.
    """
    from pydantic import BaseModel

    getattr_module = getattr(BaseModel.__dict__.get("__getattr__"), "__module__", "pydantic")
    if not str(getattr_module).startswith("pydantic"):
        raise pytest.UsageError(
            f"pydantic's BaseModel.__getattr__ was replaced by {getattr_module} while tests were collected: "
            "import Microsoft's SDK (bingads/openapi_client) inside a test or fixture, not at module level"
        )
    items.sort(key=lambda item: "sdk_fidelity" in item.nodeid)


@pytest.fixture(autouse=True)
def _pydantic_attribute_access_restored() -> Iterator[None]:
    """Every test starts with pydantic's own ``BaseModel.__getattr__``/``__setattr__``.

    Each SDK ``ServiceClient`` replaces them process-wide with versions that lose pydantic's private
    attributes, where Airflow 3's task runner keeps its state (``RuntimeTaskInstance`` loses
    ``_ti_context_from_server``). The provider makes that safe for clients built with
    ``hook.get_sdk_authorization_data()`` (``airflow_provider_msads.tokens.sdk``); tests that build clients
    without the hook would otherwise leak the replacement into every later test.
    """
    from pydantic import BaseModel

    before = {name: BaseModel.__dict__[name] for name in ("__getattr__", "__setattr__")}
    yield
    for name, function in before.items():
        if BaseModel.__dict__.get(name) is not function:
            setattr(BaseModel, name, function)


def pytest_unconfigure(config: object) -> None:
    if _POSTGRES is not None:
        _POSTGRES.stop()


@pytest.fixture(autouse=True)
def _fresh_process_cache() -> Iterator[None]:
    """Every test starts like a fresh worker: no access token cached in this process."""
    from airflow_provider_msads.tokens.auth import clear_process_cache

    clear_process_cache()
    yield
    clear_process_cache()


@pytest.fixture(autouse=True)
def _no_leaked_task_context() -> Iterator[None]:
    """Airflow 2's in-process task runner exports AIRFLOW_CTX_* into os.environ and leaves them;
    a later test would then look like a task to the provider (which picks its token store by it)."""
    yield
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CTX_")]:
        os.environ.pop(name)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's metastore, migrated once for every test folder (``airflow db migrate``)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return _HOME


@pytest.fixture
def dags_folder(airflow_db: Path) -> Path:
    return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


@pytest.fixture
def msads_conn(msads_emulator, monkeypatch: pytest.MonkeyPatch) -> dict:
    """``msads_default`` as an env-var connection pointing at the emulator."""
    conn = msads_emulator.connection_dict()
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", msads_emulator.connection_uri_json(conn["extra"]["refresh_token"]))
    return conn
