"""How each AVBP session stops, and what it prints on the way out.

Why apart: the ending decides most of the truth (status, stage, error message, times),
so it is drawn in one place, by the planned outcome: the milestone reached, the
iteration, the decisive line (from `ERROR_TEMPLATES`) and what follows it on stdout and
stderr, including the real logs' mess of the endings (avbp_mess.py). Draws come from
the run's streams in a fixed order (avbp_planning.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from runcrawler_assets.demo import avbp_mess, launchers
from runcrawler_assets.demo.avbp_output import ERROR_TEMPLATES, LOOP, ErrorTemplate
from runcrawler_assets.demo.avbp_planning import RunDraft
from runcrawler_assets.solvers.avbp.milestones import MILESTONES


@dataclass(frozen=True)
class Ending:
    """How one solver session stopped, and what it printed on the way out."""

    milestones: int  # how many milestones were printed
    grid_info: bool
    iteration: int  # the iteration reached, 0 outside the loop
    elapsed_s: float
    stdout_tail: tuple[str, ...] = ()
    stderr: tuple[str, ...] = ()
    decisive: str | None = None
    template: str | None = None
    killed_at: datetime | None = None
    launched: bool = True  # False: the launch failed before AVBP printed its banner


def final_ending(run: RunDraft, host: str, jobid: int, started: datetime) -> Ending:
    """The final session's ending, by the planned outcome."""
    rng, outcome = run.rng, run.plan.outcome
    if outcome == "none":
        wall = run.efficiency * run.requested * run.plan.project.n_nodes / run.n_procs
        return Ending(len(MILESTONES), True, run.requested, wall)
    if outcome in ("running", "truncated"):
        milestones = LOOP + 1 if rng.random() < 0.8 else rng.randint(3, len(MILESTONES) - 1)
        iteration = _loop_iteration(run, rng.random()) if milestones > LOOP else 0
        if milestones > LOOP + 1:
            iteration = run.requested
        elapsed = _loop_elapsed(run, iteration) if iteration else _pre_elapsed(run, milestones)
        return Ending(milestones, True, iteration, elapsed)
    if run.mess.launch_failure is not None:
        return _failed_launch(run, run.mess.launch_failure, host, jobid, started)
    template = _template(run, outcome)
    milestones = rng.choice(template.milestones) + 1
    grid_info = milestones >= 3 and not (template.id == "input.cannot_open" and milestones == 3)
    hang_after_message = (
        outcome in ("time_limit", "cancelled", "segfault")
        and milestones == LOOP + 1
        and rng.random() < 0.3
    )
    if milestones <= LOOP:
        iteration, elapsed = 0, _pre_elapsed(run, milestones)
    elif outcome == "time_limit" and not hang_after_message:
        elapsed = float(run.plan.cluster.time_limit_s)
        iteration = int((elapsed - run.preprocessing_s) / run.seconds_per_iteration)
    else:
        early = outcome in ("numerical_instability", "out_of_memory") or hang_after_message
        fraction = rng.random() ** 2 * 0.5 if early else rng.random()
        iteration = _loop_iteration(run, fraction)
        elapsed = _loop_elapsed(run, iteration)
    stdout_tail: list[str] = []
    if hang_after_message:
        solver_category = rng.choice(("numerical_instability", "thermo_table"))
        stdout_tail.append(
            _fill(
                run,
                _template(run, solver_category),
                stage=LOOP,
                iteration=iteration,
                host=host,
                jobid=jobid,
            )
        )
        if outcome == "time_limit":
            elapsed = float(run.plan.cluster.time_limit_s)
        elif outcome == "cancelled":
            elapsed += rng.uniform(600, 7200)
    killed_at = None
    if outcome in ("time_limit", "cancelled"):
        killed_at = started + timedelta(seconds=round(elapsed))
    decisive = _fill(
        run,
        template,
        stage=milestones - 1,
        iteration=iteration,
        host=host,
        jobid=jobid,
        at=killed_at,
    )
    stderr: list[str] = []
    if template.stream == "stdout":
        stdout_tail += _as_printed(run, template, decisive, milestones - 1, iteration, host)
        if outcome != "unknown" or rng.random() < 0.5:
            mpi = _template(run, "mpi_abort")
            stderr.append(_fill(run, mpi, stage=LOOP, iteration=iteration, host=host, jobid=jobid))
            if run.mess.help_aggregate:
                pid = run.mess_rng.randint(1000, 99999)
                stderr += launchers.help_aggregate(f"[{host}:{pid}]", run.n_procs)
    else:
        stderr.append(decisive)
        if template.id == "segfault.forrtl":
            stderr.append(
                "Image              PC                Routine            Line        Source"
            )
            stderr.append(
                f"avbp               {rng.getrandbits(40):016X}  Unknown"
                "               Unknown  Unknown"
            )
        if outcome == "segfault" and run.mess.step_cancelled:
            crashed = started + timedelta(seconds=round(elapsed))
            at = avbp_mess.after(crashed, run.mess_rng)
            stderr += launchers.step_cancelled(jobid, host, at)
    return Ending(
        milestones,
        grid_info,
        iteration,
        elapsed,
        tuple(stdout_tail),
        tuple(stderr),
        decisive,
        template.id,
        killed_at,
    )


