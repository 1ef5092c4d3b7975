"""
### Microsoft Advertising token health check

Every 12 hours, validates each Microsoft Advertising connection listed in the `conn_ids` param
(default `["msads_default"]`), one mapped task per connection:

1. **refresh** the access token (forced) - proves Client ID, Client Secret and Refresh Token, and
   makes Microsoft issue a new refresh token, which the provider saves in its token store. That
   rotation is what keeps the refresh token alive: Microsoft kills a refresh token after 90 days
   without use (AADSTS700082), which is how most Microsoft Ads pipelines die;
2. **GetUser** - proves the Developer Token;
3. **GetAccount** - proves the Account ID, that it belongs to the Customer ID, and that it is Active.

The `summary` task then fails with one line per broken connection that says which field is wrong
and which step of the credentials guide to redo; warnings (account not Active, client secret
expiring within 30 days) are logged, and fail the run when `fail_on_warnings` is true.

A wrong credential fails its check at once, without spending retries; a transient Microsoft
problem (throttling, outage) is retried.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum

# common-compat keeps one import line working on Airflow 2.11 and 3.x (airflow.sdk on 3).
from airflow.providers.common.compat.sdk import AirflowFailException, Param, dag, task

from airflow_provider_msads.operators.msads import REPORT_XCOM_KEY, MicrosoftAdsValidateCredentialsOperator

log = logging.getLogger(__name__)


@dag(
    dag_id="msads_token_health_check",
    schedule=timedelta(hours=12),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["msads", "health-check"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    params={
        "conn_ids": Param(
            ["msads_default"],
            type="array",
            items={"type": "string"},
            minItems=1,
            description="Microsoft Advertising connection ids to check and keep alive.",
        ),
        "fail_on_warnings": Param(
            False, type="boolean", description="Fail the run on warnings (account not Active, secret expiring)."
        ),
    },
)
def msads_token_health_check() -> None:
    @task
    def connection_ids(**context: Any) -> list[str]:
        return [str(conn_id) for conn_id in context["params"]["conn_ids"]]

    ids = connection_ids()

    checks = MicrosoftAdsValidateCredentialsOperator.partial(
        task_id="validate",
        map_index_template="{{ task.msads_conn_id }}",
    ).expand(msads_conn_id=ids)

    @task(trigger_rule="all_done", retries=0)
    def summary(conn_ids: list[str], **context: Any) -> dict[str, Any]:
        """Read every check's report (also of failed checks) and tell a person what to redo."""
        pulled = context["ti"].xcom_pull(task_ids="validate", key=REPORT_XCOM_KEY)
        reports = [pulled] if isinstance(pulled, dict) else [r for r in (pulled or []) if r]
        by_id = {report["conn_id"]: report for report in reports}
        problems: list[str] = []
        warnings: list[str] = []
        healthy: list[str] = []
        for conn_id in conn_ids:
            report = by_id.get(conn_id)
            if report is None:
                problems.append(f"{conn_id}: no report; the check stopped before validating, see the validate log.")
            elif not report["ok"]:
                problems.append(report["summary"])
            else:
                healthy.append(conn_id)
                warnings += [f"{conn_id}: {w['message']}" for w in report["warnings"]]
        for line in warnings:
            log.warning("%s", line)
        if problems or (warnings and context["params"]["fail_on_warnings"]):
            lines = problems + (warnings if context["params"]["fail_on_warnings"] else [])
            raise AirflowFailException(
                f"{len(lines)} Microsoft Advertising connection problem(s) need a person:\n"
                + "\n".join(f"- {line}" for line in lines)
                + "\nFix the connection as each line says, then clear this run to check again."
            )
        return {"healthy": healthy, "warnings": warnings}

    checks >> summary(ids)


msads_token_health_check()
