"""The logs of an OpenFOAM case's pipeline, and what they make the truth say.

Why apart: the logs are what the parser reads; their content decides the truth's
status, stage, times and error, so each log is written and its truth filled in one
place: `log.blockMesh`, sometimes `log.snappyHexMesh`, `log.checkMesh`,
`log.decomposePar` when parallel, then the solver's log (and the scheduler's output of
a killed run), by the case's outcome. Where the case has a phenomenon of real logs, the
renderers of openfoam_mess.py take over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runcrawler_assets.demo import launchers, openfoam_mess
from runcrawler_assets.demo.openfoam_cases import FATAL_OUTCOMES, OpenFoamCase
from runcrawler_assets.demo.openfoam_output import (
    Message,
    Step,
    banner,
    fatal,
    fatal_lines,
    loop_text,
    prefixed,
    printed_times,
)
from runcrawler_assets.records import Status
from runcrawler_assets.solvers.openfoam.stages import (
    DECOMPOSITION,
    MESHING,
    SOLVER_LOOP,
    SOLVER_START,
    SUCCESS,
)


def pipeline_logs(
    case: OpenFoamCase, truth: dict[str, Any], requested: int, delta_t: float
) -> None:
    """Write the pipeline's logs into `case.files`, by outcome, and fill the truth they imply."""
    rng = case.rng
    with_snappy = rng.random() < 0.5 and case.outcome != "meshing"
    at = _mesh_logs(case, case.created_at + timedelta(minutes=rng.randrange(2, 90)), with_snappy)
    stage = MESHING
    if case.outcome == "meshing":
        _meshing_failure(case, truth, at)
        return
    if case.n_procs > 1:
        case.files["log.decomposePar"] = (
            banner(case, "decomposePar", at) + "Time = 0\n\nEnd\n\n",
            at + timedelta(seconds=20),
        )
        at += timedelta(minutes=1)
        stage = DECOMPOSITION
    if case.outcome == "not_started":
        truth.update(status=Status.NOT_STARTED.value, stage_code=stage.code, stage=stage.label)
    else:
        _solver_log(case, truth, at, requested, delta_t)


def _mesh_logs(case: OpenFoamCase, started: datetime, with_snappy: bool) -> datetime:
    """blockMesh, then snappyHexMesh and checkMesh unless meshing fails; returns when they end."""
    block_cells = case.n_cells // 8 if with_snappy else case.n_cells
    block_points = case.n_points // 8 if with_snappy else case.n_points
    at = started
    case.files["log.blockMesh"] = (
        banner(case, "blockMesh", at)
        + f"Mesh Information\n----------------\n  nPoints: {block_points}\n"
        + f"  nCells: {block_cells}\n\nEnd\n\n",
        at + timedelta(seconds=5),
    )
    at += timedelta(minutes=1)
    if case.outcome == "meshing":
        return at
    if with_snappy:
        case.files["log.snappyHexMesh"] = (
            banner(case, "snappyHexMesh -overwrite", at)
            + f"Snapped mesh : cells:{case.n_cells}  faces:{case.n_cells * 3}  "
            + f"points:{case.n_points}\nFinished meshing in = 312.4 s.\nEnd\n\n",
            at + timedelta(minutes=6),
        )
        at += timedelta(minutes=7)
    case.files["log.checkMesh"] = (
        banner(case, "checkMesh", at)
        + f"Mesh stats\n    points:           {case.n_points}\n"
        + f"    cells:            {case.n_cells}\n\n"
        + "    Mesh has 3 solution (non-empty) directions (1 1 1)\n\nMesh OK.\n\nEnd\n\n",
        at + timedelta(seconds=30),
    )
    return at + timedelta(minutes=1)


