"""The report file as Microsoft writes it, generated on the fly from an ``EmulatorReport``.

A zip with one CSV entry: UTF-8 with BOM, every value quoted (TSV: bare, tab-separated), ``--``
for no value, the report header lines and copyright footer unless excluded. Rows are derived
deterministically from the request (accounts x periods x entities of the report's level) and
written straight into a streaming zip, so a report of any size never sits in memory. Also the
broken files a download link can be made to serve (two entries, a zip bomb) and Azure's XML errors.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, BinaryIO, Final

from airflow_provider_msads.testing.emulator import _reporting_catalogue as catalogue
from airflow_provider_msads.testing.emulator._http import _built_once, _Reply
from airflow_provider_msads.testing.emulator._model import (
    AD_GROUPS_PER_CAMPAIGN,
    CAMPAIGNS_PER_ACCOUNT,
    EmulatorAccount,
    _entity_id,
    ad_group_id,
    campaign_id,
)

_XML: Final = "application/xml"
_AZURE_VERSION: Final = "2021-08-06"  # the Azure Storage REST version the links and blobs claim
_ZIP: Final = "application/octet-stream"
_TIME_PERIOD: Final = "TimePeriod"
_ZIP_BOMB_SIZE: Final = 256 * 1024 * 1024


# How many rows one account yields per period, by report level, and which entity it describes.
_LEVELS: Final = {
    "AccountPerformanceReportRequest": 1,
    "CampaignPerformanceReportRequest": 3,
    "AdGroupPerformanceReportRequest": 6,
    "AdPerformanceReportRequest": 12,
    "KeywordPerformanceReportRequest": 12,
    "SearchQueryPerformanceReportRequest": 12,
}
_DEFAULT_LEVEL: Final = 3


@dataclass
class EmulatorReport:
    """One submitted report; tests may change ``pending_polls``, ``rows`` or ``status`` in flight.

    ``rows`` None means the natural size: periods x the entities of the report's level in scope.
    ``selection`` narrows an account to some entities (indexes at the report's level: the rows a
    ``Campaigns``/``AdGroups`` scope names); an account absent from it is reported whole.
    ``status`` is what the report ends as (``"Success"`` or ``"Error"``). ``empty_url`` says how an
    empty report answers Poll: ``"null"`` (``ReportDownloadUrl: null``) or ``"missing"`` (no key).
    """

    id: str
    report_type: str
    columns: list[str]
    account_ids: list[str]
    start: date
    end: date
    aggregation: str
    format: str
    time_zone: str
    report_name: str
    exclude_report_header: bool
    exclude_report_footer: bool
    exclude_column_headers: bool
    submitted_at: float
    pending_polls: int = 1
    rows: int | None = None
    status: str = "Success"
    empty_url: str = "null"
    polls: int = 0
    downloads: int = 0
    request: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, tuple[int, ...]] = field(default_factory=dict)
    time_zone_label: str = ""

    def effective_aggregation(self) -> str:
        """The aggregation the rows follow: without ``TimePeriod`` "Summary aggregation will be used"."""
        return self.aggregation if _TIME_PERIOD in self.columns else "Summary"

    def data_range(self) -> tuple[date, date]:
        """The days the data covers. ReportAggregation (reporting-service/reportaggregation.md): "If the
        selected dates are not full weeks/months/years and the corresponding weekly/monthly/yearly time
        period column is requested, the selected dates will be converted to full weeks/months/years"
        (Weekly runs Sunday through Saturday, WeeklyStartingMonday Monday through Sunday)."""
        aggregation = self.effective_aggregation()
        start, end = self.start, self.end
        if aggregation == "Weekly":
            start -= timedelta(days=(start.weekday() + 1) % 7)
            end += timedelta(days=6 - (end.weekday() + 1) % 7)
        elif aggregation == "WeeklyStartingMonday":
            start -= timedelta(days=start.weekday())
            end += timedelta(days=6 - end.weekday())
        elif aggregation == "Monthly":
            start = start.replace(day=1)
            end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
        elif aggregation == "Yearly":
            start, end = start.replace(month=1, day=1), end.replace(month=12, day=31)
        return start, end

    def periods(self) -> list[str]:
        """``TimePeriod`` values in order, as ReportAggregation formats them (FormatVersion 2.0):
        ``yyyy-mm-dd`` (a week's Sunday or Monday, a month's first day), hourly ``yyyy-mm-dd|h``
        (guides/reports.md: ``"2020-03-15|7"``), Yearly ``yyyy``, HourOfDay 0-23, DayOfWeek 1-7."""
        aggregation = self.effective_aggregation()
        start, end = self.data_range()
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        if aggregation == "Summary":
            return ["--"]
        if aggregation == "Hourly":
            return [f"{day.isoformat()}|{hour}" for day in days for hour in range(24)]
        if aggregation == "HourOfDay":
            return [str(hour) for hour in range(24)]
        if aggregation == "DayOfWeek":
            return [str(n) for n in range(1, 8)]
        if aggregation == "Daily":
            return [day.isoformat() for day in days]
        if aggregation == "Weekly":
            return [day.isoformat() for day in days if day.weekday() == 6]
        if aggregation == "WeeklyStartingMonday":
            return [day.isoformat() for day in days if day.weekday() == 0]
        if aggregation == "Monthly":
            return [day.isoformat() for day in days if day.day == 1]
        return [str(year) for year in range(start.year, end.year + 1)]  # Yearly: "formatted as yyyy"

    @staticmethod
    def level_of(report_type: str) -> int:
        """Rows per account and period: 1 account, 3 campaigns, 6 ad groups or 12 keywords/ads."""
        return _LEVELS.get(report_type, _DEFAULT_LEVEL)

    def entities_per_account(self) -> int:
        return self.level_of(self.report_type)

    def entities_of(self, account_id: str) -> tuple[int, ...] | None:
        """The selected entity indexes of an account; None for all of them."""
        return self.selection.get(account_id)

    def row_count(self) -> int:
        if self.rows is not None:
            return self.rows
        level = self.entities_per_account()
        per_period = sum(len(self.selection.get(a, range(level))) for a in self.account_ids)
        return per_period * len(self.periods())


# ------------------------------------------------------------------------------------ rows


def _digits(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=6).digest(), "big")


# Impression-share statistics: "The value of this column is empty if the data is not available"
# (accountperformancereportcolumn.md); the emulator leaves one row in seven empty.
_SHARE_WORDS: Final = ("ImpressionShare", "ImpressionLost", "ClickShare", "ImpressionRate")
_PER_CONVERSION: Final = ("CostPerConversion", "CostPerAssist", "ReturnOnAdSpend", "AveragePosition")


def _metric_value(column: str, seed: int, impressions: int, clicks: int, conversions: int, cents: int) -> str:
    """A statistic as Microsoft writes it with FormatVersion 2.0, in the shape its column definition
    gives it (``_reporting_catalogue.COLUMN_SHAPES``, generated from Microsoft's column pages): no
    thousands separators; ``--`` where the service has no value, ``""`` where a page says "empty"."""
    shape = catalogue.COLUMN_SHAPES.get(column, "text")
    if shape == "count":
        if column == "Impressions" or column.endswith("Impressions"):
            return str(impressions)
        if column == "Clicks" or column.endswith("Clicks"):
            return str(clicks)
        if column.startswith("VideoViewsAt"):  # views that reached 25/50/75% of the video: a count
            return str(impressions * (100 - int(column[12:14])) // 400)
        return str(conversions)
    if shape == "score10":  # 1-10; "--" when the score was not computed
        return "--" if seed % 5 == 0 else str(1 + seed % 10)
    if shape == "score3":
        return str(seed % 4) if column == "QualityImpact" else str(1 + seed % 3)
    if shape == "percent_sign":
        if column == "Ctr":
            return f"{100.0 * clicks / impressions:.2f}%" if impressions else "0.00%"
        return f"{100.0 * conversions / clicks:.2f}%" if clicks else "0.00%"
    if shape == "percent":
        if any(word in column for word in _SHARE_WORDS) and seed % 7 == 0:
            return ""
        return f"{(cents % 10000) / 100:.2f}"
    if shape == "ratio":
        return f"{(seed % 100) / 100:.2f}"
    if shape == "money":
        if column in ("Conversions", "AllConversions"):
            return str(conversions)
        if column == "AverageCpc":
            return f"{cents / 100 / clicks:.2f}" if clicks else "0.00"
        if column.startswith(_PER_CONVERSION):
            return f"{cents / 100 / conversions:.2f}" if conversions else "--"
        return f"{cents / 100:.2f}"
    return "--"


_BLOCK: Final = 2048  # lines per yielded block: bounded memory, few Python-level writes
_POOL_SIZE: Final = 1009  # prime; the pool spans more than deflate's 32 KiB window

# Entity k of an account, in a report with L entities per account (1, 3, 6 or 12): campaign
# k // (L/3), ad group k // (L/6), keyword/ad/search term k, as in the account's fixed tree
# (_model.CAMPAIGNS_PER_ACCOUNT). Ids are stable per account, names count from 1.
_ENTITY_PREFIXES: Final = ("SearchQuery", "AdGroup", "Campaign", "Keyword", "Ad")


def _cell(value: str, tsv: bool) -> str:
    """One value as Microsoft quotes it: every CSV value in double quotes, TSV values bare."""
    if tsv:
        return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return '"' + value.replace('"', '""') + '"'


def _is_dimension(column: str) -> bool:
    if column == _TIME_PERIOD or column.startswith("Account") or column == "CurrencyCode":
        return True
    endings = ("Id", "Name", "Status", "Type", "Number", "Text", "Query", "Labels", "Vertical")
    return column.endswith(endings) or column in (
        "Keyword",
        "AdTitle",
        "AdDistribution",
        "DeviceType",
        "Network",
        "BidMatchType",
        "DeliveredMatchType",
    )


def campaign_index(k: int, level: int) -> int:
    """The campaign of entity ``k`` in a report with ``level`` entities per account."""
    return k // max(1, level // CAMPAIGNS_PER_ACCOUNT)


def ad_group_index(k: int, level: int) -> int:
    """The ad group of entity ``k``; a campaign-level row stands for its campaign's first ad group."""
    per_ad_group = level // (CAMPAIGNS_PER_ACCOUNT * AD_GROUPS_PER_CAMPAIGN)
    if per_ad_group >= 1:
        return k // per_ad_group
    return k * (CAMPAIGNS_PER_ACCOUNT * AD_GROUPS_PER_CAMPAIGN // max(1, level))


def _entity_getter(column: str, level: int) -> Callable[[str], Callable[[int], str]] | None:
    """For columns naming a campaign, ad group, keyword...: account id -> (entity index -> value)."""
    prefix = next((p for p in _ENTITY_PREFIXES if column.startswith(p)), None)
    rest = column[len(prefix) :] if prefix is not None else None
    if prefix is None or rest not in ("Id", "Name", "", "Title"):
        if column.endswith("Id") and not column.startswith("Account"):
            return lambda a: lambda k: str(_digits(column, a, k) % 10**9)
        return None
    label = {"AdGroup": "Ad group", "SearchQuery": "search term"}.get(prefix, prefix)
    if prefix == "Campaign":
        if rest == "Id":
            return lambda a: lambda k: campaign_id(a, campaign_index(k, level))
        return lambda a: lambda k: f"{label} {campaign_index(k, level) + 1}"
    if prefix == "AdGroup":
        if rest == "Id":
            return lambda a: lambda k: ad_group_id(a, ad_group_index(k, level))
        return lambda a: lambda k: f"{label} {ad_group_index(k, level) + 1}"
    salt = len(prefix) * 101
    if rest == "Id":
        return lambda a: lambda k: _entity_id(a, salt, k)
    return lambda a: lambda k: f"{label} {k + 1}"


def _static_value(column: str, period: str, account: EmulatorAccount) -> str:
    """The values that only depend on the period and the account."""
    simple = {
        _TIME_PERIOD: period,
        "AccountId": account.id,
        "AccountName": account.name,
        "AccountNumber": account.number,
        "AccountStatus": account.status,
        "CurrencyCode": account.currency_code,
        "CampaignType": "Search & content",
        "Network": "Microsoft sites and select traffic",
        "DeviceType": "Computer",
        "AdDistribution": "Search",
    }
    if column in simple:
        return simple[column]
    if column.endswith("Status"):
        return "Active"
    return f"{column} 1"


def _iter_blocks(report: EmulatorReport, accounts: Mapping[str, EmulatorAccount]) -> Iterator[str]:
    """The data lines in the service's order (period, account, entity), exactly ``row_count()`` of
    them, in blocks of up to ``_BLOCK`` lines.

    Speed matters (benchmarks stream 1 GB): per (period, account) the constant cells are baked
    into a ``str.format`` template, and each row only fills in its entity cells and one entry of
    a precomputed pool of metric cells. Every run of the same request gives the same lines.
    """
    total = report.row_count()
    if total <= 0 or not report.account_ids:
        return
    tsv = report.format == "Tsv"
    separator = "\t" if tsv else ","
    level = report.entities_per_account()
    metrics = [c for c in report.columns if not _is_dimension(c)]
    pool: list[tuple[str, ...]] = []
    for n in range(_POOL_SIZE):
        seed = _digits(report.report_type, n)
        impressions = seed % 5000
        clicks = impressions * ((seed >> 13) % 9) // 100
        conversions = clicks * ((seed >> 21) % 5) // 10
        cents = clicks * (20 + (seed >> 29) % 300)
        pool.append(
            tuple(_cell(_metric_value(c, seed >> 7, impressions, clicks, conversions, cents), tsv) for c in metrics)
        )
    entity_getters: list[Callable[[str], Callable[[int], str]]] = []
    slots: list[tuple[str, object]] = []  # ("entity", index) | ("metric", index) | ("static", column)
    for column in report.columns:
        getter = _entity_getter(column, level) if _is_dimension(column) else None
        if not _is_dimension(column):
            slots.append(("metric", metrics.index(column)))
        elif getter is not None:
            slots.append(("entity", len(entity_getters)))
            entity_getters.append(getter)
        else:
            slots.append(("static", column))
    entities = len(entity_getters)
    periods = report.periods()
    natural = report.rows is None
    even_share = max(1, -(-total // (len(periods) * len(report.account_ids))))
    i = 0
    for period in periods:
        for account_id in report.account_ids:
            account = accounts[account_id]
            chosen = report.entities_of(account_id)
            count = (level if chosen is None else len(chosen)) if natural else even_share
            if count == 0:
                continue
            cells: list[str] = []
            for kind, what in slots:
                if kind == "static":
                    cells.append(
                        _cell(_static_value(str(what), period, account), tsv).replace("{", "{{").replace("}", "}}")
                    )
                elif kind == "entity":
                    cells.append(f"{{{what}}}" if tsv else f'"{{{what}}}"')
                else:
                    cells.append(f"{{{entities + int(str(what))}}}")
            template = separator.join(cells) + "\r\n"
            fill = template.format
            getters = [make(account_id) for make in entity_getters]
            for first in range(0, count, _BLOCK):
                block = range(first, min(count, first + _BLOCK, first + total - i))
                keys = block if chosen is None else [chosen[n % len(chosen)] for n in block]
                yield "".join(
                    [
                        fill(*[get(k) for get in getters], *pool[((i + n) * 7919) % _POOL_SIZE])
                        for n, k in enumerate(keys)
                    ]
                )
                i += len(block)
                if i >= total:
                    return


def _us_date(day: date) -> str:
    return f"{day.month}/{day.day}/{day.year}"


def _write_csv(report: EmulatorReport, accounts: Mapping[str, EmulatorAccount], out: BinaryIO, now: datetime) -> None:
    """The report file as Microsoft writes it: BOM, optional header lines, columns, rows, footer."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    try:
        text.write("\ufeff")
        if report.format == "Tsv":
            writer = csv.writer(text, dialect=csv.excel_tab, quoting=csv.QUOTE_MINIMAL)
        else:
            writer = csv.writer(text, dialect=csv.excel, quoting=csv.QUOTE_ALL)
        today = now.date()
        if not report.exclude_report_header:
            # guides/reports.md, Report File Schema: the nine header lines, then a blank line.
            # "Report Time": "If multiple days were requested, the start and end date will be
            # separated by a comma" (one date for one day). The page's example has a space after
            # the comma ("2/1/2020, 2/7/2020"), but recorded files write "10/5/2017,10/11/2017" and
            # Microsoft's own SDK (bingads v13 RowReportHeader) parses each side with %m/%d/%Y and
            # fails on the space: the emulator writes none. "Last Completed Available Day/Hour":
            # "always reported relative to UTC", with the "(GMT)" suffix.
            completed = (now - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
            stamp = f"{_us_date(completed.date())} {completed.strftime('%I:%M:%S %p').lstrip('0')} (GMT)"
            chosen = _us_date(report.start)
            if report.end != report.start:
                chosen += f",{_us_date(report.end)}"
            for line in (
                f"Report Name: {report.report_name}",
                f"Report Time: {chosen}",
                f"Time Zone: {report.time_zone_label or report.time_zone}",
                f"Last Completed Available Day: {stamp}",
                f"Last Completed Available Hour: {stamp}",
                f"Report Aggregation: {report.aggregation}",
                "Report Filter: ",
                f"Potential Incomplete Data: {'true' if report.data_range()[1] >= today else 'false'}",
                f"Rows: {report.row_count()}",
            ):
                writer.writerow([line])
            writer.writerow([])
        if not report.exclude_column_headers:
            writer.writerow(report.columns)
        for block in _iter_blocks(report, accounts):
            text.write(block)
        if not report.exclude_report_footer:
            writer.writerow([])
            writer.writerow([f"\u00a9{now.year} Microsoft Corporation. All rights reserved. "])
        text.flush()
    finally:
        text.detach()


def _zip_report(report: EmulatorReport, accounts: Mapping[str, EmulatorAccount], out: BinaryIO, now: datetime) -> None:
    """Stream the zip (one entry, deflated) into ``out``; nothing of the report is kept."""
    big = report.row_count() * max(1, len(report.columns)) * 16 > 2**31 - 2**27
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open(f"{report.id}.csv", "w", force_zip64=big) as entry,
    ):
        _write_csv(report, accounts, entry, now)  # type: ignore[arg-type]


@_built_once
def _zip_bomb() -> bytes:
    """A small zip whose one CSV entry inflates ~1000:1 to 256 MiB (a single huge value)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("report.csv", "w") as entry,
    ):
        entry.write(b'\xef\xbb\xbf"TimePeriod","Impressions"\r\n"2026-01-01","')
        zeros = b"0" * (1024 * 1024)  # one absurd value: deflate's best case, ~1000:1
        for _ in range(_ZIP_BOMB_SIZE // len(zeros)):
            entry.write(zeros)
        entry.write(b'"\r\n')
    return buffer.getvalue()


def _small_zip(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _azure_error(status: int, code: str, message: str, detail: str | None = None) -> _Reply:
    """Azure Storage's XML error body (what an expired or unknown SAS link answers)."""
    request_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    extra = f"<AuthenticationErrorDetail>{detail}</AuthenticationErrorDetail>" if detail else ""
    body = (
        '\ufeff<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}\nRequestId:{request_id}\nTime:{now}</Message>{extra}</Error>"
    ).encode()
    return _Reply(status, body, _XML, [("x-ms-request-id", request_id), ("x-ms-error-code", code)])
