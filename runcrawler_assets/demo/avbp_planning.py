"""What each AVBP run will be, before any file is written: who, where, with which
settings, when, how it ends, and then how big and how long.

Why in two steps: a run's plan comes from a random stream of its own (`plan_run`), so
runs do not depend on each other, and runs are named only once all are planned
(`name_runs`, in set-up order, as people number them). Its draft (`draft_run`) then
draws the version, processes, efficiency and time step from the run's render stream,
which the writers go on drawing from, in a fixed order, so that a seed gives the same
archive; the real logs' mess draws from a third stream, so that runs without mess stay
as they were. A follow-up (avbp_remedies.py) is drafted from its predecessor's draft,
so that its run.params can be the same (avbp_params.py); a run of the regressed version
may fail (knobs.py), from a stream of its own.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from runcrawler_assets.demo import avbp_mess
from runcrawler_assets.demo.avbp_mess import LogMess
from runcrawler_assets.demo.avbp_output import SOLVER_VERSIONS, SolverVersion
from runcrawler_assets.demo.knobs import DemoKnobs
from runcrawler_assets.demo.team import CLUSTERS, USERS, Cluster, Project, UserHabits

_CONVECTION_SCHEMES = ("lw", "ttgc", "tt2g")
_WANTED_ITERATIONS = (2000, 5000, 10000, 20000, 50000, 100000)
_MORE_PROCS = 6  # a campaign's success runs on at most this many times the processes
_NICE_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


@dataclass(frozen=True)
class RunSettings:
    """The run.params settings the analytics look at."""

    mixture_name: str
    les_model: str
    artvisc: str
    convection_scheme: str
    cfl: str
    ncell_group: int
    reactive_flow: bool
    wanted_iterations: int


@dataclass(frozen=True)
class RunPlan:
    """What is decided before naming: who, where, what, when, and how it ends."""

    index: int
    user: UserHabits
    cluster: Cluster
    project: Project
    settings: RunSettings
    outcome: str  # "not_started", "running", "none" or an error category
    created_at: datetime
    run_path: str = ""
    follows: FollowUp | None = None  # planted after an earlier run of its folder
    starts_campaign: bool = False  # continued by restarts (avbp_remedies.py)


# The run.params keyword each kind of follow-up changes (a rerun changes none).
CHANGED_KEYWORD = {"fix": "cfl", "restart": "initial_solution_file"}


@dataclass(frozen=True)
class FollowUp:
    """How a run follows the run before it in its folder (avbp_remedies.py): a `fix`
    (CFL lowered), a `rerun` (nothing changed) or a `restart` (from its last solution)."""

    kind: str
    previous: RunPlan

    @property
    def keyword(self) -> str | None:
        """The one run.params keyword changed, lower-case; None: none."""
        return CHANGED_KEYWORD.get(self.kind)

    @property
    def campaign(self) -> RunPlan:
        """The first run of the chain of restarts this run belongs to."""
        first = self.previous
        while first.follows is not None:
            first = first.follows.previous
        return first


def _weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _outcome(rng: random.Random, user: UserHabits, settings: RunSettings, knobs: DemoKnobs) -> str:
    """How the run ends: settings-driven failures first, then failures of any kind."""
    draw = rng.random()
    if draw < knobs.not_started_share:
        return "not_started"
    if draw < knobs.not_started_share + knobs.running_share:
        return "running"
    high_cfl = knobs.high_cfl_failure if float(settings.cfl) > knobs.high_cfl_threshold else 0.0
    no_artvisc = knobs.no_artvisc_failure if settings.artvisc == "no_artvisc" else 0.0
    if rng.random() < 1 - (1 - high_cfl) * (1 - no_artvisc):
        return _weighted(rng, knobs.settings_failure_categories)
    if rng.random() < knobs.failure_base * user.failure_factor:
        return _weighted(rng, knobs.failure_categories)
    return "none"


def _launch_time(rng: random.Random, user: UserHabits, first: date, last: date) -> datetime:
    """A set-up time by the user's habits; more runs lately (the team grows)."""
    span = (last - first).days
    top = max(user.weekday_weights)
    while True:
        x = rng.random() if rng.random() < 0.5 else math.sqrt(rng.random())
        day = first + timedelta(days=round(x * span))
        if rng.random() * top < user.weekday_weights[day.weekday()]:
            break
    hour = rng.gauss(user.launch_hour, user.launch_spread) % 24
    return datetime.combine(day, time()) + timedelta(seconds=int(hour * 3600))


