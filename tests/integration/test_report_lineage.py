"""OpenLineage for the report operator (issue 19), through the real ``apache-airflow-providers-openlineage``.

A DAG with two report tasks (a local gzip file, an ``s3://conn@bucket/key`` in moto's S3 server) runs
under ``dag.test()`` in a child process whose Airflow has OpenLineage switched on with the client's
``file`` transport: the provider's plugin registers its listener there, as in a deployed task
process (the plugin decides at import whether OpenLineage is on, which this test process settled
long ago), and the listener (its default: a forked child per event, waited for) writes each event
it emits to a file. What the test reads is what a
lineage backend would receive: START and COMPLETE per task, their datasets named as OpenLineage's
naming spec has them, and none of the connection's secrets nor the access token the run got.

The provider is in the ``[test]`` extra: without it the listener test fails (ImportError), it never
skips. The other half of "optional": with the provider's import made to fail (and its package
hidden from Airflow's provider discovery), the operator module still imports and a report still
runs. That DAG parsing imports nothing of OpenLineage is checked with the example DAGs
(test_example_dags.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _support.s3 import S3Server

pytestmark = pytest.mark.integration


TESTS = Path(__file__).resolve().parents[1]
COLUMNS = ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"]
REPORT_TYPE = "CampaignPerformanceReportRequest"

LINEAGE_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

COMMON = dict(
    report_type={report_type!r},
    columns={columns!r},
    date_from="2026-10-01",
    date_to="2026-10-01",
    poll_interval=0.01,
    timeout=30,
)

with DAG(dag_id="msads_lineage", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    MicrosoftAdsReportOperator(task_id="to_file", destination={local!r}, compression="gzip", **COMMON)
    MicrosoftAdsReportOperator(task_id="to_s3", destination={s3!r}, **COMMON)
"""

RUN_DAG = """
import sys

from _support.dags import dagbag_class

bag = dagbag_class()(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("msads_lineage").test()
print("DAG RUN STATE:", run.state)
"""


def _child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    return env


def _run_with_openlineage(dag_file: Path, events: Path) -> subprocess.CompletedProcess[str]:
    transport = {"type": "file", "log_file_path": str(events / "event"), "append": False}
    return subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(dag_file)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=_child_env(
            AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(transport),
            AIRFLOW__OPENLINEAGE__NAMESPACE="msads-lineage-test",
            AIRFLOW__OPENLINEAGE__DISABLED="False",
            # The listener forks per event and waits for the child, killing it after this many
            # seconds (default 10): generous, so a loaded machine cannot drop an event.
            AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT="120",
        ),
    )


def _task_events(events: Path, task_id: str) -> dict[str, dict[str, Any]]:
    """The task's run events by type (START, COMPLETE, ...): one of each is expected."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(events.iterdir()):
        event = json.loads(path.read_text("utf-8"))
        if event.get("job", {}).get("name") == f"msads_lineage.{task_id}":
            assert event["eventType"] not in found, f"two {event['eventType']} events for {task_id}"
            found[event["eventType"]] = event
    return found


def _datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event.get(side) or []]


def test_real_openlineage_listener_names_the_report_and_the_files_without_secrets(
    msads_emulator, report_conn: dict, s3_conn: S3Server, dags_folder: Path, tmp_path: Path
):
    import airflow.providers.openlineage  # noqa: F401 - the [test] extra has it: fail here, never skip

    bucket = s3_conn.create_bucket("lake-lineage")
    local = tmp_path / "out" / "campaign.csv"
    dag_file = dags_folder / "msads_lineage.py"
    dag_file.write_text(
        LINEAGE_DAG.format(
            report_type=REPORT_TYPE,
            columns=COLUMNS,
            local=str(local),
            s3=s3_conn.url(bucket, "msads/campaign/2026-10-01.csv"),
        )
    )
    events = tmp_path / "events"
    events.mkdir()

    result = _run_with_openlineage(dag_file, events)
    assert "DAG RUN STATE: success" in result.stdout, result.stdout[-3000:] + result.stderr[-6000:]
    assert Path(f"{local}.gz").is_file()
    assert s3_conn.client().head_object(Bucket=bucket, Key="msads/campaign/2026-10-01.csv")["ContentLength"] > 0

    report = [("msads://reporting.api.bingads.microsoft.com", f"{msads_emulator.customer_id}/{REPORT_TYPE}")]
    expected = {
        # OpenLineage's naming spec: a local file is namespace "file", name its absolute path ...
        "to_file": [("file", f"{local}.gz")],
        # ... an S3 object is namespace s3://<bucket>, name its key; the connection id is no part of it.
        "to_s3": [("s3://lake-lineage", "msads/campaign/2026-10-01.csv")],
    }
    for task_id, outputs in expected.items():
        by_type = _task_events(events, task_id)
        assert {"START", "COMPLETE"} <= by_type.keys(), (task_id, sorted(by_type), result.stderr[-4000:])
        for event_type in ("START", "COMPLETE"):
            event = by_type[event_type]
            assert event["job"]["namespace"] == "msads-lineage-test"
            assert _datasets(event, "inputs") == report, (task_id, event_type)
            assert _datasets(event, "outputs") == outputs, (task_id, event_type)

    # Nothing secret in anything emitted: the connection's client secret, developer token and refresh
    # token (and any it rotated to), nor the access token the run was given.
    assert msads_emulator.issued_access_tokens, "the run got no access token: the check below would be empty"
    secrets = {
        "client secret": report_conn["password"],
        "developer token": report_conn["extra"]["developer_token"],
        "refresh token": report_conn["extra"]["refresh_token"],
        **{f"rotated refresh token {i}": t for i, t in enumerate(msads_emulator.issued_refresh_tokens)},
        **{f"access token {i}": t for i, t in enumerate(msads_emulator.issued_access_tokens)},
    }
    emitted = "\n".join(p.read_text("utf-8") for p in sorted(events.iterdir()))
    assert len(emitted) > 1000  # the events are there to search
    leaked = [what for what, value in secrets.items() if value and value in emitted]
    assert leaked == []


BLOCK_OPENLINEAGE = """
import importlib.abc
import importlib.metadata
import json
import sys

