"""The truth of the demo archive: per run, what a correct parser must report.

Why: tests compare the parsers with it, field by field. Its columns are `RunRecord`'s
fields (`TRUTH_FIELDS`, in their order, following docs/contract-notes.md) plus the demo's
own `error_template` and `remedy` (the pattern planted around the run, avbp_remedies.py;
null for the others, OpenFOAM cases too); every run's truth, AVBP or OpenFOAM, starts
from `blank_truth`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runcrawler_assets.records import run_id_for

# The columns of the truth, in RunRecord's order, then the demo's own keys.
TRUTH_FIELDS: tuple[str, ...] = (
    "run_id", "cluster", "user", "run_path", "solver", "solver_version", "created_at",
    "started_at", "ended_at", "host", "n_procs", "n_nodes", "n_cells", "dimension",
    "iterations_requested", "iterations_done", "cpu_time_s", "wall_time_s", "cpu_hours",
    "efficiency", "efficiency_printed", "status", "stage_code", "stage", "error_category",
    "error_message", "mixture_name", "les_model", "artificial_viscosity_model",
    "convection_scheme", "ncell_group", "reactive_flow", "cfl", "n_restarts", "params",
    "log_path", "error_template", "remedy",
)  # fmt: skip


def blank_truth(
    *, run_path: str, cluster: str, user: str, solver: str, created_at: datetime
) -> dict[str, Any]:
    """Every field of `TRUTH_FIELDS` (None), the run's identity filled in."""
    truth: dict[str, Any] = dict.fromkeys(TRUTH_FIELDS)
    truth.update(
        run_id=run_id_for(run_path),
        cluster=cluster,
        user=user,
        run_path=run_path,
        solver=solver,
        created_at=created_at.isoformat(),
    )
    return truth
