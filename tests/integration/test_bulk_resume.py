"""Bulk downloads that survive a failed try and wait as one set (issue 26, the finishing round).

A retry resumes each account's DownloadRequestId the earlier try submitted (sealed Variables, bound
to the try), so Microsoft is not asked twice; 4204 on submit waits as Microsoft says and goes on;
a deferrable task submits every account and waits for all of them in one deferral.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _support.dags import load_dag
from _support.fakes import FakeTI as _FakeTI

from airflow_provider_msads.operators.bulk import MicrosoftAdsBulkDownloadOperator

pytestmark = pytest.mark.integration

ENTITIES = ["Campaigns", "AdGroups", "Keywords"]

DAG = textwrap.dedent(
    """
    import datetime

    import pendulum
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_msads.operators.bulk import MicrosoftAdsBulkDownloadOperator

    with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        MicrosoftAdsBulkDownloadOperator(
            task_id="entities",
            entities={entities!r},
            destination="{destination}",
            account_ids={accounts!r},
            delta=False,
            poll_interval=0.01,
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )
    """
)


FakeTI = functools.partial(_FakeTI, dag_id="bulk_dag", task_id="entities")


def _saved_requests() -> list[str]:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Variable).filter(Variable.key.like("msads_bulk_request__%")).all()
        return [row.key for row in rows]


def _forget_saved_requests() -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Variable).filter(Variable.key.like("msads_bulk_%")).delete(synchronize_session=False)


def _ti(run: Any) -> Any:
    from airflow.utils.session import create_session

    with create_session() as session:
        return next(ti for ti in run.get_task_instances(session=session) if ti.task_id == "entities")


def test_dag_test_a_retry_resumes_every_account_without_submitting_again(
    dags_folder: Path, msads_emulator, bulk_conn, tmp_path: Path
) -> None:
    """Try 1: the first submit meets 4204 (waits the Retry-After, goes on), both accounts are
    submitted, then the file download fails (HTTP 500). Try 2 follows the same two requests."""
    _forget_saved_requests()
    other = msads_emulator.add_account(name="Second shop").id
    accounts = [msads_emulator.account.id, other]
    msads_emulator.inject(
        "bulk", "fault", code=4204, retry_after=0.01, operation="DownloadCampaignsByAccountIds"
    )  # Microsoft says up to 15 minutes; the Retry-After it sends is what is waited
    msads_emulator.inject("download", "status", status=500)
    path = dags_folder / "msads_bulk_resume.py"
    path.write_text(
        DAG.format(dag_id="msads_bulk_resume", entities=ENTITIES, destination=f"{tmp_path}/out", accounts=accounts)
    )
    run = load_dag(path, "msads_bulk_resume").test()
    assert str(run.state) == "success"
    assert _ti(run).try_number == 2, "the first try failed on the file download"
    assert msads_emulator.bulk.submits == 3, "two accounts and the one refused with 4204: the retry submitted none"
    assert len(msads_emulator.bulk.downloads) == 2
    assert not msads_emulator._injections["bulk"], "the 4204 was met and waited out"
    with (tmp_path / "out" / "keyword.csv").open(encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == 1 + 12 * 2
    assert _saved_requests() == [], "the saved requests are forgotten once the files are written"


def test_a_seal_of_another_try_or_a_dead_request_is_not_resumed(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    _forget_saved_requests()
    msads_emulator.bulk.configure_next_download(pending_polls=10_000)  # try 1's request
    msads_emulator.bulk.configure_next_download(pending_polls=50)  # try 3's: still running after its 0.05 s
    op = MicrosoftAdsBulkDownloadOperator(
        task_id="entities", entities=ENTITIES, destination=str(tmp_path / "a"), delta=False, poll_interval=0.01
    )
    op.timeout = 0.05
    with pytest.raises(AirflowException, match="not ready"):
        op.execute({"ti": FakeTI(1)})
    assert msads_emulator.bulk.submits == 1 and len(_saved_requests()) == 1
    with pytest.raises(AirflowException, match="not ready"):  # try 3 does not open try 1's seal
        op.execute({"ti": FakeTI(3)})
    assert msads_emulator.bulk.submits == 2
    op.timeout = 30
    result = op.execute({"ti": FakeTI(4)})  # try 4 opens try 3's: no new submit
    assert msads_emulator.bulk.submits == 2 and result["files"]["keyword"]["rows"] == 12


def test_resumed_ids_expire_with_microsofts_two_days(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    from airflow_provider_msads.bulk import resume

    assert 24 * 3600 < resume.BULK_RESUME_MAX_AGE < 2 * 24 * 3600
    seal = resume.seal("secret", "msads_default", "client", "key")
    old = seal.seal("id-1", "fp", now=0.0, try_number=1)
    state, why = seal.open(
        old, "fp", now=resume.BULK_RESUME_MAX_AGE + 1, try_number=2, max_age=resume.BULK_RESUME_MAX_AGE
    )
    assert state is None and "old" in why
    state, _ = seal.open(old, "fp", now=30 * 3600.0, try_number=2, max_age=resume.BULK_RESUME_MAX_AGE)
    assert state is not None and state.request_id == "id-1"  # a day and more: a report id would be gone


def test_deferrable_submits_every_account_and_waits_for_all_in_one_deferral(
    msads_emulator, bulk_conn, tmp_path: Path
) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    _forget_saved_requests()
    accounts = [msads_emulator.account.id] + [msads_emulator.add_account(name=f"Shop {n}").id for n in range(4)]
    op = MicrosoftAdsBulkDownloadOperator(
        task_id="entities",
        entities=ENTITIES,
        destination=str(tmp_path / "out"),
        account_ids=accounts,
        delta=False,
        deferrable=True,
        max_concurrency=2,
        poll_interval=0.01,
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": FakeTI()})
    trigger = deferred.value.trigger
    assert set(trigger.accounts) == set(accounts) and all(i["request_id"] for i in trigger.accounts.values())
    assert msads_emulator.bulk.submits == len(accounts)
    assert msads_emulator.bulk.file_downloads == 0, "nothing is downloaded before the wait"

    async def first() -> dict[str, Any]:
        return (await anext(trigger.run())).payload

    event = json.loads(json.dumps(asyncio.run(first())))  # as stored in the metastore
    assert event["status"] == "done" and {a["status"] for a in event["accounts"].values()} == {"Completed"}
    result = op.execute_complete({"ti": FakeTI()}, event)
    assert msads_emulator.bulk.submits == len(accounts), "after the wait, nothing is submitted again"
    assert set(result["accounts"]) == set(accounts)
    assert result["files"]["keyword"]["rows"] == 12 * len(accounts)
    assert all(result["accounts"][a]["requests"] == [trigger.accounts[a]["request_id"]] for a in accounts)


def test_deferrable_resumes_on_retry_before_deferring(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    _forget_saved_requests()
    args: dict[str, Any] = {
        "task_id": "entities",
        "entities": ENTITIES,
        "destination": str(tmp_path / "out"),
        "delta": False,
        "deferrable": True,
        "poll_interval": 0.01,
    }
    with pytest.raises(TaskDeferred) as one:
        MicrosoftAdsBulkDownloadOperator(**args).execute({"ti": FakeTI(1)})
    with pytest.raises(TaskDeferred) as two:  # the worker died after the wait: try 2
        MicrosoftAdsBulkDownloadOperator(**args).execute({"ti": FakeTI(2)})
    assert msads_emulator.bulk.submits == 1
    assert two.value.trigger.accounts == one.value.trigger.accounts


def test_bulk_link_expired_says_bulk(msads_emulator, bulk_conn, tmp_path: Path) -> None:
    from airflow_provider_msads.bulk.download import fetch_and_split
    from airflow_provider_msads.bulk.request import build_account_request
    from airflow_provider_msads.bulk.split import Splitter
    from airflow_provider_msads.errors import LinkExpiredError
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    hook = MicrosoftAdsHook()
    request_id = hook.submit_bulk_download(build_account_request(msads_emulator.account.id, ["Campaigns"]))
    status = hook.get_bulk_download_status(request_id)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=30)
    while not status.done and datetime.datetime.now() < deadline:
        status = hook.get_bulk_download_status(request_id)
    assert status.url
    msads_emulator.inject("download", "expired_link")
    splitter = Splitter(str(tmp_path))
    try:
        with pytest.raises(LinkExpiredError, match="Bulk result file link") as caught:
            fetch_and_split(status.url, splitter)
    finally:
        splitter.close()
    assert "report" not in str(caught.value)
