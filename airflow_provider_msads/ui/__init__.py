"""*Authorize with Microsoft* and *Token health* in the Airflow UI (Airflow 3.1+), as a provider plugin.

:mod:`.plugin` is what Airflow loads (declared in ``get_provider_info()["plugins"]``); it imports
neither FastAPI nor Starlette, so that loading plugins in a scheduler, worker or DAG processor
costs nothing. :mod:`.app` (FastAPI) is imported by the API server on the first request.

May import: the core rooms, ``compat``, ``hooks``, ``operators`` and ``cli`` (the authorize step
it shares with ``msads-authorize``).
"""
