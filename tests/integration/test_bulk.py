"""Bulk entity downloads end to end: MicrosoftAdsBulkDownloadOperator against the emulator's Bulk
service over a real socket, real files, the sealed Sync Time in real Airflow Variables."""

from __future__ import annotations

import csv
import functools
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _support.dags import load_dag
from _support.emulator import FakeClock
from _support.fakes import FakeTI as _FakeTI

from airflow_provider_msads.operators.bulk import MicrosoftAdsBulkDownloadOperator

pytestmark = pytest.mark.integration

ENTITIES = ["Campaigns", "AdGroups", "Keywords", "Ads"]


FakeTI = functools.partial(_FakeTI, dag_id="bulk_dag", task_id="entities")


def _rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _operator(tmp_path: Path, **kwargs: Any) -> MicrosoftAdsBulkDownloadOperator:
    args: dict[str, Any] = {"task_id": "entities", "entities": ENTITIES, "destination": str(tmp_path / "out")}
    args.update(kwargs)
    return MicrosoftAdsBulkDownloadOperator(poll_interval=0.01, **args)


def _forget_sync_times() -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Variable).filter(Variable.key.like("msads_bulk_sync__%")).delete(synchronize_session=False)


DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_msads.operators.bulk import MicrosoftAdsBulkDownloadOperator

    with DAG(dag_id="msads_bulk", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        MicrosoftAdsBulkDownloadOperator(
            task_id="entities",
            entities={entities!r},
            destination="{destination}",
            poll_interval=0.01,
        )
    """
)


def _result(run) -> dict[str, Any]:
    from _support.dags import xcom_model, xcom_value
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(xcom_model()).filter_by(run_id=run.run_id, task_id="entities", key="return_value").first()
        return xcom_value(row)


def test_dag_test_full_then_delta_with_a_changed_and_a_deleted_entity(
    dags_folder: Path, msads_emulator, bulk_conn, tmp_path: Path
) -> None:
    _forget_sync_times()
    clock: FakeClock = bulk_conn["clock"]
    path = dags_folder / "msads_bulk.py"
    path.write_text(DAG.format(entities=ENTITIES, destination=f"{tmp_path}/full"))
    run = load_dag(path, "msads_bulk").test()
    assert str(run.state) == "success"
    full = _result(run)
    account = msads_emulator.account.id
    assert full["accounts"][account]["full"] is True
    assert {"account", "campaign", "ad_group", "keyword", "responsive_search_ad"} <= set(full["files"])
    assert full["files"]["keyword"]["rows"] == 12 and full["files"]["campaign"]["rows"] == 2
    keyword_rows = _rows(full["files"]["keyword"]["path"])
    assert {"Id", "Parent Id", "Status", "Keyword"} <= set(keyword_rows[0])
    assert not list((tmp_path / "full").glob(".*"))  # no partial files left
    first_sync = full["accounts"][account]["sync_time"]

    clock.advance(60)
    keyword = msads_emulator.bulk.ids("Keyword")[0]
    campaign = msads_emulator.bulk.ids("Campaign")[1]
    msads_emulator.bulk.update_entity("Keyword", keyword, Status="Paused", Bid="1.10")
    msads_emulator.bulk.delete_entity("Campaign", campaign)
    clock.advance(60)

    path.write_text(DAG.format(entities=ENTITIES, destination=f"{tmp_path}/delta"))
    run = load_dag(path, "msads_bulk").test()
    assert str(run.state) == "success"
    delta = _result(run)
    assert delta["accounts"][account]["full"] is False
    sent = [d.request.get("LastSyncTimeInUTC") for d in msads_emulator.bulk.downloads.values()]
    assert sent[0] is None and sent[-1] is not None
    (changed,) = _rows(delta["files"]["keyword"]["path"])
    assert (changed["Id"], changed["Status"], changed["Bid"]) == (keyword, "Paused", "1.10")
    (deleted,) = _rows(delta["files"]["campaign"]["path"])
    assert (deleted["Id"], deleted["Status"]) == (campaign, "Deleted")  # deleted entities are kept
    assert delta["accounts"][account]["sync_time"] != first_sync
    assert msads_emulator.bulk.downloads_with_credentials == 0


def test_failed_full_sync_required_downloads_in_full_in_the_same_try(msads_emulator, bulk_conn, tmp_path: Path):
    _forget_sync_times()
    _operator(tmp_path).execute({"ti": FakeTI()})  # full: saves the Sync Time
    bulk_conn["clock"].advance(60)
    msads_emulator.bulk.configure_next_download(status="FailedFullSyncRequired")
    submits = msads_emulator.bulk.submits
    result = _operator(tmp_path, destination=str(tmp_path / "again")).execute({"ti": FakeTI()})
    assert msads_emulator.bulk.submits == submits + 2  # the delta, then the full download
    assert result["accounts"][msads_emulator.account.id]["full"] is True
    assert result["files"]["keyword"]["rows"] == 12


def test_a_forged_sync_time_is_not_used(msads_emulator, bulk_conn, tmp_path: Path):
    from airflow.models.variable import Variable

    _forget_sync_times()
    _operator(tmp_path).execute({"ti": FakeTI()})
    from airflow.utils.session import create_session

    with create_session() as session:
        (row,) = session.query(Variable).filter(Variable.key.like("msads_bulk_sync__%")).all()
        key, value = row.key, row.val
    forged = json.loads(value)
    forged["state"] = forged["state"].replace('"request_id":"', '"request_id":"0')  # a later time, say
    Variable.set(key, json.dumps(forged))
    bulk_conn["clock"].advance(60)
    result = _operator(tmp_path, destination=str(tmp_path / "two")).execute({"ti": FakeTI()})
    assert result["accounts"][msads_emulator.account.id]["full"] is True


def test_an_account_too_big_is_downloaded_by_campaign_ids(msads_emulator, bulk_conn, tmp_path: Path):
    _forget_sync_times()
    msads_emulator.bulk.keyword_limit = 5  # Microsoft's is four million
    result = _operator(tmp_path, delta=False).execute({"ti": FakeTI()})
    account = result["accounts"][msads_emulator.account.id]
    assert account["by_campaigns"] is True and len(account["requests"]) == 1
    assert result["files"]["keyword"]["rows"] == 12
    assert result["files"]["account"]["rows"] == 1


def test_parquet_is_typed(msads_emulator, bulk_conn, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _forget_sync_times()
    result = _operator(tmp_path, output_format="parquet", delta=False).execute({"ti": FakeTI()})
    path = result["files"]["keyword"]["path"]
    assert path.endswith("keyword.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 12
    assert table.schema.field("Id").type == pa.int64()
    assert table.schema.field("Bid").type == pa.float64()
    assert table.schema.field("Modified Time").type == pa.timestamp("ms", tz="UTC")
    account = pq.read_table(result["files"]["account"]["path"])
    assert account.schema.field("Sync Time").type == pa.timestamp("ms", tz="UTC")
    assert account.column("Id").to_pylist() == [int(msads_emulator.account.id)]


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(key) for key in value] + [k for item in value.values() for k in _keys(item)]
    if isinstance(value, list):
        return [k for item in value for k in _keys(item)]
    return []


def test_dag_test_deferrable_waits_in_the_triggerer_and_the_event_carries_the_rest(
    dags_folder: Path, msads_emulator, bulk_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msads.triggers.bulk import MicrosoftAdsBulkDownloadTrigger

    _forget_sync_times()
    events: list[dict[str, Any]] = []
    original = MicrosoftAdsBulkDownloadTrigger.run

    async def spy(self):
        async for event in original(self):
            events.append(event.payload)
            yield event

    monkeypatch.setattr(MicrosoftAdsBulkDownloadTrigger, "run", spy)
    msads_emulator.bulk.configure_next_download(pending_polls=2)
    path = dags_folder / "msads_bulk_deferred.py"
    dag_text = DAG.format(entities=ENTITIES, destination=f"{tmp_path}/deferred").replace(
        'dag_id="msads_bulk"', 'dag_id="msads_bulk_deferred"'
    )
    path.write_text(dag_text.replace("poll_interval=0.01,", "poll_interval=0.01, deferrable=True,"))
    run = load_dag(path, "msads_bulk_deferred").test()
    assert str(run.state) == "success"
    result = _result(run)
    account = msads_emulator.account.id
    (event,) = events
    assert event["status"] == "done" and event["accounts"][account]["status"] == "Completed"
    assert event["accounts"][account]["last_sync"] is None
    # The 5-minute download link never travels in the event: no key names one, no value is a URL.
    # (Not a substring test on the whole JSON: random request ids may contain "url".)
    assert not [key for key in _keys(event) if "url" in key.lower()]
    assert "://" not in json.dumps(event)
    assert result["accounts"][account]["requests"] == [event["accounts"][account]["request_id"]]
    assert msads_emulator.bulk.submits == 1 and result["files"]["keyword"]["rows"] == 12


def test_many_bulk_triggers_share_one_loop(msads_emulator, bulk_conn) -> None:
    """More concurrent triggers than the loop's default executor has threads; all finish."""
    import asyncio
    import concurrent.futures
    import os

    from airflow_provider_msads.bulk.request import build_account_request
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.triggers.bulk import MicrosoftAdsBulkDownloadTrigger

    hook = MicrosoftAdsHook()
    threads = min(32, (os.cpu_count() or 1) + 4)
    count = threads * 3
    account = msads_emulator.account.id
    ids = [hook.submit_bulk_download(build_account_request(account, ["Campaigns"])) for _ in range(count)]

    async def main() -> list[dict[str, Any]]:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=threads))

        async def first(request_id: str) -> dict[str, Any]:
            trigger = MicrosoftAdsBulkDownloadTrigger(
                accounts={account: {"request_id": request_id, "last_sync": None}}, poll_interval=0.01, timeout=60
            )
            return (await anext(trigger.run())).payload

        return await asyncio.wait_for(asyncio.gather(*(first(i) for i in ids)), timeout=120)

    events = asyncio.run(main())
    assert [e["status"] for e in events] == ["done"] * count
    assert {e["accounts"][account]["request_id"] for e in events} == set(ids)


