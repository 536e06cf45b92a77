"""Which application runs of an OpenFOAM case decide its record, and how far it got.

A case's logs hold many application runs (meshing, pre-processing, decomposition,
the solver, post-processing, and older attempts): the solver's newest run describes
the case; when the solver never ran, the pipeline run that failed or stopped is
the failure (a case that failed in snappyHexMesh); the meshing logs give the mesh
size. The stages come from `stages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runcrawler_assets.solvers.openfoam.log import AppRun
from runcrawler_assets.solvers.openfoam.stages import (
    SOLVER_LOOP,
    SOLVER_START,
    STAGES,
    SUCCESS,
    Stage,
    is_post_processing,
    is_solver_application,
    stage_of_application,
)


@dataclass(frozen=True)
class CaseRuns:
    """The application runs of a case, sorted into what decides its record."""

    solver: AppRun | None
    deciding: AppRun | None
    stage: Stage | None
    mesh: AppRun | None
    n_solver_logs: int
    # The newest post-processing run (`reconstructPar`, `flameletFoamPost`): it read what a
    # solver wrote, so a solver ran, even with no solver log.
    read_results: AppRun | None


def chronological(run: AppRun) -> tuple[datetime, datetime, str, int]:
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
        (r for r in runs if r.application is not None and r.said_anything), key=chronological
    )
    post = [r for r in runs if is_post_processing(r.application or "")]
    read_results = post[-1] if post else None
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
        return CaseRuns(solver, solver, _solver_stage(solver), mesh, n_solver_logs, read_results)
    unfinished = [r for r in pipeline if not r.ended]
    if unfinished:
        deciding = unfinished[-1]
        stage = stage_of_application(deciding.application or "")
        return CaseRuns(None, deciding, stage, mesh, 0, read_results)
    reached = [s for r in pipeline if (s := stage_of_application(r.application or "")) is not None]
    furthest = max(reached, key=STAGES.index) if reached else None
    return CaseRuns(None, None, furthest, mesh, 0, read_results)


def _solver_stage(solver: AppRun) -> Stage | None:
    """Success at `End`, in the loop once it started, at start-up once the banner printed."""
    if solver.ended:
        return SUCCESS
    if solver.loop_started:
        return SOLVER_LOOP
    return SOLVER_START if solver.has_banner else None
