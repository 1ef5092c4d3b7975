"""Airflow-version shims (``_compat.py``) that decide something from the version string."""

from __future__ import annotations

import pytest

from airflow_provider_msads.compat.versions import port_for_a_connection_without_one


@pytest.mark.parametrize(
    ("version", "port"),
    [
        ("2.11.2", None),
        ("3.2.2", None),
        ("3.3.0", 0),
        ("3.3.2", 0),
        ("3.3.2+astro.1", 0),
        ("3.3.3", None),
        ("3.4.0.dev0", None),
    ],
)
def test_port_zero_only_where_the_test_button_needs_it(
    monkeypatch: pytest.MonkeyPatch, version: str, port: int | None
) -> None:
    """Airflow 3.3.0-3.3.2 refuse the Test button of a saved connection whose port is NULL
    (apache/airflow#73298); a stored 0 matches what their UI sends."""
    import airflow

    monkeypatch.setattr(airflow, "__version__", version)
    assert port_for_a_connection_without_one() == port
