"""Efficiency: how fast runs advance, by dimension, process count and cluster; CPU hours spent.

Efficiency (s·proc/(it·node), lower is better) is taken from successful runs
only: a failed run's timings stop early or include time lost in the error,
which makes its efficiency noise. CPU hours count every run, since a failed
run spent them too. Efficiency means a different unit of work for each
solver (an AVBP iteration is not an OpenFOAM time step), so it is compared
within one solver at a time: one table block and one chart per solver.
"""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, Bins, RunFilter, query
from runcrawler_assets.reporting import charts

PROCESS_BINS = Bins((16, 64, 256, 1024, 4096), unit="procs")
# The scatter draws at most this many runs (a deterministic sample beyond).
MAX_POINTS = 20_000
SUCCESSFUL_WITH_EFFICIENCY = (
    "status = 'success' AND efficiency > 0 AND n_procs > 0 AND dimension IS NOT NULL"
)


def efficiency_table(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Dimension × process-count bin × cluster: runs, median and quartiles of efficiency."""
    frame = query(
        con,
        f"""
        SELECT dimension, {PROCESS_BINS.sql("n_procs")} AS procs_bin, cluster,
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
    frame = frame.sort_values(["dimension", "procs_bin", "cluster"], ignore_index=True)
    frame["procs_bin"] = frame["procs_bin"].astype("string")
    return frame


def cluster_medians(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Median efficiency per dimension and cluster, fastest first: the clusters' speed order."""
    return query(
        con,
        f"""
        SELECT dimension, cluster, count(*) AS runs, median(efficiency) AS efficiency_median
        FROM {{runs}} WHERE {SUCCESSFUL_WITH_EFFICIENCY}
        GROUP BY ALL ORDER BY dimension, efficiency_median
        """,
        run_filter,
    )


def efficiency_points(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """At most `MAX_POINTS` successful runs for the scatter, the same ones on every rebuild:
    a million dots cost seconds to draw and read no better than a sample of them."""
    return query(
        con,
        f"SELECT dimension, cluster, n_procs, efficiency FROM {{runs}} "
        f"WHERE {SUCCESSFUL_WITH_EFFICIENCY} ORDER BY hash(run_id), run_id LIMIT $max_points",
        run_filter,
        max_points=MAX_POINTS,
    )


def dimension_medians(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.Series:
    """Median efficiency per dimension over all clusters, indexed by dimension."""
    frame = query(
        con,
        f"SELECT dimension, median(efficiency) AS efficiency_median FROM {{runs}} "
        f"WHERE {SUCCESSFUL_WITH_EFFICIENCY} GROUP BY ALL",
        run_filter,
    )
    return frame.set_index("dimension")["efficiency_median"]


def cpu_hours_by_user_cluster(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> pd.DataFrame:
    """CPU hours per user and cluster, every run counted (failed runs spent them too)."""
    return query(
        con,
        """
        SELECT "user", cluster, count(*) AS runs,
               round(sum(coalesce(cpu_hours, 0)), 1) AS cpu_hours,
               round(100 * sum(coalesce(cpu_hours, 0))
                     / nullif(sum(sum(coalesce(cpu_hours, 0))) OVER (), 0), 1) AS share_pct
        FROM {runs} GROUP BY ALL ORDER BY cpu_hours DESC, "user", cluster
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
        """
        SELECT coalesce(timing_source, 'none') AS timing_source, count(*) AS runs,
               round(sum(coalesce(cpu_hours, 0)), 1) AS cpu_hours
        FROM {runs} WHERE status NOT IN ('running', 'not_started')
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


def _findings(medians: pd.DataFrame, overall: pd.Series) -> list[str]:
    if medians.empty:
        return ["No successful run with a known efficiency matches the filter."]
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
    if {2, 3} <= set(overall.index):
        findings.append(
            f"3D runs need {overall[3] / overall[2]:.1f}× the time per node and iteration "
            "of 2D runs (medians over all clusters)."
        )
    return findings


def _hours_finding(hours: pd.DataFrame) -> list[str]:
    if hours.empty or hours["cpu_hours"].sum() <= 0:
        return []
    top = hours.iloc[0]
    return [
        f"{top['user']} on {top['cluster']} used the most CPU hours: "
        f"{top['cpu_hours']:,.0f} h ({top['share_pct']:.0f} % of all)."
    ]


def solvers_with_efficiency(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> list[str]:
    """The solvers whose successful runs have an efficiency, most runs first."""
    frame = query(
        con,
        f"SELECT solver, count(*) AS runs FROM {{runs}} WHERE {SUCCESSFUL_WITH_EFFICIENCY} "
        "GROUP BY ALL ORDER BY runs DESC, solver",
        run_filter,
    )
    return list(frame["solver"])


def _per_solver(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, solver: str, first: bool
) -> tuple[pd.DataFrame, pd.DataFrame, bytes, list[str]]:
    """One solver's efficiency table, cluster medians, chart and findings."""
    only = replace(run_filter, solver=solver)
    table, medians = efficiency_table(con, only), cluster_medians(con, only)
    points = efficiency_points(con, only)
    runs = int(medians["runs"].sum())
    dots = "runs" if len(points) == runs else f"a sample of {len(points):,} of {runs:,} runs"
    chart = charts.efficiency_vs_procs(
        points,
        table,
        f"{solver}: efficiency against MPI processes (successful runs; dots = {dots})",
    )
    findings = _findings(medians, dimension_medians(con, only))
    prefix = "" if first else f"{solver}: "
    for frame in (table, medians):
        frame.insert(0, "solver", solver)
    return table, medians, chart, [prefix + f for f in findings]


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    solvers = solvers_with_efficiency(con, run_filter) or ["avbp"]
    parts = [_per_solver(con, run_filter, s, i == 0) for i, s in enumerate(solvers)]
    hours = cpu_hours_by_user_cluster(con, run_filter)
    basis = timing_basis(con, run_filter)
    stacked = hours.pivot_table(
        index="user", columns="cluster", values="cpu_hours", aggfunc="sum", fill_value=0
    )
    stacked = stacked.loc[stacked.sum(axis=1).sort_values(ascending=False).index]
    efficiency_charts = {
        "efficiency_vs_procs.png" if i == 0 else f"efficiency_vs_procs_{solver}.png": part[2]
        for i, (solver, part) in enumerate(zip(solvers, parts, strict=True))
    }
    return AnalysisResult(
        tables={
            "efficiency": pd.concat([p[0] for p in parts], ignore_index=True),
            "efficiency_by_cluster": pd.concat([p[1] for p in parts], ignore_index=True),
            "cpu_hours_by_user_cluster": hours,
            "cpu_hours_by_timing_source": basis,
        },
        charts={
            **efficiency_charts,
            "cpu_hours_by_user_cluster.png": charts.stacked_bars(
                stacked, "CPU hours per user and cluster", "user", "CPU hours [h]", "cluster"
            ),
        },
        findings=[f for p in parts for f in p[3]] + _hours_finding(hours) + _timing_finding(basis),
    )


ANALYSIS = Analysis(
    name="efficiency",
    title="Efficiency",
    description="Efficiency (s·proc/(it·node), lower is better; successful runs only) by "
    "dimension, MPI process count and cluster, and CPU hours per user and cluster.",
    compute=compute,
)
