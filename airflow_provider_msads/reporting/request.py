"""The ReportRequest for Submit, built from the operator's arguments and checked before sending.

Building fixes what peers learnt the hard way: ids as JSON strings (Microsoft's models reject
integers), CSV 2.0 without report header and footer (the file is then the column row and the rows,
nothing to strip), GMT unless told otherwise (Microsoft's default is Pacific time, which shifts
every daily row by eight hours against the warehouse). The checks (inverted range, retention,
1,000 accounts) turn what Microsoft would answer half an hour later with a vague code into an
error naming the argument.
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_msads.errors import ReportRequestError

#: Microsoft's ReportTimeZone name for GMT (London); ``time_zone`` takes any of Microsoft's names.
DEFAULT_TIME_ZONE = "GreenwichMeanTimeDublinEdinburghLisbonLondon"
AGGREGATIONS = (
    "Summary",
    "Hourly",
    "Daily",
    "Weekly",
    "Monthly",
    "Yearly",
    "HourOfDay",
    "DayOfWeek",
    "WeeklyStartingMonday",
)
#: Aggregations served from hourly data, which Microsoft keeps for 6 months (the rest: 36).
HOURLY_AGGREGATIONS = frozenset({"Hourly", "HourOfDay"})
HOURLY_RETENTION_MONTHS = 6
DAILY_RETENTION_MONTHS = 36
MAX_ACCOUNTS = 1000
#: How long Microsoft keeps a ReportRequestId pollable.
REQUEST_ID_LIFETIME = datetime.timedelta(days=2)


def _as_date(value: object, argument: str) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ReportRequestError(
        f"`{argument}` is {str(value)[:40]!r}, not a date.",
        field=argument,
        remedy=f'Give `{argument}` as "YYYY-MM-DD" or a date, e.g. "{{{{ ds }}}}".',
    )


def _date_dict(day: datetime.date) -> dict[str, int]:
    return {"Year": day.year, "Month": day.month, "Day": day.day}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base``; nested objects (Scope, Time) are merged one level down."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _id_strings(value: object) -> object:
    """Ids as JSON strings, wherever a key ends in ``Id`` (AccountId, CampaignId, …)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key.endswith("Id") and isinstance(item, int) and not isinstance(item, bool):
                out[key] = str(item)
            elif key.endswith("Ids") and isinstance(item, list):
                out[key] = [str(i) for i in item]
            else:
                out[key] = _id_strings(item)
        return out
    if isinstance(value, list):
        return [_id_strings(v) for v in value]
    return value


