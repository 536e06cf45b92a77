"""The AVBP parser: one run directory (run.params, solver logs, scheduler files) → one RunRecord.

Shaped as three readers and one assembler, each small enough to test alone:
`read_params` (the AVBP parameter file, typed per docs/contract-notes.md),
`AvbpLog` (a line-by-line state machine fed by `logtext.scan_log`, so that a
2 GB log costs a bounded read; the tail, mostly iteration lines, comes as one
block searched for the few lines that matter), and the scheduler files fed to the same
`verdicts.ErrorEvidence`; `AvbpParser.parse` puts the pieces together. The
milestone table comes from `avbp_milestones`, the ranking of verdicts from
`verdicts`, so this module only knows what AVBP prints.

Success is the end marker, whatever else was printed: the original tool
kept the highest milestone code and so reported successful runs as 900.
`parse` never raises: what cannot be read becomes a `parse_warnings` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runcrawler_assets.records import RunRecord, Status, TimingSource
from runcrawler_assets.solvers.avbp_milestones import MILESTONES, Milestone
from runcrawler_assets.solvers.logtext import (
    DEFAULT_LIMITS,
    LogReadReport,
    emit_lines,
    filter_lines,
    lines_from_end,
    read_head,
    scan_log,
)
from runcrawler_assets.solvers.rundir import (
    MarkerFileParser,
    RunFile,
    cpu_hours_of,
    efficiency_of,
    list_run_files,
    relative_to_archive,
    run_times,
    stat_mtime,
    to_float,
)
from runcrawler_assets.solvers.verdicts import ErrorEvidence, Outcome, decide_outcome

PARAMS_FILE = "run.params"
SOLVER_LOG_NAME = re.compile(r"avbp\.o|job\.out|avbp_log\.txt|.+\.o\d+|log.*\.txt(?:\.gz)?")
SCHEDULER_FILE_NAME = re.compile(r"slurm-\d+\.out|.+\.e\d+")
SUCCESS_CODE = 0

# ---------------------------------------------------------------- run.params


@dataclass(frozen=True)
class RunParams:
    """Every keyword of run.params (lower-case keys, values as written) and the typed settings."""

    values: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


_COMMENT = re.compile(r"[!#]")
_BLOCK_MARK = re.compile(r"\$\s*(end_)?\s*(\S*)", re.I)
_STRING_SETTINGS = {
    "mixture_name": "mixture_name",
    "les_model": "les_model",
    "artificial_viscosity_model": "artificial_viscosity_model",
    "convection_scheme": "convection_scheme",
}
_TRUE = {"yes", "true", ".true.", "1", "y", "t", ".t."}
_FALSE = {"no", "false", ".false.", "0", "n", "f", ".f."}


def parse_params_text(text: str) -> tuple[dict[str, str], list[str]]:
    """Keywords and values of a parameter file; blocks only check their own nesting.

    The schema wants one flat `params` map, so a keyword is kept whichever
    block holds it (or none); when a keyword repeats, the last one wins.
    """
    values: dict[str, str] = {}
    warnings: list[str] = []
    open_block: str | None = None
    for raw in text.splitlines():
        # Most lines hold no comment: the `in` tests spare them the regex.
        line = _COMMENT.split(raw, maxsplit=1)[0] if "!" in raw or "#" in raw else raw
        line = line.strip()
        if line.startswith("$"):
            open_block = _check_block(_BLOCK_MARK.match(line), open_block, warnings)
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if sep and key:
            values[key] = " ".join(value.split())
    if open_block is not None:
        warnings.append(f"{PARAMS_FILE}: block ${open_block} is never closed")
    return values, warnings


def _check_block(
    mark: re.Match[str] | None, open_block: str | None, warnings: list[str]
) -> str | None:
    """The block open after a `$NAME` / `$end_NAME` line; mismatches become warnings."""
    if mark is None:
        return open_block
    closing, name = bool(mark.group(1)), mark.group(2)
    if not closing:
        if open_block is not None:
            warnings.append(f"{PARAMS_FILE}: block ${open_block} is not closed before ${name}")
        return name
    if open_block is None or open_block.lower() != name.lower():
        warnings.append(f"{PARAMS_FILE}: $end_{name} does not close an open block")
    return None


def _to_int(text: str) -> int | None:
    value = to_float(text)
    return int(value) if value is not None and value.is_integer() else None


def _to_bool(text: str) -> bool | None:
    word = text.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def typed_settings(values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The grouping settings as RunRecord fields; a value that does not parse is a warning."""
    settings: dict[str, Any] = {}
    for key, name in _STRING_SETTINGS.items():
        if values.get(key):
            settings[name] = values[key].lower()
    warnings: list[str] = []
    converters = (
        ("ncell_group", "ncell_group", _to_int),
        ("cfl", "cfl", to_float),
        ("reactive_flow", "reactive_flow", _to_bool),
        ("simulation_end_iteration", "iterations_requested", _to_int),
    )
    for key, name, convert in converters:
        if key not in values:
            continue
        typed = convert(values[key])
        if typed is None:
            warnings.append(f"{PARAMS_FILE}: {key} = {values[key]!r} is not a valid value")
        settings[name] = typed
    return settings, warnings