def plan_run(
    index: int, seed: int, knobs: DemoKnobs, projects: Mapping[str, tuple[Project, ...]]
) -> RunPlan:
    """One run's plan, from its own random stream so that runs do not depend on each other."""
    rng = random.Random(f"{seed}:{index}:plan")
    user = rng.choices(USERS, [u.activity for u in USERS])[0]
    if rng.random() < user.home_share:
        cluster = next(c for c in CLUSTERS if c.name == user.home_cluster)
    else:
        cluster = rng.choice([c for c in CLUSTERS if c.name != user.home_cluster])
    user_projects = projects[user.login]
    project = rng.choices(user_projects, [1 / (j + 1) for j in range(len(user_projects))])[0]
    settings = RunSettings(
        mixture_name=project.mixture,
        les_model=_weighted(rng, user.les_models),
        artvisc=_weighted(rng, user.artvisc_models),
        convection_scheme=rng.choice(_CONVECTION_SCHEMES),
        cfl=rng.choice(user.cfl_values),
        ncell_group=rng.choice(user.ncell_groups),
        reactive_flow=project.mixture != "AIR" and rng.random() > 0.1,
        wanted_iterations=rng.choice(_WANTED_ITERATIONS),
    )
    outcome = _outcome(rng, user, settings, knobs)
    first, last = knobs.end - timedelta(days=knobs.span_days), knobs.end - timedelta(days=3)
    if outcome == "running":
        first, last = knobs.end - timedelta(days=1), knobs.end
    elif outcome == "truncated":
        last = knobs.end - timedelta(days=45)
    created_at = _launch_time(rng, user, first, last)
    return RunPlan(index, user, cluster, project, settings, outcome, created_at)


def name_runs(plans: list[RunPlan]) -> list[RunPlan]:
    """Run folders numbered in set-up order within their parent folder, as people do; a
    follow-up then points at its predecessor's named plan (set up before it)."""
    counters: Counter[tuple[str, ...]] = Counter()
    named: dict[int, RunPlan] = {}
    for plan in sorted(plans, key=lambda p: (p.created_at, p.index)):
        parent = (plan.cluster.name, plan.user.login, *plan.project.folders)
        counters[parent] += 1
        name = plan.user.run_dir_format.format(k=counters[parent], case=plan.project.case)
        follows = plan.follows
        if follows is not None:
            follows = replace(follows, previous=named[follows.previous.index])
        named[plan.index] = replace(plan, run_path="/".join((*parent, name)), follows=follows)
    return list(named.values())


# ------------------------------------------------------------------ the draft


@dataclass(frozen=True)
class RunDraft:
    """One named run about to be written: its plan, size and timing, and the random
    streams its files are drawn from (`rng`, then `mess_rng` for the real logs' mess)."""

    plan: RunPlan
    knobs: DemoKnobs
    rng: random.Random
    version: SolverVersion
    n_procs: int
    efficiency: float  # s·proc/(it·node), see knobs.py
    seconds_per_iteration: float
    preprocessing_s: float
    print_every: int  # the log prints one iteration line every this many
    requested: int  # iterations run.params asks for
    dt: float
    mess_rng: random.Random
    mess: LogMess

    @property
    def merged(self) -> bool:
        """stderr goes into the log: the user does not copy the scheduler's files."""
        return not self.plan.user.copies_scheduler_files


def draft_run(plan: RunPlan, seed: int, knobs: DemoKnobs) -> RunDraft:
    """The run's version, size and timing, from its render stream, by the knobs' effects;
    its plan's outcome may have failed by its version (`regressed_version`)."""
    if plan.follows is not None:
        return _follow_up_draft(plan, plan.follows, seed, knobs)
    rng = random.Random(f"{seed}:{plan.index}:render")
    project, settings = plan.project, plan.settings
    available = [v for v in SOLVER_VERSIONS if v.released <= plan.created_at.date()]
    version = available[-1] if rng.random() < 0.55 else rng.choice(available)
    plan = _by_version(plan, version, seed, knobs)
    n_procs = _procs(rng, plan)
    nodes_per_proc = project.n_nodes / n_procs
    efficiency = (
        knobs.efficiency_base[project.dimension]
        * plan.cluster.speed
        * (1 + knobs.nodes_per_proc_knee / nodes_per_proc)
        * (knobs.reactive_flow_factor if settings.reactive_flow else 1.0)
        * knobs.les_model_factors[settings.les_model]
        * rng.lognormvariate(0.0, knobs.efficiency_sigma)
    )
    seconds_per_iteration = efficiency * project.n_nodes / n_procs
    limit = plan.cluster.time_limit_s
    if plan.outcome == "time_limit":
        # More iterations than fit in the time limit, whatever the user wanted.
        wanted = limit / seconds_per_iteration * rng.uniform(1.3, 3.0)
        wanted = max(settings.wanted_iterations, wanted)
    else:
        fits = 0.9 * limit / seconds_per_iteration
        wanted = max(100.0, min(settings.wanted_iterations, fits))
    if rng.random() < knobs.verbose_log_share and wanted <= 50000:
        print_every = 1
    else:
        lines = min(1500.0, max(4.0, rng.lognormvariate(math.log(40), 0.8)))
        print_every = max([s for s in _NICE_STEPS if s <= wanted / lines], default=1)
    # A round number the log's print step divides, so a success prints its last iteration.
    rounding = math.ceil if plan.outcome == "time_limit" else math.floor
    requested = max(print_every, rounding(wanted / print_every) * print_every)
    exponent = rng.uniform(-7.3, -6.5) if project.dimension == 3 else rng.uniform(-6.8, -6.0)
    # Real logs' mess from a stream of its own: the draws above and below stay the same.
    mess_rng = random.Random(f"{seed}:{plan.index}:mess")
    return RunDraft(
        plan=plan,
        knobs=knobs,
        rng=rng,
        version=version,
        n_procs=n_procs,
        efficiency=efficiency,
        seconds_per_iteration=seconds_per_iteration,
        preprocessing_s=10 + 25 * project.n_nodes / 1e6,
        print_every=print_every,
        requested=requested,
        dt=float(f"{10**exponent:.1E}"),
        mess_rng=mess_rng,
        mess=avbp_mess.draw_mess(mess_rng, knobs, plan.outcome),
    )


