"""MicrosoftAdsValidateCredentialsOperator: prove a connection before ingesting with it.

Thin by design: ``__init__`` only stores arguments (DAG parsing builds operators, it must not
read connections or touch the network), and the hook with its HTTP stack is imported inside
``execute``, so parsing a DAG that uses this operator costs no httpx or cryptography import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_msads.validation.steps import CredentialsReport

#: XCom key under which the report is pushed, also when the task fails (the return value is only
#: pushed on success, but the health-check summary needs the report of a failed check too).
REPORT_XCOM_KEY = "report"


def raise_for_report(report: CredentialsReport, *, fail_on_warnings: bool = False) -> None:
    """Fail the task the way the report deserves.

    A credential proven wrong (bad secret, expired grant, bad developer token, wrong ids) raises
    :class:`AirflowFailException`: retrying cannot fix it, so the task fails at once instead of
    spending its retries and delaying the alert. A transient failure (throttling, outage) raises a
    plain :class:`AirflowException` and leaves the retries to Airflow.
    """
    if not report.ok:
        if report.retryable:
            raise AirflowException(report.summary())
        raise AirflowFailException(report.summary())
    if fail_on_warnings and report.warnings:
        raise AirflowFailException(
            f"{report.conn_id}: credentials valid but with warnings (fail_on_warnings=True): "
            + " ".join(w.message for w in report.warnings)
        )


class MicrosoftAdsValidateCredentialsOperator(BaseOperator):
    """Validate an ``msads`` connection: refresh, GetUser, GetAccount; push the report to XCom.

    The refresh is forced, so running this regularly also rotates the refresh token and keeps it
    alive (see the ``msads_token_health_check`` example DAG).

    :param msads_conn_id: the connection to validate (templated).
    :param fail_on_warnings: fail (without retries) when the credentials work but the report has
        warnings: account not Active, client secret expiring, refresh token not rotated.
    :param secret_expiry_warning_days: warn when ``client_secret_expires_on`` is this close.
    :param rotation_warning_days: warn when the refresh token was last rotated longer ago.
    """

    template_fields: Sequence[str] = ("msads_conn_id",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        msads_conn_id: str = "msads_default",
        fail_on_warnings: bool = False,
        secret_expiry_warning_days: int = 30,
        rotation_warning_days: int = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.msads_conn_id = msads_conn_id
        self.fail_on_warnings = fail_on_warnings
        self.secret_expiry_warning_days = secret_expiry_warning_days
        self.rotation_warning_days = rotation_warning_days

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        hook = MicrosoftAdsHook(msads_conn_id=self.msads_conn_id)
        report = hook.validate_credentials(
            secret_expiry_warning_days=self.secret_expiry_warning_days,
            rotation_warning_days=self.rotation_warning_days,
        )
        for line in report.lines():
            self.log.info("%s", line)
        for warning in report.warnings:
            self.log.warning("%s: %s", warning.code, warning.message)
        data = report.to_dict()
        context["ti"].xcom_push(key=REPORT_XCOM_KEY, value=data)
        raise_for_report(report, fail_on_warnings=self.fail_on_warnings)
        return data
