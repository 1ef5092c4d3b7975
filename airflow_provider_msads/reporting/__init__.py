"""Reporting v13 over REST, without Airflow (the operator, trigger and hook are the shell).

One module per step a report goes through:

* :mod:`.request`: the ReportRequest built from the operator's arguments, checked before sending;
* :mod:`.service`: Submit and Poll as flows, and Microsoft's refusals explained;
* :mod:`.download`: the pre-signed link streamed and unzipped, rows counted, memory flat;
* :mod:`.destinations`: a local path or ObjectStoragePath URL that only ever holds a whole file.

The names below are the ones the shell and users import; the modules are free to change.
May import: ``errors``, ``connection``, ``tokens``, and ``compat`` (object storage, lazily).
"""

from __future__ import annotations

from airflow_provider_msads.errors import (
    LinkExpiredError,
    ReportDownloadError,
    ReportingError,
    ReportRequestError,
)
from airflow_provider_msads.reporting.download import (
    CHUNK_SIZE,
    LINK_RENEWALS,
    DownloadResult,
    RowCounter,
    adownload_report,
    download_report,
    write_empty_report,
)
from airflow_provider_msads.reporting.periods import AGGREGATIONS, DEFAULT_TIME_ZONE, REQUEST_ID_LIFETIME
from airflow_provider_msads.reporting.request import build_report_request, check_report_request
from airflow_provider_msads.reporting.service import (
    Reporting,
    ReportStatus,
    report_failed_error,
    reporting_error,
)

__all__ = [
    "AGGREGATIONS",
    "CHUNK_SIZE",
    "DEFAULT_TIME_ZONE",
    "LINK_RENEWALS",
    "REQUEST_ID_LIFETIME",
    "DownloadResult",
    "LinkExpiredError",
    "ReportDownloadError",
    "ReportRequestError",
    "ReportStatus",
    "Reporting",
    "ReportingError",
    "RowCounter",
    "adownload_report",
    "build_report_request",
    "check_report_request",
    "download_report",
    "report_failed_error",
    "reporting_error",
    "write_empty_report",
]
