"""The solver registry: which parser claims a run directory.

A solver parser is any object with a `name`, a cheap `detect(run_dir)` (stat
only, no file contents: discovery calls it on every folder of the archive)
and a `parse(run_dir, archive_root, now)` that never raises for bad input.
Parsers are found through the `runcrawler.solvers` entry-point group, so a
site adds its own solver as a separate package; the built-in ones are also
registered directly so that an uninstalled checkout still works.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.rundir import bound_file_times

ENTRY_POINT_GROUP = "runcrawler.solvers"


@runtime_checkable
class SolverParser(Protocol):
    """What the crawl needs of a solver."""

    name: str

    def detect(self, run_dir: Path) -> bool:
        """Whether `run_dir` is a run of this solver, from names and stat alone."""
        ...

    def parse(self, run_dir: Path, archive_root: Path, now: datetime | None = None) -> RunRecord:
        """One record for the run; bad input gives warnings in the record, never an exception."""
        ...


def _builtin_parsers() -> list[SolverParser]:
    from runcrawler_assets.solvers.avbp.parser import AvbpParser
    from runcrawler_assets.solvers.openfoam.parser import OpenFoamParser

    return [AvbpParser(), OpenFoamParser()]


@cache
def registered_parsers() -> tuple[SolverParser, ...]:
    """Every parser, built-in first, then the entry points' (first of a name wins)."""
    parsers: dict[str, SolverParser] = {p.name: p for p in _builtin_parsers()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in parsers:
            continue
        loaded = ep.load()
        parser = loaded() if isinstance(loaded, type) else loaded
        parsers[parser.name] = parser
    return tuple(parsers.values())


def parser_for(run_dir: Path, parsers: Iterable[SolverParser] | None = None) -> SolverParser | None:
    """The first parser that claims `run_dir`, or None when it is not a run directory."""
    for parser in parsers if parsers is not None else registered_parsers():
        if parser.detect(run_dir):
            return parser
    return None


def parse_run(
    run_dir: str | Path, archive_root: str | Path, now: datetime | None = None
) -> RunRecord | None:
    """Parse one run directory with whichever solver claims it (None when none does)."""
    run_dir, archive_root = Path(run_dir), Path(archive_root)
    parser = parser_for(run_dir)
    return bound_file_times(parser.parse(run_dir, archive_root, now)) if parser else None
