"""Apache Airflow provider for Microsoft Advertising (Bing Ads).

Kept import-free on purpose: DAG parsing imports the operator and sensor modules, and
everything they pull in through this package is paid on every parse.
"""

from __future__ import annotations

__version__ = "0.1.0"
