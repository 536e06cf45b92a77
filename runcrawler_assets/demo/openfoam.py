"""Realistic OpenFOAM cases for the demo archive, and the truth a correct parser must read.

Why: a mixed archive (AVBP runs and OpenFOAM cases, one `runs` table) needs
OpenFOAM cases that look like real ones, and tests need to know what is in
them. `write_openfoam_cases` writes N case directories under
`<root>/<cluster>/<user>/openfoam/` (the clusters and users of `demo`) and
returns one truth dict per case, named after `RunRecord`'s fields
(`demo.TRUTH_FIELDS`, plus `error_template`) and following
docs/contract-notes.md (OpenFOAM section), as `demo.generate_archive`'s truth does.

Each case has its dictionaries (controlDict, fvSchemes, momentumTransport or
turbulenceProperties, decomposeParDict when parallel) and the logs of its
pipeline: `log.blockMesh`, sometimes `log.snappyHexMesh`, `log.checkMesh`,
`log.decomposePar` when parallel, then the solver's log. The outcomes cycle
through `OUTCOMES`, so that N >= len(OUTCOMES) holds every kind, and four rounds
of them (36 cases) hold every outcome on both release lines (openfoam.com
v2312/v2306 banners with `Version:` and a version tag on errors; openfoam.org
11/10 with `Build :` and unit-suffixed `Time = ...s`), serial and parallel.

Real logs are messier than that (issue #14): launchers fail before any banner,
every MPI rank prints its error at once, Slurm tears a crashed step down,
users rename, move and compress logs, edit the dictionaries afterwards. Each
such mess is a `Phenomenon` of `PHENOMENA`, given to a share of the cases it
can happen to, and rendered by a small function named after it; its `rule`
says what the truth reports. `generate_openfoam_cases` also says which
phenomena each case got (for tests); `phenomena=()` writes the clean archive.

Everything is drawn from `random.Random` seeded per case, except the solver
log of a `running` case, whose modification time is the real time of writing.
The phenomena draw from a second stream of their own, so that a case keeps
the same plan (mesh, outcome, residuals) with or without them: a phenomenon
whose rule is "truth unchanged" really leaves the clean truth as it was.
Plain Python.
"""

from __future__ import annotations

import gzip
import math
import os
import random
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runcrawler_assets.demo.avbp import (
    CLUSTERS,
    KNOBS,
    TRUTH_FIELDS,
    USERS,
    DemoArchiveError,
)
from runcrawler_assets.records import Status, run_id_for
from runcrawler_assets.solvers.openfoam.dictionaries import Dictionary, flatten
from runcrawler_assets.solvers.openfoam.stages import (
    DECOMPOSITION,
    MESHING,
    SOLVER_LOOP,
    SOLVER_START,
    SUCCESS,
)

# Every way a case ends, in the order the generator cycles through them.
OUTCOMES: tuple[str, ...] = (
    "none",
    "fatal_error",
    "fatal_io_error",
    "floating_point",
    "meshing",
    "time_limit",
    "truncated",
    "running",
    "not_started",
)
CASE_NAMES = ("pitzDaily", "motorBike", "elbow", "backwardFacingStep", "mixerVessel", "channel")
# Cases are set up over the demo's span; truncated ones end well before its end
# (so a crawl sees them as old), running ones start during its last two days.
LAST_DAY = datetime.combine(KNOBS.end, datetime.min.time())
SPAN_DAYS = (60, KNOBS.span_days)

_SOLVER_OUTCOMES = frozenset(OUTCOMES) - {"meshing", "not_started"}
_FATAL_OUTCOMES = frozenset({"fatal_error", "fatal_io_error"})
_CRASH_OUTCOMES = _FATAL_OUTCOMES | {"floating_point"}


@dataclass(frozen=True)
class Release:
    """A release line's way of printing: version, banner box, build line, time unit."""

    version: str
    box: str
    build: str
    time_unit: str
    quoted_host: bool


_COM_BOX = (
    "/*---------------------------------------------------------------------------*\\\n"
    "| =========                 |                                                 |\n"
    "| \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox           |\n"
    "|  \\\\    /   O peration     | Version:  {version:<38}|\n"
    "|   \\\\  /    A nd           | Website:  www.openfoam.com                      |\n"
    "|    \\\\/     M anipulation  |                                                 |\n"
    "\\*---------------------------------------------------------------------------*/\n"
)
_ORG_BOX = (
    "/*---------------------------------------------------------------------------*\\\n"
    "  =========                 |\n"
    "  \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox\n"
    "   \\\\    /   O peration     | Website:  https://openfoam.org\n"
    "    \\\\  /    A nd           | Version:  {version}\n"
    "     \\\\/     M anipulation  |\n"
    "\\*---------------------------------------------------------------------------*/\n"
)
RELEASES: tuple[Release, ...] = (
    Release(
        "v2312",
        _COM_BOX,
        "_f3950763fe-20231219 OPENFOAM=2312 patch=240220 version=v2312",
        "",
        False,
    ),
    Release("11", _ORG_BOX, "11-9ec7b30d8f0d", "s", True),
    Release("v2306", _COM_BOX, "_d3b1cfe2-20230627 OPENFOAM=2306 version=v2306", "", False),
    Release("10", _ORG_BOX, "10-c4cf895ad8fa", "s", True),
)


@dataclass
class _Case:
    """One case being written: where, how, and what its truth says."""

    index: int
    rng: random.Random
    release: Release
    cluster: str
    host: str
    user: str
    run_path: str
    outcome: str
    n_procs: int
    transient: bool
    n_cells: int
    n_points: int
    created_at: datetime
    files: dict[str, tuple[str | bytes, datetime | None]] = field(default_factory=dict)
    # The phenomena this case got, and the stream their details are drawn from.
    mess: frozenset[str] = frozenset()
    mess_rng: random.Random = field(default_factory=random.Random)
    deciding_log: str | None = None

    def has(self, phenomenon: str) -> bool:
        return phenomenon in self.mess

    @property
    def org(self) -> bool:
        return self.release.box is _ORG_BOX

    @property
    def application(self) -> str:
        if self.org:
            return "foamRun"
        return "pimpleFoam" if self.transient else "simpleFoam"

    @property
    def runs_parallel(self) -> bool:
        """The solver ran as one MPI job (`-parallel`), not as serial copies."""
        return self.n_procs > 1 and not self.has("serial_copies")

    @property
    def solver_n_procs(self) -> int:
        return self.n_procs if self.runs_parallel else 1

    @property
    def case_dir(self) -> str:
        login = re.sub(r"[^\w.-]", "", self.user)
        name = self.run_path.rsplit("/", 1)[-1]
        if self.has("windows_paths"):
            return f"C:\\Users\\{login}\\OpenFOAM\\run\\{name}"
        return f"/scratch/{login}/{name}"

    def path(self, *parts: str) -> str:
        """A file of the case as the solver prints it (backslashes on Windows)."""
        separator = "\\" if self.has("windows_paths") else "/"
        return separator.join((self.case_dir, *parts))

    @property
    def version_tag(self) -> str:
        """openfoam.com tags error headers with its version; openfoam.org does not."""
        return "" if self.org else f" (openfoam-{self.release.version[1:]})"


# ---------------------------------------------------------------- the phenomena (issue #14)

Eligible = Callable[[_Case, Collection[str]], bool]


@dataclass(frozen=True)
class Phenomenon:
    """One way real logs are messier than the clean demo, and what the truth says about it.

    `share` is the chance that a case it can happen to (`eligible`, which may look at
    the phenomena chosen before it in `PHENOMENA`) gets it. `keeps_truth`: the truth is
    exactly that of the same case without it.
    """

    name: str
    item: int  # the item of issue #14
    share: float
    eligible: Eligible
    keeps_truth: bool
    rule: str


def _parallel_solver(case: _Case, chosen: Collection[str]) -> bool:
    return case.n_procs > 1 and case.outcome in _SOLVER_OUTCOMES


