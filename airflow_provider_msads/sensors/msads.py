"""MicrosoftAdsCredentialsSensor: hold ingestion until a connection validates.

Where the operator fails fast, the sensor waits: while someone re-authorizes and pastes a new
refresh token, fixes the developer token, or while Microsoft throttles. Each poke builds a new
hook, so a fixed connection is seen at the next poke. Modes: ``poke`` (holds a worker slot),
``reschedule`` (frees it between pokes) and ``deferrable=True`` (waits in the triggerer through
:class:`~airflow_provider_msads.triggers.msads.MicrosoftAdsCredentialsTrigger`).

Module imports stay small: DAG parsing imports this module; the hook (httpx, cryptography) and
the trigger are imported when a poke or a deferral happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class MicrosoftAdsCredentialsSensor(BaseSensorOperator):
    """Wait until ``msads_conn_id`` validates (refresh, GetUser, GetAccount all pass).

    The report of the passing check is the sensor's XCom return value. Warnings (for example an
    account that is not Active) do not keep the sensor waiting; use the operator with
    ``fail_on_warnings=True`` for that.

    :param msads_conn_id: the connection to validate (templated).
    :param deferrable: wait in the triggerer instead of a worker slot (needs a running triggerer).
    """

    template_fields: Sequence[str] = ("msads_conn_id",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        msads_conn_id: str = "msads_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.msads_conn_id = msads_conn_id
        self.deferrable = deferrable

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        report = MicrosoftAdsHook(msads_conn_id=self.msads_conn_id).validate_credentials()
        if report.ok:
            self.log.info("%s", report.summary())
            return PokeReturnValue(is_done=True, xcom_value=report.to_dict())
        self.log.info("Credentials do not validate yet: %s", report.summary())
        return PokeReturnValue(is_done=False)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_msads.triggers.msads import MicrosoftAdsCredentialsTrigger

        self.defer(
            trigger=MicrosoftAdsCredentialsTrigger(
                msads_conn_id=self.msads_conn_id,
                poke_interval=float(self.poke_interval),
                timeout=float(self.timeout) if self.timeout is not None else None,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Resume after the trigger fired: return the report, or time out like a poking sensor."""
        if event and event.get("status") == "success":
            report: dict[str, Any] | None = event.get("report")
            self.log.info("%s", (report or {}).get("summary", "Credentials validate."))
            return report
        message = (event or {}).get("message") or f"{self.msads_conn_id}: the credentials trigger gave no event."
        if self.soft_fail:
            raise AirflowSkipException(message)
        if event and event.get("status") == "timeout":
            raise AirflowSensorTimeout(message)
        raise AirflowException(message)
