"""Find run directories in the archive and fingerprint them, from names and stat alone.

Discovery never opens a file: it lists folders, asks the solver registry
whether a folder is a run directory (parsers detect by name and stat), and
fingerprints a run by the names, sizes and modification times of the files
directly in its folder (solver outputs live in subfolders and are never
read). Symbolic links are never followed, so a link loop or a link out of
the archive cannot lead the walk astray. A folder that cannot be listed
becomes a `Problem`, never an exception.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runcrawler_assets.settings import Layout, Settings
from runcrawler_assets.solvers import SolverParser, parser_for, registered_parsers


@dataclass(frozen=True)
class DiscoveredRun:
    """A run directory and what decides whether it must be parsed again."""

    run_path: str  # relative to the archive root, /-separated
    solver: str
    fingerprint: str
    n_files: int
    n_bytes: int


@dataclass(frozen=True)
class Problem:
    """Something in the archive that could not be looked at, and why."""

    path: str  # relative to the archive root
    reason: str
    detail: str


def relative_path(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def fingerprint(run_dir: Path) -> tuple[str, int, int]:
    """(digest, files, bytes) of the regular files directly in `run_dir`."""
    entries: list[str] = []
    n_bytes = 0
    with os.scandir(run_dir) as it:
        for entry in it:
            info = entry.stat(follow_symlinks=False)
            kind = "f" if stat.S_ISREG(info.st_mode) else "d" if stat.S_ISDIR(info.st_mode) else "o"
            size = info.st_size if kind == "f" else 0
            entries.append(f"{entry.name}\0{kind}\0{size}\0{info.st_mtime_ns}")
            n_bytes += size
    entries.sort()
    digest = hashlib.sha1("\n".join(entries).encode("utf-8", "surrogateescape")).hexdigest()
    return digest, len(entries), n_bytes


def walk_runs(
    base: Path, root: Path, parsers: tuple[SolverParser, ...] | None = None
) -> Iterator[DiscoveredRun | Problem]:
    """Every run directory below `base` (depth first, sorted), and every problem met."""
    parsers = parsers if parsers is not None else registered_parsers()
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            parser = parser_for(folder, parsers)
            if parser is not None:
                digest, n_files, n_bytes = fingerprint(folder)
                yield DiscoveredRun(
                    relative_path(folder, root), parser.name, digest, n_files, n_bytes
                )
                continue
            with os.scandir(folder) as it:
                children = sorted(
                    (Path(e.path) for e in it if e.is_dir(follow_symlinks=False)), reverse=True
                )
        except OSError as error:
            yield Problem(relative_path(folder, root), "unreadable_folder", str(error))
            continue
        stack.extend(children)


def _subfolders(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def list_partitions(settings: Settings) -> list[tuple[str, str]]:
    """The (cluster, user) pairs present in the archive, by folder names only."""
    root = settings.archive_root
    if settings.layout is Layout.SINGLE:
        return [(settings.fixed_cluster, settings.user_name)]
    if settings.layout is Layout.USER:
        return [(settings.fixed_cluster, user) for user in _subfolders(root)]
    return [
        (cluster, user) for cluster in _subfolders(root) for user in _subfolders(root / cluster)
    ]


def partition_folder(settings: Settings, cluster: str, user: str) -> Path:
    """The archive folder holding one partition's runs."""
    root = settings.archive_root
    if settings.layout is Layout.SINGLE:
        return root
    if settings.layout is Layout.USER:
        return root / user
    return root / cluster / user


@dataclass(frozen=True)
class PartitionDiscovery:
    """What one cluster × user folder holds: its runs and the problems met."""

    cluster: str
    user: str
    runs: tuple[DiscoveredRun, ...]
    problems: tuple[Problem, ...]

    @property
    def n_bytes(self) -> int:
        return sum(run.n_bytes for run in self.runs)


def discover_partition(settings: Settings, cluster: str, user: str) -> PartitionDiscovery:
    """The runs and problems of one partition; a missing folder is an empty partition."""
    folder = partition_folder(settings, cluster, user)
    runs: list[DiscoveredRun] = []
    problems: list[Problem] = []
    if folder.is_dir():
        for item in walk_runs(folder, settings.archive_root):
            (runs if isinstance(item, DiscoveredRun) else problems).append(item)
    return PartitionDiscovery(cluster, user, tuple(runs), tuple(problems))


def partition_digest(runs: Iterable[DiscoveredRun]) -> str:
    """One digest for a partition's whole state: what the archive sensor compares."""
    joined = "\n".join(
        f"{r.run_path}\0{r.fingerprint}" for r in sorted(runs, key=lambda r: r.run_path)
    )
    return hashlib.sha1(joined.encode("utf-8", "surrogateescape")).hexdigest()
