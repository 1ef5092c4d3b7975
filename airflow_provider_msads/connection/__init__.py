"""The connection room: an ``msads`` connection's six fields, its Extra, its form and where it may send them.

* :mod:`.fields`: the vocabulary (type, field names, labels, setup steps);
* :mod:`.checks` and :mod:`.extra`: one check per field, and the Extra's keys and values;
* :mod:`.credentials`: the one validated value the rest of the package works with;
* :mod:`.endpoints`: Microsoft's URLs per environment and the override rules;
* :mod:`.form`: the connection form (``conn-fields`` and the wtforms fields of Airflow 2.11-3.1).

May import: :mod:`~airflow_provider_msads.errors` only. No Airflow, no network.
"""
