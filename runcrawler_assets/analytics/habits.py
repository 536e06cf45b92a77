"""HPC habits: how many processes users ask for, their `ncell_group`, mesh nodes per process.

Beyond the figures, it flags the habits an HPC expert would point out, with
rules of thumb kept as named constants so the team can tune them: too few
mesh nodes per process (communication dominates), `ncell_group` outside the
usual range (cache use), runs repeatedly killed at the time limit (wall time
asked too short), long restart chains. The distributions the charts show
(box statistics per user, a histogram of mesh nodes per process) are
computed here in SQL, so a chart never needs one row per run.

Everything is made of rows per cluster × user partition, each from its runs
alone: the partition's figures and habit counts, and its runs counted per
value of each quantity drawn (`hpc_habit_partitions`, `hpc_habit_values`).
They are kept between refreshes (`analytics.memo`), and a refresh makes
again those of the partitions whose runs changed (issue 16).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    NO_RUNS,
)
from runcrawler_assets.analytics.memo import Memo, kept_analysis, made_by

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


# A partition's habits (a row per cluster × user, from its runs alone): the figures of the
# `hpc_habits` table, and how many runs show each habit.
_PARTITIONS_SQL = f"""
    SELECT "user", cluster, count(*) AS runs,
           median(n_procs) AS median_procs, min(n_procs) AS min_procs, max(n_procs) AS max_procs,
           mode(ncell_group ORDER BY ncell_group) AS usual_ncell_group,  -- ties: the smallest
           min(ncell_group) AS min_ncell_group, max(ncell_group) AS max_ncell_group,
           round(median(n_nodes / n_procs)) AS median_nodes_per_process,
           {", ".join(f'count(*) FILTER (WHERE {h.condition_sql}) AS "{h.name}"' for h in HABITS)}
    FROM {{runs}} GROUP BY "user", cluster
