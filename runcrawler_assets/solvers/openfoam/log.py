"""An OpenFOAM log, read line by line and cut into application runs (`AppRun`).

An OpenFOAM case runs as a pipeline of applications, each writing its own
`log.<application>` (or all of them into one scheduler output). So a file is
fed through `logtext.scan_log` (bounded: the head, the lines `SCAN_FOR` keeps,
the tail) to a `FoamLog` that cuts it into one `AppRun` per banner (`Exec :`
line) and reads each: the banner, the time steps and clock, the mesh size,
`End`, FOAM errors with their message lines (per MPI rank, ranks interleave),
floating point exceptions, and a solution blowing up. Verdicts come from
`verdicts`; which run decides the case is `case_runs`' job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from runcrawler_assets.solvers.logtext import scan_log
from runcrawler_assets.solvers.rundir import RunFile, to_float
from runcrawler_assets.solvers.verdicts import ErrorEvidence, is_foreign_error, verdict_of

# One or more `[rank] ` prefixes: ranks' output fuses mid-line (`[2] [3] `); the last speaks.
_RANKS = re.compile(r"^(?:\[(\d+)\]\s?)+")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_BANNER: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("version", re.compile(r"\|\s*Version:\s*([^\s|]+)")),
    ("build", re.compile(r"^Build\s*:\s*(.+?)\s*$")),
    ("date", re.compile(r"^Date\s*:\s*([A-Za-z]{3}\s+\d{1,2}\s+\d{4})")),
    ("time", re.compile(r"^Time\s*:\s*(\d{1,2}:\d{2}:\d{2})")),
    ("host", re.compile(r"^Host\s*:\s*\"?([^\"\s]+)")),
    ("pid", re.compile(r"^PID\s*:\s*(\d+)")),
    ("case", re.compile(r"^Case\s*:\s*(.+?)\s*$")),
    ("n_procs", re.compile(r"^nProcs\s*:\s*(\d+)")),
)
_EXEC = re.compile(r"^Exec\s*:\s*(\S+)(.*)$")
_LOOP_STARTS = re.compile(r"^Starting time loop", re.I)
_TIME_STEP = re.compile(r"^Time = " + _NUMBER + r"s?\s*$")
_CLOCK = re.compile(r"^ExecutionTime = " + _NUMBER + r" s\s+ClockTime = " + _NUMBER + r" s")
_END = re.compile(r"^End\.?\s*$")  # `End.` in OpenFOAM 2.x utilities
_MESH_CELLS = re.compile(r"^\s*n?cells\s*:\s*(\d+)\s*$|\bcells:(\d+)\b", re.I)
_MESH_POINTS = re.compile(r"^\s*n?points\s*:\s*(\d+)\s*$|\bpoints:(\d+)\b", re.I)
_MESH_DIRECTIONS = re.compile(r"Mesh has (\d) solution \(non-empty\) directions")
_FATAL = re.compile(r"-->\s*FOAM\s+FATAL\s+(IO\s+)?ERROR\s*:?\s*(?:\([^)]*\))?\s*(.*)$")
_FOAM_EXIT = re.compile(r"^FOAM\s+(?:parallel\s+run\s+)?(?:exiting|aborting)", re.I)
# A trapped floating point exception; not `trapFpe: Floating point exception trapping ...`.
_FPE = re.compile(
    r"sigFpe::sigHandler|^Floating point exception\b|Floating point exception \(core dumped\)"
    r"|exited on signal 8\b"
)
# A solution blowing up while the log goes on: a NaN residual, or a bounded field reaching
# values no physical field has. Harmless in a run that ends; the cause of one that stops.
_NAN_RESIDUAL = re.compile(r"residual = -?nan\b", re.I)
_BOUNDING = re.compile(r"^bounding \w+, min: (\S+) max: (\S+)")
DIVERGED_MAGNITUDE = 1e15
_FRAME = re.compile(r"^#\d+\s+(\S+)")
# The rules around a newer OpenFOAM's `[stack trace]` block.
_STACK_RULES = re.compile(r"^(?:\[stack trace\]|=+|-+)$")
# Lines that end an error message: its origin, a stack frame, or the log going on.
_MESSAGE_ENDS = re.compile(
    r"^(?:From\b|in file\b|file:|#\d+\s|FOAM\s|Time = |ExecutionTime|Exec\s*:)", re.I
)
MAX_MESSAGE_LINES = 4
# The bounded scan keeps only these lines (lower-case, matched on lower-cased text).
SCAN_FOR = re.compile(
    rb"(?m)^(?:exec|build|date|host|pid|case|nprocs) *:|\| *version:|^time = |executiontime"
    rb"|^end\r?$|starting time loop|foam fatal|foam (?:parallel run )?(?:exiting|aborting)"
    rb"|sigfpe|floating point|cells|points|directions|segmentation|sigsegv|signal|oom|memory"
    rb"|cancelled|time limit|walltime|mpi_abort|term_|^bounding |residual = -?nan|^error"
    rb"|job aborted|mpirun"
)

# OpenFOAM's words for the categories of runs-schema.md, tried in order on a message.
_CATEGORY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "numerical_instability",
        re.compile(
            r"sigfpe|floating point exception|maximum number of iterations exceeded|"
            r"negative (?:initial )?temperature|\bnan\b|\bbounding\b",
            re.I,
        ),
    ),
    (
        "input_file",
        re.compile(
            r"cannot (?:find|open|read)|could not (?:find|open|read)|keyword \S+ is undefined|"
            r"entry '?\S+?'? not found|not found in dictionary|unknown .*(?:type|scheme|model)|"
            r"number of processor directories|does not exist|not inside the mesh",
            re.I,
        ),
    ),
)


@dataclass
class AppRun:
    """One application's run, as its log (or its part of a scheduler output) tells it."""

    application: str | None
    source: RunFile
    order: int = 0
    banner: dict[str, str] = field(default_factory=dict)
    exec_args: str = ""
    loop_started: bool = False
    steps: int = 0
    first_time: float | None = None
    last_time: float | None = None
    execution_time_s: float | None = None
    clock_time_s: float | None = None
    n_cells: int | None = None
    n_points: int | None = None
    dimension: int | None = None
    ended: bool = False
    evidence: ErrorEvidence = field(default_factory=ErrorEvidence)
    verdict_lines: list[str] = field(default_factory=list)
    copies: int = 1  # serial copies writing into one log (`mpirun -np N` without -parallel)
    divergence: str | None = None  # the first line saying the solution blew up

    @property
    def said_anything(self) -> bool:
        """Whether the log holds this run at all (an empty or clobbered log does not)."""
        return (
            self.has_banner or self.steps > 0 or self.ended or self.evidence.decisive() is not None
        )

    @property
    def time_steps(self) -> int:
        """Time steps of one run: serial copies print every `Time =` line once each."""
        return round(self.steps / self.copies)

    @property
    def has_banner(self) -> bool:
        return "exec" in self.banner

    @property
    def version(self) -> str | None:
        """`Version:` of the banner box, else read from the `Build :` line (either release line)."""
        if "version" in self.banner:
            return self.banner["version"]
        build = self.banner.get("build", "")
        if (found := re.search(r"version=(\S+)", build)) is not None:
            return found.group(1)
        if (found := re.search(r"OPENFOAM=(\d+)", build)) is not None:
            return f"v{found.group(1)}"
        found = re.match(r"v?(\d+(?:\.\d+)*)", build.lstrip("_"))
        return found.group(0) if found else None

    @property
    def started_at(self) -> datetime | None:
        try:
            return datetime.strptime(
                f"{self.banner['date']} {self.banner['time']}", "%b %d %Y %H:%M:%S"
            )
        except (KeyError, ValueError):
            return None


