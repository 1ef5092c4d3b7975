"""Helpers for tests with a real Airflow (a unique module name, unlike conftest)."""

from __future__ import annotations

from pathlib import Path


def load_dag(path: Path, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)
