"""The emulator's Bulk state and test controls (``emulator.bulk``): the entity tree, its changes, downloads.

Split from :mod:`._bulk` (the Bulk service's operations, which read and record through this).
Imports nothing outside the emulator.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_msads.testing.emulator._bulk_files import (
    BulkChange,
    BulkFile,
    BulkTree,
    entity_id,
    long_id_index,
)

if TYPE_CHECKING:
    from airflow_provider_msads.testing.emulator._facade import MicrosoftAdsEmulator


_STATUSES: Final = ("Completed", "Failed", "FailedFullSyncRequired")


@dataclass
class BulkDownload:
    """One download request; tests may change ``pending_polls`` or ``status`` in flight."""

    id: str
    operation: str
    file: BulkFile
    submitted_at: float
    data_scope: tuple[str, ...]
    pending_polls: int = 1
    status: str = "Completed"
    polls: int = 0
    downloads: int = 0
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class _BulkLink:
    token: str
    signature: str
    download_id: str
    expires_at: float
    expired: bool = False


class EmulatorBulk:
    """The Bulk service's world and knobs, as ``emulator.bulk``.

    * Entity trees: every account has a deterministic tree (:meth:`set_tree`, default 3 campaigns
      x 2 ad groups x 2 keywords and 1 responsive search ad each, 2 labels, 1 shared budget); ids
      from :meth:`ids`. A tree of millions of keywords costs nothing until a file is streamed.
    * Changes: :meth:`update_entity` and :meth:`delete_entity` stamp an entity with the emulator's
      :attr:`~MicrosoftAdsEmulator.clock`; a delta download returns what changed since its
      ``LastSyncTimeInUTC``.
    * Knobs: :attr:`pending_polls` (``InProgress`` answers before the end), :attr:`link_lifetime`
      (300 s), :attr:`keyword_limit` (3207 above it, Microsoft's four million),
      :attr:`campaigns_keyword_limit` (3216, eight million), :meth:`configure_next_download`
      (final status, error rows), :meth:`expire_links`; ``emulator.inject("bulk", "fault",
      code=4204)`` for throttling.
    * What clients did: :attr:`downloads` (by request id), :attr:`submits`, :attr:`polls`,
      :attr:`file_downloads`, :attr:`downloads_with_credentials`.
    """

    def __init__(self, emulator: MicrosoftAdsEmulator) -> None:
        self._emulator = emulator
        self.default_tree = BulkTree()
        self.pending_polls = 1
        self.link_lifetime = 300.0
        self.keyword_limit = 4_000_000
        self.campaigns_keyword_limit = 8_000_000
        self.downloads: dict[str, BulkDownload] = {}
        self._trees: dict[str, BulkTree] = {}
        self._changes: dict[str, dict[tuple[str, int], BulkChange]] = {}
        self._created_at: float | None = None
        self._next: deque[dict[str, Any]] = deque()
        self._links: dict[str, _BulkLink] = {}

    # ---------------------------------------------------------------------- world

    def set_tree(
        self,
        *,
        account_id: str | None = None,
        campaigns: int | None = None,
        ad_groups_per_campaign: int | None = None,
        keywords_per_ad_group: int | None = None,
        ads_per_ad_group: int | None = None,
        labels: int | None = None,
        budgets: int | None = None,
    ) -> BulkTree:
        """Size an account's tree (``account_id`` None: the default of every account without its own).

        Omitted sizes keep their current value. E.g. ``set_tree(campaigns=10, ad_groups_per_campaign=10,
        keywords_per_ad_group=10)`` gives 1,000 keywords; 2,000 x 100 x 50 about 1 GB of file.
        """
        sizes = {
            "campaigns": campaigns,
            "ad_groups_per_campaign": ad_groups_per_campaign,
            "keywords_per_ad_group": keywords_per_ad_group,
            "ads_per_ad_group": ads_per_ad_group,
            "labels": labels,
            "budgets": budgets,
        }
        for name, value in sizes.items():
            if value is not None and (value < 0 or (name.startswith(("campaigns", "ad_groups")) and value < 1)):
                raise ValueError(f"{name} must be {'at least 1' if name.startswith(('campaigns', 'ad_')) else '>= 0'}")
        with self._emulator._lock:
            account = self._account(account_id) if account_id is not None else None
            base = self.tree(account) if account is not None else self.default_tree
            tree = replace(base, **{k: v for k, v in sizes.items() if v is not None})
            if tree.keywords >= 10**9 or tree.ads >= 10**9:
                raise ValueError("at most 999,999,999 keywords and ads per account")
            if account is None:
                self.default_tree = tree
            else:
                self._trees[account] = tree
            return tree

    def tree(self, account_id: str | None = None) -> BulkTree:
        """The tree of an account (default: the emulator's :attr:`~MicrosoftAdsEmulator.account`)."""
        return self._trees.get(self._account(account_id), self.default_tree)

    def ids(self, record_type: str, account_id: str | None = None, *, parent: str | None = None) -> list[str]:
        """The ids of an account's entities of a record type (``Campaign``, ``Ad Group``, ``Keyword``,
        ``Responsive Search Ad``, ``Label``, ``Budget``), optionally only those under ``parent`` (an id)."""
        account = self._account(account_id)
        tree = self.tree(account)
        kind = self._kind(record_type)
        indexes: range | list[int] = range(tree.count(kind))
        if parent is not None:
            indexes = [i for i in indexes if self._ancestor_ids(account, tree, kind, i) & {parent}]
        return [entity_id(account, kind, i) for i in indexes]

    def update_entity(
        self, record_type: str, entity_id_: str, *, account_id: str | None = None, **columns: str
    ) -> None:
        """Change an entity now (the emulator's clock): its ``Modified Time`` moves and the given bulk
        columns take new values, e.g. ``update_entity("Keyword", kid, Status="Paused", Bid="1.10")``
        (an underscore in a keyword stands for a space: ``Match_Type="Exact"``)."""
        account, kind, index = self._locate(record_type, entity_id_, account_id)
        with self._emulator._lock:
            changes = self._changes.setdefault(account, {})
            change = changes.get((kind, index))
            if change is not None and change.deleted:
                raise ValueError(f"{record_type} {entity_id_} is deleted; a deleted entity cannot change")
            merged = dict(change.columns) if change is not None else {}
            merged.update({name.replace("_", " "): str(value) for name, value in columns.items()})
            changes[(kind, index)] = BulkChange(self._emulator.clock(), merged)

    def delete_entity(self, record_type: str, entity_id_: str, *, account_id: str | None = None) -> None:
        """Delete an entity now: a delta download lists it with Status ``Deleted`` (its children are
        not listed, as Microsoft sends only a deleted parent's record); full downloads leave it out."""
        account, kind, index = self._locate(record_type, entity_id_, account_id)
        with self._emulator._lock:
            changes = self._changes.setdefault(account, {})
            previous = changes.get((kind, index))
            columns = dict(previous.columns) if previous is not None else {}
            changes[(kind, index)] = BulkChange(self._emulator.clock(), columns, deleted=True)

    def configure_next_download(
        self,
        *,
        pending_polls: int | None = None,
        status: str | None = None,
        error_rows: int | None = None,
    ) -> None:
        """Settings for the next download request (FIFO, one call per request), over the defaults.

        ``status``: ``Completed`` (default), ``Failed`` or ``FailedFullSyncRequired`` (with error 3603
        in ``Errors``). ``error_rows``: that many ``Keyword Error`` rows at the end of the file
        (ASSUMPTION: Microsoft documents error records for upload results, not downloads).
        """
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}")
        settings = {"pending_polls": pending_polls, "status": status, "error_rows": error_rows}
        with self._emulator._lock:
            self._next.append({k: v for k, v in settings.items() if v is not None})

    def expire_links(self) -> None:
        """Every result file URL handed out so far answers 403 AuthenticationFailed from now on."""
        with self._emulator._lock:
            for link in self._links.values():
                link.expired = True

    @property
    def created_at(self) -> float:
        """When the trees' entities were last modified before any change (60 days before first use)."""
        if self._created_at is None:
            self._created_at = float(int(self._emulator.clock() - 60 * 24 * 3600))
        return self._created_at

    @property
    def submits(self) -> int:
        counters = self._emulator.counters
        return counters["bulk.DownloadCampaignsByAccountIds"] + counters["bulk.DownloadCampaignsByCampaignIds"]

    @property
    def polls(self) -> int:
        return self._emulator.counters["bulk.GetBulkDownloadStatus"]

    @property
    def file_downloads(self) -> int:
        return self._emulator.counters["bulk_download"]

    @property
    def downloads_with_credentials(self) -> int:
        """Result file requests that carried Authorization, DeveloperToken or other Ads headers (want 0)."""
        return self._emulator.counters["bulk_download.with_credentials"]

    # ---------------------------------------------------------------------- helpers

    def _account(self, account_id: str | None) -> str:
        account = self._emulator.account.id if account_id is None else str(account_id)
        if account not in self._emulator._accounts:
            raise ValueError(f"account {account!r} is not in this emulator; add_account() creates one")
        return account

    @staticmethod
    def _kind(record_type: str) -> str:
        kinds = ("Campaign", "Ad Group", "Keyword", "Responsive Search Ad", "Label", "Budget")
        if record_type not in kinds:
            raise ValueError(f"record_type must be one of {kinds}, not {record_type!r}")
        return record_type

    @staticmethod
    def _ancestor_ids(account: str, tree: BulkTree, kind: str, index: int) -> set[str]:
        found: set[str] = set()
        node = tree.parent(kind, index)
        while node is not None:
            found.add(entity_id(account, *node))
            node = tree.parent(*node)
        return found

    def _locate(self, record_type: str, value: str, account_id: str | None) -> tuple[str, str, int]:
        account = self._account(account_id)
        kind = self._kind(record_type)
        tree = self.tree(account)
        wanted = str(value)
        index = long_id_index(account, kind, wanted)
        if index is None and kind in ("Campaign", "Ad Group"):
            index = next((i for i in range(tree.count(kind)) if entity_id(account, kind, i) == wanted), None)
        if index is None or index >= tree.count(kind):
            raise ValueError(f"{record_type} {wanted!r} is not in account {account}; bulk.ids() lists them")
        return account, kind, index

    def _campaign_index(self, account: str, value: str) -> int | None:
        tree = self.tree(account)
        return next((i for i in range(tree.campaigns) if entity_id(account, "Campaign", i) == value), None)

    def _snapshot(self, account: str) -> dict[tuple[str, int], BulkChange]:
        return {
            key: replace(change, columns=dict(change.columns)) for key, change in self._changes.get(account, {}).items()
        }