def _meshing_failure(case: OpenFoamCase, truth: dict[str, Any], at: datetime) -> None:
    """snappyHexMesh stops on a locationInMesh outside the geometry: the solver never runs."""
    point = f"({case.rng.uniform(-1, 1):.3f} {case.rng.uniform(5, 20):.2f} 0.2)"
    message = Message((f"Point {point} is not inside the mesh", "or on a face or edge."))
    ended = at + timedelta(minutes=case.rng.randrange(2, 30))
    case.deciding_log = "log.snappyHexMesh"
    case.files[case.deciding_log] = (
        banner(case, "snappyHexMesh -overwrite", at)
        + "Reading refinement surfaces.\n"
        + fatal(case, "ERROR", message, "Foam::meshRefinement::findRegion"),
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
    case: OpenFoamCase, truth: dict[str, Any], started: datetime, requested: int, delta_t: float
) -> None:
    """The solver's log (and the scheduler's output of a killed run), and the truth they imply."""
    case.solver_started = started
    if case.has("launcher_missing_executable") or case.has("launcher_singleton_processes"):
        openfoam_mess.launcher_failure(case, truth, started)
        return
    rng, outcome = case.rng, case.outcome
    steps = requested if outcome == "none" else rng.randrange(1, requested)
    if outcome in FATAL_OUTCOMES:
        steps = 0
    seconds_per_step = case.n_cells / case.n_procs * rng.uniform(2e-6, 6e-6)
    if case.has("serial_copies"):
        seconds_per_step *= case.n_procs  # each copy computes the whole mesh alone
    case.planned_s = requested * seconds_per_step
    loop = _time_loop(case, steps, delta_t, seconds_per_step)
    copies = openfoam_mess.serial_copy_count(case) if case.has("serial_copies") else 1
    slowest = openfoam_mess.serial_copy_slowdown(copies - 1)
    execution, clock = printed_times(loop[-1].seconds * slowest) if loop else (0.0, 0)
    log_mtime = started + timedelta(seconds=clock + rng.randrange(5, 120))
    ending = _ending(case, log_mtime)
    if case.has("serial_copies"):
        text = openfoam_mess.serial_copies(case, started, loop, ending.text, _start_up(case))
    else:
        command = case.application + (" -parallel" if case.runs_parallel else "")
        text = (
            banner(case, command, started, trap_fpe=case.has("harmless_lookalikes"))
            + _start_up(case)
            + loop_text(loop)
            + openfoam_mess.unfinished_step(case, len(loop) + 1, delta_t)
            + ending.text
        )
    text = openfoam_mess.noise_before_banner(case) + text
    case.deciding_log = f"log.{case.application}"
    case.files[case.deciding_log] = (text, None if ending.status == Status.RUNNING else log_mtime)
    if case.has("step_cancelled_after_crash"):
        openfoam_mess.step_cancelled(case, log_mtime)
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


def _start_up(case: OpenFoamCase) -> str:
    """What the solver prints between its banner and its time loop."""
    text = "Create mesh for time = 0\n\n"
    if case.has("harmless_lookalikes"):
        text += openfoam_mess.harmless_warnings(case)
    return text


def _time_loop(
    case: OpenFoamCase, steps: int, delta_t: float, seconds_per_step: float
) -> list[Step]:
    """The time steps the solver completed, with their residuals and end times."""
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
            solving += openfoam_mess.harmless_step_lines(case.mess_rng)
        loop.append(
            Step(
                f"Time = {step * delta_t:g}{case.release.time_unit}",
                tuple(solving),
                step * seconds_per_step,
            )
        )
    return loop


