"""Reports by Microsoft's rules (issue 17): scope, default dates, the section-2000 codes, pre-checks.

Each expectation comes from a Microsoft page (docs/microsoft-fidelity.md), not from the emulator.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import httpx
import pendulum
import pytest

from airflow_provider_msads import reporting as rp
from airflow_provider_msads.errors.catalogue import REPORTING_CATALOGUE
from airflow_provider_msads.reporting.periods import REPORT_TIME_ZONES, default_dates, report_time_zone, retention_start
from airflow_provider_msads.reporting.request import build_scope
from airflow_provider_msads.reporting.resume import RESUME_MAX_AGE, ResumeSeal, fingerprint
from airflow_provider_msads.reporting.service import Reporting, is_dead_report_id, poll_delay
from airflow_provider_msads.tokens.flow import RetryPolicy

TODAY = datetime.date(2026, 11, 15)
COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "Impressions", "Clicks"]


def _request(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "report_type": "CampaignPerformanceReportRequest",
        "columns": COLUMNS,
        "default_account_id": "123456789",
        "date_from": "2026-11-01",
        "date_to": "2026-11-07",
    }
    args.update(kw)
    return rp.build_report_request(**args)


def _refused(request: dict[str, Any], code: int | None, field: str, words: str) -> None:
    with pytest.raises(rp.ReportRequestError) as caught:
        rp.check_report_request(request, today=TODAY)
    assert caught.value.field == field, caught.value
    assert words in str(caught.value), caught.value
    if code is not None:
        assert code in caught.value.codes and f"error {code}" in str(caught.value)


# ----------------------------------------------------------------------------------------- scope


def test_campaign_scope_has_no_account_ids() -> None:
    """'The report scope includes a union of the AccountIds and Campaigns elements.'"""
    request = _request(campaign_ids=[900000001, "900000002"])
    assert request["Scope"] == {
        "Campaigns": [
            {"AccountId": "123456789", "CampaignId": "900000001"},
            {"AccountId": "123456789", "CampaignId": "900000002"},
        ]
    }
    assert rp.check_report_request(request, today=TODAY) == []


def test_campaigns_in_report_request_scope_are_not_widened_by_the_account() -> None:
    request = _request(report_request={"Scope": {"Campaigns": [{"AccountId": 5, "CampaignId": 7}]}})
    assert request["Scope"] == {"Campaigns": [{"AccountId": "5", "CampaignId": "7"}]}
    adgroups = _request(report_request={"Scope": {"AdGroups": [{"AccountId": 5, "CampaignId": 7, "AdGroupId": 9}]}})
    assert "AccountIds" not in adgroups["Scope"]


def test_accounts_and_campaigns_together_are_a_union_with_a_warning() -> None:
    request = _request(account_ids=[123456789], campaign_ids=[900000001])
    assert request["Scope"]["AccountIds"] == ["123456789"] and len(request["Scope"]["Campaigns"]) == 1
    (warning,) = rp.check_report_request(request, today=TODAY)
    assert "union" in warning and "every campaign" in warning


def test_default_scope_is_the_connection_account_and_empty_means_empty() -> None:
    assert _request()["Scope"] == {"AccountIds": ["123456789"]}
    for empty in ([], "", "[]"):
        with pytest.raises(rp.ReportRequestError, match="`account_ids` is empty") as caught:
            _request(account_ids=empty)
        assert caught.value.field == "account_ids"
    with pytest.raises(rp.ReportRequestError, match="`campaign_ids` is empty"):
        _request(campaign_ids=[])


def test_rendered_id_lists_are_read_and_bad_ids_refused() -> None:
    assert build_scope(account_ids="['1', '2']")["AccountIds"] == ["1", "2"]
    assert build_scope(account_ids="1, 2")["AccountIds"] == ["1", "2"]
    assert build_scope(account_ids=7)["AccountIds"] == ["7"]
    with pytest.raises(rp.ReportRequestError, match="not a list of numeric ids") as caught:
        build_scope(account_ids=["F123ABC"])
    assert caught.value.field == "account_ids"
    with pytest.raises(rp.ReportRequestError, match="Account ID") as caught:
        build_scope(campaign_ids=[1])
    assert caught.value.field == "account_id"


def test_more_than_300_campaigns_refused() -> None:
    _refused(_request(campaign_ids=list(range(1, 302))), 2030, "campaign_ids", "at most 300")
    rp.check_report_request(_request(campaign_ids=list(range(1, 301))), today=TODAY)


# ----------------------------------------------------------------------------------------- checks


def test_duplicated_columns_refused_naming_them() -> None:
    _refused(_request(columns=[*COLUMNS, "Clicks"]), 2016, "columns", "Clicks more than once")


def test_time_period_with_summary_refused() -> None:
    _refused(_request(aggregation="Summary"), 2034, "columns", "TimePeriod")
    rp.check_report_request(_request(aggregation="Summary", columns=COLUMNS[1:]), today=TODAY)


def test_daily_without_time_period_warns_that_microsoft_answers_summary() -> None:
    (warning,) = rp.check_report_request(_request(columns=COLUMNS[1:]), today=TODAY)
    assert "Summary" in warning and "TimePeriod" in warning


@pytest.mark.parametrize(
    ("aggregation", "period", "allowed"),
    [
        ("Daily", "LastWeek", False),
        ("Daily", "Yesterday", True),
        ("Hourly", "LastSevenDays", False),
        ("Monthly", "Yesterday", False),
        ("Weekly", "LastFourWeeks", True),
        ("Yearly", "LastMonth", False),
        ("Summary", "LastYear", False),
        ("Daily", "Last30Days", True),  # not in Microsoft's table: not refused (assumption)
    ],
)
def test_aggregation_against_predefined_time(aggregation: str, period: str, allowed: bool) -> None:
    columns = COLUMNS[1:] if aggregation == "Summary" else COLUMNS
    request = _request(aggregation=aggregation, columns=columns, date_from=None, date_to=None, predefined_time=period)
    if allowed:
        rp.check_report_request(request, today=TODAY)
    else:
        _refused(request, 2007, "aggregation", f"for predefined_time {period!r}")


def test_day_of_week_and_hour_of_day_take_no_custom_range() -> None:
    for aggregation in ("DayOfWeek", "HourOfDay"):
        _refused(_request(aggregation=aggregation), 2007, "aggregation", "custom date range")
        request = _request(aggregation=aggregation, date_from=None, date_to=None, predefined_time="LastSevenDays")
        rp.check_report_request(request, today=TODAY)


def test_excluded_column_headers_refused_so_rows_and_the_file_stay_right() -> None:
    with pytest.raises(rp.ReportRequestError, match="column row") as caught:
        _request(report_request={"ExcludeColumnHeaders": True})
    assert caught.value.field == "report_request.ExcludeColumnHeaders"
    rp.check_report_request(_request(report_request={"ExcludeColumnHeaders": False}), today=TODAY)


def test_complete_data_for_a_period_that_includes_today_refused() -> None:
    request = _request(date_from=None, date_to=None, predefined_time="Today", return_only_complete_data=True)
    _refused(request, 2005, "return_only_complete_data", "never complete")


def test_future_start_refused() -> None:
    _refused(_request(date_from="2026-11-16", date_to="2026-11-17"), 2041, "date_from", "in the future")
    rp.check_report_request(_request(date_from="2026-11-15", date_to="2026-11-15"), today=TODAY)


def test_report_name_cut_to_200_but_a_given_longer_one_refused() -> None:
    assert len(_request(report_name="t" * 250)["ReportName"]) == 200
    _refused(_request(report_request={"ReportName": "n" * 201}), 2006, "report_request", "201 characters")


def test_formats_other_than_csv_refused_before_submitting() -> None:
    for fmt in ("Tsv", "Xml"):
        with pytest.raises(rp.ReportRequestError, match=fmt) as caught:
            _request(report_request={"Format": fmt})
        assert caught.value.field == "report_request.Format"


@pytest.mark.parametrize(
    ("report_type", "aggregation", "oldest"),
    [
        ("CampaignPerformanceReportRequest", "Daily", datetime.date(2023, 11, 15)),
        ("CampaignPerformanceReportRequest", "Hourly", datetime.date(2026, 5, 15)),
        ("SearchQueryPerformanceReportRequest", "Hourly", datetime.date(2026, 10, 15)),
        ("GeographicPerformanceReportRequest", "Hourly", datetime.date(2026, 11, 1)),
        ("PublisherUsagePerformanceReportRequest", "Hourly", datetime.date(2026, 9, 15)),
        ("BudgetSummaryReportRequest", "Daily", datetime.date(2024, 11, 15)),
        ("ShareOfVoiceReportRequest", "Monthly", datetime.date(2026, 5, 15)),
        ("CallDetailReportRequest", "Yearly", datetime.date(2026, 5, 15)),
    ],
)
def test_retention_by_report_type_and_aggregation(report_type: str, aggregation: str, oldest: datetime.date) -> None:
    """Microsoft's 'Reporting data retention time periods' table, not 6/36 months for all."""
    assert retention_start(report_type, aggregation, TODAY) == oldest
    day = datetime.timedelta(days=1)
    ok = _request(report_type=report_type, aggregation=aggregation, date_from=oldest, date_to=TODAY)
    rp.check_report_request(ok, today=TODAY)
    old = _request(report_type=report_type, aggregation=aggregation, date_from=oldest - day, date_to=TODAY)
    _refused(old, None, "date_from", f"nothing before {oldest}")


