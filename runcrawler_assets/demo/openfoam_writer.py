"""Realistic OpenFOAM cases for the demo archive, and the truth a correct parser must read.

Why: a mixed archive (AVBP runs and OpenFOAM cases, one `runs` table) needs OpenFOAM
cases that look like real ones, and tests need to know what is in them.
`write_openfoam_cases` writes N case directories under `<root>/<cluster>/<user>/openfoam/`
(the clusters and users of team.py) and returns one truth dict per case, named after
`RunRecord`'s fields (truth.py) and following docs/contract-notes.md (OpenFOAM section),
as `generate_archive`'s truth does; `generate_openfoam_cases` also says which phenomena
of real logs (openfoam_phenomena.py) each case got, for tests.

Each case has its dictionaries (openfoam_dictionaries.py) and the logs of its pipeline
(openfoam_logs.py). Everything is drawn from `random.Random` seeded per case, except the
solver log of a `running` case, whose modification time is the real time of writing.
The phenomena draw from a second stream of their own, so that a phenomenon whose rule is
"truth unchanged" really leaves the clean truth as it was. Plain Python.

A case whose solver ran did so in one batch job (its id from the archive's `JobIds`, as
the AVBP runs'); meshing was done interactively, and a case under `C:\\Users` ran on a
workstation, so neither has a job in the accounting dumps.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runcrawler_assets.demo.accounting import Accounting
from runcrawler_assets.demo.destination import DemoArchiveError
from runcrawler_assets.demo.files import encoded, posix_time, write_file
from runcrawler_assets.demo.jobs import Job, JobIds, final_kind, job_id_near, shown_job_id
from runcrawler_assets.demo.openfoam_cases import SOLVER_OUTCOMES, OpenFoamCase, plan_case
from runcrawler_assets.demo.openfoam_dictionaries import (
    dictionary_path,
    draw_dictionaries,
    edit_after_run,
    render_dictionary,
    turbulence_model,
)
from runcrawler_assets.demo.openfoam_logs import pipeline_logs
from runcrawler_assets.demo.openfoam_mess import final_files
from runcrawler_assets.demo.openfoam_phenomena import PHENOMENA, Phenomenon, choose_phenomena
from runcrawler_assets.demo.team import CLUSTERS
from runcrawler_assets.demo.truth import blank_truth
from runcrawler_assets.solvers.openfoam.dictionaries import flatten


@dataclass(frozen=True)
class GeneratedCase:
    """One written case: its truth, and the phenomena of `PHENOMENA` it got."""

    truth: dict[str, Any]
    phenomena: frozenset[str]


def generate_openfoam_cases(
    root: Path,
    n: int,
    seed: int = 0,
    phenomena: Sequence[Phenomenon] = PHENOMENA,
    job_ids: JobIds | None = None,
    accounting: Accounting | None = None,
) -> list[GeneratedCase]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`, each with the
    phenomena it drew from `phenomena` (`()`: clean cases); returns their truth and
    phenomena.

    `root` may already hold a demo archive (AVBP runs): the cases go in their own
    `openfoam/` folders; a case folder that already exists is refused. `job_ids`: the
    archive's job ids so far (default: the accounting's, else new); `accounting`
    records each case's job and adds its `accounting` to the truth.
    """
    root = Path(root)
    if n < 0:
        raise DemoArchiveError(f"--openfoam must be 0 or more, not {n}")
    if job_ids is None:
        job_ids = accounting.job_ids if accounting is not None else JobIds()
    now = datetime.now()
    generated = []
    for index in range(n):
        case = plan_case(root, index, seed)
        mess_rng = random.Random(f"{seed}:openfoam-phenomena:{index}")
        case.mess = choose_phenomena(case, mess_rng, phenomena)
        case.mess_rng = mess_rng
        if case.outcome in SOLVER_OUTCOMES:
            cluster = next(c for c in CLUSTERS if c.name == case.cluster)
            jitter = random.Random(f"{seed}:openfoam-job:{index}").randrange(40)
            case.job_id = job_ids.take(cluster.name, job_id_near(cluster, case.created_at, jitter))
        truth = _write_case(root, case, now)
        if accounting is not None:
            truth["accounting"] = accounting.add_run(truth, *_job_of(case, truth))
        generated.append(GeneratedCase(truth, case.mess))
    return generated


