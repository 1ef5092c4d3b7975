"""Regenerate the emulator's Bulk catalogue from Microsoft's ``msads`` SDK.

The emulator imports only the standard library, so it copies what it needs from the SDK: the
bulk file's column order (``bingads.v13.internal.bulk.csv_headers._CsvHeaders.HEADERS``) and the
``DownloadEntity`` values a download request may name (``openapi_client.models.bulk.DownloadEntity``)
into ``airflow_provider_msads/testing/emulator/_bulk_catalogue.py``.
``tests/emulator/test_emulator_bulk_sdk_fidelity.py`` fails when the copy and the installed SDK
disagree. Run: ``.venv/bin/python scripts/gen_bulk_catalogue.py``.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "airflow_provider_msads/testing/emulator/_bulk_catalogue.py"


def catalogue() -> dict[str, list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from bingads.v13.internal.bulk.csv_headers import _CsvHeaders
        from openapi_client.models.bulk.download_entity import DownloadEntity
    return {
        "HEADERS": list(_CsvHeaders.HEADERS),
        "DOWNLOAD_ENTITIES": [member.value for member in DownloadEntity if member.value != "None"],
    }


def render() -> str:
    version = importlib.metadata.version("msads")
    lines = [
        f'"""Generated from Microsoft\'s msads {version} SDK by scripts/gen_bulk_catalogue.py: do not edit.',
        "",
        "HEADERS: the bulk file's columns in the SDK's order (format 6.0); DOWNLOAD_ENTITIES: the",
        'DownloadEntity values a download request may name."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
    ]
    for name, values in catalogue().items():
        lines.append(f"{name}: Final[tuple[str, ...]] = (")
        lines.extend(f"    {value!r}," for value in values)
        lines.append(")")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
