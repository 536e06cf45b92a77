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
`log.decomposePar` when parallel, then the solver's log. Release lines
alternate (openfoam.com v2312/v2306 banners with `Version:`; openfoam.org 11/10
with `Build :` and unit-suffixed `Time = ...s`); the outcomes cycle through
`OUTCOMES` so that N >= len(OUTCOMES) holds every kind. Everything is drawn
from `random.Random` seeded per case, except the solver log of a `running`
case, whose modification time is the real time of writing. Plain Python.
"""

from __future__ import annotations

import math
import os
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runcrawler_assets.demo import (
    CLUSTERS,
    KNOBS,
    TRUTH_FIELDS,
    USERS,
    DemoArchiveError,
)
from runcrawler_assets.records import Status, run_id_for
from runcrawler_assets.solvers.foamdict import Dictionary, flatten
from runcrawler_assets.solvers.openfoam_stages import (
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
    files: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)

    @property
    def application(self) -> str:
        if self.release.box is _ORG_BOX:
            return "foamRun"
        return "pimpleFoam" if self.transient else "simpleFoam"

    @property
    def case_dir(self) -> str:
        login = re.sub(r"[^\w.-]", "", self.user)
        return f"/scratch/{login}/{self.run_path.rsplit('/', 1)[-1]}"


def _banner(case: _Case, command: str, started: datetime) -> str:
    release = case.release
    host = f'"{case.host}"' if release.quoted_host else case.host
    lines = [
        release.box.format(version=release.version).rstrip("\n"),
        f"Build  : {release.build}",
        f"Exec   : {command}",
        f"Date   : {started:%b %d %Y}",
        f"Time   : {started:%H:%M:%S}",
        f"Host   : {host}",
        f"PID    : {case.rng.randrange(1000, 99999)}",
        "I/O    : uncollated",
        f"Case   : {case.case_dir}",
        f"nProcs : {case.n_procs if '-parallel' in command else 1}",
        "sigFpe : Enabling floating point exception trapping (FOAM_SIGFPE).",
        "",
        "// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //",
        "Create time",
        "",
    ]
    return "\n".join(lines) + "\n"


def _fatal(case: _Case, kind: str, message: str, origin: str) -> str:
    """A FOAM error block; openfoam.com tags the header with its version, openfoam.org not."""
    tag = "" if case.release.box is _ORG_BOX else f" (openfoam-{case.release.version[1:]})"
    source = origin.split("::")[-1]
    return (
        f"--> FOAM FATAL {kind}:{tag}\n{message}\n\n    From {origin}\n"
        f"    in file {source}.C at line 217.\n\nFOAM exiting\n\n"
    )


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
    if case.release.box is _ORG_BOX:
        dicts["momentumTransport"] = {"simulationType": "RAS", "RAS": {"model": model}}
    else:
        dicts["turbulenceProperties"] = {"simulationType": "RAS", "RAS": {"RASModel": model}}
    if case.n_procs > 1:
        dicts["decomposeParDict"] = {"numberOfSubdomains": str(case.n_procs), "method": "scotch"}
    return dicts


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


# ---------------------------------------------------------------- the logs


def _loop(
    case: _Case, steps: int, delta_t: float, seconds_per_step: float
) -> tuple[str, float, int]:
    """The time loop's text, the last ExecutionTime and ClockTime printed."""
    lines = ["Starting time loop", ""]
    execution, clock = 0.0, 0
    for step in range(1, steps + 1):
        execution = round(step * seconds_per_step, 2)
        clock = round(execution * 1.04)
        residual = case.rng.uniform(1e-4, 1e-2)
        lines += [
            f"Time = {step * delta_t:g}{case.release.time_unit}",
            "",
            f"smoothSolver:  Solving for Ux, Initial residual = {residual:.5g}, "
            f"Final residual = {residual / 20:.5g}, No Iterations 2",
            f"GAMG:  Solving for p, Initial residual = {residual * 3:.5g}, "
            f"Final residual = {residual / 50:.5g}, No Iterations 5",
            f"ExecutionTime = {execution:.2f} s  ClockTime = {clock} s",
            "",
        ]
    return "\n".join(lines) + "\n", execution, clock


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
    )
    with_snappy = rng.random() < 0.5 and case.outcome != "meshing"
    at = _mesh_logs(case, case.created_at + timedelta(minutes=rng.randrange(2, 90)), with_snappy)
    stage = MESHING
    if case.outcome == "meshing":
        _meshing_failure(case, truth, at)
        _write_files(root, case, dicts, now)
        return truth
    if case.n_procs > 1:
        case.files["log.decomposePar"] = (
            _banner(case, "decomposePar", at) + "Time = 0\n\nEnd\n\n",
            at + timedelta(seconds=20),
        )
        at += timedelta(minutes=1)
        stage = DECOMPOSITION
    if case.outcome == "not_started":
        truth.update(status=Status.NOT_STARTED.value, stage_code=stage.code, stage=stage.label)
        _write_files(root, case, dicts, now)
        return truth
    _solver_log(case, truth, at, requested, delta_t, now)
    _write_files(root, case, dicts, now)
    return truth


