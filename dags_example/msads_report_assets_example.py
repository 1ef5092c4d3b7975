"""
### Data-aware scheduling: a report lands, the loader runs

Two DAGs sharing one Asset (a Dataset on Airflow 2.11):

* `msads_report_producer` writes yesterday's campaign performance of **every account** under the
  connection's customer (`account_ids="all"`) to
  `$MSADS_EXAMPLE_DATA_DIR/msads_data/campaign_daily/<day>.csv` (the deployment's folder, set on
  every Airflow process; default: the home folder).
  `MicrosoftAdsReportOperator` declares the Asset and, once the file is complete, records an
  Asset event whose `extra` holds `path`, `rows`, `bytes`, `report_request_id`, `date_from`,
  `date_to` and `complete` (the run at 16:00 UTC asks for yesterday once Microsoft closed its
  books in every time zone, so it is True; a loader can skip or flag a False).
* `msads_report_consumer` is scheduled on that Asset: it runs when the file lands and reads the
  event's `extra` to find the file, without listing folders or guessing dates. Put your DuckDB or
  pandas load there (for Parquet, set `output_format="parquet"` on the producer).

The Asset URI is given explicitly (`asset=REPORT_ASSET`): it must be known when the DAGs are parsed,
while the destination is a template rendered at run time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

# Airflow's own timetable (2.11 and 3.x): a run at 16:00 UTC with a zero-length data interval, so
# the operator's default dates are the day before, whose books have closed in every time zone.
from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

try:  # Airflow 3
    from airflow.sdk import Asset
except ImportError:  # Airflow 2.11
    from airflow.datasets import Dataset as Asset  # type: ignore[no-redef,assignment]

CONN_ID = "msads_default"
#: The deployment's base folder for the examples' files (the same variable as the ingestion example's).
DATA_DIR = os.path.expanduser(os.environ.get("MSADS_EXAMPLE_DATA_DIR", "~"))
OUTPUT_DIR = Path(DATA_DIR, "msads_data").resolve()
REPORT_ASSET = Asset(f"file://{OUTPUT_DIR}/campaign_daily")
log = logging.getLogger(__name__)


@dag(
    dag_id="msads_report_producer",
    # Microsoft closes a day's books about 3 hours after it ends in *every* campaign's time zone
    # (UTC-12 the last): 15:00 UTC the next day. At 16:00 UTC yesterday is complete; at midnight
    # it is not (the result's `complete` would be False).
    schedule=CronTriggerTimetable("0 16 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["msads", "example"],
)
def msads_report_producer() -> None:
    MicrosoftAdsReportOperator(
        task_id="campaign_daily",
        msads_conn_id=CONN_ID,
        report_type="CampaignPerformanceReportRequest",
        columns=["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"],
        account_ids="all",
        # Named after the day it holds: the last complete day before the run, the operator's
        # default dates (Airflow 3's @daily runs have a zero-length data interval at midnight, so
        # `data_interval_start | ds` would name yesterday's data after today).
        destination=f"{OUTPUT_DIR}/campaign_daily/{{{{ macros.ds_add(data_interval_end | ds, -1) }}}}.csv",
        asset=REPORT_ASSET,
        deferrable=True,
        retries=3,
        # Fan-out against Microsoft's limits (117 CallRateExceeded, 207 ConcurrentRequestOverLimit):
        # create the pool first, e.g. `airflow pools set msads_reporting 4 "Microsoft Advertising"`.
        # pool="msads_reporting",
    )


@dag(
    dag_id="msads_report_consumer",
    schedule=[REPORT_ASSET],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["msads", "example"],
)
def msads_report_consumer() -> None:
    @task
    def load(**context: Any) -> list[dict[str, Any]]:
        # Airflow 3 names it triggering_asset_events, 2.11 triggering_dataset_events.
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        return landed_files(events)

    load()


def landed_files(events: Any) -> list[dict[str, Any]]:
    """What each triggering event says landed, with the rows checked against the file."""
    landed = []
    for asset_events in events.values():
        for event in asset_events:
            extra = dict(event.extra or {})
            path = Path(extra["path"])
            with path.open("rb") as handle:
                lines = sum(1 for _ in handle) - 1  # Microsoft's CSV: one line per row plus the column row
            log.info("%s: %d rows for %s..%s.", path, extra["rows"], extra["date_from"], extra["date_to"])
            # Load it here, e.g. duckdb.sql(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')").
            landed.append({**extra, "lines": lines})
    return landed


msads_report_producer()
msads_report_consumer()