def read_params(path: Path) -> RunParams:
    """Read and type run.params; a missing or unreadable file gives warnings, never an error."""
    head = read_head(path)
    values, warnings = parse_params_text(head.text)
    settings, type_warnings = typed_settings(values)
    return RunParams(values, settings, (*head.warnings, *warnings, *type_warnings))


# ---------------------------------------------------------------- the solver log

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?)"
_ITERATION = re.compile(r"\s*Iteration\s*#\s*(\d+)", re.I)
# Matched on the lower-cased line, like every pattern without re.I below.
_SOLVER_ERROR = re.compile(
    r"^\s*(?:error\b|\*+\s*(?:fatal|error)\b|fatal\b)|do not contain the same number of species"
)
# (column, a lower-case word the pattern cannot match without, pattern): the word is
# tested first, with `in`, so most lines cost no regex at all.
_FIELDS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("version", "avbp", re.compile(r"\bAVBP\s+(?:version\s+)?V?(\d+(?:\.\d+)+[\w.+-]*)", re.I)),
    ("started_at", "started", re.compile(r"Run\s+started\s+on\s*:\s*(.+?)\s*$", re.I)),
    ("ended_at", "ended", re.compile(r"Run\s+ended\s+on\s*:\s*(.+?)\s*$", re.I)),
    ("host", "host", re.compile(r"^\s*Host\s*:\s*(\S+)", re.I)),
    ("n_procs", "mpi", re.compile(r"Number\s+of\s+MPI\s+processes\s*:\s*(\d+)", re.I)),
    ("dimension", "dimension", re.compile(r"^\s*Dimension\s*:\s*(\d+)", re.I)),
    ("n_nodes", "nodes", re.compile(r"Number\s+of\s+nodes\s*:\s*(\d+)", re.I)),
    ("n_cells", "cells", re.compile(r"Number\s+of\s+cells\s*:\s*(\d+)", re.I)),
    ("cpu_time_s", "cpu", re.compile(r"Total\s+CPU\s+time[^:]*:\s*" + _NUMBER, re.I)),
    ("wall_time_s", "wall", re.compile(r"Elapsed\s+wall\s+time[^:]*:\s*" + _NUMBER, re.I)),
    (
        "efficiency_printed",
        "efficiency",
        re.compile(r"Reduced\s+efficiency[^:]*:\s*" + _NUMBER, re.I),
    ),
)
_INT_FIELDS = {"n_procs", "dimension", "n_nodes", "n_cells"}
_FLOAT_FIELDS = {"cpu_time_s", "wall_time_s", "efficiency_printed"}
_TIME_FIELDS = {"started_at", "ended_at"}
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}", re.ASCII)
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S", "%c")


