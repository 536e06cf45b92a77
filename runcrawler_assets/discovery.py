"""Find run directories in the archive and fingerprint them, from names and stat alone.

Discovery never opens a file: it lists folders, asks the solver registry
whether a folder is a run directory (parsers detect by name and stat), and
fingerprints a run by the names, sizes and modification times of the files
directly in its folder (solver outputs live in subfolders and are never
read). Symbolic links are never followed, so a link loop or a link out of
the archive cannot lead the walk astray; each one the walk meets becomes a
`Problem` (so it shows in quarantine) whose detail says whether it leads out
of the archive, never where. A folder that cannot be listed becomes a
`Problem` too, never an exception.
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


def symlink_problem(link: Path, root: Path) -> Problem:
    """A symbolic link met in the archive: not followed, and its target never named."""
    try:
        os.stat(link)
        inside = Path(os.path.realpath(link)).is_relative_to(os.path.realpath(root))
    except OSError:
        return Problem(
            relative_path(link, root),
            "symlink_not_followed",
            "symbolic link that does not resolve (a loop or a missing target), not followed",
        )
    if inside:
        detail = "symbolic link to elsewhere in the archive, not followed"
        return Problem(relative_path(link, root), "symlink_not_followed", detail)
    detail = "symbolic link leading outside the archive, not followed"
    return Problem(relative_path(link, root), "symlink_outside_archive", detail)


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
                entries = list(it)
            children = sorted(
                (Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)), reverse=True
            )
            links = sorted(Path(e.path) for e in entries if e.is_symlink())
        except OSError as error:
            yield Problem(relative_path(folder, root), "unreadable_folder", str(error))
            continue
        for link in links:
            yield symlink_problem(link, root)
        stack.extend(children)


def _subfolders(folder: Path) -> list[str]:
    """Folder names, and links (reported by `discover_partition`, never followed)."""
    try:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False) or e.is_symlink())
    except OSError:
        return []


def _first_link(folder: Path, root: Path) -> Path | None:
    """The first symbolic link on the way down from `root` to `folder`, if any."""
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def list_partitions(settings: Settings) -> list[tuple[str, str]]:
    """The (cluster, user) pairs present in the archive, by folder names only.

    A user entry that is a symbolic link is a pair (its partition reports the link);
    a cluster that is one is not listed, since listing its users would follow it.
    """
    root = settings.archive_root
    if settings.layout is Layout.SINGLE:
        return [(settings.fixed_cluster, settings.user_name)]
    if settings.layout is Layout.USER:
        return [(settings.fixed_cluster, user) for user in _subfolders(root)]
    clusters = [c for c in _subfolders(root) if not (root / c).is_symlink()]
    return [(cluster, user) for cluster in clusters for user in _subfolders(root / cluster)]


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

    @property
    def found(self) -> int:
        """What must each end as a row or a quarantine entry: every run and every problem."""
        return len(self.runs) + len(self.problems)


def discover_partition(settings: Settings, cluster: str, user: str) -> PartitionDiscovery:
    """The runs and problems of one partition; a missing folder is an empty partition.

    A partition folder reached through a symbolic link is one problem, never walked.
    """
    root = settings.archive_root
    folder = partition_folder(settings, cluster, user)
    runs: list[DiscoveredRun] = []
    problems: list[Problem] = []
    if (link := _first_link(folder, root)) is not None:
        problems.append(symlink_problem(link, root))
    elif folder.is_dir():
        for item in walk_runs(folder, root):
            (runs if isinstance(item, DiscoveredRun) else problems).append(item)
    return PartitionDiscovery(cluster, user, tuple(runs), tuple(problems))


def partition_digest(runs: Iterable[DiscoveredRun]) -> str:
    """One digest for a partition's whole state: what the archive sensor compares."""
    joined = "\n".join(
        f"{r.run_path}\0{r.fingerprint}" for r in sorted(runs, key=lambda r: r.run_path)
    )
    return hashlib.sha1(joined.encode("utf-8", "surrogateescape")).hexdigest()
