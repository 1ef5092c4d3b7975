"""What MicrosoftAdsReportOperator does around the report itself: every account, the file's format,
the Asset event, lineage. Kept apart from the request/wait/resume logic of the operator module.

* ``account_ids="all"``: the accounts :meth:`MicrosoftAdsHook.list_accounts` returns, in batches of
  1,000 (Microsoft's limit per request); several batches are several requests written as **one**
  file (column row once, batches in order). A single batch takes the usual path (resume, deferral);
  several are submitted, waited for and downloaded one after the other in the worker.
* ``output_format="parquet"``: the CSV is downloaded to a local temporary file as usual, then
  written as typed Parquet (:mod:`airflow_provider_msads.reporting.parquet`) under the destination.
* The Asset: declared in ``outlets`` when the operator is built (see :mod:`airflow_provider_msads.compat.assets`
  for its URI); its event's ``extra`` describes the file once it is complete.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.reporting import ReportStatus

ALL_ACCOUNTS = "all"
OUTPUT_FORMATS = ("csv", "parquet")
#: OpenLineage namespace of the input: Microsoft Advertising's Reporting service (its host; the
#: dataset name is ``<customer id>/<report type>``). Sandbox customers live on the sandbox's host.
LINEAGE_NAMESPACE = "msads://reporting.api.bingads.microsoft.com"
LINEAGE_NAMESPACES = {
    "production": LINEAGE_NAMESPACE,
    "sandbox": "msads://reporting.api.sandbox.bingads.microsoft.com",
}


def _date_text(value: Any) -> str | None:
    if isinstance(value, dict) and {"Year", "Month", "Day"} <= value.keys():
        return f"{int(value['Year']):04d}-{int(value['Month']):02d}-{int(value['Day']):02d}"
    return None


def request_dates(request: dict[str, Any]) -> dict[str, Any]:
    """The request's period as the event and lineage say it: the days the file covers (Weekly,
    Monthly and Yearly widened to whole periods, as Microsoft does), or Microsoft's predefined name.
    ``asked_date_from``/``asked_date_to`` are the request's own dates when they differ."""
    from airflow_provider_msads.reporting.periods import covered_dates

    when = request.get("Time") or {}
    asked_from, asked_to = _date_text(when.get("CustomDateRangeStart")), _date_text(when.get("CustomDateRangeEnd"))
    period: dict[str, Any] = {
        "date_from": asked_from,
        "date_to": asked_to,
        "predefined_time": when.get("PredefinedTime"),
        "time_zone": when.get("ReportTimeZone"),
    }
    if asked_from and asked_to:
        first, last = covered_dates(
            str(request.get("Aggregation")),
            datetime.date.fromisoformat(asked_from),
            datetime.date.fromisoformat(asked_to),
            [str(c) for c in request.get("Columns") or []],
        )
        if (first.isoformat(), last.isoformat()) != (asked_from, asked_to):
            period.update(
                date_from=first.isoformat(),
                date_to=last.isoformat(),
                asked_date_from=asked_from,
                asked_date_to=asked_to,
            )
    return period


def merge_complete(flags: list[bool | None]) -> bool | None:
    """Several files' completeness as one: False if any says so, None if any (or all) had no header."""
    if not flags:
        return None
    if any(flag is False for flag in flags):
        return False
    if any(flag is None for flag in flags):
        return None
    return True