def _milestone_pattern(milestone: Milestone) -> str:
    """Milestone text as a regex tolerant of spacing (dashes in front never matter)."""
    return r"[ \t]+".join(re.escape(word) for word in milestone.text.split())


# Lower-case patterns matched on the lower-cased line, behind one pattern for them all,
# each behind its first word: testing it with `in` spares most lines the regex.
_MILESTONES: tuple[tuple[Milestone, str, re.Pattern[str]], ...] = tuple(
    (m, m.text.split()[0].lower(), re.compile(_milestone_pattern(m).lower())) for m in MILESTONES
)
_ANY_MILESTONE = re.compile("|".join(_milestone_pattern(m) for m in MILESTONES).lower())
_LOOP_STARTS = re.compile(
    "|".join(_milestone_pattern(m) for m in MILESTONES if m.code == 300), re.I
)
# Every line the state machine may care about, apart from iterations; also the
# filter of the bounded scan (as bytes), so it must never span a line ending.
_KEYWORDS = "|".join(
    (
        r"error|fatal|avbp|run[ \t]+(?:started|ended)|host|number[ \t]+of|dimension",
        r"cpu[ \t]+time|wall[ \t]+time|efficiency|species|segmentation|sigsegv|signal",
        r"oom|memory|cancelled|time[ \t]+limit|walltime|mpi_abort|term_",
        *(_milestone_pattern(m) for m in MILESTONES),
    )
)
# Lower-case and case-sensitive, matched on lower-cased text: much faster than re.I.
_INTERESTING = re.compile(_KEYWORDS.lower())
SCAN_FOR = re.compile(_KEYWORDS.lower().encode())
# Consecutive iteration lines, matched on lower-cased ASCII: `_ITERATION` matches each of
# them too (blanks are a subset of its `\s`, bounded so the number stays within max_line).
_BLANKS = rb"[\t\x0b\x0c\r\x1c-\x1f ]{0,64}"
_ITERATION_RUN = re.compile(
    rb"(?:" + _BLANKS + rb"iteration" + _BLANKS + rb"#" + _BLANKS + rb"[0-9][^\n]*(?:\n|\Z))+"
)


def parse_log_time(text: str) -> datetime | None:
    """A timestamp as AVBP prints it (naive, the cluster's clock); None when unreadable.

    The usual ISO form skips `strptime`, which costs more than the rest of a log line.
    """
    stripped = text.strip()
    if _ISO_TIME.fullmatch(stripped):
        try:
            return datetime.fromisoformat(stripped)
        except ValueError:  # 2024-02-30: no format reads it
            return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return None