def test_all_accounts_two_at_a_time_into_one_file_per_type(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    _forget_sync_times()
    others = [msads_emulator.add_account(name=f"Shop {n}").id for n in range(3)]
    result = _operator(tmp_path, account_ids="all", max_concurrency=2, delta=False).execute({"ti": FakeTI()})
    accounts = {msads_emulator.account.id, *others}
    assert set(result["accounts"]) == accounts
    assert all(a["full"] for a in result["accounts"].values())
    assert {r["Id"] for r in _rows(result["files"]["account"]["path"])} == accounts
    assert result["files"]["keyword"]["rows"] == 12 * len(accounts)
    assert msads_emulator.bulk.submits == len(accounts)


def test_trigger_times_out_and_reports_failures(msads_emulator, bulk_conn) -> None:
    import asyncio

    from airflow_provider_msads.bulk.request import build_account_request
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.triggers.bulk import MicrosoftAdsBulkDownloadTrigger

    account = msads_emulator.account.id
    msads_emulator.bulk.configure_next_download(pending_polls=10_000)
    request_id = MicrosoftAdsHook().submit_bulk_download(build_account_request(account, ["Campaigns"]))

    async def first(trigger: MicrosoftAdsBulkDownloadTrigger) -> dict[str, Any]:
        return (await anext(trigger.run())).payload

    def trigger(rid: str, timeout: float) -> MicrosoftAdsBulkDownloadTrigger:
        return MicrosoftAdsBulkDownloadTrigger(
            accounts={account: {"request_id": rid, "last_sync": None}}, poll_interval=0.01, timeout=timeout
        )

    late = asyncio.run(first(trigger(request_id, 0.05)))
    assert late["status"] == "timeout" and late["accounts"][account]["status"] == "InProgress"
    dead = asyncio.run(first(trigger("no-such-request", 60)))
    assert dead["status"] == "failed" and "3205" in dead["message"]
    path, kwargs = trigger(request_id, 1).serialize()
    assert path == "airflow_provider_msads.triggers.bulk.MicrosoftAdsBulkDownloadTrigger"
    assert set(kwargs) == {"accounts", "msads_conn_id", "poll_interval", "timeout", "started_at"}


def test_a_file_url_destination_goes_through_object_storage_publishing(msads_emulator, bulk_conn, tmp_path: Path):
    _forget_sync_times()
    result = _operator(tmp_path, destination=f"file://{tmp_path}/lake", delta=False).execute({"ti": FakeTI()})
    assert result["files"]["campaign"]["path"] == f"file://{tmp_path}/lake/campaign.csv"
    assert len(_rows(str(tmp_path / "lake" / "campaign.csv"))) == 2


def test_the_asset_event_says_per_account_full_or_delta(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    import types

    class Events:
        """``outlet_events`` as the operator uses it; keyed by URI (an Asset is unhashable on Airflow 3.0)."""

        def __init__(self) -> None:
            self.by_uri: dict[str, Any] = {}

        def __getitem__(self, key: Any) -> Any:
            return self.by_uri.setdefault(str(getattr(key, "uri", key)), types.SimpleNamespace(extra=None))

        def values(self) -> Any:
            return self.by_uri.values()

    _forget_sync_times()
    op = _operator(tmp_path, asset="file:///lake/msads/entities")
    assert [o.uri for o in op.outlets] == ["file:///lake/msads/entities"]
    events = Events()
    op.execute({"ti": FakeTI(), "outlet_events": events})
    bulk_conn["clock"].advance(60)
    later = Events()
    _operator(tmp_path, asset="file:///lake/msads/entities").execute({"ti": FakeTI(), "outlet_events": later})
    account = msads_emulator.account.id
    (first,) = events.values()
    (second,) = later.values()
    assert first.extra["accounts"][account]["full"] is True and second.extra["accounts"][account]["full"] is False
    assert first.extra["files"]["keyword"]["rows"] == 12 and "keyword" not in second.extra["files"]


def test_deferrable_leaves_a_too_big_account_to_the_worker_after_the_wait(
    msads_emulator, bulk_conn, tmp_path: Path
) -> None:
    import asyncio

    from airflow.providers.common.compat.sdk import TaskDeferred

    _forget_sync_times()
    main = msads_emulator.account.id
    big = msads_emulator.add_account(name="Big shop").id
    msads_emulator.bulk.set_tree(account_id=big, campaigns=3)  # 18 keywords, the others 12
    msads_emulator.bulk.keyword_limit = 15
    op = _operator(tmp_path, account_ids=[main, big], deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": FakeTI()})
    accounts = deferred.value.trigger.accounts
    assert accounts[main]["request_id"] and accounts[big]["request_id"] is None

    async def first() -> dict[str, Any]:
        return (await anext(deferred.value.trigger.run())).payload

    event = json.loads(json.dumps(asyncio.run(first())))  # as stored in the metastore
    result = _operator(tmp_path, account_ids=[main, big], deferrable=True).execute_complete({"ti": FakeTI()}, event)
    assert result["accounts"][big]["by_campaigns"] is True and result["accounts"][main]["by_campaigns"] is False
    assert result["files"]["keyword"]["rows"] == 12 + 18


def test_no_secret_in_any_output_of_a_bulk_run(
    dags_folder: Path, msads_emulator, bulk_conn, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog
) -> None:
    """Logs (DEBUG included), the result, the Asset event and the files of a deferred Bulk run carry
    no token learnt at run time; the connection's secrets only on Airflow's own ``MaskSecret(``
    lines of dag.test (see test_token_masking_debug.py for that quirk)."""
    import logging

    _forget_sync_times()
    caplog.set_level(logging.DEBUG)
    path = dags_folder / "msads_bulk_secrets.py"
    dag_text = DAG.format(entities=ENTITIES, destination=f"{tmp_path}/out").replace(
        'dag_id="msads_bulk"', 'dag_id="msads_bulk_secrets"'
    )
    path.write_text(dag_text.replace("poll_interval=0.01,", "poll_interval=0.01, deferrable=True,"))
    run = load_dag(path, "msads_bulk_secrets").test()
    assert str(run.state) == "success"
    result = _result(run)
    captured = capfd.readouterr()
    texts = [captured.out, captured.err, caplog.text, json.dumps(result)]
    texts += [p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()]
    typed_in = bulk_conn["conn"]["extra"]["refresh_token"]  # the connection's: Airflow's MaskSecret lines
    learnt = [t for t in msads_emulator.issued_access_tokens + msads_emulator.issued_refresh_tokens if t != typed_in]
    assert msads_emulator.issued_access_tokens  # the run did learn tokens
    for text in texts:
        for token in learnt:
            assert token not in text
        for secret in (msads_emulator.app.client_secret, typed_in):
            assert all("MaskSecret(" in line for line in text.splitlines() if secret in line)
