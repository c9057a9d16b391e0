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


def project_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of the project's packages by dotted name (packages by their ``__init__``)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
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


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if ".migrations" in name:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set(imported_names(tree, name, path.name == "__init__.py"))
        # Importing a.b.c runs a/__init__ and a/b/__init__ first, so a cycle can pass through a
        # package's __init__; the importer's own packages are already running, so not those.
        own = enclosing_packages(name)
        targets |= {p for t in targets for p in enclosing_packages(t) if p not in own}
        graph[name] = {t for t in targets if t in modules and t != name and ".migrations" not in t}
    return graph


def enclosing_packages(module: str) -> set[str]:
    """``a.b.c`` -> ``{"a", "a.b"}``."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_cycle(graph: dict[str, set[str]]) -> str | None:
    """One cycle of the graph as "a imports b imports ... imports a", or None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        # graphlib lists each module before the one that imports it, hence reversed.
        return " imports ".join(reversed(error.args[1]))
    return None


def test_no_import_cycle() -> None:
    assert import_cycle(import_graph()) is None


# Each: files of a package "app" that make one cycle the check must see (and the cycle it names).
HIDDEN_CYCLES = {
    "function-local import of a submodule by from-import": (
        {"a.py": "from app import b\n", "b.py": "def f():\n    from app import a\n"},
        "app.a imports app.b imports app.a",
    ),
    "relative import in a method": (
        {
            "a.py": "from app.b import x\n",
            "b.py": "class C:\n    def m(self):\n        from . import a\n",
        },
        "app.a imports app.b imports app.a",
    ),
    "import only for type checking": (
        {
            "a.py": "import app.b\n",
            "b.py": "import typing\nif typing.TYPE_CHECKING:\n    from app.a import y\n",
        },
        "app.a imports app.b imports app.a",
    ),
    "relative import two levels up inside a function of a sub-package": (
        {
            "a.py": "import app.sub.c\n",
            "sub/__init__.py": "",
            "sub/c.py": "def f():\n    from ..a import y\n",
        },
        "app.a imports app.sub.c imports app.a",
    ),
    "through a package's __init__, which importing any of its modules runs": (
        {
            "a.py": "from app.sub.c import x\n",
            "sub/__init__.py": "from app.a import y\n",
            "sub/c.py": "",
        },
        "app.a imports app.sub imports app.a",
    ),
}


@pytest.mark.parametrize("case", HIDDEN_CYCLES)
def test_the_cycle_check_sees_hidden_cycles(tmp_path: Path, case: str) -> None:
    files, cycle = HIDDEN_CYCLES[case]
    for name, text in {"__init__.py": "", **files}.items():
        (tmp_path / "app" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "app" / name).write_text(text)
    found = import_cycle(import_graph(tmp_path, ("app",)))
    assert found is not None
    # graphlib may start the cycle at any of its modules.
    assert set(found.split(" imports ")) == set(cycle.split(" imports "))


def test_the_cycle_check_passes_a_package_that_imports_its_own_modules(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("from app.a import x\n")
    (tmp_path / "app" / "a.py").write_text("import app.b\n")
    (tmp_path / "app" / "b.py").write_text("from app.c import x\n")
    (tmp_path / "app" / "c.py").write_text("")
    assert import_cycle(import_graph(tmp_path, ("app",))) is None


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
