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
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runcrawler_assets.demo.destination import DemoArchiveError
from runcrawler_assets.demo.files import encoded, posix_time, write_file
from runcrawler_assets.demo.openfoam_cases import OpenFoamCase, plan_case
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
from runcrawler_assets.demo.truth import blank_truth
from runcrawler_assets.solvers.openfoam.dictionaries import flatten


@dataclass(frozen=True)
class GeneratedCase:
    """One written case: its truth, and the phenomena of `PHENOMENA` it got."""

    truth: dict[str, Any]
    phenomena: frozenset[str]


def generate_openfoam_cases(
    root: Path, n: int, seed: int = 0, phenomena: Sequence[Phenomenon] = PHENOMENA
) -> list[GeneratedCase]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`, each with the
    phenomena it drew from `phenomena` (`()`: clean cases); returns their truth and
    phenomena.

    `root` may already hold a demo archive (AVBP runs): the cases go in their own
    `openfoam/` folders; a case folder that already exists is refused.
    """
    root = Path(root)
    if n < 0:
        raise DemoArchiveError(f"--openfoam must be 0 or more, not {n}")
    now = datetime.now()
    generated = []
    for index in range(n):
        case = plan_case(root, index, seed)
        mess_rng = random.Random(f"{seed}:openfoam-phenomena:{index}")
        case.mess = choose_phenomena(case, mess_rng, phenomena)
        case.mess_rng = mess_rng
        generated.append(GeneratedCase(_write_case(root, case, now), case.mess))
    return generated


def write_openfoam_cases(root: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write `n` OpenFOAM cases under `root/<cluster>/<user>/openfoam/`; returns their truth."""
    return [case.truth for case in generate_openfoam_cases(root, n, seed)]


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