@dataclass
class AvbpLog:
    """What one AVBP log says, built line by line in file order."""

    values: dict[str, Any] = field(default_factory=dict)
    iterations_done: int = 0
    last_milestone: Milestone | None = None
    end_marker: bool = False
    evidence: ErrorEvidence = field(default_factory=ErrorEvidence)
    warnings: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        """Take the next line of the log."""
        # `_ITERATION` (case-insensitive, ~1 µs) cannot match without a `#`.
        if "#" in line and (iteration := _ITERATION.match(line)) is not None:
            self.iterations_done = int(iteration.group(1))
            return
        lowered = line.lower()
        if not _INTERESTING.search(lowered):
            return
        is_error = bool(_SOLVER_ERROR.search(lowered))
        self.evidence.observe(line, is_solver_error=is_error)
        if not is_error:
            self._take_fields(line, lowered)
            self._take_milestone(lowered)

    def feed_tail(self, block: bytes) -> None:
        """Take the tail as `feed` would take its lines, without searching its iteration lines.

        Most of a tail is iteration lines, which `feed` only counts, and the keyword
        search costs ~30 ns a byte: runs of them are matched whole and passed over,
        the rest goes through `SCAN_FOR` (in ASCII without NUL, lower-casing and the
        patterns give the same answer on the bytes as on the decoded line; any other
        tail goes line by line), and the last iteration is found from the end.
        """
        max_line = DEFAULT_LIMITS.max_line
        if not block.isascii() or b"\x00" in block:
            emit_lines(block, self.feed, max_line)
            return
        lowered, pos, end = block.lower(), 0, len(block)
        while pos < end:
            if (run := _ITERATION_RUN.match(lowered, pos)) is not None:
                pos = run.end()
                continue
            # Search up to the line of the next possible iteration line, this line at least.
            stop = lowered.find(b"iteration", pos)
            stop = end if stop == -1 else lowered.rfind(b"\n", pos, stop) + 1
            if stop <= pos:
                stop = lowered.find(b"\n", pos) + 1 or end
            filter_lines(block[pos:stop], SCAN_FOR, self.feed, max_line)
            pos = stop
        for line in lines_from_end(block, b"#", max_line):
            if (iteration := _ITERATION.match(line)) is not None:
                self.iterations_done = int(iteration.group(1))
                return

    def _take_fields(self, line: str, lowered: str) -> None:
        for name, word, pattern in _FIELDS:
            if word not in lowered:
                continue
            if name in self.values and name not in {"ended_at", "cpu_time_s", "wall_time_s"}:
                continue
            if (found := pattern.search(line)) is not None:
                self._store(name, found.group(1))

    def _store(self, name: str, text: str) -> None:
        value: Any = text
        if name in _INT_FIELDS:
            value = int(text)
        elif name in _FLOAT_FIELDS:
            value = to_float(text)
        elif name in _TIME_FIELDS:
            value = parse_log_time(text)
        if value is None:
            self.warnings.append(f"log: cannot read {name} from {text!r}")
            return
        self.values[name] = value

    def _take_milestone(self, lowered: str) -> None:
        if not _ANY_MILESTONE.search(lowered):
            return
        for milestone, word, pattern in _MILESTONES:
            if word in lowered and pattern.search(lowered):
                self.last_milestone = milestone
                self.end_marker = self.end_marker or milestone.code == SUCCESS_CODE


def read_log(path: Path) -> tuple[AvbpLog, LogReadReport]:
    """Feed the head, the scanned error lines and the tail of a log to an `AvbpLog`."""
    log = AvbpLog()
    report = scan_log(
        path, log.feed, head_until=_LOOP_STARTS, scan_for=SCAN_FOR, on_tail=log.feed_tail
    )
    return log, report


def read_scheduler_file(path: Path, evidence: ErrorEvidence) -> LogReadReport:
    """Feed the verdict lines of a scheduler file (slurm-*.out, *.e<jobid>) to `evidence`."""
    return scan_log(path, evidence.observe, head_until=None, scan_for=SCAN_FOR)


# ---------------------------------------------------------------- the run directory


def list_avbp_files(run_dir: Path, warnings: list[str]) -> tuple[list[RunFile], list[RunFile]]:
    """(solver logs, scheduler files), each oldest first; only regular files count."""
    logs, scheduler = list_run_files(run_dir, (SOLVER_LOG_NAME, SCHEDULER_FILE_NAME), warnings)
    return logs, scheduler


# ---------------------------------------------------------------- derived columns


@dataclass(frozen=True)
class Timing:
    ended_at: datetime | None
    wall_time_s: float | None
    cpu_time_s: float | None
    cpu_hours: float | None
    efficiency: float | None
    efficiency_printed: float | None
    source: TimingSource | None


