"""The Asset (Dataset on Airflow 2.11) a report task feeds, and the event that says a file landed.

Why the operator declares the Asset itself: Airflow records an outlet event only for an Asset in
the task's ``outlets`` when the DAG was parsed (the scheduler links producer and consumer DAGs
from there), so the Asset must be known before any run, while the destination is a template
(``.../{{ ds }}.csv``). Its URI is therefore

* ``asset=`` when given (a URI string or an Asset/Dataset object), the recommended form; or
* the destination's folder before its first template, without the ObjectStoragePath connection
  id (``s3://aws_conn@bucket/msads/campaign/{{ ds }}.csv`` -> ``s3://bucket/msads/campaign``; a
  local ``/data/msads/{{ ds }}.csv`` -> ``file:///data/msads``); the connection id belongs to a
  deployment, not to the data, so two deployments writing the same bucket share the Asset.

At run time the operator fills the event's ``extra`` with what it wrote: ``path`` (the rendered
destination), ``rows``, ``bytes``, ``report_request_id``, ``date_from``/``date_to`` and the
format, so the consumer DAG reads them from ``triggering_asset_events`` without listing folders.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


def asset_class() -> Any:
    """``airflow.sdk.Asset`` on Airflow 3, ``airflow.datasets.Dataset`` on 2.11 (no fastapi import)."""
    try:
        from airflow.sdk import Asset
    except ImportError:  # Airflow 2
        from airflow.datasets import Dataset as Asset  # type: ignore[no-redef]
    return Asset


def derived_uri(destination: str) -> str | None:
    """The stable part of a (templated) destination as an Asset URI; None when nothing is stable."""
    stable = destination.split("{{", 1)[0].split("{%", 1)[0]
    if stable != destination or not stable.endswith("/"):
        stable = stable.rsplit("/", 1)[0] if "/" in stable else ""
    if "://" in stable:
        parts = urlsplit(stable)
        host = parts.hostname or ""
        if not host and parts.scheme != "file":
            return None
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")) or None
    if not stable:
        return None
    return "file://" + os.path.abspath(os.path.expanduser(stable)).rstrip("/")


def _dag_test_refuses_unregistered_assets() -> bool:
    """Airflow 3.0's ``dag.test()`` fails a task whose outlets the DAG processor has not registered
    (AirflowInactiveAssetInInletOrOutletException); 2.11 and 3.1+ register them. An Asset the user
    did not ask for must not break every ``dag.test()`` of a DAG with a report: on 3.0 the Asset is
    declared only when given (``asset=``)."""
    from airflow import __version__

    return __version__.startswith("3.0.")


def report_asset(asset: Any, destination: str) -> Any | None:
    """The Asset object for the operator's ``outlets`` (None: ``asset=False``, or nothing stable)."""
    if asset is False:
        return None
    cls = asset_class()
    if asset is not None and not isinstance(asset, str):
        return asset  # an Asset/Dataset the user built
    if asset is None and _dag_test_refuses_unregistered_assets():
        log.debug("No derived Asset on Airflow 3.0 (its dag.test() fails on unregistered outlets); pass asset=.")
        return None
    uri = asset or derived_uri(destination)
    if not uri:
        log.debug(
            "No Asset for destination %r: it has no fixed folder before its first template; pass asset=.",
            destination,
        )
        return None
    return cls(uri)


def record_event(context: Any, asset: Any, extra: dict[str, Any]) -> bool:
    """Put ``extra`` on this task's event for ``asset``; False when Airflow offers no outlet events."""
    events = context.get("outlet_events") if hasattr(context, "get") else None
    if events is None or asset is None:
        return False
    events[asset].extra = dict(extra)
    return True


#: Object stores whose bucket is OpenLineage's namespace authority and whose key, without a leading
#: slash, is the dataset name (https://openlineage.io/docs/spec/naming/: S3, GCS as ``gs``).
_BUCKET_SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs"}


def openlineage_namespace(destination: str) -> tuple[str, str]:
    """(namespace, name) of a destination as OpenLineage's naming spec has them, so the file this
    provider writes is the same dataset as the one a loader reads:

    * a local path or ``file:///path``: ``("file", "/abs/path")``; ``file://host/path``:
      ``("file://host", "/path")``;
    * S3 / GCS: ``("s3://bucket", "key")``, ``("gs://bucket", "key")``;
    * any other URL: ``("scheme://host[:port]", "/path")``.

    Never the URL's user part: ObjectStoragePath's ``conn_id@`` names a deployment, not the data
    (as for the Asset URI), and a ``user:password@`` there would be a secret.
    """
    if "://" not in destination:
        return "file", os.path.abspath(os.path.expanduser(destination))
    parts = urlsplit(destination)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme == "file":
        return (f"file://{host}" if host not in ("", "localhost") else "file"), parts.path or "/"
    if scheme in _BUCKET_SCHEMES:
        return f"{_BUCKET_SCHEMES[scheme]}://{host}", parts.path.lstrip("/")
    try:
        authority = host + (f":{parts.port}" if parts.port else "")
    except ValueError:  # not a number after the host's colon: the host alone
        authority = host
    return (f"{scheme}://{authority}" if authority else scheme), parts.path or "/"


__all__ = ["asset_class", "derived_uri", "openlineage_namespace", "record_event", "report_asset"]