def write_openfoam_cases(
    root: Path,
    n: int,
    seed: int = 0,
    job_ids: JobIds | None = None,
    accounting: Accounting | None = None,
) -> list[dict[str, Any]]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`; returns their truth."""
    cases = generate_openfoam_cases(root, n, seed, job_ids=job_ids, accounting=accounting)
    return [case.truth for case in cases]


def _job_of(case: OpenFoamCase, truth: dict[str, Any]) -> tuple[tuple[Job, ...], int | None]:
    """The case's batch job (none when meshing failed, the solver never started or the case
    ran on Windows) and its id when a file names it (`slurm-<id>.out`)."""
    if case.job_id is None or case.solver_started is None:
        return (), None
    in_names = any(name.startswith("slurm-") for name in case.files)
    shown = shown_job_id(case.job_id, in_names, (text for text, _ in case.files.values()))
    if case.has("windows_paths"):
        return (), shown
    ended = truth["ended_at"]
    job = Job(
        job_id=case.job_id,
        cluster=next(c for c in CLUSTERS if c.name == case.cluster),
        user=case.user,
        run_path=case.run_path,
        name=case.run_path.rpartition("/")[2],
        step_name=case.application,
        host=case.host,
        started=case.solver_started,
        ended=datetime.fromisoformat(ended) if ended else None,
        n_procs=case.n_procs,
        kind=final_kind(truth),
        planned_s=case.planned_s or 0.0,
        # What one task holds: its share of the mesh (~1.5 kB a cell) and the solver.
        rss_mb=100 + 0.0015 * case.n_cells / case.n_procs,
    )
    return (job,), shown


def _write_case(root: Path, case: OpenFoamCase, now: datetime) -> dict[str, Any]:
    """Write one case directory and return its truth."""
    rng = case.rng
    delta_t = 1e-4 if case.transient else 1.0
    requested = rng.choice((100, 150, 200, 300))
    dicts = draw_dictionaries(case, requested, delta_t)
    edit_after_run(case, dicts)
    truth = blank_truth(
        run_path=case.run_path,
        cluster=case.cluster,
        user=case.user,
        solver="openfoam",
        created_at=case.created_at,
    )
    truth.update(
        iterations_requested=requested,
        iterations_done=0,
        les_model=turbulence_model(dicts),
        convection_scheme=" ".join(dicts["fvSchemes"]["divSchemes"]["div(phi,U)"].lower().split()),
        n_restarts=0,
        params={k: v for name, d in dicts.items() for k, v in flatten(d, name).items()},
        n_cells=case.n_cells,
        n_nodes=case.n_points,
        dimension=3,
        # The program that ran (its `Exec`), whatever controlDict says now; no run, no program.
        application=None,
        # A case whose solver never ran still printed its version in the pipeline's banners.
        solver_version=case.release.version,
    )
    pipeline_logs(case, truth, requested, delta_t)
    files, deciding = final_files(case)
    if deciding is not None:
        truth["log_path"] = f"{case.run_path}/{deciding}"
    run_dir = root.joinpath(*case.run_path.split("/"))
    # The dictionaries were last written when the case was set up; the logs at their own
    # times, or now (a running case).
    for name, entries in dicts.items():
        content = encoded(render_dictionary(name, entries))
        write_file(run_dir / dictionary_path(name), content, posix_time(case.created_at))
    for name, (content, mtime) in files.items():
        stamp = posix_time(mtime) if mtime is not None else now.timestamp()
        write_file(run_dir.joinpath(*name.split("/")), content, stamp)
    return truth
