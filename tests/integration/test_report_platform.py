"""The report operator for a data platform: every account, typed Parquet, the Asset event.

Against the emulator's Reporting over a real socket, with real files; the Asset event under
``dag.test()`` in the real metastore. Its OpenLineage facets: test_report_lineage.py.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _support.dags import report_operator
from _support.fakes import FakeTI

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

pytestmark = pytest.mark.integration

COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Ctr", "Spend"]
EXAMPLE = Path(__file__).resolve().parents[2] / "dags_example" / "msads_report_assets_example.py"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")


def _operator(destination: str, **changes: Any) -> MicrosoftAdsReportOperator:
    return report_operator(destination, **{"columns": COLUMNS, **changes})


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8"), newline="")))


# ------------------------------------------------------------------------------------ every account


def test_all_accounts_in_one_request(msads_emulator, report_conn, tmp_path: Path):
    extra = [msads_emulator.add_account(), msads_emulator.add_account(status="Pause")]
    result = _operator(str(tmp_path / "all.csv"), account_ids="all").execute({"ti": FakeTI()})
    report = msads_emulator.reports[result["report_request_id"]]
    assert sorted(report.account_ids) == sorted([msads_emulator.account.id, *(a.id for a in extra)])
    rows = _rows(tmp_path / "all.csv")
    assert rows[0] == COLUMNS and result["rows"] == len(rows) - 1 > 0
    assert {r[1] for r in rows[1:]} == {msads_emulator.account.id, *(a.id for a in extra)}


def test_more_than_1000_accounts_are_batched_into_one_file(msads_emulator, report_conn, tmp_path: Path):
    """1,001 accounts: two requests (1,000 + 1), one CSV with the column row once."""
    added = [msads_emulator.add_account().id for _ in range(1000)]
    result = _operator(str(tmp_path / "all.csv"), account_ids="all", date_to="2026-10-01").execute({"ti": FakeTI()})
    assert msads_emulator.report_submits == 2 and len(result["report_request_ids"]) == 2
    sizes = [len(msads_emulator.reports[i].account_ids) for i in result["report_request_ids"]]
    assert sizes == [1000, 1]
    rows = _rows(tmp_path / "all.csv")
    assert rows.count(COLUMNS) == 1 and rows[0] == COLUMNS
    assert result["rows"] == len(rows) - 1
    assert {r[1] for r in rows[1:]} == {msads_emulator.account.id, *added}


# ------------------------------------------------------------------------------------ parquet


def test_parquet_output_is_typed_and_its_schema_in_the_xcom(msads_emulator, report_conn, tmp_path: Path):
    target = tmp_path / "out" / "campaign.parquet"
    result = _operator(str(target), output_format="parquet").execute({"ti": FakeTI()})
    table = pq.read_table(target)
    assert result["path"] == str(target) and result["format"] == "parquet"
    assert result["rows"] == table.num_rows > 0 and result["bytes"] == target.stat().st_size
    assert table.schema.names == COLUMNS
    assert table.schema.field("TimePeriod").type == pa.date32()
    assert table.schema.field("Impressions").type == pa.int64()
    assert table.schema.field("Ctr").type == pa.float64()
    ctr = [v for v in table.column("Ctr").to_pylist() if v is not None]
    assert ctr and all(0.0 <= v <= 1.0 for v in ctr)  # 3.96% is 0.0396
    assert {"name": "Impressions", "type": "int64", "kind": "integer"} in result["schema"]
    assert [p.name for p in target.parent.iterdir()] == ["campaign.parquet"]  # no temporary left


def test_empty_report_as_parquet_keeps_the_types(msads_emulator, report_conn, tmp_path: Path):
    msads_emulator.configure_next_report(rows=0)
    result = _operator(str(tmp_path / "e.parquet"), output_format="parquet").execute({"ti": FakeTI()})
    table = pq.read_table(tmp_path / "e.parquet")
    assert result["rows"] == table.num_rows == 0
    assert table.schema.field("Spend").type == pa.float64()


def test_parquet_with_gzip_or_an_unknown_format_is_refused_before_submitting(msads_emulator, report_conn, tmp_path):
    from airflow.providers.common.compat.sdk import AirflowFailException

    for changes, words in [
        ({"output_format": "parquet", "compression": "gzip"}, "compression"),
        ({"output_format": "xlsx"}, "output_format"),
    ]:
        with pytest.raises(AirflowFailException) as caught:
            _operator(str(tmp_path / "x"), **changes).execute({"ti": FakeTI()})
        assert f"Field: {words}" in str(caught.value)
    assert msads_emulator.report_submits == 0


# ------------------------------------------------------------------------------------ the Asset


def test_asset_uri_is_given_or_derived_from_the_destination():
    from airflow import __version__

    derived = _operator("s3://aws_conn@bucket/msads/campaign/{{ ds }}.csv")
    if __version__.startswith("3.0."):  # its dag.test() fails on unregistered outlets: only asset= declares one
        assert derived.report_asset_uri is None and derived.outlets == []
    else:
        assert derived.report_asset_uri == "s3://bucket/msads/campaign"
        assert [o.uri for o in derived.outlets] == ["s3://bucket/msads/campaign"]
    given = _operator("/data/{{ ds }}.csv", asset="s3://lake/msads/campaign_daily")
    assert [o.uri for o in given.outlets] == ["s3://lake/msads/campaign_daily"]
    assert _operator("/data/{{ ds }}.csv", asset=False).outlets == []
    assert _operator("{{ params.out }}/x.csv").outlets == []  # nothing stable: pass asset=


def _asset_events() -> list[Any]:
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetEvent as Event
    except ImportError:  # Airflow 2.11
        from airflow.models.dataset import DatasetEvent as Event  # type: ignore[no-redef]
    with create_session() as session:
        events = session.query(Event).all()
        for event in events:
            session.expunge(event)
    return events


def _registered(bag: Any) -> None:
    """What the DAG processor does before any run: write the DAGs (and the Assets they produce and
    consume) to the metastore, which records events only for known Assets and queues their consumers."""
    from airflow import __version__ as airflow_version

    if airflow_version.startswith("2."):
        from airflow.models.dag import DAG

        DAG.bulk_write_to_db(list(bag.dags.values()))
    else:
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        try:
            from airflow.dag_processing.dagbag import sync_bag_to_db
        except ImportError:
            try:  # Airflow 3.1
                from airflow.models.dagbag import sync_bag_to_db
            except ImportError:  # Airflow 3.0
                sync_bag_to_db = None
        if sync_bag_to_db is None:
            bag.sync_to_db("dags-folder", None)
        else:
            sync_bag_to_db(bag, "dags-folder", None)
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:  # deployed DAGs are unpaused; only those are queued
        session.query(DagModel).filter(DagModel.dag_id.in_(list(bag.dags))).update(
            {DagModel.is_paused: False}, synchronize_session=False
        )


def _queued_for(dag_id: str) -> int:
    """Rows the scheduler turns into an Asset-triggered run of ``dag_id``."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetDagRunQueue as Queue
    except ImportError:  # Airflow 2.11
        from airflow.models.dataset import DatasetDagRunQueue as Queue  # type: ignore[no-redef]
    with create_session() as session:
        return session.query(Queue).filter_by(target_dag_id=dag_id).count()


