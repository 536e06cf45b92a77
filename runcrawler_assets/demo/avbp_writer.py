"""One planned AVBP run rendered into its files and its truth, nothing written yet.

Why apart: the order of the draws is the archive's identity (a seed gives the same
bytes), so one function lays them out: run.params, the mixture database, the sessions
(restarts), the summary, the logs (names, CRLF, gzip, log folders) and the scheduler's
output, then the truth, and the batch jobs the sessions were (for the accounting dumps).
The pieces are in avbp_params, avbp_log, avbp_endings, avbp_truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from runcrawler_assets.demo.avbp_log import (
    Session,
    launch,
    log_names,
    log_text,
    scheduler_text,
    wrap_up,
)
from runcrawler_assets.demo.avbp_params import params_file
from runcrawler_assets.demo.avbp_planning import RunDraft, RunPlan, draft_run
from runcrawler_assets.demo.avbp_truth import avbp_truth
from runcrawler_assets.demo.files import encoded, gzipped, posix_time
from runcrawler_assets.demo.jobs import Job, JobIds, final_kind, shown_job_id
from runcrawler_assets.demo.knobs import DemoKnobs
from runcrawler_assets.solvers.avbp.milestones import MILESTONES

_GZIP_LEVEL = 6


@dataclass(frozen=True)
class File:
    """One file of a run directory."""

    name: str  # relative to the run directory
    content: bytes
    mtime: float | None  # None: leave the time of writing (logs of running runs)


@dataclass(frozen=True)
class RenderedRun:
    """A run directory's files and empty folders, its truth, and its batch jobs."""

    run_path: str
    files: tuple[File, ...]
    empty_dirs: tuple[str, ...]
    truth: dict[str, Any]
    status: str
    jobs: tuple[Job, ...]  # one per session, oldest first; none run on a workstation
    job_id_shown: int | None  # the last job's id, when the run's files tell it


# The job name each log style goes with (`jobname` users name the job after the case).
_JOB_NAMES = {"avbp.o": "avbp", "job.out": "job", "avbp_log.txt": "{run}", "dated": "{case}_run"}


def render_run(plan: RunPlan, seed: int, knobs: DemoKnobs, job_ids: JobIds) -> RenderedRun:
    """Turn one named plan into files and truth, from the run's own random streams; its
    jobs take their ids from `job_ids`."""
    run = draft_run(plan, seed, knobs)
    plan, rng = run.plan, run.rng  # the draft's plan: its version may have failed it
    written = params_file(run, seed)
    created = posix_time(plan.created_at)
    files = [File("run.params", encoded(written.text, crlf=written.crlf), created)]
    if rng.random() < 0.6:
        mixture_db = f"$MIXTURE\n  mixture_name = {plan.settings.mixture_name}\n$end_MIXTURE\n"
        files.append(File("mixture_database.dat", mixture_db.encode(), created - 3600))
    empty_dirs = ("MESH", "SOLUT") if rng.random() < 0.7 else ()
    sessions: list[Session] = []
    if plan.outcome != "not_started":
        restarts = 0
        if plan.outcome != "running" and rng.random() < knobs.restart_share:
            restarts = rng.choices((1, 2, 3), (0.7, 0.22, 0.08))[0]
        started = plan.created_at + timedelta(
            seconds=int(min(86400, rng.lognormvariate(math.log(900), 1.2)))
        )
        for j in range(restarts + 1):
            after = sessions[-1].jobid if sessions else 0
            session = launch(run, started, final=j == restarts, job_ids=job_ids, after=after)
            sessions.append(session)
            gap = min(3 * 86400, rng.lognormvariate(math.log(7200), 1.0))
            started = session.ended + timedelta(seconds=int(gap))
    summary: dict[str, float | None] = {"wall": None, "cpu": None, "efficiency": None}
    if sessions and sessions[-1].ending.milestones == len(MILESTONES):
        summary_text, summary = wrap_up(run, sessions[-1])
        sessions[-1] = replace(sessions[-1], summary=summary_text)
    names = log_names(run, sessions)
    crlf_logs = rng.random() < knobs.crlf_log_share
    folder = f"{run.mess.log_folder}/" if run.mess.log_folder else ""
    texts: list[str] = []  # of the last session: where Slurm may print its job id
    for j, (name, session) in enumerate(zip(names, sessions, strict=True)):
        final = j == len(sessions) - 1
        text = log_text(run, session)
        if final:
            texts.append(text)
        data = encoded(text, crlf=crlf_logs)
        if plan.outcome == "running" and final:
            names[j] = folder + name
            files.append(File(names[j], data, None))
            continue
        dated_gzip = name.startswith("log") and rng.random() < (knobs.gzip_share if final else 0.5)
        if dated_gzip or run.mess.gzip_any_name:
            name, data = name + ".gz", gzipped(data, level=_GZIP_LEVEL)
        names[j] = folder + name
        files.append(File(names[j], data, posix_time(session.ended)))
    scheduler_file = bool(
        sessions
        and plan.outcome != "running"
        and plan.user.copies_scheduler_files
        and not run.mess.on_workstation
    )
    if scheduler_file:
        last = sessions[-1]
        stem = plan.project.case
        name = (
            f"{stem}.e{last.jobid}"
            if plan.user.log_style == "jobname"
            else f"slurm-{last.jobid}.out"
        )
        texts.append(scheduler_text(run, last))
        data = encoded(texts[-1], crlf=crlf_logs)
        if run.mess.gzip_any_name:
            name, data = name + ".gz", gzipped(data, level=_GZIP_LEVEL)
        files.append(File(folder + name, data, posix_time(last.ended)))
    truth = avbp_truth(run, sessions, written.params, summary, names[-1] if names else None)
    shown = None
    if sessions:
        in_names = scheduler_file or plan.user.log_style == "jobname"
        shown = shown_job_id(sessions[-1].jobid, in_names, texts)
    jobs = () if run.mess.on_workstation else _jobs(run, sessions, final_kind(truth))
    return RenderedRun(plan.run_path, tuple(files), empty_dirs, truth, truth["status"], jobs, shown)


def _jobs(run: RunDraft, sessions: list[Session], last_kind: str) -> tuple[Job, ...]:
    """The batch job of each session: an earlier attempt failed, or lost its node when
    its log just stops; the last one ended as the run's truth says."""
    plan, project = run.plan, run.plan.project
    name = _JOB_NAMES.get(plan.user.log_style, "{case}")
    name = name.format(case=project.case, run=plan.run_path.rpartition("/")[2])
    # What one MPI task holds: its share of the mesh, more with the species of a flame.
    rss_mb = (150 + 0.03 * project.n_nodes / run.n_procs) * (
        1.4 if plan.settings.reactive_flow else 1.0
    )
    jobs: list[Job] = []
    for j, session in enumerate(sessions):
        kind = "failed" if session.ending.stdout_tail else "node_fail"
        if j == len(sessions) - 1:
            kind = last_kind
        jobs.append(
            Job(
                job_id=session.jobid,
                cluster=plan.cluster,
                user=plan.user.login,
                run_path=plan.run_path,
                name=name,
                step_name="avbp",
                host=session.host,
                started=session.started,
                ended=None if kind == "running" else session.ended,
                n_procs=run.n_procs,
                kind=kind,
                planned_s=run.preprocessing_s + run.requested * run.seconds_per_iteration,
                rss_mb=rss_mb,
                not_before=jobs[-1].ended if jobs else None,
            )
        )
    return tuple(jobs)
