"""The Sync Time a delta download starts from, sealed so that nobody else can choose it.

A delta sends ``LastSyncTimeInUTC`` = the Account row's Sync Time of the last download. It sits in
an Airflow Variable, which more people may write than may read the connection; a forged, older
time would make the next run re-download (harmless), but a forged *newer* time would make it skip
changes, so the loader's current-state table silently misses them. So the time is sealed like the
report resume state (:mod:`..reporting.resume`, reused here with its own key purpose): an HMAC
under a key derived from the connection's client secret, covering the time itself, the
fingerprint of what was downloaded (connection, account, entities, data scope) and the task it
belongs to. A seal that does not open means a full download, never a guess.

Microsoft refuses a LastSyncTimeInUTC "more than 30 days ago": an older saved time (or one in
the future) does not open either, and the download is full. No Airflow here.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence

from airflow_provider_msads.bulk.request import DELTA_MAX_AGE
from airflow_provider_msads.bulk.split import parse_sync_time
from airflow_provider_msads.reporting.resume import ResumeSeal

PURPOSE = b"airflow-provider-msads/bulk-sync-time/v1"
#: Prefix of the Airflow Variables holding sealed Sync Times.
STATE_VARIABLE_PREFIX = "msads_bulk_sync__"


def state_key(dag_id: str, task_id: str, conn_id: str, account_id: str, entities: Sequence[str]) -> str:
    """The Variable name for one task, connection, account and entity set (the delta's identity)."""
    ident = json.dumps([dag_id, task_id, conn_id, str(account_id), sorted(entities)])
    return STATE_VARIABLE_PREFIX + hashlib.sha256(ident.encode()).hexdigest()[:32]


def fingerprint(conn_id: str, account_id: str, entities: Sequence[str], data_scope: Sequence[str]) -> str:
    return hashlib.sha256(
        json.dumps([conn_id, str(account_id), sorted(entities), sorted(data_scope)]).encode()
    ).hexdigest()


class SyncSeal:
    """Seals and opens one account's saved Sync Time."""

    def __init__(self, client_secret: str, conn_id: str, client_id: str, key: str) -> None:
        self._seal = ResumeSeal(client_secret, conn_id, client_id, key, purpose=PURPOSE)

    def seal(self, sync_time: str, fingerprint: str) -> str:
        when = parse_sync_time(sync_time)
        if when is None:
            raise ValueError(f"not a Sync Time: {sync_time[:40]!r}")
        return self._seal.seal(sync_time, fingerprint, now=when.timestamp())

    def open(
        self, value: str | None, fingerprint: str, *, now: datetime.datetime | None = None
    ) -> tuple[datetime.datetime | None, str]:
        """The saved Sync Time when the seal is ours, for these arguments, and under 30 days old."""
        moment = (now or datetime.datetime.now(datetime.timezone.utc)).timestamp()
        state, why = self._seal.open(value, fingerprint, now=moment, max_age=DELTA_MAX_AGE.total_seconds())
        if state is None:
            return None, why
        when = parse_sync_time(state.request_id)
        if when is None or abs(when.timestamp() - state.submitted_at) > 1:
            return None, "not a sealed Sync Time"
        return when, "ok"
