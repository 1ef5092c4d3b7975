"""Secrets leak run: both example DAGs under ``dag.test()`` at DEBUG, then search everywhere.

The six connection fields get distinctive values; the emulator records every access and refresh
token it issues. After the runs (success, a wrong client secret, an expired refresh token, an
expired access token met mid-task) we search:

* stdout and stderr of the process that ran ``dag.test()`` (task logs go there in dag.test),
* every file under AIRFLOW_HOME/logs (task log files, if any were written),
* the metastore: XComs, rendered template fields, trigger rows, dag-run conf, task instances...
  (a full SQL dump of the SQLite file),
* the stored token Variable (decrypted by Airflow, i.e. the sealed value a Variable reader sees),
* the exception texts of the failed tasks (they are in the logs, searched above) and the files
  the ingestion DAG wrote.

Zero hits for any secret: the client secret (also the wrong one), the developer token, the
connection's refresh tokens and every token the emulator issued. Client ID, Customer ID and Account
ID are identifiers, not secrets: messages quote them on purpose to help (see credentials.py), so
they are reported but not counted as leaks.

Excluded, exactly: lines holding ``MaskSecret(`` - Airflow 3.3's in-process dag.test() supervisor
logs each MaskSecret request *with its value* at DEBUG (an Airflow quirk, not ours; a real
supervisor does not print them). Those lines exist precisely because we hand every new token to
the masker.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _support.reliability import REPO_ROOT, child_env, find_secrets

pytestmark = pytest.mark.integration

RUNNER = str(Path(__file__).with_name("_rel_dag_runner.py"))
EXAMPLES = REPO_ROOT / "dags_example"
QUIRK = "MaskSecret("

CLIENT_SECRET = "Lk9Q~LEAKPROBE-client-secret-a1b2c3d4e5f6g7h8"
WRONG_SECRET = "Wx4Q~LEAKPROBE-wrong-secret-z9y8x7w6v5u4t3s2"
DEVELOPER_TOKEN = "LEAKPROBEDEVTKN7"


def _conn(emulator, refresh_token: str, password: str = CLIENT_SECRET) -> str:
    conn = emulator.connection_dict(refresh_token)
    conn["password"] = password
    conn["extra"]["reporting_url"] = emulator.reporting_url  # the example's report goes there too
    return json.dumps(conn)


def _run_dags(emulator, dags_folder: Path, output_dir: Path, env: dict[str, str]) -> tuple[str, str, dict]:
    err_path = output_dir.parent / "runner.stderr"
    with err_path.open("w") as err_file:
        process = subprocess.Popen(
            [sys.executable, RUNNER, str(dags_folder), str(output_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err_file,  # a file, not a pipe: DEBUG output would fill a pipe and block the child
            text=True,
            env=child_env(env),
            cwd=str(REPO_ROOT),
        )
        out_lines: list[str] = []
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                out_lines.append(line)
                if line.startswith("WAITING expire-access-tokens"):
                    emulator.expire_access_tokens()
                    process.stdin.write("go\n")  # type: ignore[union-attr]
                    process.stdin.flush()  # type: ignore[union-attr]
            process.wait(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    stderr = err_path.read_text(errors="replace")
    stdout = "".join(out_lines)
    assert process.returncode == 0, stdout[-3000:] + stderr[-6000:]
    states = json.loads(next(line for line in out_lines if line.startswith("STATES "))[len("STATES ") :])
    return stdout, stderr, states


def _sqlite_dump() -> str:
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        return "\n".join(db.iterdump())


def _hits(sources: dict[str, str], secrets: dict[str, str]) -> dict[str, list[str]]:
    found = {}
    for name, text in sources.items():
        kept = "\n".join(line for line in text.splitlines() if QUIRK not in line)
        hits = find_secrets(kept, secrets)
        if hits:
            found[name] = hits
    return found


def test_no_secret_anywhere_after_both_example_dags(dags_folder: Path, msads_emulator, tmp_path: Path):
    from airflow.models.variable import Variable

    from airflow_provider_msads.token_store import storage_key

    for name in ("msads_token_health_check.py", "msads_ingestion_example.py"):
        shutil.copy(EXAMPLES / name, dags_folder / name)

    msads_emulator.app.client_secret = CLIENT_SECRET
    msads_emulator.developer_token = DEVELOPER_TOKEN
    good_refresh = msads_emulator.issue_refresh_token()
    expired_refresh = msads_emulator.issue_refresh_token()
    msads_emulator.expire_refresh_token(expired_refresh, 700082)
    bad_secret_refresh = msads_emulator.issue_refresh_token()
    Variable.delete(storage_key("msads_default"))

    env = {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW__LOGGING__FAB_LOGGING_LEVEL": "DEBUG",
        "AIRFLOW_CONN_MSADS_DEFAULT": _conn(msads_emulator, good_refresh),
        "AIRFLOW_CONN_MSADS_BAD_SECRET": _conn(msads_emulator, bad_secret_refresh, WRONG_SECRET),
        "AIRFLOW_CONN_MSADS_EXPIRED_REFRESH": _conn(msads_emulator, expired_refresh),
    }
    env.pop("MSADS_TOKEN_STORE", None)
    output_dir = tmp_path / "ingested"
    msads_emulator.report_pending_polls = 0  # the example polls every 30 s; ready at the first poll

    stdout, stderr, states = _run_dags(msads_emulator, dags_folder, output_dir, env)

    # The runs did what the scenario says, so the search covers the failure paths too.
    assert states == {"health": "failed", "ingestion": "success", "ingestion-expired": "success"}, states
    assert "7000215" in stdout + stderr  # the wrong secret was reported...
    assert "700082" in stdout + stderr  # ...and the expired refresh token
    # Two ingestion runs, each one GetAccountsInfo and one report Submit, plus the 109 answer that
    # whichever of the two tasks came first after the expiry met, then its retry.
    assert msads_emulator.counters["api.GetAccountsInfo"] + msads_emulator.report_submits >= 5
    assert msads_emulator.report_downloads == 2 and msads_emulator.downloads_with_credentials == 0
    assert any(r.get("refresh_token") == good_refresh for r in msads_emulator.token_requests)
    assert len(msads_emulator.issued_access_tokens) == 3  # health, sensor (forced), after the 109

    secrets = {
        "client_secret": CLIENT_SECRET,
        "wrong_client_secret": WRONG_SECRET,
        "developer_token": DEVELOPER_TOKEN,
        "connection_refresh_token(good)": good_refresh,
        "connection_refresh_token(expired)": expired_refresh,
        "connection_refresh_token(bad_secret)": bad_secret_refresh,
    }
    for n, token in enumerate(msads_emulator.issued_access_tokens):
        secrets[f"issued_access_token[{n}]"] = token
    for n, token in enumerate(msads_emulator.issued_refresh_tokens):
        secrets.setdefault(f"issued_refresh_token[{n}]", token)

    sources: dict[str, str] = {"stdout": stdout, "stderr": stderr, "metastore": _sqlite_dump()}
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    for path in [*logs.rglob("*"), *output_dir.rglob("*")]:
        if path.is_file():
            sources[str(path)] = path.read_text(errors="replace")
    sealed = Variable.get(storage_key("msads_default"))
    assert sealed.startswith("msads-v2.")
    sources["variable"] = sealed

    # The quirk is really there (else the exclusion would hide nothing and should go).
    quirk_lines = [line for line in (stdout + stderr).splitlines() if QUIRK in line]
    assert any(find_secrets(line, secrets) for line in quirk_lines), "Airflow's MaskSecret debug lines are gone?"

    print("".join(line for line in stdout.splitlines(True) if line.startswith(("PHASE", "END"))))
    print("searched (characters):", {name: len(text) for name, text in sources.items()})
    assert _hits(sources, secrets) == {}

    public = {
        "client_id": msads_emulator.app.client_id,
        "customer_id": msads_emulator.customer_id,
        "account_id": msads_emulator.account.id,
    }
    shown = {name: sorted(src for src, text in sources.items() if value in text) for name, value in public.items()}
    print(f"\nidentifiers (public by design) appear in: {shown}")
