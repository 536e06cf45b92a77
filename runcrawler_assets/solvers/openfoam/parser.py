"""The OpenFOAM parser: one case directory (system/, constant/, log.<app> files) → one RunRecord.

An OpenFOAM case runs as a pipeline of applications, each writing its own
`log.<application>` (or all of them into one scheduler output): meshing,
pre-processing, decomposition, then the solver. So a case is read as
application runs (`AppRun`): every log and scheduler output is fed through
`logtext.scan_log` (bounded, like AVBP's) to a `FoamLog` that cuts it into one
`AppRun` per banner (`Exec :` line). The solver application's run describes
the case; the meshing logs add the mesh size; when the solver never ran, the
pre-solver run that failed or stopped is the failure (a case that failed in
snappyHexMesh). Verdicts and their ranking come from `verdicts`, the stage
table from `openfoam_stages`, the dictionaries from `foamdict`, the run
directory and derived columns from `rundir`: this module only knows what
OpenFOAM prints. docs/contract-notes.md (OpenFOAM) lists the column mapping.

Success is the solver's closing `End` line, whatever else was printed.
`parse` never raises: what cannot be read becomes a `parse_warnings` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runcrawler_assets.records import RunRecord, Status
from runcrawler_assets.solvers.logtext import scan_log
from runcrawler_assets.solvers.openfoam.dictionaries import Dictionary, flatten, read_dictionary
from runcrawler_assets.solvers.openfoam.stages import (
    SOLVER_LOOP,
    SOLVER_START,
    STAGES,
    SUCCESS,
    Stage,
    is_solver_application,
    stage_of_application,
)
from runcrawler_assets.solvers.rundir import (
    MarkerFileParser,
    RunFile,
    cpu_hours_of,
    efficiency_of,
    is_regular_file,
    list_run_files,
    relative_to_archive,
    run_times,
    stat_mtime,
    to_float,
)
from runcrawler_assets.solvers.verdicts import (
    ErrorEvidence,
    Outcome,
    decide_outcome,
    is_foreign_error,
    verdict_of,
)

CONTROL_DICT = Path("system") / "controlDict"
# Application logs, as users and scripts name them (a `.gz` suffix aside, see rundir):
# `log.<app>[.<suffix>|_<suffix>]` (Allrun's runApplication), `<app>[_<suffix>].log` (tee),
# `log`, `log.parallel`. The name's application counts only when the log has no banner:
# the banner's `Exec :` says what ran (`log.simpleFoam` may hold a foamRun run).
LOG_NAME = re.compile(
    r"log\.([A-Za-z][A-Za-z0-9]*)(?:[._-][\w.-]*)?|([A-Za-z][A-Za-z0-9]*)(?:[._-][\w.-]*)?\.log|log"
)
# Batch outputs: verdicts, or the solver's own output when it was not redirected
# (`slurm-<id>.out`, `<name>.o<id>`/`.e<id>`, `#SBATCH --output=<name>.out`, `<name>.err`).
SCHEDULER_NAME = re.compile(r".+\.[oe]\d+|.+\.out|.+\.err")
# The dictionaries whose keywords become `params` (file stem = key prefix).
DICTIONARIES: tuple[Path, ...] = (
    CONTROL_DICT,
    Path("system") / "fvSchemes",
    Path("system") / "decomposeParDict",
    Path("constant") / "turbulenceProperties",
    Path("constant") / "momentumTransport",
    Path("constant") / "thermophysicalProperties",
    Path("constant") / "physicalProperties",
)

# ---------------------------------------------------------------- the logs

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


def application_of_log_name(name: str) -> str | None:
    """The application a log's name suggests (`log.blockMesh`, `pimpleFoam.log`), if any."""
    found = LOG_NAME.fullmatch(name.removesuffix(".gz"))
    return (found.group(1) or found.group(2)) if found else None


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


# ---------------------------------------------------------------- the case settings


@dataclass(frozen=True)
class CaseSettings:
    """The dictionaries' keywords (flattened for `params`) and the typed RunRecord settings."""

    params: dict[str, str]
    settings: dict[str, Any]
    application: str | None
    n_subdomains: int | None
    warnings: tuple[str, ...]


def _lookup(dictionary: Dictionary, *path: str) -> Any:
    current: Any = dictionary
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    return current