def build_report_request(
    *,
    report_type: str,
    columns: Sequence[str],
    account_ids: Iterable[str | int],
    aggregation: str = "Daily",
    date_from: object = None,
    date_to: object = None,
    predefined_time: str | None = None,
    time_zone: str | None = None,
    return_only_complete_data: bool = False,
    report_name: str | None = None,
    report_request: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``ReportRequest`` object for Submit, from the operator's arguments.

    ``report_request`` is merged last, so it can set anything (filters, campaign scopes), but the
    file format stays Microsoft's CSV 2.0 without header and footer unless it is overridden too.
    """
    if not isinstance(report_type, str) or not report_type.strip():
        raise ReportRequestError(
            "`report_type` is empty.",
            field="report_type",
            remedy='Give the request type, e.g. "CampaignPerformanceReportRequest".',
        )
    if isinstance(columns, str) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise ReportRequestError(
            "`columns` must be a non-empty list of column names.",
            field="columns",
            remedy='Give e.g. ["TimePeriod", "AccountId", "CampaignId", "Impressions", "Clicks", "Spend"].',
        )
    if isinstance(account_ids, (str, int)):  # a templated "123,456" or a single id
        account_ids = [a for a in str(account_ids).replace(" ", "").split(",") if a]
    time: dict[str, Any] = {"ReportTimeZone": time_zone or DEFAULT_TIME_ZONE}
    if predefined_time:
        if date_from is not None or date_to is not None:
            raise ReportRequestError(
                "Both `predefined_time` and `date_from`/`date_to` are set.",
                field="predefined_time",
                remedy="Give either predefined_time or a date range, not both.",
            )
        time["PredefinedTime"] = predefined_time
    else:
        if date_from is None or date_to is None:
            raise ReportRequestError(
                "No time range: give `date_from` and `date_to`, or `predefined_time`.",
                field="date_from",
                remedy='Set date_from and date_to (inclusive, "YYYY-MM-DD") or predefined_time="Yesterday".',
            )
        time["CustomDateRangeStart"] = _date_dict(_as_date(date_from, "date_from"))
        time["CustomDateRangeEnd"] = _date_dict(_as_date(date_to, "date_to"))
    request: dict[str, Any] = {
        "Type": report_type.strip(),
        "ReportName": report_name or report_type.strip(),
        "Format": "Csv",
        "FormatVersion": "2.0",
        "ReturnOnlyCompleteData": bool(return_only_complete_data),
        "ExcludeReportHeader": True,
        "ExcludeReportFooter": True,
        "ExcludeColumnHeaders": False,
        "Aggregation": aggregation,
        "Columns": list(columns),
        "Scope": {"AccountIds": [str(a).strip() for a in account_ids]},
        "Time": time,
    }
    if report_request:
        request = _merge(request, report_request)
    result = _id_strings(request)
    assert isinstance(result, dict)
    return result


def _months_before(day: datetime.date, months: int) -> datetime.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def check_report_request(request: Mapping[str, Any], *, today: datetime.date | None = None) -> None:
    """Refuse, before submitting, what Microsoft would refuse later or answer with no data.

    The retention limit is checked against ``today`` (UTC by default): Microsoft keeps hourly data
    6 months and daily or coarser data 36 months, and silently returns nothing older.
    """
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    aggregation = request.get("Aggregation")
    if aggregation not in AGGREGATIONS:
        raise ReportRequestError(
            f"`aggregation` is {str(aggregation)[:40]!r}.",
            field="aggregation",
            remedy="Use one of " + ", ".join(AGGREGATIONS) + ".",
        )
    accounts = list((request.get("Scope") or {}).get("AccountIds") or [])
    if len(accounts) > MAX_ACCOUNTS:
        raise ReportRequestError(
            f"`account_ids` has {len(accounts)} accounts; Microsoft allows at most {MAX_ACCOUNTS} per report "
            "(error 2029).",
            field="account_ids",
            remedy=f"Split the accounts into batches of at most {MAX_ACCOUNTS} (one task per batch).",
            codes=[2029],
        )
    if not accounts and not (request.get("Scope") or {}).get("Campaigns"):
        raise ReportRequestError(
            "No account to report on.",
            field="account_ids",
            remedy="Give account_ids, or set Account ID on the connection.",
        )
    time = request.get("Time") or {}
    start, end = time.get("CustomDateRangeStart"), time.get("CustomDateRangeEnd")
    if not (isinstance(start, Mapping) and isinstance(end, Mapping)):
        return
    try:
        first = datetime.date(int(start["Year"]), int(start["Month"]), int(start["Day"]))
        last = datetime.date(int(end["Year"]), int(end["Month"]), int(end["Day"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportRequestError(
            "The custom date range is not a valid date.",
            field="date_from",
            remedy='Give date_from and date_to as "YYYY-MM-DD".',
        ) from exc
    if first > last:
        raise ReportRequestError(
            f"`date_from` ({first}) is after `date_to` ({last}); both are inclusive.",
            field="date_from",
            remedy="Swap them, or set date_to to the last day you want (inclusive).",
        )
    hourly = aggregation in HOURLY_AGGREGATIONS
    months = HOURLY_RETENTION_MONTHS if hourly else DAILY_RETENTION_MONTHS
    oldest = _months_before(today, months)
    if first < oldest:
        kind = "hourly" if hourly else "daily and coarser"
        raise ReportRequestError(
            f"`date_from` ({first}) is older than Microsoft keeps {kind} data: {months} months, so nothing "
            f"before {oldest}.",
            field="date_from",
            remedy=f"Start the range on or after {oldest}"
            + (" or use Daily aggregation (kept 36 months)." if hourly else "."),
        )
