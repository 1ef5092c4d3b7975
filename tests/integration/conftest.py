"""Real Airflow tests. ``airflow_db``, ``dags_folder`` and ``msads_conn`` live in tests/conftest.py,
shared with the reliability, browser and CLI folders (one ``airflow db migrate`` per session)."""

from __future__ import annotations
