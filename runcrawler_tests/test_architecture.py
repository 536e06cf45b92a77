"""The two floors: the core never loads Dagster; the Dagster layer lives in one subpackage."""

from __future__ import annotations

import ast
import pkgutil
import re
from pathlib import Path

import runcrawler_assets
from runcrawler_tests.conftest import packages_loaded_by

PACKAGE = Path(runcrawler_assets.__file__).parent
# The Dagster floor, and the two entry points allowed to reach it.
DAGSTER_LAYER = "runcrawler_assets.defs"
ENTRY_POINTS = {"runcrawler_assets.definitions", "runcrawler_assets.cli"}
MAX_MODULE_LINES = 600


def _modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages([str(PACKAGE)], prefix="runcrawler_assets.")
    )


def _core_modules() -> list[str]:
    return [
        name
        for name in _modules()
        if not name.startswith(DAGSTER_LAYER) and name not in ENTRY_POINTS
    ]


def _source(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    folder = PACKAGE / relative
    return folder / "__init__.py" if folder.is_dir() else PACKAGE / relative.with_suffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_importing_every_core_module_never_loads_dagster() -> None:
    core = _core_modules()
    assert "runcrawler_assets.crawl" in core and "runcrawler_assets.records" in core
    loaded = packages_loaded_by(
        f"import importlib\nfor name in {core!r}:\n    importlib.import_module(name)\n"
    )
    assert "dagster" not in loaded, "the core loaded Dagster"


def test_only_the_dagster_layer_and_the_entry_points_import_dagster() -> None:
    importers = [
        name
        for name in _modules()
        if any(i == "dagster" or i.startswith("dagster") for i in _imports(_source(name)))
    ]
    outside = [
        name
        for name in importers
        if not name.startswith(DAGSTER_LAYER) and name not in ENTRY_POINTS
    ]
    assert outside == []


def test_no_module_uses_dagster_private_api() -> None:
    private = [
        name
        for name in _modules()
        if any(i.startswith("dagster._") for i in _imports(_source(name)))
    ]
    assert private == []


def test_no_module_is_over_600_lines() -> None:
    sizes = {name: len(_source(name).read_text().splitlines()) for name in _modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_every_module_and_folder_the_architecture_page_names_exists() -> None:
    page = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+(?:\.py|/))`", page))
    assert {"defs/checks.py", "reporting/figures.py", "analytics/store.py"} <= named
    repo = PACKAGE.parent

    def exists(name: str) -> bool:
        if "/" in name.rstrip("/"):
            return (PACKAGE / name).exists() or (repo / name).exists()
        return any(repo.glob(f"*/{name.rstrip('/')}")) or any(PACKAGE.rglob(name.rstrip("/")))

    assert sorted(name for name in named if not exists(name)) == []
