"""Rescan a partition for the sensor: one `stat` per finished run whose folder did not change.

Why: the sensor's tick compares one digest per partition (discovery.fingerprints_digest)
with the last one, every minute; listing every run folder and stating every file in it
grows with the archive (7 s at 100,000 runs). A folder's own mtime and ctime change
whenever an entry is added, removed or renamed in it (ctime even when a copy tool sets
the mtime back), so a folder that kept its (mtime, ctime, inode) kept its listing:

- a run whose folder, and log folders, kept theirs keeps its last fingerprint, as long
  as no file was rewritten in place. Only logs still being written are rewritten in
  place: a run whose newest file is younger than the parsers' running window
  (`RUNNING_WINDOW`, 2 days) is listed and stated in full at every tick, so the logs of
  running runs are still watched. A finished run's file edited in place (not appended by
  its solver) is picked up by the nightly reconciliation, which parses every run again;
- a folder above the runs that kept its key keeps its subfolders, which are not listed
  again (one `stat` instead of a listing), when no parser could claim it without a new
  entry in it (markers answered from its listing: see `_claim_needs_entries`).

The per-partition memory (`PartitionState`) is plain tuples, saved with `marshal` (a
million runs load in under a second, JSON took 2.5 s; never pickle) in the data folder,
one file per partition, rewritten only when the partition changed, read at each tick
(one partition in memory at a time). `runcrawler crawl` reads and keeps the same files
to find what changed (`crawl.check_archive`), so an idle crawl costs what a tick does.
A lost, corrupt (checksum) or foreign file, or another set of parsers, means one full
scan, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from runcrawler_assets.archive.discovery import (
    Check,
    DiscoveredRun,
    PartitionDiscovery,
    Problem,
    claimant,
    discover_partition,
    fingerprint_with_times,
    fingerprints_digest,
    first_link,
    link_problems,
    parser_check,
    partition_folder,
    path_order,
    sorted_listing,
    walk_runs,
)
from runcrawler_assets.config import Config
from runcrawler_assets.solvers import SolverParser, registered_parsers
from runcrawler_assets.solvers.rundir import LOG_FOLDERS
from runcrawler_assets.solvers.verdicts import RUNNING_WINDOW

# What the scan remembers of a run, as plain values: its fingerprint, its newest file's
# mtime (whole seconds), the key of its folder (`_folder_key`) and the (name, key) of each
# of its log folders.
KnownRun = tuple[str, int, int, tuple[tuple[str, int], ...]]
# Of a folder above the runs: its key and the names of its subfolders.
KnownFolder = tuple[int, tuple[str, ...]]

# A folder whose ctime is less than this before the scan may change again within the same
# timestamp tick (coarse on some file systems, or on a writer whose clock lags) and keep its
# key: it is remembered with a key no stat matches, and listed again at the next tick.
SETTLE_NS = 2_000_000_000
_UNSETTLED = -1  # never a hash() value

# A state file: this magic (its format), the CRC-32 of the marshalled payload, the payload.
_MAGIC = b"runcrawler sensor state 3\n"


@dataclass(frozen=True)
class PartitionState:
    """The runs and folders of one partition as last scanned (by path), and their digest."""

    parsers: tuple[str, ...] = ()
    digest: str = ""
    runs: dict[str, KnownRun] = field(default_factory=dict)
    folders: dict[str, KnownFolder] = field(default_factory=dict)


def _folder_key(info: os.stat_result) -> int:
    """A folder's state: its entries changed if this changed (a hash: ints hash the same
    in every process, and 64 bits make a collision on the same folder negligible)."""
    return hash((info.st_mtime_ns, info.st_ctime_ns, info.st_ino))


def _listed_key(info: os.stat_result, settled: int) -> int:
    """The key to remember of a folder about to be listed: `_UNSETTLED` if it changed after
    `settled` (a change later in the same timestamp tick would keep its key, unseen)."""
    return _folder_key(info) if info.st_ctime_ns < settled else _UNSETTLED


def _unchanged(parent: int, name: str, known: KnownRun) -> bool:
    """The run folder `name` of the open folder `parent`, and its log folders, kept their
    keys (a stat relative to the parent: no walk down the whole path per run)."""
    try:
        if _folder_key(os.stat(name, dir_fd=parent, follow_symlinks=False)) != known[2]:
            return False
        for log, key in known[3]:  # a loop, not all(): cheaper for the many runs with none
            if _folder_key(os.stat(f"{name}/{log}", dir_fd=parent, follow_symlinks=False)) != key:
                return False
    except OSError:
        return False
    return True


def _claim_needs_entries(entries: dict[str, os.DirEntry[str]], checks: list[Check]) -> bool:
    """Whether a parser could claim this unclaimed folder with no entry added, removed or
    renamed in it: one whose `detect` is asked, or whose nested marker's first folder is
    there (its inside may change). Such a folder is listed at every tick."""
    return any(first is None or (nested and first in entries) for _, first, nested in checks)


def _scan_run(key: int, entries: list[os.DirEntry[str]], settled: int) -> KnownRun:
    """Fingerprint a run folder listed after its `key` was taken (so a change in between shows)."""
    logs = []
    for entry in entries:
        if entry.name in LOG_FOLDERS and entry.is_dir(follow_symlinks=False):
            try:
                logs.append((entry.name, _listed_key(entry.stat(follow_symlinks=False), settled)))
            except OSError:
                continue
    digest, newest_ns = fingerprint_with_times(entries)
    return (digest, newest_ns // 1_000_000_000, key, tuple(logs))


class Rescanned(NamedTuple):
    """What `rescan` found below its base: every run and folder (by path), whether all is
    the previous state's, the folders above the runs it listed but does not remember
    (`_claim_needs_entries`: `folders` holds the others), and the folders it could not list
    (problems): what `discovery_from_scan` needs beside the state."""

    runs: dict[str, KnownRun]
    folders: dict[str, KnownFolder]
    same: bool
    unremembered: set[str]
    problems: list[Problem]


def rescan(
    base: Path,
    root: Path,
    previous: PartitionState,
    parsers: tuple[SolverParser, ...] | None = None,
    now_ns: int | None = None,
) -> Rescanned:
    """Every run and folder below `base` (path relative to `root`), reusing `previous` for
    each finished run and each folder that kept its key."""
    checks = [parser_check(p) for p in (parsers if parsers is not None else registered_parsers())]
    now = time.time_ns() if now_ns is None else now_ns
    live_since = (now - int(RUNNING_WINDOW.total_seconds() * 1e9)) // 1_000_000_000
    settled = now - SETTLE_NS
    prefix = os.path.join(root, "")
    runs: dict[str, KnownRun] = {}
    folders: dict[str, KnownFolder] = {}
    unremembered: set[str] = set()
    problems: list[Problem] = []
    reused = True
    stack = [str(base)]
    while stack:
        folder = stack.pop()
        relative = folder[len(prefix) :]
        try:
            info = os.stat(folder, follow_symlinks=False)
            remembered = previous.folders.get(relative)
            if remembered is not None and remembered[0] == _folder_key(info):
                folders[relative] = remembered
                names = remembered[1]
            else:
                key = _listed_key(info, settled)
                entries = sorted_listing(folder)
                by_name = {e.name: e for e in entries}
                if claimant(folder, by_name, checks) is not None:
                    run = _scan_run(key, entries, settled)
                    kept = previous.runs.get(relative)
                    if kept != run:
                        kept, reused = run, False
                    runs[relative] = kept
                    continue
                names = tuple(e.name for e in entries if e.is_dir(follow_symlinks=False))
                if not _claim_needs_entries(by_name, checks):
                    folders[relative] = (key, names)
                    reused = False  # not remembered, or with another key
                else:
                    unremembered.add(relative)
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:  # the digest covers runs only; the discovery reports it
            # Once: a folder stated, then gone when opened (a race) is neither remembered
            # nor listed again for its links.
            folders.pop(relative, None)
            unremembered.discard(relative)
            problems.append(Problem(relative, "unreadable_folder", str(error)))
            continue
        try:
            for name in names:
                path = f"{relative}/{name}" if relative else name
                known = previous.runs.get(path)
                if known is not None and known[1] < live_since and _unchanged(fd, name, known):
                    runs[path] = known  # finished and unchanged: one stat
                else:
                    stack.append(os.path.join(folder, name))
        finally:
            os.close(fd)
    same = reused and len(runs) == len(previous.runs) and len(folders) == len(previous.folders)
    return Rescanned(runs, folders, same, unremembered, problems)


def rescan_partition(
    settings: Config, cluster: str, user: str, previous: PartitionState, now_ns: int | None = None
) -> PartitionState:
    """The partition's runs and digest now, as the sensor compares them: `previous` itself
    when nothing changed (nothing to save)."""
    return _rescan_partition(settings, cluster, user, previous, now_ns)[0]


def _rescan_partition(
    settings: Config, cluster: str, user: str, previous: PartitionState, now_ns: int | None = None
) -> tuple[PartitionState, Rescanned | None]:
    """`rescan_partition`, with what the rescan found (None: no folder, or a link on the
    way to it: nothing scanned)."""
    parsers = registered_parsers()
    names = tuple(p.name for p in parsers)
    known = previous if previous.parsers == names else PartitionState(names)
    root = settings.archive_root
    folder = partition_folder(settings, cluster, user)
    scanned = None
    runs: dict[str, KnownRun] = {}
    same = not known.runs and not known.folders
    if first_link(folder, root) is None and folder.is_dir():
        scanned = rescan(folder, root, known, parsers, now_ns)
        runs, same = scanned.runs, scanned.same
    if same and known.digest:
        return known, scanned
    digest = fingerprints_digest((path, run[0]) for path, run in runs.items())
    return PartitionState(names, digest, runs, scanned.folders if scanned else {}), scanned


def state_file(settings: Config, cluster: str, user: str) -> Path:
    """Where a partition's state is kept (a hash of its names: any name is a file name)."""
    key = f"{cluster}\0{user}".encode("utf-8", "surrogateescape")
    return settings.data_dir / "sensor_state" / f"{hashlib.sha1(key).hexdigest()[:20]}.state"


