"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

The connection form (``conn-fields``, declared in :mod:`.connection.form`) is handed over here, not
by the hook, because Airflow 3.2+'s React UI draws it from this dict without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_msads import __version__
from airflow_provider_msads.connection.fields import CONN_TYPE
from airflow_provider_msads.connection.form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

HOOK_NAME = "Microsoft Advertising"
HOOK_CLASS = "airflow_provider_msads.hooks.msads.MicrosoftAdsHook"
PLUGIN_CLASS = "airflow_provider_msads.ui.plugin.MicrosoftAdsPlugin"


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
