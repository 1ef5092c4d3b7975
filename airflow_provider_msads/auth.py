"""Old import path of the token core's face (``httpx.Auth`` with the Ads headers): kept for users.

The module moved to :mod:`airflow_provider_msads.tokens.auth` when the package root was grouped by layer;
this name stays because the README/docs show it. It *is* that module (same object in ``sys.modules``), so
attributes, ``monkeypatch`` targets and ``isinstance`` checks behave exactly as before.
"""

from __future__ import annotations

import sys

from airflow_provider_msads.tokens import auth as _moved

sys.modules[__name__] = _moved