"""

# A partition's runs counted per value of each quantity the charts draw the distribution of:
# `DISTRIBUTIONS` per user (the box plots), mesh nodes per process per dimension (the
# histogram). Processes and `ncell_group` take few values, so a partition has few rows.
_VALUES_SQL = " UNION ALL ".join(
    [
        *(
            f"""SELECT cluster, "user", '{column}' AS quantity, NULL::INTEGER AS dimension,
                       {column}::DOUBLE AS v, count(*) AS runs
                FROM {{runs}} WHERE "user" IS NOT NULL AND {column} IS NOT NULL GROUP BY ALL"""
            for column in DISTRIBUTIONS
        ),
        """SELECT cluster, "user", 'nodes_per_process', dimension, n_nodes / n_procs, count(*)
           FROM {runs} WHERE n_nodes / n_procs > 0 AND dimension IS NOT NULL GROUP BY ALL""",
    ]
)

# A partition's rows come from its runs alone: kept between refreshes, made again for the
# partitions whose runs changed (ten new runs: their partition's runs, not a million).
MEMO = Memo(
    digests="hpc_habit_partition_digests",
    kept=("hpc_habit_partitions", "hpc_habit_values"),
    columns=(
        "cluster",
        "user",
        "n_procs",
        "ncell_group",
        "n_nodes",
        "dimension",
        "error_category",
        "n_restarts",
    ),
    code=repr((_PARTITIONS_SQL, _VALUES_SQL)),
    by=("cluster", "user"),
)
_QUERIES = dict(zip(MEMO.kept, (_PARTITIONS_SQL, _VALUES_SQL), strict=True))


def habits_by_user_cluster(con: duckdb.DuckDBPyConnection, partitions: str) -> pd.DataFrame:
    """Per user and cluster: process counts, ncell_group, nodes per process, habit shares;
    `partitions`: the `hpc_habit_partitions` rows, as a query."""
    shares = ", ".join(
        f'round(100 * "{h.name}" / runs, 1) AS "{h.name} (% of runs)"' for h in HABITS
    )
    names = ", ".join(f'"{h.name}"' for h in HABITS)
    return con.execute(
        f'SELECT * EXCLUDE ({names}), {shares} FROM {partitions} ORDER BY "user", cluster'
    ).df()


def habit_flags(con: duckdb.DuckDBPyConnection, partitions: str) -> pd.DataFrame:
    """One row per (user, cluster, habit) that crosses the flagging thresholds, with advice:
    most runs concerned first, then by user, habit (in `HABITS` order) and cluster;
    `partitions`: as `habits_by_user_cluster` reads them."""
    names = ", ".join(f'"{h.name}"' for h in HABITS)
    return con.execute(
        f"""
        WITH concerned AS (
            UNPIVOT (SELECT "user", cluster, runs, {names} FROM {partitions})
            ON {names} INTO NAME habit VALUE runs_concerned
        ),
        advised AS (SELECT unnest($habits) AS habit, unnest($advice) AS advice,
                           generate_subscripts($habits, 1) AS rank)
        SELECT "user", cluster, habit, runs_concerned, runs,
               round(100 * runs_concerned / runs, 1) AS share_pct, advice
        FROM concerned JOIN advised USING (habit)
        WHERE runs_concerned >= $min_runs AND runs_concerned >= $share * runs
        ORDER BY runs_concerned DESC, "user", rank, cluster
        """,
        {
            "habits": [h.name for h in HABITS],
            "advice": [h.advice for h in HABITS],
            "min_runs": MIN_FLAGGED_RUNS,
            "share": FLAG_SHARE,
        },
    ).df()


def _value_at(index: str) -> str:
    """SQL: the value of 0-based rank `index` among a user's runs sorted by value, over rows
    of distinct values `v` with `upto`, the runs up to and including theirs."""
    return f"min(v) FILTER (WHERE upto > {index})"


def _quantile(p: float) -> str:
    """SQL: the `p` quantile of a user's runs interpolated between ranks as `quantile_cont`
    (and matplotlib's `boxplot`) does, over the rows `_value_at` reads (`n`: the runs)."""
    rank = f"((n - 1)::DOUBLE * {p!r})"
    low, high = _value_at(f"floor({rank})"), _value_at(f"ceil({rank})")
    return f"{low} + ({high} - {low}) * any_value({rank} - floor({rank}))"


def box_statistics(con: duckdb.DuckDBPyConnection, values: str, column: str) -> pd.DataFrame:
    """Per user, the box plot of the quantity `column`: the runs it summarises, quartiles,
    whiskers at 1.5 IQR and outliers; `values`: the `hpc_habit_values` rows, as a query.

    The quartiles are the order statistics of the runs, read from their counts per value
    (a million runs take few values). Each distinct outlier is listed once, since repeated
    marks would overlap anyway. Users come in order of their median; `runs` lets a chart
    keep the busiest.
    """
    return con.execute(
        f"""
        WITH counted AS (
            SELECT "user", v, sum(runs) AS runs FROM {values}
            WHERE quantity = $quantity GROUP BY ALL
        ),
        placed AS (
            SELECT *, sum(runs) OVER (PARTITION BY "user" ORDER BY v) AS upto,
                   sum(runs) OVER (PARTITION BY "user") AS n
            FROM counted
        ),
        quartiles AS (
            SELECT "user", q1, med, q3,
                   q1 - 1.5 * (q3 - q1) AS low_fence, q3 + 1.5 * (q3 - q1) AS high_fence
            FROM (SELECT "user", {_quantile(0.25)} AS q1, {_quantile(0.5)} AS med,
                         {_quantile(0.75)} AS q3
                  FROM placed GROUP BY "user")
        )
        SELECT $quantity AS quantity, "user", sum(runs)::BIGINT AS runs, q1, med, q3,
               least(q1, min(v) FILTER (WHERE v >= low_fence)) AS whislo,
               greatest(q3, max(v) FILTER (WHERE v <= high_fence)) AS whishi,
               coalesce(list(v ORDER BY v) FILTER (WHERE v < low_fence OR v > high_fence),
                        []) AS fliers
        FROM counted JOIN quartiles USING ("user")
        GROUP BY "user", q1, med, q3 ORDER BY med, "user"
        """,
        {"quantity": column},
    ).df()


def distributions(con: duckdb.DuckDBPyConnection, values: str) -> pd.DataFrame:
    """The box statistics of every quantity of `DISTRIBUTIONS`, one block per quantity."""
    frames = [box_statistics(con, values, column) for column in DISTRIBUTIONS]
    return pd.concat(frames, ignore_index=True)


def nodes_per_process_histogram(con: duckdb.DuckDBPyConnection, values: str) -> pd.DataFrame:
    """Runs per dimension and bin of mesh nodes per MPI process, `HISTOGRAM_BINS` bins of
    equal width on a log scale from the smallest value to the largest (empty bins left
    out); `values`: as `box_statistics` reads them."""
    return con.execute(
        f"""
        WITH sized AS (
            SELECT dimension, log10(v) AS v, runs FROM {values}
            WHERE quantity = 'nodes_per_process'
        ),
        span AS (SELECT min(v) - 0.05 AS low, (max(v) - min(v) + 0.1) / $bins AS width FROM sized),
        binned AS (
            SELECT dimension, least(floor((v - low) / width), $bins - 1) AS bin, low, width, runs
            FROM sized, span
        )
        SELECT dimension, power(10, low + bin * width) AS bin_low,
               power(10, low + (bin + 1) * width) AS bin_high, sum(runs)::BIGINT AS runs
        FROM binned GROUP BY ALL ORDER BY dimension, bin_low
        """,
        {"bins": HISTOGRAM_BINS},
    ).df()


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


def _shown(
    con: duckdb.DuckDBPyConnection, read: Mapping[str, str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables shown and drawn, and the findings, from the kept rows."""
    partitions, values = (read[name] for name in MEMO.kept)
    table = habits_by_user_cluster(con, partitions)
    flags = habit_flags(con, partitions)
    tables = {
        "hpc_habits": table,
        "hpc_habit_flags": flags,
        "hpc_habit_distributions": distributions(con, values),
        "nodes_per_process": nodes_per_process_histogram(con, values),
    }
    return tables, _findings(table, flags)


ANALYSIS = kept_analysis(
    MEMO,
    made_by(_QUERIES),
    _shown,
    name="hpc_habits",
    title="HPC habits",
    description="Process counts, ncell_group and mesh nodes per process per user and cluster, "
    "and the habits an HPC expert would flag.",
    tables=("hpc_habits", "hpc_habit_flags"),
    chart_tables=("hpc_habit_distributions", "nodes_per_process"),
)
