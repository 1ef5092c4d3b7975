"""The example DAGs parse, and run under ``dag.test()`` against the emulator over a real socket."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _support.dags import dagbag_class, load_dag, xcom_model, xcom_value

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_example"
HEALTH = "msads_token_health_check"
INGEST = "msads_ingestion_example"
ENTITIES = "msads_entities_example"


def _install(dags_folder: Path, name: str) -> Path:
    target = dags_folder / f"{name}.py"
    shutil.copy(EXAMPLES / f"{name}.py", target)
    return target


def _tis(run) -> dict[tuple[str, int], object]:
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = run.get_task_instances(session=session)
        for ti in tis:
            session.expunge(ti)
    return {(ti.task_id, ti.map_index): ti for ti in tis}


def _xcom(run, task_id: str, key: str, map_index: int = -1):
    from airflow.utils.session import create_session

    XComModel = xcom_model()

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key, map_index=map_index)
            .one_or_none()
        )
        return None if row is None else xcom_value(row)


def _without_airflow_30_test_supervisor_echo(output: str) -> str:
    """Drop Airflow 3.0's dag.test() supervisor debug lines that echo each mask_secret request.

    Airflow 3.0's dag.test() prints its in-process supervisor's debug log, which includes
    ``Sending request msg=MaskSecret(value=...)``: the very call that registers a secret prints it.
    3.3 does not print that debug log, and a deployed supervisor logs "(body omitted)". Only those
    lines are dropped, and only on 3.0; everything else our code and Airflow print is still checked.
    """
    from airflow import __version__ as airflow_version

    if not airflow_version.startswith("3.0."):
        return output
    return "\n".join(line for line in output.splitlines() if not ("Sending request" in line and "MaskSecret(" in line))


def _secrets(emulator, *extra: str) -> list[str]:
    return [
        emulator.app.client_secret,
        emulator.developer_token,
        *emulator.issued_refresh_tokens,
        *emulator.issued_access_tokens,
        *extra,
    ]


def test_example_dags_parse_without_importing_the_http_stack(airflow_db):
    """DAG parsing imports the operator and sensor modules; the hook, auth and trigger must stay unloaded."""
    code = (
        "import sys, json\n"
        "try:\n"
        "    from airflow.dag_processing.dagbag import DagBag\n"
        "except ImportError:\n"
        "    from airflow.models.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(EXAMPLES)!r})\n"
        "heavy = [m for m in ('airflow_provider_msads.hooks.msads', 'airflow_provider_msads.tokens.auth',\n"
        "         'airflow_provider_msads.triggers.msads', 'airflow_provider_msads.tokens.store', 'airflow_provider_msads.tokens.flow',\n"
        "         'airflow_provider_msads.reporting', 'airflow_provider_msads.triggers.reporting', 'pyarrow',\n"
        "         'airflow_provider_msads.bulk', 'airflow_provider_msads.triggers.bulk',\n"
        # OpenLineage (installed by [test]): only its listener, in a task, imports the client and facets.
        "         'openlineage', 'airflow.providers.openlineage.extractors',\n"
        "         'airflow.providers.common.compat.openlineage.facet')\n"
        "         if m in sys.modules]\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()},\n"
        "                  'dags': sorted(bag.dag_ids), 'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert info["dags"] == [ENTITIES, INGEST, "msads_report_consumer", "msads_report_producer", HEALTH]
    assert info["heavy"] == []


def test_dag_shapes(airflow_db):
    from datetime import timedelta

    bag = dagbag_class()(dag_folder=str(EXAMPLES))
    assert not bag.import_errors
    bag_health = bag.dags[HEALTH]
    # Airflow 2.11 names it schedule_interval
    schedule = bag_health.schedule if hasattr(bag_health, "schedule") else bag_health.schedule_interval
    assert schedule == timedelta(hours=12)
    assert bag_health.params["conn_ids"] == ["msads_default"]
    assert set(bag_health.task_dict) == {"connection_ids", "validate", "summary"}
    assert bag_health.task_dict["summary"].trigger_rule == "all_done"

    ingest = bag.dags[INGEST]
    guard = ingest.task_dict["credentials_guard"]
    assert guard.deferrable is True
    assert ingest.task_dict["fetch_accounts_info"].upstream_task_ids == {"credentials_guard"}
    report = ingest.task_dict["campaign_performance"]
    assert report.upstream_task_ids == {"credentials_guard"} and report.deferrable is True
    assert report.report_type == "CampaignPerformanceReportRequest" and report.retries == 3


def test_health_check_rotates_and_keeps_the_token(dags_folder: Path, msads_emulator, msads_conn):
    from _support.airflow_compat import cipher_for
    from airflow.models.variable import Variable

    dag = load_dag(_install(dags_folder, HEALTH), HEALTH)
    run = dag.test()
    assert str(run.state) == "success"
    assert msads_emulator.counters["token.refresh_token"] == 1
    assert msads_emulator.counters["api.GetUser"] == 1
    assert msads_emulator.counters["api.GetAccount"] == 1

    # The rotated refresh token is what the store keeps: the health check keeps it alive.
    blob = Variable.get("msads_token_store__msads_default")
    state = cipher_for(msads_conn).open(blob)
    assert state is not None
    assert state.refresh_token == msads_emulator.issued_refresh_tokens[-1] != msads_conn["extra"]["refresh_token"]

    report = _xcom(run, "validate", "report", map_index=0)
    assert report["ok"] is True
    assert report["refresh_token_rotated"] is True
    assert report["account"]["id"] == msads_emulator.account.id
    assert _xcom(run, "summary", "return_value") == {"healthy": ["msads_default"], "warnings": []}
    dumped = json.dumps(report)
    for secret in _secrets(msads_emulator):
        assert secret not in dumped


def test_health_check_names_what_to_redo_without_spending_retries(
    dags_folder: Path, msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch, capfd
):
    broken = msads_emulator.connection_dict()
    broken["password"] = msads_emulator.app.client_secret[:-4] + "Zz9Q"  # a wrong secret value
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_BROKEN", json.dumps(broken))

    dag = load_dag(_install(dags_folder, HEALTH), HEALTH)
    run = dag.test(run_conf={"conn_ids": ["msads_default", "msads_broken"]})
    assert str(run.state) == "failed"

    tis = _tis(run)
    good, bad, summary = tis[("validate", 0)], tis[("validate", 1)], tis[("summary", -1)]
    assert str(good.state) == "success"
    assert str(bad.state) == "failed"
    assert bad.max_tries >= 2, "the DAG gives retries for transient problems"
    assert bad.try_number == 1, "a wrong secret fails at once (AirflowFailException), retries are not spent"
    assert str(summary.state) == "failed"
    assert (good.rendered_map_index, bad.rendered_map_index) == ("msads_default", "msads_broken")
    assert msads_emulator.counters["token.refresh_token"] == 2  # one per connection, no retry

    report = _xcom(run, "validate", "report", map_index=1)
    assert report["ok"] is False and report["retryable"] is False
    verdict = report["verdicts"]["client_secret"]
    assert verdict["status"] == "failed"
    assert verdict["codes"] == [7000215]
    assert verdict["step"].startswith("Step 2")
    assert "Client Secret check failed" in report["summary"]
    dumped = json.dumps(report)
    for secret in _secrets(msads_emulator, broken["password"]):
        assert secret not in dumped

    # The summary task's failure tells a human which connection, which field, which step.
    captured = capfd.readouterr()
    logged = _without_airflow_30_test_supervisor_echo(captured.out + captured.err)
    assert "need a person" in logged
    assert "msads_broken: Client Secret check failed" in logged
    assert "Redo: Step 2" in logged
    for secret in _secrets(msads_emulator, broken["password"]):
        assert secret not in logged


def test_ingestion_example_guards_then_fetches(
    dags_folder: Path, msads_emulator, msads_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.triggers.msads import MicrosoftAdsCredentialsTrigger

    def no_sync_validation(self, **kwargs):
        raise AssertionError("the deferrable sensor must validate in the trigger, not on the worker")

    runs: list[dict] = []
    original_run = MicrosoftAdsCredentialsTrigger.run

    async def spy_run(self):
        runs.append(self.serialize()[1])
        async for event in original_run(self):
            yield event

    monkeypatch.setattr(MicrosoftAdsHook, "validate_credentials", no_sync_validation)
    monkeypatch.setattr(MicrosoftAdsCredentialsTrigger, "run", spy_run)

    conn = dict(msads_conn, extra={**msads_conn["extra"], "reporting_url": msads_emulator.reporting_url})
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    msads_emulator.configure_next_report(pending_polls=0)  # ready at the trigger's first poll

    monkeypatch.setenv("MSADS_EXAMPLE_DATA_DIR", str(tmp_path))
    dag = load_dag(_install(dags_folder, INGEST), INGEST)
    out = tmp_path / "out"
    run = dag.test(run_conf={"output_dir": "out"})
    assert str(run.state) == "success"
    assert runs == [{"msads_conn_id": "msads_default", "poke_interval": 300.0, "timeout": 21600.0}]

    # The report: the last complete day before the run plus the two lookback days, as CSV under output_dir.
    result = _xcom(run, "campaign_performance", "return_value")
    [csv_file] = (out / "campaign_performance").glob("*.csv")
    assert result["path"] == str(csv_file) and result["rows"] > 0
    submitted = msads_emulator.reports[result["report_request_id"]]
    assert (submitted.end - submitted.start).days == 2
    start, end = run.data_interval_start, run.data_interval_end
    assert submitted.end == (start.date() if end > start else start.date() - datetime.timedelta(days=1))
    assert submitted.end < datetime.datetime.now(datetime.timezone.utc).date()  # never the day just begun
    assert msads_emulator.downloads_with_credentials == 0

    report = _xcom(run, "credentials_guard", "return_value")
    assert report["ok"] is True and report["account"]["id"] == msads_emulator.account.id
    for secret in _secrets(msads_emulator):
        assert secret not in json.dumps(report)

    [written] = out.glob("accounts_info_*.json")
    assert _xcom(run, "fetch_accounts_info", "return_value") == str(written)
    accounts = json.loads(written.read_text())
    assert [a["Id"] for a in accounts] == [msads_emulator.account.id]
    # The guard refreshed once in the trigger; the fetch reused the shared access token.
    assert msads_emulator.counters["token.refresh_token"] == 1
    assert msads_emulator.counters["api.GetAccountsInfo"] == 1
    assert msads_emulator.report_submits == 1


@pytest.mark.parametrize("chosen", ["/etc/cron.d", "s3://aws_default@other-bucket/x", "../../elsewhere", "~", "a/../b"])
def test_ingestion_example_refuses_a_destination_chosen_by_whoever_triggers(dags_folder: Path, chosen: str):
    """The run parameter names a sub-folder only: the deployment decides where files may go."""
    import copy

    from airflow.exceptions import ParamValidationError

    dag = load_dag(_install(dags_folder, INGEST), INGEST)
    param = copy.deepcopy(dag.params).get_param("output_dir")
    with pytest.raises(ParamValidationError):
        param.resolve(chosen)
    assert param.resolve("team_a/daily") == "team_a/daily"


def test_entities_example_keeps_a_current_state_table(
    dags_folder: Path, msads_emulator, msads_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Full, then a delta with a changed keyword and a deleted campaign, merged into SQLite on Id."""
    import sqlite3

    from _support.emulator import FakeClock

    msads_emulator.clock = clock = FakeClock()
    msads_emulator.bulk.set_tree(campaigns=2, ad_groups_per_campaign=2, keywords_per_ad_group=3, ads_per_ad_group=1)
    msads_emulator.bulk.pending_polls = 0  # ready at the first status call: no 15 s wait between polls
    conn = dict(msads_conn, extra={**msads_conn["extra"], "bulk_url": msads_emulator.bulk_url})
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("MSADS_EXAMPLE_DATA_DIR", str(tmp_path))
    path = _install(dags_folder, ENTITIES)
    database = tmp_path / "msads_data" / "entities.sqlite"

    def table(name: str) -> dict[str, tuple[str, str]]:
        with sqlite3.connect(database) as db:
            return {r[0]: (r[1], r[2]) for r in db.execute(f'SELECT "Id", "Status", "Parent Id" FROM {name}')}

    assert str(load_dag(path, ENTITIES).test().state) == "success"
    assert len(table("keyword")) == 12 and len(table("campaign")) == 2
    clock.advance(60)
    keyword = msads_emulator.bulk.ids("Keyword")[0]
    campaign = msads_emulator.bulk.ids("Campaign")[1]
    msads_emulator.bulk.update_entity("Keyword", keyword, Status="Paused")
    msads_emulator.bulk.delete_entity("Campaign", campaign)
    clock.advance(60)

    run = load_dag(path, ENTITIES).test()
    assert str(run.state) == "success"
    assert _xcom(run, "entities", "return_value")["accounts"][msads_emulator.account.id]["full"] is False
    keywords = table("keyword")
    assert len(keywords) == 12 and keywords[keyword][0] == "Paused"
    assert set(table("campaign")) == set(msads_emulator.bulk.ids("Campaign")) - {campaign}
