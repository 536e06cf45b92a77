"""The setting-effects table: SQL over `runs`, then the statistics, one row per setting value.

The SQL unpivots the filtered runs to one row per (run, setting) and reduces
them to partials: counts and sums per partition (cluster × user), stratum,
value and narrow bin of efficiency (`partials`; kept per partition between
refreshes, so that ten new runs cost their partition's scan: issue 16). The
partials add up to counts and sums per value, per stratum (Mantel-Haenszel)
and over the rest of each setting's runs; their bins locate each value's
median efficiency and interval bounds, exact order statistics found by
sorting only the runs of the bins holding them;
`analytics.statistics` turns these into rates, ratios, intervals and flags.
The method is told in the package's docstring; the sentences are written in
`sentences.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    MEASURED,
    NOT_SET,
    UNFINISHED_STATUSES,
    Bins,
    RunFilter,
    StagedTable,
    query,
    temporary_name,
)
from runcrawler_assets.analytics.statistics import (
    Z95,
    log_mean_ratio,
    mantel_haenszel_risk_ratio,
    ratio_test,
    wilson_interval,
)

# A ratio is tested only when both of its groups hold this many runs, and
# flagged only when it is at least this large, either way.
MIN_RUNS = 30
MIN_RATIO = 1.2


@dataclass(frozen=True)
class Setting:
    """A setting of runs-schema.md, the SQL giving a run's value label, the `runs` columns
    that SQL reads, and the labels' order."""

    name: str
    value_sql: str
    columns: tuple[str, ...]
    order: tuple[str, ...] = ()

    def sorted_values(self, values: pd.Series) -> list[str]:
        """Binned values in the bins' order, others alphabetically."""
        present = sorted(values.dropna().unique())
        rank = {label: i for i, label in enumerate(self.order)}
        return sorted(present, key=lambda v: rank.get(v, len(rank)))


def _text(column: str) -> Setting:
    return Setting(column, f"coalesce({column}, '{NOT_SET}')", (column,))


def _binned(name: str, column: str, bins: Bins) -> Setting:
    return Setting(name, bins.sql(column), (column,), tuple(bins.labels()))


SETTINGS: tuple[Setting, ...] = (
    _text("mixture_name"),
    _text("les_model"),
    _text("artificial_viscosity_model"),
    _text("convection_scheme"),
    _binned("ncell_group", "ncell_group", Bins((50, 100, 200, 500))),
    Setting(
        "reactive_flow",
        f"CASE WHEN reactive_flow THEN 'yes' WHEN NOT reactive_flow THEN 'no' ELSE '{NOT_SET}' END",
        ("reactive_flow",),
    ),
    _binned(
        "simulation_end_iteration",
        "iterations_requested",
        Bins((10_000, 100_000, 1_000_000), unit="iterations"),
    ),
    # Users speak of CFL limits as "above 0.9": bins closed on the right.
    _binned("cfl", "cfl", Bins((0.7, 0.8, 0.9), integer=False, right_closed=True)),
)


# Failure strata: runs are compared with the same users' other runs.
BY_USER = '"user"'


def _labels(settings: Sequence[Setting]) -> tuple[str, str]:
    """SQL: each setting's value label as a column named after it, and those names (what
    `UNPIVOT` turns into (setting, value) rows). No setting (a solver on one version): a
    column of NULLs, which `UNPIVOT` turns into no row."""
    if not settings:
        return "NULL::VARCHAR AS no_setting", "no_setting"
    values = ",\n".join(f'{s.value_sql} AS "{s.name}"' for s in settings)
    return values, ", ".join(f'"{s.name}"' for s in settings)


def _long_runs_sql(settings: Sequence[Setting], stratum: str) -> str:
    """The filtered runs unpivoted to one row per (run, setting), so one GROUP BY serves all.

    Per row: the run's partition (cluster, user), its stratum (`stratum`, a trusted SQL
    expression: the user, or the user and some settings), setting, value label, outcome,
    efficiency, and the log of the efficiency relative to the median of the run's user,
    cluster and dimension (a partition's runs alone give it).
    A setting whose value is NULL for a run leaves the run out of that setting.
    """
    values, names = _labels(settings)
    # `filtered` is read twice: left to DuckDB, it is materialized, every column of every run
    # (a million runs: ~130 MB more, and under 192MB half a second more spilling them).
    return f"""
        WITH filtered AS NOT MATERIALIZED (SELECT * FROM {{runs}}),
        usual AS (
            SELECT "user", cluster, dimension, median(efficiency) AS usual_efficiency
            FROM filtered WHERE {MEASURED} GROUP BY ALL
        ),
        labelled AS (
            SELECT cluster, "user", {stratum} AS stratum, {values},
                   status NOT IN $unfinished AS finished,
                   status IN $failed AS failed,
                   CASE WHEN {MEASURED} THEN efficiency END
                       AS efficiency,
                   CASE WHEN {MEASURED}
                        THEN ln(efficiency / usual_efficiency) END AS log_relative
            FROM filtered LEFT JOIN usual USING ("user", cluster, dimension)
        ),
        long AS (UNPIVOT labelled ON {names} INTO NAME setting VALUE value)
    """


