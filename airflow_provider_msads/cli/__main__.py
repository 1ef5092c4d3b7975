"""``python -m airflow_provider_msads.cli``: the same as the ``msads-authorize`` console script."""

from __future__ import annotations

import sys

from airflow_provider_msads.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
