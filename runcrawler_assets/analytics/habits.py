"""HPC habits: how many processes users ask for, their `ncell_group`, mesh nodes per process.

Beyond the figures, it flags the habits an HPC expert would point out, with
rules of thumb kept as named constants so the team can tune them: too few
mesh nodes per process (communication dominates), `ncell_group` outside the
usual range (cache use), runs repeatedly killed at the time limit (wall time
asked too short), long restart chains. The distributions the charts show
(box statistics per user, a histogram of mesh nodes per process) are
computed here in SQL, so a chart never needs one row per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import NO_RUNS, Analysis, AnalysisResult, RunFilter, query

# Below this many mesh nodes per MPI process, AVBP spends more time exchanging
# halos than computing: adding processes wastes CPU hours.
MIN_NODES_PER_PROCESS = 5_000
# ncell_group outside this range usually hurts cache use on CPU clusters.
NCELL_GROUP_RANGE = (50, 500)
# A restart chain this long suggests the wall time asked for is too short.
MANY_RESTARTS = 3
# A habit is flagged for a user on a cluster when at least this share of
# their runs (and at least MIN_FLAGGED_RUNS runs) show it.
FLAG_SHARE = 0.25
MIN_FLAGGED_RUNS = 5
# The per-run quantities whose distribution per user is drawn as box plots.
DISTRIBUTIONS: tuple[str, ...] = ("n_procs", "ncell_group")
HISTOGRAM_BINS = 29


@dataclass(frozen=True)
class Habit:
    """A habit worth a word with the user: its name, the per-run SQL test, the advice."""

    name: str
    condition_sql: str
    advice: str


HABITS: tuple[Habit, ...] = (
    Habit(
        "too few mesh nodes per process",
        f"n_nodes / n_procs < {MIN_NODES_PER_PROCESS}",
        f"use fewer processes: below {MIN_NODES_PER_PROCESS:,} nodes per process "
        "communication dominates and CPU hours are wasted",
    ),
    Habit(
        "ncell_group outside the usual range",
        f"ncell_group NOT BETWEEN {NCELL_GROUP_RANGE[0]} AND {NCELL_GROUP_RANGE[1]}",
        f"set ncell_group between {NCELL_GROUP_RANGE[0]} and {NCELL_GROUP_RANGE[1]} "
        "unless a benchmark says otherwise",
    ),
    Habit(
        "killed at the time limit",
        "error_category = 'time_limit'",
        "ask for a longer wall time, or save and restart before the limit",
    ),
    Habit(
        "long restart chains",
        f"n_restarts >= {MANY_RESTARTS}",
        "ask for a longer wall time so a run needs fewer restarts",
    ),
)


def habits_by_user_cluster(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per user and cluster: process counts, ncell_group, nodes per process, habit shares."""
    shares = ",\n".join(
        f"round(100 * avg(CASE WHEN {h.condition_sql} THEN 1.0 ELSE 0.0 END), 1) "
        f'AS "{h.name} (% of runs)"'
        for h in HABITS
    )
    return query(
        con,
        f"""
        SELECT "user", cluster, count(*) AS runs,
               median(n_procs) AS median_procs, min(n_procs) AS min_procs,
               max(n_procs) AS max_procs,
               mode(ncell_group ORDER BY ncell_group) AS usual_ncell_group,  -- ties: the smallest
               min(ncell_group) AS min_ncell_group, max(ncell_group) AS max_ncell_group,
               round(median(n_nodes / n_procs)) AS median_nodes_per_process,
               {shares}
        FROM {{runs}} GROUP BY ALL ORDER BY "user", cluster
        """,
        run_filter,
    )


