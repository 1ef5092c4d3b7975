"""Old import path of the code catalogue (what each Microsoft code means): kept for users and scripts.

The catalogue moved to :mod:`airflow_provider_msads.errors.catalogue` (one data file a service) when
the package root was grouped by layer. This name *is* that module (same object in ``sys.modules``).
"""

from __future__ import annotations

import sys

from airflow_provider_msads.errors import catalogue as _moved

sys.modules[__name__] = _moved
