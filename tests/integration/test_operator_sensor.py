"""Operator, sensor and trigger: failure semantics, waiting through a re-authorization, async-only trigger."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _support.dags import load_dag

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.operators.msads import REPORT_XCOM_KEY, MicrosoftAdsValidateCredentialsOperator
from airflow_provider_msads.sensors.msads import MicrosoftAdsCredentialsSensor
from airflow_provider_msads.tokens.auth import clear_process_cache
from airflow_provider_msads.triggers.msads import MicrosoftAdsCredentialsTrigger

pytestmark = pytest.mark.integration

TRIGGER_PATH = "airflow_provider_msads.triggers.msads.MicrosoftAdsCredentialsTrigger"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADS_TOKEN_STORE", "memory")


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def _conn(monkeypatch: pytest.MonkeyPatch, emulator, **changes) -> dict:
    conn = emulator.connection_dict()
    for key, value in changes.items():
        if key == "password":
            conn["password"] = value
        else:
            conn["extra"][key] = value
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_DEFAULT", json.dumps(conn))
    return conn


def _secrets(emulator) -> list[str]:
    return [
        emulator.app.client_secret,
        emulator.developer_token,
        *emulator.issued_refresh_tokens,
        *emulator.issued_access_tokens,
    ]


# ------------------------------------------------------------------------------------ operator


def test_operator_init_only_stores_arguments(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    op = MicrosoftAdsValidateCredentialsOperator(task_id="v", msads_conn_id="nowhere", fail_on_warnings=True)
    assert (op.msads_conn_id, op.fail_on_warnings) == ("nowhere", True)
    assert "msads_conn_id" in op.template_fields
    sensor = MicrosoftAdsCredentialsSensor(task_id="s", msads_conn_id="nowhere", deferrable=True)
    assert sensor.deferrable is True


def test_operator_pushes_the_report_and_returns_it(msads_emulator, msads_conn):
    ti = FakeTI()
    result = MicrosoftAdsValidateCredentialsOperator(task_id="v").execute({"ti": ti})
    assert result["ok"] is True
    assert ti.xcom[REPORT_XCOM_KEY] == result
    for secret in _secrets(msads_emulator):
        assert secret not in json.dumps(result)


def test_permanent_failure_fails_without_retries(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    _conn(monkeypatch, msads_emulator, developer_token="NOTMYDEVTOKEN123")
    ti = FakeTI()
    with pytest.raises(AirflowFailException) as raised:
        MicrosoftAdsValidateCredentialsOperator(task_id="v").execute({"ti": ti})
    assert "Developer Token check failed" in str(raised.value)
    assert "Redo: Step 4" in str(raised.value)
    report = ti.xcom[REPORT_XCOM_KEY]
    assert report["ok"] is False and report["verdicts"]["developer_token"]["status"] == "failed"


def test_transient_failure_leaves_retries_to_airflow(msads_emulator, msads_conn):
    from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

    msads_emulator.inject("api", "fault", code=117, count=10, retry_after=0, operation="GetUser")
    with pytest.raises(AirflowException) as raised:
        MicrosoftAdsValidateCredentialsOperator(task_id="v").execute({"ti": FakeTI()})
    assert not isinstance(raised.value, AirflowFailException)
    assert "transient" in str(raised.value)


def test_warnings_fail_only_when_asked(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    from airflow.providers.common.compat.sdk import AirflowFailException

    _conn(monkeypatch, msads_emulator, account_id=msads_emulator.add_account(status="Pause").id)
    report = MicrosoftAdsValidateCredentialsOperator(task_id="v").execute({"ti": FakeTI()})
    assert report["ok"] is True
    assert [w["code"] for w in report["warnings"]] == ["account_not_active"]
    with pytest.raises(AirflowFailException, match=r"fail_on_warnings=True.*is Pause, not Active"):
        MicrosoftAdsValidateCredentialsOperator(task_id="v", fail_on_warnings=True).execute({"ti": FakeTI()})


# -------------------------------------------------------------------------------------- sensor


def test_sensor_poke(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    conn = _conn(monkeypatch, msads_emulator)
    sensor = MicrosoftAdsCredentialsSensor(task_id="s")
    done = sensor.poke({})
    assert done.is_done and done.xcom_value["ok"] is True

    msads_emulator.expire_all_refresh_tokens(700082)
    _conn(monkeypatch, msads_emulator, refresh_token=conn["extra"]["refresh_token"])
    clear_process_cache()
    assert sensor.poke({}).is_done is False


def test_sensor_defers_with_only_the_conn_id_and_timing():
    from airflow.providers.common.compat.sdk import TaskDeferred

    sensor = MicrosoftAdsCredentialsSensor(
        task_id="s", msads_conn_id="msads_x", deferrable=True, poke_interval=7, timeout=70
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert deferred.value.method_name == "execute_complete"
    path, kwargs = deferred.value.trigger.serialize()
    assert path == TRIGGER_PATH
    assert kwargs == {"msads_conn_id": "msads_x", "poke_interval": 7.0, "timeout": 70.0}


def test_sensor_resumes_from_trigger_events():
    from airflow.providers.common.compat.sdk import AirflowException, AirflowSensorTimeout, AirflowSkipException

    sensor = MicrosoftAdsCredentialsSensor(task_id="s", deferrable=True)
    report = {"ok": True, "summary": "msads_default: OK"}
    assert sensor.execute_complete({}, {"status": "success", "report": report}) == report
    with pytest.raises(AirflowSensorTimeout, match="still do not validate"):
        sensor.execute_complete({}, {"status": "timeout", "message": "Credentials still do not validate"})
    with pytest.raises(AirflowException):
        sensor.execute_complete({}, None)
    soft = MicrosoftAdsCredentialsSensor(task_id="s", deferrable=True, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.execute_complete({}, {"status": "timeout", "message": "still failing"})


RESCHEDULE_DAG = textwrap.dedent(
    """
    from __future__ import annotations

    import pendulum
    from airflow.providers.common.compat.sdk import dag, task

    from airflow_provider_msads.sensors.msads import MicrosoftAdsCredentialsSensor


    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
    def msads_wait_for_reauthorization():
        wait = MicrosoftAdsCredentialsSensor(
            task_id="wait_for_credentials", mode="reschedule", poke_interval=1, timeout=120
        )

        @task
        def account_id(report: dict) -> str:
            return report["account"]["id"]

        account_id(wait.output)


    msads_wait_for_reauthorization()
    """
)


def test_reschedule_sensor_waits_while_someone_reauthorizes(
    dags_folder: Path, msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch
):
    """The refresh token died; a person re-authorizes while the run waits; the run then succeeds."""
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    monkeypatch.delenv("MSADS_TOKEN_STORE")  # the real default inside a task: an Airflow Variable
    msads_emulator.expire_refresh_token(msads_conn["extra"]["refresh_token"], 700082)
    fixed = threading.Event()

    def reauthorize() -> None:
        while msads_emulator.counters["token.refresh_token"] < 1:  # after the first failed poke
            time.sleep(0.05)
        os.environ["AIRFLOW_CONN_MSADS_DEFAULT"] = msads_emulator.connection_uri_json()  # new refresh token
        fixed.set()

    helper = threading.Thread(target=reauthorize, daemon=True)
    helper.start()

    path = dags_folder / "msads_wait_for_reauthorization.py"
    path.write_text(RESCHEDULE_DAG)
    dag = load_dag(path, "msads_wait_for_reauthorization")
    run = dag.test()
    helper.join(timeout=5)
    assert fixed.is_set()
    assert str(run.state) == "success"

    with create_session() as session:
        tis = {ti.task_id: ti for ti in run.get_task_instances(session=session)}
        reschedules = session.scalar(select(func.count()).select_from(TaskReschedule))
        sensor_ti = tis["wait_for_credentials"]
        assert sensor_ti.try_number == 1
        assert reschedules >= 1
        from _support.dags import xcom_model, xcom_value

        XComModel = xcom_model()

        value = session.scalars(
            select(XComModel).filter_by(run_id=run.run_id, task_id="account_id", key="return_value")
        ).one()
        assert str(xcom_value(value)) == msads_emulator.account.id
    assert msads_emulator.counters["token.refresh_token"] >= 2


# ------------------------------------------------------------------------------------- trigger


def _first_event(trigger: MicrosoftAdsCredentialsTrigger) -> dict:
    async def main() -> dict:
        event = await anext(trigger.run())
        return event.payload

    return asyncio.run(main())


def test_trigger_serializes_only_conn_id_and_timing():
    trigger = MicrosoftAdsCredentialsTrigger(msads_conn_id="msads_a", poke_interval=5, timeout=60)
    path, kwargs = trigger.serialize()
    assert path == TRIGGER_PATH
    assert kwargs == {"msads_conn_id": "msads_a", "poke_interval": 5.0, "timeout": 60.0}
    json.dumps(kwargs)
    assert MicrosoftAdsCredentialsTrigger(**kwargs).serialize() == (path, kwargs)


def test_trigger_fires_with_the_report(msads_emulator, msads_conn):
    payload = _first_event(MicrosoftAdsCredentialsTrigger(poke_interval=0.1, timeout=10))
    assert payload["status"] == "success" and payload["attempts"] == 1
    assert payload["report"]["ok"] is True
    for secret in _secrets(msads_emulator):
        assert secret not in json.dumps(payload)


def test_trigger_waits_until_the_connection_is_fixed(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    _conn(monkeypatch, msads_emulator, developer_token="NOTMYDEVTOKEN123")
    trigger = MicrosoftAdsCredentialsTrigger(poke_interval=0.2, timeout=20)

    async def main() -> dict:
        async def fix_later() -> None:
            while msads_emulator.counters["api.GetUser"] < 1:
                await asyncio.sleep(0.02)
            _conn(monkeypatch, msads_emulator)  # someone pasted the right developer token

        fixer = asyncio.create_task(fix_later())
        event = await anext(trigger.run())
        await fixer
        return event.payload

    payload = asyncio.run(main())
    assert payload["status"] == "success"
    assert payload["attempts"] >= 2


def test_trigger_times_out_with_the_last_verdict(msads_emulator, monkeypatch: pytest.MonkeyPatch):
    _conn(monkeypatch, msads_emulator, password=msads_emulator.app.client_secret[:-4] + "Zz9Q")
    payload = _first_event(MicrosoftAdsCredentialsTrigger(poke_interval=0.2, timeout=0.5))
    assert payload["status"] == "timeout"
    assert "Client Secret check failed" in payload["message"]
    assert payload["report"]["verdicts"]["client_secret"]["status"] == "failed"


def test_trigger_never_blocks_the_event_loop(msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch):
    """Slow Microsoft answers and the token store must not stall the triggerer's other triggers."""
    from _support.airflow_compat import reset_secrets_masker

    monkeypatch.setenv("MSADS_TOKEN_STORE", "file")  # real blocking I/O that must run in threads
    # Airflow's masker recompiles one regex of every secret seen when a secret is added (also
    # inside Airflow's own aget_connection, on the loop); this test session has fed it hundreds of
    # emulator secrets, a real triggerer a handful. Start from a triggerer-sized masker.
    reset_secrets_masker(import_first=True)

    real_get_connection = MicrosoftAdsHook.get_connection
    loop_threads: set[int] = set()

    def sync_connection(cls, conn_id: str):
        # Airflow 3.1+ reads it with aget_connection; older ones only in a worker thread.
        if threading.get_ident() in loop_threads:
            raise AssertionError("sync connection access on the triggerer's event loop")
        return real_get_connection(conn_id)

    monkeypatch.setattr(MicrosoftAdsHook, "get_connection", classmethod(sync_connection))
    # A blocking wait for either answer would stall the loop for the whole 2.5 s; the bound below is
    # half that, far above the CPU work that stays on the loop even on a busy 2-core CI machine.
    msads_emulator.inject("token", "latency", delay=2.5)
    msads_emulator.inject("api", "latency", delay=2.5, operation="GetAccount")

    async def main() -> tuple[dict, float]:
        loop_threads.add(threading.get_ident())
        gaps: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        event = await anext(MicrosoftAdsCredentialsTrigger(poke_interval=0.1, timeout=30).run())
        stop.set()
        await tick
        return event.payload, max(gaps)

    payload, worst_gap = asyncio.run(main())
    assert payload["status"] == "success"
    # Some CPU work stays on the loop (Airflow's own masking of the connection it reads, TLS
    # setup); what must never happen is waiting on the network or disk there.
    assert worst_gap < 1.25, f"the event loop was blocked for {worst_gap:.2f}s"


