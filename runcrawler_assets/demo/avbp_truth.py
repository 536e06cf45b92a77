"""What a correct parser reports for one AVBP run, by runs-schema.md and contract-notes.md.

Why apart: the truth is derived from what was written (the plan, the last session, the
printed summary), never from the parser, so that tests compare two independent readings.
Where contract-notes.md is silent, the truth says: a run without a log has
iterations_done 0. `remedy` names the pattern planted around the run (`remedy_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runcrawler_assets.demo.avbp_log import Session
from runcrawler_assets.demo.avbp_output import LOOP
from runcrawler_assets.demo.avbp_planning import CHANGED_KEYWORD, RunDraft, RunPlan
from runcrawler_assets.demo.truth import blank_truth
from runcrawler_assets.records import ERROR_CATEGORIES, Status
from runcrawler_assets.solvers.avbp.milestones import MILESTONES

_STATUS_OF = {c.name: c.status for c in ERROR_CATEGORIES}


def avbp_truth(
    run: RunDraft,
    sessions: Sequence[Session],
    params: dict[str, str],
    summary: dict[str, float | None],
    log_name: str | None,
) -> dict[str, Any]:
    """The run's truth (`TRUTH_FIELDS`); `summary` holds the floats its log printed."""
    plan, project, settings = run.plan, run.plan.project, run.plan.settings
    truth = blank_truth(
        run_path=plan.run_path,
        cluster=plan.cluster.name,
        user=plan.user.login,
        solver="avbp",
        created_at=plan.created_at,
    )
    truth.update(
        iterations_requested=run.requested,
        iterations_done=0,
        mixture_name=settings.mixture_name.lower(),
        les_model=settings.les_model,
        artificial_viscosity_model=settings.artvisc,
        convection_scheme=settings.convection_scheme,
        ncell_group=settings.ncell_group,
        reactive_flow=settings.reactive_flow,
        cfl=float(settings.cfl),
        n_restarts=max(0, len(sessions) - 1),
        params=params,
        remedy=remedy_of(plan),
    )
    if not sessions:
        truth["status"] = Status.NOT_STARTED.value
        return truth
    session = sessions[-1]
    ending = session.ending
    truth["log_path"] = f"{plan.run_path}/{log_name}"
    if ending.launched:  # else no banner: no version, start, host, processes nor stage
        milestone = MILESTONES[ending.milestones - 1]
        truth.update(
            solver_version=session.version.version,
            started_at=session.started.isoformat(),
            host=session.host,
            n_procs=run.n_procs,
            iterations_done=session.last_printed if ending.milestones > LOOP else 0,
            stage_code=milestone.code,
            stage=milestone.label,
        )
    if ending.grid_info:
        truth.update(n_nodes=project.n_nodes, n_cells=project.n_cells, dimension=project.dimension)
    outcome = plan.outcome
    if outcome == "none":
        status, ended = Status.SUCCESS, session.ended
        truth["error_category"] = "none"
    elif outcome == "running":
        status, ended = Status.RUNNING, None
    elif outcome == "truncated":
        status, ended = Status.TRUNCATED, session.ended
        truth["error_category"] = "truncated"
    else:
        status = _STATUS_OF[outcome]
        # contract-notes 2: a killed run ends at the scheduler's CANCELLED AT, when
        # printed; else, like a failed run, when its log was last written.
        ended = (ending.killed_at if status == Status.KILLED else None) or session.ended
        truth.update(
            error_category=outcome,
            error_message=ending.decisive,
            error_template=ending.template,
        )
    truth["status"] = status.value
    truth["ended_at"] = ended.isoformat() if ended else None
    wall = summary["wall"]
    if wall is None and ended is not None and ending.launched:
        wall = (ended - session.started).total_seconds()
    cpu = summary["cpu"]
    n_procs = truth["n_procs"]
    cpu_hours = (
        cpu / 3600 if cpu is not None else wall * n_procs / 3600 if wall is not None else None
    )
    efficiency = summary["efficiency"]
    done, n_nodes = truth["iterations_done"], truth["n_nodes"]
    if efficiency is None and wall is not None and n_nodes and done > 0:
        efficiency = wall * n_procs / (done * n_nodes)
    truth.update(
        wall_time_s=wall,
        cpu_time_s=cpu,
        cpu_hours=cpu_hours,
        efficiency=efficiency,
        efficiency_printed=summary["efficiency"],
    )
    return truth


def remedy_of(plan: RunPlan) -> dict[str, str] | None:
    """What the remedies analysis must recover from this run (knobs.py): a fix's or a
    rerun's failed run, a restart's previous run and campaign; None: nothing planted."""
    follows = plan.follows
    if follows is None:
        started = plan.starts_campaign
        return {"kind": "campaign_start", "campaign": plan.run_path} if started else None
    previous = follows.previous
    if follows.kind == "fix":
        return {
            "kind": "fix",
            "failed_run": previous.run_path,
            "keyword": CHANGED_KEYWORD["fix"],
            "before": previous.settings.cfl,
            "after": plan.settings.cfl,
        }
    if follows.kind == "rerun":
        return {"kind": "rerun", "failed_run": previous.run_path}
    campaign = follows.campaign.run_path
    return {"kind": "restart", "continues": previous.run_path, "campaign": campaign}
