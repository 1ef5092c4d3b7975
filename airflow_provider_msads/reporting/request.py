"""The ReportRequest for Submit, built from the operator's arguments and checked before sending.

Building fixes what peers learnt the hard way: ids as JSON strings (Microsoft's models reject
integers), CSV 2.0 without report header and footer (the file is then the column row and the rows,
nothing to strip), GMT unless told otherwise (Microsoft's default is Pacific time, which shifts
every daily row by eight hours against the warehouse), and a scope that is what the user asked for:
Microsoft reports on the *union* of ``AccountIds`` and ``Campaigns``/``AdGroups``, so a campaign
scope must not carry the account too.

The checks turn what Microsoft would answer half an hour later with a vague code (or, for data
past retention, with an empty file) into an error naming the argument. Each one cites the page
it comes from in docs/microsoft-fidelity.md.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.reporting.periods import (
    _HOURLY,
    AGGREGATION_PERIODS,
    AGGREGATIONS,
    DEFAULT_TIME_ZONE,
    FILE_CONTRACT,
    MAX_ACCOUNTS,
    MAX_CAMPAIGNS,
    MAX_REPORT_NAME,
    NO_CUSTOM_RANGE,
    OPEN_PERIODS,
    TABLED_PERIODS,
    not_applicable,
    retention,
    retention_start,
)

# -- building -------------------------------------------------------------------------------------


def as_date(value: object, argument: str) -> datetime.date:
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


_ID_TEXT = re.compile(r"[\s\[\]()'\",\d]*")
_DIGITS = re.compile(r"\d+")


def _id_list(value: object, argument: str) -> list[str]:
    """A list of ids from a list, a single id, or a templated ``"123,456"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, str) and _ID_TEXT.fullmatch(value):  # "123,456" or a rendered "['123', '456']"
        return _DIGITS.findall(value)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        ids = [str(a).strip() for a in value]
        if all(i.isdigit() for i in ids):
            return ids
    raise ReportRequestError(
        f"`{argument}` is {str(value)[:60]!r}, not a list of numeric ids.",
        field=argument,
        remedy=f"Give `{argument}` as a list of numeric ids, e.g. [123456789].",
    )


def _some_ids(value: object, argument: str, noun: str, remedy: str) -> list[str]:
    """The ids of ``argument``; an empty list is refused (empty means empty, never "widen")."""
    ids = _id_list(value, argument)
    if not ids:
        raise ReportRequestError(
            f"`{argument}` is empty: there is no {noun} to report on.", field=argument, remedy=remedy
        )
    return ids


