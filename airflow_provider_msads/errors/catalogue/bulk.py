"""Bulk v13 download codes: what each means in terms of the Bulk operator's arguments.

Data, one entry a code. Imports only :mod:`.entry`.
"""

from __future__ import annotations

from airflow_provider_msads.errors.catalogue.entry import OPERATOR_BUG as _BUG
from airflow_provider_msads.errors.catalogue.entry import CatalogueEntry

#: Bulk download codes: Microsoft Advertising's "Operation error codes" page (names and meanings as
#: published there; 3220-3227 are uploads, not used here) and the "Bulk Download and Upload" guide
#: (4204's wait). The remedy is ours, in terms of MicrosoftAdsBulkDownloadOperator's arguments.
BULK_DOWNLOAD_GUIDE = "https://learn.microsoft.com/advertising/guides/bulk-download-upload"
_ENTITIES = 'Name Microsoft\'s DownloadEntity values in `entities`, e.g. ["Campaigns", "AdGroups", "Keywords", "Ads"].'


def _bulk(code: int, name: str, meaning: str, remedy: str, field: str | None = None, **flags: bool) -> CatalogueEntry:
    return CatalogueEntry(code, name, "Bulk: " + meaning, remedy, field, None, **flags)


BULK_CATALOGUE: dict[int, CatalogueEntry] = {
    e.code: e
    for e in (
        _bulk(
            3201,
            "CampaignServiceAccountIdsLengthExceeded",
            "the list of account ids exceeds the maximum (one account per download request).",
            "The operator sends one request per account; " + _BUG,
            "account_ids",
        ),
        _bulk(
            3203,
            "CampaignServiceCampaignsContainsMultipleAccounts",
            "the campaigns of a DownloadCampaignsByCampaignIds request must belong to one account.",
            "The operator groups campaigns by account; " + _BUG,
        ),
        _bulk(
            3204,
            "CampaignServiceCampaignsContainsNullScope",
            "the list of campaigns cannot contain null items.",
            _BUG,
        ),
        _bulk(
            3205,
            "CampaignServiceInvalidDownloadRequestId",
            "the download request id is not valid (ids live two days).",
            "Run the task again: it submits a new download.",
        ),
        _bulk(
            3207,
            "CampaignServiceAccountTooBigToDownload",
            "the account has more keywords than one request may download (four million); the Details field lists "
            "the account's campaign ids.",
            "Nothing to do: the operator downloads such an account by campaign ids, 1,000 per request.",
            "account_ids",
        ),
        _bulk(
            3208,
            "CampaignServiceLastSyncTimeCannotBeInTheFuture",
            "the last sync time cannot be later than now.",
            "The saved Sync Time is from the future (a clock problem): run with delta=False once.",
            "delta",
        ),
        _bulk(
            3209,
            "CampaignServiceLastSyncTimeTooOld",
            "the last sync time cannot be earlier than 1/1/1753.",
            "Run with delta=False once; the next run saves a fresh Sync Time.",
            "delta",
        ),
        _bulk(
            3210,
            "BulkServiceMinimumRequiredEntitiesNotSpecified",
            "the minimum set of required entities should be specified for bulk download.",
            _ENTITIES,
            "entities",
        ),
        _bulk(
            3211,
            "CampaignServiceBulkDownloadUnsupportedEntities",
            "one or more entities are not supported for bulk download.",
            _ENTITIES,
            "entities",
        ),
        _bulk(
            3212,
            "BulkServiceInvalidPerformanceStatsDateRangeForDataScope",
            "PerformanceStatsDateRange must be given with performance statistics in the data scope, and only then.",
            "Use data_scope EntityData, QualityScoreData or BidSuggestionsData (the operator sends no "
            "PerformanceStatsDateRange).",
            "data_scope",
        ),
        _bulk(
            3213,
            "BulkServiceInvalidSyncTimeForPerformanceStatsDateRange",
            "LastSyncTimeInUTC must be null when the data scope includes performance, quality score or bid "
            "suggestion data.",
            "The operator downloads those scopes in full; " + _BUG,
            "data_scope",
        ),
        _bulk(
            3214,
            "BulkServiceInvalidPerformanceStatsDateRange",
            "PerformanceStatsDateRange must be a valid custom date range or predefined time.",
            _BUG,
        ),
        _bulk(
            3215,
            "BulkServiceInvalidCustomDateRange",
            "the custom date range for performance statistics must have a valid start and end date.",
            _BUG,
        ),
        _bulk(
            3216,
            "BulkServiceCampaignsTooBigToDownload",
            "the campaigns of the request have more keywords than allowed per request (eight million).",
            "Download fewer entities (e.g. Keywords in a task of their own), or ask Microsoft support.",
            "entities",
        ),
        _bulk(
            3217,
            "BulkServiceFormatVersionNotSupported",
            "one or more entities are not supported with the specified format version.",
            "The operator sends FormatVersion 6.0, the only one of Bulk v13; remove the entity Microsoft names.",
            "entities",
        ),
        _bulk(
            3218,
            "BulkServiceEntityNotSupportedForFormatVersion",
            "one or more entities are not supported with the specified format version.",
            "Remove the entity Microsoft names from `entities`.",
            "entities",
        ),
        _bulk(3219, "BulkServiceFormatVersionRequired", "the format version is required.", _BUG),
        _bulk(
            3228,
            "BulkServiceDataScopeInvalid",
            "the specified DataScope value is either invalid or no longer supported.",
            "Use data_scope EntityData, QualityScoreData or BidSuggestionsData.",
            "data_scope",
        ),
        _bulk(
            3603,
            "CampaignServiceFullSyncRequired",
            "the last sync time must be null: the account took part in a data migration; download in full, then "
            "deltas again.",
            "Nothing to do: the operator downloads that account in full within the same try.",
            "delta",
        ),
        _bulk(
            4201,
            "BulkServiceDownloadNotAvailable",
            "a Bulk download refusal listed with the download operations; the name here is ours (the page we "
            "read does not list it); Microsoft's Message says more.",
            "Read Microsoft's message in the error; run the task again (it submits a new download).",
        ),
        _bulk(
            4204,
            "BulkServiceNoMoreCallsPermittedForTheTimePeriod",
            "no more bulk upload or download calls are permitted for this account for now; resubmit after "
            "waiting up to 15 minutes.",
            "Retried after a wait of up to 15 minutes; if it persists, download less often or fewer accounts at once.",
            retryable=True,
        ),
    )
    if e.code is not None
}