def _model(dicts: dict[str, Dictionary]) -> str:
    ras = (dicts.get("momentumTransport") or dicts["turbulenceProperties"])["RAS"]
    return str(ras.get("model") or ras["RASModel"]).lower()


def _meshing_failure(case: _Case, truth: dict[str, Any], at: datetime) -> None:
    """snappyHexMesh stops on a locationInMesh outside the geometry: the solver never runs."""
    point = f"({case.rng.uniform(-1, 1):.3f} {case.rng.uniform(5, 20):.2f} 0.2)"
    message = f"Point {point} is not inside the mesh or on a face or edge."
    ended = at + timedelta(minutes=case.rng.randrange(2, 30))
    case.files["log.snappyHexMesh"] = (
        _banner(case, "snappyHexMesh -overwrite", at)
        + "Reading refinement surfaces.\n"
        + _fatal(case, "ERROR", message, "Foam::meshRefinement::findRegion"),
        ended,
    )
    wall = (ended - at).total_seconds()
    truth.update(
        solver_version=case.release.version,
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
        error_message=f"FOAM FATAL ERROR: {message}",
        error_template="openfoam:location_in_mesh",
        log_path=f"{case.run_path}/log.snappyHexMesh",
    )


_FAILURE_CATEGORIES = {
    "fatal_error": "input_file",
    "fatal_io_error": "input_file",
    "floating_point": "numerical_instability",
}
_FPE_FRAMES = ("Foam::divide", "Foam::GAMGSolver::scale", "Foam::PBiCGStab::solve")


def _solver_log(
    case: _Case,
    truth: dict[str, Any],
    started: datetime,
    requested: int,
    delta_t: float,
    now: datetime,
) -> None:
    """The solver's log (and the scheduler's output of a killed run), and the truth they imply."""
    rng, outcome = case.rng, case.outcome
    parallel = case.n_procs > 1
    command = case.application + (" -parallel" if parallel else "")
    steps = requested if outcome == "none" else rng.randrange(1, requested)
    if outcome in ("fatal_error", "fatal_io_error"):
        steps = 0
    seconds_per_step = case.n_cells / case.n_procs * rng.uniform(2e-6, 6e-6)
    loop, execution, clock = _loop(case, steps, delta_t, seconds_per_step) if steps else ("", 0, 0)
    text = _banner(case, command, started) + "Create mesh for time = 0\n\n" + loop
    ended = started + timedelta(seconds=clock + rng.randrange(5, 120))
    status, category, message, template = Status.SUCCESS, "none", None, None
    if outcome == "none":
        text += "End\n\n" + ("Finalising parallel run\n" if parallel else "")
        ended = started + timedelta(seconds=clock)
    elif outcome in _FAILURE_CATEGORIES:
        category = _FAILURE_CATEGORIES[outcome]
        status = Status.FAILED
        text, message, template = _failure_text(case, text, outcome)
    elif outcome == "time_limit":
        status, category, template = Status.KILLED, "time_limit", "time_limit"
        jobid = rng.randrange(1_000_000, 9_999_999)
        ended = started + timedelta(hours=rng.choice((2, 4, 12)))
        message = (
            f"slurmstepd: error: *** JOB {jobid} ON {case.host} CANCELLED AT "
            f"{ended:%Y-%m-%dT%H:%M:%S} DUE TO TIME LIMIT ***"
        )
        case.files[f"slurm-{jobid}.out"] = (message + "\n", ended)
    elif outcome == "truncated":
        status, category = Status.TRUNCATED, "truncated"
    else:
        status, category = Status.RUNNING, None
    log_mtime = None if status == Status.RUNNING else ended
    case.files[f"log.{case.application}"] = (text, log_mtime)
    wall = float(clock) if steps else None
    if wall is None and status != Status.RUNNING:
        wall = (ended - started).total_seconds()
    cpu = execution * case.n_procs if steps else None
    stage = SUCCESS if status == Status.SUCCESS else SOLVER_LOOP if steps else SOLVER_START
    truth.update(
        solver_version=case.release.version,
        started_at=started.isoformat(),
        ended_at=None if status == Status.RUNNING else ended.isoformat(),
        host=case.host,
        n_procs=case.n_procs,
        iterations_done=steps,
        cpu_time_s=cpu,
        wall_time_s=wall,
        cpu_hours=cpu / 3600 if cpu is not None else _wall_hours(wall, case.n_procs),
        efficiency=(
            wall * case.n_procs / (steps * case.n_points) if steps and wall is not None else None
        ),
        status=status.value,
        stage_code=stage.code,
        stage=stage.label,
        error_category=category,
        error_message=message,
        error_template=template,
        log_path=f"{case.run_path}/log.{case.application}",
    )