@dataclass
class _PendingError:
    """A FOAM error or a floating point exception whose message lines are still coming."""

    rank: str
    header: str
    io_error: bool
    run: AppRun
    seq: int
    lines: list[str] = field(default_factory=list)
    fpe: bool = False


class FoamLog:
    """Cuts one file's lines into `AppRun`s and reads each; fed line by line in file order.

    Ranks print at once: an error's message lines are those of its own `[rank]`,
    whatever other ranks print between them, so one pending error is kept per rank.
    Errors are recorded at the end of the file in the order they were opened, so
    the first rank to fail is the one that decides, however the blocks interleave.
    """

    def __init__(self, source: RunFile, application: str | None) -> None:
        self.runs: list[AppRun] = [AppRun(application, source)]
        self._source = source
        self._pending_banner: dict[str, str] = {}
        self._pending: dict[str, _PendingError] = {}
        # (when it began, its run, message, category): sorted at the end of the file
        self._found: list[tuple[int, AppRun, str, str | None]] = []
        self._lines = 0

    @property
    def current(self) -> AppRun:
        return self.runs[-1]

    def feed(self, raw: str) -> None:
        """Take the next line of the file."""
        if "\x1b" in raw:
            raw = _ANSI.sub("", raw)
        ranks = _RANKS.match(raw)
        rank = ranks.group(1) if ranks else ""
        line = raw[ranks.end() :] if ranks else raw
        stripped = line.strip()
        self._lines += 1
        if rank in self._pending and self._continue_error(self._pending[rank], stripped):
            return
        run = self.current
        run.evidence.observe(line)
        if run.application is None and verdict_of(line) is not None:
            run.verdict_lines.append(stripped)
        if (fatal := _FATAL.search(stripped)) is not None:
            self._open(_PendingError(rank, stripped, bool(fatal.group(1)), run, self._lines))
            if fatal.group(2):
                self._pending[rank].lines.append(fatal.group(2))
        elif _FPE.search(stripped):
            if "sigHandler" in stripped:
                header = "Floating point exception (sigFpe)"
                self._open(_PendingError(rank, header, False, run, self._lines, fpe=True))
            else:
                self._found.append((self._lines, run, stripped, "numerical_instability"))
        elif _FOAM_EXIT.search(stripped) or is_foreign_error(stripped):
            self._found.append((self._lines, run, stripped, None))
        else:
            self._take_facts(line, stripped)

    def _open(self, error: _PendingError) -> None:
        self._close(error.rank)
        self._pending[error.rank] = error

    def _take_facts(self, line: str, stripped: str) -> None:
        run = self.current
        if (exec_match := _EXEC.match(stripped)) is not None:
            self._start_run(Path(exec_match.group(1)).name, exec_match.group(2).strip())
            return
        for name, pattern in _BANNER:
            if (found := pattern.search(stripped)) is not None:
                if name in ("version", "build"):
                    self._pending_banner[name] = found.group(1)
                elif run.has_banner:  # not an Open MPI box's `Host:` before the banner
                    run.banner.setdefault(name, found.group(1))
                return
        if _LOOP_STARTS.match(stripped):
            run.loop_started = True
        elif (step := _TIME_STEP.match(line)) is not None:
            self._take_step(run, float(step.group(1)))
        elif (clock := _CLOCK.match(stripped)) is not None:
            run.execution_time_s = to_float(clock.group(1))
            run.clock_time_s = to_float(clock.group(2))
        elif _END.match(line):
            run.ended = True
        elif (divergence := _divergence(stripped)) is not None:
            # A NaN says it plainly; a bounding line only until one is printed.
            if run.divergence is None or (divergence == "nan" and "nan" not in run.divergence):
                run.divergence = stripped
        else:
            self._take_mesh(run, stripped)

    def _start_run(self, application: str, exec_args: str) -> None:
        """A banner's `Exec :` line: the current run takes it, a copy joins it, or a run starts.

        A second banner of the same application before the first printed a time step
        or an error is a serial copy writing into the same file (`mpirun -np 4 solver`
        without `-parallel`): one run, counted `copies` times.
        """
        run = self.current
        fresh = run.has_banner and not run.loop_started and not run.ended
        if (
            fresh
            and run.application == application
            and not any(found[1] is run for found in self._found)
        ):
            run.copies += 1
            self._pending_banner = {}
            return
        if run.has_banner or run.loop_started or run.ended:
            run = AppRun(application, self._source, order=len(self.runs))
            self.runs.append(run)
        run.application = application
        run.exec_args = exec_args
        run.banner.update(self._pending_banner, exec=application)
        self._pending_banner = {}

    @staticmethod
    def _take_step(run: AppRun, time: float) -> None:
        run.loop_started = True
        run.steps += 1
        run.last_time = time
        if run.first_time is None:
            run.first_time = time

    @staticmethod
    def _take_mesh(run: AppRun, stripped: str) -> None:
        if (cells := _MESH_CELLS.search(stripped)) is not None:
            run.n_cells = int(cells.group(1) or cells.group(2))
        if (points := _MESH_POINTS.search(stripped)) is not None:
            run.n_points = int(points.group(1) or points.group(2))
        if (directions := _MESH_DIRECTIONS.search(stripped)) is not None:
            run.dimension = int(directions.group(1))

    def _continue_error(self, error: _PendingError, stripped: str) -> bool:
        """Whether a line of the error's own rank belongs to its message (taken), else close it."""
        if error.fpe:
            frame = _FRAME.match(stripped)
            if frame is not None:
                name = frame.group(1).split("(", 1)[0]
                if not error.lines and name.startswith("Foam::") and "sigHandler" not in name:
                    error.lines.append(f"in {name}")
                return True
            if not stripped or _STACK_RULES.match(stripped):
                return True
        elif not error.lines and _FATAL.search(stripped):
            return True  # copies of one singleton launch print their headers back to back
        elif (
            stripped
            and len(error.lines) < MAX_MESSAGE_LINES
            and not _MESSAGE_ENDS.match(stripped)
            and not _FATAL.search(stripped)
        ):
            error.lines.append(stripped)
            return True
        elif not stripped and not error.lines:
            return True
        self._close(error.rank)
        return False

    def _close(self, rank: str) -> None:
        error = self._pending.pop(rank, None)
        if error is None:
            return
        kind = "FOAM FATAL IO ERROR" if error.io_error else "FOAM FATAL ERROR"
        if error.fpe:
            message = " ".join([error.header, *error.lines])
        else:
            message = f"{kind}: {' '.join(error.lines)}".rstrip(": ")
        self._found.append((error.seq, error.run, message, categorize(message, error.io_error)))

    def close(self) -> None:
        """At the end of the file: record every error, the first opened first."""
        for rank in list(self._pending):
            self._close(rank)
        for _, run, message, category in sorted(self._found, key=lambda found: found[0]):
            run.evidence.observe_solver_error(message, category)
        self._found = []


