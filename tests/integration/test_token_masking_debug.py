"""A task under ``dag.test()`` at DEBUG: no token the provider learnt at run time appears in the output.

The task refreshes (a forced refresh teaches it a new access token and a rotated refresh token), then
deliberately logs the access token three ways (DEBUG on the task logger, WARNING on a plain logger,
inside an exception's message) to prove the masking, not merely the absence of a careless print.

The one known exception (issue 18 item 9, Airflow's and not ours): Airflow 3's in-process dag.test()
supervisor logs each ``MaskSecret(value=...)`` request at DEBUG, and Airflow itself sends one for
each secret of the connection it reads (client secret, developer token, the connection's refresh
token). A deployed supervisor logs "(body omitted)". So:

* the connection's secrets may appear only on those ``MaskSecret(`` lines;
* tokens learnt at run time appear nowhere, not even there: the provider masks them with its own
  bounded masker and sends no ``MaskSecret`` for them (issue 21).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _support.reliability import REPO_ROOT, child_env

pytestmark = pytest.mark.integration

QUIRK = "MaskSecret("

DAG_SOURCE = """
from __future__ import annotations

import logging

import pendulum
from airflow.providers.common.compat.sdk import DAG

try:
    from airflow.sdk import task
except ImportError:  # Airflow 2
    from airflow.decorators import task

with DAG("msads_mask_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def probe() -> str:
        from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

        hook = MicrosoftAdsHook(msads_conn_id="msads_default")
        assert hook.validate_credentials().ok  # a forced refresh: new access and refresh tokens
        token = hook.get_access_token()
        task_log = logging.getLogger("airflow.task")
        task_log.debug("PROBE-DEBUG %s", token)
        logging.getLogger("msads_probe").warning("PROBE-OTHER %s", token)
        try:
            raise RuntimeError(f"PROBE-EXCEPTION {token}")
        except RuntimeError:
            task_log.exception("PROBE-CAUGHT")
        return "done"

    probe()
"""

RUNNER = """
import json, sys
from airflow import settings
if hasattr(settings, "MASK_SECRETS_IN_LOGS"):
    # What a deployed task process does (`airflow tasks run` on 2.x); 2.11's and 3.0's dag.test() leave
    # masking of stdlib log records off, for Airflow's own secrets as much as for ours.
    settings.MASK_SECRETS_IN_LOGS = True
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("msads_mask_probe").test()
print("STATE " + json.dumps(str(run.state)), flush=True)
"""


def test_no_runtime_token_in_a_debug_dag_test(dags_folder: Path, msads_emulator, tmp_path: Path):
    (dags_folder / "msads_mask_probe.py").write_text(DAG_SOURCE)
    conn = msads_emulator.connection_dict()
    env = {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW_CONN_MSADS_DEFAULT": json.dumps(conn),
        "MSADS_TOKEN_STORE": "memory",
    }
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err:  # a file: DEBUG output would fill a pipe
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, str(dags_folder)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=240,
            env=child_env(env),
            cwd=str(REPO_ROOT),
            check=False,
        )
    output = done.stdout + err_path.read_text(errors="replace")
    assert done.returncode == 0 and 'STATE "success"' in done.stdout, output[-6000:]

    connection_secrets = {
        "client_secret": conn["password"],
        "developer_token": conn["extra"]["developer_token"],
        "connection_refresh_token": conn["extra"]["refresh_token"],
    }
    learnt = [t for t in msads_emulator.issued_access_tokens + msads_emulator.issued_refresh_tokens]
    learnt = [t for t in learnt if t != conn["extra"]["refresh_token"]]
    assert len(learnt) >= 2  # an access token and the rotated refresh token

    # The probe ran and its lines were masked (at least the plain logger's, on every version).
    probe_lines = [line for line in output.splitlines() if "PROBE-" in line]
    assert probe_lines, output[-6000:]
    assert all("***" in line for line in probe_lines if "PROBE-OTHER" in line or "PROBE-DEBUG" in line)

    for n, token in enumerate(learnt):
        lines = [line[:200] for line in output.splitlines() if token in line]
        assert lines == [], f"run-time token {n} printed: {lines}"
    for name, secret in connection_secrets.items():
        lines = [line[:200] for line in output.splitlines() if secret in line and QUIRK not in line]
        assert lines == [], f"{name} printed outside Airflow's MaskSecret debug lines: {lines}"