def earlier_ending(run: RunDraft, host: str, jobid: int) -> Ending:
    """An attempt before the last one: a wrong path fixed, a blow-up, a node lost."""
    rng = run.rng
    kind = rng.choice(("input", "instability", "crash"))
    if kind == "input":
        template = next(t for t in ERROR_TEMPLATES if t.id == "input.cannot_open")
        line = _fill(run, template, stage=2, iteration=0, host=host, jobid=jobid)
        return Ending(3, False, 0, _pre_elapsed(run, 3), (line,))
    iteration = _loop_iteration(run, rng.random() * 0.6)
    tail: tuple[str, ...] = ()
    if kind == "instability":
        template = _template(run, "numerical_instability")
        tail = (_fill(run, template, stage=LOOP, iteration=iteration, host=host, jobid=jobid),)
    return Ending(LOOP + 1, True, iteration, _loop_elapsed(run, iteration), tail)


def _loop_iteration(run: RunDraft, fraction: float) -> int:
    return max(1, min(run.requested - 1, int(run.requested * fraction)))


def _loop_elapsed(run: RunDraft, iteration: int) -> float:
    return run.preprocessing_s + iteration * run.seconds_per_iteration


def _pre_elapsed(run: RunDraft, milestones: int) -> float:
    return run.preprocessing_s * milestones / 9 + run.rng.uniform(1, 20)


def _template(run: RunDraft, category: str) -> ErrorTemplate:
    return run.rng.choice([t for t in ERROR_TEMPLATES if t.category == category])


def _fill(
    run: RunDraft,
    template: ErrorTemplate,
    *,
    stage: int,
    iteration: int,
    host: str,
    jobid: int,
    at: datetime | None = None,
    rng: random.Random | None = None,
) -> str:
    """The template's line with this run's numbers; `stage` is the last milestone's index."""
    rng, project = rng or run.rng, run.plan.project
    paths = {
        2: f"../MESH/{project.case}.mesh.h5",
        3: f"../INIT/{project.case}_init.h5",
        4: f"../SOLUTBOUND/{project.case}.sol_bound.h5",
    }
    hot = rng.random() < 0.8
    temperature = rng.uniform(5000, 9000) if hot else rng.uniform(20, 150)
    return template.text.format(
        node=rng.randrange(1, project.n_nodes),
        it=iteration,
        temperature=f"{temperature:.1f}",
        path=paths.get(stage, paths[3]),
        db=rng.choice(("./mixture_database.dat", "../CHEMISTRY/mixture_database.dat")),
        rank=rng.randrange(run.n_procs),
        n=rng.randint(1, 4) if template.category == "out_of_memory" else rng.randint(1, 999),
        jobid=jobid,
        host=host,
        at=launchers.slurm_time(at) if at else "",
        **_words(template, rng),
    )


# The words of the messages whose words vary (drawn only for them: other runs' draws stay).
VARYING_WORDS = {
    "routine": ("lsqr_solve", "grad_op_3d", "visc_flux", "chem_source", "bc_inlet_nscbc"),
    "array": ("w_cons", "dw_dt", "grad_u", "yk_mass"),
    "patch": ("inlet_air", "outlet", "wall_chamber", "fuel_injector"),
    "state": ("RHO_REF", "P_REF", "T_REF"),
}


def _words(template: ErrorTemplate, rng: random.Random) -> dict[str, str]:
    return {
        key: rng.choice(words)
        for key, words in VARYING_WORDS.items()
        if f"{{{key}}}" in template.text
    }


def _as_printed(
    run: RunDraft, template: ErrorTemplate, decisive: str, stage: int, iteration: int, host: str
) -> list[str]:
    """The decisive solver error as the log shows it: maybe wrapped, maybe by several ranks.

    Either way a parser reads `decisive` back (avbp_mess.wrapped, printed_by_ranks).
    """
    mess, mess_rng = run.mess, run.mess_rng
    lines = avbp_mess.wrapped(decisive, mess_rng) if mess.wrapped_error else [decisive]
    if mess.rank_style is None:
        return lines
    other = _fill(run, template, stage=stage, iteration=iteration, host=host, jobid=0, rng=mess_rng)
    rank, other_rank = mess_rng.sample(range(max(2, run.n_procs)), 2)
    return avbp_mess.printed_by_ranks(lines, other, mess.rank_style, rank, other_rank, mess_rng)


def _failed_launch(
    run: RunDraft, template: str, host: str, jobid: int, started: datetime
) -> Ending:
    """The final session of a launch that failed (avbp_mess.launch_failure).

    Most print no banner at all; `mpirun.killed_signal_9` dies in the temporal loop
    with nothing but mpirun's word for it.
    """
    mess_rng = run.mess_rng
    if template == "mpirun.killed_signal_9":
        iteration = _loop_iteration(run, mess_rng.random())
        milestones, elapsed = LOOP + 1, _loop_elapsed(run, iteration)
    else:
        iteration, milestones, elapsed = 0, 0, mess_rng.uniform(2, 60)
    failure = avbp_mess.launch_failure(
        template,
        mess_rng,
        host=host,
        jobid=jobid,
        n_procs=run.n_procs,
        at=avbp_mess.after(started + timedelta(seconds=round(elapsed)), mess_rng),
    )
    return Ending(
        milestones,
        failure.banner,
        iteration,
        elapsed,
        failure.stdout,
        failure.stderr,
        failure.decisive,
        failure.template,
        launched=failure.banner,
    )