def _no_launcher_failure(chosen: Collection[str]) -> bool:
    return not any(name.startswith("launcher_") for name in chosen)


def _solver_banner(case: _Case, chosen: Collection[str]) -> bool:
    """The solver's log opens with a banner."""
    return case.outcome in _SOLVER_OUTCOMES and _no_launcher_failure(chosen)


def _every_rank_can_fail(case: _Case, chosen: Collection[str]) -> bool:
    return (
        case.outcome in _FATAL_OUTCOMES
        and case.n_procs > 1
        and _no_launcher_failure(chosen)
        and "serial_copies" not in chosen
    )


def _fpe(case: _Case, chosen: Collection[str]) -> bool:
    return case.outcome == "floating_point" and _no_launcher_failure(chosen)


def _none_of(chosen: Collection[str], names: Iterable[str]) -> bool:
    """None of these mutually exclusive variants was chosen yet."""
    return not any(name in chosen for name in names)


_NAMES = ("name_app_dot_log", "name_suffixed", "name_logs_folder", "name_single_log")
_CRASHES = ("crash_stack_trace_header", "crash_shell_line_only", "crash_sigsegv")

PHENOMENA: tuple[Phenomenon, ...] = (
    Phenomenon(
        "launcher_missing_executable", 2, 0.06, _parallel_solver, False,
        "no banner, mpirun's `unable to find the specified executable` box: failed, unknown, "
        "that line; n_procs, started_at, host NULL; version from the meshing logs' banners",
    ),
    Phenomenon(
        "launcher_singleton_processes", 2, 0.05,
        lambda c, chosen: _parallel_solver(c, chosen) and _no_launcher_failure(chosen), False,
        "no banner, N singleton processes each print `attempt to run parallel on 1 processor`: "
        "failed, unknown, `FOAM FATAL ERROR: <that line>`; as above otherwise",
    ),
    Phenomenon(
        "serial_copies", 3, 0.12,
        lambda c, chosen: c.n_procs > 1
        and c.outcome in {"none", "truncated", "running", "time_limit", *_FATAL_OUTCOMES}
        and _no_launcher_failure(chosen),
        False,
        "`mpirun -np K solver` without -parallel: K banners, every `Time =` K times, K `End`: "
        "n_procs 1, the steps and times of one copy (the last to print), its status",
    ),
    Phenomenon(
        "ranks_interleaved", 4, 0.45, _every_rank_can_fail, False,
        "every rank prints its FATAL block, `[N] `-prefixed and interleaved (`[2] [3] `, "
        "`(openfoam-(openfoam-2312)`): the message of the first header's own rank",
    ),
    Phenomenon(
        "mpi_abort_first", 5, 0.35, _every_rank_can_fail, True,
        "the MPI_ABORT box before the FATAL block, Open MPI help lines after: the FOAM error",
    ),
    Phenomenon(
        "step_cancelled_after_crash", 6, 0.15,
        lambda c, chosen: c.outcome in _CRASH_OUTCOMES and _no_launcher_failure(chosen), True,
        "`*** STEP <id>.0 ON <node> CANCELLED AT ... ***` after the crash: the crash decides",
    ),
    Phenomenon(
        "wrapped_message", 7, 0.2,
        lambda c, chosen: c.outcome in (_FATAL_OUTCOMES | {"meshing"})
        and _no_launcher_failure(chosen),
        True,
        "the message wrapped onto 2-3 lines, `From function` / `in file` / `file:` context: "
        "the message lines joined by one space",
    ),
    Phenomenon(
        "crash_stack_trace_header", 8, 0.45, lambda c, chosen: _fpe(c, chosen) and not c.org, True,
        "the newer `[stack trace]` / `=====` layout (several ranks interleaved in parallel): "
        "`Floating point exception (sigFpe) in <first Foam:: frame after the handler>`",
    ),
    Phenomenon(
        "crash_shell_line_only", 8, 0.3,
        lambda c, chosen: _fpe(c, chosen) and _none_of(chosen, _CRASHES), False,
        "no stack printed: the shell's `Floating point exception (core dumped)` (serial) or "
        "mpirun's `... exited on signal 8 (Floating point exception).` (parallel)",
    ),
    Phenomenon(
        "crash_sigsegv", 8, 0.35,
        lambda c, chosen: _fpe(c, chosen) and _none_of(chosen, _CRASHES), False,
        "a segmentation fault instead (classic stack, sigSegv handler): segfault, the shared "
        "runtime verdict, whose message is the line that decided: `#1  Foam::sigSegv::...`",
    ),
    Phenomenon(
        "crash_mid_step", 8, 0.5, _fpe, False,
        "the crash comes inside a step (its `Time =` and some solving printed, no ExecutionTime): "
        "that step counts in iterations_done; times are the last ExecutionTime/ClockTime's",
    ),
    Phenomenon(
        "noise_container_warnings", 1, 0.05, _solver_banner, True,
        "Apptainer and InfiniBand driver warnings before the banner, one set per rank",
    ),
    Phenomenon(
        "noise_openib_box", 1, 0.08,
        lambda c, chosen: _solver_banner(c, chosen) and c.n_procs > 1, True,
        "Open MPI's openib `no relevant network interfaces` box (with a `Host:` line) first",
    ),
    Phenomenon(
        "noise_superseded", 1, 0.1, lambda c, chosen: _solver_banner(c, chosen) and c.org, True,
        "OpenFOAM 13's `<solver> has been superseded ...` notice, once per rank, first",
    ),
    Phenomenon(
        "harmless_lookalikes", 9, 0.08, _solver_banner, True,
        "continuity errors, trapFpe, small bounding lines, FOAM Warning blocks, a library "
        "that `cannot open shared object file`: nothing changes",
    ),
    Phenomenon(
        "name_app_dot_log", 10, 0.035, lambda c, chosen: True, False,
        "every log named `<app>.log`: log_path follows",
    ),
    Phenomenon(
        "name_suffixed", 10, 0.035,
        lambda c, chosen: c.outcome != "not_started" and _none_of(chosen, _NAMES), False,
        "the deciding log named `log.<app>_<suffix>`: log_path follows",
    ),
    Phenomenon(
        "name_logs_folder", 10, 0.035, lambda c, chosen: _none_of(chosen, _NAMES), False,
        "every log moved to `logs/<app>.log`: log_path follows",
    ),
    Phenomenon(
        "name_single_log", 10, 0.035,
        lambda c, chosen: _no_launcher_failure(chosen) and _none_of(chosen, _NAMES), False,
        "the whole pipeline in one file named `log`: log_path follows",
    ),
    Phenomenon(
        "gzip_logs", 10, 0.04, lambda c, chosen: True, False,
        "every log gzip-compressed (`.gz`): log_path follows",
    ),
    Phenomenon(
        "crlf_line_endings", 11, 0.04, lambda c, chosen: c.outcome != "not_started", True,
        "the deciding log written with CRLF line endings",
    ),
    Phenomenon(
        "carriage_return_progress", 11, 0.04, lambda c, chosen: c.outcome != "not_started", True,
        "bare `\\r` progress output in the deciding log",
    ),
    Phenomenon(
        "invalid_utf8", 11, 0.04, lambda c, chosen: c.outcome != "not_started", True,
        "a Latin-1 line and stray bytes (invalid UTF-8) in the deciding log",
    ),
    Phenomenon(
        "windows_paths", 11, 0.15,
        lambda c, chosen: c.outcome in _FATAL_OUTCOMES and _no_launcher_failure(chosen), False,
        "the case under `C:\\Users\\...`: the message holds the Windows path as printed",
    ),
    Phenomenon(
        "application_edited", 12, 0.05, _solver_banner, False,
        "controlDict's `application` names another solver than `Exec`: the log decides; "
        "params say what controlDict says",
    ),
    Phenomenon(
        "subdomains_edited", 12, 0.1,
        lambda c, chosen: _solver_banner(c, chosen) and c.n_procs > 1
        and "serial_copies" not in chosen,
        False,
        "decomposeParDict's numberOfSubdomains differs from the banner's nProcs: n_procs is "
        "the banner's; params say what decomposeParDict says",
    ),
)  # fmt: skip
PHENOMENON_NAMES: tuple[str, ...] = tuple(p.name for p in PHENOMENA)


