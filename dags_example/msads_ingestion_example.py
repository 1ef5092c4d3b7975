"""
### Microsoft Advertising ingestion, guarded by a credentials check

1. `credentials_guard` (`MicrosoftAdsCredentialsSensor`, deferrable) waits in the triggerer until
   the connection validates: refresh, GetUser, GetAccount. If someone is re-authorizing, the run
   waits for them instead of failing halfway through an ingestion.
2. `fetch_accounts_info` uses the hook the way your own ingestion code would: `list_accounts()`
   gives every account under the connection's customer (GetAccountsInfo, retried when throttled),
   written as JSON to the output folder; `get_conn()` gives an `httpx.Client` that adds Authorization,
   DeveloperToken, CustomerId and CustomerAccountId to every request and refreshes the access
   token when it expires, for the calls the hook has no method for; `get_auth_headers()` gives the
   same headers for any other HTTP client (or Microsoft's SDK).
3. `campaign_performance` (`MicrosoftAdsReportOperator`, deferrable) is the ingestion itself: a
   daily `CampaignPerformanceReportRequest` for the day that ended before the run plus a lookback
   window of `lookback_days` (conversions and invalid-traffic adjustments arrive late, so each run re-pulls
   the last days; the run at 16:00 UTC comes after Microsoft closed the day's books everywhere, so
   the result's `complete` is True), written as CSV to
   `<output folder>/campaign_performance/<last day>.csv` once complete. A retry resumes the same
   report request instead of submitting it again.

Where files go is the deployment's choice, not the triggering user's: the base folder comes from
the environment variable `MSADS_EXAMPLE_DATA_DIR` of the Airflow processes (default: the home
folder), and the run parameter `output_dir` only names a sub-folder under it (letters, digits,
`_`, `-`, `/`; no scheme, no `..`, not absolute). A Param that took any path would let whoever
may trigger the DAG write the report to any folder or bucket the workers can reach.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pendulum

# common-compat keeps one import line working on Airflow 2.11 and 3.x (airflow.sdk on 3).
from airflow.providers.common.compat.sdk import Param, dag, task

# Airflow's own timetable (2.11 and 3.x): a run at 16:00 UTC with a zero-length data interval, so
# the operator's default dates are the day before, whose books have closed in every time zone.
from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator
from airflow_provider_msads.sensors.msads import MicrosoftAdsCredentialsSensor

CONN_ID = "msads_default"
#: The deployment's base folder for this example's files (set on every Airflow process).
DATA_DIR = os.path.expanduser(os.environ.get("MSADS_EXAMPLE_DATA_DIR", "~"))
#: A sub-folder name: no scheme, no "..", not absolute (see the module docstring).
SUBFOLDER_PATTERN = r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$"
log = logging.getLogger(__name__)


@dag(
    dag_id="msads_ingestion_example",
    # Microsoft closes a day's books about 3 hours after it ends in *every* campaign's time zone
    # (UTC-12 the last): 15:00 UTC the next day. At 16:00 UTC yesterday is complete; at midnight
    # it is not (the result's `complete` would be False).
    schedule=CronTriggerTimetable("0 16 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["msads", "example"],
    params={
        "output_dir": Param(
            "msads_data",
            type="string",
            pattern=SUBFOLDER_PATTERN,
            description="Sub-folder (of the deployment's MSADS_EXAMPLE_DATA_DIR) for the JSON and CSV files.",
        ),
        "lookback_days": Param(
            2, type="integer", minimum=0, maximum=30, description="Days before the interval to pull again."
        ),
    },
)
def msads_ingestion_example() -> None:
    guard = MicrosoftAdsCredentialsSensor(
        task_id="credentials_guard",
        msads_conn_id=CONN_ID,
        deferrable=True,
        poke_interval=300,
        timeout=6 * 3600,
    )

    @task
    def fetch_accounts_info(**context: Any) -> str:
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        hook = MicrosoftAdsHook(msads_conn_id=CONN_ID)
        customer_id = hook.credentials.customer_id

        # 1. Every account under the customer, typed (account.id, .name, .number, .status). For
        #    other calls, hook.get_conn() is the authenticated client: its base URL is Customer
        #    Management; pass absolute URLs for the campaign, reporting and bulk services.
        accounts = [account.to_dict() for account in hook.list_accounts()]

        # 2. The same headers for any other client (requests, aiohttp, Microsoft's SDK). Never log
        #    the values: the Authorization header is a live access token.
        headers = hook.get_auth_headers()
        log.info("Ads headers available for other clients: %s", sorted(headers))

        out_dir = Path(DATA_DIR) / context["params"]["output_dir"]
        out_dir.mkdir(parents=True, exist_ok=True)
        day = context.get("ds_nodash") or pendulum.now("UTC").format("YYYYMMDD")
        path = out_dir / f"accounts_info_{customer_id}_{day}.json"
        path.write_text(json.dumps(accounts, indent=2, sort_keys=True), encoding="utf-8")
        log.info("Wrote %d accounts to %s", len(accounts), path)
        return str(path)

    report = MicrosoftAdsReportOperator(
        task_id="campaign_performance",
        msads_conn_id=CONN_ID,
        report_type="CampaignPerformanceReportRequest",
        columns=["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"],
        aggregation="Daily",
        # Inclusive. date_to defaults to the last complete day before the run (in the DAG's time
        # zone); the lookback starts that many days earlier.
        lookback_days="{{ params.lookback_days }}",
        # Named after the last day it holds (the day before the run, in this DAG's UTC).
        destination=DATA_DIR + "/{{ params.output_dir }}/campaign_performance/"
        "{{ macros.ds_add(data_interval_end | ds, -1) }}.csv",
        # No Asset: the folder is chosen per run (output_dir), so the only fixed part of the
        # destination is the deployment's base folder, too broad to name this data. For
        # data-aware scheduling give `asset=` a URI of its own (msads_report_assets_example.py).
        asset=False,
        deferrable=True,
        poll_interval=60,  # polls start 5 s apart and back off to this
        timeout=2 * 3600,
        retries=3,
    )

    guard >> [fetch_accounts_info(), report]


msads_ingestion_example()
