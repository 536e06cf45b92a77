"""Efficiency: how fast runs advance, by dimension, process count and cluster; CPU hours spent.

Efficiency (s·proc/(it·node), lower is better) is taken from successful runs
only: a failed run's timings stop early or include time lost in the error,
which makes its efficiency noise. CPU hours count every run, since a failed
run spent them too. Efficiency means a different unit of work for each
solver (an AVBP iteration is not an OpenFOAM time step), so it is compared
within one solver at a time: every table has a `solver` column, solvers with
the most successful runs first, and the charts draw one figure per solver.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    MEASURED,
    Analysis,
    AnalysisResult,
    Bins,
    RunFilter,
    exact_sum,
    query,
    share_pct,
)

PROCESS_BINS = Bins((16, 64, 256, 1024, 4096), unit="procs")
# The scatter draws at most this many runs (a deterministic sample beyond; DuckDB's bounded
# `min_by` that picks them takes fewer than a million).
MAX_POINTS = 20_000
OVERSAMPLE = 1.25
SUCCESSFUL_WITH_EFFICIENCY = f"{MEASURED} AND n_procs > 0 AND dimension IS NOT NULL"


def measured_runs(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> dict[str, int]:
    """The solvers whose successful runs have an efficiency, with how many, most first."""
    frame = query(
        con,
        f"SELECT solver, count(*) AS runs FROM {{runs}} WHERE {SUCCESSFUL_WITH_EFFICIENCY} "
        "GROUP BY ALL ORDER BY runs DESC, solver",
        run_filter,
    )
    return dict(zip(frame["solver"], frame["runs"].astype(int), strict=True))


def _in_solver_order(frame: pd.DataFrame, solvers: list[str], by: list[str]) -> pd.DataFrame:
    """`frame` sorted by solver (in the order given), then by `by`."""
    rank = frame["solver"].map({solver: i for i, solver in enumerate(solvers)})
    order = frame.assign(_rank=rank).sort_values(["_rank", *by], kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def efficiency_table(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, solvers: list[str]
) -> pd.DataFrame:
    """Solver × dimension × process-count bin × cluster: runs, median and quartiles."""
    frame = query(
        con,
        f"""
        SELECT solver, dimension, {PROCESS_BINS.sql("n_procs")} AS procs_bin, cluster,
               count(*) AS runs, median(n_procs) AS procs_median,
               quantile_cont(efficiency, 0.25) AS efficiency_q1,
               median(efficiency) AS efficiency_median,
               quantile_cont(efficiency, 0.75) AS efficiency_q3
        FROM {{runs}} WHERE {SUCCESSFUL_WITH_EFFICIENCY}
        GROUP BY ALL
        """,
        run_filter,
    )
    frame["procs_bin"] = pd.Categorical(frame["procs_bin"], categories=PROCESS_BINS.labels())
    frame = _in_solver_order(frame, solvers, ["dimension", "procs_bin", "cluster"])
    frame["procs_bin"] = frame["procs_bin"].astype("string")
    return frame


def efficiency_medians(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, solvers: list[str], by: list[str]
) -> pd.DataFrame:
    """Successful runs and their median efficiency per solver, dimension and `by` (trusted
    column names), fastest first: per cluster, the clusters' speed order."""
    columns = ", ".join(["solver", "dimension", *by])
    frame = query(
        con,
        f"SELECT {columns}, count(*) AS runs, median(efficiency) AS efficiency_median "
        f"FROM {{runs}} WHERE {SUCCESSFUL_WITH_EFFICIENCY} GROUP BY ALL",
        run_filter,
    )
    return _in_solver_order(frame, solvers, ["dimension", "efficiency_median", *by])


def efficiency_points(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, measured: dict[str, int]
) -> pd.DataFrame:
    """At most `MAX_POINTS` successful runs per solver for the scatter, the same ones on every
    rebuild: a million dots cost seconds to draw and read no better than a sample of them;
    `measured`: the runs each solver has (`measured_runs`).

    The sample is the runs of lowest `hash(run_id)` (ties: `run_id`), kept by a bounded
    `min_by` per solver rather than a window over every run. The hashes are spread evenly,
    so a solver's sample lies among the runs of the lowest `OVERSAMPLE` × `MAX_POINTS` / n
    share of them: only those are kept for `min_by` (a million runs: 0.08 s instead of
    0.17 s), all of them should that share hold too few."""
    solvers = list(measured)
    sql = f"""
        WITH sampled AS (
            SELECT solver, unnest(min_by(
                struct_pack(h := hash(run_id), run_id, dimension, cluster, n_procs, efficiency),
                (hash(run_id), run_id), $max_points), recursive := true)
            FROM {{runs}} WHERE {SUCCESSFUL_WITH_EFFICIENCY}
                AND hash(run_id) / $hashes <= list_extract($shares, list_position($solvers, solver))
            GROUP BY solver
        )
        SELECT solver, dimension, cluster, n_procs, efficiency FROM sampled
        ORDER BY solver, h, run_id
    """

    def sample(shares: list[float]) -> pd.DataFrame:
        params = {"max_points": MAX_POINTS, "hashes": 2.0**64, "solvers": solvers}
        return query(con, sql, run_filter, shares=shares, **params)

    points = sample([min(1.0, OVERSAMPLE * MAX_POINTS / n) for n in measured.values()])
    sampled = points["solver"].value_counts().to_dict()
    if any(sampled.get(solver, 0) < min(n, MAX_POINTS) for solver, n in measured.items()):
        points = sample([1.0] * len(solvers))
    return points


