"""Find run directories in the archive and fingerprint them, from names and stat alone.

Discovery never opens a file: it lists each folder once, asks the solver
parsers whether the folder is a run directory (a `MarkerFileParser`'s marker
is looked up in that listing, other parsers' `detect` is called), and
fingerprints a run from the same listing: the name, size and modification
time of each regular file directly in it, and only the names of its
subfolders and other entries. Subfolders are never stat'ed: AVBP's MESH/ and
SOLUT/ hold nothing a parser reads, OpenFOAM's time folders show as new
names, and an OpenFOAM dictionary edited after its run (system/, constant/)
is picked up by the nightly reconciliation, which parses every run again.
This keeps a full scan to one listing and one stat per file of a run; the
sensor's tick goes further (rescan.py): one stat per finished run whose folder
did not change.

Symbolic links are never followed, so a link loop or a link out of the
archive cannot lead the walk astray; each one the walk meets becomes a
`Problem` (so it shows in quarantine) whose detail says whether it leads out
of the archive, never where. A folder that cannot be listed becomes a
`Problem` too, never an exception.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runcrawler_assets.config import Config, Layout
from runcrawler_assets.solvers import SolverParser, registered_parsers
from runcrawler_assets.solvers.rundir import LOG_FOLDERS, MarkerFileParser


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


def path_order(path: str) -> list[str]:
    """The sort key that lists paths (relative, /-separated) as the walk meets them, depth
    first with each folder's entries sorted: so a discovery made in parts reads the same."""
    return path.split("/")


def fingerprint(entries: list[os.DirEntry[str]]) -> tuple[str, int, int]:
    """(digest, files, bytes) of a run directory from its listing, sorted by name.

    Regular files count by name, size and mtime (a log growing in place changes
    its own size and mtime, never its folder's); subfolders, links and special
    files by name and kind only, from the listing's file types, without a stat.
    The files of its `LOG_FOLDERS` count too, named `<folder>/<file>`: one more
    listing, only for a run that has such a folder.
    """
    digest, n_files, n_bytes, _ = _fingerprint(entries)
    return digest, n_files, n_bytes


def fingerprint_with_times(entries: list[os.DirEntry[str]]) -> tuple[str, int]:
    """(digest, newest mtime_ns of its files, 0 if none): `fingerprint` for the sensor's
    rescan, which watches a run in full while its newest file is recent."""
    digest, _, _, newest = _fingerprint(entries)
    return digest, newest


