"""Real Airflow tests. ``airflow_db``, ``dags_folder`` and ``msads_conn`` live in tests/conftest.py,
shared with the reliability, browser and CLI folders (one ``airflow db migrate`` per session)."""

from __future__ import annotations

import importlib.util

# gs:// destinations need the google provider and the GCS emulator, which live in a venv of their own
# (.venv-gcs): `make test` runs that file there by name (a file named on the command line is never
# ignored); elsewhere a plain `pytest tests/integration` leaves it out instead of failing to import.
collect_ignore = [] if importlib.util.find_spec("gcp_storage_emulator") else ["test_destinations_gcs.py"]
