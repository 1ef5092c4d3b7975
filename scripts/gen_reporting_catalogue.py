"""Regenerate the emulator's Reporting catalogue from Microsoft's ``msads`` SDK.

The emulator imports only the standard library, so it cannot read the SDK's enums at run time;
this script copies them (report types and their columns, time zones, aggregations, predefined
times, formats) into ``airflow_provider_msads/testing/emulator/_reporting_catalogue.py``.
``tests/emulator/test_emulator_reporting_sdk_fidelity.py`` fails when the copy and the installed
SDK disagree. Run: ``.venv/bin/python scripts/gen_reporting_catalogue.py``.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import pkgutil
import warnings
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "airflow_provider_msads/testing/emulator/_reporting_catalogue.py"


def _enum_of(module_name: str) -> list[str]:
    module = importlib.import_module(f"openapi_client.models.reporting.{module_name}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == module.__name__:
            return [member.value for member in value]
    raise LookupError(module_name)


def catalogue() -> dict[str, object]:
    """Everything the emulator copies from the SDK, as plain Python values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import openapi_client.models.reporting as package

        columns: dict[str, list[str]] = {}
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.name.endswith("_report_column"):
                continue
            stem = info.name[: -len("_report_column")]
            request_module = importlib.import_module(f"openapi_client.models.reporting.{stem}_report_request")
            request_types = [
                name
                for name, value in vars(request_module).items()
                if isinstance(value, type)
                and name.endswith("ReportRequest")
                and value.__module__ == request_module.__name__
            ]
            for request_type in request_types:
                columns[request_type] = _enum_of(info.name)
        return {
            "version": importlib.metadata.version("msads"),
            "columns": dict(sorted(columns.items())),
            "time_zones": _enum_of("report_time_zone"),
            "aggregations": _enum_of("report_aggregation"),
            "predefined_times": _enum_of("report_time_period"),
            "formats": _enum_of("report_format"),
        }


def render(data: dict[str, object]) -> str:
    lines = [
        '"""Reporting v13 catalogue copied from Microsoft\'s ``msads`` SDK '
        f"{data['version']} by ``scripts/gen_reporting_catalogue.py``.",
        "",
        "Generated: do not edit by hand. The emulator uses only the standard library, so it carries",
        'this copy instead of importing the SDK\'s enums."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        f'SDK_VERSION: Final = "{data["version"]}"',
        "",
    ]
    for name in ("time_zones", "aggregations", "predefined_times", "formats"):
        values = data[name]
        assert isinstance(values, list)
        lines.append(f"{name.upper()}: Final[tuple[str, ...]] = (")
        lines.extend(f'    "{value}",' for value in values)
        lines.append(")")
    lines.append("COLUMNS: Final[dict[str, tuple[str, ...]]] = {")
    columns = data["columns"]
    assert isinstance(columns, dict)
    for request_type, names in columns.items():
        lines.append(f'    "{request_type}": (')
        lines.extend(f'        "{name}",' for name in names)
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(catalogue()), encoding="utf-8")
    print(f"wrote {TARGET}")
