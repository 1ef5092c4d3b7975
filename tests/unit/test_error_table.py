"""The generated error table (scripts/error_table.py) and its copies in the README and the docs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from airflow_provider_msads.errors.catalogue import catalogue_rows

_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("error_table", _ROOT / "scripts" / "error_table.py")
assert _spec is not None and _spec.loader is not None
v = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v)


def test_error_table_has_one_row_per_catalogue_entry():
    table = v.error_table_markdown()
    lines = table.splitlines()
    assert lines[0] == "| Code | Meaning | Field | Retried | What to do |"
    rows = catalogue_rows()
    assert len(lines) == 2 + len(rows)
    for line, row in zip(lines[2:], rows, strict=True):
        assert line.startswith(f"| {row['code']} | ")
        assert line.count(" | ") == 4 or "\\|" in line


def test_error_table_escapes_pipes_and_newlines():
    table = v.error_table_markdown(
        [{"code": "X1", "meaning": "a | b\nc", "field": "client_id", "retryable": True, "remedy": "do"}]
    )
    assert table.splitlines()[2] == "| X1 | a \\| b c | `client_id` | yes | do |"


@pytest.mark.parametrize("document", ["docs/validation.md", "README.md"])
def test_docs_error_table_matches_the_catalogue(document: str):
    """docs/validation.md and the README must show the catalogue as it is now.

    Regenerate with ``python scripts/error_table.py docs/validation.md README.md``.
    """
    path = _ROOT / document
    assert v.extract_error_table(path.read_text(encoding="utf-8")) == v.error_table_markdown()


def test_replace_error_table_round_trip():
    text = f"intro\n{v.ERROR_TABLE_START}\nold table\n{v.ERROR_TABLE_END}\noutro\n"
    replaced = v.replace_error_table(text)
    assert v.extract_error_table(replaced) == v.error_table_markdown()
    assert replaced.startswith("intro\n") and replaced.endswith("outro\n")
    assert v.replace_error_table(replaced) == replaced