def _divergence(stripped: str) -> str | None:
    """`nan` for a NaN residual, `bounding` for a bounded field no physics reaches, else None."""
    if not stripped.startswith("bounding") and "an" not in stripped:
        return None  # most lines: two substring tests instead of two regexes
    if _NAN_RESIDUAL.search(stripped):
        return "nan"
    bounding = _BOUNDING.match(stripped)
    if bounding is None:
        return None
    extremes = (to_float(bounding.group(1)), to_float(bounding.group(2)))
    diverged = any(value is None or abs(value) >= DIVERGED_MAGNITUDE for value in extremes)
    return "bounding" if diverged else None


def categorize(message: str, io_error: bool = False) -> str | None:
    """The category of a FOAM error message; None lets the shared rules decide.

    A FATAL IO ERROR that no rule explains is an input_file error: OpenFOAM
    raises it when an input dictionary or field cannot be read as written.
    """
    for category, pattern in _CATEGORY_RULES:
        if pattern.search(message):
            return category
    return "input_file" if io_error else None


def read_foam_file(source: RunFile, application: str | None) -> tuple[list[AppRun], list[str]]:
    """The application runs of one log or scheduler output, read within the bounds of logtext."""
    log = FoamLog(source, application)
    report = scan_log(source.path, log.feed, head_until=_LOOP_STARTS, scan_for=SCAN_FOR)
    log.close()
    warnings = list(report.warnings)
    if report.skipped_bytes:
        warnings.append(
            f"{source.path.name}: {report.skipped_bytes} bytes in the middle not read, "
            "time steps counted only in the head, the scanned part and the tail"
        )
    return log.runs, warnings