def derive_timing(log: AvbpLog, outcome: Outcome, newest: RunFile, warnings: list[str]) -> Timing:
    """Wall time, CPU hours and efficiency, by contract-notes 2-4."""
    values = log.values
    times = run_times(
        started_at=values.get("started_at"),
        printed_end=values.get("ended_at"),
        printed_wall_s=values.get("wall_time_s"),
        status=outcome.status,
        cancelled_at=log.evidence.cancelled_at,
        newest_log_mtime=newest.mtime,
        warnings=warnings,
    )
    wall = times.wall_time_s
    cpu = values.get("cpu_time_s")
    n_procs, n_nodes = values.get("n_procs"), values.get("n_nodes")
    cpu_hours = cpu_hours_of(cpu, wall, n_procs)
    computed = efficiency_of(wall, n_procs, log.iterations_done, n_nodes)
    printed = values.get("efficiency_printed")
    if printed and computed is not None and abs(computed - printed) > 0.05 * abs(printed):
        warnings.append(f"log: printed efficiency {printed:.4g} differs from {computed:.4g}")
    efficiency = printed if printed is not None else computed
    return Timing(times.ended_at, wall, cpu, cpu_hours, efficiency, printed, times.source)


# ---------------------------------------------------------------- the parser


class AvbpParser(MarkerFileParser):
    """The `SolverParser` for AVBP runs: a directory holding a regular `run.params`."""

    def __init__(self) -> None:
        super().__init__("avbp", PARAMS_FILE, _parse_run)


def _parse_run(
    base: RunRecord, run_dir: Path, archive_root: Path, now: datetime, warnings: list[str]
) -> RunRecord:
    params = read_params(run_dir / PARAMS_FILE)
    warnings.extend(params.warnings)
    record = base.replace(
        created_at=stat_mtime(run_dir / PARAMS_FILE, warnings),
        params=dict(params.values),
        **params.settings,
    )
    logs, scheduler_files = list_avbp_files(run_dir, warnings)
    if not logs:
        outcome = decide_outcome(
            ErrorEvidence(), has_log=False, end_marker=False, log_mtime=None, now=now
        )
        return record.replace(
            status=outcome.status.value, iterations_done=0, parse_warnings=tuple(warnings)
        )
    newest = logs[-1]
    log, report = read_log(newest.path)
    warnings.extend(report.warnings)
    warnings.extend(log.warnings)
    for scheduler_file in scheduler_files:
        warnings.extend(read_scheduler_file(scheduler_file.path, log.evidence).warnings)
    outcome = decide_outcome(
        log.evidence, has_log=True, end_marker=log.end_marker, log_mtime=newest.mtime, now=now
    )
    return _with_log(record, log, outcome, newest, archive_root, len(logs), warnings)


def _with_log(
    record: RunRecord,
    log: AvbpLog,
    outcome: Outcome,
    newest: RunFile,
    archive_root: Path,
    n_logs: int,
    warnings: list[str],
) -> RunRecord:
    """The record completed with what the newest log and the scheduler files said."""
    timing = derive_timing(log, outcome, newest, warnings)
    milestone = log.last_milestone
    if outcome.status == Status.SUCCESS:
        milestone = next(m for m in MILESTONES if m.code == SUCCESS_CODE)
    values = log.values
    return record.replace(
        solver_version=values.get("version"),
        started_at=values.get("started_at"),
        ended_at=timing.ended_at,
        host=values.get("host"),
        n_procs=values.get("n_procs"),
        n_nodes=values.get("n_nodes"),
        n_cells=values.get("n_cells"),
        dimension=values.get("dimension"),
        iterations_done=log.iterations_done,
        cpu_time_s=timing.cpu_time_s,
        wall_time_s=timing.wall_time_s,
        cpu_hours=timing.cpu_hours,
        efficiency=timing.efficiency,
        efficiency_printed=timing.efficiency_printed,
        timing_source=timing.source,
        status=outcome.status.value,
        stage_code=milestone.code if milestone else None,
        stage=milestone.label if milestone else None,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        n_restarts=n_logs - 1,
        log_path=relative_to_archive(newest.path, archive_root),
        log_bytes=newest.size,
        parse_warnings=tuple(warnings),
    )
