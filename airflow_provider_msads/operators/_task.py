"""What every Microsoft Advertising operator does the same way: build its hook, and turn an error
into Airflow's verdict (retry for what may pass on its own, fail at once for what needs a fix)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

if TYPE_CHECKING:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook


def task_hook(msads_conn_id: str) -> MicrosoftAdsHook:
    """The hook, imported here (not at DAG parsing) and built when the task runs."""
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    return MicrosoftAdsHook(msads_conn_id=msads_conn_id)


def raise_for_task(err: Exception) -> NoReturn:
    """A retryable :class:`MicrosoftAdsError` lets Airflow retry; any other one fails the task without
    retries (they would fail the same way); anything else is raised as it is."""
    from airflow_provider_msads.errors import MicrosoftAdsError

    if isinstance(err, MicrosoftAdsError):
        if err.retryable:
            raise AirflowException(str(err)) from err
        raise AirflowFailException(str(err)) from err
    raise err
