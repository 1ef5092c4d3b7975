"""The provider's UI plugin loads on every Airflow of the matrix (2.11, 3.0 get the CLI only).

Run in a fresh interpreter: the point is what importing the plugin module pulls in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
import airflow.plugins_manager  # Airflow 3.0's own plugins manager already loads FastAPI: not ours to count
before = set(sys.modules)
from airflow_provider_msads.get_provider_info import get_provider_info
from airflow_provider_msads.ui import plugin
info = get_provider_info()
cls = plugin.MicrosoftAdsPlugin
print(json.dumps({
    "plugins": info["plugins"],
    "supported": plugin.ui_supported(),
    "apps": [a["url_prefix"] for a in getattr(cls, "fastapi_apps", [])],
    "views": [v["href"] for v in getattr(cls, "external_views", [])],
    "middlewares": len(getattr(cls, "fastapi_root_middlewares", [])),
    "heavy": sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("fastapi", "starlette")),
}))
"""


def test_plugin_imports_without_fastapi_and_registers_only_where_supported() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["plugins"] == [
        {"name": "microsoft_advertising", "plugin-class": "airflow_provider_msads.ui.plugin.MicrosoftAdsPlugin"}
    ]
    assert data["heavy"] == []  # nothing of FastAPI/Starlette at import: schedulers and workers load plugins too
    if data["supported"]:
        assert data["apps"] == ["/msads"]
        assert data["views"] == ["/msads/", "/msads/health"]
        assert data["middlewares"] == 1
    else:  # Airflow 2.11 / 3.0: msads-authorize is the way; the plugin registers nothing
        assert data["apps"] == [] and data["views"] == [] and data["middlewares"] == 0


LOADED = """
import json
from airflow import plugins_manager as p
if hasattr(p, "_get_plugins"):
    plugins, errors = p._get_plugins()
else:  # Airflow 2.11 / 3.0
    p.ensure_plugins_loaded()
    plugins, errors = p.plugins, p.import_errors
print(json.dumps({"names": [x.name for x in plugins], "errors": {k: str(v) for k, v in errors.items()}}))
"""


