"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields``), not in the hook, because Airflow 3.2+'s
React UI draws it from this dict without importing the hook. Descriptions say where each value
comes from in the credentials guide, since that is the question users have while typing.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_msads import __version__
from airflow_provider_msads.fields import CONN_TYPE, FIELD_LABELS, OPTION_ORDER

HOOK_NAME = "Microsoft Advertising"
HOOK_CLASS = "airflow_provider_msads.hooks.msads.MicrosoftAdsHook"
PLUGIN_CLASS = "airflow_provider_msads.ui.plugin.MicrosoftAdsPlugin"


def _text(name: str, description: str, *, secret: bool = False, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    if pattern:
        schema["pattern"] = pattern
    return {"label": FIELD_LABELS[name], "description": description, "schema": schema}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "developer_token": _text(
        "developer_token",
        "From Microsoft Advertising: Settings > Developer settings > Request token (guide step 4).",
        secret=True,
    ),
    "refresh_token": _text(
        "refresh_token",
        "From `msads-authorize` or guide steps 5-6. Rotated automatically afterwards; paste a new one only "
        "after re-authorizing.",
        secret=True,
    ),
    "customer_id": _text(
        "customer_id",
        "The number after cid= in the Microsoft Advertising URL (guide step 3).",
        pattern=r"^\s*[0-9]+\s*$",
    ),
    "account_id": _text(
        "account_id",
        "The number after aid= in the Microsoft Advertising URL (guide step 3); not the account number like F1234ABC.",
        pattern=r"^\s*[0-9]+\s*$",
    ),
    "environment": {
        "label": FIELD_LABELS["environment"],
        "description": "production, or sandbox for Microsoft Advertising's sandbox accounts and developer token.",
        "schema": {"type": ["string", "null"], "enum": ["production", "sandbox"], "default": "production"},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": FIELD_LABELS["client_id"], "password": FIELD_LABELS["client_secret"]},
    "placeholders": {
        "login": "Application (client) ID of the app registration (guide step 2), a GUID",
        "password": "The client secret's Value, not its Secret ID (guide step 2)",
        "extra": '{"tenant": "common"}  (optional overrides: '
        + ", ".join(name for name in OPTION_ORDER if name not in CONN_FIELDS)
        + ")",
        "customer_id": "e.g. 251186883",
        "account_id": "e.g. 180535609",
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-msads",
        "name": "Microsoft Advertising",
        "description": "Microsoft Advertising (Bing Ads) connection, hook with rotating refresh tokens, "
        "credential validation operator, sensor and trigger, account listing, and a Reporting v13 report "
        "operator (CSV or typed Parquet to a path or object storage, with Asset events for data-aware "
        "scheduling).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": HOOK_NAME,
                "external-doc-url": "https://learn.microsoft.com/advertising/guides/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_msads.hooks.msads"]}],
        "operators": [
            {
                "integration-name": HOOK_NAME,
                "python-modules": [
                    "airflow_provider_msads.operators.msads",
                    "airflow_provider_msads.operators.reporting",
                    "airflow_provider_msads.operators.bulk",
                ],
            }
        ],
        "sensors": [{"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_msads.sensors.msads"]}],
        "triggers": [
            {
                "integration-name": HOOK_NAME,
                "python-modules": [
                    "airflow_provider_msads.triggers.msads",
                    "airflow_provider_msads.triggers.reporting",
                    "airflow_provider_msads.triggers.bulk",
                ],
            }
        ],
        # Airflow 3.1+: "Authorize with Microsoft" and "Token health" pages (the class registers nothing on
        # older versions, which only read this entry).
        "plugins": [{"name": "microsoft_advertising", "plugin-class": PLUGIN_CLASS}],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": HOOK_NAME,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