class ReportOutputsMixin:
    """The operator's account batches, output formats, Asset event and lineage (see the module doc)."""

    # Set by the operator's __init__.
    account_ids: Any
    output_format: str
    asset: Any
    destination: str
    compression: str | None
    columns: list[str]
    aggregation: str
    report_type: str
    msads_conn_id: str
    poll_interval: float
    timeout: float
    outlets: Any
    log: Any

    # -- building (called from __init__: stores only, no I/O) -------------------------------

    def _declare_asset(self) -> None:
        """Add the report's Asset to ``outlets`` so Airflow links the consumer DAGs at parse time."""
        from airflow_provider_msads.compat.assets import report_asset

        self.report_asset_uri: str | None = None
        if not isinstance(self.destination, str) and self.asset in (None, False):
            return  # a mapped destination (.expand): no stable URI without asset=
        outlet = report_asset(self.asset, self.destination if isinstance(self.destination, str) else "")
        if outlet is None:
            return
        self.report_asset_uri = str(outlet.uri)
        if not any(getattr(o, "uri", None) == outlet.uri for o in self.outlets or ()):
            self.outlets = [*(self.outlets or []), outlet]

    # -- accounts ---------------------------------------------------------------------------

    def _wants_all_accounts(self) -> bool:
        return isinstance(self.account_ids, str) and self.account_ids.strip().lower() == ALL_ACCOUNTS

    def _all_account_batches(self, hook: MicrosoftAdsHook) -> list[list[str]]:
        from airflow_provider_msads.reporting.batches import account_batches

        accounts = hook.list_accounts()
        self.log.info(
            "account_ids='all': %d accounts under customer %s (%s).",
            len(accounts),
            hook.credentials.customer_id,
            ", ".join(sorted({a.status for a in accounts})) or "none",
        )
        return account_batches([a.id for a in accounts])

    # -- output -----------------------------------------------------------------------------

    def _check_output_format(self) -> None:
        from airflow_provider_msads.errors import ReportRequestError
        from airflow_provider_msads.reporting.parquet import require_pyarrow

        if self.output_format not in OUTPUT_FORMATS:
            raise ReportRequestError(
                f"`output_format` is {str(self.output_format)[:20]!r}.",
                field="output_format",
                remedy='Use "csv" (Microsoft\'s file, the default) or "parquet" (typed; extra [parquet]).',
            )
        if self.output_format == "parquet":
            if self.compression:
                raise ReportRequestError(
                    f'`compression` is {self.compression!r} with output_format="parquet".',
                    field="compression",
                    remedy="Leave compression unset: Parquet compresses its column chunks itself (zstd).",
                )
            require_pyarrow()

    def _write_files(self, hook: MicrosoftAdsHook, statuses: list[ReportStatus], columns: list[str]) -> dict[str, Any]:
        """Download every status's CSV to a scratch folder, then publish them as one CSV or Parquet file."""
        from airflow_provider_msads import reporting as rp
        from airflow_provider_msads.reporting.batches import join_csv_parts
        from airflow_provider_msads.reporting.destinations import publish_to_object_storage
        from airflow_provider_msads.reporting.parquet import write_parquet

        scratch = tempfile.mkdtemp(prefix="msads-report-parts-")
        try:
            parts: list[tuple[str, int]] = []
            flags: list[bool | None] = []
            for index, status in enumerate(statuses):
                local = os.path.join(scratch, f"part-{index:04d}.csv")
                if status.download_url is None:
                    self.log.info("Report %s has no rows.", status.request_id)
                    continue
                part = hook.download_report(status.download_url, local, request_id=status.request_id)
                parts.append((local, part.rows))
                flags.append(part.complete)
            if self.output_format == "parquet":
                handles = [open(path, "rb") for path, _ in parts]  # noqa: SIM115 - closed below
                try:
                    written = write_parquet(
                        handles,
                        self.destination,
                        columns=columns,
                        aggregation=self.aggregation,
                        publish=publish_to_object_storage,
                    )
                finally:
                    for handle in handles:
                        handle.close()
                return {
                    "path": written.path,
                    "rows": written.rows,
                    "bytes": written.bytes,
                    "format": "parquet",
                    "compression": None,
                    "schema": written.schema,
                    "row_groups": written.row_groups,
                    "complete": merge_complete(flags),
                }
            joined: rp.DownloadResult = join_csv_parts(
                parts,
                self.destination,
                columns=columns,
                compression=self.compression,
                publish=publish_to_object_storage,
            )
            return {
                "path": joined.path,
                "rows": joined.rows,
                "bytes": joined.bytes,
                "csv_bytes": joined.csv_bytes,
                "format": "csv",
                "compression": joined.compression,
                "complete": merge_complete(flags),
            }
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # -- the Asset event and lineage --------------------------------------------------------

    def _record_asset_event(self, context: Any, result: dict[str, Any], period: dict[str, Any] | None) -> None:
        """The event's ``extra``: what landed where, for which period; also kept for lineage."""
        from airflow_provider_msads.compat.assets import record_event

        self._written = result
        uri = getattr(self, "report_asset_uri", None)
        outlet = next((o for o in self.outlets or () if uri and getattr(o, "uri", None) == uri), None)
        if outlet is None:
            return
        extra = {
            "path": result["path"],
            "rows": result["rows"],
            "bytes": result["bytes"],
            "report_request_id": result.get("report_request_id"),
            "format": result.get("format", "csv"),
            "compression": result.get("compression"),
            "report_type": self.report_type,
            **(period or {}),
            "complete": result.get("complete"),
        }
        if result.get("report_request_ids"):
            extra["report_request_ids"] = result["report_request_ids"]
        if record_event(context, outlet, extra):
            self.log.info("Asset event for %s: %d rows at %s.", uri, result["rows"], result["path"])

    # OpenLineage (``apache-airflow-providers-openlineage``, optional): its listener calls these in
    # the task process. Everything is imported inside them, so DAG parsing and a deployment without
    # the provider import nothing of OpenLineage.

    def get_openlineage_facets_on_start(self) -> Any:
        """The START event's datasets: the report and the file the task is about to write (the
        same names COMPLETE gives, so a lineage backend links the run while it is running)."""
        return self._openlineage(written=None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The COMPLETE event's datasets: the report and the file as written (``.gz`` included).
        The provider calls this for FAIL too (no ``..._on_failure``): then nothing was written and
        the output is the file START named."""
        return self._openlineage(written=getattr(self, "_written", None))

    def _openlineage(self, written: dict[str, Any] | None) -> Any:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_provider_msads.compat.assets import openlineage_namespace

        customer, environment = self._lineage_customer()
        source = Dataset(
            namespace=LINEAGE_NAMESPACES.get(environment, LINEAGE_NAMESPACE),
            name=f"{customer or 'unknown-customer'}/{self.report_type}",
        )
        path = (written or {}).get("path") or self._planned_path()
        outputs = []
        if path:
            namespace, name = openlineage_namespace(str(path))
            outputs.append(Dataset(namespace=namespace, name=name))
        return OperatorLineage(inputs=[source], outputs=outputs)

    def _lineage_customer(self) -> tuple[str | None, str]:
        """(customer id, environment) of the connection; read once. Lineage never fails a task."""
        cached: tuple[str | None, str] | None = getattr(self, "_lineage_identity", None)
        if cached is not None:
            return cached
        try:
            from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

            credentials = MicrosoftAdsHook(msads_conn_id=self.msads_conn_id).credentials
            cached = (credentials.customer_id, credentials.environment)
        except Exception:
            self.log.debug("No customer id for lineage.", exc_info=True)
            return None, "production"
        self._lineage_identity = cached
        return cached

    def _planned_path(self) -> str | None:
        """Where the file will land: the rendered destination, with ``.gz`` as the CSV writer adds it."""
        if not isinstance(self.destination, str) or not self.destination:
            return None  # not rendered (a mapped destination before expansion)
        if self.output_format != "csv":
            return self.destination
        from airflow_provider_msads.reporting.destinations import final_name

        return final_name(self.destination, self.compression)

    # Provided by the operator.
    def _raise(self, err: Exception) -> Any:  # pragma: no cover - overridden
        raise err

    def _wait(self, hook: MicrosoftAdsHook, request_id: str, started: float, context: Any) -> Any:  # pragma: no cover
        raise NotImplementedError
