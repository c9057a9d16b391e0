"""The layout's rules, checked on every run so that they stay true: no import cycle (counting
imports inside functions, which hide cycles rather than remove them), no folder with more than
12 modules side by side, no module over 500 lines (migrations and management commands aside),
and the statistics free of Django.
"""

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("deliberate", "surveys", "results")
MAX_MODULES = 12
MAX_LINES = 500


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages by dotted name (packages by their ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names a module imports, wherever the import statement stands."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if ".migrations" in name:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = imported_names(tree, name, path.name == "__init__.py")
        graph[name] = {t for t in targets if t in modules and t != name and ".migrations" not in t}
    return graph


def test_no_import_cycle() -> None:
    try:
        tuple(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_folders_hold_at_most_twelve_modules() -> None:
    crowded = {}
    for package in PACKAGES:
        for folder in [ROOT / package, *(p for p in (ROOT / package).rglob("*") if p.is_dir())]:
            if folder.name in {"migrations", "__pycache__"}:
                continue
            count = len(list(folder.glob("*.py")))
            if count > MAX_MODULES:
                crowded[str(folder.relative_to(ROOT))] = count
    assert crowded == {}


def test_modules_stay_under_five_hundred_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in project_modules().values()
        if "migrations" not in path.parts and "commands" not in path.parts
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_statistics_import_nothing_of_django() -> None:
    graph = import_graph()
    stats = {name: targets for name, targets in graph.items() if name.startswith("results.stats")}
    assert stats, "results.stats not found"
    outside = {
        name: sorted(t for t in targets if not t.startswith("results.stats"))
        for name, targets in stats.items()
    }
    assert {name: targets for name, targets in outside.items() if targets} == {}
    for name in stats:
        source = project_modules()[name].read_text()
        tree = ast.parse(source)
        imported = {n.split(".")[0] for n in imported_names(tree, name, name.endswith("stats"))}
        assert "django" not in imported, name
