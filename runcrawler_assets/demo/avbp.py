"""A realistic demo archive of AVBP runs, and the truth a correct parser must read from it.

Why: the crawl, the analytics and the report need an archive that looks like the
real one (archive-format.md) down to its awkward corners, and tests need to know
what is in it. `generate_archive` writes such an archive and, on request, one JSON
line per run with the values a correct parser must report (`TRUTH_FIELDS`, named
after `RunRecord`'s fields and following docs/contract-notes.md, plus
`error_template`). Everything is drawn from `random.Random` seeded per run, so a
seed gives the same paths, contents and modification times, except the logs of
`running` runs, whose modification time is the real time of writing so that a
crawl sees them as recent. Plain Python: no Dagster here.

The archive's habits and effects are named knobs, in `KNOBS` (a `DemoKnobs`),
`CLUSTERS` and `USERS`, so tests of later analytics can check what they recover:

- Dates: runs are set up over `span_days` (730) days ending `end` (2026-10-31),
  more of them lately; each user has launch hours and weekdays. run.params'
  mtime is `created_at`; the newest log's mtime is the run's end. `truncated`
  runs end more than 30 days before `end`; `running` runs (`running_share`, 1 %)
  start during its last two days (their truth assumes a crawl within the 2-day
  running window after writing).
- Efficiency (s·proc/(it·node)) = `efficiency_base[dimension]` (3D 1.1e-5, 2D 5.5e-6)
  × the cluster's `speed` (topaze 0.6 < jean-zay 0.8 < kraken 1.0 < irene 1.35)
  × (1 + `nodes_per_proc_knee` / nodes per process) (knee 2000: too few mesh
  nodes per process costs communication)
  × `reactive_flow_factor` (1.45) when reactive_flow
  × `les_model_factors` (no_model 1.0, smago 1.08, wale 1.12, sigma 1.18)
  × lognormal noise (`efficiency_sigma` 0.2). The log prints it (versions that
  do) and its summary agrees with it.
- Failures: a run fails for its settings with probability 1 - (1 - a)(1 - b),
  a = `high_cfl_failure` (0.3) when CFL > `high_cfl_threshold` (0.9), b =
  `no_artvisc_failure` (0.4) with `no_artvisc`, as `settings_failure_categories`
  (numerical_instability, thermo_table); else for any reason with probability
  `failure_base` (0.25) × the user's `failure_factor` (0.6 to 1.6), as
  `failure_categories`. `not_started_share` (3 %) of runs have no log. About
  28 % of runs end failed, killed or truncated.
- No effect: `convection_scheme` is drawn uniformly, independently of user and
  settings, and changes nothing: analytics must not flag it. `ncell_group`
  has no effect either but follows user habits, so it correlates with the
  users' failure rates and efficiencies (a confounder, not a cause).
- Logs: a few KB mostly (about 40 iteration lines), `verbose_log_share` (0.15 %)
  print every iteration (up to several MB); five solver versions with their
  own dashes, label case and spacing; restarts (`restart_share`, older logs
  with older mtimes), gzip, CRLF, invalid UTF-8 bytes. Error lines come from
  `ERROR_TEMPLATES`: a failure stops the log at a milestone that fits it, an
  MPI_ABORT follows most solver errors, stderr lines (verdicts, MPI, runtime)
  go to the scheduler file for users who copy it, else into the log; some
  verdicts follow a solver message (the verdict decides).
- Real logs' mess (issue #14, `demo_messy`, a few percent of runs each, from a
  random stream of its own): logs in logs/, log/, output/; gzip under any name;
  module, container, network and loader lines before the banner, a loader
  warning or an Open MPI help box in the loop; errors printed by several ranks
  at once or wrapped onto a second line; progress bars redrawn with bare `\\r`;
  launches that fail before AVBP prints anything (`launch.*` templates); Slurm
  cancelling the step after a crash; run.params with Windows paths.

Where contract-notes.md is silent, the truth says: a run without a log has
iterations_done 0.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runcrawler_assets.demo import messy
from runcrawler_assets.records import ERROR_CATEGORIES, Status, run_id_for
from runcrawler_assets.solvers.avbp.milestones import MILESTONES


def _frozen(weights: Mapping[str, float]) -> Mapping[str, float]:
    """A read-only mapping, so that module-level knobs cannot be changed by accident."""
    return MappingProxyType(dict(weights))


# ------------------------------------------------------------------ the knobs


def _knob(weights: Mapping[str, float]) -> Any:
    """A DemoKnobs field holding a read-only mapping (dataclasses refuse a shared default)."""
    return field(default_factory=lambda: _frozen(weights))


@dataclass(frozen=True)
class Cluster:
    """A machine: its speed (a factor of efficiency, lower is faster) and batch limits."""

    name: str
    speed: float
    time_limit_s: int
    cores_per_node: int
    host_format: str  # str.format with n, a, b, c
    first_jobid: int


CLUSTERS: tuple[Cluster, ...] = (
    Cluster("kraken", 1.0, 24 * 3600, 36, "kraken-node{n:04d}", 2_000_000),
    Cluster("irene", 1.35, 24 * 3600, 48, "irene{n:04d}", 8_000_000),
    Cluster("jean-zay", 0.8, 20 * 3600, 40, "r{a}i{b}n{c}", 1_500_000),
    Cluster("topaze", 0.6, 24 * 3600, 128, "topaze{n:04d}", 400_000),
)


@dataclass(frozen=True)
class UserHabits:
    """How one user works: where, when, how big, which settings, how their logs look."""

    login: str
    activity: float  # relative number of runs
    home_cluster: str
    home_share: float  # share of the runs on the home cluster
    launch_hour: float  # mean hour of the day a run is set up
    launch_spread: float  # hours
    weekday_weights: tuple[float, ...]  # Monday to Sunday
    share_3d: float  # share of 3D projects
    nodes_per_proc: float  # how finely the user splits a mesh
    favourite_procs: int  # used a quarter of the time, whatever the mesh
    ncell_groups: tuple[int, ...]
    les_models: Mapping[str, float]
    artvisc_models: Mapping[str, float]
    cfl_values: tuple[str, ...]  # as written in run.params
    failure_factor: float
    log_style: str  # one of LOG_STYLES
    copies_scheduler_files: bool  # else stderr is merged into the log
    crlf_share: float  # run.params edited on Windows
    keyword_case: str  # "spec", "lower" or "upper"
    run_dir_format: str  # str.format with k, case


LOG_STYLES = ("avbp.o", "job.out", "avbp_log.txt", "jobname", "dated")
_WORKWEEK = (1.0, 1.0, 1.0, 1.0, 0.8, 0.03, 0.03)

USERS: tuple[UserHabits, ...] = (
    UserHabits(
        "jdupont", 1.3, "kraken", 0.75, 10.0, 2.5, _WORKWEEK, 0.6, 9000, 288, (100,),
        _frozen({"wale": 0.7, "sigma": 0.2, "smago": 0.1}),
        _frozen({"colin": 0.8, "jameson": 0.2}),
        ("0.7", "0.7", "0.7", "0.8"), 1.0, "avbp.o", True, 0.0, "spec", "run_{k:03d}",
    ),
    UserHabits(
        "m.garcia", 1.0, "irene", 0.8, 11.0, 3.0, (1.0, 1.0, 1.0, 1.0, 0.3, 0.03, 0.03),
        0.8, 6000, 480, (50, 50, 100),
        _frozen({"sigma": 0.6, "wale": 0.4}),
        _frozen({"jameson": 0.6, "no_artvisc": 0.2, "colin": 0.2}),
        ("0.8", "0.85", "0.9", "0.95"), 1.2, "jobname", True, 0.0, "lower", "{case}_{k:03d}",
    ),
    UserHabits(
        "o'neil", 0.8, "jean-zay", 0.7, 22.0, 2.5, (0.8, 0.8, 0.8, 0.9, 1.0, 0.7, 0.6),
        0.5, 5000, 160, (200,),
        _frozen({"smago": 0.6, "no_model": 0.4}),
        _frozen({"no_artvisc": 0.5, "jameson": 0.5}),
        ("0.85", "0.9", "0.95", "1.0"), 1.6, "dated", False, 0.3, "upper", "RUN{k:02d}",
    ),
    UserHabits(
        "le-goff", 0.9, "topaze", 0.6, 9.0, 1.5, _WORKWEEK, 0.2, 1500, 256, (500, 1000),
        _frozen({"no_model": 0.6, "wale": 0.4}),
        _frozen({"colin": 1.0}),
        ("0.5", "0.6", "0.7"), 0.6, "job.out", True, 0.0, "spec", "calc_{k:03d}",
    ),
    UserHabits(
        "jérôme", 1.1, "kraken", 0.65, 15.0, 2.5, (0.3, 1.0, 1.0, 1.0, 1.0, 0.8, 0.03),
        0.7, 12000, 144, (100, 150),
        _frozen({"wale": 0.5, "sigma": 0.5}),
        _frozen({"colin": 0.7, "jameson": 0.3}),
        ("0.7", "0.75", "0.8", "0.85"), 0.8, "avbp_log.txt", False, 0.0, "spec", "essai_{k:03d}",
    ),
    UserHabits(
        "li wei", 0.7, "topaze", 0.7, 14.0, 5.0, (0.9, 1.0, 1.0, 1.0, 0.9, 0.6, 0.6),
        0.5, 8000, 512, (100, 200),
        _frozen({"wale": 0.8, "smago": 0.2}),
        _frozen({"jameson": 0.6, "colin": 0.4}),
        ("0.7", "0.8", "0.9"), 1.0, "dated", True, 0.6, "lower", "run {k}",
    ),
    UserHabits(
        "b.nguyen", 0.9, "jean-zay", 0.8, 10.0, 3.0, _WORKWEEK, 0.9, 10000, 800, (100, 200, 400),
        _frozen({"sigma": 0.5, "wale": 0.5}),
        _frozen({"colin": 0.5, "jameson": 0.5}),
        ("0.7", "0.8", "0.9", "0.95"), 1.3, "jobname", True, 0.05, "spec", "run_{k:04d}",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class DemoKnobs:
    """Every effect the demo archive holds, by name (see the module docstring)."""

    end: date = date(2026, 10, 31)
    span_days: int = 730
    efficiency_base: Mapping[int, float] = field(
        default_factory=lambda: MappingProxyType({3: 1.1e-5, 2: 5.5e-6})
    )
    nodes_per_proc_knee: float = 2000.0
    reactive_flow_factor: float = 1.45
    les_model_factors: Mapping[str, float] = _knob(
        {"no_model": 1.0, "smago": 1.08, "wale": 1.12, "sigma": 1.18}
    )
    efficiency_sigma: float = 0.2
    failure_base: float = 0.25
    failure_categories: Mapping[str, float] = _knob(
        {
            "time_limit": 0.15,
            "out_of_memory": 0.07,
            "cancelled": 0.11,
            "segfault": 0.08,
            "numerical_instability": 0.1,
            "thermo_table": 0.05,
            "mixture": 0.07,
            "input_file": 0.12,
            "mpi_abort": 0.06,
            "truncated": 0.1,
            "unknown": 0.09,
        }
    )
    high_cfl_threshold: float = 0.9
    high_cfl_failure: float = 0.3
    no_artvisc_failure: float = 0.4
    settings_failure_categories: Mapping[str, float] = _knob(
        {"numerical_instability": 0.75, "thermo_table": 0.25}
    )
    no_effect_setting: str = "convection_scheme"
    not_started_share: float = 0.03
    running_share: float = 0.01
    restart_share: float = 0.12
    verbose_log_share: float = 0.0015
    gzip_share: float = 0.3  # of the logs a "dated" user keeps, once finished
    crlf_log_share: float = 0.04
    invalid_utf8_share: float = 0.03
    # Real logs' mess (demo_messy), drawn from a random stream of its own. Shares of runs,
    # except where said: of the runs whose ending has that kind of line.
    log_folder_share: float = 0.04  # logs and scheduler file in logs/, log/ or output/
    any_name_gzip_share: float = 0.04  # a finished run's logs gzipped whatever their name
    preamble_noise_share: float = 0.06  # modules, container, network lines before the banner
    loop_noise_share: float = 0.04  # a loader warning or Open MPI help box in the loop
    progress_bar_share: float = 0.04  # grid partitioning redrawn with bare \r
    windows_params_share: float = 0.03  # run.params with Windows paths
    rank_printed_error_share: float = 0.35  # of solver errors: several ranks print it at once
    wrapped_error_share: float = 0.3  # of labelled solver errors: wrapped onto a second line
    launch_failure_share: float = 0.3  # of segfault, mpi_abort, unknown runs: no AVBP output
    step_cancelled_share: float = 0.5  # of segfaults: Slurm then cancels the step
    help_summary_share: float = 0.5  # of MPI_ABORTs: Open MPI's help-message summary follows


KNOBS = DemoKnobs()


@dataclass(frozen=True)
class SolverVersion:
    """How one AVBP version prints its log: the spec says these details vary."""

    version: str
    released: date
    banner: str  # str.format with version
    arrow: str  # the dashes in front of a milestone
    case: str  # of labels and milestone texts: "spec", "lower" or "upper"
    label_width: int
    colon: str
    number_format: str  # of the summary's floats
    iteration_format: str  # str.format with it, t, dt
    prints_cpu_time: bool
    prints_efficiency: bool

    def cased(self, text: str) -> str:
        return (
            text.lower() if self.case == "lower" else text.upper() if self.case == "upper" else text
        )

    def field(self, label: str, value: object) -> str:
        return f" {self.cased(label):<{self.label_width}}{self.colon}{value}\n"

    def milestone(self, index: int) -> str:
        return f" {self.arrow} {self.cased(MILESTONES[index].text)}\n"


SOLVER_VERSIONS: tuple[SolverVersion, ...] = (
    SolverVersion(
        "7.8.3", date(2023, 5, 10), "      AVBP V{version}", "-->", "lower", 24, ": ", ".5E",
        " Iteration #{it:>8d}  Time [s] = {t:.4E}  dt [s] = {dt:.1E}\n", True, False,
    ),
    SolverVersion(
        "7.10.2", date(2024, 1, 22), "          AVBP  V{version}  (build 2024-01-22, gnu/12.2)",
        "--->", "spec", 26, " :  ", ".4E",
        "  Iteration # {it:>9d}   Time [s] = {t: .4E}   dt [s] = {dt: .1E}\n", True, False,
    ),
    SolverVersion(
        "7.12.0", date(2024, 2, 14),
        "          AVBP  V{version}  (build 2024-02-14, intel/2023.1)", "---->", "spec", 16,
        " : ", ".4E", "  Iteration # {it:>9d}   Time [s] = {t: .4E}   dt [s] = {dt: .1E}\n",
        True, True,
    ),
    SolverVersion(
        "7.13.1", date(2025, 4, 3), "        AVBP  V{version}  (build 2025-04-03, intel/2024.2)",
        "----->", "upper", 20, " : ", ".6E",
        "   Iteration #  {it:>10d}    Time [s] =  {t:.5E}    dt [s] =  {dt:.2E}\n", True, True,
    ),
    SolverVersion(
        "7.14.0", date(2026, 2, 20), "          AVBP  V{version}  (build 2026-02-20, nvhpc/25.1)",
        "---->", "spec", 18, ": ", ".4E",
        "  Iteration # {it:>9d}   Time [s] = {t: .4E}   dt [s] = {dt: .1E}\n", False, True,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class ErrorTemplate:
    """One way a run ends badly: the line printed, its category, where and when."""

    id: str
    category: str
    text: str  # str.format with node, it, temperature, path, db, rank, code, n, jobid, host, at
    milestones: tuple[int, ...]  # indexes into MILESTONES of the last milestone printed
    stream: str  # "stdout" (the solver's log) or "stderr" (scheduler file, or merged in the log)


_LOOP = MILESTONES.index(next(m for m in MILESTONES if m.code == 300))

ERROR_TEMPLATES: tuple[ErrorTemplate, ...] = (
    ErrorTemplate(
        "numerical.negative_density", "numerical_instability",
        "ERROR : Negative density detected at node {node} (iteration {it})", (_LOOP,), "stdout",
    ),
    ErrorTemplate(
        "numerical.negative_pressure", "numerical_instability",
        "ERROR : Negative pressure detected at node {node} (iteration {it})", (_LOOP,), "stdout",
    ),
    ErrorTemplate(
        "numerical.negative_temperature", "numerical_instability",
        "ERROR : Negative temperature detected at node {node} (iteration {it})", (_LOOP,),
        "stdout",
    ),
    ErrorTemplate(
        "numerical.nan", "numerical_instability",
        "Error : NaN detected in conservative variables", (_LOOP,), "stdout",
    ),
    ErrorTemplate(
        "thermo.out_of_bounds", "thermo_table",
        "ERROR : Temperature out of table bounds: T = {temperature} K", (_LOOP,), "stdout",
    ),
    ErrorTemplate(
        "mixture.species_count", "mixture",
        "Selected mixture and solution do not contain the same number of species. Check inputs.",
        (3,), "stdout",
    ),
    ErrorTemplate(
        "mixture.unknown_species", "mixture",
        "ERROR : Unknown species number {n} in the mixture database", (0,), "stdout",
    ),
    ErrorTemplate(
        "mixture.undefined", "mixture",
        "Error in mixture database {db}: the requested mixture is not defined", (0,), "stdout",
    ),
    ErrorTemplate("input.cannot_open", "input_file", "ERROR : Cannot open file {path}",
                  (2, 3, 4), "stdout"),
    ErrorTemplate(
        "input.hdf5_read", "input_file",
        "*** Fatal : HDF5 error while reading {path} (status -1)", (3,), "stdout",
    ),
    ErrorTemplate(
        "segfault.forrtl", "segfault",
        "forrtl: severe (174): SIGSEGV, segmentation fault occurred", (5, 6, _LOOP), "stderr",
    ),
    ErrorTemplate(
        "segfault.srun", "segfault",
        "srun: error: {host}: task {rank}: Segmentation fault (core dumped)", (5, 6, _LOOP),
        "stderr",
    ),
    ErrorTemplate(
        "mpi.abort", "mpi_abort",
        "MPI_ABORT was invoked on rank {rank} in communicator MPI_COMM_WORLD with errorcode 1",
        (1, 7, _LOOP), "stderr",
    ),
    ErrorTemplate(
        "unknown.partitioning", "unknown",
        "*** Fatal error in partitioning: {n} cells without a partition", (7,), "stdout",
    ),
    ErrorTemplate(
        "unknown.ghost_numbering", "unknown",
        "ERROR : Inconsistent ghost node numbering on rank {rank}", (7, _LOOP), "stdout",
    ),
    ErrorTemplate(
        "scheduler.time_limit", "time_limit",
        "slurmstepd: error: *** JOB {jobid} ON {host} CANCELLED AT {at} DUE TO TIME LIMIT ***",
        (_LOOP,), "stderr",
    ),
    ErrorTemplate(
        "scheduler.oom_kill", "out_of_memory",
        "slurmstepd: error: Detected {n} oom-kill event(s) in StepId={jobid}.0. Some of your "
        "processes may have been killed by the cgroup out-of-memory handler.",
        (2, 7, _LOOP), "stderr",
    ),
    ErrorTemplate(
        "runtime.out_of_memory", "out_of_memory",
        "forrtl: severe (41): insufficient virtual memory", (2, 7), "stderr",
    ),
    ErrorTemplate(
        "scheduler.cancelled", "cancelled",
        "slurmstepd: error: *** JOB {jobid} ON {host} CANCELLED AT {at} ***",
        (0, 3, 7, _LOOP, _LOOP, _LOOP), "stderr",
    ),
    ErrorTemplate(
        "scheduler.cancelled_bare", "cancelled", "*** JOB {jobid} ON {host} CANCELLED AT {at} ***",
        (_LOOP,), "stderr",
    ),
)  # fmt: skip

# The columns of the truth, in RunRecord's order, then the demo's own key.
TRUTH_FIELDS: tuple[str, ...] = (
    "run_id", "cluster", "user", "run_path", "solver", "solver_version", "created_at",
    "started_at", "ended_at", "host", "n_procs", "n_nodes", "n_cells", "dimension",
    "iterations_requested", "iterations_done", "cpu_time_s", "wall_time_s", "cpu_hours",
    "efficiency", "efficiency_printed", "status", "stage_code", "stage", "error_category",
    "error_message", "mixture_name", "les_model", "artificial_viscosity_model",
    "convection_scheme", "ncell_group", "reactive_flow", "cfl", "n_restarts", "params",
    "log_path", "error_template",
)  # fmt: skip

CASES: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        3: ("burner", "swirler", "combustor_sector", "injector", "pipe_jet", "aero_engine"),
        2: ("flame_2d", "channel_2d", "cavity", "bluff_body", "airfoil"),
    }
)
REACTIVE_MIXTURES = ("CH4-AIR-2S-BFER", "KERO-LUCHE-2S", "H2-AIR-12S-BOIVIN", "C3H8-AIR-2S-CM2")
_FOLDER_TOPS = ("PhD", "projects", "ANR_FLAME", "campaign_2025", "EU-H2 burner", "études", "tests")
_FOLDER_LEAVES = ("LES", "cold_flow", "phi0.8", "mesh_fine", "CFL_study", "hot", "sweep")
_CONVECTION_SCHEMES = ("lw", "ttgc", "tt2g")
_WANTED_ITERATIONS = (2000, 5000, 10000, 20000, 50000, 100000)
_NICE_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
_STATUS_OF = {c.name: c.status for c in ERROR_CATEGORIES}
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class DemoArchiveError(ValueError):
    """The demo archive cannot be written where asked; the message says what to do."""


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_archive` wrote: run counts by status, files and bytes."""

    root: Path
    runs: int
    success: int
    failed: int
    killed: int
    running: int
    truncated: int
    not_started: int
    files: int
    bytes: int

    def describe(self) -> str:
        """One line for a human."""
        return (
            f"{self.runs} runs in {self.root} ({self.success} success, {self.failed} failed, "
            f"{self.killed} killed, {self.truncated} truncated, {self.running} running, "
            f"{self.not_started} not started), {self.files} files, "
            f"{self.bytes / 1e6:.1f} MB"
        )


