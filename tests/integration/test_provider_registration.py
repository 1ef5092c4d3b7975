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


def test_cli_lists_the_provider_and_its_hook():
    provider = json.loads(_airflow("providers", "get", "airflow-provider-msads", "-o", "json"))
    assert provider[0]["Provider"] == "airflow-provider-msads"
    hooks = json.loads(_airflow("providers", "hooks", "-o", "json"))
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


def test_connection_form_has_the_six_fields_masked_where_secret():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = {
        name.removeprefix("extra__msads__"): info
        for name, info in manager.connection_form_widgets.items()
        if name.startswith("extra__msads__")
    }
    assert set(widgets) == {"developer_token", "refresh_token", "customer_id", "account_id", "environment"}
    assert widgets["developer_token"].is_sensitive
    assert widgets["refresh_token"].is_sensitive
    assert not widgets["customer_id"].is_sensitive
    assert not widgets["account_id"].is_sensitive
    labels = {name: info.field["schema"]["title"] for name, info in widgets.items()}
    assert labels == {
        "developer_token": "Developer Token",
        "refresh_token": "Refresh Token",
        "customer_id": "Customer ID",
        "account_id": "Account ID",
        "environment": "Environment",
    }
    assert widgets["environment"].field["schema"]["enum"] == ["production", "sandbox"]
    for info in widgets.values():
        assert info.field["description"], "every field says where its value comes from"

    behaviour = manager.field_behaviours["msads"]
    assert set(behaviour["hidden_fields"]) == {"host", "schema", "port"}
    assert behaviour["relabeling"] == {"login": "Client ID", "password": "Client Secret"}