# ----------------------------------------------------------------------------------------- dates


def _utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


def test_zero_length_interval_means_the_last_complete_day() -> None:
    """Airflow 3's @daily (CronTriggerTimetable): the run at D 00:00 asks for D-1, not D."""
    run = _utc(2026, 11, 2)
    assert default_dates(run, run) == (datetime.date(2026, 11, 1),) * 2
    assert default_dates(None, None, run_time=_utc(2026, 11, 2, 5, 30)) == (datetime.date(2026, 11, 1),) * 2


def test_zero_length_interval_in_the_dags_time_zone() -> None:
    """A DAG in America/Los_Angeles runs at local midnight (08:00 UTC): yesterday there, not 'today' in UTC."""
    la = pendulum.timezone("America/Los_Angeles")
    run = _utc(2026, 11, 2, 8)
    assert default_dates(run, run, zone=la) == (datetime.date(2026, 11, 1),) * 2
    assert default_dates(run, run) == (datetime.date(2026, 11, 1),) * 2  # in UTC it is 11-02 08:00 too


def test_real_interval_gives_its_own_days_in_the_zone() -> None:
    la = pendulum.timezone("America/Los_Angeles")
    start, end = _utc(2026, 11, 1, 7), _utc(2026, 11, 2, 8)  # 11-01 00:00 PDT .. 11-02 00:00 PST
    assert default_dates(start, end, zone=la) == (datetime.date(2026, 11, 1),) * 2
    assert default_dates(_utc(2026, 11, 1), _utc(2026, 11, 8)) == (
        datetime.date(2026, 11, 1),
        datetime.date(2026, 11, 7),
    )