def _by_version(plan: RunPlan, version: SolverVersion, seed: int, knobs: DemoKnobs) -> RunPlan:
    """A run of the regressed version that would succeed fails with `regression_failure`,
    drawn from a stream of its own so that the run's other draws stay the same."""
    if plan.outcome != "none" or version.version != knobs.regressed_version:
        return plan
    rng = random.Random(f"{seed}:{plan.index}:regression")
    if rng.random() >= knobs.regression_failure:
        return plan
    return replace(plan, outcome=_weighted(rng, knobs.regression_categories))


def _follow_up_draft(plan: RunPlan, follows: FollowUp, seed: int, knobs: DemoKnobs) -> RunDraft:
    """A follow-up runs its predecessor's version, size and time step (the same run.params),
    its own streams drawing the rest; a campaign's success runs on enough more processes
    to fit the time limit (`procs_to_fit`). Never failed by its version: the follow-up's
    outcome is planted."""
    previous = draft_run(follows.previous, seed, knobs)
    mess_rng = random.Random(f"{seed}:{plan.index}:mess")
    run = replace(
        previous,
        plan=plan,
        rng=random.Random(f"{seed}:{plan.index}:render"),
        mess_rng=mess_rng,
        mess=avbp_mess.draw_mess(mess_rng, knobs, plan.outcome),
    )
    if follows.kind != "restart" or plan.outcome != "none":
        return run
    n_procs = procs_to_fit(previous)
    if n_procs is None:
        raise ValueError(f"a campaign's success that cannot fit its time limit: {plan}")
    # The efficiency model's (1 + knee / nodes per process), for the new count.
    n_nodes, knee = plan.project.n_nodes, knobs.nodes_per_proc_knee
    efficiency = (
        previous.efficiency
        / (1 + knee * previous.n_procs / n_nodes)
        * (1 + knee * n_procs / n_nodes)
    )
    return replace(
        run,
        n_procs=n_procs,
        efficiency=efficiency,
        seconds_per_iteration=efficiency * n_nodes / n_procs,
    )


def procs_to_fit(run: RunDraft) -> int | None:
    """The fewest processes (whole nodes of its cluster) with which the run's iterations
    fit in 85 % of the time limit, by the efficiency model; None: none would
    (communication costs too much), or it takes more than `_MORE_PROCS` times as many
    (people would rather change run.params) or than 8192."""
    n_nodes, knee = run.plan.project.n_nodes, run.knobs.nodes_per_proc_knee
    cores = run.plan.cluster.cores_per_node
    # efficiency = base * (1 + knee / nodes_per_proc): seconds per iteration =
    # base * (n_nodes / n_procs + knee)
    base = run.efficiency / (1 + knee * run.n_procs / n_nodes)
    budget = 0.85 * run.plan.cluster.time_limit_s - run.preprocessing_s
    room = budget / (base * run.requested) - knee  # the n_nodes / n_procs that fits
    if room <= 0:
        return None
    n_procs = max(run.n_procs + 1, math.ceil(n_nodes / room))
    n_procs = math.ceil(n_procs / cores) * cores
    return n_procs if n_procs <= min(8192, _MORE_PROCS * run.n_procs) else None


def _procs(rng: random.Random, plan: RunPlan) -> int:
    """The user's favourite count a quarter of the time, else sized to the mesh."""
    user, cluster, n_nodes = plan.user, plan.cluster, plan.project.n_nodes
    if rng.random() < 0.25 and n_nodes / user.favourite_procs >= 200:
        return user.favourite_procs
    raw = n_nodes / (user.nodes_per_proc * rng.lognormvariate(0.0, 0.4))
    if raw < cluster.cores_per_node:
        return min(cluster.cores_per_node, 2 ** max(1, round(math.log2(max(raw, 1)))))
    return min(8192, round(raw / cluster.cores_per_node) * cluster.cores_per_node)