# ------------------------------------------------------------------ planning


@dataclass(frozen=True)
class _Project:
    """A folder of runs sharing a case, a mesh and a mixture."""

    folders: tuple[str, ...]
    case: str
    dimension: int
    n_nodes: int
    n_cells: int
    mixture: str


@dataclass(frozen=True)
class _Settings:
    mixture_name: str
    les_model: str
    artvisc: str
    convection_scheme: str
    cfl: str
    ncell_group: int
    reactive_flow: bool
    wanted_iterations: int


@dataclass(frozen=True)
class _Plan:
    """What is decided before naming: who, where, what, when, and how it ends."""

    index: int
    user: UserHabits
    cluster: Cluster
    project: _Project
    settings: _Settings
    outcome: str  # "not_started", "running", "none" or an error category
    created_at: datetime
    run_path: str = ""


def _weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _projects(user: UserHabits, seed: int) -> tuple[_Project, ...]:
    """The user's projects, drawn once per user so that runs share meshes and folders."""
    rng = random.Random(f"{seed}:projects:{user.login}")
    projects: list[_Project] = []
    seen: set[tuple[str, ...]] = set()
    for _ in range(rng.randint(4, 8)):
        dimension = 3 if rng.random() < user.share_3d else 2
        case = rng.choice(CASES[dimension])
        if dimension == 3:
            n_nodes = int(min(8e7, max(2e5, rng.lognormvariate(math.log(3e6), 0.9))))
            n_cells = int(n_nodes * rng.uniform(5.3, 5.8))
        else:
            n_nodes = int(min(1e6, max(5e3, rng.lognormvariate(math.log(8e4), 0.8))))
            n_cells = int(n_nodes * rng.uniform(1.9, 2.05))
        depth = rng.choices((0, 1, 2, 3), (0.15, 0.35, 0.35, 0.15))[0]
        candidates = (
            rng.choice(_FOLDER_TOPS),
            rng.choice((case, f"{case}_LES", f"{case}_v2", f"{case} new mesh")),
            rng.choice(_FOLDER_LEAVES),
        )
        folders = candidates[3 - depth :]
        while folders in seen:
            folders = (*folders[:-1], f"{folders[-1]}_{len(seen)}") if folders else ("misc",)
        seen.add(folders)
        mixture = rng.choice(REACTIVE_MIXTURES) if rng.random() < 0.65 else "AIR"
        projects.append(_Project(folders, case, dimension, n_nodes, n_cells, mixture))
    return tuple(projects)


