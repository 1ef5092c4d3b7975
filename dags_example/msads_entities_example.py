"""
### Entities: a current-state copy of campaigns, ad groups, keywords and ads in SQLite

`MicrosoftAdsBulkDownloadOperator` downloads the connection's account with Microsoft's Bulk
service: in full the first time, then only what changed since the last run (a *delta*: the
operator keeps the Sync Time of the last download, sealed, per task, connection, account and
entity set). Each run writes one CSV per record type (`campaign.csv`, `ad_group.csv`,
`keyword.csv`, `responsive_search_ad.csv`, `account.csv`…) under
`$MSADS_EXAMPLE_DATA_DIR/msads_data/entities/<run>/` (default: the home folder).

`merge` then keeps `$MSADS_EXAMPLE_DATA_DIR/msads_data/entities.sqlite` current: one table per
record type, keyed on Microsoft's `Id`:

* after a **full** download (the result's `accounts[...]["full"]`), each table is replaced by
  the file's rows: a full file is the whole state;
* after a **delta**, rows are upserted on `Id`, and rows Microsoft sends with Status `Deleted`
  are removed (a deleted parent comes alone: its children stop appearing in later files, so
  query through the parent, or replace with a full download now and then by clearing the
  task's saved Sync Time).

Files are read row by row and written in batches: memory stays flat whatever the account's size.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_msads.operators.bulk import MicrosoftAdsBulkDownloadOperator

CONN_ID = "msads_default"
DATA_DIR = os.path.expanduser(os.environ.get("MSADS_EXAMPLE_DATA_DIR", "~"))
OUTPUT_DIR = Path(DATA_DIR, "msads_data").resolve()
DATABASE = OUTPUT_DIR / "entities.sqlite"
BATCH = 1000


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _batches(reader: Iterator[list[str]]) -> Iterator[list[list[str]]]:
    batch: list[list[str]] = []
    for row in reader:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def merge_file(db: sqlite3.Connection, table: str, path: str, *, full: bool) -> int:
    """Merge one record type's CSV into ``table`` (all TEXT columns, ``Id`` the key); rows merged."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        columns = next(reader)
        names = ", ".join(_quoted(c) for c in columns)
        db.execute(f"CREATE TABLE IF NOT EXISTS {_quoted(table)} ({_quoted('Id')} TEXT PRIMARY KEY)")
        known = {row[1] for row in db.execute(f"PRAGMA table_info({_quoted(table)})")}
        for column in columns:
            if column not in known:  # a column new in this file: added, older rows keep NULL
                db.execute(f"ALTER TABLE {_quoted(table)} ADD COLUMN {_quoted(column)} TEXT")
        if full:
            db.execute(f"DELETE FROM {_quoted(table)}")  # noqa: S608 - a quoted identifier, no value
        updates = ", ".join(f"{_quoted(c)} = excluded.{_quoted(c)}" for c in columns if c != "Id")
        # Identifiers quoted by _quoted; every value is a bound parameter.
        placeholders = ", ".join("?" for _ in columns)
        upsert = f"INSERT INTO {_quoted(table)} ({names}) VALUES ({placeholders}) "  # noqa: S608
        upsert += f"ON CONFLICT({_quoted('Id')}) DO UPDATE SET {updates}"
        status = columns.index("Status") if "Status" in columns else None
        merged = 0
        for batch in _batches(reader):
            deleted = [(row[columns.index("Id")],) for row in batch if status is not None and row[status] == "Deleted"]
            kept = [row for row in batch if status is None or row[status] != "Deleted"]
            db.executemany(upsert, kept)
            db.executemany(f"DELETE FROM {_quoted(table)} WHERE {_quoted('Id')} = ?", deleted)  # noqa: S608
            merged += len(batch)
        return merged


def merge_result(result: dict[str, Any], database: str | os.PathLike[str]) -> dict[str, int]:
    """Merge a MicrosoftAdsBulkDownloadOperator result into ``database``; rows merged per table.

    A table is replaced only when every account of the download was full (a full file of one
    account is not the whole state of a table shared by several).
    """
    full = all(account["full"] for account in result["accounts"].values())
    merged: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        for stem, info in sorted(result["files"].items()):
            merged[stem] = merge_file(db, stem, info["path"], full=full)
    return merged


@dag(
    dag_id="msads_entities_example",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # deltas build on each other: one run at a time
    doc_md=__doc__,
    tags=["msads", "example"],
)
def msads_entities_example() -> None:
    entities = MicrosoftAdsBulkDownloadOperator(
        task_id="entities",
        msads_conn_id=CONN_ID,
        entities=["Campaigns", "AdGroups", "Keywords", "Ads"],
        destination=f"{OUTPUT_DIR}/entities/{{{{ ts_nodash }}}}",
        retries=2,
    )

    @task
    def merge(result: dict[str, Any]) -> dict[str, int]:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        return merge_result(result, DATABASE)

    merge(entities.output)


msads_entities_example()