# A value's efficiencies are counted in bins 1/100 of a logarithm wide (1 %), to find the bin
# of each order statistic a median and its interval need; a second scan sorts only those bins'
# runs (a million runs: 0.33 s, against 0.74 s sorting each value's efficiencies whole).
BINS_PER_LN = 100
EFFICIENCY_BIN = f"CAST(floor(ln(efficiency) * {BINS_PER_LN}) AS BIGINT)"
COUNTS_SQL = """
    count(*) FILTER (WHERE finished) AS finished_runs,
    count(*) FILTER (WHERE failed) AS failed_runs,
    count(efficiency) AS successful_runs,
    count(log_relative) AS n_log, sum(log_relative) AS sum_log,
    sum(log_relative * log_relative) AS sum_sq_log"""
COUNTS = ("finished_runs", "failed_runs", "successful_runs", "n_log")
SUMS = ("sum_log", "sum_sq_log")
SUMMED = ("finished_runs", "failed_runs", "n_log", "sum_log", "sum_sq_log")
PARTIAL_KEYS = ("cluster", "user", "stratum", "setting", "value", "bin")
MEDIAN_HALVES = ("median_low", "median_high")
CI_BOUNDS = ("median_efficiency_ci_low", "median_efficiency_ci_high")
# The order statistics wanted of a value's n efficiencies (`successful_runs`), as 1-based
# ranks: the two middle ones (the median is their mean) and the interval's bounds, at
# n/2 ± z·√n/2 (`HALF_WIDTH`) within 1..n.
HALF_WIDTH = "$z * sqrt(successful_runs) / 2 AS half_width"
RANKS = {
    MEDIAN_HALVES[0]: "(successful_runs + 1) // 2",
    MEDIAN_HALVES[1]: "successful_runs // 2 + 1",
    CI_BOUNDS[0]: "greatest(1, floor(successful_runs / 2 - half_width) + 1)",
    CI_BOUNDS[1]: "least(successful_runs, ceil(successful_runs / 2 + half_width))",
}


def partials_code(settings: Sequence[Setting], stratum: str) -> str:
    """The SQL `partials` runs for these settings and strata: what a memo of partials keys
    its digests with (other settings, other rows)."""
    return _long_runs_sql(settings, stratum) + _PARTIALS_SELECT


_PARTIALS_SELECT = f"""
    SELECT cluster, "user", stratum, setting, value, {EFFICIENCY_BIN} AS bin, {COUNTS_SQL}
    FROM long GROUP BY ALL
"""


def partials(
    con: duckdb.DuckDBPyConnection,
    run_filter: RunFilter | str,
    settings: Sequence[Setting] = SETTINGS,
    stratum: str = BY_USER,
) -> StagedTable:
    """Per partition (cluster × user), stratum, setting value and bin of efficiency (the runs
    without one in a bin of their own): the counts and sums every figure of the table is
    made of, left in DuckDB. Each partition's rows come from its runs alone, so a memo keeps
    them between refreshes (`effects`' docstring says how they add up)."""
    name = temporary_name("setting_partials")
    query(
        con,
        f"CREATE TEMP TABLE {name} AS {partials_code(settings, stratum)}",
        run_filter,
        unfinished=list(UNFINISHED_STATUSES),
        failed=list(FAILED_STATUSES),
    )
    return StagedTable(con, f"SELECT * FROM temp.{name}", (name,))


def _summed(partials_sql: str, keys: str) -> str:
    """SQL: the partials' counts and sums per `keys` (counts as BIGINT, not DuckDB's HUGEINT)."""
    counts = ", ".join(f"sum({c})::BIGINT AS {c}" for c in COUNTS)
    sums = ", ".join(f"sum({c}) AS {c}" for c in SUMS)
    return f"SELECT {keys}, {counts}, {sums} FROM {partials_sql} GROUP BY ALL"