def _ending(case: OpenFoamCase, log_mtime: datetime) -> _Ending:
    """The last words of the solver's run, by outcome (a time limit writes a scheduler file)."""
    outcome = case.outcome
    if outcome == "none":
        return _Ending(
            "End\n\n" + ("Finalising parallel run\n" if case.runs_parallel else ""),
            Status.SUCCESS,
            "none",
        )
    if outcome in FATAL_OUTCOMES:
        text, message, template = _fatal_failure(case)
        return _Ending(text, Status.FAILED, "input_file", message, template)
    if outcome == "floating_point":
        return _crash(case)
    if outcome == "time_limit":
        case.rng.randrange(1_000_000, 9_999_999)  # the id once drawn: later draws stay
        jobid = case.job_id
        message = (
            f"slurmstepd: error: *** JOB {jobid} ON {case.host} CANCELLED AT "
            f"{launchers.slurm_time(log_mtime)} DUE TO TIME LIMIT ***"
        )
        case.files[f"slurm-{jobid}.out"] = (message + "\n", log_mtime)
        return _Ending("", Status.KILLED, "time_limit", message, "time_limit")
    if outcome == "truncated":
        return _Ending("", Status.TRUNCATED, "truncated")
    return _Ending("", Status.RUNNING)


def _fatal_failure(case: OpenFoamCase) -> tuple[str, str, str]:
    """A FATAL (IO) ERROR at start-up: (log text, the message the parser must report, its
    template). One template is one message up to what varies between runs (paths, numbers)."""
    if case.outcome == "fatal_error":
        field_name = case.rng.choice(("U", "p", "k", "omega", "nut"))

        def message_of(rank: int | None) -> Message:
            folder = () if rank is None else (f"processor{rank}",)
            return Message(("cannot find file", f'"{case.path(*folder, "0", field_name)}"'))

        kind, origin = "ERROR", "Foam::fileOperations::uncollatedFileOperation::readStream"
        file, template = None, "openfoam:missing_field"
    else:
        keyword = case.rng.choice(("deltaT", "endTime", "writeControl"))
        control_dict = case.path("system", "controlDict")

        def message_of(rank: int | None) -> Message:
            return Message(
                (f"keyword {keyword} is undefined", "in dictionary", f'"{control_dict}"')
            )

        kind, origin = "IO ERROR", "Foam::dictionary::lookupEntry"
        file, template = control_dict, f"openfoam:missing_keyword:{keyword}"
    if case.has("ranks_interleaved"):
        lines, first_rank = openfoam_mess.every_rank_fails(case, kind, message_of, origin, file)
        message = message_of(first_rank)
    else:
        message = message_of(None)
        rank = 0 if case.runs_parallel else None
        lines = prefixed(rank, fatal_lines(case, kind, message, origin, file=file))
    if case.has("mpi_abort_first"):
        lines = openfoam_mess.mpi_abort_box(case) + lines + openfoam_mess.help_summary(case)
    return "\n".join(lines) + "\n", f"FOAM FATAL {kind}: {message.text}", template


def _crash(case: OpenFoamCase) -> _Ending:
    """A floating point exception, printed in one of the layouts of item 8 (or a segfault)."""
    frame = case.rng.choice(_FPE_FRAMES)
    parallel = case.runs_parallel
    if case.has("crash_sigsegv"):
        frame = case.mess_rng.choice(_SEGV_FRAMES)
        stack = _classic_stack("sigSegv", frame, case.application)
        lines = prefixed(0 if parallel else None, stack)
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
        lines = openfoam_mess.stack_trace_layout(case, frame)
    else:
        lines = prefixed(0 if parallel else None, _classic_stack("sigFpe", frame, "solver"))
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


def _signal_tail(case: OpenFoamCase, signal: int, name: str, rank: int | None = None) -> list[str]:
    """What the shell (serial) or mpirun (parallel) prints when `rank` (any) dies of `signal`."""
    if not case.runs_parallel:
        return [f"{name} (core dumped)"]
    pid = case.mess_rng.randrange(1000, 99999)
    rank = case.mess_rng.randrange(case.n_procs) if rank is None else rank
    return [
        launchers.OPEN_MPI_RULE,
        launchers.mpirun_noticed(rank, pid, case.host, f"{signal} ({name})"),
        launchers.OPEN_MPI_RULE,
    ]