@pytest.mark.parametrize("lazy", ["True", "False"])
def test_airflow_registers_the_plugin_once_whether_or_not_it_discovers_providers_eagerly(lazy: str) -> None:
    """Provider-declared plugins are read only with lazy_discover_providers=False; the entry point covers
    the default, and is an empty stand-in otherwise: one plugin, no import error, either way."""
    env = {**os.environ, "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": lazy, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
    result = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["names"].count("microsoft_advertising") == 1, data
    assert not [k for k in data["errors"] if "msads" in k or "microsoft" in k], data


def test_a_failed_state_lookup_logs_the_exception_type_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The redirect catcher's state lookup: no traceback, which could carry the state-derived key."""
    pytest.importorskip("fastapi", reason="the UI plugin needs Airflow 3.1+ (FastAPI)")
    import asyncio

    from airflow_provider_msads.ui import app, flow

    class Broken:
        def peek(self, state: str) -> None:
            raise RuntimeError(f"Variable msads_authorize__{state} unreadable")

    monkeypatch.setattr(flow, "PendingStore", Broken)
    with caplog.at_level("DEBUG", logger=app.log.name):
        issued = asyncio.run(app.is_issued_state(b"code=abc&state=state-nonce-123"))
    assert issued is False
    (record,) = [r for r in caplog.records if "authorization state" in r.getMessage()]
    assert record.getMessage() == "Could not look up an authorization state (RuntimeError)."
    assert record.exc_info is None and "state-nonce-123" not in caplog.text


def test_validate_now_verdicts_are_kept_per_connection_without_secrets(cli_airflow_db: Path) -> None:
    """*Validate now* keeps its verdict in a Variable (the health page reads it on any API-server
    worker, after a restart too); only the fields the page shows, never a token."""
    from airflow.models.variable import Variable

    from airflow_provider_msads.cli import metastore

    report = {
        "conn_id": "msads_kept",
        "ok": True,
        "retryable": False,
        "checked_at": "2026-12-03T19:00:00Z",
        "summary": "msads_kept: OK - credentials valid",
        "verdicts": {"refresh_token": {"detail": "rotated"}},
        "access_token": "must-not-be-kept",
    }
    key = b"k" * 32
    metastore.record_validation("msads_kept", report, "Validate now, admin", key=key)
    metastore.record_validation(
        "other/id", {**report, "conn_id": "other/id", "ok": False}, "Validate now, bob", key=key
    )

    kept = metastore.recorded_validations(["msads_kept", "other/id", "never_validated"], key=key)
    assert kept["msads_kept"] == {
        "conn_id": "msads_kept",
        "ok": True,
        "retryable": False,
        "checked_at": "2026-12-03T19:00:00Z",
        "summary": "msads_kept: OK - credentials valid",
        "source": "Validate now, admin",
    }
    assert kept["other/id"]["ok"] is False and "never_validated" not in kept
    with metastore.server_context():
        raw = Variable.get("msads_last_validation__msads_kept")
    assert "must-not-be-kept" not in raw and "rotated" not in raw


def test_the_health_page_shows_the_newer_of_the_dag_and_validate_now() -> None:
    pytest.importorskip("fastapi", reason="the UI plugin needs Airflow 3.1+ (FastAPI)")
    from airflow_provider_msads.ui.health import newest_verdicts

    dag = {
        "a": {"conn_id": "a", "ok": False, "checked_at": "2026-12-03T08:00:00Z"},
        "b": {"conn_id": "b", "ok": True, "checked_at": "2026-12-03T08:00:00Z"},
        "d": {"conn_id": "d", "ok": False, "checked_at": "2026-12-03T08:00:00Z"},
    }
    recorded = {
        "d": {"conn_id": "d", "ok": True, "checked_at": "2026-12-03T08:00:00Z", "source": "Validate now, admin"},
        "a": {"conn_id": "a", "ok": True, "checked_at": "2026-12-03T09:30:00Z", "source": "Validate now, admin"},
        "b": {"conn_id": "b", "ok": False, "checked_at": "2026-12-02T23:00:00Z", "source": "Validate now, bob"},
        "c": {"conn_id": "c", "ok": True, "checked_at": "2026-12-01T10:00:00Z", "source": "Validate now, admin"},
    }
    shown = newest_verdicts(dag, recorded)
    assert (shown["a"]["ok"], shown["a"]["source"]) == (True, "Validate now, admin")  # fixed, then validated
    assert (shown["b"]["ok"], shown["b"]["source"]) == (True, "health-check DAG")  # the DAG ran after
    assert shown["c"]["source"] == "Validate now, admin"  # never checked by the DAG
    assert (shown["d"]["ok"], shown["d"]["source"]) == (True, "Validate now, admin")  # the same second


def test_a_recorded_verdict_is_believed_only_with_its_seal(cli_airflow_db: Path) -> None:
    """Variable editors may write ``msads_last_validation__…``: an unsealed verdict, one sealed
    under another key, or one sealed for another connection's Variable is not read back."""
    from airflow.models.variable import Variable

    from airflow_provider_msads.cli import metastore

    key = b"s" * 32
    verdict = {"conn_id": "msads_sealed", "ok": True, "checked_at": "2026-12-03T19:00:00Z", "summary": "fine"}
    variable = metastore._validation_key("msads_sealed")
    with metastore.server_context():
        Variable.set(variable, json.dumps({**verdict, "source": "Validate now, admin"}))  # as before issue 25
    assert metastore.recorded_validations(["msads_sealed"], key=key) == {}
    metastore.record_validation("msads_sealed", verdict, "Validate now, admin", key=b"x" * 32)
    assert metastore.recorded_validations(["msads_sealed"], key=key) == {}
    metastore.record_validation("msads_other", {**verdict, "conn_id": "msads_other"}, "Validate now", key=key)
    with metastore.server_context():
        Variable.set(variable, Variable.get(metastore._validation_key("msads_other")))
    assert metastore.recorded_validations(["msads_sealed"], key=key) == {}
    metastore.record_validation("msads_sealed", verdict, "Validate now, admin", key=key)
    assert metastore.recorded_validations(["msads_sealed"], key=key)["msads_sealed"]["ok"] is True


def test_a_verdict_from_the_future_is_never_the_newest() -> None:
    pytest.importorskip("fastapi", reason="the UI plugin needs Airflow 3.1+ (FastAPI)")
    from airflow_provider_msads.ui.health import newest_verdicts

    dag = {"a": {"conn_id": "a", "ok": False, "checked_at": "2026-12-03T08:00:00Z"}}
    recorded = {
        "a": {"conn_id": "a", "ok": True, "checked_at": "9999-12-31T23:59:59Z", "source": "Validate now, admin"},
        "b": {"conn_id": "b", "ok": True, "checked_at": "9999-12-31T23:59:59+00:00", "source": "Validate now, x"},
        "c": {"conn_id": "c", "ok": True, "checked_at": "not a time", "source": "Validate now, x"},
    }
    shown = newest_verdicts(dag, recorded)
    assert shown == {"a": {**dag["a"], "source": "health-check DAG"}}


def test_the_root_callback_matches_under_a_sub_path() -> None:
    """``[api] base_url = https://host/airflow``: Airflow's app sets the ASGI root_path; the paths
    below it are what the middleware matches (and a proxy that strips the prefix works too)."""
    from airflow_provider_msads.ui.plugin import route_path

    assert route_path({"path": "/airflow/msads/callback", "root_path": "/airflow"}) == "/msads/callback"
    assert route_path({"path": "/airflow/", "root_path": "/airflow"}) == "/"
    assert route_path({"path": "/airflow", "root_path": "/airflow/"}) == "/"
    assert route_path({"path": "/msads/callback", "root_path": "/airflow"}) == "/msads/callback"
    assert route_path({"path": "/airflowx/msads/callback", "root_path": "/airflow"}) == "/airflowx/msads/callback"
    assert route_path({"path": "/", "root_path": ""}) == "/"