def _is_yes(value: Any) -> bool:
    return isinstance(value, str) and value.lower() in {"yes", "on", "true", "y", "1"}


def _turbulence_model(dictionary: Dictionary) -> str | None:
    """The RAS/LES model (either keyword spelling), or `laminar`; lower-case."""
    kind = _lookup(dictionary, "simulationType")
    if not isinstance(kind, str):
        return None
    if kind.lower() == "laminar":
        return "laminar"
    for key in ("model", f"{kind}Model"):
        model = _lookup(dictionary, kind, key)
        if isinstance(model, str):
            return model.lower()
    return kind.lower()


_DIV_U = re.compile(r"div\(\s*\w*[pP]hi\w*\s*,\s*U\s*\)")


def _convection_scheme(fv_schemes: Dictionary) -> str | None:
    """The div scheme of U (`div(phi,U)`, `div(rhoPhi,U)`, ...), else a non-`none` default."""
    div = _lookup(fv_schemes, "divSchemes")
    if not isinstance(div, dict):
        return None
    for key, value in div.items():
        if _DIV_U.fullmatch(key) and isinstance(value, str):
            return " ".join(value.lower().split())
    default = div.get("default")
    return default.lower() if isinstance(default, str) and default != "none" else None


def _typed_settings(dicts: dict[str, Dictionary]) -> dict[str, Any]:
    """RunRecord settings from the dictionaries (contract-notes, OpenFOAM)."""
    control = dicts.get("controlDict", {})
    settings: dict[str, Any] = {}
    adjustable = _is_yes(control.get("adjustTimeStep"))
    end, delta = to_float(str(control.get("endTime"))), to_float(str(control.get("deltaT")))
    start = to_float(str(control.get("startTime", "0")))
    if not adjustable and end is not None and delta and start is not None:
        settings["iterations_requested"] = round((end - start) / delta)
    if adjustable and (max_co := to_float(str(control.get("maxCo")))) is not None:
        settings["cfl"] = max_co
    turbulence = dicts.get("momentumTransport") or dicts.get("turbulenceProperties") or {}
    settings["les_model"] = _turbulence_model(turbulence)
    settings["convection_scheme"] = _convection_scheme(dicts.get("fvSchemes", {}))
    thermo = dicts.get("thermophysicalProperties") or dicts.get("physicalProperties") or {}
    mixture = _lookup(thermo, "thermoType", "mixture")
    if isinstance(mixture, str):
        settings["reactive_flow"] = bool(re.search(r"reacting|multicomponent", mixture, re.I))
    return {k: v for k, v in settings.items() if v is not None}


