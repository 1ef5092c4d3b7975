"""What Microsoft's codes mean for the person who owns the connection: data, one entry a code.

Four catalogues (identity platform AADSTS codes, Ads API fault codes, Reporting codes, and OAuth
``error`` names of the authorize redirect) and the steps of the credentials guide that remedies
point to. :mod:`errors` turns an answer into an error with the entry's remedy; the README's error
table is generated from here (``scripts/error_table.py``) and checked against it, so a remedy is
written once.

The entries live one file a service (:mod:`.identity`, :mod:`.ads`, :mod:`.reporting`,
:mod:`.bulk`, written in :mod:`.entry`'s vocabulary); this face gathers them under the names
the rest of the package (and ``airflow_provider_msads.catalogue``) imports. Imports nothing of the
package outside this folder.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_msads.errors.catalogue.ads import ADS_CATALOGUE
from airflow_provider_msads.errors.catalogue.bulk import BULK_CATALOGUE, BULK_DOWNLOAD_GUIDE
from airflow_provider_msads.errors.catalogue.entry import (
    STEP_APP,
    STEP_AUTHORIZE,
    STEP_DEVTOKEN,
    STEP_IDS,
    STEP_SECRET,
    CatalogueEntry,
)
from airflow_provider_msads.errors.catalogue.identity import (
    AADSTS_CATALOGUE,
    OAUTH_ERROR_CATALOGUE,
    TRANSIENT_OAUTH_ERRORS,
)
from airflow_provider_msads.errors.catalogue.reporting import (
    DEAD_REPORT_ID_CODES,
    OPERATION_ERROR_CODES_PAGE,
    REPORTING_CATALOGUE,
)

__all__ = [
    "AADSTS_CATALOGUE",
    "ADS_CATALOGUE",
    "BULK_CATALOGUE",
    "BULK_DOWNLOAD_GUIDE",
    "DEAD_REPORT_ID_CODES",
    "OAUTH_ERROR_CATALOGUE",
    "OPERATION_ERROR_CODES_PAGE",
    "REPORTING_CATALOGUE",
    "STEP_APP",
    "STEP_AUTHORIZE",
    "STEP_DEVTOKEN",
    "STEP_IDS",
    "STEP_SECRET",
    "TRANSIENT_OAUTH_ERRORS",
    "CatalogueEntry",
    "catalogue_rows",
]


def catalogue_rows() -> list[dict[str, Any]]:
    """Rows of the README's "what each error means" table, in catalogue order."""
    rows = []
    for kind, catalogue in (
        ("AADSTS", AADSTS_CATALOGUE),
        ("Ads", ADS_CATALOGUE),
        ("Reporting", REPORTING_CATALOGUE),
        ("Bulk", BULK_CATALOGUE),
    ):
        for entry in catalogue.values():
            rows.append(
                {
                    "code": f"{kind}{entry.code}" if kind == "AADSTS" else f"{entry.code} {entry.name}",
                    "meaning": entry.meaning,
                    "field": entry.field or "",
                    "retryable": entry.retryable or entry.retry_once,
                    "remedy": entry.remedy,
                }
            )
    return rows