def _choose_phenomena(
    case: _Case, rng: random.Random, phenomena: Sequence[Phenomenon] = PHENOMENA
) -> frozenset[str]:
    """The phenomena one case gets: one draw per phenomenon, eligible or not, so that
    a change of one phenomenon's eligibility leaves the others' draws alone."""
    chosen: set[str] = set()
    for phenomenon in phenomena:
        draw = rng.random()
        if draw < phenomenon.share and phenomenon.eligible(case, chosen):
            chosen.add(phenomenon.name)
    return frozenset(chosen)


# ---------------------------------------------------------------- banners and errors


def _banner(
    case: _Case,
    command: str,
    started: datetime,
    *,
    pid: int | None = None,
    n_procs_line: bool = True,
    trap_fpe: bool = False,
) -> str:
    release = case.release
    host = f'"{case.host}"' if release.quoted_host else case.host
    lines = [
        release.box.format(version=release.version).rstrip("\n"),
        f"Build  : {release.build}",
        f"Exec   : {command}",
        f"Date   : {started:%b %d %Y}",
        f"Time   : {started:%H:%M:%S}",
        f"Host   : {host}",
        f"PID    : {pid if pid is not None else case.rng.randrange(1000, 99999)}",
        "I/O    : uncollated",
        f"Case   : {case.case_dir}",
    ]
    if n_procs_line:
        lines.append(f"nProcs : {case.n_procs if '-parallel' in command else 1}")
    lines += [
        "trapFpe: Floating point exception trapping enabled (FOAM_SIGFPE)."
        if trap_fpe
        else "sigFpe : Enabling floating point exception trapping (FOAM_SIGFPE).",
        "",
        "// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //",
        "Create time",
        "",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Message:
    """A FOAM error message: the lines it is wrapped onto, or one line joined by spaces."""

    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def _fatal_lines(
    case: _Case, kind: str, message: _Message, origin: str, *, file: str | None = None
) -> list[str]:
    """A FOAM error block, one line per item; wrapped (`wrapped_message`) with more context."""
    source = origin.split("::")[-1]
    header = f"--> FOAM FATAL {kind}:{case.version_tag}"
    if not case.has("wrapped_message"):
        return [
            header, message.text, "", f"    From {origin}",
            f"    in file {source}.C at line 217.", "", "FOAM exiting", "",
        ]  # fmt: skip
    indent = case.mess_rng.choice(("", "    "))
    wrapped = [message.parts[0], *(indent + part for part in message.parts[1:])]
    context = [f"file: {file} from line 17 to line 49.", ""] if file else []
    return [
        header, *wrapped, "", *context, f"    From function {origin}",
        f"    in file {source}.C at line 217.", "", "FOAM exiting", "",
    ]  # fmt: skip


def _fatal(case: _Case, kind: str, message: _Message, origin: str) -> str:
    return "\n".join(_fatal_lines(case, kind, message, origin)) + "\n"


def _prefixed(rank: int | None, lines: Iterable[str]) -> list[str]:
    return [f"[{rank}] {line}" if rank is not None else line for line in lines]


def _interleave(
    streams: Sequence[Sequence[Sequence[str]]],
    rng: random.Random,
    *,
    window: int = 2,
    stay: float = 0.6,
) -> list[tuple[int, str]]:
    """Several writers' chunks of lines merged as they reach one file: each writer's order
    is kept, at most `window` writers are busy at once, the last one goes on writing with
    probability `stay`. Returns (writer, line) pairs."""
    positions = [0] * len(streams)
    merged: list[tuple[int, str]] = []
    current = 0
    while True:
        busy = [i for i, chunks in enumerate(streams) if positions[i] < len(chunks)][:window]
        if not busy:
            return merged
        if current not in busy or rng.random() >= stay:
            current = rng.choice(busy)
        merged += [(current, line) for line in streams[current][positions[current]]]
        positions[current] += 1


# ---------------------------------------------------------------- the dictionaries


def _dictionaries(case: _Case, steps: int, delta_t: float) -> dict[str, Dictionary]:
    """The case's dictionaries as nested dicts: rendered into files, flattened for the truth."""
    control: Dictionary = {
        "application": case.application,
        "startFrom": "startTime",
        "startTime": "0",
        "stopAt": "endTime",
        "endTime": f"{steps * delta_t:g}",
        "deltaT": f"{delta_t:g}",
        "writeControl": "timeStep",
        "writeInterval": str(max(steps // 10, 1)),
    }
    if case.application == "foamRun":
        control["solver"] = "incompressibleFluid"
    div_u = case.rng.choice(
        ("bounded Gauss linearUpwind grad(U)", "Gauss linear", "bounded Gauss upwind")
    )
    schemes: Dictionary = {
        "ddtSchemes": {"default": "Euler" if case.transient else "steadyState"},
        "divSchemes": {
            "default": "none",
            "div(phi,U)": div_u,
            "div(phi,k)": "bounded Gauss upwind",
        },
    }
    model = case.rng.choice(("kOmegaSST", "kEpsilon", "realizableKE"))
    dicts = {"controlDict": control, "fvSchemes": schemes}
    if case.org:
        dicts["momentumTransport"] = {"simulationType": "RAS", "RAS": {"model": model}}
    else:
        dicts["turbulenceProperties"] = {"simulationType": "RAS", "RAS": {"RASModel": model}}
    if case.n_procs > 1:
        dicts["decomposeParDict"] = {"numberOfSubdomains": str(case.n_procs), "method": "scotch"}
    return dicts


def _edit_dictionaries(case: _Case, dicts: dict[str, Dictionary]) -> None:
    """Dictionaries edited after the run (item 12): the files say what the next run will do."""
    if case.has("application_edited"):
        others = {"simpleFoam": "pimpleFoam", "pimpleFoam": "simpleFoam", "foamRun": "simpleFoam"}
        dicts["controlDict"]["application"] = others[case.application]
    if case.has("subdomains_edited"):
        # Re-decomposed for the next run: half as many subdomains (at least 2), or twice.
        halved = case.n_procs // 2 if case.n_procs >= 4 else case.n_procs * 2
        edited = case.mess_rng.choice((halved, case.n_procs * 2))
        dicts["decomposeParDict"]["numberOfSubdomains"] = str(edited)


_LOCATION = {"controlDict": "system", "fvSchemes": "system", "decomposeParDict": "system"}


def _render(name: str, entries: Dictionary, depth: int = 0) -> str:
    """A dictionary file as OpenFOAM writes them (FoamFile header at the top level)."""
    pad = "    " * depth
    out = []
    if depth == 0:
        out.append(
            f"FoamFile\n{{\n    format ascii;\n    class dictionary;\n    object {name};\n}}"
        )
        out.append("// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //\n")
    for key, value in entries.items():
        if isinstance(value, dict):
            out.append(f"{pad}{key}\n{pad}{{\n{_render(name, value, depth + 1)}{pad}}}\n")
        else:
            out.append(f"{pad}{key:<15} {value};")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the time loop


@dataclass(frozen=True)
class _Step:
    """One time step: its `Time =` line, the solving lines, and when it ended (seconds)."""

    time_line: str
    solving: tuple[str, ...]
    seconds: float

    def clock_line(self, slower: float = 1.0) -> str:
        execution, clock = _times(self.seconds * slower)
        return f"ExecutionTime = {execution:.2f} s  ClockTime = {clock} s"


def _times(seconds: float) -> tuple[float, int]:
    """ExecutionTime and ClockTime as printed after `seconds` of computing."""
    execution = round(seconds, 2)
    return execution, round(execution * 1.04)


def _time_loop(case: _Case, steps: int, delta_t: float, seconds_per_step: float) -> list[_Step]:
    loop = []
    for step in range(1, steps + 1):
        residual = case.rng.uniform(1e-4, 1e-2)
        solving = [
            f"smoothSolver:  Solving for Ux, Initial residual = {residual:.5g}, "
            f"Final residual = {residual / 20:.5g}, No Iterations 2",
            f"GAMG:  Solving for p, Initial residual = {residual * 3:.5g}, "
            f"Final residual = {residual / 50:.5g}, No Iterations 5",
        ]
        if case.has("harmless_lookalikes"):
            solving += _harmless_step_lines(case.mess_rng)
        loop.append(
            _Step(
                f"Time = {step * delta_t:g}{case.release.time_unit}",
                tuple(solving),
                step * seconds_per_step,
            )
        )
    return loop


def _loop_text(loop: Sequence[_Step]) -> str:
    """The time loop as one run prints it."""
    if not loop:
        return ""
    lines = ["Starting time loop", ""]
    for step in loop:
        lines += [step.time_line, "", *step.solving, step.clock_line(), ""]
    return "\n".join(lines) + "\n"


def _harmless_step_lines(rng: random.Random) -> list[str]:
    """Lines of a healthy step that name errors or bounds (item 9)."""
    lines = [
        f"time step continuity errors : sum local = {rng.uniform(1e-9, 1e-6):.5g}, "
        f"global = {rng.uniform(-1e-18, 1e-18):.5g}, "
        f"cumulative = {rng.uniform(-1e-17, 1e-17):.5g}"
    ]
    if rng.random() < 0.3:
        lines.append(
            f"bounding k, min: {-rng.uniform(1e-7, 1e-5):.5g} max: {rng.uniform(0.5, 4):.5g} "
            f"average: {rng.uniform(0.01, 0.3):.5g}"
        )
    return lines


def _harmless_warnings(case: _Case) -> str:
    """FOAM Warning blocks a healthy start-up prints (item 9): a library that is not
    there, a keyword left to its default. Warnings, not errors."""
    library = case.mess_rng.choice(("libmyBoundaryConditions.so", "libgroovyBC.so", "libfoo.so"))
    tag = case.version_tag
    return (
        f"--> FOAM Warning :{tag}\n"
        "    From bool Foam::dlLibraryTable::open(bool)\n"
        "    in file db/dynamicLibrary/dlLibraryTable/dlLibraryTable.C at line 188\n"
        f'    Could not load "{library}"\n'
        f"{library}: cannot open shared object file: No such file or directory\n\n"
        f"--> FOAM Warning :{tag}\n"
        "    From Foam::solution::read(const Foam::dictionary&)\n"
        "    in file matrices/solution/solution.C at line 163\n"
        "    keyword nNonOrthogonalCorrectors is undefined in SIMPLE, taking 0\n\n"
    )


# ---------------------------------------------------------------- the pipeline logs


def _mesh_logs(case: _Case, started: datetime, with_snappy: bool) -> datetime:
    """blockMesh, then snappyHexMesh and checkMesh unless meshing fails; returns when they end."""
    block_cells = case.n_cells // 8 if with_snappy else case.n_cells
    block_points = case.n_points // 8 if with_snappy else case.n_points
    at = started
    case.files["log.blockMesh"] = (
        _banner(case, "blockMesh", at)
        + f"Mesh Information\n----------------\n  nPoints: {block_points}\n"
        + f"  nCells: {block_cells}\n\nEnd\n\n",
        at + timedelta(seconds=5),
    )
    at += timedelta(minutes=1)
    if case.outcome == "meshing":
        return at
    if with_snappy:
        case.files["log.snappyHexMesh"] = (
            _banner(case, "snappyHexMesh -overwrite", at)
            + f"Snapped mesh : cells:{case.n_cells}  faces:{case.n_cells * 3}  "
            + f"points:{case.n_points}\nFinished meshing in = 312.4 s.\nEnd\n\n",
            at + timedelta(minutes=6),
        )
        at += timedelta(minutes=7)
    case.files["log.checkMesh"] = (
        _banner(case, "checkMesh", at)
        + f"Mesh stats\n    points:           {case.n_points}\n"
        + f"    cells:            {case.n_cells}\n\n"
        + "    Mesh has 3 solution (non-empty) directions (1 1 1)\n\nMesh OK.\n\nEnd\n\n",
        at + timedelta(seconds=30),
    )
    return at + timedelta(minutes=1)


def _write_case(root: Path, case: _Case, now: datetime) -> dict[str, Any]:
    """Write one case directory and return its truth."""
    rng = case.rng
    delta_t = 1e-4 if case.transient else 1.0
    requested = rng.choice((100, 150, 200, 300))
    dicts = _dictionaries(case, requested, delta_t)
    _edit_dictionaries(case, dicts)
    truth: dict[str, Any] = dict.fromkeys(TRUTH_FIELDS)
    truth.update(
        run_id=run_id_for(case.run_path),
        cluster=case.cluster,
        user=case.user,
        run_path=case.run_path,
        solver="openfoam",
        created_at=case.created_at.isoformat(),
        iterations_requested=requested,
        iterations_done=0,
        les_model=_model(dicts),
        convection_scheme=" ".join(dicts["fvSchemes"]["divSchemes"]["div(phi,U)"].lower().split()),
        n_restarts=0,
        params={k: v for name, d in dicts.items() for k, v in flatten(d, name).items()},
        n_cells=case.n_cells,
        n_nodes=case.n_points,
        dimension=3,
        # The program that ran (its `Exec`), whatever controlDict says now; no run, no program.
        application=None,
        # A case whose solver never ran still printed its version in the pipeline's banners.
        solver_version=case.release.version,
    )
    with_snappy = rng.random() < 0.5 and case.outcome != "meshing"
    at = _mesh_logs(case, case.created_at + timedelta(minutes=rng.randrange(2, 90)), with_snappy)
    stage = MESHING
    if case.outcome == "meshing":
        _meshing_failure(case, truth, at)
    else:
        if case.n_procs > 1:
            case.files["log.decomposePar"] = (
                _banner(case, "decomposePar", at) + "Time = 0\n\nEnd\n\n",
                at + timedelta(seconds=20),
            )
            at += timedelta(minutes=1)
            stage = DECOMPOSITION
        if case.outcome == "not_started":
            truth.update(status=Status.NOT_STARTED.value, stage_code=stage.code, stage=stage.label)
        else:
            _solver_log(case, truth, at, requested, delta_t)
    deciding = _arrange_logs(case)
    if deciding is not None:
        truth["log_path"] = f"{case.run_path}/{deciding}"
    _write_files(root, case, dicts, now)
    return truth


def _model(dicts: dict[str, Dictionary]) -> str:
    ras = (dicts.get("momentumTransport") or dicts["turbulenceProperties"])["RAS"]
    return str(ras.get("model") or ras["RASModel"]).lower()


def _meshing_failure(case: _Case, truth: dict[str, Any], at: datetime) -> None:
    """snappyHexMesh stops on a locationInMesh outside the geometry: the solver never runs."""
    point = f"({case.rng.uniform(-1, 1):.3f} {case.rng.uniform(5, 20):.2f} 0.2)"
    message = _Message((f"Point {point} is not inside the mesh", "or on a face or edge."))
    ended = at + timedelta(minutes=case.rng.randrange(2, 30))
    case.deciding_log = "log.snappyHexMesh"
    case.files[case.deciding_log] = (
        _banner(case, "snappyHexMesh -overwrite", at)
        + "Reading refinement surfaces.\n"
        + _fatal(case, "ERROR", message, "Foam::meshRefinement::findRegion"),
        ended,
    )
    wall = (ended - at).total_seconds()
    truth.update(
        started_at=at.isoformat(),
        ended_at=ended.isoformat(),
        host=case.host,
        n_procs=1,
        dimension=None,
        wall_time_s=wall,
        cpu_hours=wall / 3600,
        status=Status.FAILED.value,
        stage_code=MESHING.code,
        stage=MESHING.label,
        error_category="input_file",
        error_message=f"FOAM FATAL ERROR: {message.text}",
        error_template="openfoam:location_in_mesh",
        application="snappyHexMesh",
    )


# ---------------------------------------------------------------- the solver's log


@dataclass(frozen=True)
class _Ending:
    """How the solver's run ends: what it prints last, and what the truth says of it."""

    text: str
    status: Status
    category: str | None = None
    message: str | None = None
    template: str | None = None


_FPE_FRAMES = ("Foam::divide", "Foam::GAMGSolver::scale", "Foam::PBiCGStab::solve")
_SEGV_FRAMES = (
    "Foam::fvMatrix<double>::solveSegregated",
    "Foam::mapDistributeBase::distribute",
    "Foam::cyclicAMIPolyPatch::interpolate",
)


def _solver_log(
    case: _Case, truth: dict[str, Any], started: datetime, requested: int, delta_t: float
) -> None:
    """The solver's log (and the scheduler's output of a killed run), and the truth they imply."""
    if case.has("launcher_missing_executable") or case.has("launcher_singleton_processes"):
        _launcher_failure(case, truth, started)
        return
    rng, outcome = case.rng, case.outcome
    steps = requested if outcome == "none" else rng.randrange(1, requested)
    if outcome in _FATAL_OUTCOMES:
        steps = 0
    seconds_per_step = case.n_cells / case.n_procs * rng.uniform(2e-6, 6e-6)
    if case.has("serial_copies"):
        seconds_per_step *= case.n_procs  # each copy computes the whole mesh alone
    loop = _time_loop(case, steps, delta_t, seconds_per_step)
    copies = _serial_copy_count(case) if case.has("serial_copies") else 1
    slowest = _serial_copy_slowdown(copies - 1)
    execution, clock = _times(loop[-1].seconds * slowest) if loop else (0.0, 0)
    log_mtime = started + timedelta(seconds=clock + rng.randrange(5, 120))
    ending = _ending(case, log_mtime)
    if case.has("serial_copies"):
        text = _serial_copies(case, started, loop, ending.text)
    else:
        command = case.application + (" -parallel" if case.runs_parallel else "")
        text = (
            _banner(case, command, started, trap_fpe=case.has("harmless_lookalikes"))
            + _start_up(case)
            + _loop_text(loop)
            + _unfinished_step(case, len(loop) + 1, delta_t)
            + ending.text
        )
    text = _noise_before_banner(case) + text
    case.deciding_log = f"log.{case.application}"
    case.files[case.deciding_log] = (text, None if ending.status == Status.RUNNING else log_mtime)
    if case.has("step_cancelled_after_crash"):
        _step_cancelled(case, log_mtime)
    n_procs = case.solver_n_procs
    steps_started = len(loop) + case.has("crash_mid_step")
    ended = _ended_at(ending.status, started, clock, log_mtime, bool(loop))
    wall = float(clock) if ended is None else (ended - started).total_seconds()
    cpu = execution * n_procs if loop else None
    stage = SUCCESS if ending.status == Status.SUCCESS else SOLVER_LOOP if loop else SOLVER_START
    truth.update(
        application=case.application,
        started_at=started.isoformat(),
        ended_at=ended.isoformat() if ended is not None else None,
        host=case.host,
        n_procs=n_procs,
        iterations_done=steps_started,
        cpu_time_s=cpu,
        wall_time_s=wall,
        cpu_hours=cpu / 3600 if cpu is not None else wall * n_procs / 3600,
        efficiency=wall * n_procs / (steps_started * case.n_points) if loop else None,
        status=ending.status.value,
        stage_code=stage.code,
        stage=stage.label,
        error_category=ending.category,
        error_message=ending.message,
        error_template=ending.template,
    )


def _unfinished_step(case: _Case, step: int, delta_t: float) -> str:
    """The step a crash interrupts (`crash_mid_step`): started, some fields solved, no end."""
    if not case.has("crash_mid_step"):
        return ""
    residual = case.mess_rng.uniform(0.5, 1.0)
    return (
        f"Time = {step * delta_t:g}{case.release.time_unit}\n\n"
        f"smoothSolver:  Solving for Ux, Initial residual = {residual:.5g}, "
        f"Final residual = {residual / 14:.5g}, No Iterations 4\n"
    )


def _ended_at(
    status: Status, started: datetime, clock: int, log_mtime: datetime, looped: bool
) -> datetime | None:
    """contract-notes 2: success and a log that printed a ClockTime end at start + ClockTime;
    a killed run at the scheduler's CANCELLED AT (the log's time); else the log's mtime."""
    if status == Status.RUNNING:
        return None
    if status == Status.KILLED or not looped:
        return log_mtime
    return started + timedelta(seconds=clock)


def _start_up(case: _Case) -> str:
    """What the solver prints between its banner and its time loop."""
    text = "Create mesh for time = 0\n\n"
    if case.has("harmless_lookalikes"):
        text += _harmless_warnings(case)
    return text


def _ending(case: _Case, log_mtime: datetime) -> _Ending:
    """The last words of the solver's run, by outcome (a time limit writes a scheduler file)."""
    outcome = case.outcome
    if outcome == "none":
        return _Ending(
            "End\n\n" + ("Finalising parallel run\n" if case.runs_parallel else ""),
            Status.SUCCESS,
            "none",
        )
    if outcome in _FATAL_OUTCOMES:
        text, message, template = _fatal_failure(case)
        return _Ending(text, Status.FAILED, "input_file", message, template)
    if outcome == "floating_point":
        return _crash(case)
    if outcome == "time_limit":
        jobid = case.rng.randrange(1_000_000, 9_999_999)
        message = (
            f"slurmstepd: error: *** JOB {jobid} ON {case.host} CANCELLED AT "
            f"{log_mtime:%Y-%m-%dT%H:%M:%S} DUE TO TIME LIMIT ***"
        )
        case.files[f"slurm-{jobid}.out"] = (message + "\n", log_mtime)
        return _Ending("", Status.KILLED, "time_limit", message, "time_limit")
    if outcome == "truncated":
        return _Ending("", Status.TRUNCATED, "truncated")
    return _Ending("", Status.RUNNING)


def _fatal_failure(case: _Case) -> tuple[str, str, str]:
    """A FATAL (IO) ERROR at start-up: (log text, the message the parser must report, its
    template). One template is one message up to what varies between runs (paths, numbers)."""
    if case.outcome == "fatal_error":
        field_name = case.rng.choice(("U", "p", "k", "omega", "nut"))

        def message_of(rank: int | None) -> _Message:
            folder = () if rank is None else (f"processor{rank}",)
            return _Message(("cannot find file", f'"{case.path(*folder, "0", field_name)}"'))

        kind, origin = "ERROR", "Foam::fileOperations::uncollatedFileOperation::readStream"
        file, template = None, "openfoam:missing_field"
    else:
        keyword = case.rng.choice(("deltaT", "endTime", "writeControl"))
        control_dict = case.path("system", "controlDict")

        def message_of(rank: int | None) -> _Message:
            return _Message(
                (f"keyword {keyword} is undefined", "in dictionary", f'"{control_dict}"')
            )

        kind, origin = "IO ERROR", "Foam::dictionary::lookupEntry"
        file, template = control_dict, f"openfoam:missing_keyword:{keyword}"
    if case.has("ranks_interleaved"):
        lines, first_rank = _every_rank_fails(case, kind, message_of, origin, file)
        message = message_of(first_rank)
    else:
        message = message_of(None)
        rank = 0 if case.runs_parallel else None
        lines = _prefixed(rank, _fatal_lines(case, kind, message, origin, file=file))
    if case.has("mpi_abort_first"):
        lines = _mpi_abort_box(case) + lines + _help_aggregate(case, "help-mpi-api.txt / mpi-abort")
    return "\n".join(lines) + "\n", f"FOAM FATAL {kind}: {message.text}", template


def _every_rank_fails(
    case: _Case,
    kind: str,
    message_of: Callable[[int | None], _Message],
    origin: str,
    file: str | None,
) -> tuple[list[str], int]:
    """Every rank prints its error block at once (item 4): `[N] `-prefixed lines
    interleaved, one rank's unfinished line fused with the next rank's (`[2] [3] `), on
    openfoam.com one version tag torn (`(openfoam-(openfoam-2312)`). Returns the lines and
    the rank of the first header, whose message is the run's."""
    rng = case.mess_rng
    ranks = rng.sample(range(case.n_procs), min(case.n_procs, 32))
    streams = []
    for rank in ranks:
        block = _fatal_lines(case, kind, message_of(rank), origin, file=file)[:-2]  # `FOAM exiting`
        lines = [*_prefixed(rank, ["", "", *block]), "FOAM parallel run exiting", f"[{rank}] "]
        streams.append([[line] for line in lines])
    merged = _interleave(streams, rng, window=2, stay=0.7)
    merged = _fuse_rank_lines(merged, rng)
    headers = [i for i, (_, line) in enumerate(merged) if "--> FOAM FATAL" in line]
    first_rank = ranks[merged[headers[0]][0]]
    lines = [line for _, line in merged]
    if not case.org and len(headers) > 1:
        tag = case.version_tag.strip()  # (openfoam-2312)
        torn, rest = tag[: len("(openfoam-")], tag[len("(openfoam-") :]
        lines[headers[0]] = lines[headers[0]].replace(tag, torn + tag)
        lines[headers[1]] = lines[headers[1]].replace(tag, rest)
    lines += ["", "FOAM parallel run exiting"]
    if not case.has("mpi_abort_first"):
        lines += _mpi_abort_box(case) + _help_aggregate(case, "help-mpi-api.txt / mpi-abort")
    return lines, first_rank


def _fuse_rank_lines(merged: list[tuple[int, str]], rng: random.Random) -> list[tuple[int, str]]:
    """One rank's empty line (`[2] `) fused with the next line of another rank (`[2] [3] `):
    the line belongs to the rank that finished it, the last one."""
    candidates = [
        i
        for i in range(len(merged) - 1)
        if merged[i][1].endswith("] ") and merged[i][1].count("[") == 1
        and merged[i + 1][0] != merged[i][0]
    ]  # fmt: skip
    if not candidates:
        return merged
    i = rng.choice(candidates)
    fused = (merged[i + 1][0], merged[i][1] + merged[i + 1][1])
    return [*merged[:i], fused, *merged[i + 2 :]]


def _mpi_abort_box(case: _Case) -> list[str]:
    rank = case.mess_rng.randrange(case.n_procs)
    return [
        "-" * 74,
        f"MPI_ABORT was invoked on rank {rank} in communicator MPI_COMM_WORLD",
        "with errorcode 1.",
        "",
        "NOTE: Open MPI now stops every process of the job; what the other",
        "ranks were printing may be cut short.",
        "-" * 74,
    ]


def _help_aggregate(case: _Case, topic: str) -> list[str]:
    """mpirun's note that other ranks said the same, in the solver's output (item 5)."""
    where = f"[{case.host}:{case.mess_rng.randrange(1000, 99999):05d}]"
    others = max(case.n_procs - 1, 1)
    return [
        f"{where} {others} more processes have sent help message {topic}",
        f'{where} Set MCA parameter "orte_base_help_aggregate" to 0 to see all help / error '
        "messages",
    ]


def _crash(case: _Case) -> _Ending:
    """A floating point exception, printed in one of the layouts of item 8 (or a segfault)."""
    frame = case.rng.choice(_FPE_FRAMES)
    parallel = case.runs_parallel
    if case.has("crash_sigsegv"):
        frame = case.mess_rng.choice(_SEGV_FRAMES)
        stack = _classic_stack("sigSegv", frame, case.application)
        lines = _prefixed(0 if parallel else None, stack)
        tail = _signal_tail(case, 11, "Segmentation fault", rank=0)
        # A segfault is the shared runtime verdict (runs-schema, OpenFOAM failures): its
        # message is the line that decided (contract-notes 1), the handler's frame.
        return _Ending(
            "\n".join(lines + tail) + "\n", Status.FAILED, "segfault", stack[1], "openfoam:segv"
        )
    tail = _signal_tail(case, 8, "Floating point exception")
    message, template = f"Floating point exception (sigFpe) in {frame}", f"openfoam:fpe:{frame}"
    if case.has("crash_shell_line_only"):
        message = tail[1] if parallel else tail[0]
        lines, template = [], f"openfoam:fpe:{'mpirun' if parallel else 'shell'}"
    elif case.has("crash_stack_trace_header"):
        lines = _stack_trace_layout(case, frame)
    else:
        lines = _prefixed(0 if parallel else None, _classic_stack("sigFpe", frame, "solver"))
        tail = _signal_tail(case, 8, "Floating point exception", rank=0)
    return _Ending(
        "\n".join(lines + tail) + "\n", Status.FAILED, "numerical_instability", message, template
    )


def _classic_stack(handler: str, frame: str, binary: str) -> list[str]:
    """`#0 printStack`, `#1 <handler>::sigHandler`, a libc frame, then the failing frame."""
    return [
        "#0  Foam::error::printStack(Foam::Ostream&) at ??:?",
        f"#1  Foam::{handler}::sigHandler(int) at ??:?",
        "#2  ? in /lib64/libc.so.6",
        f"#3  {frame}(Foam::Field<double>&) const at ??:?",
        f"#4  ? in /opt/openfoam/platforms/linux64GccDPInt32Opt/bin/{binary}",
    ]


def _stack_trace_layout(case: _Case, frame: str) -> list[str]:
    """The newer layout: `[stack trace]` between `=====` rules, no `#0`, frames `in <lib>`;
    in parallel, each rank that trapped it prints its own, line by line together."""
    lib = "/opt/openfoam/platforms/linux64GccDPInt32Opt/lib/libOpenFOAM.so"
    binary = f"/opt/openfoam/platforms/linux64GccDPInt32Opt/bin/{case.application}"
    stack = [
        "[stack trace]",
        "=============",
        f"#1  Foam::sigFpe::sigHandler(int) in {lib}",
        "#2  ? in /lib64/libpthread.so.0",
        f"#3  {frame}(Foam::Field<double>&, Foam::lduMatrix const&) const in {lib}",
        f"#4  Foam::GAMGSolver::Vcycle(Foam::PtrList<Foam::lduMatrix::smoother> const&) in {lib}",
        f"#5  ? in {binary}",
        "#6  __libc_start_main in /lib64/libc.so.6",
        f"#7  ? in {binary}",
        "=============",
    ]
    if not case.runs_parallel:
        return stack
    rng = case.mess_rng
    ranks = rng.sample(range(case.n_procs), min(case.n_procs, rng.choice((1, 2, 4, 8))))
    streams = [[[line] for line in _prefixed(rank, stack)] for rank in ranks]
    return [line for _, line in _interleave(streams, rng, window=len(ranks), stay=0.2)]


def _signal_tail(case: _Case, signal: int, name: str, rank: int | None = None) -> list[str]:
    """What the shell (serial) or mpirun (parallel) prints when `rank` (any) dies of `signal`."""
    if not case.runs_parallel:
        return [f"{name} (core dumped)"]
    pid = case.mess_rng.randrange(1000, 99999)
    rank = case.mess_rng.randrange(case.n_procs) if rank is None else rank
    return [
        "-" * 74,
        f"mpirun noticed that process rank {rank} with PID {pid} on node {case.host} exited "
        f"on signal {signal} ({name}).",
        "-" * 74,
    ]


def _step_cancelled(case: _Case, crashed: datetime) -> None:
    """Slurm tears the step down once a task died (item 6): no reason given, not a verdict."""
    jobid = case.mess_rng.randrange(1_000_000, 9_999_999)
    at = crashed + timedelta(seconds=case.mess_rng.randrange(1, 30))
    case.files[f"slurm-{jobid}.out"] = (
        f"Running {case.application} on {case.n_procs} processors\n"
        f"slurmstepd: error: *** STEP {jobid}.0 ON {case.host} CANCELLED AT "
        f"{at:%Y-%m-%dT%H:%M:%S} ***\n",
        at,
    )


# ---------------------------------------------------------------- launcher failures (item 2)


_PARALLEL_ON_ONE = (
    "bool IPstream::init(int& argc, char**& argv) : attempt to run parallel on 1 processor"
)


def _launcher_failure(case: _Case, truth: dict[str, Any], started: datetime) -> None:
    """The job's launcher failed before any banner: no version, start, host or nProcs in
    the log; the meshing logs' banners still give the version."""
    rng = case.mess_rng
    mtime = started + timedelta(seconds=rng.randrange(2, 60))
    if case.has("launcher_missing_executable"):
        text = _missing_executable_box(case)
        message, template = text.splitlines()[1], "openfoam:launcher:executable_not_found"
    else:
        text = _singleton_aborts(case)
        message, template = f"FOAM FATAL ERROR: {_PARALLEL_ON_ONE}", "openfoam:launcher:singleton"
    case.deciding_log = f"log.{case.application}"
    case.files[case.deciding_log] = (text, mtime)
    truth.update(
        application=case.application,  # the log's name, as controlDict says
        ended_at=mtime.isoformat(),
        status=Status.FAILED.value,
        error_category="unknown",
        error_message=message,
        error_template=template,
    )


def _missing_executable_box(case: _Case) -> str:
    return "\n".join(
        [
            "-" * 74,
            "mpirun was unable to find the specified executable file, and therefore",
            "did not launch the job. Process rank 0 reported it first; other ranks",
            "may have failed the same way.",
            "",
            f"Node:       {case.host}",
            f"Executable: {case.application}",
            "-" * 74,
            f"{case.n_procs} total processes failed to start",
            "",
        ]
    )


def _singleton_aborts(case: _Case) -> str:
    """N processes launched by a foreign MPI: each believes it is alone, refuses `-parallel`
    and aborts; their reports, stacks and signal notices interleave."""
    rng = case.mess_rng
    binary = f"/opt/openfoam/platforms/linux64GccDPInt32Opt/bin/{case.application}"
    streams = []
    for _ in range(min(case.n_procs, 16)):
        pid = rng.randrange(1000, 99999)
        report = [
            "", "", f"--> FOAM FATAL ERROR:{case.version_tag}", _PARALLEL_ON_ONE, "",
            "    From function static bool Foam::UPstream::init(int&, char**&, bool)",
            "    in file UPstream.C at line 112.", "", "FOAM aborting", "",
        ]  # fmt: skip
        frames = [
            "#0  Foam::error::printStack(Foam::Ostream&) at ??:?",
            "#1  Foam::error::abort() at ??:?",
            "#2  Foam::UPstream::init(int&, char**&, bool) at ??:?",
            "#3  Foam::argList::argList(int&, char**&, bool, bool, bool) at ??:?",
            f'#4  ? in "{binary}"',
            '#5  __libc_start_main in "/lib64/libc.so.6"',
            f"[{case.host}:{pid}] *** Process received signal ***",
            f"[{case.host}:{pid}] Signal: Aborted (6)",
            f"[{case.host}:{pid}] *** End of error message ***",
        ]
        streams.append([report, *([line] for line in frames)])
    lines = [line for _, line in _interleave(streams, rng, window=3, stay=0.4)]
    lines += [
        "=" * 83,
        "=   ONE OF THE APPLICATION PROCESSES ENDED BADLY",
        f"=   PID {rng.randrange(1000, 99999)} ON {case.host}",
        "=   EXIT CODE: 6",
        "=" * 83,
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- serial copies (item 3)


def _serial_copy_count(case: _Case) -> int:
    """How many serial copies `mpirun -np K` started: K of the planned processes, at most 8."""
    return min(case.n_procs, 8)


def _serial_copy_slowdown(copy: int) -> float:
    """Copies compete for the same cores: each is a little slower than the one before."""
    return 1.0 + 0.003 * copy


def _serial_copies(case: _Case, started: datetime, loop: Sequence[_Step], ending: str) -> str:
    """`mpirun -np K solver` without `-parallel`: K serial runs of the whole case write into
    one log. Their banners and start-up interleave line by line; then every line reaches
    the file when its copy prints it, so each `Time =` appears K times and the slowest
    copy prints the last ClockTime and the last `End`."""
    rng = case.mess_rng
    copies = _serial_copy_count(case)
    start_up = _start_up(case)
    first_pid = rng.randrange(1000, 90000)
    n_procs_line = rng.random() < 0.5
    starts = []
    for copy in range(copies):
        banner = _banner(
            case,
            case.application,
            started,
            pid=first_pid + copy,
            n_procs_line=n_procs_line,
            trap_fpe=case.has("harmless_lookalikes"),
        )
        box_end = len(case.release.box.splitlines())
        lines = (banner + start_up).splitlines()
        starts.append([lines[:box_end], *([line] for line in lines[box_end:])])
    text_lines = [line for _, line in _interleave(starts, rng, window=copies, stay=0.5)]
    events: list[tuple[float, int, int, list[str]]] = []
    for copy in range(copies):
        slower = _serial_copy_slowdown(copy)
        sequence = [(0.0, ["Starting time loop", ""])] if loop else []
        previous = 0.0
        for step in loop:
            sequence += [
                (previous * slower, [step.time_line, "", *step.solving]),
                (step.seconds * slower, [step.clock_line(slower), ""]),
            ]
            previous = step.seconds
        sequence.append((previous * slower, ending.splitlines()))
        events += [(at, order, copy, lines) for order, (at, lines) in enumerate(sequence)]
    for _, _, _, lines in sorted(events, key=lambda event: (event[0], event[2], event[1])):
        text_lines += lines
    return "\n".join(text_lines) + "\n"


# ---------------------------------------------------------------- noise before the banner (item 1)


def _noise_before_banner(case: _Case) -> str:
    """What the container, the drivers, Open MPI and OpenFOAM's wrapper print first."""
    ranks = _serial_copy_count(case) if case.has("serial_copies") else case.solver_n_procs
    rng = case.mess_rng
    noise = ""
    if case.has("noise_container_warnings"):
        driver = rng.choice(("libhfi1verbs-rdmav34.so", "libmlx4-rdmav34.so", "libbnxt_re.so"))
        for _ in range(min(ranks, 8)):
            noise += (
                "INFO:    underlay of /etc/localtime required more than 50 (84) bind mounts\n"
                "WARNING: nv files may not be bound with --nv: no NVIDIA driver on this host\n"
                f"libibverbs: Warning: couldn't load driver '{driver}': {driver}: "
                "cannot open shared object file: No such file or directory\n"
            )
    if case.has("noise_openib_box"):
        node = rng.choice((case.host, re.sub(r"\d(?=\D*$)", "7", case.host)))
        noise += (
            f"{'-' * 74}\n[[{rng.randrange(10000, 65000)},1],0]: the OpenFabrics (openib) "
            "transport found no usable\nnetwork device on this node and was not started:\n\n"
            f"Module: OpenFabrics (openib)\n  Host: {node}\n\n"
            "Open MPI falls back to another transport; communication may be slower.\n"
            f"{'-' * 74}\n"
        )
    if case.has("noise_superseded"):
        old = "pimpleFoam" if case.transient else "simpleFoam"
        notice = (
            f"\n{old} has been superseded and replaced by the incompressibleFluid\n"
            "solver module, which the foamRun application executes:\n\n"
            "    foamRun -solver incompressibleFluid\n\n"
        )
        noise += notice * min(ranks, 64)
    return noise


# ---------------------------------------------------------------- the files


def _arrange_logs(case: _Case) -> str | None:
    """Give the logs their final names and bytes (items 10 and 11); returns the deciding
    log's path in the case. Scheduler outputs keep their names."""
    logs = {name: body for name, body in case.files.items() if name.startswith("log.")}
    others = {name: body for name, body in case.files.items() if name not in logs}
    deciding = case.deciding_log
    if case.has("name_single_log"):
        mtimes = [mtime for _, mtime in logs.values()]
        text = "".join(str(body) for body, _ in logs.values())
        logs = {"log": (text, None if None in mtimes else max(m for m in mtimes if m))}
        deciding = "log" if deciding else None
    else:
        renamed = {_log_name(case, name): body for name, body in logs.items()}
        deciding = _log_name(case, deciding) if deciding else None
        logs = renamed
    if deciding is not None:
        body, mtime = logs[deciding]
        logs[deciding] = (_with_encoding_mess(case, str(body)), mtime)
    if case.has("gzip_logs"):
        logs = {f"{name}.gz": (_gzipped(body), mtime) for name, (body, mtime) in logs.items()}
        deciding = f"{deciding}.gz" if deciding else None
    case.files = {**logs, **others}
    return deciding


_SUFFIXES = ("run2", "coarse", "restart", "test_v3")


def _log_name(case: _Case, name: str) -> str:
    """`log.<app>` as this case's user names it."""
    application = name.removeprefix("log.")
    if case.has("name_app_dot_log"):
        return f"{application}.log"
    if case.has("name_logs_folder"):
        return f"logs/{application}.log"
    if case.has("name_suffixed") and name == case.deciding_log:
        return f"{name}_{_SUFFIXES[case.index % len(_SUFFIXES)]}"
    return name


def _with_encoding_mess(case: _Case, text: str) -> str | bytes:
    """CRLF, bare `\\r` progress, a few invalid UTF-8 bytes (item 11); the text unchanged else."""
    if case.has("carriage_return_progress"):
        text = _with_progress(text, case.mess_rng)
    if not (case.has("invalid_utf8") or case.has("crlf_line_endings")):
        return text
    data = text.encode("utf-8")
    if case.has("invalid_utf8"):
        data = _with_invalid_bytes(data, case.mess_rng)
    if case.has("crlf_line_endings"):
        data = data.replace(b"\n", b"\r\n")
    return data


def _with_progress(text: str, rng: random.Random) -> str:
    """A progress meter redrawn with bare carriage returns, after `Create time`."""
    what = rng.choice(("Reading fields", "Loading mesh", "Writing VTK"))
    meter = "\r".join(f"{what}: {percent:3d}%" for percent in (0, 25, 50, 75, 100)) + "\n"
    head, found, rest = text.partition("Create time\n")
    return head + found + meter + rest if found else meter + text


def _with_invalid_bytes(data: bytes, rng: random.Random) -> bytes:
    """A user's Latin-1 echo and a few stray bytes: after `Create time`, else at a line start."""
    stray = b"# calcul lanc\xe9 \x96 r\xe9glages par d\xe9faut\n\xff\xfe\xfa\n"
    anchor = data.find(b"Create time\n")
    if anchor >= 0:
        cut = anchor + len(b"Create time\n")
    else:
        cut = data.rfind(b"\n", 0, rng.randrange(len(data) + 1)) + 1
    return data[:cut] + stray + data[cut:]


def _gzipped(body: str | bytes) -> bytes:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return gzip.compress(data, mtime=0)  # mtime=0: the same bytes for the same seed


def _timestamp(moment: datetime) -> float:
    """A naive UTC datetime (the archive's convention, contract-notes 8) as a POSIX time."""
    return moment.replace(tzinfo=UTC).timestamp()


def _write_files(root: Path, case: _Case, dicts: dict[str, Dictionary], now: datetime) -> None:
    """The dictionaries (mtime = created_at) and the logs (their own mtimes, or now)."""
    run_dir = root.joinpath(*case.run_path.split("/"))
    for name, entries in dicts.items():
        path = run_dir / _LOCATION.get(name, "constant") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(name, entries), encoding="utf-8")
        os.utime(path, (_timestamp(case.created_at),) * 2)
    for name, (body, mtime) in case.files.items():
        path = run_dir.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
        stamp = _timestamp(mtime) if mtime is not None else now.timestamp()
        os.utime(path, (stamp, stamp))


# ---------------------------------------------------------------- the archive


def _n_procs(rng: random.Random, n_cells: int) -> int:
    """A parallel run's processes: a power of two near 20k to 100k cells each."""
    wanted = n_cells / rng.choice((20_000, 50_000, 100_000))
    return min(max(2, 2 ** round(math.log2(max(wanted, 1)))), 512)


@dataclass(frozen=True)
class GeneratedCase:
    """One written case: its truth, and the phenomena of `PHENOMENA` it got."""

    truth: dict[str, Any]
    phenomena: frozenset[str]


def generate_openfoam_cases(
    root: Path, n: int, seed: int = 0, phenomena: Sequence[Phenomenon] = PHENOMENA
) -> list[GeneratedCase]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`, each with the
    phenomena it drew from `phenomena` (`()`: clean cases); returns their truth and
    phenomena.

    `root` may already hold a demo archive (AVBP runs): the cases go in their own
    `openfoam/` folders; a case folder that already exists is refused.
    """
    root = Path(root)
    if n < 0:
        raise DemoArchiveError(f"--openfoam must be 0 or more, not {n}")
    now = datetime.now()
    generated = []
    for index in range(n):
        case = _plan_case(root, index, seed)
        mess_rng = random.Random(f"{seed}:openfoam-phenomena:{index}")
        case.mess = _choose_phenomena(case, mess_rng, phenomena)
        case.mess_rng = mess_rng
        generated.append(GeneratedCase(_write_case(root, case, now), case.mess))
    return generated


def write_openfoam_cases(root: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`; returns their truth."""
    return [case.truth for case in generate_openfoam_cases(root, n, seed)]


def _plan_case(root: Path, index: int, seed: int) -> _Case:
    """Who ran case `index`, where, on what mesh, and how it ends (before any phenomenon)."""
    rng = random.Random(f"{seed}:openfoam:{index}")
    user = USERS[index % len(USERS)]
    cluster = next(c for c in CLUSTERS if c.name == user.home_cluster)
    name = f"{rng.choice(CASE_NAMES)}_{index:03d}"
    run_path = f"{cluster.name}/{user.login}/openfoam/{name}"
    if root.joinpath(*run_path.split("/")).exists():
        raise DemoArchiveError(f"{root / run_path} exists; give a new or demo-only archive")
    outcome = OUTCOMES[index % len(OUTCOMES)]
    # Round m of OUTCOMES shifts the releases by m and flips serial/parallel every second
    # round, so that 4 rounds hold every outcome with both release lines, serial and parallel.
    rounds = index // len(OUTCOMES)
    parallel = (rounds // 2 + index % len(OUTCOMES)) % 2 == 1
    days_before_end = rng.randrange(1, 2) if outcome == "running" else rng.randrange(*SPAN_DAYS)
    created = LAST_DAY - timedelta(
        days=days_before_end, hours=rng.randrange(0, 12), minutes=rng.randrange(60)
    )
    n_cells = rng.choice((12_225, 250_000, 1_200_000, 4_800_000))
    return _Case(
        index=index,
        rng=rng,
        release=RELEASES[(rounds + index % len(OUTCOMES)) % len(RELEASES)],
        cluster=cluster.name,
        host=cluster.host_format.format(n=rng.randrange(1, 999), a=1, b=2, c=3),
        user=user.login,
        run_path=run_path,
        outcome=outcome,
        n_procs=_n_procs(rng, n_cells) if parallel else 1,
        transient=rng.random() < 0.5,
        n_cells=n_cells,
        n_points=int(n_cells * 1.07) + 1000,
        created_at=created,
    )
