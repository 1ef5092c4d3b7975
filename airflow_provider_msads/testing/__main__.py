"""``python -m airflow_provider_msads.testing``: the emulator's command line, kept under its old name.

The command lives in ``airflow_provider_msads.testing.emulator.__main__`` (``--help`` lists its
options); this module only forwards to it.
"""

from __future__ import annotations

import sys

from airflow_provider_msads.testing.emulator.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