def test_hourly_takes_the_day_of_the_last_complete_hour() -> None:
    assert (
        default_dates(None, None, run_time=_utc(2026, 11, 2, 5, 30), aggregation="Hourly")
        == (datetime.date(2026, 11, 2),) * 2
    )
    assert (
        default_dates(None, None, run_time=_utc(2026, 11, 2), aggregation="Hourly") == (datetime.date(2026, 11, 1),) * 2
    )


def test_report_time_zone_mapping_names_are_microsofts() -> None:
    """Every mapped name is a value of Microsoft's ReportTimeZone enum (as the msads SDK lists it)."""
    from airflow_provider_msads.testing.emulator import _reporting_catalogue as sdk

    assert set(REPORT_TIME_ZONES.values()) <= set(sdk.TIME_ZONES)
    assert report_time_zone(pendulum.timezone("America/Los_Angeles")) == "PacificTimeUSCanadaTijuana"
    assert report_time_zone(pendulum.timezone("UTC")) == rp.DEFAULT_TIME_ZONE
    assert report_time_zone(pendulum.timezone("Asia/Kathmandu")) == rp.DEFAULT_TIME_ZONE
    assert report_time_zone(None) == rp.DEFAULT_TIME_ZONE
    for iana in REPORT_TIME_ZONES:  # every key is a real IANA zone
        pendulum.timezone(iana)