def test_provider_info_lists_the_new_modules():
    import importlib

    import jsonschema

    from airflow_provider_msads.get_provider_info import get_provider_info

    info = get_provider_info()
    schema_path = Path(importlib.import_module("airflow").__file__).with_name("provider_info.schema.json")
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    found = {
        kind: [name for entry in info[kind] for name in entry["python-modules"]]
        for kind in ("operators", "sensors", "triggers")
    }
    assert found == {
        "operators": [
            "airflow_provider_msads.operators.msads",
            "airflow_provider_msads.operators.reporting",
            "airflow_provider_msads.operators.bulk",
        ],
        "sensors": ["airflow_provider_msads.sensors.msads"],
        "triggers": [
            "airflow_provider_msads.triggers.msads",
            "airflow_provider_msads.triggers.reporting",
            "airflow_provider_msads.triggers.bulk",
        ],
    }
    classes = {
        "airflow_provider_msads.operators.msads": "MicrosoftAdsValidateCredentialsOperator",
        "airflow_provider_msads.operators.reporting": "MicrosoftAdsReportOperator",
        "airflow_provider_msads.sensors.msads": "MicrosoftAdsCredentialsSensor",
        "airflow_provider_msads.triggers.msads": "MicrosoftAdsCredentialsTrigger",
        "airflow_provider_msads.triggers.reporting": "MicrosoftAdsReportTrigger",
        "airflow_provider_msads.operators.bulk": "MicrosoftAdsBulkDownloadOperator",
        "airflow_provider_msads.triggers.bulk": "MicrosoftAdsBulkDownloadTrigger",
    }
    for modules in found.values():
        for module in modules:
            assert hasattr(importlib.import_module(module), classes[module])
