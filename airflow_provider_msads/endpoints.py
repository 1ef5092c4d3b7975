"""Old import path of Microsoft's URLs per environment and the override rules: kept for users.

The module moved to :mod:`airflow_provider_msads.connection.endpoints` when the package root was grouped by layer;
this name stays because the README/docs show it. It *is* that module (same object in ``sys.modules``), so
attributes, ``monkeypatch`` targets and ``isinstance`` checks behave exactly as before.
"""

from __future__ import annotations

import sys

from airflow_provider_msads.connection import endpoints as _moved

sys.modules[__name__] = _moved
