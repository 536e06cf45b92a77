"""What every solver parser needs of a run directory, whatever the solver writes.

A run's path in the archive (its identity), listing its files by name from one
`scandir` and one stat each, the record's frame with the last-resort guard that
turns a parser bug into a warning, and the derived columns whose rules are
solver-independent (contract-notes 2-4: ended_at, cpu_hours, efficiency). Each
parser only knows what its solver prints; these rules stay the same for all of
them, so they live here once. Which cluster and user a run belongs to is not
here: discovery decides it, by the archive's layout.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from runcrawler_assets.config import DEFAULT_MAX_JOB_DAYS
from runcrawler_assets.records import RunRecord, Status, TimingSource, run_id_for

if TYPE_CHECKING:  # the registry imports this module
    from runcrawler_assets.solvers import StageLabel


@dataclass(frozen=True)
class RunFile:
    """A regular file of the run directory, from one stat."""

    path: Path
    size: int
    mtime: datetime


def utc_naive(timestamp: float) -> datetime:
    """A file modification time as a naive UTC datetime (contract-notes 8)."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


def as_path(path: Path | str) -> Path:
    """`path` as a Path; one already is kept (`Path(path)` parses it again: ~2 µs)."""
    return path if isinstance(path, Path) else Path(path)


def as_utc_naive(now: datetime | None) -> datetime:
    """The crawl's clock as a naive UTC datetime (now when not given)."""
    if now is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now


def stat_mtime(path: Path, warnings: list[str]) -> datetime | None:
    """The modification time of `path` itself (a link's own, never its target's), or None."""
    try:
        return utc_naive(os.lstat(path).st_mtime)
    except (OSError, ValueError) as exc:
        warnings.append(f"{path.name}: cannot stat ({getattr(exc, 'strerror', None) or exc})")
        return None


