"""What differs between the Airflow versions we support (2.11, 3.0-3.3), in one place.

Like Airflow's own providers keep ``version_compat.py``: the rest of the package asks these
functions and never tests versions itself.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)


def in_task_process() -> bool:
    """True inside an Airflow 3 task (or triggerer) process, which talks to the execution API."""
    module = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return getattr(module, "SUPERVISOR_COMMS", None) is not None


def airflow_2_component() -> bool:
    """An Airflow 2 task or component, which all reach the metastore directly.

    Airflow 2 has no execution API and no process-context marker; a running task exports
    ``AIRFLOW_CTX_DAG_ID``, and every component (scheduler, triggerer, Celery worker, CLI,
    the webserver's gunicorn) is started as ``airflow ...`` or ``gunicorn``.
    """
    from airflow import __version__ as airflow_version

    if airflow_version.split(".", 1)[0] != "2":
        return False
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    return "AIRFLOW_CTX_DAG_ID" in os.environ or program in {"airflow", "gunicorn"}


def port_for_a_connection_without_one() -> int | None:
    """What to store as the port of a connection that has none: 0 on Airflow 3.3.0-3.3.2, else None.

    Those versions' UI posts port 0 for an empty port when the Test button is pressed, and their
    API takes 0 against a stored NULL for a test of another destination ("The host or port to test
    differs from the stored connection", 400; apache/airflow#73298, fixed after 3.3.2). A stored 0
    matches; it is falsy, so it never appears in the connection's URI, and the form hides the port.
    """
    from airflow import __version__ as airflow_version

    parts = tuple(int(p) for p in airflow_version.split("+")[0].split(".")[:3] if p.isdigit())
    return 0 if (3, 3, 0) <= parts <= (3, 3, 2) else None


def server_process() -> bool:
    """An Airflow 3 server-side process (CLI, API server, scheduler): it reaches the metastore."""
    return os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server"


def variable_api() -> Any:
    """Variables as this process may reach them: the task SDK's inside a task (execution API), the
    metastore model elsewhere (server processes, tests, Airflow 2). Both take ``get(key, default)``."""
    if in_task_process():
        from airflow.sdk import Variable

        return Variable
    from airflow.models.variable import Variable as ModelVariable

    return ModelVariable


@functools.cache
def airflow_mask_secret() -> Any:
    """Airflow's mask_secret: common-compat has it only from 1.22, so older pins fall back by hand."""
    try:
        from airflow.providers.common.compat.sdk import mask_secret
    except ImportError:
        try:  # Airflow 3.1+
            from airflow.sdk.log import mask_secret
        except ImportError:
            try:  # Airflow 3.0
                from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
            except ImportError:  # Airflow 2
                from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]
    return mask_secret


def object_storage_path(url: str) -> Any:
    """Airflow's ``ObjectStoragePath`` for ``url``: the only door from the core to object stores."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def connection_extra(conn_id: str) -> Any:
    """The Extra (``extra_dejson``) of an Airflow connection, as this process may read it."""
    from airflow.providers.common.compat.sdk import BaseHook

    return BaseHook.get_connection(conn_id).extra_dejson