def failure_strata(con: duckdb.DuckDBPyConnection, partials_sql: str) -> pd.DataFrame:
    """Mantel-Haenszel strata per (setting, value, stratum), from the partials (a table or a
    subquery): `a` failures among `n1` finished runs with the value, `c` failures among `n0`
    finished runs of the same stratum without it."""
    return con.execute(
        f"""
        WITH per_stratum AS (
            SELECT setting, value, stratum,
                   sum(failed_runs)::BIGINT AS a, sum(finished_runs)::BIGINT AS n1
            FROM {partials_sql} GROUP BY ALL
        )
        SELECT setting, value, stratum, a, n1,
               sum(a) OVER stratum_runs - a AS c, sum(n1) OVER stratum_runs - n1 AS n0
        FROM per_stratum WINDOW stratum_runs AS (PARTITION BY setting, stratum)
        """
    ).df()


def value_statistics(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, settings: Sequence[Setting] = SETTINGS
) -> pd.DataFrame:
    """Per (setting, value): counts, median efficiency with its distribution-free 95 % interval
    (order statistics at the binomial ranks n/2 ± z·√n/2), and sums of log relative
    efficiency, for the value and for the rest of its setting's runs."""
    staged = partials(con, run_filter, settings)
    try:
        return _value_statistics(con, f"({staged.select})", run_filter, settings)
    finally:
        staged.drop()


def _value_statistics(
    con: duckdb.DuckDBPyConnection,
    partials_sql: str,
    run_filter: RunFilter,
    settings: Sequence[Setting],
) -> pd.DataFrame:
    """`value_statistics` from the partials (a table or a subquery) of the runs `run_filter`
    keeps: their counts per value and bin find the bin holding each rank wanted, and a second
    scan of the runs sorts only those bins' (exact)."""
    binned = con.execute(
        _summed(partials_sql, "setting, value, bin") + " ORDER BY setting, value, bin"
    ).df()
    keys = ["setting", "value"]
    values = binned.drop(columns="bin").groupby(keys, as_index=False).sum(min_count=1)
    values[list(COUNTS)] = values[list(COUNTS)].astype("int64")
    located = _located(con, binned[binned["bin"].notna()])
    found = _efficiencies_at(con, run_filter, settings, located)
    statistics = found.pivot(index=keys, columns="statistic", values="efficiency")
    statistics = statistics.reindex(columns=[*MEDIAN_HALVES, *CI_BOUNDS]).astype(float)
    values = values.join(statistics, on=keys)
    values.insert(
        values.columns.get_loc(MEDIAN_HALVES[0]),
        "median_efficiency",
        (values.pop(MEDIAN_HALVES[0]) + values.pop(MEDIAN_HALVES[1])) / 2,
    )
    for column in SUMMED:
        rest = values.groupby("setting")[column].transform("sum") - values[column]
        values[f"rest_{column}"] = rest.astype(float)
    return values


def _ranks(con: duckdb.DuckDBPyConnection, n: np.ndarray) -> dict[str, np.ndarray]:
    """The `RANKS` of each count of efficiencies in `n`, computed by the same SQL as the
    one-scan sort's."""
    ranks = ", ".join(f"CAST({rank} AS BIGINT) AS {name}" for name, rank in RANKS.items())
    frame = con.execute(
        f"SELECT {ranks} FROM (SELECT successful_runs, {HALF_WIDTH} "
        "FROM (SELECT unnest(CAST($n AS BIGINT[])) AS successful_runs))",
        {"n": [int(count) for count in n], "z": Z95},
    ).df()
    return {name: frame[name].to_numpy() for name in RANKS}


def _located(con: duckdb.DuckDBPyConnection, bins: pd.DataFrame) -> pd.DataFrame:
    """For each value's ranks (`_ranks`), the bin holding it and its 1-based position among
    that bin's efficiencies, from the values' counts per bin (`bins`: every bin holds some,
    in (setting, value, bin) order). One cumulative count serves all values: a value's rank r
    is the run at r past the runs of the values before it."""
    counts = bins["successful_runs"].to_numpy()
    upto = counts.cumsum()
    first = ~bins.duplicated(["setting", "value"]).to_numpy()
    starts = np.flatnonzero(first)
    before = upto[starts] - counts[starts]
    n = np.append(before[1:], upto[-1]) - before if len(starts) else before
    located = []
    for statistic, ranks in _ranks(con, n).items():
        at = np.searchsorted(upto, before + ranks)
        located.append(
            pd.DataFrame(
                {
                    "setting": bins["setting"].to_numpy()[starts],
                    "value": bins["value"].to_numpy()[starts],
                    "statistic": statistic,
                    "bin": bins["bin"].to_numpy()[at].astype(np.int64),
                    "position": before + ranks - (upto[at] - counts[at]),
                }
            )
        )
    return pd.concat(located, ignore_index=True)