def _fingerprint(entries: list[os.DirEntry[str]]) -> tuple[str, int, int, int]:
    lines: list[str] = []
    n_files = n_bytes = newest = 0
    named = [(entry.name, entry) for entry in entries]
    for entry in entries:
        if entry.name in LOG_FOLDERS and entry.is_dir(follow_symlinks=False):
            try:
                named += [(f"{entry.name}/{e.name}", e) for e in sorted_listing(entry.path)]
            except OSError:
                continue  # the parser reports it as a warning of the run
    for name, entry in named:
        if entry.is_file(follow_symlinks=False):
            info = entry.stat(follow_symlinks=False)
            lines.append(f"{name}\0f\0{info.st_size}\0{info.st_mtime_ns}")
            n_files += 1
            n_bytes += info.st_size
            newest = max(newest, info.st_mtime_ns)
        else:
            kind = "d" if entry.is_dir(follow_symlinks=False) else "o"
            lines.append(f"{name}\0{kind}")
    digest = hashlib.sha1("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
    return digest, n_files, n_bytes, newest


def sorted_listing(folder: str) -> list[os.DirEntry[str]]:
    """The entries of `folder`, sorted by name (deterministic order)."""
    with os.scandir(folder) as it:
        return sorted(it, key=lambda entry: entry.name)


# How a parser is asked about a folder: None calls its `detect`; else the marker's
# first name, which must be a regular file (a one-name marker) or a folder in the listing.
Check = tuple[SolverParser, str | None, bool]


def parser_check(parser: SolverParser) -> Check:
    """A `MarkerFileParser` (its own `detect`) is answered from the listing; any other asked."""
    if (
        not isinstance(parser, MarkerFileParser)
        or type(parser).detect is not MarkerFileParser.detect
    ):
        return parser, None, False
    parts = Path(parser.marker).parts
    if not parts or any(part in {"..", "/"} for part in parts):
        return parser, None, False
    return parser, parts[0], len(parts) > 1


def claimant(
    folder: str, entries: dict[str, os.DirEntry[str]], checks: list[Check]
) -> SolverParser | None:
    """The first parser claiming `folder`; a nested marker is stat'ed only if listed."""
    for parser, first, nested in checks:
        if first is None:
            if parser.detect(Path(folder)):
                return parser
            continue
        entry = entries.get(first)
        if entry is None:
            continue
        if not nested and entry.is_file(follow_symlinks=False):
            return parser
        if nested and entry.is_dir(follow_symlinks=False) and parser.detect(Path(folder)):
            return parser
    return None


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


def link_problems(entries: Iterable[os.DirEntry[str]], root: Path) -> list[Problem]:
    """The symbolic links of a folder's listing, each a problem: never followed."""
    return [symlink_problem(Path(entry.path), root) for entry in entries if entry.is_symlink()]


def walk_runs(
    base: Path, root: Path, parsers: tuple[SolverParser, ...] | None = None
) -> Iterator[DiscoveredRun | Problem]:
    """Every run directory below `base` (depth first, sorted), and every problem met.

    Folders travel as strings, not `Path`s: at one folder per run, building paths
    cost a fifth of a tick.
    """
    checks = [parser_check(p) for p in (parsers if parsers is not None else registered_parsers())]
    prefix = os.path.join(root, "")

    def relative(folder: str) -> str:
        if folder.startswith(prefix):
            return folder[len(prefix) :]
        return relative_path(Path(folder), root)

    stack = [str(base)]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted_listing(folder)
            parser = claimant(folder, {e.name: e for e in entries}, checks)
            if parser is not None:
                digest, n_files, n_bytes = fingerprint(entries)
                yield DiscoveredRun(relative(folder), parser.name, digest, n_files, n_bytes)
                continue
        except OSError as error:
            yield Problem(relative(folder), "unreadable_folder", str(error))
            continue
        yield from link_problems(entries, root)
        stack.extend(e.path for e in reversed(entries) if e.is_dir(follow_symlinks=False))


def _subfolders(folder: Path) -> list[str]:
    """Folder names, and links (reported by `discover_partition`, never followed)."""
    try:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if e.is_dir(follow_symlinks=False) or e.is_symlink())
    except OSError:
        return []


def first_link(folder: Path, root: Path) -> Path | None:
    """The first symbolic link on the way down from `root` to `folder`, if any."""
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def list_partitions(settings: Config) -> list[tuple[str, str]]:
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


def partition_folder(settings: Config, cluster: str, user: str) -> Path:
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


def discover_partition(settings: Config, cluster: str, user: str) -> PartitionDiscovery:
    """The runs and problems of one partition; a missing folder is an empty partition.

    A partition folder reached through a symbolic link is one problem, never walked.
    """
    root = settings.archive_root
    folder = partition_folder(settings, cluster, user)
    runs: list[DiscoveredRun] = []
    problems: list[Problem] = []
    if (link := first_link(folder, root)) is not None:
        problems.append(symlink_problem(link, root))
    elif folder.is_dir():
        for item in walk_runs(folder, root):
            (runs if isinstance(item, DiscoveredRun) else problems).append(item)
    problems.sort(key=lambda problem: path_order(problem.path))  # a folder's links come first
    return PartitionDiscovery(cluster, user, tuple(runs), tuple(problems))


def fingerprints_digest(fingerprints: Iterable[tuple[str, str]]) -> str:
    """One digest for a partition's whole state, from each run's (path, fingerprint): what
    the archive sensor compares, whether the runs come from a discovery
    (`partition_digest`) or from the sensor's per-run state (`rescan`)."""
    joined = "\n".join(f"{path}\0{fingerprint}" for path, fingerprint in sorted(fingerprints))
    return hashlib.sha1(joined.encode("utf-8", "surrogateescape")).hexdigest()


def partition_digest(runs: Iterable[DiscoveredRun]) -> str:
    """`fingerprints_digest` of discovered runs."""
    return fingerprints_digest((run.run_path, run.fingerprint) for run in runs)