HIDDEN = {"apache-airflow-providers-openlineage", "openlineage-python", "openlineage-integration-common", "openlineage-sql"}


class NoOpenLineage(importlib.abc.MetaPathFinder):
    \"\"\"As if neither the provider nor the client were installed: their import fails ...\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "openlineage" or name.startswith("airflow.providers.openlineage"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def hide_distributions(module):
    \"\"\"... and Airflow's provider discovery (package metadata, entry points) finds no such package.\"\"\"
    real = module.distributions

    def distributions(**kwargs):
        for dist in real(**kwargs):
            if str(dist.metadata["Name"] or "").lower().replace("_", "-") not in HIDDEN:
                yield dist

    module.distributions = distributions


sys.meta_path.insert(0, NoOpenLineage())
hide_distributions(importlib.metadata)
try:
    import importlib_metadata
except ImportError:
    pass
else:
    hide_distributions(importlib_metadata)

from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

operator = MicrosoftAdsReportOperator(
    task_id="report",
    report_type="CampaignPerformanceReportRequest",
    columns=["TimePeriod", "AccountId", "CampaignId", "Impressions"],
    date_from="2026-10-01",
    date_to="2026-10-01",
    destination=sys.argv[1],
    poll_interval=0.01,
    timeout=30,
)


class TI:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "report", -1, 1

    def xcom_push(self, key, value):
        pass


result = operator.execute({"ti": TI()})
try:
    operator.get_openlineage_facets_on_complete(None)
    lineage = "built"
except ImportError:
    lineage = "ImportError"
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "openlineage" or "providers.openlineage" in m)
print(json.dumps({"rows": result["rows"], "path": result["path"], "lineage": lineage, "loaded": loaded}))
"""


def test_without_the_openlineage_provider_the_operator_imports_and_runs(
    msads_emulator, report_conn: dict, tmp_path: Path
):
    """The provider stays optional: with its import failing, the module imports and the report lands.
    (Only the listener calls the lineage methods, and there is no listener without the provider.)"""
    target = tmp_path / "no-lineage.csv"
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_OPENLINEAGE, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_child_env(),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["path"] == str(target) and outcome["rows"] > 0 and target.is_file()
    assert outcome["lineage"] == "ImportError"  # the blocker worked: nothing of OpenLineage was importable
    assert outcome["loaded"] == []


def test_facets_are_the_providers_types_and_a_sandbox_report_is_named_on_the_sandbox_host(
    msads_emulator, monkeypatch: pytest.MonkeyPatch, airflow_db, tmp_path: Path
):
    """What the listener's extractor receives, called directly: the provider's OperatorLineage with
    OpenLineage client Datasets; START names the file the task will write (``.gz`` added as the CSV
    writer adds it); a sandbox connection's report lives on the sandbox's host."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    from airflow_provider_msads.operators.reporting import MicrosoftAdsReportOperator

    conn = msads_emulator.connection_dict()
    conn["extra"]["environment"] = "sandbox"
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_SANDBOX", json.dumps(conn))
    operator = MicrosoftAdsReportOperator(
        task_id="report",
        msads_conn_id="msads_sandbox",
        report_type=REPORT_TYPE,
        columns=COLUMNS,
        destination=str(tmp_path / "campaign.csv"),
        compression="gzip",
    )
    lineage = operator.get_openlineage_facets_on_start()
    assert isinstance(lineage, OperatorLineage)
    assert all(type(d) is Dataset for d in [*lineage.inputs, *lineage.outputs])
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("msads://reporting.api.sandbox.bingads.microsoft.com", f"{msads_emulator.customer_id}/{REPORT_TYPE}")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", f"{tmp_path}/campaign.csv.gz")]
