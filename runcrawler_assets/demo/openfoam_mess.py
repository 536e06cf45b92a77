"""What each phenomenon of real OpenFOAM logs (openfoam_phenomena.py, issue #14) prints.

Why apart: the clean pipeline (openfoam_logs.py) calls these where a case has the
phenomenon, and each says in its docstring what it does to the log; the truth follows
the phenomenon's `rule`. Their details are drawn from the case's `mess_rng`, a stream of
their own, so that the clean draws stay the same with or without them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from runcrawler_assets.demo import launchers
from runcrawler_assets.demo.files import encoded, gzipped
from runcrawler_assets.demo.launchers import OPEN_MPI_RULE
from runcrawler_assets.demo.openfoam_cases import OpenFoamCase
from runcrawler_assets.demo.openfoam_output import Message, Step, banner, fatal_lines, prefixed
from runcrawler_assets.records import Status

_GZIP_LEVEL = 9


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


# ---------------------------------------------------------------- noise before the banner (item 1)


def noise_before_banner(case: OpenFoamCase) -> str:
    """What the container, the drivers, Open MPI and OpenFOAM's wrapper print first."""
    ranks = serial_copy_count(case) if case.has("serial_copies") else case.solver_n_procs
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
            f"{OPEN_MPI_RULE}\n[[{rng.randrange(10000, 65000)},1],0]: the OpenFabrics (openib) "
            "transport found no usable\nnetwork device on this node and was not started:\n\n"
            f"Module: OpenFabrics (openib)\n  Host: {node}\n\n"
            "Open MPI falls back to another transport; communication may be slower.\n"
            f"{OPEN_MPI_RULE}\n"
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


# ---------------------------------------------------------------- launcher failures (item 2)


_PARALLEL_ON_ONE = (
    "bool IPstream::init(int& argc, char**& argv) : attempt to run parallel on 1 processor"
)


def launcher_failure(case: OpenFoamCase, truth: dict[str, Any], started: datetime) -> None:
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


def _missing_executable_box(case: OpenFoamCase) -> str:
    return "\n".join(
        [
            OPEN_MPI_RULE,
            "mpirun was unable to find the specified executable file, and therefore",
            "did not launch the job. Process rank 0 reported it first; other ranks",
            "may have failed the same way.",
            "",
            f"Node:       {case.host}",
            f"Executable: {case.application}",
            OPEN_MPI_RULE,
            f"{case.n_procs} total processes failed to start",
            "",
        ]
    )


def _singleton_aborts(case: OpenFoamCase) -> str:
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


def serial_copy_count(case: OpenFoamCase) -> int:
    """How many serial copies `mpirun -np K` started: K of the planned processes, at most 8."""
    return min(case.n_procs, 8)


def serial_copy_slowdown(copy: int) -> float:
    """Copies compete for the same cores: each is a little slower than the one before."""
    return 1.0 + 0.003 * copy


def serial_copies(
    case: OpenFoamCase, started: datetime, loop: Sequence[Step], ending: str, start_up: str
) -> str:
    """`mpirun -np K solver` without `-parallel`: K serial runs of the whole case write into
    one log. Their banners and `start_up` interleave line by line; then every line reaches
    the file when its copy prints it, so each `Time =` appears K times and the slowest
    copy prints the last ClockTime and the last `End`."""
    rng = case.mess_rng
    copies = serial_copy_count(case)
    first_pid = rng.randrange(1000, 90000)
    n_procs_line = rng.random() < 0.5
    starts = []
    for copy in range(copies):
        header = banner(
            case,
            case.application,
            started,
            pid=first_pid + copy,
            n_procs_line=n_procs_line,
            trap_fpe=case.has("harmless_lookalikes"),
        )
        box_end = len(case.release.box.splitlines())
        lines = (header + start_up).splitlines()
        starts.append([lines[:box_end], *([line] for line in lines[box_end:])])
    text_lines = [line for _, line in _interleave(starts, rng, window=copies, stay=0.5)]
    events: list[tuple[float, int, int, list[str]]] = []
    for copy in range(copies):
        slower = serial_copy_slowdown(copy)
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


# ---------------------------------------------------------------- every rank fails (items 4 to 6)