# ----------------------------------------------------------------------------------------- codes


# Section 2000 of Microsoft's "Operation error codes" page, as published (code -> symbolic name).
SECTION_2000 = {
    2001: "ReportingServiceNullReportRequest",
    2002: "ReportingServiceUnknownReportType",
    2003: "ReportingServiceAccountNotAuthorized",
    2004: "ReportingServiceNoCompleteDataAvaliable",
    2005: "ReportingServiceInvalidDataAvailabilityAndTimePeriodCombination",
    2006: "ReportingServiceInvalidReportName",
    2007: "ReportingServiceInvalidReportAggregation",
    2008: "ReportingServiceInvalidReportTimeSelection",
    2009: "ReportingServiceInvalidCustomDateRangeStart",
    2010: "ReportingServiceInvalidCustomDateRangeEnd",
    2011: "ReportingServiceEndDateBeforeStartDate",
    2012: "ReportingServiceEmptyCustomDates",
    2013: "ReportingServiceCustomDatesOverlimit",
    2014: "ReportingServiceNullColumns",
    2015: "ReportingServiceRequiredColumnsNotSelected",
    2016: "ReportingServiceDuplicateColumns",
    2017: "ReportingServiceNoMeasureSelected",
    2018: "ReportingServiceInvalidAccountIdInCampaignReportScope",
    2019: "ReportingServiceInvalidCampaignIdInCampaignReportScope",
    2020: "ReportingServiceInvalidAccountIdInAdGroupReportScope",
    2021: "ReportingServiceInvalidCampaignIdInAdGroupReportScope",
    2022: "ReportingServiceInvalidAdGroupIdInAdGroupReportScope",
    2023: "ReportingServiceInvalidAccountIdInAccountReportScope",
    2024: "ReportingServiceNullCampaignReportScope",
    2025: "ReportingServiceNullAdGroupReportScope",
    2026: "ReportingServiceInvalidAccountReportScope",
    2027: "ReportingServiceInvalidAccountThruCampaignReportScope",
    2028: "ReportingServiceInvalidAccountThruAdGroupReportScope",
    2029: "ReportingServiceAccountsOverLimit",
    2030: "ReportingServiceMaximumCampaignsLimitReached",
    2031: "ReportingServiceAdGroupsOverLimit",
    2032: "ReportingServiceCrossSiteScriptNotAllowed",
    2033: "ReportingServiceInvalidKeywordFilterValue",
    2034: "ReportingServiceInvalidTimePeriodColumnForSummaryReport",
    2035: "ReportingServiceInvalidAccountIds",
    2038: "ReportingServiceSiteIdMaxArraySizeReached",
    2039: "ReportingServiceInvalidSiteIdValue",
    2040: "ReportingServiceInvalidCustomDateRange",
    2041: "ReportingServiceInvalidFutureStartDate",
    2042: "InvalidSearchQueryFilterValue",
    2043: "SearchQueryFilterValueLengthExceeded",
    2044: "SearchQueryOverLimit",
    2045: "KeywordFilterValueLengthExceeded",
    2046: "KeywordOverLimit",
    2047: "GoalIdMaxArraySizeReached",
    2048: "TacticIdMaxArraySizeReached",
    2049: "ChannelIdMaxArraySizeReached",
    2050: "ThirdPartyCampaignIdMaxArraySizeReached",
    2051: "ThirdPartyAdGroupIdMaxArraySizeReached",
    2052: "InvalidGrainForQualityScoreColumns",
    2053: "InvalidGrainForImpressionShareColumns",
    2054: "InvalidGrainForHistoricalQualityScoreColumns",
    2057: "FilterValueBatchSizeOverLimit",
    2058: "FilterValueOverLimit",
    2059: "UnsuportedTimeGrain",
    2060: "InvalidFilterOrScopeValue",
    2061: "InvalidSortColumn",
    2100: "ReportingServiceInvalidReportId",
    2101: "ReportingServiceReportNotFound",
}


def test_catalogue_has_every_code_of_section_2000_by_its_real_name() -> None:
    assert {code: REPORTING_CATALOGUE[code].name for code in SECTION_2000} == SECTION_2000
    assert set(REPORTING_CATALOGUE) == {100, *SECTION_2000}
    assert [c for c, e in REPORTING_CATALOGUE.items() if e.retryable] == [2004]