def _outcome(rng: random.Random, user: UserHabits, settings: _Settings, knobs: DemoKnobs) -> str:
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


def _plan(
    index: int, seed: int, knobs: DemoKnobs, projects: Mapping[str, tuple[_Project, ...]]
) -> _Plan:
    """One run's plan, from its own random stream so that runs do not depend on each other."""
    rng = random.Random(f"{seed}:{index}:plan")
    user = rng.choices(USERS, [u.activity for u in USERS])[0]
    if rng.random() < user.home_share:
        cluster = next(c for c in CLUSTERS if c.name == user.home_cluster)
    else:
        cluster = rng.choice([c for c in CLUSTERS if c.name != user.home_cluster])
    user_projects = projects[user.login]
    project = rng.choices(user_projects, [1 / (j + 1) for j in range(len(user_projects))])[0]
    settings = _Settings(
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
    return _Plan(index, user, cluster, project, settings, outcome, created_at)


def _name_runs(plans: list[_Plan]) -> list[_Plan]:
    """Run folders numbered in set-up order within their parent folder, as people do."""
    counters: Counter[tuple[str, ...]] = Counter()
    named = []
    for plan in sorted(plans, key=lambda p: (p.created_at, p.index)):
        parent = (plan.cluster.name, plan.user.login, *plan.project.folders)
        counters[parent] += 1
        name = plan.user.run_dir_format.format(k=counters[parent], case=plan.project.case)
        named.append(replace(plan, run_path="/".join((*parent, name))))
    return named


# ------------------------------------------------------------------ rendering


@dataclass(frozen=True)
class _Ending:
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


@dataclass(frozen=True)
class _Session:
    """One launch of the solver, as its log shows it."""

    version: SolverVersion
    started: datetime
    host: str
    jobid: int
    ending: _Ending
    print_every: int
    dt: float
    summary: str = ""  # wrap-up lines of a successful run
    notes: str = ""  # extra header line (may hold invalid UTF-8 as surrogates)
    probe_warning: str = ""
    preamble: str = ""  # others' lines before the banner (demo_messy)
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


@dataclass(frozen=True)
class _File:
    name: str  # relative to the run directory
    content: bytes
    mtime: float | None  # None: leave the time of writing (logs of running runs)


@dataclass(frozen=True)
class _RenderedRun:
    run_path: str
    files: tuple[_File, ...]
    empty_dirs: tuple[str, ...]
    truth: dict[str, Any]
    status: str


def _timestamp(moment: datetime) -> float:
    """Naive UTC datetime to a POSIX timestamp."""
    return moment.replace(tzinfo=UTC).timestamp()


def _printed(value: float, spec: str) -> tuple[str, float]:
    """The number as the log prints it, and the value a parser reads back."""
    text = format(value, spec)
    return text, float(text)


class _RunRenderer:
    """Turns one plan into files and truth; one instance per run, its own random stream."""

    def __init__(self, plan: _Plan, seed: int, knobs: DemoKnobs) -> None:
        self.plan = plan
        self.knobs = knobs
        self.rng = random.Random(f"{seed}:{plan.index}:render")
        rng, user, project, settings = self.rng, plan.user, plan.project, plan.settings
        available = [v for v in SOLVER_VERSIONS if v.released <= plan.created_at.date()]
        self.version = available[-1] if rng.random() < 0.55 else rng.choice(available)
        self.n_procs = self._procs()
        nodes_per_proc = project.n_nodes / self.n_procs
        self.efficiency = (
            knobs.efficiency_base[project.dimension]
            * plan.cluster.speed
            * (1 + knobs.nodes_per_proc_knee / nodes_per_proc)
            * (knobs.reactive_flow_factor if settings.reactive_flow else 1.0)
            * knobs.les_model_factors[settings.les_model]
            * rng.lognormvariate(0.0, knobs.efficiency_sigma)
        )
        self.seconds_per_iteration = self.efficiency * project.n_nodes / self.n_procs
        self.preprocessing_s = 10 + 25 * project.n_nodes / 1e6
        limit = plan.cluster.time_limit_s
        if plan.outcome == "time_limit":
            # More iterations than fit in the time limit, whatever the user wanted.
            wanted = limit / self.seconds_per_iteration * rng.uniform(1.3, 3.0)
            wanted = max(settings.wanted_iterations, wanted)
        else:
            fits = 0.9 * limit / self.seconds_per_iteration
            wanted = max(100.0, min(settings.wanted_iterations, fits))
        if rng.random() < knobs.verbose_log_share and wanted <= 50000:
            self.print_every = 1
        else:
            lines = min(1500.0, max(4.0, rng.lognormvariate(math.log(40), 0.8)))
            self.print_every = max([s for s in _NICE_STEPS if s <= wanted / lines], default=1)
        # A round number the log's print step divides, so a success prints its last iteration.
        rounding = math.ceil if plan.outcome == "time_limit" else math.floor
        self.requested = max(
            self.print_every, rounding(wanted / self.print_every) * self.print_every
        )
        exponent = rng.uniform(-7.3, -6.5) if project.dimension == 3 else rng.uniform(-6.8, -6.0)
        self.dt = float(f"{10**exponent:.1E}")
        self.merged = not user.copies_scheduler_files
        # Real logs' mess from a stream of its own: the draws above and below stay the same.
        self.mess_rng = random.Random(f"{seed}:{plan.index}:mess")
        self.mess = messy.draw_mess(self.mess_rng, knobs, plan.outcome)

    def _procs(self) -> int:
        """The user's favourite count a quarter of the time, else sized to the mesh."""
        rng, user, cluster = self.rng, self.plan.user, self.plan.cluster
        n_nodes = self.plan.project.n_nodes
        if rng.random() < 0.25 and n_nodes / user.favourite_procs >= 200:
            return user.favourite_procs
        raw = n_nodes / (user.nodes_per_proc * rng.lognormvariate(0.0, 0.4))
        if raw < cluster.cores_per_node:
            return min(cluster.cores_per_node, 2 ** max(1, round(math.log2(max(raw, 1)))))
        return min(8192, round(raw / cluster.cores_per_node) * cluster.cores_per_node)

    # -- endings ---------------------------------------------------------

    def _loop_iteration(self, fraction: float) -> int:
        return max(1, min(self.requested - 1, int(self.requested * fraction)))

    def _loop_elapsed(self, iteration: int) -> float:
        return self.preprocessing_s + iteration * self.seconds_per_iteration

    def _pre_elapsed(self, milestones: int) -> float:
        return self.preprocessing_s * milestones / 9 + self.rng.uniform(1, 20)

    def _fill(
        self,
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
        rng, project = rng or self.rng, self.plan.project
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
            rank=rng.randrange(self.n_procs),
            n=rng.randint(1, 4) if template.category == "out_of_memory" else rng.randint(1, 999),
            jobid=jobid,
            host=host,
            at=at.isoformat() if at else "",
        )

    def _template(self, category: str) -> ErrorTemplate:
        return self.rng.choice([t for t in ERROR_TEMPLATES if t.category == category])

    def _final_ending(self, host: str, jobid: int, started: datetime) -> _Ending:
        """The final session's ending, by the planned outcome."""
        rng, outcome = self.rng, self.plan.outcome
        if outcome == "none":
            wall = self.efficiency * self.requested * self.plan.project.n_nodes / self.n_procs
            return _Ending(len(MILESTONES), True, self.requested, wall)
        if outcome in ("running", "truncated"):
            milestones = _LOOP + 1 if rng.random() < 0.8 else rng.randint(3, len(MILESTONES) - 1)
            iteration = self._loop_iteration(rng.random()) if milestones > _LOOP else 0
            if milestones > _LOOP + 1:
                iteration = self.requested
            elapsed = self._loop_elapsed(iteration) if iteration else self._pre_elapsed(milestones)
            return _Ending(milestones, True, iteration, elapsed)
        if self.mess.launch_failure is not None:
            return self._failed_launch(self.mess.launch_failure, host, jobid, started)
        template = self._template(outcome)
        milestones = rng.choice(template.milestones) + 1
        grid_info = milestones >= 3 and not (template.id == "input.cannot_open" and milestones == 3)
        hang_after_message = (
            outcome in ("time_limit", "cancelled", "segfault")
            and milestones == _LOOP + 1
            and rng.random() < 0.3
        )
        if milestones <= _LOOP:
            iteration, elapsed = 0, self._pre_elapsed(milestones)
        elif outcome == "time_limit" and not hang_after_message:
            elapsed = float(self.plan.cluster.time_limit_s)
            iteration = int((elapsed - self.preprocessing_s) / self.seconds_per_iteration)
        else:
            early = outcome in ("numerical_instability", "out_of_memory") or hang_after_message
            fraction = rng.random() ** 2 * 0.5 if early else rng.random()
            iteration = self._loop_iteration(fraction)
            elapsed = self._loop_elapsed(iteration)
        stdout_tail: list[str] = []
        if hang_after_message:
            solver_category = rng.choice(("numerical_instability", "thermo_table"))
            stdout_tail.append(
                self._fill(
                    self._template(solver_category),
                    stage=_LOOP,
                    iteration=iteration,
                    host=host,
                    jobid=jobid,
                )
            )
            if outcome == "time_limit":
                elapsed = float(self.plan.cluster.time_limit_s)
            elif outcome == "cancelled":
                elapsed += rng.uniform(600, 7200)
        killed_at = None
        if outcome in ("time_limit", "cancelled"):
            killed_at = started + timedelta(seconds=round(elapsed))
        decisive = self._fill(
            template,
            stage=milestones - 1,
            iteration=iteration,
            host=host,
            jobid=jobid,
            at=killed_at,
        )
        stderr: list[str] = []
        if template.stream == "stdout":
            stdout_tail += self._as_printed(template, decisive, milestones - 1, iteration, host)
            if outcome != "unknown" or rng.random() < 0.5:
                mpi = self._template("mpi_abort")
                stderr.append(
                    self._fill(mpi, stage=_LOOP, iteration=iteration, host=host, jobid=jobid)
                )
                if self.mess.help_aggregate:
                    pid = self.mess_rng.randint(1000, 99999)
                    stderr += messy.help_aggregate(host, pid, self.n_procs)
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
            if outcome == "segfault" and self.mess.step_cancelled:
                crashed = started + timedelta(seconds=round(elapsed))
                at = messy.after(crashed, self.mess_rng)
                stderr += messy.step_cancelled(jobid, host, at)
        return _Ending(
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

    def _as_printed(
        self, template: ErrorTemplate, decisive: str, stage: int, iteration: int, host: str
    ) -> list[str]:
        """The decisive solver error as the log shows it: maybe wrapped, maybe by several ranks.

        Either way a parser reads `decisive` back (messy.wrapped, printed_by_ranks).
        """
        mess, mess_rng = self.mess, self.mess_rng
        lines = messy.wrapped(decisive, mess_rng) if mess.wrapped_error else [decisive]
        if mess.rank_style is None:
            return lines
        other = self._fill(
            template, stage=stage, iteration=iteration, host=host, jobid=0, rng=mess_rng
        )
        rank, other_rank = mess_rng.sample(range(max(2, self.n_procs)), 2)
        return messy.printed_by_ranks(lines, other, mess.rank_style, rank, other_rank, mess_rng)

    def _failed_launch(self, template: str, host: str, jobid: int, started: datetime) -> _Ending:
        """The final session of a launch that failed (messy.launch_failure).

        Most print no banner at all; `mpirun.killed_signal_9` dies in the temporal loop
        with nothing but mpirun's word for it.
        """
        mess_rng = self.mess_rng
        if template == "mpirun.killed_signal_9":
            iteration = self._loop_iteration(mess_rng.random())
            milestones, elapsed = _LOOP + 1, self._loop_elapsed(iteration)
        else:
            iteration, milestones, elapsed = 0, 0, mess_rng.uniform(2, 60)
        failure = messy.launch_failure(
            template,
            mess_rng,
            host=host,
            jobid=jobid,
            n_procs=self.n_procs,
            at=messy.after(started + timedelta(seconds=round(elapsed)), mess_rng),
        )
        return _Ending(
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

    def _earlier_ending(self, host: str, jobid: int) -> _Ending:
        """An attempt before the last one: a wrong path fixed, a blow-up, a node lost."""
        rng = self.rng
        kind = rng.choice(("input", "instability", "crash"))
        if kind == "input":
            template = next(t for t in ERROR_TEMPLATES if t.id == "input.cannot_open")
            line = self._fill(template, stage=2, iteration=0, host=host, jobid=jobid)
            return _Ending(3, False, 0, self._pre_elapsed(3), (line,))
        iteration = self._loop_iteration(rng.random() * 0.6)
        tail: tuple[str, ...] = ()
        if kind == "instability":
            template = self._template("numerical_instability")
            tail = (self._fill(template, stage=_LOOP, iteration=iteration, host=host, jobid=jobid),)
        return _Ending(_LOOP + 1, True, iteration, self._loop_elapsed(iteration), tail)

    # -- files -----------------------------------------------------------

    def _host_and_job(self, started: datetime) -> tuple[str, int]:
        rng, cluster = self.rng, self.plan.cluster
        host = cluster.host_format.format(
            n=rng.randint(1, 2400), a=rng.randint(1, 8), b=rng.randint(0, 7), c=rng.randint(0, 8)
        )
        since = (started - datetime(2023, 1, 1)).total_seconds()
        return host, cluster.first_jobid + int(since / 40) + rng.randrange(40)

    def _session(self, started: datetime, final: bool) -> _Session:
        host, jobid = self._host_and_job(started)
        ending = (
            self._final_ending(host, jobid, started) if final else self._earlier_ending(host, jobid)
        )
        notes = ""
        if self.plan.user.login == "jérôme" and self.version.case == "upper":
            # Latin-1 bytes in a UTF-8 log: the working directory as the cluster's shell wrote it.
            latin1 = self.plan.run_path.encode("latin-1", "replace")
            notes = self.version.field(
                "Working directory", "/scratch/" + latin1.decode("utf-8", "surrogateescape")
            )
        elif self.rng.random() < self.knobs.invalid_utf8_share:
            notes = " Compiled for : \udc93bigmem\udc94 partition\n"
        probe_warning = ""
        if ending.milestones == len(MILESTONES) and self.rng.random() < 0.03:
            probe_warning = (
                f" ERROR : probe {self.rng.randint(1, 40)} is outside the domain and is ignored\n"
            )
        mess, mess_rng = self.mess, self.mess_rng
        version = self.version.version
        return _Session(
            self.version,
            started,
            host,
            jobid,
            ending,
            self.print_every,
            self.dt,
            notes=notes,
            probe_warning=probe_warning,
            preamble=messy.preamble(mess_rng, host=host, version=version) if mess.preamble else "",
            loop_noise=messy.loop_noise(mess_rng, host) if mess.loop_noise else "",
            loop_noise_at=mess_rng.random(),
            progress_bar=messy.progress_bar(mess_rng) if mess.progress_bar else "",
        )

    def _summary(self, session: _Session) -> tuple[str, dict[str, float | None]]:
        """The wrap-up lines and the floats a parser reads back from them."""
        version, ending = session.version, session.ending
        project = self.plan.project
        wall_text, wall = _printed(ending.elapsed_s, version.number_format)
        lines = [
            f"   Patch {i + 1:2d} {name:<10s}: mass flux [kg/s] = {self.rng.uniform(-2, 2): .4E}\n"
            for i, name in enumerate(("inlet", "outlet", "walls"))
        ]
        values: dict[str, float | None] = {"wall": wall, "cpu": None, "efficiency": None}
        if version.prints_cpu_time:
            cpu = ending.elapsed_s * self.n_procs * self.rng.uniform(0.93, 0.995)
            cpu_text, values["cpu"] = _printed(cpu, version.number_format)
            lines.append(version.field("Total CPU time [s]", cpu_text))
        lines.append(version.field("Elapsed wall time [s]", wall_text))
        if version.prints_efficiency:
            efficiency = wall * self.n_procs / (ending.iteration * project.n_nodes)
            efficiency_text, values["efficiency"] = _printed(efficiency, version.number_format)
            lines.append(version.field("Reduced efficiency [s.proc/it/node]", efficiency_text))
        lines.append(version.field("Run ended on", session.ended.strftime(_TIME_FORMAT)))
        return "".join(lines), values

    def _log_text(self, session: _Session) -> str:
        version, ending, project = session.version, session.ending, self.plan.project
        parts = [session.preamble]
        if ending.launched:
            parts += [
                " " + "_" * 58 + "\n",
                version.banner.format(version=version.version) + "\n",
                " " + "_" * 58 + "\n",
                version.field("Run started on", session.started.strftime(_TIME_FORMAT)),
                version.field("Host", session.host),
                version.field("Number of MPI processes", f"{self.n_procs:>5d}"),
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
                parts.append(
                    f"       {version.cased('Number of nodes'):<25s}:   {project.n_nodes}\n"
                )
                parts.append(
                    f"       {version.cased('Number of cells'):<25s}:   {project.n_cells}\n"
                )
            elif index == 5:
                parts.append(session.probe_warning)
            elif index == _LOOP:
                fmt, dt = version.iteration_format.format, session.dt
                step = session.print_every
                iterations = [
                    fmt(it=it, t=it * dt, dt=dt) for it in range(step, ending.iteration + 1, step)
                ]
                noise_at = round(len(iterations) * session.loop_noise_at)
                iterations.insert(noise_at, session.loop_noise)
                parts.append("".join(iterations))
        parts.extend(line + "\n" for line in ending.stdout_tail)
        if self.merged:
            parts.extend(line + "\n" for line in ending.stderr)
        return "".join(parts)

    def _log_names(self, sessions: Sequence[_Session]) -> list[str]:
        style, case = self.plan.user.log_style, self.plan.project.case
        names = []
        for j, session in enumerate(sessions):
            final = j == len(sessions) - 1
            if style == "jobname":
                names.append(f"{case}.o{session.jobid}")
            elif style == "dated":
                names.append(f"log_{session.started:%Y%m%d_%H%M%S}.txt")
            else:
                names.append(style if final else f"log_attempt{j + 1}.txt")
        return names

    def _params(self) -> tuple[str, dict[str, str]]:
        """run.params in the user's style, and the keywords a parser must read from it."""
        rng, user, settings, project = (
            self.rng,
            self.plan.user,
            self.plan.settings,
            self.plan.project,
        )
        truthy, falsy = rng.choice(
            (("yes", "no"), (".true.", ".false."), ("true", "false"), ("1", "0"))
        )
        run_control: list[tuple[str, str, str]] = [
            ("mesh_file", f"../MESH/{project.case}.mesh.h5", ""),
            ("initial_solution_file", f"../INIT/{project.case}_init.h5", ""),
            ("solutbound_file", f"../SOLUTBOUND/{project.case}.sol_bound.h5", ""),
            ("mixture_database", "./mixture_database.dat", ""),
            (
                "mixture_name",
                settings.mixture_name,
                "! 2-step chemistry" if rng.random() < 0.3 else "",
            ),
            ("equation_of_state", "pg", ""),
            ("reactive_flow", truthy if settings.reactive_flow else falsy, ""),
            ("simulation_end_iteration", str(self.requested), ""),
            ("save_solution.iteration", str(max(100, self.requested // 10)), ""),
            ("convection_scheme", settings.convection_scheme, ""),
            ("CFL", settings.cfl, "# stable so far" if rng.random() < 0.2 else ""),
            ("LES_model", settings.les_model, ""),
            ("artificial_viscosity_model", settings.artvisc, ""),
        ]
        if settings.artvisc != "no_artvisc":
            run_control += [
                ("artificial_viscosity_2nd_order", rng.choice(("0.1", "0.05", "0.2")), ""),
                ("artificial_viscosity_4th_order", rng.choice(("0.01", "0.005")), ""),
            ]
        run_control.append(("ncell_group", str(settings.ncell_group), ""))
        if rng.random() < 0.4:
            run_control.insert(
                rng.randrange(len(run_control)), ("fuel_injection_temperature", "300.0", "")
            )
        output_control = [
            ("save_average", rng.choice(("yes", "no")), ""),
            ("save_temporal.iteration", str(max(10, self.print_every)), ""),
            ("probe_x", "0.010  0.020   0.035" if rng.random() < 0.5 else "0.01 0.02 0.03", "! m"),
        ]
        if rng.random() < 0.3:
            output_control.append(("my_postproc_flag", "3", "# kept for the plotting script"))
        if self.mess.windows_params:
            output_control += messy.windows_paths(user.login, project.case)
        lines = [f"! run.params of {project.case}, set up by {user.login}\n"]
        params: dict[str, str] = {}
        for block, entries in (("RUN-CONTROL", run_control), ("OUTPUT-CONTROL", output_control)):
            opener, closer = rng.choice(
                ((block, block), (block.lower(), block.lower()), (block, block.lower()))
            )
            lines.append(f"${opener}\n")
            if rng.random() < 0.3:
                lines.append("! CFL = 1.0 diverged last time\n")
            align = rng.random() < 0.6
            for keyword, value, comment in entries:
                written = self._keyword(keyword)
                indent = rng.choice(("  ", "\t", "   ", ""))
                gap = " " * max(1, 31 - len(written)) if align else rng.choice((" ", "\t", ""))
                tail = f"   {comment}" if comment else rng.choice(("", "", " ", "\t"))
                lines.append(f"{indent}{written}{gap}= {value}{tail}\n")
                params[keyword.lower()] = " ".join(value.split())
                if rng.random() < 0.05:
                    lines.append("\n")
            end_word = rng.choice(("end", "END"))
            lines.append(f"${end_word}_{closer}\n\n")
        return "".join(lines), params

    def _keyword(self, keyword: str) -> str:
        case = self.plan.user.keyword_case
        return (
            keyword.lower() if case == "lower" else keyword.upper() if case == "upper" else keyword
        )

    def _scheduler_text(self, session: _Session) -> str:
        head = (
            f"Loading module avbp/{session.version.version}\n"
            f"Starting AVBP with {self.n_procs} MPI tasks\n"
        )
        return head + "".join(line + "\n" for line in session.ending.stderr)

    def render(self) -> _RenderedRun:
        plan, rng, knobs = self.plan, self.rng, self.knobs
        params_text, params = self._params()
        created = _timestamp(plan.created_at)
        crlf_params = rng.random() < plan.user.crlf_share
        files = [_File("run.params", _encode(params_text, crlf_params), created)]
        if rng.random() < 0.6:
            mixture_db = f"$MIXTURE\n  mixture_name = {plan.settings.mixture_name}\n$end_MIXTURE\n"
            files.append(_File("mixture_database.dat", mixture_db.encode(), created - 3600))
        empty_dirs = ("MESH", "SOLUT") if rng.random() < 0.7 else ()
        sessions: list[_Session] = []
        if plan.outcome != "not_started":
            restarts = 0
            if plan.outcome != "running" and rng.random() < knobs.restart_share:
                restarts = rng.choices((1, 2, 3), (0.7, 0.22, 0.08))[0]
            started = plan.created_at + timedelta(
                seconds=int(min(86400, rng.lognormvariate(math.log(900), 1.2)))
            )
            for j in range(restarts + 1):
                session = self._session(started, final=j == restarts)
                sessions.append(session)
                gap = min(3 * 86400, rng.lognormvariate(math.log(7200), 1.0))
                started = session.ended + timedelta(seconds=int(gap))
        summary_values: dict[str, float | None] = {"wall": None, "cpu": None, "efficiency": None}
        if sessions and sessions[-1].ending.milestones == len(MILESTONES):
            summary, summary_values = self._summary(sessions[-1])
            sessions[-1] = replace(sessions[-1], summary=summary)
        names = self._log_names(sessions)
        crlf_logs = rng.random() < knobs.crlf_log_share
        folder = f"{self.mess.log_folder}/" if self.mess.log_folder else ""
        for j, (name, session) in enumerate(zip(names, sessions, strict=True)):
            final = j == len(sessions) - 1
            data = _encode(self._log_text(session), crlf_logs)
            if plan.outcome == "running" and final:
                names[j] = folder + name
                files.append(_File(names[j], data, None))
                continue
            dated_gzip = name.startswith("log") and rng.random() < (
                knobs.gzip_share if final else 0.5
            )
            if dated_gzip or self.mess.gzip_any_name:
                name, data = name + ".gz", _gzipped(data)
            names[j] = folder + name
            files.append(_File(names[j], data, _timestamp(session.ended)))
        if (
            sessions
            and plan.outcome != "running"
            and plan.user.copies_scheduler_files
            and not self.mess.on_workstation
        ):
            last = sessions[-1]
            stem = plan.project.case
            name = (
                f"{stem}.e{last.jobid}"
                if plan.user.log_style == "jobname"
                else f"slurm-{last.jobid}.out"
            )
            data = _encode(self._scheduler_text(last), crlf_logs)
            if self.mess.gzip_any_name:
                name, data = name + ".gz", _gzipped(data)
            files.append(_File(folder + name, data, _timestamp(last.ended)))
        truth = self._truth(sessions, params, summary_values, names[-1] if names else None)
        return _RenderedRun(plan.run_path, tuple(files), empty_dirs, truth, truth["status"])

    def _truth(
        self,
        sessions: Sequence[_Session],
        params: dict[str, str],
        summary: dict[str, float | None],
        log_name: str | None,
    ) -> dict[str, Any]:
        """What a correct parser reports, by runs-schema.md and contract-notes.md."""
        plan, project, settings = self.plan, self.plan.project, self.plan.settings
        truth: dict[str, Any] = dict.fromkeys(TRUTH_FIELDS)
        truth.update(
            run_id=run_id_for(plan.run_path),
            cluster=plan.cluster.name,
            user=plan.user.login,
            run_path=plan.run_path,
            solver="avbp",
            created_at=plan.created_at.isoformat(),
            iterations_requested=self.requested,
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
                n_procs=self.n_procs,
                iterations_done=session.last_printed if ending.milestones > _LOOP else 0,
                stage_code=milestone.code,
                stage=milestone.label,
            )
        if ending.grid_info:
            truth.update(
                n_nodes=project.n_nodes, n_cells=project.n_cells, dimension=project.dimension
            )
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


def _gzipped(data: bytes) -> bytes:
    """gzip with no time stamp in the header, so that a seed writes the same bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def _encode(text: str, crlf: bool) -> bytes:
    """UTF-8, with the surrogates that stand for invalid bytes written back as those bytes."""
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8", "surrogateescape")


# ------------------------------------------------------------------ writing


def check_destination(root: Path, truth: Path | None) -> None:
    """Refuse to mix the demo with other files, or to put the truth where a crawl would see it."""
    if root.exists() and not root.is_dir():
        raise DemoArchiveError(f"{root} is a file; give a new or empty directory for the archive")
    if root.is_dir() and any(root.iterdir()):
        raise DemoArchiveError(
            f"{root} is not empty; give a new or empty directory (or delete this one first)"
        )
    if truth is not None and truth.resolve().is_relative_to(root.resolve()):
        raise DemoArchiveError(
            f"the truth file {truth} is inside the archive {root}; put it outside, "
            "where the crawl will not find it"
        )


def _write(root: Path, run: _RenderedRun) -> int:
    """Write one run directory; returns the bytes written."""
    run_dir = root.joinpath(*run.run_path.split("/"))
    run_dir.mkdir(parents=True)
    for name in run.empty_dirs:
        (run_dir / name).mkdir()
    for file in run.files:
        path = run_dir / file.name
        path.parent.mkdir(exist_ok=True)  # logs/, log/, output/
        path.write_bytes(file.content)
        if file.mtime is not None:
            os.utime(path, (file.mtime, file.mtime))
    return sum(len(f.content) for f in run.files)


def generate_archive(
    root: Path,
    runs: int = 200,
    seed: int = 0,
    truth: Path | None = None,
    knobs: DemoKnobs = KNOBS,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write a demo archive of `runs` run directories under `root` (new or empty).

    `truth`, outside the archive, receives one JSON line per run (`TRUTH_FIELDS`).
    `progress` is called with the number of runs written since its last call.
    """
    root, truth = Path(root), Path(truth) if truth is not None else None
    if runs < 1:
        raise DemoArchiveError(f"--runs must be at least 1, not {runs}")
    check_destination(root, truth)
    projects = {user.login: _projects(user, seed) for user in USERS}
    plans = _name_runs([_plan(i, seed, knobs, projects) for i in range(runs)])
    root.mkdir(parents=True, exist_ok=True)
    statuses: Counter[str] = Counter()
    files = written = 0
    truth_lines: list[str] = []
    for plan in plans:
        run = _RunRenderer(plan, seed, knobs).render()
        written += _write(root, run)
        files += len(run.files)
        statuses[run.status] += 1
        if truth is not None:
            truth_lines.append(json.dumps(run.truth, ensure_ascii=False) + "\n")
        if progress is not None:
            progress(1)
    if truth is not None:
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text("".join(truth_lines), encoding="utf-8")
    return DemoSummary(
        root=root,
        runs=runs,
        success=statuses[Status.SUCCESS],
        failed=statuses[Status.FAILED],
        killed=statuses[Status.KILLED],
        running=statuses[Status.RUNNING],
        truncated=statuses[Status.TRUNCATED],
        not_started=statuses[Status.NOT_STARTED],
        files=files,
        bytes=written,
    )
