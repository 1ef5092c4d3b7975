"""Regenerate the Bulk record types' columns from Microsoft's ``msads`` SDK.

The Bulk file is one union CSV (every record type's columns side by side); the operator splits it
into one file per record ``Type`` whose columns must not change from run to run with whichever
columns Microsoft happened to fill. The SDK's entity classes (``bingads/v13/bulk/entities``,
registered in ``_BulkObjectFactory``) know which columns each record type reads: this script asks
each of them to read a row, records the columns it looks at, and writes them, in the order of the
SDK's union header (``_CsvHeaders.HEADERS``), to ``airflow_provider_msads/bulk/_record_types.py``.
``tests/unit/test_bulk_core.py`` fails when the copy and the installed SDK disagree.
It also copies the SDK's ``DownloadEntity`` values, so a misspelt entity is refused before any
request. Run: ``.venv/bin/python scripts/gen_bulk_record_types.py``.
"""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent.parent / "airflow_provider_msads/bulk/_record_types.py"

#: Columns every record type's file has, whatever the SDK reads: the contract's ``Type``, ``Id``,
#: ``Parent Id`` and ``Status`` (Microsoft's "Bulk file schema": every record has them, some empty),
#: and ``Modified Time`` which a delta is merged on.
ALWAYS = ("Type", "Status", "Id", "Parent Id", "Modified Time")


def _recorder() -> Any:
    from bingads.v13.internal.bulk.row_values import _RowValues

    class Recorder(_RowValues):  # type: ignore[misc]
        """A row whose every cell is empty, remembering which columns were asked for."""

        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def __getitem__(self, key: str) -> str:
            if key in self.mappings and key not in self.seen:
                self.seen.append(key)
            return ""

        def try_get_value(self, header: str) -> tuple[bool, str | None]:
            if header not in self.mappings:
                return False, None
            return True, self[header]

    return Recorder


def record_types() -> dict[str, object]:
    """``{"version": sdk version, "types": {record Type: [columns]}}`` from the installed SDK."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import bingads.v13.bulk  # noqa: F401 - the factory's imports are circular without it
        from bingads.v13.internal.bulk.bulk_object_factory import _BulkObjectFactory
        from bingads.v13.internal.bulk.csv_headers import _CsvHeaders
        from bingads.v13.internal.bulk.mappings import _SimpleBulkMapping

        recorder = _recorder()
        order = {name: index for index, name in enumerate(_CsvHeaders.HEADERS)}
        types: dict[str, list[str]] = {}
        for record_type, info in _BulkObjectFactory.INDIVIDUAL_ENTITY_MAP.items():
            entity = info.create_func()
            row = recorder()
            try:
                entity.read_from_row_values(row)
            except Exception:  # an empty cell some reader cannot parse: read mapping by mapping below
                for cls in type(entity).__mro__:
                    for mapping in vars(cls).get("_MAPPINGS", ()):
                        try:
                            mapping.convert_to_entity(row, entity)
                        except Exception:
                            if isinstance(mapping, _SimpleBulkMapping) and mapping.header in row.mappings:
                                row[mapping.header]
            names = list(dict.fromkeys([*ALWAYS, *row.seen]))
            first = {name: index for index, name in enumerate(names)}
            types[str(record_type)] = sorted(names, key=lambda name: (order.get(name, len(order)), first[name]))
        from openapi_client.models.bulk.download_entity import DownloadEntity

        entities = [member.value for member in DownloadEntity if member.value != "None"]
        return {
            "version": importlib.metadata.version("msads"),
            "types": dict(sorted(types.items())),
            "entities": entities,
        }


def render(data: dict[str, object]) -> str:
    lines = [
        f'"""Bulk record types and their columns, from Microsoft\'s ``msads`` SDK {data["version"]}, written by',
        "``scripts/gen_bulk_record_types.py``.",
        "",
        "Generated: do not edit by hand. Each record type's file has these columns, in this order,",
        'whichever of them Microsoft fills."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        f'SDK_VERSION: Final = "{data["version"]}"',
        "",
        "#: Microsoft's DownloadEntity values (``DownloadEntities`` of a download request).",
        "DOWNLOAD_ENTITIES: Final[tuple[str, ...]] = (",
        *(f"    {json.dumps(name)}," for name in data["entities"]),  # type: ignore[attr-defined]
        ")",
        "",
        "#: Each record Type's columns, in the order of the SDK's union header.",
        "RECORD_COLUMNS: Final[dict[str, tuple[str, ...]]] = {",
    ]
    types = data["types"]
    assert isinstance(types, dict)
    for record_type, names in types.items():
        lines.append(f"    {json.dumps(record_type)}: (")
        lines.extend(f"        {json.dumps(name)}," for name in names)
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(record_types()), encoding="utf-8")
    print(f"wrote {TARGET}")
