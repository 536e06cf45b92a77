"""The demo's team: the clusters it runs on, its users and their habits, their projects.

Why: the analytics look for how people really work (who runs where, when, how big,
with which settings, how their logs look), so the demo's users are written out one by
one, each habit by name, and their projects are drawn once per user so that runs share
meshes and folders as real ones do. `knobs.py` holds the effects; this module the people.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


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
    Cluster(
        name="kraken",
        speed=1.0,
        time_limit_s=24 * 3600,
        cores_per_node=36,
        host_format="kraken-node{n:04d}",
        first_jobid=2_000_000,
    ),
    Cluster(
        name="irene",
        speed=1.35,
        time_limit_s=24 * 3600,
        cores_per_node=48,
        host_format="irene{n:04d}",
        first_jobid=8_000_000,
    ),
    Cluster(
        name="jean-zay",
        speed=0.8,
        time_limit_s=20 * 3600,
        cores_per_node=40,
        host_format="r{a}i{b}n{c}",
        first_jobid=1_500_000,
    ),
    Cluster(
        name="topaze",
        speed=0.6,
        time_limit_s=24 * 3600,
        cores_per_node=128,
        host_format="topaze{n:04d}",
        first_jobid=400_000,
    ),
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
WORKWEEK = (1.0, 1.0, 1.0, 1.0, 0.8, 0.03, 0.03)

USERS: tuple[UserHabits, ...] = (
    UserHabits(
        login="jdupont",
        activity=1.3,
        home_cluster="kraken",
        home_share=0.75,
        launch_hour=10.0,
        launch_spread=2.5,
        weekday_weights=WORKWEEK,
        share_3d=0.6,
        nodes_per_proc=9000,
        favourite_procs=288,
        ncell_groups=(100,),
        les_models=MappingProxyType({"wale": 0.7, "sigma": 0.2, "smago": 0.1}),
        artvisc_models=MappingProxyType({"colin": 0.8, "jameson": 0.2}),
        cfl_values=("0.7", "0.7", "0.7", "0.8"),
        failure_factor=1.0,
        log_style="avbp.o",
        copies_scheduler_files=True,
        crlf_share=0.0,
        keyword_case="spec",
        run_dir_format="run_{k:03d}",
    ),
    UserHabits(
        login="m.garcia",
        activity=1.0,
        home_cluster="irene",
        home_share=0.8,
        launch_hour=11.0,
        launch_spread=3.0,
        weekday_weights=(1.0, 1.0, 1.0, 1.0, 0.3, 0.03, 0.03),
        share_3d=0.8,
        nodes_per_proc=6000,
        favourite_procs=480,
        ncell_groups=(50, 50, 100),
        les_models=MappingProxyType({"sigma": 0.6, "wale": 0.4}),
        artvisc_models=MappingProxyType({"jameson": 0.6, "no_artvisc": 0.2, "colin": 0.2}),
        cfl_values=("0.8", "0.85", "0.9", "0.95"),
        failure_factor=1.2,
        log_style="jobname",
        copies_scheduler_files=True,
        crlf_share=0.0,
        keyword_case="lower",
        run_dir_format="{case}_{k:03d}",
    ),
    UserHabits(
        login="o'neil",
        activity=0.8,
        home_cluster="jean-zay",
        home_share=0.7,
        launch_hour=22.0,
        launch_spread=2.5,
        weekday_weights=(0.8, 0.8, 0.8, 0.9, 1.0, 0.7, 0.6),
        share_3d=0.5,
        nodes_per_proc=5000,
        favourite_procs=160,
        ncell_groups=(200,),
        les_models=MappingProxyType({"smago": 0.6, "no_model": 0.4}),
        artvisc_models=MappingProxyType({"no_artvisc": 0.5, "jameson": 0.5}),
        cfl_values=("0.85", "0.9", "0.95", "1.0"),
        failure_factor=1.6,
        log_style="dated",
        copies_scheduler_files=False,
        crlf_share=0.3,
        keyword_case="upper",
        run_dir_format="RUN{k:02d}",
    ),
    UserHabits(
        login="le-goff",
        activity=0.9,
        home_cluster="topaze",
        home_share=0.6,
        launch_hour=9.0,
        launch_spread=1.5,
        weekday_weights=WORKWEEK,
        share_3d=0.2,
        nodes_per_proc=1500,
        favourite_procs=256,
        ncell_groups=(500, 1000),
        les_models=MappingProxyType({"no_model": 0.6, "wale": 0.4}),
        artvisc_models=MappingProxyType({"colin": 1.0}),
        cfl_values=("0.5", "0.6", "0.7"),
        failure_factor=0.6,
        log_style="job.out",
        copies_scheduler_files=True,
        crlf_share=0.0,
        keyword_case="spec",
        run_dir_format="calc_{k:03d}",
    ),
    UserHabits(
        login="jérôme",
        activity=1.1,
        home_cluster="kraken",
        home_share=0.65,
        launch_hour=15.0,
        launch_spread=2.5,
        weekday_weights=(0.3, 1.0, 1.0, 1.0, 1.0, 0.8, 0.03),
        share_3d=0.7,
        nodes_per_proc=12000,
        favourite_procs=144,
        ncell_groups=(100, 150),
        les_models=MappingProxyType({"wale": 0.5, "sigma": 0.5}),
        artvisc_models=MappingProxyType({"colin": 0.7, "jameson": 0.3}),
        cfl_values=("0.7", "0.75", "0.8", "0.85"),
        failure_factor=0.8,
        log_style="avbp_log.txt",
        copies_scheduler_files=False,
        crlf_share=0.0,
        keyword_case="spec",
        run_dir_format="essai_{k:03d}",
    ),
    UserHabits(
        login="li wei",
        activity=0.7,
        home_cluster="topaze",
        home_share=0.7,
        launch_hour=14.0,
        launch_spread=5.0,
        weekday_weights=(0.9, 1.0, 1.0, 1.0, 0.9, 0.6, 0.6),
        share_3d=0.5,
        nodes_per_proc=8000,
        favourite_procs=512,
        ncell_groups=(100, 200),
        les_models=MappingProxyType({"wale": 0.8, "smago": 0.2}),
        artvisc_models=MappingProxyType({"jameson": 0.6, "colin": 0.4}),
        cfl_values=("0.7", "0.8", "0.9"),
        failure_factor=1.0,
        log_style="dated",
        copies_scheduler_files=True,
        crlf_share=0.6,
        keyword_case="lower",
        run_dir_format="run {k}",
    ),
    UserHabits(
        login="b.nguyen",
        activity=0.9,
        home_cluster="jean-zay",
        home_share=0.8,
        launch_hour=10.0,
        launch_spread=3.0,
        weekday_weights=WORKWEEK,
        share_3d=0.9,
        nodes_per_proc=10000,
        favourite_procs=800,
        ncell_groups=(100, 200, 400),
        les_models=MappingProxyType({"sigma": 0.5, "wale": 0.5}),
        artvisc_models=MappingProxyType({"colin": 0.5, "jameson": 0.5}),
        cfl_values=("0.7", "0.8", "0.9", "0.95"),
        failure_factor=1.3,
        log_style="jobname",
        copies_scheduler_files=True,
        crlf_share=0.05,
        keyword_case="spec",
        run_dir_format="run_{k:04d}",
    ),
)


# ------------------------------------------------------------------ projects


@dataclass(frozen=True)
class Project:
    """A folder of runs sharing a case, a mesh and a mixture."""

    folders: tuple[str, ...]
    case: str
    dimension: int
    n_nodes: int
    n_cells: int
    mixture: str


CASES: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        3: ("burner", "swirler", "combustor_sector", "injector", "pipe_jet", "aero_engine"),
        2: ("flame_2d", "channel_2d", "cavity", "bluff_body", "airfoil"),
    }
)
REACTIVE_MIXTURES = ("CH4-AIR-2S-BFER", "KERO-LUCHE-2S", "H2-AIR-12S-BOIVIN", "C3H8-AIR-2S-CM2")
_FOLDER_TOPS = ("PhD", "projects", "ANR_FLAME", "campaign_2025", "EU-H2 burner", "études", "tests")
_FOLDER_LEAVES = ("LES", "cold_flow", "phi0.8", "mesh_fine", "CFL_study", "hot", "sweep")


def projects_of(user: UserHabits, seed: int) -> tuple[Project, ...]:
    """The user's projects, drawn once per user so that runs share meshes and folders."""
    rng = random.Random(f"{seed}:projects:{user.login}")
    projects: list[Project] = []
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
        projects.append(Project(folders, case, dimension, n_nodes, n_cells, mixture))
    return tuple(projects)