def _wall_hours(wall: float | None, n_procs: int) -> float | None:
    return wall * n_procs / 3600 if wall is not None else None


def _failure_text(case: _Case, text: str, outcome: str) -> tuple[str, str, str]:
    """The log with its failure appended, the error message the parser must report, its template.

    One template is one message up to what varies between runs (paths, numbers).
    """
    prefix = "[0] " if case.n_procs > 1 else ""
    if outcome == "fatal_error":
        field_name = case.rng.choice(("U", "p", "k", "omega", "nut"))
        message = f'cannot find file "{case.case_dir}/0/{field_name}"'
        block = _fatal(
            case, "ERROR", message, "Foam::fileOperations::uncollatedFileOperation::readStream"
        )
        kind, template = "FOAM FATAL ERROR", "openfoam:missing_field"
    elif outcome == "fatal_io_error":
        keyword = case.rng.choice(("deltaT", "endTime", "writeControl"))
        message = (
            f'keyword {keyword} is undefined in dictionary "{case.case_dir}/system/controlDict"'
        )
        block = _fatal(case, "IO ERROR", message, "Foam::dictionary::lookupEntry")
        kind, template = "FOAM FATAL IO ERROR", f"openfoam:missing_keyword:{keyword}"
    else:
        frame = case.rng.choice(_FPE_FRAMES)
        block = (
            "#0  Foam::error::printStack(Foam::Ostream&) at ??:?\n"
            "#1  Foam::sigFpe::sigHandler(int) at ??:?\n"
            "#2  ? in /lib64/libc.so.6\n"
            f"#3  {frame}(Foam::Field<double>&) const at ??:?\n"
            "#4  ? in /opt/openfoam/platforms/linux64GccDPInt32Opt/bin/solver\n"
        )
        tail = (
            "mpirun noticed that process rank 0 with PID 0 on node x exited on signal 8 "
            "(Floating point exception).\n"
            if case.n_procs > 1
            else "Floating point exception (core dumped)\n"
        )
        lines = "".join(prefix + line + "\n" for line in block.splitlines())
        message = f"Floating point exception (sigFpe) in {frame}"
        return text + lines + tail, message, f"openfoam:fpe:{frame}"
    lines = "".join(prefix + line + "\n" for line in block.splitlines())
    return text + lines, f"{kind}: {message}", template


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
    for name, (text, mtime) in case.files.items():
        path = run_dir / name
        path.write_text(text, encoding="utf-8")
        stamp = _timestamp(mtime) if mtime is not None else now.timestamp()
        os.utime(path, (stamp, stamp))


def _n_procs(rng: random.Random, n_cells: int) -> int:
    """A parallel run's processes: a power of two near 20k to 100k cells each."""
    wanted = n_cells / rng.choice((20_000, 50_000, 100_000))
    return min(max(2, 2 ** round(math.log2(max(wanted, 1)))), 512)


def write_openfoam_cases(root: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`; returns their truth.

    `root` may already hold a demo archive (AVBP runs): the cases go in their own
    `openfoam/` folders; a case folder that already exists is refused.
    """
    root = Path(root)
    if n < 0:
        raise DemoArchiveError(f"--openfoam must be 0 or more, not {n}")
    now = datetime.now()
    truths = []
    for index in range(n):
        rng = random.Random(f"{seed}:openfoam:{index}")
        user = USERS[index % len(USERS)]
        cluster = next(c for c in CLUSTERS if c.name == user.home_cluster)
        name = f"{rng.choice(CASE_NAMES)}_{index:03d}"
        run_path = f"{cluster.name}/{user.login}/openfoam/{name}"
        if root.joinpath(*run_path.split("/")).exists():
            raise DemoArchiveError(f"{root / run_path} exists; give a new or demo-only archive")
        outcome = OUTCOMES[index % len(OUTCOMES)]
        days_before_end = rng.randrange(1, 2) if outcome == "running" else rng.randrange(*SPAN_DAYS)
        created = LAST_DAY - timedelta(
            days=days_before_end, hours=rng.randrange(0, 12), minutes=rng.randrange(60)
        )
        n_cells = rng.choice((12_225, 250_000, 1_200_000, 4_800_000))
        case = _Case(
            index=index,
            rng=rng,
            release=RELEASES[(index // len(OUTCOMES) + index) % len(RELEASES)],
            cluster=cluster.name,
            host=cluster.host_format.format(n=rng.randrange(1, 999), a=1, b=2, c=3),
            user=user.login,
            run_path=run_path,
            outcome=outcome,
            n_procs=_n_procs(rng, n_cells) if index % 2 else 1,
            transient=rng.random() < 0.5,
            n_cells=n_cells,
            n_points=int(n_cells * 1.07) + 1000,
            created_at=created,
        )
        truths.append(_write_case(root, case, now))
    return truths
