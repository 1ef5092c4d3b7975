"""Airflow discovers the provider, its hook and the connection form it declares."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _airflow(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _json(stdout: str) -> list:
    """Airflow 3.0 logs plugin setup to stdout before the JSON; skip to the document."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("[{", "[]")))
    return json.loads("\n".join(lines[start:]))


def test_cli_lists_the_provider_and_its_hook():
    provider = _json(_airflow("providers", "get", "airflow-provider-msads", "-o", "json"))
    assert provider[0]["Provider"] == "airflow-provider-msads"
    hooks = _json(_airflow("providers", "hooks", "-o", "json"))
    ours = [h for h in hooks if h.get("connection_type") == "msads"]
    assert ours == [
        {
            "connection_type": "msads",
            "class": "airflow_provider_msads.hooks.msads.MicrosoftAdsHook",
            "conn_id_attribute_name": "msads_conn_id",
            "package_name": "airflow-provider-msads",
            "hook_name": "Microsoft Advertising",
        }
    ]


def _form_as_the_ui_sees_it() -> tuple[dict[str, dict], dict]:
    """(extra fields as {name: {label, secret, description, enum}}, standard-field behaviour).

    Airflow 3 serves the React form from HookMetaService (conn-fields on 3.2+, our wtforms method
    through its mocks on 3.0/3.1); Airflow 2.11's FAB form is built from the wtforms widgets.
    """
    from airflow import __version__ as airflow_version

    if int(airflow_version.split(".")[0]) >= 3:
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

        (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "msads"]
        dumped = meta.model_dump()
        fields = {
            name: {
                "label": param["schema"]["title"],
                "secret": param["schema"].get("format") == "password",
                "description": param["description"],
                "enum": param["schema"].get("enum"),
            }
            for name, param in dumped["extra_fields"].items()
        }
        std = dumped["standard_fields"]
        behaviour = {
            "hidden": {name for name in ("host", "port", "url_schema") if std[name]["hidden"]},
            "relabeling": {name: std[name]["title"] for name in ("login", "password")},
        }
        return fields, behaviour

    from airflow.providers_manager import ProvidersManager
    from wtforms.validators import AnyOf

    manager = ProvidersManager()
    fields = {}
    for key, info in manager.connection_form_widgets.items():
        if not key.startswith("extra__msads__"):
            continue
        unbound = info.field
        enums = [v.values for v in unbound.kwargs["validators"] if isinstance(v, AnyOf)]
        fields[key.removeprefix("extra__msads__")] = {
            "label": str(unbound.args[0]),
            "secret": info.is_sensitive,
            "description": unbound.kwargs["description"],
            "enum": list(enums[0]) if enums else None,
        }
    raw = manager.field_behaviours["msads"]
    hidden = {"url_schema" if name == "schema" else name for name in raw["hidden_fields"]}
    return fields, {"hidden": hidden, "relabeling": raw["relabeling"]}


def test_connection_form_has_the_six_fields_masked_where_secret():
    fields, behaviour = _form_as_the_ui_sees_it()
    assert set(fields) == {"developer_token", "refresh_token", "customer_id", "account_id", "environment"}
    assert {name for name, f in fields.items() if f["secret"]} == {"developer_token", "refresh_token"}
    assert {name: f["label"] for name, f in fields.items()} == {
        "developer_token": "Developer Token",
        "refresh_token": "Refresh Token",
        "customer_id": "Customer ID",
        "account_id": "Account ID",
        "environment": "Environment",
    }
    assert fields["environment"]["enum"] == ["production", "sandbox"]
    for field in fields.values():
        assert field["description"], "every field says where its value comes from"

    assert behaviour["hidden"] == {"host", "url_schema", "port"}
    assert behaviour["relabeling"] == {"login": "Client ID", "password": "Client Secret"}


def test_metastore_is_the_one_asked_for(airflow_db):
    """`make test-postgres` must really run on PostgreSQL, not fall back to SQLite unnoticed."""
    from airflow import settings

    wanted = os.environ.get("MSADS_TEST_METASTORE", "sqlite")
    assert settings.engine is not None
    assert settings.engine.dialect.name == {"sqlite": "sqlite", "postgres": "postgresql"}[wanted]
    _airflow("db", "check")  # and the CLI's own connection reaches it
