"""100 mapped tasks over the connections named in ``MSADS_DEPLOY_CONN_IDS``: each one uses the hook.

Used by ``make test-celery`` (tests/deployment): every task gets an access token through the
shared token store and makes API calls (GetUser, GetAccount) with it, on whichever Celery worker
picks it up.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import dag, task

CONN_IDS = [c for c in os.environ.get("MSADS_DEPLOY_CONN_IDS", "msads_default").split(",") if c]
TASKS = 100


@dag(
    dag_id="msads_celery_fanout",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=16,
    tags=["msads", "test"],
)
def msads_celery_fanout() -> None:
    @task(retries=0)
    def use_the_hook(conn_id: str) -> None:
        from airflow_provider_msads.customer.api import CustomerManagement
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        hook = MicrosoftAdsHook(msads_conn_id=conn_id)
        hook.get_access_token()  # never logged; the hook masks it
        # An API call with the shared token. (Not test_connection(): that check forces a refresh.)
        api = CustomerManagement(hook.credentials.endpoints.customer_management_url)
        with hook.get_conn() as client:
            api.get_user(client)
            api.get_account(client, hook.credentials.account_id)
        print(f"{conn_id}: GetUser and GetAccount answered")

    use_the_hook.expand(conn_id=[CONN_IDS[i % len(CONN_IDS)] for i in range(TASKS)])


msads_celery_fanout()