def read_case_settings(run_dir: Path) -> CaseSettings:
    """Every dictionary present, flattened into `params` (`<file>.<key>...`), and typed."""
    params: dict[str, str] = {}
    dicts: dict[str, Dictionary] = {}
    warnings: list[str] = []
    for relative in DICTIONARIES:
        path = run_dir / relative
        if relative != CONTROL_DICT and not is_regular_file(path):
            continue
        entries, read_warnings = read_dictionary(path)
        warnings.extend(read_warnings)
        dicts[relative.name] = entries
        params.update(flatten(entries, relative.name))
    control = dicts.get("controlDict", {})
    application = control.get("application")
    subdomains = to_float(str(_lookup(dicts.get("decomposeParDict", {}), "numberOfSubdomains")))
    return CaseSettings(
        params=params,
        settings=_typed_settings(dicts),
        application=application if isinstance(application, str) else None,
        n_subdomains=int(subdomains) if subdomains is not None else None,
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------- the case


@dataclass(frozen=True)
class CaseRuns:
    """The application runs of a case, sorted into what decides its record."""

    solver: AppRun | None
    deciding: AppRun | None
    stage: Stage | None
    mesh: AppRun | None
    n_solver_logs: int


def _chronological(run: AppRun) -> tuple[datetime, datetime, str, int]:
    """A run's place in time: the banner's start (a copy may give all files one mtime), then
    its file's mtime."""
    return run.started_at or run.source.mtime, run.source.mtime, run.source.path.name, run.order


def sort_case_runs(runs: list[AppRun], application: str | None) -> CaseRuns:
    """Which run is the solver's, which decides the outcome, how far the case got.

    The solver is the newest run of a solver application (not a pipeline utility,
    not post-processing): controlDict's `application` first (it may have been edited
    since, so any other solver next), one that printed a banner before one that did
    not. An empty or clobbered log holds no run.
    """
    runs = sorted(
        (r for r in runs if r.application is not None and r.said_anything), key=_chronological
    )
    candidates = [r for r in runs if is_solver_application(r.application or "")]
    solver_runs = (
        [r for r in candidates if r.application == application]
        or [r for r in candidates if r.has_banner]
        or candidates
    )
    pipeline = [r for r in runs if stage_of_application(r.application or "") is not None]
    meshed = [r for r in pipeline if r.n_cells is not None or r.n_points is not None]
    mesh = meshed[-1] if meshed else None
    n_solver_logs = len({r.source.path for r in solver_runs})
    if solver_runs:
        solver = solver_runs[-1]
        return CaseRuns(solver, solver, _solver_stage(solver), mesh, n_solver_logs)
    unfinished = [r for r in pipeline if not r.ended]
    if unfinished:
        deciding = unfinished[-1]
        return CaseRuns(None, deciding, stage_of_application(deciding.application or ""), mesh, 0)
    reached = [s for r in pipeline if (s := stage_of_application(r.application or "")) is not None]
    return CaseRuns(None, None, max(reached, key=STAGES.index) if reached else None, mesh, 0)


def _solver_stage(solver: AppRun) -> Stage | None:
    """Success at `End`, in the loop once it started, at start-up once the banner printed."""
    if solver.ended:
        return SUCCESS
    if solver.loop_started:
        return SOLVER_LOOP
    return SOLVER_START if solver.has_banner else None


class OpenFoamParser(MarkerFileParser):
    """The `SolverParser` for OpenFOAM cases: a directory holding a regular `system/controlDict`."""

    def __init__(self) -> None:
        super().__init__("openfoam", str(CONTROL_DICT), _parse_case)


def _parse_case(
    base: RunRecord, run_dir: Path, archive_root: Path, now: datetime, warnings: list[str]
) -> RunRecord:
    case = read_case_settings(run_dir)
    warnings.extend(case.warnings)
    record = base.replace(
        created_at=stat_mtime(run_dir / CONTROL_DICT, warnings),
        params=case.params,
        **case.settings,
    )
    logs, scheduler_files = list_run_files(run_dir, (LOG_NAME, SCHEDULER_NAME), warnings)
    runs: list[AppRun] = []
    for source in [*logs, *scheduler_files]:
        file_runs, read_warnings = read_foam_file(source, application_of_log_name(source.path.name))
        runs.extend(file_runs)
        warnings.extend(read_warnings)
    sorted_runs = sort_case_runs(runs, case.application)
    deciding, mesh = sorted_runs.deciding, sorted_runs.mesh
    record = record.replace(
        solver_version=_version(deciding, runs),
        n_cells=mesh.n_cells if mesh else None,
        n_nodes=mesh.n_points if mesh else None,
        dimension=mesh.dimension if mesh else None,
        stage_code=sorted_runs.stage.code if sorted_runs.stage else None,
        stage=sorted_runs.stage.label if sorted_runs.stage else None,
        n_restarts=max(sorted_runs.n_solver_logs - 1, 0),
    )
    # Scheduler lines outside any banner (a job.e<id>, a slurm-<id>.out) are the case's.
    loose = [(run, line) for run in runs if run.application is None for line in run.verdict_lines]
    if deciding is None:
        return _without_solver_run(record, loose, case.application, archive_root, now, warnings)
    for _, line in loose:
        deciding.evidence.observe(line)
    outcome = decide_outcome(
        deciding.evidence,
        has_log=True,
        end_marker=deciding is sorted_runs.solver and deciding.ended,
        log_mtime=deciding.source.mtime,
        now=now,
    )
    if outcome.status == Status.TRUNCATED and deciding.divergence is not None:
        deciding.evidence.observe_solver_error(deciding.divergence, "numerical_instability")
        outcome = decide_outcome(
            deciding.evidence, has_log=True, end_marker=False, log_mtime=None, now=now
        )
    if deciding.copies > 1:
        warnings.append(
            f"{deciding.source.path.name}: {deciding.copies} copies of {deciding.application} "
            "wrote into it at once (launched by mpirun without -parallel?): one run counted"
        )
    return _with_run(record, deciding, outcome, case.n_subdomains, archive_root, warnings)


def _version(deciding: AppRun | None, runs: list[AppRun]) -> str | None:
    """The deciding run's version; else the newest other log's (a launch failure has no banner)."""
    if deciding is not None and deciding.version is not None:
        return deciding.version
    versions = [r for r in sorted(runs, key=_chronological) if r.version is not None]
    return versions[-1].version if versions else None


def _without_solver_run(
    record: RunRecord,
    loose: list[tuple[AppRun, str]],
    application: str | None,
    archive_root: Path,
    now: datetime,
    warnings: list[str],
) -> RunRecord:
    """No solver log, no failed utility: not started, unless the scheduler killed the job.

    A job killed for its time limit whose solver log was never copied still says so in
    the scheduler's error stream (`job.e<id>`): killed, from that file, steps unknown.
    """
    evidence = ErrorEvidence()
    for _, line in loose:
        evidence.observe(line)
    if evidence.scheduler is None:
        outcome = decide_outcome(evidence, has_log=False, end_marker=False, log_mtime=None, now=now)
        return record.replace(
            status=outcome.status.value, iterations_done=0, parse_warnings=tuple(warnings)
        )
    outcome = decide_outcome(evidence, has_log=True, end_marker=False, log_mtime=None, now=now)
    source = next(run.source for run, line in loose if line == evidence.scheduler[1])
    return record.replace(
        application=application,
        ended_at=evidence.cancelled_at,
        status=outcome.status.value,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        log_path=relative_to_archive(source.path, archive_root),
        log_bytes=source.size,
        parse_warnings=(*warnings, "no solver log: the scheduler's verdict alone decides"),
    )


def _n_procs(run: AppRun, n_subdomains: int | None, warnings: list[str]) -> int | None:
    """nProcs as printed; else the decomposition's subdomains for a `-parallel` run; else 1.

    The dictionary may have been edited since the run: the log says what ran.
    """
    if "n_procs" in run.banner:
        printed = int(run.banner["n_procs"])
        if n_subdomains and "-parallel" in run.exec_args and printed != n_subdomains:
            warnings.append(
                f"decomposeParDict says {n_subdomains} subdomains, the log ran on {printed}"
            )
        return printed
    if "-parallel" in run.exec_args and n_subdomains:
        return n_subdomains
    return 1 if run.has_banner else None


def _with_run(
    record: RunRecord,
    run: AppRun,
    outcome: Outcome,
    n_subdomains: int | None,
    archive_root: Path,
    warnings: list[str],
) -> RunRecord:
    """The record completed with what the deciding application run said."""
    n_procs = _n_procs(run, n_subdomains, warnings)
    started_at = run.started_at
    wall = run.clock_time_s
    cpu = run.execution_time_s * n_procs if run.execution_time_s is not None and n_procs else None
    # OpenFOAM prints no end time: the last ClockTime after the banner's start is the
    # last moment the log vouches for (the end of a success, a lower bound otherwise).
    last_printed = None
    if started_at is not None and wall is not None:
        last_printed = started_at + timedelta(seconds=wall)
    success = outcome.status == Status.SUCCESS
    times = run_times(
        started_at=started_at,
        printed_end=last_printed if success else None,
        printed_wall_s=wall if success else None,
        status=outcome.status,
        cancelled_at=run.evidence.cancelled_at,
        newest_log_mtime=run.source.mtime,
        warnings=warnings,
        last_printed=last_printed,
    )
    wall = times.wall_time_s
    iterations = run.time_steps if record.stage_code in (SOLVER_LOOP.code, SUCCESS.code) else 0
    return record.replace(
        application=run.application,
        started_at=started_at,
        ended_at=times.ended_at,
        host=run.banner.get("host"),
        n_procs=n_procs,
        iterations_done=iterations,
        cpu_time_s=cpu,
        wall_time_s=wall,
        cpu_hours=cpu_hours_of(cpu, wall, n_procs),
        efficiency=efficiency_of(wall, n_procs, iterations, record.n_nodes),
        timing_source=times.source,
        status=outcome.status.value,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        log_path=relative_to_archive(run.source.path, archive_root),
        log_bytes=run.source.size,
        parse_warnings=tuple(warnings),
    )
