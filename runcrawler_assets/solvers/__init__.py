"""The solver registry: which parser claims a run directory.

A solver parser is any object with a `name`, a cheap `detect(run_dir)` (stat
only, no file contents: discovery calls it on every folder of the archive),
a `parse(run_dir, archive_root, now)` that never raises for bad input, and
its `stages` (how far a run got, in the solver's own words: analytics label
failure stages from here, so a new solver touches nothing downstream).
Parsers are found through the `runcrawler.solvers` entry-point group, so a
site adds its own solver as a separate package; the built-in ones are also
registered directly so that an uninstalled checkout still works.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from runcrawler_assets.config import DEFAULT_DATA, Config
from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.rundir import bound_file_times

ENTRY_POINT_GROUP = "runcrawler.solvers"


@dataclass(frozen=True)
class StageLabel:
    """One stage a run of a solver can reach: the `stage_code` and `stage` columns' values."""

    code: int
    label: str


@runtime_checkable
class SolverParser(Protocol):
    """What the crawl needs of a solver.

    `stages` lists the solver's stages in the order a run goes through them (success
    included, as the solver codes it). A parser written before it existed may lack
    it: `stages_of` then gives none, and analytics fall back on the `stage` column.
    """

    name: str
    stages: tuple[StageLabel, ...]

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


def stages_of(solver: str) -> tuple[StageLabel, ...]:
    """The stages the registered parser named `solver` declares, in order; () if none."""
    parser = next((p for p in registered_parsers() if p.name == solver), None)
    return tuple(getattr(parser, "stages", ()))


def parse_run(
    run_dir: str | Path,
    archive_root: str | Path,
    now: datetime | None = None,
    config: Config | None = None,
) -> RunRecord | None:
    """Parse one run directory with whichever solver claims it (None when none does).

    As the crawl would: cluster and user are those of the partition discovery finds
    the run in, and times resting on a file's mtime are bounded by the longest job,
    both by `config` (default: the `<root>/<cluster>/<user>/` layout, 7 days).
    """
    run_dir, archive_root = Path(run_dir), Path(archive_root)
    parser = parser_for(run_dir)
    if parser is None:
        return None
    config = config or Config(archive_root, DEFAULT_DATA)
    record = bound_file_times(parser.parse(run_dir, archive_root, now), config.max_job_duration)
    partition = _partition_of(run_dir, config)
    if partition is None:
        warning = f"the run directory is in none of the archive's {config.layout} folders"
        return record.replace(parse_warnings=(*record.parse_warnings, warning))
    cluster, user = partition
    return record.replace(cluster=cluster, user=user)


def _partition_of(run_dir: Path, config: Config) -> tuple[str, str] | None:
    """The (cluster, user) partition whose folder holds `run_dir`, as discovery lists them."""
    # Here, not at the top: discovery asks this registry which parser claims a folder.
    from runcrawler_assets.archive.discovery import list_partitions, partition_folder

    for cluster, user in list_partitions(config):
        if run_dir.is_relative_to(partition_folder(config, cluster, user)):
            return cluster, user
    return None
