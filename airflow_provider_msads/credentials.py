"""Old import path of the connection's credentials (``parse_credentials``): kept for users.

The module moved to :mod:`airflow_provider_msads.connection.credentials` when the package root was grouped by layer;
this name stays because the README/docs show it. It *is* that module (same object in ``sys.modules``), so
attributes, ``monkeypatch`` targets and ``isinstance`` checks behave exactly as before.
"""

from __future__ import annotations

import sys

from airflow_provider_msads.connection import credentials as _moved

sys.modules[__name__] = _moved