def is_regular_file(path: Path) -> bool:
    """Lstat only: a symbolic link is not a regular file here (never followed out)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


# Subfolders where users and tools put a run's logs (foamLog's `logs/`, a job script's
# `output/`): their files are the run's as much as the top level's (archive-format.md).
LOG_FOLDERS: tuple[str, ...] = ("logs", "log", "output")


def _kind_of(name: str, kinds: tuple[re.Pattern[str], ...]) -> int | None:
    """The index of the first pattern `name` fully matches, a `.gz` suffix aside.

    Any log may be gzip-compressed (archive-format.md), so patterns name the plain file.
    A loop, not a generator per directory entry.
    """
    plain = name[:-3] if name.endswith(".gz") else name
    for index, pattern in enumerate(kinds):
        if pattern.fullmatch(plain):
            return index
    return None


def _sorted_entries(folder: Path | str, warnings: list[str], where: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        warnings.append(f"cannot list {where} ({exc.strerror or exc})")
        return []


def list_run_files(
    run_dir: Path, kinds: tuple[re.Pattern[str], ...], warnings: list[str]
) -> tuple[list[RunFile], ...]:
    """One list per name pattern (the first that fully matches wins), each oldest first.

    The run directory and its `LOG_FOLDERS` are looked at, by the file's own name.
    Only regular files count: a symbolic link is never followed (it may lead out of
    the archive); a link, special file or file that cannot be stat'ed is a warning.
    """
    found: tuple[list[RunFile], ...] = tuple([] for _ in kinds)
    entries = _sorted_entries(run_dir, warnings, "the run directory")
    folders = [e for e in entries if e.name in LOG_FOLDERS and e.is_dir(follow_symlinks=False)]
    for folder in folders:
        entries += _sorted_entries(folder.path, warnings, f"{folder.name}/")
    for entry in entries:
        kind = _kind_of(entry.name, kinds)
        if kind is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            warnings.append(f"{entry.name}: cannot stat ({exc.strerror or exc})")
            continue
        if stat.S_ISLNK(st.st_mode):
            warnings.append(f"{entry.name}: symbolic link, not followed")
            continue
        if not stat.S_ISREG(st.st_mode):
            if not stat.S_ISDIR(st.st_mode):
                warnings.append(f"{entry.name}: not a regular file, ignored")
            continue
        found[kind].append(RunFile(Path(entry.path), st.st_size, utc_naive(st.st_mtime)))
    for files in found:
        files.sort(key=lambda f: (f.mtime, f.path.name))
    return found


def run_path_of(run_dir: Path, archive_root: Path, warnings: list[str]) -> str:
    """The run directory relative to the archive root, `/`-separated: the run's identity.

    Which cluster and user a run belongs to is discovery's decision (by the archive's
    layout), not a parser's: the crawl sets them from the partition it found the run in.
    """
    if (below := _below(run_dir, archive_root)) is not None:
        return below
    try:
        parts = run_dir.relative_to(archive_root).parts
    except ValueError:
        warnings.append("the run directory is not under the archive root")
        parts = run_dir.parts
    return "/".join(parts)


def relative_to_archive(path: Path, archive_root: Path) -> str:
    if (below := _below(path, archive_root)) is not None:
        return below
    try:
        return path.relative_to(archive_root).as_posix()
    except ValueError:
        return path.as_posix()


def _below(path: Path, root: Path) -> str | None:
    """`path.relative_to(root)` as text when `path` lies below `root`, else None.

    A test on the strings Path keeps, not `relative_to`, which parses both again (~3 µs).
    A path beginning with `//` (a root of its own for pathlib) is left to `relative_to`.
    """
    text, prefix = str(path), str(root)
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    if len(text) > len(prefix) and text.startswith(prefix) and not text.startswith("//"):
        return text[len(prefix) :]
    return None


# The part of a parse that knows the solver: the base record in, the full record out.
ParseBody = Callable[[RunRecord, Path, Path, datetime, list[str]], RunRecord]

# Every field at its default, copied for each run with fresh mutable defaults (`params`):
# `RunRecord(...)` sets its 60 fields one by one (~8 µs a run).
_BLANK = RunRecord()
_FRESH = tuple(
    (f.name, f.default_factory)
    for f in dataclasses.fields(RunRecord)
    if f.default_factory is not dataclasses.MISSING
)


def parse_guarded(
    solver: str, run_dir: Path, archive_root: Path, now: datetime | None, body: ParseBody
) -> RunRecord:
    """`body` on the run's base record; never raises: a parser bug is a warning, not a lost run.

    The base record holds the run's identity (`run_id`, `run_path`), `solver` and
    `parsed_at`; cluster and user are left to the crawl (see `run_path_of`).
    """
    run_dir, archive_root, parsed_at = as_path(run_dir), as_path(archive_root), as_utc_naive(now)
    warnings: list[str] = []
    run_path = run_path_of(run_dir, archive_root, warnings)
    base = _BLANK.replace(
        run_id=run_id_for(run_path),
        run_path=run_path,
        solver=solver,
        parsed_at=parsed_at,
        **{name: make() for name, make in _FRESH},
    )
    try:
        return body(base, run_dir, archive_root, parsed_at, warnings)
    except Exception as exc:  # the last resort: one bad run must not stop a crawl
        warnings.append(f"parser error, record incomplete: {type(exc).__name__}: {exc}")
        return base.replace(parse_warnings=tuple(warnings))


@dataclass(frozen=True)
class MarkerFileParser:
    """A `SolverParser` for a solver whose run directories hold one regular marker file.

    `detect` looks at names and stat only; `parse` runs `body` under `parse_guarded`.
    """

    name: str
    marker: str  # relative to the run directory, e.g. "run.params", "system/controlDict"
    body: ParseBody
    stages: tuple[StageLabel, ...] = ()  # the solver's stages, in order (`SolverParser`)

    def detect(self, run_dir: Path) -> bool:
        return is_regular_file(Path(run_dir) / self.marker)

    def parse(self, run_dir: Path, archive_root: Path, now: datetime | None = None) -> RunRecord:
        """One record for the run; never raises (a parser bug becomes a warning, not a lost run)."""
        return parse_guarded(self.name, run_dir, archive_root, now, self.body)


# ---------------------------------------------------------------- derived columns


def to_float(text: str) -> float | None:
    """A Fortran- or C-style float (`1.0d-3` too); None when it is not a finite number."""
    try:
        value = float(text.strip().lower().replace("d", "e"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class RunTimes:
    """When a run ended, how long it took, and what that rests on (contract-notes 2-3)."""

    ended_at: datetime | None
    wall_time_s: float | None
    source: TimingSource | None


def run_times(
    *,
    started_at: datetime | None,
    printed_end: datetime | None,
    printed_wall_s: float | None,
    status: Status,
    cancelled_at: datetime | None,
    newest_log_mtime: datetime,
    warnings: list[str],
    last_printed: datetime | None = None,
) -> RunTimes:
    """The printed end; else the scheduler's kill time; else the last moment the log printed
    (`last_printed`, e.g. start + the last ClockTime); else, as a last resort, the log's mtime.

    The wall time is the printed one, else end - start. An end before the start is no
    duration (NULL and a warning); a duration resting on a modification time is
    bounded by the crawl (`bound_file_times`).
    """
    if status in (Status.RUNNING, Status.NOT_STARTED):  # no end yet: the time run so far
        so_far = printed_wall_s
        if so_far is None and started_at is not None and last_printed is not None:
            so_far = (last_printed - started_at).total_seconds()
        return RunTimes(None, so_far, TimingSource.LOG if so_far is not None else None)
    ended_at, source = printed_end, TimingSource.LOG
    if ended_at is None and status == Status.KILLED and cancelled_at is not None:
        ended_at, source = cancelled_at, TimingSource.SCHEDULER
    elif ended_at is None and last_printed is not None:
        ended_at = last_printed
    elif ended_at is None:
        ended_at, source = newest_log_mtime, TimingSource.FILE_MTIME
    if printed_wall_s is not None:
        return RunTimes(ended_at, printed_wall_s, TimingSource.LOG)
    if started_at is None or ended_at is None:
        return RunTimes(ended_at, None, None)
    seconds = (ended_at - started_at).total_seconds()
    if seconds < 0:
        warnings.append(f"timing: end {ended_at} is before start {started_at}; no wall time")
        return RunTimes(None if source is TimingSource.FILE_MTIME else ended_at, None, None)
    return RunTimes(ended_at, seconds, source)


# The longest job a cluster runs, by default (setting RUNCRAWLER_MAX_JOB_DAYS).
MAX_JOB_DURATION = timedelta(days=DEFAULT_MAX_JOB_DAYS)


def bound_file_times(record: RunRecord, max_duration: timedelta = MAX_JOB_DURATION) -> RunRecord:
    """No end, wall time or derived CPU hours where they rest on an implausible file mtime.

    An archive is a copy: `cp`, `scp` or `rsync` without `-t` give every file the time
    of the copy, months after the run. A duration resting on a modification time and
    longer than any job is that copy's, not the run's (contract-notes 2). Applied
    once to every solver's record by the crawl, so plugins get it too.
    """
    if (
        record.timing_source != TimingSource.FILE_MTIME
        or record.wall_time_s is None
        or record.wall_time_s <= max_duration.total_seconds()
    ):
        return record
    warning = (
        f"timing: the newest log was modified {record.wall_time_s / 86400:.1f} days after the "
        f"start, longer than any job ({max_duration / timedelta(days=1):g} days): a copy's time, "
        "so no end, wall time or CPU hours"
    )
    return record.replace(
        ended_at=None,
        wall_time_s=None,
        timing_source=None,
        cpu_hours=cpu_hours_of(record.cpu_time_s, None, record.n_procs),
        efficiency=record.efficiency_printed,
        parse_warnings=(*record.parse_warnings, warning),
    )


def cpu_hours_of(
    cpu_time_s: float | None, wall_time_s: float | None, n_procs: int | None
) -> float | None:
    """contract-notes 3: the CPU time when known, else wall time × processes."""
    if cpu_time_s is not None:
        return cpu_time_s / 3600
    if wall_time_s is not None and n_procs:
        return wall_time_s * n_procs / 3600
    return None


def efficiency_of(
    wall_time_s: float | None, n_procs: int | None, iterations: int, n_nodes: int | None
) -> float | None:
    """contract-notes 4: s·proc/(it·node), when every term is known and iterations > 0."""
    if wall_time_s is None or not n_procs or not n_nodes or iterations <= 0:
        return None
    return wall_time_s * n_procs / (iterations * n_nodes)
