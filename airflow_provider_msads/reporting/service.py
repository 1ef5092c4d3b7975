"""Submit and Poll: flows on :mod:`_flow` (one generator, a sync and an async driver), and what a
refusal means in terms of the operator's arguments.

Microsoft's faults are explained from the catalogue (every code of section 2000 of Microsoft's
"Operation error codes" page), the misleading ``NullRequest`` (code 100) decoded as "column 5 is
not a column of this report"; throttling (117, 207) is retried with backoff, 2004 ("complete data
not yet") is left to the task's retries, since it lasts hours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from airflow_provider_msads.errors import (
    MicrosoftAdsError,
    ReportingError,
    ReportNotReadyError,
    fault_code,
    fault_items,
)
from airflow_provider_msads.errors.catalogue import DEAD_REPORT_ID_CODES, REPORTING_CATALOGUE
from airflow_provider_msads.reporting.periods import DEFAULT_TIME_ZONE, MAX_ACCOUNTS
from airflow_provider_msads.tokens.flow import (
    Flow,
    RetryPolicy,
    read_json,
    retrying,
)
from airflow_provider_msads.tokens.rest import Refusal, RestService

SUBMIT_PATH = "GenerateReport/Submit"
POLL_PATH = "GenerateReport/Poll"

_COLUMN_PATH = re.compile(r"\$\.Columns\[(\d+)\]")
_FIELD_PATH = re.compile(r"Path:\s*\$\.([A-Za-z.]+)")


#: How long to wait before asking again after 2004 (complete data comes about 3 hours after a day
#: ends in each campaign's time zone): longer than any in-flow retry may wait, so the task's own
#: retries take it.
COMPLETE_DATA_RETRY_AFTER = 3600.0


def _accounts(request: Mapping[str, Any]) -> str:
    scope = request.get("Scope") or {}
    ids = [str(a) for a in scope.get("AccountIds") or []]
    ids += [str(c.get("AccountId")) for c in scope.get("Campaigns") or [] if isinstance(c, Mapping)]
    return ", ".join(dict.fromkeys(ids)) or "none named"


def _explain(code: int, details: str, request: Mapping[str, Any]) -> str:
    """What Microsoft's code means for this request, in the operator's terms (beyond the catalogue)."""
    if code == 2004:
        time = request.get("Time") or {}
        return (
            " Microsoft closes a day's books about 3 hours after it ends in each campaign's time zone; the "
            f"report's time zone is {time.get('ReportTimeZone', DEFAULT_TIME_ZONE)}. Expect the data a few hours "
            "from now: a retry of the task submits again."
        )
    if code == 2029:
        count = len((request.get("Scope") or {}).get("AccountIds") or [])
        return f" The scope has {count} accounts; Microsoft allows {MAX_ACCOUNTS}."
    if code in (2003, 2035, 106):
        return f" Accounts in the scope: {_accounts(request)}."
    if details and code in (2016, 2013, 2032, 2044, 2046, 2047, 2048, 2049, 2050, 2051):
        return f" Microsoft's details: {details}."
    return ""


def reporting_error(
    response: httpx.Response,
    *,
    operation: str,
    report_request: Mapping[str, Any] | None = None,
) -> MicrosoftAdsError:
    """The error for a refused Submit or Poll, explained in terms of the operator's arguments.

    Every code of Microsoft's "Operation error codes" page, section 2000, has a catalogue entry
    (name, meaning, argument, fix, retryability); 100 gets its column or path decoded, since
    Microsoft uses it for a misspelt enum value rather than a missing request.
    """
    refusal = Refusal.read(response, operation)
    retry_after = refusal.retry_after
    items = fault_items(refusal.body)
    common = refusal.common
    request = report_request or {}
    report_type = str(request.get("Type") or "this report type")
    for item, code in zip(items, map(fault_code, items), strict=True):
        details = " ".join(str(item.get(k) or "") for k in ("Details", "Detail")).strip()
        if code == 100:
            text = " ".join([details, str(item.get("Message") or "")])
            column = _COLUMN_PATH.search(text)
            columns = list(request.get("Columns") or [])
            if column is not None:
                index = int(column.group(1))
                name = columns[index] if index < len(columns) else "?"
                return ReportingError(
                    f"{operation} failed: column {index + 1} ({name!r}) is not a column of {report_type}. "
                    "(Microsoft reports this as error 100 NullRequest.)",
                    field="columns",
                    remedy=f"Fix or remove {name!r} in `columns`; the allowed names are listed on Microsoft's "
                    f"page for the {report_type.removesuffix('Request')}Column value set.",
                    **common,
                )
            path = _FIELD_PATH.search(text)
            where = f" at {path.group(1)}" if path else ""
            return ReportingError(
                f"{operation} failed: Microsoft could not read the request{where} (error 100 NullRequest, which "
                "usually means a misspelt value or enum name rather than a missing request).",
                field=path.group(1) if path else "report_request",
                remedy="Check the spelling of report_type, aggregation, predefined_time, time_zone and any "
                "value in report_request.",
                **common,
            )
        entry = REPORTING_CATALOGUE.get(code) if code is not None else None
        if entry is not None:
            cls = ReportNotReadyError if code == 2004 else ReportingError
            return cls(
                f"{operation} failed: error {code} {entry.name}: {entry.meaning.removeprefix('Reporting: ')}"
                + _explain(entry.code or 0, details, request),
                retry_after=COMPLETE_DATA_RETRY_AFTER if code == 2004 else retry_after,
                **entry.advice(),
                **common,
            )
        if code == 106:
            return ReportingError(
                f"{operation} failed: error 106 UserIsNotAuthorized: the authorizing user may not report on this "
                f"customer or account.{_explain(code, details, request)}",
                field="account_ids",
                remedy=REPORTING_CATALOGUE[2003].remedy,
                **common,
            )
    return refusal.fallback()


def is_dead_report_id(err: BaseException) -> bool:
    """Poll refused the id for good (2100/2101): a saved id must be forgotten, not polled again."""
    return isinstance(err, MicrosoftAdsError) and any(c in DEAD_REPORT_ID_CODES for c in err.codes)


@dataclass(frozen=True)
class ReportStatus:
    """One Poll answer. ``download_url`` is None for a report with no rows (or while pending)."""

    request_id: str
    status: str
    download_url: str | None = None
    tracking_id: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("Success", "Error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "download_url": self.download_url,
            "tracking_id": self.tracking_id,
        }


#: The first wait between polls. Microsoft's SDKs poll a few times quickly, then back off; small
#: reports are ready in seconds and large ones take tens of minutes, so the wait doubles from here
#: up to the caller's ``poll_interval``.
FIRST_POLL_DELAY = 5.0


def poll_delay(polls_done: int, poll_interval: float) -> float:
    """The wait after ``polls_done`` polls: 5 s, 10 s, 20 s, … capped at ``poll_interval``."""
    return float(min(poll_interval, FIRST_POLL_DELAY * 2 ** min(max(polls_done - 1, 0), 16)))


#: Submit/Poll retries: throttling (117 asks for about a minute) and 207 (too many reports in
#: flight) need more patience than a credentials check.
REPORTING_RETRY = RetryPolicy(attempts=6, backoff_base=2.0, backoff_max=60.0, total_budget=300.0)


class Reporting(RestService):
    """Submit and Poll over one authenticated httpx client (sync or async)."""

    setting = "reporting_url"

    def default_retry(self) -> RetryPolicy:
        return REPORTING_RETRY

    def submit_flow(self, report_request: Mapping[str, Any]) -> Flow[str]:
        request = dict(report_request)

        def parse(response: httpx.Response) -> str:
            if response.status_code >= 400:
                raise reporting_error(response, operation="SubmitGenerateReport", report_request=request)
            return self.answered_id(response, "SubmitGenerateReport", "ReportRequestId")

        return retrying(
            self._post(SUBMIT_PATH, {"ReportRequest": request}), parse, what="SubmitGenerateReport", policy=self.retry
        )

    def poll_flow(self, request_id: str) -> Flow[ReportStatus]:
        def parse(response: httpx.Response) -> ReportStatus:
            if response.status_code >= 400:
                raise reporting_error(response, operation="PollGenerateReport")
            body = read_json(response, "PollGenerateReport")
            status = body.get("ReportRequestStatus")
            if not isinstance(status, Mapping) or status.get("Status") not in ("Pending", "Success", "Error"):
                raise self.unreadable(response, "PollGenerateReport answered without a ReportRequestStatus.")
            url = status.get("ReportDownloadUrl") or None
            return ReportStatus(
                request_id=str(request_id),
                status=str(status["Status"]),
                download_url=str(url) if url and status["Status"] == "Success" else None,
                tracking_id=response.headers.get("TrackingId"),
            )

        return self.ask_after(POLL_PATH, "ReportRequestId", request_id, parse, what="PollGenerateReport")

    def poll(self, client: httpx.Client, request_id: str) -> ReportStatus:
        return self.run(self.poll_flow(request_id), client)

    async def apoll(self, client: httpx.AsyncClient, request_id: str) -> ReportStatus:
        return await self.arun(self.poll_flow(request_id), client)


def report_failed_error(status: ReportStatus) -> ReportingError:
    """Poll said Error: Microsoft gives no reason, so say what usually causes it."""
    return ReportingError(
        f"Microsoft could not build report {status.request_id} (Poll status Error).",
        remedy="Microsoft gives no reason; usually a filter or column combination it cannot serve. Check "
        "report_request and columns, then run the task again (it submits a new request).",
        tracking_id=status.tracking_id,
    )