def every_rank_fails(
    case: OpenFoamCase,
    kind: str,
    message_of: Callable[[int | None], Message],
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
        block = fatal_lines(case, kind, message_of(rank), origin, file=file)[:-2]  # `FOAM exiting`
        lines = [*prefixed(rank, ["", "", *block]), "FOAM parallel run exiting", f"[{rank}] "]
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
        lines += mpi_abort_box(case) + help_summary(case)
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


def mpi_abort_box(case: OpenFoamCase) -> list[str]:
    """Open MPI's box after a rank called MPI_ABORT: help text, never the run's error."""
    rank = case.mess_rng.randrange(case.n_procs)
    return [
        OPEN_MPI_RULE,
        f"MPI_ABORT was invoked on rank {rank} in communicator MPI_COMM_WORLD",
        "with errorcode 1.",
        "",
        "NOTE: Open MPI now stops every process of the job; what the other",
        "ranks were printing may be cut short.",
        OPEN_MPI_RULE,
    ]


def help_summary(case: OpenFoamCase) -> list[str]:
    """mpirun's note that other ranks said the same, in the solver's output (item 5)."""
    where = f"[{case.host}:{case.mess_rng.randrange(1000, 99999):05d}]"
    return launchers.help_aggregate(where, case.n_procs)


def step_cancelled(case: OpenFoamCase, crashed: datetime) -> None:
    """Slurm tears the step down once a task died (item 6): no reason given, not a verdict."""
    case.mess_rng.randrange(1_000_000, 9_999_999)  # the id once drawn: later draws stay
    jobid = case.job_id
    at = crashed + timedelta(seconds=case.mess_rng.randrange(1, 30))
    case.files[f"slurm-{jobid}.out"] = (
        f"Running {case.application} on {case.n_procs} processors\n"
        + launchers.step_cancelled_line(jobid, case.host, at)
        + "\n",
        at,
    )


# ---------------------------------------------------------------- crashes (item 8)


def stack_trace_layout(case: OpenFoamCase, frame: str) -> list[str]:
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
    streams = [[[line] for line in prefixed(rank, stack)] for rank in ranks]
    return [line for _, line in _interleave(streams, rng, window=len(ranks), stay=0.2)]


def unfinished_step(case: OpenFoamCase, step: int, delta_t: float) -> str:
    """The step a crash interrupts (`crash_mid_step`): started, some fields solved, no end."""
    if not case.has("crash_mid_step"):
        return ""
    residual = case.mess_rng.uniform(0.5, 1.0)
    return (
        f"Time = {step * delta_t:g}{case.release.time_unit}\n\n"
        f"smoothSolver:  Solving for Ux, Initial residual = {residual:.5g}, "
        f"Final residual = {residual / 14:.5g}, No Iterations 4\n"
    )


# ---------------------------------------------------------------- harmless look-alikes (item 9)


def harmless_step_lines(rng: random.Random) -> list[str]:
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


def harmless_warnings(case: OpenFoamCase) -> str:
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


# ---------------------------------------------------------------- names and bytes (items 10 and 11)


def final_files(case: OpenFoamCase) -> tuple[dict[str, tuple[bytes, datetime | None]], str | None]:
    """The case's logs and scheduler outputs as written: the logs with their final names
    and bytes (items 10 and 11), scheduler outputs as they are; and the deciding log's
    path in the case."""
    logs = {name: body for name, body in case.files.items() if name.startswith("log.")}
    others = {name: body for name, body in case.files.items() if name not in logs}
    deciding = case.deciding_log
    if case.has("name_single_log"):
        mtimes = [mtime for _, mtime in logs.values()]
        text = "".join(body for body, _ in logs.values())
        logs = {"log": (text, None if None in mtimes else max(m for m in mtimes if m))}
        deciding = "log" if deciding else None
    else:
        renamed = {_log_name(case, name): body for name, body in logs.items()}
        deciding = _log_name(case, deciding) if deciding else None
        logs = renamed
    written = {
        name: (_with_encoding_mess(case, text) if name == deciding else encoded(text), mtime)
        for name, (text, mtime) in logs.items()
    }
    if case.has("gzip_logs"):
        written = {
            f"{name}.gz": (gzipped(data, level=_GZIP_LEVEL), mtime)
            for name, (data, mtime) in written.items()
        }
        deciding = f"{deciding}.gz" if deciding else None
    written.update((name, (encoded(text), mtime)) for name, (text, mtime) in others.items())
    return written, deciding


# A French user's script echoing in Latin-1, then stray bytes: invalid UTF-8 (surrogates).
_LATIN1_ECHO = b"# calcul lanc\xe9 \x96 r\xe9glages par d\xe9faut\n\xff\xfe\xfa\n".decode(
    "utf-8", "surrogateescape"
)
_SUFFIXES = ("run2", "coarse", "restart", "test_v3")


def _log_name(case: OpenFoamCase, name: str) -> str:
    """`log.<app>` as this case's user names it."""
    application = name.removeprefix("log.")
    if case.has("name_app_dot_log"):
        return f"{application}.log"
    if case.has("name_logs_folder"):
        return f"logs/{application}.log"
    if case.has("name_suffixed") and name == case.deciding_log:
        return f"{name}_{_SUFFIXES[case.index % len(_SUFFIXES)]}"
    return name


def _with_encoding_mess(case: OpenFoamCase, text: str) -> bytes:
    """Bare `\\r` progress, a few invalid UTF-8 bytes, CRLF (item 11), where the case has them."""
    if case.has("carriage_return_progress"):
        text = _with_progress(text, case.mess_rng)
    if case.has("invalid_utf8"):
        text = _with_invalid_bytes(text, case.mess_rng)
    return encoded(text, crlf=case.has("crlf_line_endings"))


def _with_progress(text: str, rng: random.Random) -> str:
    """A progress meter redrawn with bare carriage returns, after `Create time`."""
    what = rng.choice(("Reading fields", "Loading mesh", "Writing VTK"))
    meter = "\r".join(f"{what}: {percent:3d}%" for percent in (0, 25, 50, 75, 100)) + "\n"
    head, found, rest = text.partition("Create time\n")
    return head + found + meter + rest if found else meter + text


def _with_invalid_bytes(text: str, rng: random.Random) -> str:
    """A user's Latin-1 echo and a few stray bytes (as surrogates, written back as those
    bytes): after `Create time`, else at a line start."""
    anchor = text.find("Create time\n")
    if anchor >= 0:
        cut = anchor + len("Create time\n")
    else:
        cut = text.rfind("\n", 0, rng.randrange(len(text) + 1)) + 1
    return text[:cut] + _LATIN1_ECHO + text[cut:]
