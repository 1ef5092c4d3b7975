"""The README's (and docs/validation.md's) "what each error means" table, generated from the catalogue.

Run ``python scripts/error_table.py README.md docs/validation.md`` after changing the catalogue in
``airflow_provider_msads/errors/catalogue/``; ``tests/unit/test_error_table.py`` fails while a copy is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_msads.errors.catalogue import catalogue_rows

ERROR_TABLE_START = "<!-- error-table:start -->"
ERROR_TABLE_END = "<!-- error-table:end -->"


def _cell(value: object) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def error_table_markdown(rows: Iterable[Mapping[str, Any]] | None = None) -> str:
    """The README's "what each error means" table, generated from :mod:`catalogue`."""
    out = [
        "| Code | Meaning | Field | Retried | What to do |",
        "|---|---|---|---|---|",
    ]
    for row in catalogue_rows() if rows is None else rows:
        field_cell = f"`{row['field']}`" if row["field"] else ""
        out.append(
            f"| {_cell(row['code'])} | {_cell(row['meaning'])} | {field_cell} | "
            f"{'yes' if row['retryable'] else 'no'} | {_cell(row['remedy'])} |"
        )
    return "\n".join(out)


def extract_error_table(markdown: str) -> str:
    """The text between the error-table markers (stripped); raises ValueError when they are missing."""
    start = markdown.index(ERROR_TABLE_START) + len(ERROR_TABLE_START)
    end = markdown.index(ERROR_TABLE_END, start)
    return markdown[start:end].strip()


def replace_error_table(markdown: str) -> str:
    """``markdown`` with the generated table between the markers (to regenerate README/docs)."""
    start = markdown.index(ERROR_TABLE_START) + len(ERROR_TABLE_START)
    end = markdown.index(ERROR_TABLE_END, start)
    return markdown[:start] + "\n" + error_table_markdown() + "\n" + markdown[end:]


if __name__ == "__main__":
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(replace_error_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"updated {path}")