def _reporting(answers: list[httpx.Response]) -> tuple[Reporting, httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    policy = RetryPolicy(attempts=6, backoff_base=0.001, backoff_max=0.002, total_budget=300.0)
    return Reporting("https://reporting.example/Reporting/v13", retry=policy, sleep=lambda _s: None), client, seen


def _fault(code: int, name: str, details: str = "") -> httpx.Response:
    return httpx.Response(
        400,
        json={
            "TrackingId": "trk-9",
            "Type": "ApiFaultDetail",
            "BatchErrors": [],
            "OperationErrors": [{"Code": code, "ErrorCode": name, "Message": "m", "Details": details}],
        },
    )


@pytest.mark.parametrize("code", sorted(SECTION_2000))
def test_every_code_explained_with_its_name_field_and_fix(code: int) -> None:
    service, client, seen = _reporting([_fault(code, SECTION_2000[code], "Clicks")])
    with pytest.raises(rp.ReportingError) as caught:
        service.submit(client, _request())
    err = caught.value
    entry = REPORTING_CATALOGUE[code]
    assert f"error {code} {SECTION_2000[code]}" in str(err)
    assert err.field == entry.field and f"Fix: {entry.remedy}" in str(err)
    assert "tracking id trk-9" in str(err)
    assert err.retryable is (code == 2004)
    assert len(seen) == 1  # none retried in the call: 2004 is for the task's retries (hours, not seconds)


def test_2004_says_when_to_expect_data_and_dead_ids_are_recognised() -> None:
    service, client, _ = _reporting([_fault(2004, SECTION_2000[2004])])
    with pytest.raises(rp.ReportingError) as caught:
        service.submit(client, _request(return_only_complete_data=True))
    assert "about 3 hours" in str(caught.value) and caught.value.retryable
    for code in (2100, 2101):
        service, client, _ = _reporting([_fault(code, SECTION_2000[code])])
        with pytest.raises(rp.ReportingError) as dead:
            service.poll(client, "123")
        assert is_dead_report_id(dead.value) and not dead.value.retryable
    assert not is_dead_report_id(caught.value)


def test_poll_schedule_starts_short_and_backs_off_to_the_interval() -> None:
    assert [poll_delay(n, 60.0) for n in range(1, 8)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    assert [poll_delay(n, 0.1) for n in (1, 2)] == [0.1, 0.1]
    assert poll_delay(10_000, 300.0) == 300.0


# ----------------------------------------------------------------------------------------- resume


def test_resume_state_opens_only_for_its_task_connection_and_request() -> None:
    fp = fingerprint(_request(), "msads_default")
    seal = ResumeSeal("the client secret", "msads_default", "client-id", "state-key-A")
    sealed = seal.seal("4242", fp, now=1000.0)
    state, why = seal.open(sealed, fp, now=2000.0)
    assert state is not None and state.request_id == "4242" and why == "ok"
    # Forged: whoever may write Variables but does not know the client secret.
    forged = json.loads(sealed)
    forged["state"] = forged["state"].replace("4242", "9999")
    assert seal.open(json.dumps(forged), fp, now=2000.0)[0] is None
    other_key = ResumeSeal("a guessed secret", "msads_default", "client-id", "state-key-A").seal("9999", fp, now=1000.0)
    assert "seal does not match" in seal.open(other_key, fp, now=2000.0)[1]
    # Copied from another task instance (same connection): refused.
    other_task = ResumeSeal("the client secret", "msads_default", "client-id", "state-key-B")
    assert other_task.open(sealed, fp, now=2000.0)[0] is None
    # Another request (arguments changed), too old, or from the future: refused.
    assert "different arguments" in seal.open(sealed, "other", now=2000.0)[1]
    assert seal.open(sealed, fp, now=1000.0 + RESUME_MAX_AGE + 1)[0] is None
    assert seal.open(sealed, fp, now=0.0)[0] is None
    # The pre-seal plain format is not trusted.
    plain = json.dumps({"request_id": "9999", "submitted_at": 1000.0, "fingerprint": fp})
    assert seal.open(plain, fp, now=2000.0)[0] is None
