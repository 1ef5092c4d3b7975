"""Bulk v13 download requests built from the operator's arguments and checked before sending.

Microsoft's rules (``DownloadCampaignsByAccountIds``, ``DownloadCampaignsByCampaignIds`` and the
"Bulk Download and Upload" guide, learn.microsoft.com/advertising/bulk-service/… and
/advertising/guides/bulk-download-upload):

* one account per request (3201 otherwise), so an operator with many accounts sends many;
* at least one ``DownloadEntities`` value (3210), each a ``DownloadEntity`` name (3211);
* ``DataScope`` ``EntityData`` by default; ``QualityScoreData`` and ``BidSuggestionsData`` need a
  full download (``LastSyncTimeInUTC`` null, else 3213);
* ``FormatVersion`` "6.0", the only one v13 serves (3219 when missing);
* ``LastSyncTimeInUTC``: null for a full download, else the previous file's Account row Sync
  Time; "more than 30 days ago" is refused, so an older time means a full download;
* ``DownloadCampaignsByCampaignIds``: up to 1,000 campaigns of one account (3203).

Ids travel as strings, as Microsoft's REST models declare them (``StrictStr``). No Airflow here.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_msads.bulk._record_types import DOWNLOAD_ENTITIES
from airflow_provider_msads.errors import ArgumentError

FORMAT_VERSION = "6.0"
DATA_SCOPES = ("EntityData", "QualityScoreData", "BidSuggestionsData")
#: Data scopes that Microsoft serves only in a full download (3213).
FULL_ONLY_SCOPES = frozenset({"QualityScoreData", "BidSuggestionsData"})
COMPRESSION_TYPES = ("Zip", "GZip")
#: Campaigns per DownloadCampaignsByCampaignIds request.
MAX_CAMPAIGNS = 1000
#: A saved Sync Time this old (or older) is not sent: Microsoft refuses one "more than 30 days ago";
#: an hour's margin keeps a request built just before the limit from arriving after it.
DELTA_MAX_AGE = datetime.timedelta(days=30) - datetime.timedelta(hours=1)


def check_entities(entities: object) -> list[str]:
    """The ``DownloadEntities`` list, or an error naming the misspelt value and the fix."""
    if isinstance(entities, str):
        entities = [part.strip() for part in entities.split(",") if part.strip()]
    if not isinstance(entities, Iterable) or isinstance(entities, (bytes, dict)):
        raise ArgumentError(
            f"`entities` is {type(entities).__name__}, not a list.",
            field="entities",
            remedy='Give a list of DownloadEntity names, e.g. ["Campaigns", "AdGroups", "Keywords", "Ads"].',
        )
    names = [str(e).strip() for e in entities]
    if not names:
        raise ArgumentError(
            "`entities` is empty; Microsoft needs at least one (error 3210).",
            field="entities",
            remedy='Name what to download, e.g. ["Campaigns", "AdGroups", "Keywords", "Ads"].',
        )
    known = {name.lower(): name for name in DOWNLOAD_ENTITIES}
    for name in names:
        if name not in DOWNLOAD_ENTITIES:
            close = known.get(name.lower()) or known.get(name.lower() + "s")
            hint = f" Did you mean {close!r}?" if close else ""
            raise ArgumentError(
                f"`entities` names {name[:60]!r}, which is not one of Microsoft's DownloadEntity values "
                f"(error 3211).{hint}",
                field="entities",
                remedy="Use the names of Microsoft's DownloadEntity value set (learn.microsoft.com/advertising/"
                "bulk-service/downloadentity), e.g. Campaigns, AdGroups, Keywords, Ads.",
            )
    return list(dict.fromkeys(names))


def check_data_scope(data_scope: object) -> list[str]:
    """``DataScope`` values (a name, a comma-separated string, or a list); EntityData by default."""
    if data_scope is None:
        return ["EntityData"]
    parts = [p.strip() for p in data_scope.split(",")] if isinstance(data_scope, str) else list(data_scope)  # type: ignore[call-overload]
    scopes = [str(p) for p in parts if str(p)]
    for scope in scopes:
        if scope not in DATA_SCOPES:
            raise ArgumentError(
                f"`data_scope` names {scope[:40]!r}.",
                field="data_scope",
                remedy=f"Use one or more of {', '.join(DATA_SCOPES)}.",
            )
    return list(dict.fromkeys(scopes)) or ["EntityData"]


def needs_full(data_scope: Sequence[str]) -> bool:
    """Quality score and bid suggestion data come only in a full download (3213)."""
    return any(scope in FULL_ONLY_SCOPES for scope in data_scope)


def check_account_id(account_id: object, field: str = "account_ids") -> str:
    text = str(account_id).strip()
    if not text.isdigit() or len(text) > 20:
        raise ArgumentError(
            f"`{field}` holds {text[:30]!r}, which is not a numeric account id.",
            field=field,
            remedy="Give account ids as numbers (the `aid` of the Microsoft Advertising URL), or 'all'.",
        )
    return str(int(text))


def sync_time_text(value: datetime.datetime) -> str:
    """``LastSyncTimeInUTC`` as ISO 8601 in UTC, with a ``Z`` (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def delta_usable(last_sync: datetime.datetime | None, now: datetime.datetime | None = None) -> bool:
    """Whether ``last_sync`` may be sent: set, not in the future (3208), younger than 30 days."""
    if last_sync is None:
        return False
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if last_sync.tzinfo is None:
        last_sync = last_sync.replace(tzinfo=datetime.timezone.utc)
    return datetime.timedelta(0) <= now - last_sync < DELTA_MAX_AGE


def _common(
    entities: Sequence[str],
    data_scope: Sequence[str],
    last_sync: datetime.datetime | None,
    compression: str,
) -> dict[str, Any]:
    if compression not in COMPRESSION_TYPES:
        raise ArgumentError(
            f"`compression_type` is {str(compression)[:20]!r}.", field="compression_type", remedy="Use Zip or GZip."
        )
    if last_sync is not None and needs_full(data_scope):
        last_sync = None  # Microsoft serves these scopes only in full (3213)
    return {
        "LastSyncTimeInUTC": sync_time_text(last_sync) if last_sync is not None else None,
        "DownloadEntities": list(entities),
        "DataScope": ", ".join(data_scope),
        "DownloadFileType": "Csv",
        "FormatVersion": FORMAT_VERSION,
        "CompressionType": compression,
    }


def build_account_request(
    account_id: str | int,
    entities: Sequence[str],
    *,
    data_scope: Sequence[str] = ("EntityData",),
    last_sync: datetime.datetime | None = None,
    compression: str = "Zip",
) -> dict[str, Any]:
    """A ``DownloadCampaignsByAccountIds`` body for one account (Microsoft allows one)."""
    return {
        "AccountIds": [check_account_id(account_id)],
        **_common(check_entities(entities), check_data_scope(data_scope), last_sync, compression),
    }


def build_campaign_requests(
    account_id: str | int,
    campaign_ids: Sequence[str | int],
    entities: Sequence[str],
    *,
    data_scope: Sequence[str] = ("EntityData",),
    last_sync: datetime.datetime | None = None,
    compression: str = "Zip",
) -> list[dict[str, Any]]:
    """``DownloadCampaignsByCampaignIds`` bodies, :data:`MAX_CAMPAIGNS` campaigns each."""
    account = check_account_id(account_id)
    ids = list(dict.fromkeys(check_account_id(c, "campaign_ids") for c in campaign_ids))
    common = _common(check_entities(entities), check_data_scope(data_scope), last_sync, compression)
    return [
        {
            "Campaigns": [{"CampaignId": c, "ParentAccountId": account} for c in ids[i : i + MAX_CAMPAIGNS]],
            **common,
        }
        for i in range(0, len(ids), MAX_CAMPAIGNS)
    ]