def build_scope(
    *,
    account_ids: object = None,
    campaign_ids: object = None,
    default_account_id: str | None = None,
    extra_scope: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``Scope`` the user asked for; Microsoft reports on the union of its parts.

    * nothing given: the connection's account (``default_account_id``);
    * ``campaign_ids``: those campaigns of the connection's account, *without* ``AccountIds``
      (which would add every other campaign of the account);
    * campaigns or ad groups in ``report_request``'s Scope (``extra_scope``): the same;
    * ``account_ids`` and campaigns together: the union, as Microsoft defines it (the caller warns);
    * ``account_ids=[]``: refused. Empty means empty; it never becomes the connection's account.
    """
    extra_scope = extra_scope or {}
    scope: dict[str, Any] = {}
    if account_ids is not None:
        accounts = _some_ids(
            account_ids,
            "account_ids",
            "account",
            "Give at least one account id, or leave account_ids unset for the connection's account. "
            "An empty list (e.g. an upstream task that found no accounts) is refused rather than widened; "
            "skip the task instead (e.g. with a ShortCircuitOperator).",
        )
        scope["AccountIds"] = accounts
    if campaign_ids is not None:
        campaigns = _some_ids(
            campaign_ids, "campaign_ids", "campaign", "Give at least one campaign id, or leave campaign_ids unset."
        )
        if not default_account_id:
            raise ReportRequestError(
                "`campaign_ids` needs the account the campaigns belong to, and the connection has no Account ID.",
                field="account_id",
                remedy="Set Account ID on the connection, or give Scope.Campaigns with AccountId in report_request.",
            )
        scope["Campaigns"] = [{"AccountId": default_account_id, "CampaignId": c} for c in campaigns]
    narrowed = bool(scope.get("Campaigns") or extra_scope.get("Campaigns") or extra_scope.get("AdGroups"))
    if "AccountIds" not in scope and "AccountIds" not in extra_scope and not narrowed:
        if not default_account_id:
            raise ReportRequestError(
                "No account to report on.",
                field="account_ids",
                remedy="Give account_ids, or set Account ID on the connection.",
            )
        scope["AccountIds"] = [default_account_id]
    return scope


def build_report_request(
    *,
    report_type: str,
    columns: Sequence[str],
    account_ids: object = None,
    campaign_ids: object = None,
    default_account_id: str | None = None,
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

    ``report_request`` is merged last, so it can set anything (filters, an ad-group scope) except
    the keys of :data:`FILE_CONTRACT` (refused, naming the key). The report header and footer are
    requested: the download reads Microsoft's completeness signal there and strips them.
    ``report_name`` (the operator passes its task_id) is cut to Microsoft's 200 characters.
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
        time["CustomDateRangeStart"] = _date_dict(as_date(date_from, "date_from"))
        time["CustomDateRangeEnd"] = _date_dict(as_date(date_to, "date_to"))
    extra_scope = (report_request or {}).get("Scope")
    scope = build_scope(
        account_ids=account_ids,
        campaign_ids=campaign_ids,
        default_account_id=default_account_id,
        extra_scope=extra_scope if isinstance(extra_scope, Mapping) else None,
    )
    request: dict[str, Any] = {
        "Type": report_type.strip(),
        "ReportName": (report_name or report_type.strip())[:MAX_REPORT_NAME],
        "Format": "Csv",
        "FormatVersion": "2.0",
        "ReturnOnlyCompleteData": bool(return_only_complete_data),
        "ExcludeReportHeader": False,
        "ExcludeReportFooter": False,
        "ExcludeColumnHeaders": False,
        "Aggregation": aggregation,
        "Columns": list(columns),
        "Scope": scope,
        "Time": time,
    }
    if report_request:
        check_file_contract(report_request)
        request = _merge(request, report_request)
    result = _id_strings(request)
    assert isinstance(result, dict)
    return result


# -- checking -------------------------------------------------------------------------------------

_CONTRACT_WHY = {
    "ExcludeReportHeader": "the report header carries Microsoft's only in-file completeness signal "
    "('Potential Incomplete Data'), read while streaming and then stripped",
    "ExcludeReportFooter": "the footer is stripped while streaming so the file is data rows only",
    "ExcludeColumnHeaders": "the file starts with the column row (its contract, what `rows` is counted against, "
    "and where Parquet takes its column names)",
    "Format": "the operator streams Microsoft's CSV, counts its rows and publishes it as is",
    "FormatVersion": "values are typed from CSV 2.0 (FormatVersion 1.0 writes '1,000.00' and "
    "'3/15/2018 12:00:00 AM|7')",
}


def _same(value: object, wanted: object) -> bool:
    if isinstance(wanted, bool):
        return value is wanted or (isinstance(value, str) and value.strip().lower() == str(wanted).lower())
    return str(value).strip().lower() == str(wanted).lower()


def check_file_contract(request: Mapping[str, Any]) -> None:
    """Refuse a ReportRequest (or ``report_request`` override) that changes what the file rests on.

    Each key of :data:`FILE_CONTRACT` may be given only with the value the operator sends anyway;
    anything else is refused before submitting, naming the key.
    """
    for key, wanted in FILE_CONTRACT.items():
        if key in request and not _same(request[key], wanted):
            value = str(request[key])[:20]
            raise ReportRequestError(
                f"report_request sets {key}={value!r}: the operator's file needs {key}={wanted!r} "
                f"({_CONTRACT_WHY[key]}).",
                field=f"report_request.{key}",
                remedy=f'Remove "{key}" from report_request; convert or trim the file downstream if needed.',
            )


def _custom_range(time: Mapping[str, Any]) -> tuple[datetime.date, datetime.date] | None:
    start, end = time.get("CustomDateRangeStart"), time.get("CustomDateRangeEnd")
    if start is None and end is None:
        return None
    try:
        if not (isinstance(start, Mapping) and isinstance(end, Mapping)):
            raise TypeError("a custom date is not an object")
        first = datetime.date(int(start["Year"]), int(start["Month"]), int(start["Day"]))
        last = datetime.date(int(end["Year"]), int(end["Month"]), int(end["Day"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportRequestError(
            "The custom date range is not a valid date (error 2040 at Microsoft).",
            field="date_from",
            remedy='Give date_from and date_to as "YYYY-MM-DD".',
            codes=[2040],
        ) from exc
    return first, last


def check_report_request(request: Mapping[str, Any], *, today: datetime.date | None = None) -> list[str]:
    """Refuse, before submitting, what Microsoft would refuse later or answer with no data.

    Returns warnings: requests Microsoft serves, but differently from what the arguments suggest
    (a scope that is a union; Daily rows asked for without a TimePeriod column, which Microsoft
    answers as Summary). ``today`` defaults to the latest date anywhere on Earth (UTC+14), so a
    start date is called future only when it is in every time zone.
    """
    warnings: list[str] = []
    today = today or (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=14)).date()
    report_type = str(request.get("Type") or "")
    aggregation = request.get("Aggregation")
    if aggregation not in AGGREGATIONS:
        raise ReportRequestError(
            f"`aggregation` is {str(aggregation)[:40]!r}.",
            field="aggregation",
            remedy="Use one of " + ", ".join(AGGREGATIONS) + ".",
        )
    check_file_contract(request)
    if not_applicable(report_type, str(aggregation)):
        grains = ("Hourly", "Daily", "Weekly", "Monthly", "Yearly", "Summary")
        served = [a for a in grains if not not_applicable(report_type, a)]
        raise ReportRequestError(
            f"Microsoft keeps no {aggregation} data of {report_type} ('Not Applicable' on 'Reporting data retention "
            "time periods'; error 2059 at Microsoft).",
            field="aggregation",
            remedy=f"Use {' or '.join(served)} aggregation for {report_type}.",
            codes=[2059],
        )
    columns = [str(c) for c in request.get("Columns") or []]
    seen: set[str] = set()
    duplicates = [c for c in columns if c in seen or seen.add(c)]  # type: ignore[func-returns-value]
    if duplicates:
        raise ReportRequestError(
            f"`columns` lists {', '.join(dict.fromkeys(duplicates))} more than once (error 2016 at Microsoft).",
            field="columns",
            remedy="Remove the duplicates from `columns`.",
            codes=[2016],
        )
    if aggregation == "Summary" and "TimePeriod" in columns:
        raise ReportRequestError(
            "`columns` has TimePeriod, which Microsoft refuses with Summary aggregation (error 2034).",
            field="columns",
            remedy='Remove "TimePeriod" from `columns`, or choose an aggregation such as "Daily".',
            codes=[2034],
        )
    if aggregation != "Summary" and "TimePeriod" not in columns:
        warnings.append(
            f"`columns` has no TimePeriod column: Microsoft then sums the whole range into one row per entity "
            f'(Summary), not {aggregation} rows. Add "TimePeriod" to `columns` for {aggregation} rows.'
        )
    name = request.get("ReportName")
    if name is not None and len(str(name)) > MAX_REPORT_NAME:
        raise ReportRequestError(
            f"ReportName has {len(str(name))} characters; Microsoft allows {MAX_REPORT_NAME} (error 2006).",
            field="report_request",
            remedy=f"Shorten ReportName in report_request to at most {MAX_REPORT_NAME} characters.",
            codes=[2006],
        )
    scope = request.get("Scope") or {}
    accounts = list(scope.get("AccountIds") or [])
    campaigns = list(scope.get("Campaigns") or [])
    if len(accounts) > MAX_ACCOUNTS:
        raise ReportRequestError(
            f"`account_ids` has {len(accounts)} accounts; Microsoft allows at most {MAX_ACCOUNTS} per report "
            "(error 2029).",
            field="account_ids",
            remedy=f"Split the accounts into batches of at most {MAX_ACCOUNTS} (one task per batch).",
            codes=[2029],
        )
    if len(campaigns) > MAX_CAMPAIGNS:
        raise ReportRequestError(
            f"The scope names {len(campaigns)} campaigns; Microsoft allows at most {MAX_CAMPAIGNS} (error 2030).",
            field="campaign_ids",
            remedy=f"Split campaign_ids into batches of at most {MAX_CAMPAIGNS}, or report on the whole account.",
            codes=[2030],
        )
    if not accounts and not campaigns and not scope.get("AdGroups"):
        raise ReportRequestError(
            "No account to report on.",
            field="account_ids",
            remedy="Give account_ids, or set Account ID on the connection.",
        )
    if accounts and (campaigns or scope.get("AdGroups")):
        warnings.append(
            f"The scope names accounts {', '.join(map(str, accounts))} and campaigns or ad groups: Microsoft reports "
            "on their union, so every campaign of those accounts is in the file. Leave account_ids unset to "
            "report on the named campaigns only."
        )
    time = request.get("Time") or {}
    predefined = time.get("PredefinedTime")
    complete = request.get("ReturnOnlyCompleteData") is True
    if predefined:
        tabled = predefined in TABLED_PERIODS and aggregation in AGGREGATION_PERIODS
        if tabled and predefined not in AGGREGATION_PERIODS[aggregation]:
            allowed = ", ".join(sorted(AGGREGATION_PERIODS[aggregation]))
            raise ReportRequestError(
                f"Microsoft does not serve {aggregation} aggregation for predefined_time {predefined!r} (error 2007).",
                field="aggregation",
                remedy=f"With {aggregation}, use one of {allowed}, or a date range.",
                codes=[2007],
            )
        if complete and predefined in OPEN_PERIODS:
            raise ReportRequestError(
                f"return_only_complete_data with predefined_time {predefined!r}: a period that includes today is "
                "never complete (error 2005).",
                field="return_only_complete_data",
                remedy="Use a period that has ended (e.g. Yesterday), or set return_only_complete_data=False.",
                codes=[2005],
            )
        return warnings
    dates = _custom_range(time)
    if dates is None:
        return warnings
    if aggregation in NO_CUSTOM_RANGE:
        raise ReportRequestError(
            f"Microsoft does not serve {aggregation} aggregation for a custom date range (error 2007).",
            field="aggregation",
            remedy=f"With {aggregation}, use predefined_time (one of "
            + ", ".join(sorted(AGGREGATION_PERIODS[str(aggregation)]))
            + "), or another aggregation.",
            codes=[2007],
        )
    first, last = dates
    if first > last:
        raise ReportRequestError(
            f"`date_from` ({first}) is after `date_to` ({last}); both are inclusive (error 2011).",
            field="date_from",
            remedy="Swap them, or set date_to to the last day you want (inclusive).",
            codes=[2011],
        )
    if first > today:
        raise ReportRequestError(
            f"`date_from` ({first}) is in the future (error 2041).",
            field="date_from",
            remedy="Start the range today or earlier; the default dates are the period that ended at the run.",
            codes=[2041],
        )
    if last > today:
        raise ReportRequestError(
            f"`date_to` ({last}) is after today: Microsoft's ReportTime says the end date 'cannot be later than "
            "today's date' (error 2010 at Microsoft).",
            field="date_to",
            remedy="End the range today or earlier; the default dates are the period that ended at the run.",
            codes=[2010],
        )
    oldest = retention_start(report_type, str(aggregation), today)
    if first < oldest:
        months, days = retention(report_type, str(aggregation))
        kept = f"{months} months" if months else f"{days} days"
        raise ReportRequestError(
            f"`date_from` ({first}) is older than Microsoft keeps {aggregation} data of {report_type or 'this report'}:"
            f" {kept}, so nothing before {oldest} (Microsoft's 'Reporting data retention time periods').",
            field="date_from",
            remedy=f"Start the range on or after {oldest}"
            + (", or use Daily aggregation (kept longer)." if aggregation in _HOURLY else "."),
        )
    return warnings
