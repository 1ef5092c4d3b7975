"""The bulk download file as Microsoft writes it, generated on the fly from an account's entity tree.

A zip (or gzip) with one CSV (or TSV): UTF-8 with a BOM, one union header whose first column is
``Type``, a ``Format Version`` row (6.0 in ``Name``), an ``Account`` row (``Id``, ``Parent Id`` =
customer, ``Sync Time``) and then the rows of the record types asked for. Columns and values
follow the record mappings of Microsoft's SDK (``bingads/v13/bulk/entities``); the column order is
the SDK's (``_bulk_catalogue.HEADERS``). Each account has a deterministic tree of configurable
size (campaigns x ad groups x keywords / ads, plus budgets and labels); rows are produced lazily
and written straight into the compressed stream, so a file of any size never sits in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO, Final

from airflow_provider_msads.testing.emulator._bulk_catalogue import HEADERS
from airflow_provider_msads.testing.emulator._model import ad_group_id, campaign_id

FORMAT_VERSION: Final = "6.0"

# DownloadEntity value -> the record types (the file's ``Type`` values) it brings. Every other
# DownloadEntity value is accepted and brings no rows: the emulated accounts have none of them.
ENTITY_RECORD_TYPES: Final[Mapping[str, tuple[str, ...]]] = {
    "Campaigns": ("Campaign",),
    "AdGroups": ("Ad Group",),
    "Keywords": ("Keyword",),
    "Ads": ("Responsive Search Ad",),
    "ResponsiveSearchAds": ("Responsive Search Ad",),
    "Budgets": ("Budget",),
    "Labels": ("Label",),
    "CampaignLabels": ("Campaign Label",),
    "AdGroupLabels": ("Ad Group Label",),
    "KeywordLabels": ("Keyword Label",),
}

#: Record types in file order (Microsoft: "do not depend on record order"; this one is stable).
RECORD_TYPES: Final = (
    "Budget",
    "Label",
    "Campaign",
    "Campaign Label",
    "Ad Group",
    "Ad Group Label",
    "Responsive Search Ad",
    "Keyword",
    "Keyword Label",
)

# The columns each record type fills (a subset of its SDK mapping's columns).
COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "Format Version": ("Name",),
    "Account": ("Id", "Parent Id", "Sync Time"),
    "Budget": ("Status", "Id", "Parent Id", "Budget Name", "Budget Type", "Budget", "Modified Time"),
    "Label": ("Status", "Id", "Label", "Color", "Description", "Modified Time"),
    "Campaign": (
        "Status",
        "Id",
        "Parent Id",
        "Campaign",
        "Campaign Type",
        "Time Zone",
        "Budget",
        "Budget Type",
        "Budget Id",
        "Bid Strategy Type",
        "Modified Time",
    ),
    "Campaign Label": ("Status", "Id", "Parent Id", "Campaign", "Modified Time"),
    "Ad Group": (
        "Status",
        "Id",
        "Parent Id",
        "Campaign",
        "Ad Group",
        "Cpc Bid",
        "Network Distribution",
        "Ad Rotation",
        "Language",
        "Modified Time",
    ),
    "Ad Group Label": ("Status", "Id", "Parent Id", "Campaign", "Ad Group", "Modified Time"),
    "Responsive Search Ad": (
        "Status",
        "Id",
        "Parent Id",
        "Campaign",
        "Ad Group",
        "Editorial Status",
        "Final Url",
        "Headline",
        "Description",
        "Path 1",
        "Path 2",
        "Modified Time",
    ),
    "Keyword": (
        "Status",
        "Id",
        "Parent Id",
        "Campaign",
        "Ad Group",
        "Keyword",
        "Editorial Status",
        "Match Type",
        "Bid",
        "Final Url",
        "Modified Time",
    ),
    "Keyword Label": ("Status", "Id", "Parent Id", "Modified Time"),
    "Keyword Error": ("Id", "Parent Id", "Campaign", "Ad Group", "Keyword", "Error", "Error Number"),
}

_MATCH_TYPES: Final = ("Exact", "Phrase", "Broad")
_BLOCK: Final = 1024  # rows per write: bounded memory, few Python-level writes


@dataclass(frozen=True)
class BulkTree:
    """The size of an account's entity tree: every account has one (the default is small).

    ``keywords`` = campaigns x ad groups per campaign x keywords per ad group: what 3207
    (AccountTooBigToDownload) compares with the emulator's keyword limit.
    """

    campaigns: int = 3
    ad_groups_per_campaign: int = 2
    keywords_per_ad_group: int = 2
    ads_per_ad_group: int = 1
    labels: int = 2
    budgets: int = 1

    @property
    def ad_groups(self) -> int:
        return self.campaigns * self.ad_groups_per_campaign

    @property
    def keywords(self) -> int:
        return self.ad_groups * self.keywords_per_ad_group

    @property
    def ads(self) -> int:
        return self.ad_groups * self.ads_per_ad_group

    def count(self, kind: str) -> int:
        """How many entities of a record type (entity kinds only, not label associations)."""
        return {
            "Campaign": self.campaigns,
            "Ad Group": self.ad_groups,
            "Keyword": self.keywords,
            "Responsive Search Ad": self.ads,
            "Label": self.labels,
            "Budget": self.budgets,
        }[kind]

    def parent(self, kind: str, index: int) -> tuple[str, int] | None:
        """The parent entity (kind, index) of an entity; None for account-level ones."""
        if kind == "Ad Group":
            return "Campaign", index // self.ad_groups_per_campaign
        if kind == "Keyword":
            return "Ad Group", index // self.keywords_per_ad_group
        if kind == "Responsive Search Ad":
            return "Ad Group", index // self.ads_per_ad_group
        return None

    def campaign_of(self, kind: str, index: int) -> int | None:
        """The campaign an entity lies under (None for account-level entities)."""
        node: tuple[str, int] | None = (kind, index)
        while node is not None and node[0] != "Campaign":
            node = self.parent(*node)
        return node[1] if node is not None else None


@dataclass
class BulkChange:
    """A test's change to one entity: when, the column values it set, whether it was deleted."""

    modified_at: float
    columns: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


