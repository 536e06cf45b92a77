"""What every solver parser needs of a run directory, whatever the solver writes.

Locating a run in the archive (cluster, user, run_path), listing its files by
name from one `scandir` and one stat each, the record's frame with the last-resort
guard that turns a parser bug into a warning, and the derived columns whose
rules are solver-independent (contract-notes 2-4: ended_at, cpu_hours,
efficiency). Each parser only knows what its solver prints; these rules stay
the same for all of them, so they live here once.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runcrawler_assets.records import RunRecord, Status, run_id_for


@dataclass(frozen=True)
class RunFile:
    """A regular file of the run directory, from one stat."""

    path: Path
    size: int
    mtime: datetime


def utc_naive(timestamp: float) -> datetime:
    """A file modification time as a naive UTC datetime (contract-notes 8)."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


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


def _kind_of(name: str, kinds: tuple[re.Pattern[str], ...]) -> int | None:
    """The index of the first pattern `name` fully matches (a loop: no generator per entry)."""
    for index, pattern in enumerate(kinds):
        if pattern.fullmatch(name):
            return index
    return None


def list_run_files(
    run_dir: Path, kinds: tuple[re.Pattern[str], ...], warnings: list[str]
) -> tuple[list[RunFile], ...]:
    """One list per name pattern (the first that fully matches wins), each oldest first.

    Only regular files count: a symbolic link is never followed (it may lead out of
    the archive); a link, special file or file that cannot be stat'ed is a warning.
    """
    found: tuple[list[RunFile], ...] = tuple([] for _ in kinds)
    try:
        entries = sorted(os.scandir(run_dir), key=lambda e: e.name)
    except OSError as exc:
        warnings.append(f"cannot list the run directory ({exc.strerror or exc})")
        return found
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
            warnings.append(f"{entry.name}: not a regular file, ignored")
            continue
        found[kind].append(RunFile(Path(entry.path), st.st_size, utc_naive(st.st_mtime)))
    for files in found:
        files.sort(key=lambda f: (f.mtime, f.path.name))
    return found


@dataclass(frozen=True)
class RunLocation:
    cluster: str
    user: str
    run_path: str


def locate(run_dir: Path, archive_root: Path, warnings: list[str]) -> RunLocation:
    """cluster, user and `/`-separated run_path from the run directory's place in the archive."""
    try:
        parts = run_dir.relative_to(archive_root).parts
    except ValueError:
        warnings.append("the run directory is not under the archive root")
        parts = run_dir.parts
    if len(parts) < 2:
        warnings.append("the run directory is not under <cluster>/<user>/")
    padded = (*parts, "", "")
    return RunLocation(padded[0], padded[1], "/".join(parts))


def relative_to_archive(path: Path, archive_root: Path) -> str:
    try:
        return path.relative_to(archive_root).as_posix()
    except ValueError:
        return path.as_posix()


# The part of a parse that knows the solver: the base record in, the full record out.
ParseBody = Callable[[RunRecord, Path, Path, datetime, list[str]], RunRecord]


def parse_guarded(
    solver: str, run_dir: Path, archive_root: Path, now: datetime | None, body: ParseBody
) -> RunRecord:
    """`body` on the run's base record; never raises: a parser bug is a warning, not a lost run."""
    run_dir, archive_root, parsed_at = Path(run_dir), Path(archive_root), as_utc_naive(now)
    warnings: list[str] = []
    where = locate(run_dir, archive_root, warnings)
    base = RunRecord(
        run_id=run_id_for(where.run_path),
        cluster=where.cluster,
        user=where.user,
        run_path=where.run_path,
        solver=solver,
        parsed_at=parsed_at,
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


def ended_at_of(
    printed: datetime | None,
    status: Status,
    cancelled_at: datetime | None,
    newest_log_mtime: datetime,
) -> datetime | None:
    """contract-notes 2: the printed end; else the scheduler's kill time; else the log's mtime."""
    if printed is not None:
        return printed
    if status == Status.KILLED and cancelled_at is not None:
        return cancelled_at
    if status in (Status.FAILED, Status.KILLED, Status.TRUNCATED):
        return newest_log_mtime
    return None


def elapsed_s(
    started_at: datetime | None, ended_at: datetime | None, warnings: list[str]
) -> float | None:
    """contract-notes 3: wall time from start to end, when both are known and in order.

    An end before the start (a log copied with a wrong modification time, a clock
    skewed between cluster and server) is no duration: NULL and a warning.
    """
    if started_at is None or ended_at is None:
        return None
    seconds = (ended_at - started_at).total_seconds()
    if seconds < 0:
        warnings.append(f"timing: end {ended_at} is before start {started_at}; no wall time")
        return None
    return seconds


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