def scan_partition(settings: Config, cluster: str, user: str) -> tuple[PartitionState, bool]:
    """The partition's state now, and whether anything in it changed since the last scan
    (by the sensor or by `runcrawler crawl`: both keep the same files); a changed state is
    saved for the next one."""
    state, changed, _ = _scan_and_save(settings, cluster, user)
    return state, changed


def _scan_and_save(
    settings: Config, cluster: str, user: str
) -> tuple[PartitionState, bool, Rescanned | None]:
    """`scan_partition`, with what the rescan found, for a parser set that did not change
    since the last scan (else None: all was listed again, under other parsers)."""
    path = state_file(settings, cluster, user)
    previous = load_state(path)
    state, scanned = _rescan_partition(settings, cluster, user, previous)
    if state is not previous:
        save_state(path, state)
    same_parsers = previous.parsers == state.parsers
    return state, state is not previous, scanned if same_parsers else None


def _links_in(folder: Path, root: Path) -> list[Problem]:
    """The problems of a folder above the runs, from its listing: its links, or itself."""
    try:
        return link_problems(sorted_listing(str(folder)), root)
    except OSError as error:
        return [Problem(folder.relative_to(root).as_posix(), "unreadable_folder", str(error))]


def discovery_from_scan(
    settings: Config, cluster: str, user: str, last: PartitionDiscovery
) -> tuple[PartitionDiscovery, int]:
    """What `discover_partition` finds, walking only what the sensor's scan shows changed
    (and saving the scan, as `scan_partition`), and how many run folders were walked.

    A run the scan gives the fingerprint `last` (the partition's last discovery) holds for
    it keeps what `last` says of it (its solver, files and bytes); the others are walked.
    The folders above the runs are listed for their links (the scan may be newer than
    `last`: its problems are not taken; the tick never looks at links). So, as for the
    sensor's tick, a finished run's file rewritten in place with no folder changing is not
    seen (the nightly reconciliation walks everything). With no scan to go by (no folder, a
    link on the way, other parsers), the whole partition is walked.
    """
    _, _, scanned = _scan_and_save(settings, cluster, user)
    if scanned is None:
        discovery = discover_partition(settings, cluster, user)
        return discovery, len(discovery.runs)
    root = settings.archive_root
    parsers = registered_parsers()
    known = {run.run_path: run for run in last.runs if isinstance(run, DiscoveredRun)}
    runs: list[DiscoveredRun] = []
    problems = list(scanned.problems)
    for folder in scanned.folders.keys() | scanned.unremembered:  # few: the folders above the runs
        problems += _links_in(root / folder, root)
    walked = 0
    for path, (fingerprint, *_) in scanned.runs.items():
        run = known.get(path)
        if run is not None and run.fingerprint == fingerprint:
            runs.append(run)
            continue
        walked += 1
        for item in walk_runs(root / path, root, parsers):
            (runs if isinstance(item, DiscoveredRun) else problems).append(item)
    runs.sort(key=lambda run: path_order(run.run_path))
    problems.sort(key=lambda problem: path_order(problem.path))
    return PartitionDiscovery(cluster, user, tuple(runs), tuple(problems)), walked


def load_state(path: Path) -> PartitionState:
    """The state saved there, or an empty one (missing, corrupt, another format: the
    checksum is checked before `marshal` reads a byte of it)."""
    try:
        saved = path.read_bytes()
    except OSError:
        return PartitionState()
    size = len(_MAGIC)
    payload = saved[size + 4 :]
    if saved[:size] != _MAGIC or saved[size : size + 4] != zlib.crc32(payload).to_bytes(4, "big"):
        return PartitionState()
    try:
        parsers, digest, runs, folders = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return PartitionState()
    return PartitionState(parsers, digest, runs, folders)


def save_state(path: Path, state: PartitionState) -> None:
    """Write the state atomically (a reader sees the old file or the new one), through a
    temporary file of the writing process's own (two processes never share one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = marshal.dumps((state.parsers, state.digest, state.runs, state.folders))
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(_MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload)
    os.replace(temporary, path)
