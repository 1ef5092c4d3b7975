"""Runs the example DAGs under ``dag.test()`` for the secrets leak run (a script, not a test module).

Usage: ``python _rel_dag_runner.py DAGS_FOLDER OUTPUT_DIR``. Connections come from the
``AIRFLOW_CONN_*`` variables the test sets; logging is at DEBUG (``AIRFLOW__LOGGING__LOGGING_LEVEL``).
Between the phases it prints ``PHASE <name>`` and, where the test must act on the emulator (expire
the access tokens), ``WAITING <what>`` and reads one line from stdin before going on.

Phases:
1. ``health`` - msads_token_health_check over three connections: a good one, one with a wrong
   client secret, one whose refresh token expired (AADSTS700082); the run fails, as it should.
2. ``ingestion`` - msads_ingestion_example: the deferrable sensor (trigger run inline), then the
   ingestion task with the hook.
3. ``ingestion-expired`` - the access tokens are expired by the test; the ingestion task meets
   fault 109 and refreshes (the sensor is marked success so that the stored token is used).
"""

from __future__ import annotations

import json
import os
import sys
import time

T0 = time.monotonic()


def main() -> None:
    dags_folder, output_path = sys.argv[1], sys.argv[2]
    # The example writes under the deployment's folder; a run only names a sub-folder of it.
    base, output_dir = os.path.split(output_path)
    os.environ["MSADS_EXAMPLE_DATA_DIR"] = base
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    health = bag.get_dag("msads_token_health_check")
    ingestion = bag.get_dag("msads_ingestion_example")
    states = {}

    print(f"PHASE health {time.monotonic() - T0:.1f}", flush=True)
    run = health.test(run_conf={"conn_ids": ["msads_default", "msads_bad_secret", "msads_expired_refresh"]})
    states["health"] = str(run.state)

    print(f"PHASE ingestion {time.monotonic() - T0:.1f}", flush=True)
    run = ingestion.test(run_conf={"output_dir": output_dir})
    states["ingestion"] = str(run.state)

    print("WAITING expire-access-tokens", flush=True)
    sys.stdin.readline()
    print(f"PHASE ingestion-expired {time.monotonic() - T0:.1f}", flush=True)
    run = ingestion.test(
        run_conf={"output_dir": output_dir},
        mark_success_pattern="credentials_guard",
    )
    states["ingestion-expired"] = str(run.state)

    print(f"END {time.monotonic() - T0:.1f}", flush=True)
    print("STATES " + json.dumps(states), flush=True)


if __name__ == "__main__":
    main()