def habit_flags(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per (user, cluster, habit) that crosses the flagging thresholds, with advice:
    most runs concerned first, then by user, habit (in `HABITS` order) and cluster.

    Every habit is counted in one scan of the runs (a million runs: one scan, not four)."""
    counts = ", ".join(f'count(*) FILTER (WHERE {h.condition_sql}) AS "{h.name}"' for h in HABITS)
    names = ", ".join(f'"{h.name}"' for h in HABITS)
    return query(
        con,
        f"""
        WITH counted AS (
            SELECT "user", cluster, count(*) AS runs, {counts} FROM {{runs}} GROUP BY ALL
        ),
        concerned AS (UNPIVOT counted ON {names} INTO NAME habit VALUE runs_concerned),
        advised AS (SELECT unnest($habits) AS habit, unnest($advice) AS advice,
                           generate_subscripts($habits, 1) AS rank)
        SELECT "user", cluster, habit, runs_concerned, runs,
               round(100 * runs_concerned / runs, 1) AS share_pct, advice
        FROM concerned JOIN advised USING (habit)
        WHERE runs_concerned >= $min_runs AND runs_concerned >= $share * runs
        ORDER BY runs_concerned DESC, "user", rank, cluster
        """,
        run_filter,
        habits=[h.name for h in HABITS],
        advice=[h.advice for h in HABITS],
        min_runs=MIN_FLAGGED_RUNS,
        share=FLAG_SHARE,
    )


def box_statistics(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, column: str
) -> pd.DataFrame:
    """Per user, the box plot of `column` (a trusted column name): the runs it summarises,
    quartiles, whiskers at 1.5 IQR and outliers.

    Quartiles interpolate (`quantile_cont`) as matplotlib's `boxplot` does; each
    distinct outlier is listed once, since repeated marks would overlap anyway.
    Users come in order of their median; `runs` lets a chart keep the busiest.
    """
    return query(
        con,
        f"""
        WITH sized AS (
            SELECT "user", {column} AS v FROM {{runs}}
            WHERE "user" IS NOT NULL AND {column} IS NOT NULL
        ),
        quartiles AS (
            SELECT "user", q[1] AS q1, q[2] AS med, q[3] AS q3,
                   q[1] - 1.5 * (q[3] - q[1]) AS low_fence, q[3] + 1.5 * (q[3] - q[1]) AS high_fence
            FROM (SELECT "user", quantile_cont(v, [0.25, 0.5, 0.75]) AS q FROM sized GROUP BY ALL)
        )
        SELECT $quantity AS quantity, "user", count(*) AS runs, q1, med, q3,
               least(q1, min(v) FILTER (WHERE v >= low_fence)) AS whislo,
               greatest(q3, max(v) FILTER (WHERE v <= high_fence)) AS whishi,
               coalesce(list(DISTINCT v ORDER BY v) FILTER (WHERE v < low_fence OR v > high_fence),
                        []) AS fliers
        FROM sized JOIN quartiles USING ("user")
        GROUP BY "user", q1, med, q3 ORDER BY med, "user"
        """,
        run_filter,
        quantity=column,
    )


def distributions(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """The box statistics of every quantity of `DISTRIBUTIONS`, one block per quantity."""
    frames = [box_statistics(con, run_filter, column) for column in DISTRIBUTIONS]
    return pd.concat(frames, ignore_index=True)


def nodes_per_process_histogram(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> pd.DataFrame:
    """Runs per dimension and bin of mesh nodes per MPI process, `HISTOGRAM_BINS` bins of
    equal width on a log scale from the smallest value to the largest (empty bins left out)."""
    return query(
        con,
        """
        WITH sized AS (
            SELECT dimension, log10(n_nodes / n_procs) AS v FROM {runs}
            WHERE n_nodes / n_procs > 0 AND dimension IS NOT NULL
        ),
        span AS (SELECT min(v) - 0.05 AS low, (max(v) - min(v) + 0.1) / $bins AS width FROM sized),
        binned AS (
            SELECT dimension, least(floor((v - low) / width), $bins - 1) AS bin, low, width
            FROM sized, span
        )
        SELECT dimension, power(10, low + bin * width) AS bin_low,
               power(10, low + (bin + 1) * width) AS bin_high, count(*) AS runs
        FROM binned GROUP BY ALL ORDER BY dimension, bin_low
        """,
        run_filter,
        bins=HISTOGRAM_BINS,
    )


def _findings(table: pd.DataFrame, flags: pd.DataFrame) -> list[str]:
    if table.empty:
        return [NO_RUNS]
    if flags.empty:
        return ["No HPC habit stands out: no user repeats one of the flagged habits."]
    findings = []
    for habit, group in flags.groupby("habit", sort=False):
        who = ", ".join(
            f"{row.user} on {row.cluster} ({row.share_pct:.0f} % of runs)"
            for row in group.head(4).itertuples()
        )
        more = f" and {len(group) - 4} more" if len(group) > 4 else ""
        findings.append(f"{habit}: {who}{more}. Advice: {group['advice'].iloc[0]}.")
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table = habits_by_user_cluster(con, run_filter)
    flags = habit_flags(con, run_filter)
    return AnalysisResult(
        tables={
            "hpc_habits": table,
            "hpc_habit_flags": flags,
            "hpc_habit_distributions": distributions(con, run_filter),
            "nodes_per_process": nodes_per_process_histogram(con, run_filter),
        },
        findings=_findings(table, flags),
    )


ANALYSIS = Analysis(
    name="hpc_habits",
    title="HPC habits",
    description="Process counts, ncell_group and mesh nodes per process per user and cluster, "
    "and the habits an HPC expert would flag.",
    compute=compute,
    tables=("hpc_habits", "hpc_habit_flags"),
    chart_tables=("hpc_habit_distributions", "nodes_per_process"),
)
