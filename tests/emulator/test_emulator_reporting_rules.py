"""Microsoft's documented Reporting rules in the emulator, over real sockets: the scope union, the
2000-range codes of the "Operation error codes" page, complete data by time zone, retention by
report type. docs/microsoft-fidelity.md cites the page behind each test."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from _support.emulator import Driver, FakeClock
from test_emulator_reporting import Reports, assert_reporting_fault, custom

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator
from airflow_provider_msads.testing.emulator._reporting_rules import RETENTION, Span, retention

NOW = datetime(2026, 10, 15, 12, tzinfo=timezone.utc).timestamp()


@pytest.fixture
def rep(ms: Driver) -> Reports:
    return Reports(ms)


@pytest.fixture
def fixed(clock: FakeClock) -> FakeClock:
    clock.now = NOW
    return clock


def rows_of(rep: Reports, **overrides: Any) -> list[list[str]]:
    """The data rows of a report (no header, footer or column names), cells unquoted."""
    report_id = rep.submit(ExcludeReportHeader=True, ExcludeReportFooter=True, ExcludeColumnHeaders=True, **overrides)
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")[:-1]
    return [[cell.strip('"') for cell in line.split(",")] for line in lines]


COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions"]
AD_GROUP_COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "AdGroupId", "Impressions"]


# ------------------------------------------------------------------ the scope is a union


def test_campaign_ids_are_what_the_rows_carry(rep: Reports) -> None:
    campaigns = rep.emu.campaign_ids()
    rows = rows_of(rep, Columns=COLUMNS)

    assert len(campaigns) == 3 and len(set(campaigns)) == 3
    assert {row[2] for row in rows} == set(campaigns)
    assert rep.emu.campaign_ids(rep.emu.account.id) == campaigns
    assert rep.emu.campaign_ids(rep.emu.add_account().id) != campaigns


def test_campaigns_only_scope_reports_only_those_campaigns(rep: Reports) -> None:
    wanted = rep.emu.campaign_ids()[1]
    scope = {"Campaigns": [{"AccountId": rep.emu.account.id, "CampaignId": wanted}]}
    rows = rows_of(rep, Columns=COLUMNS, Scope=scope)

    assert len(rows) == 3  # one campaign x three days
    assert {(row[1], row[2], row[3]) for row in rows} == {(rep.emu.account.id, wanted, "Campaign 2")}


def test_account_ids_and_campaigns_are_added_together(rep: Reports) -> None:
    other = rep.emu.add_account()
    wanted = rep.emu.campaign_ids(other.id)[0]
    scope = {
        "AccountIds": [rep.emu.account.id],
        "Campaigns": [
            {"AccountId": other.id, "CampaignId": wanted},
            {"AccountId": rep.emu.account.id, "CampaignId": rep.emu.campaign_ids()[0]},
        ],
    }
    rows = rows_of(rep, Columns=COLUMNS, Scope=scope)
    pairs = {(row[1], row[2]) for row in rows}

    assert pairs == {(rep.emu.account.id, c) for c in rep.emu.campaign_ids()} | {(other.id, wanted)}
    assert len(rows) == (3 + 1) * 3


def test_ad_groups_scope_selects_ad_group_rows(rep: Reports) -> None:
    campaign = rep.emu.campaign_ids()[2]
    groups = rep.emu.ad_group_ids(campaign=campaign)
    scope = {"AdGroups": [{"AccountId": rep.emu.account.id, "CampaignId": campaign, "AdGroupId": groups[1]}]}
    rows = rows_of(rep, Type="AdGroupPerformanceReportRequest", Columns=AD_GROUP_COLUMNS, Scope=scope)

    assert {(row[2], row[3]) for row in rows} == {(campaign, groups[1])}
    assert len(rows) == 3
    assert len(rep.emu.ad_group_ids()) == 6


def test_campaign_of_a_keyword_report_selects_its_keywords(rep: Reports) -> None:
    campaign = rep.emu.campaign_ids()[0]
    scope = {"Campaigns": [{"AccountId": rep.emu.account.id, "CampaignId": campaign}]}
    rows = rows_of(
        rep,
        Type="KeywordPerformanceReportRequest",
        Columns=["TimePeriod", "CampaignId", "AdGroupId", "Keyword", "Impressions"],
        Scope=scope,
    )

    assert {row[1] for row in rows} == {campaign}
    assert {row[2] for row in rows} == set(rep.emu.ad_group_ids(campaign=campaign))
    assert len(rows) == 4 * 3


def test_campaign_not_in_the_account(rep: Reports) -> None:
    other = rep.emu.add_account()
    scope = {"Campaigns": [{"AccountId": rep.emu.account.id, "CampaignId": rep.emu.campaign_ids(other.id)[0]}]}
    error = assert_reporting_fault(
        rep.submit_raw(rep.request(Scope=scope)), 2019, "InvalidCampaignIdInCampaignReportScope"
    )

    assert error["Details"] == rep.emu.campaign_ids(other.id)[0]


def test_ad_group_not_in_the_campaign(rep: Reports) -> None:
    first, second = rep.emu.campaign_ids()[:2]
    entry = {
        "AccountId": rep.emu.account.id,
        "CampaignId": first,
        "AdGroupId": rep.emu.ad_group_ids(campaign=second)[0],
    }
    request = rep.request(Type="AdGroupPerformanceReportRequest", Columns=AD_GROUP_COLUMNS, Scope={"AdGroups": [entry]})

    assert_reporting_fault(rep.submit_raw(request), 2022, "InvalidAdGroupIdInAdGroupReportScope")


@pytest.mark.parametrize(
    ("report_type", "columns", "code", "name"),
    [
        (
            "AccountPerformanceReportRequest",
            ["TimePeriod", "AccountId", "Impressions"],
            2026,
            "InvalidAccountReportScope",
        ),
        ("CampaignPerformanceReportRequest", COLUMNS, 2027, "InvalidAccountThruCampaignReportScope"),
        ("AdGroupPerformanceReportRequest", AD_GROUP_COLUMNS, 2028, "InvalidAccountThruAdGroupReportScope"),
    ],
)
def test_scope_naming_nothing(rep: Reports, report_type: str, columns: list[str], code: int, name: str) -> None:
    for scope in ({}, {"AccountIds": [], "Campaigns": []}, None):
        request = rep.request(Type=report_type, Columns=columns, Scope=scope)
        assert_reporting_fault(rep.submit_raw(request), code, name)


def test_null_scope_entries(rep: Reports) -> None:
    assert_reporting_fault(rep.submit_raw(rep.request(Scope={"Campaigns": [None]})), 2024, "NullCampaignReportScope")
    request = rep.request(Type="AdGroupPerformanceReportRequest", Columns=AD_GROUP_COLUMNS, Scope={"AdGroups": [None]})
    assert_reporting_fault(rep.submit_raw(request), 2025, "NullAdGroupReportScope")


def test_scope_limits(rep: Reports) -> None:
    account = rep.emu.account.id
    campaigns = [{"AccountId": account, "CampaignId": rep.emu.campaign_ids()[0]}] * 301
    groups = [{"AccountId": account, "CampaignId": "1", "AdGroupId": "1"}] * 301

    assert_reporting_fault(
        rep.submit_raw(rep.request(Scope={"Campaigns": campaigns})), 2030, "MaximumCampaignsLimitReached"
    )
    assert rep.submit_raw(rep.request(Scope={"Campaigns": campaigns[:300]})).status_code == 200
    request = rep.request(Type="AdGroupPerformanceReportRequest", Columns=AD_GROUP_COLUMNS, Scope={"AdGroups": groups})
    assert_reporting_fault(rep.submit_raw(request), 2031, "AdGroupsOverLimit")


def test_accounts_that_do_not_exist_or_are_not_yours(rep: Reports) -> None:
    unknown = [str(900000000 + n) for n in range(25)]
    error = assert_reporting_fault(
        rep.submit_raw(rep.request(Scope={"AccountIds": [rep.emu.account.id, *unknown]})), 2035, "InvalidAccountIds"
    )
    foreign = rep.emu.add_account(parent_customer_id="999999999")
    campaign = rep.emu.campaign_ids(foreign.id)[0]
    refused = rep.submit_raw(rep.request(Scope={"Campaigns": [{"AccountId": foreign.id, "CampaignId": campaign}]}))

    assert error["Details"] == ",".join(unknown[:20])
    assert assert_reporting_fault(refused, 2003, "AccountNotAuthorized")["Details"] == foreign.id


# ------------------------------------------------------------------ the request itself


def test_null_report_request_and_missing_type(rep: Reports) -> None:
    response = rep.http.post(
        f"{rep.emu.reporting_url}/GenerateReport/Submit", json={"ReportRequest": None}, headers=rep.headers
    )
    assert_reporting_fault(response, 2001, "NullReportRequest")
    request = rep.request()
    del request["Type"]
    assert_reporting_fault(rep.submit_raw(request), 2002, "UnknownReportType")


def test_report_name_of_more_than_200_characters(rep: Reports) -> None:
    assert_reporting_fault(rep.submit_raw(rep.request(ReportName="r" * 201)), 2006, "InvalidReportName")
    assert rep.submit_raw(rep.request(ReportName="r" * 200)).status_code == 200


@pytest.mark.parametrize(
    ("columns", "code", "name", "details"),
    [
        ([], 2014, "NullColumns", None),
        (None, 2014, "NullColumns", None),
        (["TimePeriod", "Clicks", "CampaignId", "Clicks", "TimePeriod"], 2016, "DuplicateColumns", "TimePeriod,Clicks"),
        (["TimePeriod", "CampaignName"], 2017, "NoMeasureSelected", None),
        (["TimePeriod", "ImpressionSharePercent"], 2017, "NoMeasureSelected", None),
        (["Impressions", "Clicks"], 2015, "RequiredColumnsNotSelected", None),
    ],
)
def test_column_rules(rep: Reports, columns: list[str] | None, code: int, name: str, details: str | None) -> None:
    error = assert_reporting_fault(rep.submit_raw(rep.request(Columns=columns)), code, name)

    if details is not None:
        assert error["Details"] == details


def test_time_period_column_with_summary(rep: Reports) -> None:
    assert_reporting_fault(
        rep.submit_raw(rep.request(Aggregation="Summary")), 2034, "InvalidTimePeriodColumnForSummaryReport"
    )
    request = rep.request()
    del request["Aggregation"]  # the default aggregation is Summary
    assert_reporting_fault(rep.submit_raw(request), 2034, "InvalidTimePeriodColumnForSummaryReport")


@pytest.mark.parametrize(
    "time",
    [
        None,
        {"ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon"},
        {"PredefinedTime": "Yesterday", "CustomDateRangeStart": custom(date(2026, 10, 1))},
    ],
)
def test_report_time_selection(rep: Reports, time: dict[str, Any] | None) -> None:
    assert_reporting_fault(rep.submit_raw(rep.request(Time=time)), 2008, "InvalidReportTimeSelection")


@pytest.mark.parametrize(
    ("aggregation", "predefined", "allowed"),
    [
        ("Daily", "LastWeek", False),
        ("Daily", "LastSevenDays", True),
        ("Hourly", "LastSevenDays", False),
        ("Hourly", "Yesterday", True),
        ("Monthly", "LastSixMonths", True),
        ("Yearly", "LastMonth", False),
        ("Weekly", "LastFourWeeks", True),
        ("WeeklyStartingMonday", "LastWeekStartingMonday", True),
        ("DayOfWeek", None, False),
    ],
)
def test_aggregation_and_time(
    rep: Reports, fixed: FakeClock, aggregation: str, predefined: str | None, allowed: bool
) -> None:
    time: dict[str, Any] = (
        {"PredefinedTime": predefined}
        if predefined
        else {"CustomDateRangeStart": custom(date(2026, 10, 1)), "CustomDateRangeEnd": custom(date(2026, 10, 2))}
    )
    response = rep.submit_raw(rep.request(Aggregation=aggregation, Time=time))

    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert_reporting_fault(response, 2007, "InvalidReportAggregation")


# ------------------------------------------------------------------ complete data, by time zone


def yesterday_complete(rep: Reports) -> dict[str, Any]:
    return rep.request(
        Time={"PredefinedTime": "Yesterday", "ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon"},
        ReturnOnlyCompleteData=True,
    )


def test_complete_data_comes_three_hours_after_the_day_ends_in_the_account_zone(rep: Reports, clock: FakeClock) -> None:
    # 2026-10-14 ends in Pacific time (UTC-8 in the emulator) at 08:00 UTC on the 15th; complete at 11:00.
    assert rep.emu.account.time_zone == "PacificTimeUSCanadaTijuana"
    clock.now = datetime(2026, 10, 15, 10, 59, tzinfo=timezone.utc).timestamp()
    assert_reporting_fault(rep.submit_raw(yesterday_complete(rep)), 2004, "NoCompleteDataAvaliable")

    clock.now = datetime(2026, 10, 15, 11, 0, tzinfo=timezone.utc).timestamp()
    assert rep.submit_raw(yesterday_complete(rep)).status_code == 200
    assert rep.emu.complete_at(date(2026, 10, 14), "PacificTimeUSCanadaTijuana") == clock.now


def test_complete_data_waits_for_every_account_zone(rep: Reports, clock: FakeClock) -> None:
    rep.emu.account.time_zone = "GreenwichMeanTimeDublinEdinburghLisbonLondon"
    clock.now = datetime(2026, 10, 15, 4, tzinfo=timezone.utc).timestamp()
    assert rep.submit_raw(yesterday_complete(rep)).status_code == 200

    other = rep.emu.add_account()  # Pacific by default
    request = yesterday_complete(rep)
    request["Scope"] = {"AccountIds": [rep.emu.account.id, other.id]}
    assert_reporting_fault(rep.submit_raw(request), 2004, "NoCompleteDataAvaliable")


@pytest.mark.parametrize("predefined", ["Today", "ThisWeek", "ThisMonth", "ThisYear"])
def test_complete_data_for_a_period_that_includes_today(rep: Reports, fixed: FakeClock, predefined: str) -> None:
    aggregation = {"ThisWeek": "Weekly", "ThisYear": "Monthly"}.get(predefined, "Daily")
    request = rep.request(Time={"PredefinedTime": predefined}, Aggregation=aggregation, ReturnOnlyCompleteData=True)

    assert_reporting_fault(rep.submit_raw(request), 2005, "InvalidDataAvailabilityAndTimePeriodCombination")


def test_injected_2004_for_client_tests(rep: Reports) -> None:
    rep.emu.inject("reporting", "fault", code=2004, operation="SubmitGenerateReport")
    assert_reporting_fault(rep.submit_raw(rep.request()), 2004, "NoCompleteDataAvaliable")
    assert rep.submit_raw(rep.request()).status_code == 200


# ------------------------------------------------------------------ retention by report type


def test_retention_table_is_microsofts() -> None:
    assert retention("CampaignPerformanceReportRequest", "Hourly") == Span(months=6)
    assert retention("CampaignPerformanceReportRequest", "Daily") == Span(months=36)
    assert retention("SearchQueryPerformanceReportRequest", "Hourly") == Span(months=1)
    assert retention("GeographicPerformanceReportRequest", "HourOfDay") == Span(days=14)
    assert retention("ShareOfVoiceReportRequest", "Monthly") == Span(months=6)
    assert retention("BudgetSummaryReportRequest", "Daily") == Span(months=24)
    assert retention("ShareOfVoiceReportRequest", "Hourly") is None
    assert len(RETENTION) == 30


@pytest.mark.parametrize(
    ("report_type", "columns", "aggregation", "first_kept"),
    [
        (
            "SearchQueryPerformanceReportRequest",
            ["TimePeriod", "SearchQuery", "Impressions"],
            "Hourly",
            date(2026, 9, 15),
        ),
        ("GeographicPerformanceReportRequest", ["TimePeriod", "AccountId", "Impressions"], "Hourly", date(2026, 10, 1)),
        ("ShareOfVoiceReportRequest", ["TimePeriod", "AccountId", "Impressions"], "Daily", date(2026, 4, 15)),
        ("CallDetailReportRequest", ["AccountId", "Duration"], "Daily", date(2026, 4, 15)),  # a Summary
    ],
)
def test_retention_by_report_type(
    rep: Reports, fixed: FakeClock, report_type: str, columns: list[str], aggregation: str, first_kept: date
) -> None:
    def submit(start: date, end: date) -> Any:
        time = {"CustomDateRangeStart": custom(start), "CustomDateRangeEnd": custom(end)}
        known = [c for c in columns if c in _columns_of(report_type)]
        return rep.submit_raw(rep.request(Type=report_type, Columns=known, Aggregation=aggregation, Time=time))

    before = first_kept - timedelta(days=1)
    straddling = submit(before - timedelta(days=5), date(2026, 10, 14))

    assert straddling.status_code == 200, straddling.text
    assert rep.emu.reports[straddling.json()["ReportRequestId"]].start == first_kept  # only retained days
    assert submit(first_kept, first_kept).status_code == 200
    assert_reporting_fault(submit(before - timedelta(days=5), before), 2010, "InvalidCustomDateRangeEnd")


def _columns_of(report_type: str) -> tuple[str, ...]:
    from airflow_provider_msads.testing.emulator._reporting_catalogue import COLUMNS as CATALOGUE

    return CATALOGUE[report_type]


def test_aggregation_a_report_type_does_not_keep(rep: Reports, fixed: FakeClock) -> None:
    request = rep.request(
        Type="ShareOfVoiceReportRequest",
        Columns=["TimePeriod", "AccountId", "Impressions"],
        Aggregation="Hourly",
        Time={"PredefinedTime": "Yesterday"},
    )

    assert_reporting_fault(rep.submit_raw(request), 2059, "UnsuportedTimeGrain")


def test_predefined_time_older_than_retention_is_clipped(rep: Reports, fixed: FakeClock) -> None:
    report_id = rep.submit(
        Type="ShareOfVoiceReportRequest",
        Columns=["TimePeriod", "AccountId", "Impressions"],
        Aggregation="Monthly",
        Time={"PredefinedTime": "LastYear"},
    )

    assert rep.emu.reports[report_id].start == date(2026, 4, 15)


# ------------------------------------------------------------------ the file


def test_tsv_without_column_headers(rep: Reports) -> None:
    report_id = rep.submit(Format="Tsv", ExcludeReportHeader=True, ExcludeReportFooter=True, ExcludeColumnHeaders=True)
    lines = rep.csv_text(rep.link(report_id)).split("\r\n")[:-1]

    assert len(lines) == 9
    assert lines[0].split("\t")[:2] == ["2026-10-01", rep.emu.account.id]


def test_xml_is_refused_with_a_clear_message(rep: Reports) -> None:
    error = assert_reporting_fault(rep.submit_raw(rep.request(Format="Xml")), 100, "NullRequest")

    assert "Xml is not emulated" in error["Details"]


def test_account_ids_accessor_checks_its_argument(msads_emulator: MicrosoftAdsEmulator) -> None:
    with pytest.raises(ValueError, match="add_account"):
        msads_emulator.campaign_ids("1")
    with pytest.raises(ValueError, match="is not one of"):
        msads_emulator.ad_group_ids(campaign="1")


def test_every_report_time_zone_has_an_offset() -> None:
    from airflow_provider_msads.testing.emulator._report_zones import _ZONE_OFFSETS
    from airflow_provider_msads.testing.emulator._reporting_catalogue import TIME_ZONES

    assert set(_ZONE_OFFSETS) == set(TIME_ZONES)


def test_future_start_is_judged_in_the_report_time_zone(rep: Reports, clock: FakeClock) -> None:
    # 2026-10-15 23:30 UTC is already the 16th in Tokyo (+9) but still the 15th in London.
    clock.now = datetime(2026, 10, 15, 23, 30, tzinfo=timezone.utc).timestamp()
    day = custom(date(2026, 10, 16))
    time = {"CustomDateRangeStart": day, "CustomDateRangeEnd": day}

    assert rep.submit_raw(rep.request(Time={**time, "ReportTimeZone": "OsakaSapporoTokyo"})).status_code == 200
    london = rep.request(Time={**time, "ReportTimeZone": "GreenwichMeanTimeDublinEdinburghLisbonLondon"})
    assert_reporting_fault(rep.submit_raw(london), 2041, "InvalidFutureStartDate")


def test_scope_entries_with_a_bad_account_or_campaign(rep: Reports) -> None:
    account = rep.emu.account.id
    campaign = rep.emu.campaign_ids()[0]
    group = rep.emu.ad_group_ids(campaign=campaign)[0]
    bad_account = {"Campaigns": [{"AccountId": "900000001", "CampaignId": campaign}]}
    assert_reporting_fault(
        rep.submit_raw(rep.request(Scope=bad_account)), 2018, "InvalidAccountIdInCampaignReportScope"
    )

    def ad_group_request(entry: dict[str, str]) -> dict[str, Any]:
        return rep.request(
            Type="AdGroupPerformanceReportRequest", Columns=AD_GROUP_COLUMNS, Scope={"AdGroups": [entry]}
        )

    wrong_account = {"AccountId": "900000001", "CampaignId": campaign, "AdGroupId": group}
    wrong_campaign = {"AccountId": account, "CampaignId": "123", "AdGroupId": group}
    assert_reporting_fault(
        rep.submit_raw(ad_group_request(wrong_account)), 2020, "InvalidAccountIdInAdGroupReportScope"
    )
    assert_reporting_fault(
        rep.submit_raw(ad_group_request(wrong_campaign)), 2021, "InvalidCampaignIdInAdGroupReportScope"
    )
    assert (
        rep.submit_raw(ad_group_request({"AccountId": account, "CampaignId": campaign, "AdGroupId": group})).status_code
        == 200
    )


def test_report_size_knob_keeps_to_the_scope(rep: Reports) -> None:
    rep.emu.set_report_size(rows=50)
    wanted = rep.emu.campaign_ids()[2]
    scope = {"Campaigns": [{"AccountId": rep.emu.account.id, "CampaignId": wanted}]}
    rows = rows_of(rep, Columns=COLUMNS, Scope=scope)

    assert len(rows) == 50
    assert {row[2] for row in rows} == {wanted}