def _install_example(dags_folder: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from _support.dags import dagbag_class

    monkeypatch.setenv("MSADS_EXAMPLE_DATA_DIR", str(out))
    shutil.copy(EXAMPLE, dags_folder / EXAMPLE.name)
    bag = dagbag_class()(dag_folder=str(dags_folder / EXAMPLE.name))
    assert not bag.import_errors, bag.import_errors
    return bag


def test_example_producer_records_the_asset_event_and_the_consumer_reads_it(
    dags_folder: Path, msads_emulator, report_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    before = len(_asset_events())
    extra_account = msads_emulator.add_account()
    msads_emulator.configure_next_report(pending_polls=0)  # ready at the trigger's first poll
    out = tmp_path / "lake"
    bag = _install_example(dags_folder, out, monkeypatch)
    consumer = bag.get_dag("msads_report_consumer")
    producer = bag.get_dag("msads_report_producer")
    # The consumer is scheduled on the very Asset the producer's task declares.
    declared = producer.task_dict["campaign_daily"].outlets
    assert [a.uri for a in declared] == [f"file://{out.resolve()}/msads_data/campaign_daily"]
    schedule_uris = {getattr(a, "uri", None) for a in _schedule_assets(consumer)}
    assert schedule_uris == {declared[0].uri}

    _registered(bag)
    run = producer.test()
    assert str(run.state) == "success"
    events = _asset_events()[before:]
    assert len(events) == 1
    event = events[0]
    extra = dict(event.extra)
    report = msads_emulator.reports[extra["report_request_id"]]
    assert (extra["date_from"], extra["date_to"]) == (report.start.isoformat(), report.end.isoformat())
    # The file is named after the day it holds (on Airflow 3 the run's data interval has zero
    # length at midnight, so its start is the day after the data).
    assert extra["date_from"] == extra["date_to"]
    assert extra["path"] == str(out.resolve() / "msads_data" / "campaign_daily" / f"{extra['date_to']}.csv")
    assert extra["rows"] > 0 and extra["bytes"] == Path(extra["path"]).stat().st_size
    assert extra["report_request_id"] in msads_emulator.reports
    assert extra["complete"] is True  # yesterday, and Microsoft's header said so
    assert _queued_for("msads_report_consumer") == 1  # the scheduler's cue to run the loader
    assert sorted(msads_emulator.reports[extra["report_request_id"]].account_ids) == sorted(
        [msads_emulator.account.id, extra_account.id]
    )

    # What the consumer's task does with it (its dag.test() run has no triggering event to read).
    landed = _landed_files(event)
    assert landed[0]["path"] == extra["path"] and landed[0]["lines"] == extra["rows"]


def _schedule_assets(dag: Any) -> list[Any]:
    condition = getattr(dag, "timetable", None)
    condition = getattr(condition, "asset_condition", None) or getattr(condition, "dataset_condition", None)
    objects = getattr(condition, "objects", None)
    return list(objects) if objects is not None else [condition]


def _landed_files(event: Any) -> list[dict[str, Any]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("msads_report_assets_example_test", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.landed_files({"asset": [event]})


MAPPED_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_msads.compat.assets import asset_class
from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

CAMPAIGN = asset_class()("file://{out}/campaign")


@task
def per_account(ds=None):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    return [
        {{"account_ids": [a.id], "destination": f"{out}/campaign/{{ds}}/{{a.id}}.csv"}}
        for a in MicrosoftAdsHook().list_accounts(statuses=("Active",))
    ]


with DAG(dag_id="msads_per_account", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    MicrosoftAdsReportOperator.partial(
        task_id="campaign_per_account",
        report_type="CampaignPerformanceReportRequest",
        columns=["TimePeriod", "AccountId", "CampaignId", "Impressions", "Clicks", "Spend"],
        date_from="2026-10-01",
        date_to="2026-10-01",
        poll_interval=0.01,
        asset=CAMPAIGN,
        outlets=[CAMPAIGN],
    ).expand_kwargs(per_account())
"""


def test_the_readme_per_account_mapped_pattern_gives_a_file_and_an_event_per_account(
    dags_folder: Path, msads_emulator, report_conn, tmp_path: Path
):
    second = msads_emulator.add_account()
    msads_emulator.add_account(status="Pause")  # filtered out by statuses=("Active",)
    path = dags_folder / "msads_per_account.py"
    path.write_text(MAPPED_DAG.format(out=tmp_path))
    before = len(_asset_events())
    from _support.dags import dagbag_class

    bag = dagbag_class()(dag_folder=str(path))
    _registered(bag)
    run = bag.get_dag("msads_per_account").test()
    assert str(run.state) == "success"
    written = sorted(p.stem for p in tmp_path.glob("campaign/*/*.csv"))
    assert written == sorted([msads_emulator.account.id, second.id])
    events = _asset_events()[before:]
    assert sorted(Path(e.extra["path"]).stem for e in events) == written
