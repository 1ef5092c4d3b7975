"""A faithful, local emulator of the Microsoft services this provider talks to.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1, random port, daemon
thread) that answers like

* the Microsoft identity platform v2 endpoints ``/{tenant}/oauth2/v2.0/token`` and
  ``/{tenant}/oauth2/v2.0/authorize`` (refresh-token rotation, AADSTS error bodies, PKCE,
  single-use codes that expire), and
* the Microsoft Advertising Customer Management REST API v13 (``GetUser``, ``GetAccount``,
  ``GetAccountsInfo``) with its two fault shapes (``AdApiFaultDetail`` and ``ApiFault``), and
* the Reporting REST API v13 (``GenerateReport/Submit`` and ``/Poll``) with expiring,
  credential-free download links that stream zipped CSV reports of any size, and
* the Bulk REST API v13 download side (``Campaigns/DownloadByAccountIds``, ``/DownloadByCampaignIds``,
  ``BulkDownloadStatus/Query``) over an entity tree per account of any size, with delta downloads
  of the changes a test makes through ``emulator.bulk``.

Why an emulator and not mocks: the failures that break Microsoft Ads pipelines in production
(a rotated refresh token that was never saved, the secret *ID* pasted instead of its *value*, a
developer token for the wrong environment, 90 days of inactivity, throttling, resets) only show up
when the whole HTTP exchange is played for real. Tests, users' own DAG tests (through the
``msads_emulator`` pytest fixture), the demo and the benchmarks all use this one server; the
fidelity test suite checks it against Microsoft's own ``msads`` REST SDK.

Every credential the emulator mints is fake and only valid against this emulator. Nothing here
logs a token or a secret: the HTTP request log is silenced (the default one prints query
strings) and internal errors are logged with method and path only.

Layout: ``_facade`` (the class, world building, routing), ``_http`` (server plumbing),
``_injection`` (fault injection), ``_identity`` (identity platform), ``_ads_api`` (what every Ads
REST service does around its operations: caller checks, fault shapes, TrackingId),
``_customer_management``, ``_reporting`` and ``_bulk`` (their operations; ``_bulk_files`` writes
the bulk file, ``_bulk_catalogue`` is generated from the SDK), ``_report_links`` (the download
links Poll hands out, served like Azure blobs), ``_report_files`` (the zipped CSV they serve),
``_reporting_catalogue`` (generated from the SDK), ``_reporting_rules`` (Microsoft's documented
rules as data: scope kinds, aggregation x time, retention), ``_catalogues`` (constants and error
catalogues), ``_model`` (records), ``__main__`` (the command line).

Import cost matters: the pytest plugin imports this module lazily, and the module itself uses
only the standard library (no Airflow, no third-party packages).
"""

from __future__ import annotations

__all__ = [
    "AGGREGATION_TIMES",
    "BULK_OPERATIONS",
    "DEFAULT_SCOPE",
    "INJECTION_ENDPOINTS",
    "INJECTION_KINDS",
    "OPERATIONS",
    "PRODUCTION_SCOPE",
    "REPORTING_OPERATIONS",
    "REPORTING_RETENTION",
    "SANDBOX_DEVELOPER_TOKEN",
    "SANDBOX_SCOPE",
    "BulkTree",
    "EmulatorAccount",
    "EmulatorApp",
    "EmulatorBulk",
    "EmulatorReport",
    "MicrosoftAdsEmulator",
]

from airflow_provider_msads.testing.emulator._bulk_controls import EmulatorBulk
from airflow_provider_msads.testing.emulator._bulk_files import BulkTree
from airflow_provider_msads.testing.emulator._catalogues import (
    BULK_OPERATIONS,
    DEFAULT_SCOPE,
    INJECTION_ENDPOINTS,
    INJECTION_KINDS,
    OPERATIONS,
    PRODUCTION_SCOPE,
    REPORTING_OPERATIONS,
    SANDBOX_DEVELOPER_TOKEN,
    SANDBOX_SCOPE,
)
from airflow_provider_msads.testing.emulator._facade import MicrosoftAdsEmulator
from airflow_provider_msads.testing.emulator._model import EmulatorAccount, EmulatorApp
from airflow_provider_msads.testing.emulator._report_files import EmulatorReport
from airflow_provider_msads.testing.emulator._reporting_rules import AGGREGATION_TIMES
from airflow_provider_msads.testing.emulator._reporting_rules import RETENTION as REPORTING_RETENTION
