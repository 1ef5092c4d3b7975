"""What the *Token health* page reads from the metastore: the msads connections and their newest verdicts.

Split from :mod:`.app` (which draws the pages). Imports Airflow (the metastore) inside functions;
may import the core rooms and ``cli.metastore``.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_msads.errors import MicrosoftAdsError
from airflow_provider_msads.ui import flow

log = logging.getLogger(__name__)

REFRESH_TOKEN_LIFETIME_DAYS = 90


# ------------------------------------------------------------------------------ the metastore


def msads_conn_ids() -> list[str]:
    from airflow.models import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_msads.cli.metastore import server_context
    from airflow_provider_msads.connection.credentials import CONN_TYPE

    with server_context(), create_session() as session:
        return sorted(session.scalars(select(Connection.conn_id).where(Connection.conn_type == CONN_TYPE)).all())


#: Where the verdicts of the token-health page come from: the health-check DAG's validate tasks
#: (dags_example/msads_token_health_check.py). Any other XCom named ``report`` is ignored: the
#: USER role may post XComs to any DAG through the REST API.
HEALTH_DAG_ID = "msads_token_health_check"
HEALTH_TASK_ID = "validate"
#: Clock skew a verdict's ``checked_at`` may show ahead of this server; anything later is refused
#: (a verdict "from the future" would otherwise stay the newest for good).
CLOCK_SKEW = 300.0
#: Slack between a task instance's end and its XCom's timestamp (different clocks may round).
_XCOM_SLACK = datetime.timedelta(seconds=5)
TESTS_OFF = (
    "Validate now is off: this Airflow keeps connection tests off the API server ([core] test_connection is not "
    "Enabled). The health-check DAG validates the connections on the workers; an admin may set "
    "[core] test_connection = Enabled to allow Validate now."
)


def connection_tests_enabled() -> bool:
    """Airflow's ``[core] test_connection`` (Disabled by default; Enabled, Disabled or Hidden), read
    as Airflow's own connection-test route reads it: only Enabled lets the API server test."""
    from airflow.configuration import conf

    return str(conf.get("core", "test_connection", fallback="Disabled")).lower().strip() == "enabled"


def _checked_at(report: Mapping[str, Any]) -> float | None:
    """``checked_at`` (ISO 8601) as epoch seconds; None when missing or unreadable."""
    text = str(report.get("checked_at") or "")
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def believable(report: Mapping[str, Any], now: float | None = None) -> bool:
    """A verdict with a readable ``checked_at`` that is not in the future."""
    checked = _checked_at(report)
    return checked is not None and checked <= (time.time() if now is None else now) + CLOCK_SKEW


def last_reports() -> dict[str, dict[str, Any]]:
    """The newest health-check report per connection id: the XCom ``report`` of the health-check
    DAG's ``validate`` task instances, written while that task instance ran.

    The task's own push falls between its start and its end; an XCom posted or patched through the
    REST API afterwards (the USER role may) is newer than the end and is ignored, and so is one of
    a task instance that never ran.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel as XCom  # type: ignore[attr-defined]
    from airflow.utils.session import create_session
    from sqlalchemy import and_, select

    from airflow_provider_msads.cli.metastore import server_context
    from airflow_provider_msads.operators.msads import REPORT_XCOM_KEY

    found: dict[str, dict[str, Any]] = {}
    try:
        with server_context(), create_session() as session:
            rows = session.execute(
                select(XCom.value, XCom.timestamp, TaskInstance.start_date, TaskInstance.end_date)
                .join(
                    TaskInstance,
                    and_(
                        TaskInstance.dag_id == XCom.dag_id,
                        TaskInstance.run_id == XCom.run_id,
                        TaskInstance.task_id == XCom.task_id,
                        TaskInstance.map_index == XCom.map_index,
                    ),
                )
                .where(XCom.dag_id == HEALTH_DAG_ID, XCom.task_id == HEALTH_TASK_ID, XCom.key == REPORT_XCOM_KEY)
                .order_by(XCom.timestamp.desc())
                .limit(500)
            ).all()
    except Exception:
        log.warning("Could not read the health-check reports from XCom", exc_info=True)
        return found
    for value, pushed, started, ended in rows:
        if started is None or ended is None or not (started - _XCOM_SLACK <= pushed <= ended + _XCOM_SLACK):
            continue
        try:
            report = json.loads(value) if isinstance(value, (str, bytes)) else value
        except ValueError:
            continue
        if isinstance(report, dict) and report.get("conn_id") and report["conn_id"] not in found and believable(report):
            found[str(report["conn_id"])] = report
    return found


def newest_verdicts(
    dag_reports: Mapping[str, Mapping[str, Any]], recorded: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per connection, the newer (by ``checked_at``) of the health-check DAG's report and the
    verdict *Validate now* recorded, with where it came from in ``source``; a verdict dated in the
    future is not believed. Both carry whole seconds: a tie goes to *Validate now*, which someone
    asked for while looking at the DAG's verdict (seen on a fast machine: both in one second)."""
    newest: dict[str, dict[str, Any]] = {
        conn_id: {**report, "source": "health-check DAG"}
        for conn_id, report in dag_reports.items()
        if believable(report)
    }
    for conn_id, verdict in recorded.items():
        if not believable(verdict):
            continue
        current = newest.get(conn_id)
        if current is None or (_checked_at(verdict) or 0.0) >= (_checked_at(current) or 0.0):
            newest[conn_id] = dict(verdict)
    return newest


def _recorded(conn_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The verdicts Validate now kept (sealed with the server key: one written by anyone else is
    ignored); none when the Variables cannot be read (the page still shows the DAG's)."""
    from airflow_provider_msads.cli import metastore

    try:
        return metastore.recorded_validations(conn_ids, key=flow.record_key())
    except Exception as exc:
        log.warning("Could not read the recorded validations (%s)", type(exc).__name__)
        return {}


def token_health(conn_id: str) -> dict[str, Any]:
    """What the token store knows of ``conn_id``, without any token: rotation, expiries."""
    from airflow_provider_msads.cli.metastore import server_context
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.tokens.store import TokenCipher

    row: dict[str, Any] = {"conn_id": conn_id}
    try:
        with server_context():
            hook = MicrosoftAdsHook(msads_conn_id=conn_id)
            credentials = hook.credentials
            manager = hook.token_manager
            state = TokenCipher.for_credentials(credentials).open(manager.store.read(manager.key))
    except MicrosoftAdsError as err:
        row["problem"] = str(err)
        return row
    except Exception as exc:
        row["problem"] = f"cannot read the connection or its token store ({type(exc).__name__})"
        return row
    expires_on = credentials.client_secret_expires_on
    row["client_secret_expires_on"] = expires_on.isoformat() if expires_on else None
    if state is not None:
        row["refresh_rotated_at"] = state.refresh_rotated_at
        row["access_expires_at"] = state.access_expires_at
    rotated = row.get("refresh_rotated_at")
    if rotated:
        row["days_left"] = REFRESH_TOKEN_LIFETIME_DAYS - int((time.time() - rotated) // 86400)
    return row