def _long_id(account_id: str, kind_digit: int, index: int) -> str:
    """Ids of keywords, ads, labels and budgets: long like Microsoft's, unique per account and kind."""
    return str(kind_digit * 10**15 + (int(account_id) % 10**6) * 10**9 + index)


_LONG_KINDS: Final = {"Keyword": 7, "Responsive Search Ad": 2, "Label": 3, "Budget": 4}


def entity_id(account_id: str, kind: str, index: int) -> str:
    """The id of entity ``index`` (0-based, counted across the account) of a record type."""
    if kind == "Campaign":
        return campaign_id(account_id, index)
    if kind == "Ad Group":
        return ad_group_id(account_id, index)
    return _long_id(account_id, _LONG_KINDS[kind], index)


def long_id_index(account_id: str, kind: str, value: str) -> int | None:
    """The index a keyword/ad/label/budget id stands for in an account (None: not one of its ids)."""
    if kind not in _LONG_KINDS or not value.isdigit():
        return None
    number = int(value)
    base = _LONG_KINDS[kind] * 10**15 + (int(account_id) % 10**6) * 10**9
    index = number - base
    return index if 0 <= index < 10**9 else None


def bulk_datetime(timestamp: float, *, millis: bool) -> str:
    """``MM/DD/YYYY HH:MM:SS`` in UTC (the Account row's Sync Time), with ``.fff`` for Modified Time."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    text = moment.strftime("%m/%d/%Y %H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


@dataclass
class BulkFile:
    """Everything one download's file depends on, frozen at the request (the service snapshots it)."""

    key: str
    account_id: str
    customer_id: str
    time_zone: str
    tree: BulkTree
    record_types: tuple[str, ...]
    campaigns: frozenset[int] | None  # None: the whole account
    last_sync: float | None
    sync_time: float
    created_at: float
    changes: dict[tuple[str, int], BulkChange]
    file_type: str = "Csv"
    compression: str = "Zip"
    error_rows: int = 0

    # ---------------------------------------------------------------------- rows

    def header(self) -> list[str]:
        wanted = {"Type"}
        for record_type in ("Format Version", "Account", *self.record_types):
            wanted.update(COLUMNS[record_type])
        if self.error_rows:
            wanted.update(COLUMNS["Keyword Error"])
        return [name for name in HEADERS if name in wanted]

    def _deleted(self, kind: str, index: int) -> bool:
        change = self.changes.get((kind, index))
        return change is not None and change.deleted and change.modified_at <= self.sync_time

    def _gone(self, kind: str, index: int) -> bool:
        """The entity or one of its ancestors is deleted (as of the sync time)."""
        node: tuple[str, int] | None = (kind, index)
        while node is not None:
            if self._deleted(*node):
                return True
            node = self.tree.parent(*node)
        return False

    def _in_scope(self, kind: str, index: int) -> bool:
        if self.campaigns is None:
            return True
        campaign = self.tree.campaign_of(kind, index)
        return campaign is None or campaign in self.campaigns

    def _values(self, kind: str, index: int) -> dict[str, str]:
        """The generated column values of an entity, before any change a test made."""
        a = self.account_id
        tree = self.tree
        modified = bulk_datetime(self.created_at, millis=True)
        if kind == "Budget":
            return {
                "Status": "Active",
                "Id": entity_id(a, kind, index),
                "Parent Id": a,
                "Budget Name": f"Shared budget {index + 1}",
                "Budget Type": "DailyBudgetStandard",
                "Budget": f"{50 + 10 * index:.2f}",
                "Modified Time": modified,
            }
        if kind == "Label":
            return {
                "Status": "Active",
                "Id": entity_id(a, kind, index),
                "Label": f"Label {index + 1}",
                "Color": f"#{(0x1F77B4 + index * 0x101010) % 0x1000000:06X}",
                "Description": f"Emulated label {index + 1}",
                "Modified Time": modified,
            }
        if kind == "Campaign":
            return {
                "Status": "Active" if index % 5 != 4 else "Paused",
                "Id": entity_id(a, kind, index),
                "Parent Id": a,
                "Campaign": f"Campaign {index + 1}",
                "Campaign Type": "Search",
                "Time Zone": self.time_zone,
                "Budget": f"{25 + index % 10:.2f}",
                "Budget Type": "DailyBudgetStandard",
                "Budget Id": entity_id(a, "Budget", index % tree.budgets) if tree.budgets else "",
                "Bid Strategy Type": "EnhancedCpc",
                "Modified Time": modified,
            }
        campaign = tree.campaign_of(kind, index)
        campaign_name = f"Campaign {campaign + 1}" if campaign is not None else ""
        if kind == "Ad Group":
            return {
                "Status": "Active",
                "Id": entity_id(a, kind, index),
                "Parent Id": entity_id(a, "Campaign", index // tree.ad_groups_per_campaign),
                "Campaign": campaign_name,
                "Ad Group": f"Ad Group {index + 1}",
                "Cpc Bid": f"{0.5 + (index % 10) * 0.1:.2f}",
                "Network Distribution": "OwnedAndOperatedAndSyndicatedSearch",
                "Ad Rotation": "OptimizeForClicks",
                "Language": "English",
                "Modified Time": modified,
            }
        parent = tree.parent(kind, index)
        group = parent[1] if parent is not None else 0
        if kind == "Keyword":
            return {
                "Status": "Active" if index % 7 != 6 else "Paused",
                "Id": entity_id(a, kind, index),
                "Parent Id": entity_id(a, "Ad Group", group),
                "Campaign": campaign_name,
                "Ad Group": f"Ad Group {group + 1}",
                "Keyword": f"keyword {index + 1}",
                "Editorial Status": "Active",
                "Match Type": _MATCH_TYPES[index % 3],
                "Bid": f"{0.25 + (index % 40) * 0.05:.2f}",
                "Final Url": f"https://www.example.com/keyword/{index + 1}",
                "Modified Time": modified,
            }
        # Responsive Search Ad
        headlines = [{"text": f"Headline {n} of ad {index + 1}"} for n in (1, 2, 3)]
        descriptions = [{"text": f"Description {n} of ad {index + 1}."} for n in (1, 2)]
        return {
            "Status": "Active",
            "Id": entity_id(a, kind, index),
            "Parent Id": entity_id(a, "Ad Group", group),
            "Campaign": campaign_name,
            "Ad Group": f"Ad Group {group + 1}",
            "Editorial Status": "Active",
            "Final Url": f"https://www.example.com/ad/{index + 1}",
            "Headline": _json_list(headlines),
            "Description": _json_list(descriptions),
            "Path 1": "deals",
            "Path 2": f"ad{index + 1}",
            "Modified Time": modified,
        }

    def _entity_row(self, kind: str, index: int) -> dict[str, str]:
        values = self._values(kind, index)
        change = self.changes.get((kind, index))
        if change is not None and change.modified_at <= self.sync_time:
            values.update(change.columns)
            values["Modified Time"] = bulk_datetime(change.modified_at, millis=True)
            if change.deleted:
                values["Status"] = "Deleted"
        values["Type"] = kind
        return values

    def _association_rows(self, record_type: str, index: int) -> dict[str, str]:
        """A label association: ``Id`` is the label's, ``Parent Id`` the labelled entity's."""
        kind = record_type[: -len(" Label")]
        entity = self._entity_row(kind, index)
        row = {
            "Type": record_type,
            "Status": "Active",
            "Id": entity_id(self.account_id, "Label", index % self.tree.labels),
            "Parent Id": entity["Id"],
            "Modified Time": bulk_datetime(self.created_at, millis=True),
        }
        if "Campaign" in COLUMNS[record_type]:
            row["Campaign"] = entity.get("Campaign", "")
        if "Ad Group" in COLUMNS[record_type]:
            row["Ad Group"] = entity.get("Ad Group", "")
        return row

    def _full_rows(self, record_type: str) -> Iterator[dict[str, str]]:
        """Every live entity of a type in scope (deleted ones and their children are not listed)."""
        if record_type.endswith(" Label"):
            if self.tree.labels == 0:
                return
            kind = record_type[: -len(" Label")]
            for index in self._indexes(kind):
                if not self._gone(kind, index) and not self._deleted("Label", index % self.tree.labels):
                    yield self._association_rows(record_type, index)
            return
        for index in self._indexes(record_type):
            if not self._gone(record_type, index):
                yield self._entity_row(record_type, index)

    def _indexes(self, kind: str) -> Iterator[int]:
        """Indexes of a kind in scope, walking only the selected campaigns' ranges."""
        tree = self.tree
        total = tree.count(kind)
        if self.campaigns is None or kind in ("Label", "Budget"):
            yield from range(total)
            return
        per_campaign = total // tree.campaigns if tree.campaigns else 0
        for campaign in sorted(self.campaigns):
            yield from range(campaign * per_campaign, (campaign + 1) * per_campaign)

    def _delta_rows(self, record_type: str) -> Iterator[dict[str, str]]:
        """Entities changed after the last sync: deleted ones as ``Deleted``, but no child of a
        deleted parent (Microsoft sends only the parent's deleted record)."""
        if record_type.endswith(" Label"):
            return  # associations are never changed through the emulator's API
        assert self.last_sync is not None
        for (kind, index), change in sorted(self.changes.items(), key=lambda item: item[0][1]):
            if kind != record_type or not self.last_sync < change.modified_at <= self.sync_time:
                continue
            if not self._in_scope(kind, index):
                continue
            parent = self.tree.parent(kind, index)
            if parent is not None and self._gone(*parent):
                continue
            yield self._entity_row(kind, index)

    def _error_rows(self) -> Iterator[dict[str, str]]:
        """Injected ``Keyword Error`` rows (ASSUMPTION: Microsoft documents error records for upload
        results; a download carrying one is a test device to check that clients keep or skip them)."""
        for index in range(self.error_rows):
            keyword = index % max(1, self.tree.keywords)
            yield {
                "Type": "Keyword Error",
                "Id": entity_id(self.account_id, "Keyword", keyword),
                "Parent Id": entity_id(self.account_id, "Ad Group", keyword // max(1, self.tree.keywords_per_ad_group)),
                "Keyword": f"keyword {keyword + 1}",
                "Error": "CampaignServiceInvalidKeywordText",
                "Error Number": "1040",
            }

    def _sections(self) -> Iterator[tuple[str, Iterator[dict[str, str]]]]:
        """The file's records after the header, in order, grouped by record type."""
        head = [
            {"Type": "Format Version", "Name": FORMAT_VERSION},
            {
                "Type": "Account",
                "Id": self.account_id,
                "Parent Id": self.customer_id,
                "Sync Time": bulk_datetime(self.sync_time, millis=False),
            },
        ]
        yield "Account", iter(head)
        for record_type in RECORD_TYPES:
            if record_type in self.record_types:
                rows = self._full_rows(record_type) if self.last_sync is None else self._delta_rows(record_type)
                yield record_type, rows
        yield "Keyword Error", self._error_rows()

    def rows(self) -> Iterator[dict[str, str]]:
        """Every record after the header, lazily, in file order."""
        for _, rows in self._sections():
            yield from rows

    def _fast_keywords(self, header: list[str], separator: str) -> Iterator[str] | None:
        """The keyword rows of a full download as ready text, when no keyword was changed: the bulk
        of a big file, about four times faster than through ``csv`` (values need no quoting)."""
        if self.last_sync is not None or any(kind == "Keyword" for kind, _ in self.changes):
            return None
        return self._keyword_text(header, separator)

    def _keyword_text(self, header: list[str], separator: str) -> Iterator[str]:
        tree, a = self.tree, self.account_id
        slots = {name: f"{{{n}}}" for n, name in enumerate(("status", "id", "number", "match", "bid"))}
        modified = bulk_datetime(self.created_at, millis=True)
        bids = [f"{0.25 + (k % 40) * 0.05:.2f}" for k in range(40)]
        id_base = int(entity_id(a, "Keyword", 0))
        per_group = tree.keywords_per_ad_group
        for group in self._indexes("Ad Group"):
            if self._gone("Ad Group", group):
                continue
            campaign = group // tree.ad_groups_per_campaign
            cells = {
                "Type": "Keyword",
                "Status": slots["status"],
                "Id": slots["id"],
                "Parent Id": entity_id(a, "Ad Group", group),
                "Campaign": f"Campaign {campaign + 1}",
                "Ad Group": f"Ad Group {group + 1}",
                "Keyword": "keyword " + slots["number"],
                "Editorial Status": "Active",
                "Match Type": slots["match"],
                "Bid": slots["bid"],
                "Final Url": "https://www.example.com/keyword/" + slots["number"],
                "Modified Time": modified,
            }
            fill = (separator.join(cells.get(name, "") for name in header) + "\r\n").format
            first = group * per_group
            for start in range(first, first + per_group, _BLOCK):
                yield "".join(
                    fill(
                        "Paused" if k % 7 == 6 else "Active",
                        id_base + k,
                        k + 1,
                        _MATCH_TYPES[k % 3],
                        bids[k % 40],
                    )
                    for k in range(start, min(first + per_group, start + _BLOCK))
                )

    # ---------------------------------------------------------------------- writing

    @property
    def entry_name(self) -> str:
        return f"{self.key}.{'tsv' if self.file_type == 'Tsv' else 'csv'}"

    @property
    def file_name(self) -> str:
        return f"{self.entry_name}.gz" if self.compression == "GZip" else f"{self.key}.zip"

    def write_text(self, out: BinaryIO) -> None:
        """The uncompressed file: BOM, header, rows (written in blocks)."""
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        try:
            text.write("\ufeff")
            dialect = csv.excel_tab if self.file_type == "Tsv" else csv.excel
            writer = csv.writer(text, dialect=dialect)
            header = self.header()
            writer.writerow(header)
            separator = "\t" if self.file_type == "Tsv" else ","
            for record_type, rows in self._sections():
                fast = self._fast_keywords(header, separator) if record_type == "Keyword" else None
                if fast is not None:
                    for chunk in fast:
                        text.write(chunk)
                    continue
                block: list[list[str]] = []
                for row in rows:
                    block.append([row.get(name, "") for name in header])
                    if len(block) >= _BLOCK:
                        writer.writerows(block)
                        block.clear()
                writer.writerows(block)
            text.flush()
        finally:
            text.detach()

    def write(self, out: BinaryIO) -> None:
        """Stream the compressed file into ``out`` (zip with one entry, or gzip)."""
        if self.compression == "GZip":
            with gzip.GzipFile(filename=self.entry_name, mode="wb", fileobj=out, compresslevel=1) as packed:
                self.write_text(packed)  # type: ignore[arg-type]
            return
        big = self.tree.keywords > 2_000_000
        with (
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
            archive.open(self.entry_name, "w", force_zip64=big) as entry,
        ):
            self.write_text(entry)  # type: ignore[arg-type]


def _json_list(items: list[dict[str, str]]) -> str:
    """The SDK's text-asset-link JSON (``[{"text":"..."}]``), compact as Microsoft writes it."""
    return "[" + ",".join('{"text":"' + item["text"].replace('"', '\\"') + '"}' for item in items) + "]"
