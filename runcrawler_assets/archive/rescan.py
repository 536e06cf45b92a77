"""Rescan a partition for the sensor: one `stat` per finished run whose folder did not change.

Why: the sensor's tick compares one digest per partition (discovery.partition_digest)
with the last one, every minute; listing every run folder and stating every file in it
grows with the archive (7 s at 100,000 runs). A run folder's own mtime and ctime change
whenever an entry is added, removed or renamed in it (ctime even when a copy tool sets
the mtime back), so a run whose folder, and log folders, kept their (mtime, ctime,
inode) since the last scan kept its listing, and its last fingerprint still holds, as
long as no file was rewritten in place. Only logs still being written are rewritten in
place: a run whose newest file is younger than the parsers' running window
(`RUNNING_WINDOW`, 2 days) is listed and stated in full at every tick, so the logs of
running runs are still watched. A finished run's file edited in place (not appended by
its solver) is picked up by the nightly reconciliation, which parses every run again.

The per-run memory (`PartitionState`) is plain tuples, saved as JSON in the data
folder, one file per partition, rewritten only when the partition changed: a lost or
unreadable file, or another set of parsers, means one full scan, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from runcrawler_assets.archive.discovery import (
    claimant,
    fingerprint_with_times,
    first_link,
    parser_check,
    partition_folder,
    sorted_listing,
)
from runcrawler_assets.config import Config
from runcrawler_assets.solvers import SolverParser, registered_parsers
from runcrawler_assets.solvers.rundir import LOG_FOLDERS
from runcrawler_assets.solvers.verdicts import RUNNING_WINDOW

_FORMAT = 2
# What the scan remembers of a run, as plain values (a million of them load in a second):
# its fingerprint, its newest file's mtime (whole seconds), the key of its folder (a hash of
# its mtime_ns, ctime_ns and inode) and the (name, key) of each of its log folders.
KnownRun = tuple[str, int, int, tuple[tuple[str, int], ...]]


@dataclass
class PartitionState:
    """The runs of one partition as last scanned (run path -> `KnownRun`) and their digest."""

    parsers: tuple[str, ...] = ()
    digest: str = ""
    runs: dict[str, KnownRun] = field(default_factory=dict)


def digest_of(runs: dict[str, KnownRun]) -> str:
    """discovery.partition_digest of these runs (same text hashed), from the state alone."""
    joined = "\n".join(f"{path}\0{runs[path][0]}" for path in sorted(runs))
    return hashlib.sha1(joined.encode("utf-8", "surrogateescape")).hexdigest()


def _folder_key(info: os.stat_result) -> int:
    """A folder's state: its entries changed if this changed (a hash: ints hash the same
    in every process, and 64 bits make a collision on the same folder negligible)."""
    return hash((info.st_mtime_ns, info.st_ctime_ns, info.st_ino))


def _unchanged(run_dir: str, info: os.stat_result, known: KnownRun) -> bool:
    """The run folder (stat given) and its log folders still have the keys remembered."""
    if _folder_key(info) != known[2]:
        return False
    for name, key in known[3]:
        try:
            if _folder_key(os.stat(os.path.join(run_dir, name), follow_symlinks=False)) != key:
                return False
        except OSError:
            return False
    return True


def _scan_run(folder: str, info: os.stat_result, entries: list[os.DirEntry[str]]) -> KnownRun:
    """Fingerprint a run folder listed after `info` was taken (so a change in between shows)."""
    logs = []
    for entry in entries:
        if entry.name in LOG_FOLDERS and entry.is_dir(follow_symlinks=False):
            try:
                logs.append((entry.name, _folder_key(entry.stat(follow_symlinks=False))))
            except OSError:
                continue
    digest, newest_ns = fingerprint_with_times(entries)
    return (digest, newest_ns // 1_000_000_000, _folder_key(info), tuple(logs))


def rescan(
    base: Path,
    root: Path,
    previous: dict[str, KnownRun],
    parsers: tuple[SolverParser, ...] | None = None,
    now_ns: int | None = None,
) -> dict[str, KnownRun]:
    """Every run below `base` (path relative to `root` -> `KnownRun`), reusing `previous`
    for each finished run whose folders kept their keys."""
    checks = [parser_check(p) for p in (parsers if parsers is not None else registered_parsers())]
    now = time.time_ns() if now_ns is None else now_ns
    live_since = (now - int(RUNNING_WINDOW.total_seconds() * 1e9)) // 1_000_000_000
    prefix = os.path.join(root, "")
    runs: dict[str, KnownRun] = {}
    stack = [str(base)]
    while stack:
        folder = stack.pop()
        relative = folder[len(prefix) :]
        try:
            info = os.stat(folder, follow_symlinks=False)
            entries = sorted_listing(folder)
            if claimant(folder, {e.name: e for e in entries}, checks) is not None:
                run = _scan_run(folder, info, entries)
                runs[relative] = run if previous.get(relative) != run else previous[relative]
                continue
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue  # the run_files asset reports it; the digest covers runs only
        try:  # a stat relative to the open folder: no walk down the whole path per run
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                name = entry.name
                path = f"{relative}/{name}" if relative else name
                known = previous.get(path)
                if known is not None and known[1] < live_since:
                    try:
                        child = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
                        if _unchanged(entry.path, child, known):
                            runs[path] = known
                            continue
                    except OSError:
                        continue
                stack.append(entry.path)
        finally:
            os.close(descriptor)
    return runs


def rescan_partition(
    settings: Config, cluster: str, user: str, previous: PartitionState
) -> PartitionState:
    """The partition's runs and digest now, as the sensor compares them."""
    parsers = registered_parsers()
    names = tuple(p.name for p in parsers)
    known = previous.runs if previous.parsers == names else {}
    root = settings.archive_root
    folder = partition_folder(settings, cluster, user)
    runs: dict[str, KnownRun] = {}
    if first_link(folder, root) is None and folder.is_dir():
        runs = rescan(folder, root, known, parsers)
    same = previous.parsers == names and previous.digest and runs.keys() == known.keys()
    if same and all(runs[path] is known[path] for path in runs):
        return PartitionState(names, previous.digest, runs)
    return PartitionState(names, digest_of(runs), runs)


def state_file(settings: Config, key: str) -> Path:
    """Where the sensor keeps a partition's state (a hash of its key: any name is a file name)."""
    name = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return settings.data_dir / "sensor_state" / f"{name}.json"


def load_state(path: Path) -> PartitionState:
    """The state saved there, or an empty one (missing, unreadable, another format)."""
    try:
        version, parsers, digest, runs = json.loads(path.read_bytes())
        runs = {name: _as_tuples(run) for name, run in runs.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return PartitionState()
    if version != _FORMAT or not isinstance(runs, dict):
        return PartitionState()
    return PartitionState(tuple(parsers), digest, runs)


def _as_tuples(value: object) -> object:
    """JSON's lists back as the tuples the state compares (a run's entry is nested tuples)."""
    return tuple(_as_tuples(item) for item in value) if isinstance(value, list) else value


def save_state(path: Path, state: PartitionState) -> None:
    """Write the state (atomically: a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    saved = json.dumps([_FORMAT, state.parsers, state.digest, state.runs])  # never pickled
    temporary.write_text(saved, encoding="ascii")
    os.replace(temporary, path)
