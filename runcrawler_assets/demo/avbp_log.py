"""The AVBP solver log of each session, its name, and the scheduler's output file.

Why apart: this is the text the parser reads, in the version's own style (avbp_output.py):
banner, header fields, milestones, grid information, iteration lines, the wrap-up
summary of a success, then the ending's lines (avbp_endings.py); others' lines (the real
logs' mess, avbp_mess.py) where real logs have them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from runcrawler_assets.demo import avbp_mess
from runcrawler_assets.demo.avbp_endings import Ending, earlier_ending, final_ending
from runcrawler_assets.demo.avbp_output import LOOP, SolverVersion
from runcrawler_assets.demo.avbp_planning import RunDraft
from runcrawler_assets.demo.jobs import JobIds, job_id_near
from runcrawler_assets.solvers.avbp.milestones import MILESTONES

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Session:
    """One launch of the solver, as its log shows it."""

    version: SolverVersion
    started: datetime
    host: str
    jobid: int
    ending: Ending
    print_every: int
    dt: float
    summary: str = ""  # wrap-up lines of a successful run
    notes: str = ""  # extra header line (may hold invalid UTF-8 as surrogates)
    probe_warning: str = ""
    preamble: str = ""  # others' lines before the banner (avbp_mess)
    loop_noise: str = ""  # others' lines among the iterations, at `loop_noise_at` of them
    loop_noise_at: float = 0.5
    progress_bar: str = ""  # redrawn with bare \r before the grid's next milestone

    @property
    def ended(self) -> datetime:
        return self.ending.killed_at or self.started + timedelta(
            seconds=round(self.ending.elapsed_s)
        )

    @property
    def last_printed(self) -> int:
        return self.ending.iteration // self.print_every * self.print_every


def launch(run: RunDraft, started: datetime, final: bool, job_ids: JobIds, after: int) -> Session:
    """One launch starting at `started`: where, which job (an id of `job_ids` above the
    run's previous job `after`), how it ends, what else it prints."""
    host, jobid = _host_and_job(run, started, job_ids, after)
    ending = final_ending(run, host, jobid, started) if final else earlier_ending(run, host, jobid)
    notes = ""
    if run.plan.user.login == "jérôme" and run.version.case == "upper":
        # Latin-1 bytes in a UTF-8 log: the working directory as the cluster's shell wrote it.
        latin1 = run.plan.run_path.encode("latin-1", "replace")
        notes = run.version.field(
            "Working directory", "/scratch/" + latin1.decode("utf-8", "surrogateescape")
        )
    elif run.rng.random() < run.knobs.invalid_utf8_share:
        notes = " Compiled for : \udc93bigmem\udc94 partition\n"
    probe_warning = ""
    if ending.milestones == len(MILESTONES) and run.rng.random() < 0.03:
        probe_warning = (
            f" ERROR : probe {run.rng.randint(1, 40)} is outside the domain and is ignored\n"
        )
    mess, mess_rng = run.mess, run.mess_rng
    version = run.version.version
    return Session(
        run.version,
        started,
        host,
        jobid,
        ending,
        run.print_every,
        run.dt,
        notes=notes,
        probe_warning=probe_warning,
        preamble=avbp_mess.preamble(mess_rng, host=host, version=version) if mess.preamble else "",
        loop_noise=avbp_mess.loop_noise(mess_rng, host) if mess.loop_noise else "",
        loop_noise_at=mess_rng.random(),
        progress_bar=avbp_mess.progress_bar(mess_rng) if mess.progress_bar else "",
    )


def _host_and_job(run: RunDraft, started: datetime, job_ids: JobIds, after: int) -> tuple[str, int]:
    rng, cluster = run.rng, run.plan.cluster
    host = cluster.host_format.format(
        n=rng.randint(1, 2400), a=rng.randint(1, 8), b=rng.randint(0, 7), c=rng.randint(0, 8)
    )
    wanted = job_id_near(cluster, started, rng.randrange(40))
    return host, job_ids.take(cluster.name, wanted, after)


def _printed(value: float, spec: str) -> tuple[str, float]:
    """The number as the log prints it, and the value a parser reads back."""
    text = format(value, spec)
    return text, float(text)


def wrap_up(run: RunDraft, session: Session) -> tuple[str, dict[str, float | None]]:
    """The wrap-up lines of a success and the floats a parser reads back from them."""
    version, ending = session.version, session.ending
    wall_text, wall = _printed(ending.elapsed_s, version.number_format)
    lines = [
        f"   Patch {i + 1:2d} {name:<10s}: mass flux [kg/s] = {run.rng.uniform(-2, 2): .4E}\n"
        for i, name in enumerate(("inlet", "outlet", "walls"))
    ]
    values: dict[str, float | None] = {"wall": wall, "cpu": None, "efficiency": None}
    if version.prints_cpu_time:
        cpu = ending.elapsed_s * run.n_procs * run.rng.uniform(0.93, 0.995)
        cpu_text, values["cpu"] = _printed(cpu, version.number_format)
        lines.append(version.field("Total CPU time [s]", cpu_text))
    lines.append(version.field("Elapsed wall time [s]", wall_text))
    if version.prints_efficiency:
        efficiency = wall * run.n_procs / (ending.iteration * run.plan.project.n_nodes)
        efficiency_text, values["efficiency"] = _printed(efficiency, version.number_format)
        lines.append(version.field("Reduced efficiency [s.proc/it/node]", efficiency_text))
    lines.append(version.field("Run ended on", session.ended.strftime(_TIME_FORMAT)))
    return "".join(lines), values


def log_text(run: RunDraft, session: Session) -> str:
    """The session's log as AVBP (and, merged, the scheduler) wrote it."""
    version, ending, project = session.version, session.ending, run.plan.project
    parts = [session.preamble]
    if ending.launched:
        parts += [
            " " + "_" * 58 + "\n",
            version.banner.format(version=version.version) + "\n",
            " " + "_" * 58 + "\n",
            version.field("Run started on", session.started.strftime(_TIME_FORMAT)),
            version.field("Host", session.host),
            version.field("Number of MPI processes", f"{run.n_procs:>5d}"),
            session.notes,
        ]
    for index in range(ending.milestones):
        if index == len(MILESTONES) - 1:
            parts.append(session.summary)
        elif index == 3:
            parts.append(session.progress_bar)  # the milestone ends its line
        parts.append(version.milestone(index))
        if index == 2 and ending.grid_info:
            parts.append(f"       {version.cased('Dimension'):<25s}:   {project.dimension}\n")
            parts.append(f"       {version.cased('Number of nodes'):<25s}:   {project.n_nodes}\n")
            parts.append(f"       {version.cased('Number of cells'):<25s}:   {project.n_cells}\n")
        elif index == 5:
            parts.append(session.probe_warning)
        elif index == LOOP:
            fmt, dt = version.iteration_format.format, session.dt
            step = session.print_every
            iterations = [
                fmt(it=it, t=it * dt, dt=dt) for it in range(step, ending.iteration + 1, step)
            ]
            noise_at = round(len(iterations) * session.loop_noise_at)
            iterations.insert(noise_at, session.loop_noise)
            parts.append("".join(iterations))
    parts.extend(line + "\n" for line in ending.stdout_tail)
    if run.merged:
        parts.extend(line + "\n" for line in ending.stderr)
    return "".join(parts)


def log_names(run: RunDraft, sessions: Sequence[Session]) -> list[str]:
    """The sessions' log file names, in the user's style (earlier attempts kept aside)."""
    style, case = run.plan.user.log_style, run.plan.project.case
    names = []
    for j, one in enumerate(sessions):
        final = j == len(sessions) - 1
        if style == "jobname":
            names.append(f"{case}.o{one.jobid}")
        elif style == "dated":
            names.append(f"log_{one.started:%Y%m%d_%H%M%S}.txt")
        else:
            names.append(style if final else f"log_attempt{j + 1}.txt")
    return names


def scheduler_text(run: RunDraft, session: Session) -> str:
    """The scheduler's output file of the last session: the job script's lines, then stderr."""
    head = (
        f"Loading module avbp/{session.version.version}\n"
        f"Starting AVBP with {run.n_procs} MPI tasks\n"
    )
    return head + "".join(line + "\n" for line in session.ending.stderr)