def _efficiencies_at(
    con: duckdb.DuckDBPyConnection,
    run_filter: RunFilter,
    settings: Sequence[Setting],
    located: pd.DataFrame,
) -> pd.DataFrame:
    """The efficiency at each `located` (setting, value, bin, position): only the runs of the
    bins named are labelled, unpivoted and sorted."""
    if located.empty:
        return pd.DataFrame(columns=["statistic", "setting", "value", "efficiency"])
    values, names = _labels(settings)
    wanted = temporary_name("wanted_ranks")
    con.register(wanted, located)
    try:
        return query(
            con,
            f"""
            WITH near AS (
                SELECT {values}, efficiency, {EFFICIENCY_BIN} AS bin
                FROM (SELECT * REPLACE (CASE WHEN {MEASURED} THEN efficiency END AS efficiency)
                      FROM {{runs}})  -- no bin computed of a NaN, whatever the filters' order
                WHERE efficiency IS NOT NULL AND {EFFICIENCY_BIN} IN (SELECT bin FROM {wanted})
            ),
            long AS (UNPIVOT near ON {names} INTO NAME setting VALUE value),
            ranked AS (
                SELECT setting, value, bin, efficiency,
                       row_number() OVER (PARTITION BY setting, value, bin ORDER BY efficiency)
                           AS position
                FROM long SEMI JOIN {wanted} USING (setting, value, bin)
            )
            SELECT statistic, setting, value, efficiency
            FROM ranked JOIN {wanted} USING (setting, value, bin, position)
            """,
            run_filter,
        )
    finally:
        con.unregister(wanted)


def _rate(count: pd.Series, runs: pd.Series) -> pd.Series:
    return (count / runs.where(runs > 0)).astype(float)


def _tested(table: pd.DataFrame, prefix: str, n_col: str, rest_col: str) -> pd.DataFrame:
    """`prefix`'s ratio with its 95 % interval and flag, from its log ratio and standard error."""
    estimate, se = table.pop(f"{prefix}_log_ratio"), table.pop(f"{prefix}_log_se")
    testable = (table[n_col] >= MIN_RUNS) & (table[rest_col] >= MIN_RUNS)
    tested = ratio_test(estimate, se, testable, table["setting"], MIN_RATIO)
    return table.join(tested.add_prefix(f"{prefix}_"))


EFFECT_COLUMNS: list[str] = [
    "setting",
    "value",
    "finished_runs",
    "failed_runs",
    "failure_rate",
    "failure_rate_ci_low",
    "failure_rate_ci_high",
    "rest_failure_rate",
    "failure_ratio",
    "failure_ratio_ci_low",
    "failure_ratio_ci_high",
    "failure_flagged",
    "successful_runs",
    "median_efficiency",
    "median_efficiency_ci_low",
    "median_efficiency_ci_high",
    "efficiency_ratio",
    "efficiency_ratio_ci_low",
    "efficiency_ratio_ci_high",
    "efficiency_flagged",
]


def effects(
    con: duckdb.DuckDBPyConnection,
    partials_sql: str,
    run_filter: RunFilter,
    settings: Sequence[Setting],
) -> pd.DataFrame:
    """One row per (setting, value), in `settings` order: counts, rates, intervals, ratios
    and flags (`EFFECT_COLUMNS`), from the partials (`partials`: a table or a subquery) of
    the runs `run_filter` keeps, failures compared within their strata. Counts and sums
    add up over partitions and bins; the strata over
    partitions (a user's runs on several clusters are one stratum), and the medians need
    their bins' runs alone."""
    stats = _value_statistics(con, partials_sql, run_filter, settings)
    if stats.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    order = [
        (setting.name, value)
        for setting in settings
        for value in setting.sorted_values(stats.loc[stats["setting"] == setting.name, "value"])
    ]
    table = stats.set_index(["setting", "value"]).loc[order].reset_index()
    wilson = [
        wilson_interval(k, n)
        for k, n in zip(table["failed_runs"], table["finished_runs"], strict=True)
    ]
    table[["failure_rate_ci_low", "failure_rate_ci_high"]] = wilson
    table["failure_rate"] = _rate(table["failed_runs"], table["finished_runs"])
    table["rest_failure_rate"] = _rate(table["rest_failed_runs"], table["rest_finished_runs"])
    pooled = {
        key: mantel_haenszel_risk_ratio(group)
        for key, group in failure_strata(con, partials_sql).groupby(["setting", "value"])
    }
    table[["failure_log_ratio", "failure_log_se"]] = [pooled[key] for key in order]
    table["efficiency_log_ratio"], table["efficiency_log_se"] = log_mean_ratio(table)
    table = _tested(table, "failure", "finished_runs", "rest_finished_runs")
    table = _tested(table, "efficiency", "successful_runs", "rest_n_log")
    return table[EFFECT_COLUMNS]