def cpu_hours_by_user_cluster(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> pd.DataFrame:
    """CPU hours per user and cluster, every run counted (failed runs spent them too)."""
    return query(
        con,
        f"""
        SELECT "user", cluster, count(*) AS runs,
               {exact_sum("cpu_hours")} AS cpu_hours,
               {share_pct("sum(coalesce(cpu_hours, 0))")} AS share_pct
        FROM {{runs}} GROUP BY ALL ORDER BY cpu_hours DESC, "user", cluster
        """,
        run_filter,
    )


def timing_basis(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Runs and CPU hours by what their duration rests on (`timing_source`; NULL: none known).

    A manager must know how much of the CPU hours rests on a file's modification
    time (a last resort: an archive is a copy) rather than on what was printed.
    """
    return query(
        con,
        f"""
        SELECT coalesce(timing_source, 'none') AS timing_source, count(*) AS runs,
               {exact_sum("cpu_hours")} AS cpu_hours
        FROM {{runs}} WHERE status NOT IN ('running', 'not_started')
        GROUP BY ALL ORDER BY runs DESC, timing_source
        """,
        run_filter,
    )


def _timing_finding(basis: pd.DataFrame) -> list[str]:
    """How many runs' times rest on file times, and how many have none at all."""
    counts = dict(zip(basis["timing_source"], basis["runs"], strict=True))
    hours = dict(zip(basis["timing_source"], basis["cpu_hours"], strict=True))
    total, total_hours = sum(counts.values()), sum(hours.values())
    if not total:
        return []
    mtime, unknown = counts.get("file_mtime", 0), counts.get("none", 0)
    share = 100 * hours.get("file_mtime", 0) / total_hours if total_hours else 0.0
    return [
        f"{mtime:,} of {total:,} finished runs have times resting on a log's modification "
        f"time, not on what the solver or the scheduler printed ({share:.0f} % of the CPU "
        f"hours); {unknown:,} have no known duration."
    ]


def _solver_findings(medians: pd.DataFrame, overall: pd.DataFrame) -> list[str]:
    """One solver's clusters compared per dimension, and 3D against 2D."""
    findings = []
    for dim, group in medians.groupby("dimension"):
        fastest, slowest = group.iloc[0], group.iloc[-1]
        if len(group) > 1:
            ratio = slowest["efficiency_median"] / fastest["efficiency_median"]
            findings.append(
                f"In {int(dim)}D, {fastest['cluster']} is the most efficient cluster "
                f"(median {fastest['efficiency_median']:.3g} s·proc/(it·node)); "
                f"{slowest['cluster']} needs {ratio:.1f}× as much."
            )
    by_dimension = overall.set_index("dimension")["efficiency_median"]
    if {2, 3} <= set(by_dimension.index):
        findings.append(
            f"3D runs need {by_dimension[3] / by_dimension[2]:.1f}× the time per node and "
            "iteration of 2D runs (medians over all clusters)."
        )
    return findings


def _findings(solvers: list[str], medians: pd.DataFrame, overall: pd.DataFrame) -> list[str]:
    """Per solver, its findings; the first solver's unprefixed, as most readers have only one."""
    if not solvers:
        return ["No successful run with a known efficiency matches the filter."]
    return [
        ("" if i == 0 else f"{solver}: ") + finding
        for i, solver in enumerate(solvers)
        for finding in _solver_findings(
            medians[medians["solver"] == solver], overall[overall["solver"] == solver]
        )
    ]


def _hours_finding(hours: pd.DataFrame) -> list[str]:
    if hours.empty or hours["cpu_hours"].sum() <= 0:
        return []
    top = hours.iloc[0]
    return [
        f"{top['user']} on {top['cluster']} used the most CPU hours: "
        f"{top['cpu_hours']:,.0f} h ({top['share_pct']:.0f} % of all)."
    ]


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    measured = measured_runs(con, run_filter)
    solvers = list(measured)
    medians = efficiency_medians(con, run_filter, solvers, ["cluster"])
    overall = efficiency_medians(con, run_filter, solvers, [])
    hours = cpu_hours_by_user_cluster(con, run_filter)
    basis = timing_basis(con, run_filter)
    return AnalysisResult(
        tables={
            "efficiency": efficiency_table(con, run_filter, solvers),
            "efficiency_by_cluster": medians,
            "cpu_hours_by_user_cluster": hours,
            "cpu_hours_by_timing_source": basis,
            "efficiency_points": efficiency_points(con, run_filter, measured),
        },
        findings=_findings(solvers, medians, overall)
        + _hours_finding(hours)
        + _timing_finding(basis),
    )


ANALYSIS = Analysis(
    name="efficiency",
    title="Efficiency",
    description="Efficiency (s·proc/(it·node), lower is better; successful runs only) by "
    "dimension, MPI process count and cluster, and CPU hours per user and cluster.",
    compute=compute,
    tables=(
        "efficiency",
        "efficiency_by_cluster",
        "cpu_hours_by_user_cluster",
        "cpu_hours_by_timing_source",
    ),
    chart_tables=("efficiency_points",),
)
