"""The house drawn from imports: rooms as folders, arrows pointing inward only (docs/architecture.md).

Read with ``ast`` (nothing is imported), so a new arrow the design does not allow fails here with the
file and the line, before a reviewer has to spot it. Imports under ``if TYPE_CHECKING:`` count too:
an arrow in the types is an arrow in the design.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_msads"
NAME = PACKAGE.name

#: The pure core: importing it imports no Airflow (it reaches Airflow only through ``compat``).
CORE = {"errors", "connection", "tokens", "customer", "reporting", "bulk", "validation"}
#: Faces at the root: the provider info and the documented old import paths.
FACES = {"__init__", "get_provider_info", "token_store", "auth", "credentials", "endpoints", "catalogue"}

#: Which rooms each room may import (its own folder is always allowed). The order of the
#: house: errors <- connection <- tokens <- the service rooms <- validation <- the Airflow shell.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "compat": set(),
    "connection": {"errors"},
    "tokens": {"errors", "connection", "compat"},
    "customer": {"errors", "connection", "tokens"},
    "reporting": {"errors", "connection", "tokens", "compat"},
    "bulk": {"errors", "connection", "tokens", "compat", "reporting"},
    "validation": {"errors", "connection", "tokens", "customer"},
    "hooks": CORE | {"compat", "get_provider_info"},
    "triggers": CORE | {"compat", "hooks"},
    "operators": CORE | {"compat", "hooks", "triggers"},
    "sensors": CORE | {"compat", "hooks", "triggers"},
    "cli": CORE | {"compat", "hooks", "get_provider_info"},
    "ui": CORE | {"compat", "hooks", "operators", "cli"},
    # The emulator models Microsoft, not our client: it imports nothing of the provider.
    "testing": set(),
    "__init__": set(),
    "get_provider_info": {"__init__", "connection"},
    "token_store": {"tokens"},
    "auth": {"tokens"},
    "credentials": {"connection"},
    "endpoints": {"connection"},
    "catalogue": {"errors"},
}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        room = relative.parts[0].removesuffix(".py")
        yield room, path


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module an import statement in ``path`` names (absolute and relative), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package_parts = [NAME, *path.relative_to(PACKAGE).parts[:-1]]  # the package a relative import starts in
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package_parts[: len(package_parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module != NAME:
                yield module, node.lineno
                continue
            for alias in node.names:  # ``from airflow_provider_msads import x``: x is the room
                yield f"{NAME}.{alias.name}", node.lineno


def _room_of(module: str) -> str | None:
    if module == NAME:
        return "__init__"
    if not module.startswith(NAME + "."):
        return None
    first = module.split(".")[1]
    return "__init__" if first == "__version__" else first


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for room, path in _modules():
        for module, _ in _imports(path):
            target = _room_of(module)
            if target is not None and target != room:
                edges.setdefault(room, set()).add(target)
    return edges


def test_every_room_is_in_the_plan() -> None:
    rooms = {room for room, _ in _modules()}
    assert rooms <= set(ALLOWED), f"rooms without a rule in ALLOWED (and docs/architecture.md): {rooms - set(ALLOWED)}"


def test_the_root_holds_only_the_faces() -> None:
    """A newcomer opening the package sees folders, the provider info and the documented faces."""
    root_modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert root_modules == FACES


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_a_room_imports_only_the_rooms_allowed_for_it(room: str) -> None:
    wrong = []
    for owner, path in _modules():
        if owner != room:
            continue
        for module, line in _imports(path):
            target = _room_of(module)
            if target is not None and target != room and target not in ALLOWED[room]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not wrong, f"{room} may import only {sorted(ALLOWED[room])}:\n" + "\n".join(wrong)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_rooms() -> None:
    assert _cycle(_edges()) is None
    assert _cycle(ALLOWED) is None, "the plan itself must point one way"


def test_the_pure_core_imports_no_airflow() -> None:
    wrong = []
    for room, path in _modules():
        if room not in CORE:
            continue
        for module, line in _imports(path):
            if module == "airflow" or module.startswith("airflow."):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not wrong, "the core reaches Airflow only through compat:\n" + "\n".join(wrong)


def test_importing_the_core_leaves_airflow_unloaded() -> None:
    """The same rule as it runs: a fresh interpreter imports every core module, and no Airflow."""
    modules = sorted(
        ".".join([NAME, *path.relative_to(PACKAGE).with_suffix("").parts]).removesuffix(".__init__")
        for room, path in _modules()
        if room in CORE
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_room_says_what_it_is_for_and_what_it_may_import() -> None:
    silent = []
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        if folder.name in {"hooks", "operators", "sensors", "triggers"}:  # Airflow's own layout
            continue
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        if "import" not in doc.lower():
            silent.append(folder.name)
    assert not silent


def test_every_module_starts_with_a_docstring() -> None:
    missing = [
        str(path.relative_to(PACKAGE.parent))
        for _, path in _modules()
        if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not missing


#: Generated data (scripts/gen_*.py), not written by hand.
GENERATED = {"bulk/_record_types.py", "testing/emulator/_reporting_catalogue.py", "testing/emulator/_bulk_catalogue.py"}


def test_no_hand_written_module_over_600_lines() -> None:
    """A module past 600 lines holds more than one idea: split it (docs/architecture.md)."""
    long = {
        str(path.relative_to(PACKAGE)): count
        for _, path in _modules()
        if str(path.relative_to(PACKAGE)) not in GENERATED and (count := len(path.read_text().splitlines())) > 600
    }
    assert not long
