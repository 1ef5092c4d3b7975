"""MicrosoftAdsReportOperator: one Reporting v13 report, put where the warehouse loader reads it.

Thin, like the other operators: ``__init__`` only stores (DAG parsing builds it), the request is
built and checked by :mod:`airflow_provider_msads.reporting`, the HTTP work is the hook's.

Two things here are Airflow's own concern:

* **Resuming.** A ReportRequestId stays pollable for one day (SubmitGenerateReport), and slow reports outlive a task's
  timeout; peers that re-submit on each retry never finish in slow periods. The id is saved
  before waiting, and a retry (or a cleared task) of the same run polls it again when the request
  is unchanged and the id younger than a day. Airflow clears a task's XComs when a new try
  starts, so the id is kept in an Airflow Variable named after the task instance (and pushed to
  XCom under ``report_request_id`` for people to see), sealed under the connection's client
  secret (:mod:`~airflow_provider_msads.reporting.resume`: whoever may write Variables cannot
  choose what a retry downloads); it is deleted once the file is written, and as soon as
  Microsoft says the id is dead (2100/2101) or the report failed, so the next try submits afresh.
* **Dates.** Without ``date_from``/``date_to``, the period that ended at the run, in the DAG's
  time zone (:func:`~airflow_provider_msads.reporting.request.default_dates`).
* **Waiting.** In the worker (``time.sleep`` between polls) or, with ``deferrable``, in the
  triggerer (:class:`~airflow_provider_msads.triggers.reporting.MicrosoftAdsReportTrigger`); the
  worker then polls once more for a fresh link (links live five minutes) and downloads.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator, conf

from airflow_provider_msads.operators._report_outputs import ReportOutputsMixin, request_dates
from airflow_provider_msads.operators._task import raise_for_task, task_hook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.reporting import DownloadResult, ReportStatus

#: XCom key of the ReportRequestId (pushed before waiting).
REQUEST_ID_XCOM_KEY = "report_request_id"
#: Prefix of the Airflow Variable that lets a retry resume the same report request.
STATE_VARIABLE_PREFIX = "msads_report_request__"


def _variables() -> Any:
    from airflow_provider_msads.compat.versions import variable_api

    return variable_api()


class MicrosoftAdsReportOperator(ReportOutputsMixin, BaseOperator):
    """Submit a report, wait for it, stream its CSV to ``destination``; return what was written.

    :param report_type: the request ``Type``, e.g. ``"CampaignPerformanceReportRequest"``.
    :param columns: column names, in file order (``TimePeriod`` first for daily rows).
    :param destination: local path or ObjectStoragePath URL (``file://``, ``s3://conn@bucket/key``,
        …), templated. The file appears under this name only when complete.
    :param aggregation: Daily by default; Hourly data is kept 6 months, the rest 36.
    :param date_from: first day (inclusive, templated); default: see ``date_to``.
    :param date_to: last day (inclusive, templated); default: the period that ended at the run in
        the DAG's time zone: a real data interval's days, or for a zero-length interval (Airflow 3's
        ``@daily``, manual runs) the last complete day before the run.
    :param lookback_days: with the default ``date_from``, start this many days before ``date_to``
        (templated): a daily run re-pulls the last days, whose conversions arrive late.
    :param predefined_time: instead of dates, e.g. ``"Yesterday"``.
    :param account_ids: accounts to report on; default: the connection's Account ID (unless
        ``campaign_ids`` narrows the scope). An empty list is refused, never widened. ``"all"``:
        every account ``hook.list_accounts()`` returns, 1,000 per request, written as one file.
    :param campaign_ids: report on these campaigns of the connection's account only (at most 300).
        Given together with ``account_ids``, Microsoft reports on the union (a warning is logged).
    :param time_zone: Microsoft's ReportTimeZone name; default: the DAG's time zone where Microsoft
        has a name for it, else GMT.
    :param return_only_complete_data: Microsoft answers 2004 until the books close (about 3 hours
        after midnight in each campaign's time zone); the task then fails *for retry*: give it
        ``retries`` and a ``retry_delay`` of an hour or so.
    :param report_request: merged into the request: filters, an ad-group scope, anything else.
    :param compression: None (plain CSV) or ``"gzip"`` (``.gz`` is added to the name).
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param poll_interval: the longest wait between polls: polls start 5 s apart and back off to it.
    :param timeout: seconds to wait for Microsoft before failing; a retry resumes the same request.
    :param output_format: ``"csv"`` (Microsoft's bytes) or ``"parquet"`` (typed; extra ``[parquet]``).
    :param asset: the Asset (Dataset on 2.11) URI or object whose event says the file landed;
        default: derived from the destination's folder before its first template; False: none.

    The result (and the Asset event's extra) also says ``complete``: False when Microsoft's report
    header says "Potential Incomplete Data" (the header is read and stripped from the file), and
    ``date_from``/``date_to``: the days the file covers (whole weeks, months, years for Weekly,
    Monthly, Yearly, which Microsoft widens a custom range to).
    """

    template_fields: Sequence[str] = (
        "msads_conn_id",
        "date_from",
        "date_to",
        "lookback_days",
        "destination",
        "account_ids",
        "campaign_ids",
        "report_request",
        "predefined_time",
    )
    template_fields_renderers = {"report_request": "json"}
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        report_type: str,
        columns: Sequence[str],
        destination: str,
        msads_conn_id: str = "msads_default",
        aggregation: str = "Daily",
        date_from: str | datetime.date | None = None,
        date_to: str | datetime.date | None = None,
        lookback_days: int | str = 0,
        predefined_time: str | None = None,
        account_ids: Sequence[str | int] | str | None = None,
        campaign_ids: Sequence[str | int] | str | None = None,
        time_zone: str | None = None,
        return_only_complete_data: bool = False,
        report_request: dict[str, Any] | None = None,
        compression: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        timeout: float = 3600.0,
        output_format: str = "csv",
        asset: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.msads_conn_id = msads_conn_id
        self.report_type = report_type
        self.columns = list(columns)
        self.destination = destination
        self.aggregation = aggregation
        self.date_from = date_from
        self.date_to = date_to
        self.lookback_days = lookback_days
        self.predefined_time = predefined_time
        self.account_ids = account_ids
        self.campaign_ids = campaign_ids
        self.time_zone = time_zone
        self.return_only_complete_data = return_only_complete_data
        self.report_request = report_request
        self.compression = compression
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.output_format = output_format
        self.asset = asset
        self._declare_asset()

    # -- building ---------------------------------------------------------------------------

    def _zone(self, context: Context) -> Any:
        """The DAG's time zone: the timetable's own when it has one (a cron in a zone), else the DAG's."""
        dag = context.get("dag")
        timetable = getattr(dag, "timetable", None)
        return getattr(timetable, "_timezone", None) or getattr(dag, "timezone", None)

    def _dates(self, context: Context) -> tuple[Any, Any]:
        from airflow_provider_msads.reporting.periods import default_dates

        if self.predefined_time or (self.date_from is not None and self.date_to is not None):
            return self.date_from, self.date_to
        dag_run = context.get("dag_run")
        first, last = default_dates(
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            run_time=context.get("logical_date") or getattr(dag_run, "run_after", None),
            zone=self._zone(context),
            aggregation=self.aggregation,
        )
        date_to = self.date_to if self.date_to is not None else last
        if self.date_from is not None:
            return self.date_from, date_to
        try:
            lookback = int(self.lookback_days or 0)
            if lookback < 0:
                raise ValueError(lookback)
        except (TypeError, ValueError) as exc:
            raise AirflowFailException(
                f"`lookback_days` is {str(self.lookback_days)[:20]!r}; give a whole number of days, 0 or more."
            ) from exc
        if lookback and date_to is not None:
            from airflow_provider_msads.reporting.request import as_date

            return as_date(date_to, "date_to") - datetime.timedelta(days=lookback), date_to
        return first, date_to

    def build_request(
        self, context: Context, hook: MicrosoftAdsHook, account_ids: Sequence[str] | None = None
    ) -> dict[str, Any]:
        from airflow_provider_msads.reporting import build_report_request, check_report_request
        from airflow_provider_msads.reporting.periods import report_time_zone

        date_from, date_to = self._dates(context)
        request = build_report_request(
            report_type=self.report_type,
            columns=self.columns,
            account_ids=self.account_ids if account_ids is None else account_ids,
            campaign_ids=self.campaign_ids,
            default_account_id=hook.credentials.account_id,
            aggregation=self.aggregation,
            date_from=date_from,
            date_to=date_to,
            predefined_time=self.predefined_time,
            time_zone=self.time_zone or report_time_zone(self._zone(context)),
            return_only_complete_data=self.return_only_complete_data,
            report_name=self.task_id,
            report_request=self.report_request,
        )
        for warning in check_report_request(request):
            self.log.warning("%s", warning)
        return request

    # -- resume state -----------------------------------------------------------------------

    @staticmethod
    def _state_key(context: Context, batch: int | None = None) -> str:
        """The Variable of this task instance's request; with ``batch`` (``account_ids="all"`` beyond
        1,000 accounts), of that batch's request (batch numbers start at 1)."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        ident = f"{ti.dag_id}\n{ti.run_id}\n{ti.task_id}\n{map_index}"
        if batch is not None:
            ident += f"\nbatch {int(batch)}"
        return STATE_VARIABLE_PREFIX + hashlib.sha256(ident.encode()).hexdigest()[:32]

    def _seal(self, context: Context, hook: MicrosoftAdsHook, batch: int | None = None) -> Any:
        from airflow_provider_msads.reporting.resume import ResumeSeal

        creds = hook.credentials
        return ResumeSeal(creds.client_secret, self.msads_conn_id, creds.client_id, self._state_key(context, batch))

    @staticmethod
    def _try_number(context: Context) -> int:
        return int(getattr(context["ti"], "try_number", 1) or 1)

    def _saved_request_id(
        self, context: Context, hook: MicrosoftAdsHook, fingerprint: str, batch: int | None = None
    ) -> str | None:
        if self._try_number(context) <= 1:
            return None
        try:
            saved = _variables().get(self._state_key(context, batch), None)
        except Exception:  # a state we cannot read: submit again, as peers always do
            self.log.warning("Could not read the saved report request; submitting a new one.", exc_info=True)
            return None
        # Only the previous try's seal opens, and this try seals it again as its own: an older seal
        # written back (a replay) is refused, see reporting.resume.
        state, why = self._seal(context, hook, batch).open(saved, fingerprint, try_number=self._try_number(context))
        if state is None:
            if saved:
                self.log.warning("Not resuming the saved report request (%s); submitting a new one.", why)
            return None
        self._save_request_id(
            context, hook, state.request_id, fingerprint, submitted_at=state.submitted_at, batch=batch
        )
        return str(state.request_id)

    def _save_request_id(
        self,
        context: Context,
        hook: MicrosoftAdsHook,
        request_id: str,
        fingerprint: str,
        submitted_at: float | None = None,
        batch: int | None = None,
    ) -> None:
        try:
            _variables().set(
                self._state_key(context, batch),
                self._seal(context, hook, batch).seal(
                    request_id, fingerprint, now=submitted_at, try_number=self._try_number(context)
                ),
                description="airflow-provider-msads: the report request a retry of this task resumes, sealed "
                "(deleted when the report is written).",
            )
        except Exception:  # resuming is an optimisation: without it a retry submits again
            self.log.warning("Could not save report request %s for retries to resume.", request_id, exc_info=True)

    def _forget_request_id(self, context: Context, batch: int | None = None) -> None:
        try:
            _variables().delete(self._state_key(context, batch))
        except Exception:
            self.log.debug("Could not delete the saved report request.", exc_info=True)

    # -- running ----------------------------------------------------------------------------

    def _hook(self) -> MicrosoftAdsHook:
        return task_hook(self.msads_conn_id)

    def _raise(self, err: Exception) -> NoReturn:
        raise_for_task(err)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_msads.errors import MicrosoftAdsError
        from airflow_provider_msads.reporting.resume import fingerprint as resume_fingerprint

        hook = self._hook()
        try:
            self._check_output_format()
            from airflow_provider_msads.reporting.destinations import check_destination

            check_destination(self.destination, self.compression)  # before Submit: a typo costs no report
            batches = self._all_account_batches(hook) if self._wants_all_accounts() else None
            # No account at all: a request only for its columns and dates, never sent.
            request = self.build_request(
                context, hook, (batches[0] if batches else ["0"]) if batches is not None else None
            )
            if batches is not None and len(batches) != 1:
                return self._execute_batches(context, hook, request, batches)
            fingerprint = resume_fingerprint(request, self.msads_conn_id)
            request_id = self._saved_request_id(context, hook, fingerprint)
            if request_id is not None:
                self.log.info("Resuming report request %s submitted by an earlier try.", request_id)
            else:
                request_id = hook.submit_report(request)
                self._save_request_id(context, hook, request_id, fingerprint)
                self.log.info("Submitted report request %s (%s).", request_id, self.report_type)
        except MicrosoftAdsError as err:
            self._raise(err)
        context["ti"].xcom_push(key=REQUEST_ID_XCOM_KEY, value=request_id)
        started = time.time()
        if self.deferrable:
            from airflow_provider_msads.triggers.reporting import MicrosoftAdsReportTrigger

            self.defer(
                trigger=MicrosoftAdsReportTrigger(
                    request_id=request_id,
                    msads_conn_id=self.msads_conn_id,
                    poll_interval=self.poll_interval,
                    timeout=self.timeout,
                    started_at=started,
                ),
                method_name="execute_complete",
                kwargs={"columns": request["Columns"], "period": request_dates(request)},
            )
        status = self._wait(hook, request_id, started, context)
        return self._finish(context, hook, status, request["Columns"], request_dates(request))

    def _wait(self, hook: MicrosoftAdsHook, request_id: str, started: float, context: Context) -> ReportStatus:
        from airflow_provider_msads.errors import MicrosoftAdsError
        from airflow_provider_msads.reporting.service import poll_delay

        polls = 0
        while True:
            polls += 1
            try:
                status = hook.poll_report(request_id)
            except MicrosoftAdsError as err:
                if not err.retryable:
                    self._forget_request_id(context)  # a dead id (2100/2101) must not block every retry
                    self._raise(err)
                self.log.warning("Report %s: poll %d failed transiently (%s).", request_id, polls, err.code)
            else:
                if status.done:
                    return status
                self.log.info("Report %s: %s after %d polls.", request_id, status.status, polls)
            delay = poll_delay(polls, self.poll_interval)
            waited = time.time() - started
            if waited + delay > self.timeout:
                raise AirflowException(self._timeout_message(request_id, waited, polls))
            time.sleep(delay)

    def _timeout_message(self, request_id: str, waited: float, polls: int) -> str:
        return (
            f"Report request {request_id} was still not ready after waiting {waited:.0f} s ({polls} polls; "
            f"timeout={self.timeout:.0f} s). A retry of this task resumes polling the same request while Microsoft "
            "keeps it (one day); raise `timeout` or add retries for slow periods."
        )

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        columns: list[str] | None = None,
        period: dict[str, Any] | None = None,
    ) -> Any:
        """Back from the triggerer: fail as the event says, or poll once for a fresh link and download."""
        from airflow_provider_msads.errors import MicrosoftAdsError

        request_id = str(event.get("request_id"))
        kind = event.get("status")
        if kind == "timeout":
            raise AirflowException(
                self._timeout_message(request_id, float(event.get("waited", 0)), int(event.get("polls", 0)))
            )
        if kind == "failed":
            error = event.get("error") or {}
            message = str(event.get("message") or "Polling failed.")
            if error.get("retryable"):
                raise AirflowException(message)
            self._forget_request_id(context)  # a dead id (2100/2101) must not block every retry
            raise AirflowFailException(message)
        hook = self._hook()
        try:
            status = hook.poll_report(request_id)  # a fresh link: the trigger's would be stale
        except MicrosoftAdsError as err:
            if not err.retryable:
                self._forget_request_id(context)
            self._raise(err)
        return self._finish(context, hook, status, list(columns or self.columns), period or self._period(context, hook))

    def _finish(
        self,
        context: Context,
        hook: MicrosoftAdsHook,
        status: ReportStatus,
        columns: list[str],
        period: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from airflow_provider_msads import reporting as rp
        from airflow_provider_msads.errors import MicrosoftAdsError
        from airflow_provider_msads.reporting.destinations import publish_to_object_storage

        if status.status == "Error":
            self._forget_request_id(context)  # a retry must submit again: this id will never succeed
            raise AirflowException(str(rp.report_failed_error(status)))
        if status.status != "Success":
            raise AirflowException(f"Report request {status.request_id} is {status.status}, expected Success.")
        if self.output_format != "csv":
            try:
                written = self._write_files(hook, [status], columns)
            except MicrosoftAdsError as err:
                self._raise(err)
            return self._done(context, {**written, "report_request_id": status.request_id, "columns": columns}, period)
        result: DownloadResult
        try:
            if status.download_url is None:
                self.log.info("Report %s has no rows: writing the column row only.", status.request_id)
                result = rp.write_empty_report(
                    columns, self.destination, compression=self.compression, publish=publish_to_object_storage
                )
            else:
                result = hook.download_report(
                    status.download_url, self.destination, compression=self.compression, request_id=status.request_id
                )
        except MicrosoftAdsError as err:
            self._raise(err)
        return self._done(
            context,
            {
                "path": result.path,
                "rows": result.rows,
                "bytes": result.bytes,
                "csv_bytes": result.csv_bytes,
                "compression": result.compression,
                "format": "csv",
                "report_request_id": status.request_id,
                "columns": columns,
                "complete": result.complete,
            },
            period,
        )

    def _period(self, context: Context, hook: MicrosoftAdsHook) -> dict[str, Any] | None:
        """The request's dates again, when the deferral's kwargs are lost (``dag.test()`` drops them)."""
        try:
            return request_dates(self.build_request(context, hook, ["0"]))
        except Exception:  # the event then lacks the dates; the file is what matters
            self.log.debug("Could not rebuild the report's period.", exc_info=True)
            return None

    def _complete_by_clock(self, period: dict[str, Any]) -> bool:
        from airflow_provider_msads.reporting.periods import OPEN_PERIODS, books_closed

        if self.return_only_complete_data:
            return True
        if period.get("date_to"):
            return books_closed(datetime.date.fromisoformat(str(period["date_to"])))
        predefined = period.get("predefined_time")
        if predefined and predefined not in OPEN_PERIODS:
            # The period ended yesterday in the report's zone at the latest.
            yesterday = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
            return books_closed(yesterday)
        return False

    def _done(self, context: Context, result: dict[str, Any], period: dict[str, Any] | None) -> dict[str, Any]:
        """The file is complete: forget the resume state, record the Asset event, return the XCom.

        ``complete`` is the report header's word when there was one; without (an empty report, a
        file without header) it is True with ``return_only_complete_data`` (Microsoft answered 2004
        until it was) and otherwise whether the last day's books have closed everywhere by now.
        """
        self._forget_request_id(context)
        period = dict(period or {})
        complete = result.get("complete")
        if complete is None:
            complete = self._complete_by_clock(period)
        result = {**result, "complete": bool(complete)}
        if period.get("asked_date_from"):
            self.log.warning(
                "%s aggregation covers whole periods: the file covers %s..%s, not the %s..%s asked "
                "(Microsoft widens a custom range; ReportAggregation).",
                self.aggregation,
                period["date_from"],
                period["date_to"],
                period["asked_date_from"],
                period["asked_date_to"],
            )
        for key in ("date_from", "date_to"):
            if key in period:
                result.setdefault(key, period[key])
        if not result["complete"]:
            self.log.warning(
                "Microsoft says the data of %s may not be complete yet (books close about 3 hours after the day "
                "ends in every campaign's time zone); `complete` is False. Schedule later or re-pull with "
                "lookback_days.",
                period.get("date_to") or period.get("predefined_time") or "the report's period",
            )
        self.log.info("Wrote %d rows (%d bytes) to %s.", result["rows"], result["bytes"], result["path"])
        self._record_asset_event(context, result, period)
        return result

    def _execute_batches(
        self, context: Context, hook: MicrosoftAdsHook, first: dict[str, Any], batches: list[list[str]]
    ) -> dict[str, Any]:
        """``account_ids="all"`` beyond 1,000 accounts (or none): one request per batch, one file."""
        from airflow_provider_msads.errors import MicrosoftAdsError

        requests = [{**first, "Scope": {**first["Scope"], "AccountIds": batch}} for batch in batches]
        statuses, ids = self._run_resumable_batches(hook, requests, context)
        try:
            written = self._write_files(hook, statuses, first["Columns"])
        except MicrosoftAdsError as err:
            self._raise(err)
        result = {**written, "report_request_id": ids[0] if ids else None, "report_request_ids": ids}
        for number in range(1, len(requests) + 1):
            self._forget_request_id(context, number)  # the file is written: nothing left to resume
        return self._done(context, {**result, "columns": first["Columns"]}, request_dates(first))

    def _run_resumable_batches(
        self, hook: MicrosoftAdsHook, requests: list[dict[str, Any]], context: Context
    ) -> tuple[list[ReportStatus], list[str]]:
        """Each batch in turn: resume the request the previous try saved for it, or submit and save
        it (sealed, bound to the try, as a single request is), then wait for it. A retry after a
        failure in batch *n* therefore polls batches 1..n again instead of submitting them."""
        from airflow_provider_msads import reporting as rp
        from airflow_provider_msads.errors import MicrosoftAdsError
        from airflow_provider_msads.reporting.resume import fingerprint as resume_fingerprint

        statuses = []
        for number, request in enumerate(requests, 1):
            fingerprint = resume_fingerprint(request, self.msads_conn_id)
            request_id = self._saved_request_id(context, hook, fingerprint, number)
            if request_id is not None:
                self.log.info("Batch %d of %d: resuming report request %s.", number, len(requests), request_id)
            else:
                try:
                    request_id = hook.submit_report(request)
                except MicrosoftAdsError as err:
                    self._raise(err)
                self._save_request_id(context, hook, request_id, fingerprint, batch=number)
                self.log.info(
                    "Batch %d of %d (%d accounts): report request %s.",
                    number,
                    len(requests),
                    len(request["Scope"]["AccountIds"]),
                    request_id,
                )
            try:
                status = self._wait(hook, request_id, time.time(), context)
            except AirflowFailException:
                self._forget_request_id(context, number)  # a dead id (2100/2101) must not block every retry
                raise
            if status.status != "Success":
                self._forget_request_id(context, number)  # this id will never succeed: a retry submits again
                raise AirflowException(str(rp.report_failed_error(status)))
            statuses.append(status)
        return statuses, [s.request_id for s in statuses]
