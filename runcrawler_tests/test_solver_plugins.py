"""A site's solver plugin, packaged apart, is found through its entry point and used.

The example package (example_solver_plugin/) is made importable without pip:
its folder goes on sys.path, and a `*.dist-info` holding the entry points its
pyproject.toml declares goes in a temporary folder on sys.path, which is what
an installation leaves for `importlib.metadata`. That works offline and in a
fresh venv (pip would need the network or `wheel` for an editable install).
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from runcrawler_assets.archive.discovery import walk_runs
from runcrawler_assets.solvers import (
    ENTRY_POINT_GROUP,
    StageLabel,
    parse_run,
    registered_parsers,
    stages_of,
)
from runcrawler_assets.solvers.avbp.milestones import MILESTONES
from runcrawler_assets.solvers.openfoam.stages import STAGES

PLUGIN = Path(__file__).parent / "example_solver_plugin"
NOW = datetime(2024, 3, 20, 12, 0, 0)


def _dist_info(site: Path) -> None:
    """The metadata an installation of the example would write, from its pyproject.toml."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
        encoding="utf-8",
    )
    entries = project["entry-points"][ENTRY_POINT_GROUP]
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{name} = {target}" for name, target in entries.items())]
    info.joinpath("entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example plugin visible to importlib.metadata; the registry cache cleared around it."""
    site = tmp_path / "site"
    _dist_info(site)
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    registered_parsers.cache_clear()
    yield
    registered_parsers.cache_clear()
    sys.modules.pop("toysolver_runcrawler", None)


def _toy_run(root: Path, log: str) -> Path:
    run = root / "kraken" / "alice" / "toy_case"
    run.mkdir(parents=True)
    (run / "toy.inp").write_text("Steps = 3\nmodel = simple\n", encoding="utf-8")
    (run / "toy.log").write_text(log, encoding="utf-8")
    return run


def test_the_plugin_is_registered_after_the_built_in_parsers(installed_plugin: None) -> None:
    names = [parser.name for parser in registered_parsers()]
    assert names[:2] == ["avbp", "openfoam"]
    assert "toy" in names


def test_the_plugin_parses_the_runs_it_detects(installed_plugin: None, tmp_path: Path) -> None:
    run = _toy_run(tmp_path, "Step 1\nStep 2\nStep 3\nDONE\n")
    record = parse_run(run, tmp_path, NOW)
    assert record is not None
    assert (record.solver, record.status, record.iterations_done) == ("toy", "success", 3)
    assert record.params == {"steps": "3", "model": "simple"}


def test_the_plugin_uses_the_shared_verdicts(installed_plugin: None, tmp_path: Path) -> None:
    run = _toy_run(tmp_path, "Step 1\nFATAL: cannot open file mesh.dat\n")
    old = (NOW - timedelta(days=10)).timestamp()
    for path in run.iterdir():
        os.utime(path, (old, old))
    record = parse_run(run, tmp_path, NOW)
    assert record is not None
    assert (record.status, record.error_category) == ("failed", "input_file")


def test_discovery_finds_the_plugins_runs(installed_plugin: None, tmp_path: Path) -> None:
    _toy_run(tmp_path, "Step 1\n")
    found = list(walk_runs(tmp_path, tmp_path))
    assert [(run.run_path, run.solver) for run in found] == [("kraken/alice/toy_case", "toy")]


def test_without_the_plugin_a_toy_run_is_no_run(tmp_path: Path) -> None:
    registered_parsers.cache_clear()
    run = _toy_run(tmp_path, "Step 1\n")
    assert parse_run(run, tmp_path, NOW) is None


def test_the_built_in_parsers_declare_their_stages_in_order() -> None:
    assert stages_of("avbp") == tuple(StageLabel(m.code, m.label) for m in MILESTONES)
    assert stages_of("openfoam") == tuple(StageLabel(s.code, s.label) for s in STAGES)
    assert stages_of("openfoam")[-1] == StageLabel(0, "success")


def test_a_plugin_that_declares_no_stages_has_none(installed_plugin: None) -> None:
    assert not hasattr(next(p for p in registered_parsers() if p.name == "toy"), "stages")
    assert stages_of("toy") == ()


def test_an_unknown_solver_has_no_stages() -> None:
    assert stages_of("no-such-solver") == ()
