"""Is it related to a setting? Failure rate and efficiency per value of each run.params setting.

Each value is compared with the other runs of the same users, because
settings follow users' habits and users differ (a setting only a careless
user sets would otherwise look guilty):
- failure: failure rate with a Wilson 95 % interval, and the Mantel-Haenszel
  risk ratio to the other runs, users as strata, with the Greenland-Robins
  95 % interval on its logarithm;
- efficiency (successful runs only): the median with a distribution-free
  95 % interval, and the ratio of geometric means to the other runs after
  dividing each run's efficiency by the median of its user, cluster and
  dimension, so that a setting used mostly on a slow cluster, in 3D or by a
  user who over-splits meshes is not blamed for it.
A setting's values are tested together, so a value is flagged only when its
interval widened for the number of values tested in that setting
(Bonferroni) excludes 1, both groups hold at least `MIN_RUNS` runs, and the
ratio is at least `MIN_RATIO`: what is flagged stands out of the noise and
matters; what is not may be noise, or an effect too small for the runs at hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import duckdb
import numpy as np
import pandas as pd

from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    NOT_SET,
    UNFINISHED_STATUSES,
    Analysis,
    AnalysisResult,
    Bins,
    RunFilter,
    query,
)
from runcrawler_assets.reporting import charts

Z95 = 1.959963984540054
MIN_RUNS = 30
MIN_RATIO = 1.2


@dataclass(frozen=True)
class Setting:
    """A setting of runs-schema.md, the SQL giving a run's value label, and the labels' order."""

    name: str
    value_sql: str
    order: tuple[str, ...] = ()

    def sorted_values(self, values: pd.Series) -> list[str]:
        """Binned values in the bins' order, others alphabetically."""
        present = sorted(values.dropna().unique())
        rank = {label: i for i, label in enumerate(self.order)}
        return sorted(present, key=lambda v: rank.get(v, len(rank)))


def _text(column: str) -> Setting:
    return Setting(column, f"coalesce({column}, '{NOT_SET}')")


def _binned(name: str, column: str, bins: Bins) -> Setting:
    return Setting(name, bins.sql(column), tuple(bins.labels()))


SETTINGS: tuple[Setting, ...] = (
    _text("mixture_name"),
    _text("les_model"),
    _text("artificial_viscosity_model"),
    _text("convection_scheme"),
    _binned("ncell_group", "ncell_group", Bins((50, 100, 200, 500))),
    Setting(
        "reactive_flow",
        f"CASE WHEN reactive_flow THEN 'yes' WHEN NOT reactive_flow THEN 'no' ELSE '{NOT_SET}' END",
    ),
    _binned(
        "simulation_end_iteration",
        "iterations_requested",
        Bins((10_000, 100_000, 1_000_000), unit="iterations"),
    ),
    # Users speak of CFL limits as "above 0.9": bins closed on the right.
    _binned("cfl", "cfl", Bins((0.7, 0.8, 0.9), integer=False, right_closed=True)),
)


def _long_runs_sql() -> str:
    """The filtered runs unpivoted to one row per (run, setting), so one GROUP BY serves all.

    Per row: user, setting, value label, outcome, efficiency and the log of the
    efficiency relative to the median of the run's user, cluster and dimension.
    """
    values = ",\n".join(f'{s.value_sql} AS "{s.name}"' for s in SETTINGS)
    names = ", ".join(f'"{s.name}"' for s in SETTINGS)
    return f"""
        WITH filtered AS (SELECT * FROM {{runs}}),
        usual AS (
            SELECT "user", cluster, dimension, median(efficiency) AS usual_efficiency
            FROM filtered WHERE status = 'success' AND efficiency > 0 GROUP BY ALL
        ),
        labelled AS (
            SELECT "user", {values},
                   status NOT IN $unfinished AS finished,
                   status IN $failed AS failed,
                   CASE WHEN status = 'success' AND efficiency > 0 THEN efficiency END
                       AS efficiency,
                   CASE WHEN status = 'success' AND efficiency > 0
                        THEN ln(efficiency / usual_efficiency) END AS log_relative
            FROM filtered LEFT JOIN usual USING ("user", cluster, dimension)
        ),
        long AS (UNPIVOT labelled ON {names} INTO NAME setting VALUE value)
    """


def _query_long(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, select: str, **params: object
) -> pd.DataFrame:
    return query(
        con,
        _long_runs_sql() + select,
        run_filter,
        unfinished=list(UNFINISHED_STATUSES),
        failed=list(FAILED_STATUSES),
        **params,
    )


def failure_strata(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Mantel-Haenszel strata per (setting, value, user): `a` failures among `n1` finished
    runs with the value, `c` failures among `n0` finished runs of the same user without it."""
    return _query_long(
        con,
        run_filter,
        """
        , per_user AS (
            SELECT setting, value, "user",
                   count(*) FILTER (WHERE failed) AS a, count(*) FILTER (WHERE finished) AS n1
            FROM long GROUP BY ALL
        )
        SELECT setting, value, "user", a, n1,
               sum(a) OVER user_runs - a AS c, sum(n1) OVER user_runs - n1 AS n0
        FROM per_user WINDOW user_runs AS (PARTITION BY setting, "user")
        """,
    )


def value_statistics(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per (setting, value): counts, median efficiency with its distribution-free 95 % interval
    (order statistics at the binomial ranks n/2 ± z·√n/2), and sums of log relative
    efficiency, for the value and for the rest of its setting's runs."""
    return _query_long(
        con,
        run_filter,
        """
        , per_value AS (
            SELECT setting, value,
                   count(*) FILTER (WHERE finished) AS finished_runs,
                   count(*) FILTER (WHERE failed) AS failed_runs,
                   count(efficiency) AS successful_runs,
                   -- Failed runs' NULLs sort last, past the `successful_runs` ranks read below.
                   list_sort(list(efficiency), 'ASC', 'NULLS LAST') AS ordered,
                   count(log_relative) AS n_log, sum(log_relative) AS sum_log,
                   sum(log_relative * log_relative) AS sum_sq_log,
                   $z * sqrt(successful_runs) / 2 AS half_width
            FROM long GROUP BY ALL
        )
        SELECT * EXCLUDE (ordered, half_width),
               (ordered[(successful_runs + 1) // 2] + ordered[successful_runs // 2 + 1]) / 2
                   AS median_efficiency,
               ordered[CAST(greatest(1, floor(successful_runs / 2 - half_width) + 1) AS BIGINT)]
                   AS median_efficiency_ci_low,
               ordered[CAST(least(successful_runs, ceil(successful_runs / 2 + half_width))
                            AS BIGINT)] AS median_efficiency_ci_high,
               sum(finished_runs) OVER setting_runs - finished_runs AS rest_finished_runs,
               sum(failed_runs) OVER setting_runs - failed_runs AS rest_failed_runs,
               sum(n_log) OVER setting_runs - n_log AS rest_n_log,
               sum(sum_log) OVER setting_runs - sum_log AS rest_sum_log,
               sum(sum_sq_log) OVER setting_runs - sum_sq_log AS rest_sum_sq_log
        FROM per_value WINDOW setting_runs AS (PARTITION BY setting)
        """,
        z=Z95,
    )


def wilson_interval(failures: int, runs: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion: sound near 0 and 1, unlike p ± z·SE."""
    if runs == 0:
        return math.nan, math.nan
    p = failures / runs
    denominator = 1 + z * z / runs
    center = (p + z * z / (2 * runs)) / denominator
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def mantel_haenszel_risk_ratio(strata: pd.DataFrame) -> tuple[float, float]:
    """(log risk ratio, its standard error) pooled over strata, Greenland-Robins variance.

    `strata` has per stratum: `a` failures among `n1` runs with the value,
    `c` failures among `n0` runs without it. Strata holding only one group
    carry no comparison and drop out by themselves.
    """
    a, n1, c, n0 = (strata[col].to_numpy(dtype=float) for col in ("a", "n1", "c", "n0"))
    total = n1 + n0
    r = (a * n0 / total).sum()
    s = (c * n1 / total).sum()
    if r == 0 or s == 0:
        return math.nan, math.nan
    variance = ((n1 * n0 * (a + c) - a * c * total) / total**2).sum() / (r * s)
    return math.log(r / s), math.sqrt(variance)


def log_mean_ratio(stats: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(difference of mean logs, its Welch standard error) of each value against the rest,
    from counts, sums and sums of squares: a ratio of geometric means. NaN below 2 runs a side."""

    def mean_and_variance(n: pd.Series, total: pd.Series, sum_sq: pd.Series) -> tuple:
        mean = total / n
        return mean, ((sum_sq - total * mean) / (n - 1)).clip(lower=0)

    n, rest_n = stats["n_log"].astype(float), stats["rest_n_log"].astype(float)
    mean, variance = mean_and_variance(n, stats["sum_log"], stats["sum_sq_log"])
    rest_mean, rest_variance = mean_and_variance(
        rest_n, stats["rest_sum_log"], stats["rest_sum_sq_log"]
    )
    testable = (n >= 2) & (rest_n >= 2)
    se = np.sqrt(variance / n + rest_variance / rest_n)
    return (mean - rest_mean).where(testable), se.where(testable)


def _rate(count: pd.Series, runs: pd.Series) -> pd.Series:
    return (count / runs.where(runs > 0)).astype(float)


def _flag(table: pd.DataFrame, prefix: str, n_col: str, rest_col: str) -> pd.DataFrame:
    """Ratio columns with 95 % intervals, and the flag from the Bonferroni-widened interval."""
    testable = (table[n_col] >= MIN_RUNS) & (table[rest_col] >= MIN_RUNS)
    tests = testable.groupby(table["setting"]).transform("sum").clip(lower=1)
    z = np.array([NormalDist().inv_cdf(1 - 0.05 / (2 * n)) for n in tests])
    estimate, se = table.pop(f"{prefix}_log_ratio"), table.pop(f"{prefix}_log_se")
    table[f"{prefix}_ratio"] = np.exp(estimate)
    table[f"{prefix}_ratio_ci_low"] = np.exp(estimate - Z95 * se)
    table[f"{prefix}_ratio_ci_high"] = np.exp(estimate + Z95 * se)
    beyond_noise = (np.exp(estimate - z * se) > 1) | (np.exp(estimate + z * se) < 1)
    large = (table[f"{prefix}_ratio"] >= MIN_RATIO) | (table[f"{prefix}_ratio"] <= 1 / MIN_RATIO)
    table[f"{prefix}_flagged"] = testable & beyond_noise & large
    return table


def _sentence(row: pd.Series) -> str:
    """What a flagged value means, in a manager's words; empty when nothing stands out."""
    parts = []
    label = f"runs with {row['setting']} = {row['value']}"
    if row["failure_flagged"]:
        parts.append(
            f"{label} fail {_times(row, 'failure', 'more', 'less')} often than the same "
            f"users' other runs ({100 * row['failure_rate']:.0f} % vs "
            f"{100 * row['rest_failure_rate']:.0f} % overall, {row['finished_runs']} runs)"
        )
    if row["efficiency_flagged"]:
        parts.append(
            f"{label} need {_times(row, 'efficiency', 'more', 'less')} time per node and "
            f"iteration than the same users' other runs on the same cluster and dimension "
            f"({row['successful_runs']} successful runs)"
        )
    return "; ".join(parts)


def _times(row: pd.Series, prefix: str, more: str, less: str) -> str:
    ratio, low, high = (row[f"{prefix}_ratio{s}"] for s in ("", "_ci_low", "_ci_high"))
    if ratio >= 1:
        return f"{ratio:.1f}× {more} (95 % CI {low:.1f}–{high:.1f}×)"
    return f"{1 / ratio:.1f}× {less} (95 % CI {1 / high:.1f}–{1 / low:.1f}×)"


def setting_effects(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per (setting, value): counts, rates, intervals, ratios, flags and a sentence."""
    stats = value_statistics(con, run_filter)
    if stats.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    order = [
        (setting.name, value)
        for setting in SETTINGS
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
        for key, group in failure_strata(con, run_filter).groupby(["setting", "value"])
    }
    table[["failure_log_ratio", "failure_log_se"]] = [pooled[key] for key in order]
    table["efficiency_log_ratio"], table["efficiency_log_se"] = log_mean_ratio(table)
    table = _flag(table, "failure", "finished_runs", "rest_finished_runs")
    table = _flag(table, "efficiency", "successful_runs", "rest_n_log")
    table["finding"] = table.apply(_sentence, axis=1)
    return table[EFFECT_COLUMNS]


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
    "finding",
]


def _forest_frame(table: pd.DataFrame, prefix: str, n_col: str) -> pd.DataFrame:
    testable = table[table[n_col] >= MIN_RUNS]
    return pd.DataFrame(
        {
            "label": testable["setting"]
            + " = "
            + testable["value"]
            + " ("
            + testable[n_col].astype(str)
            + ")",
            "ratio": testable[f"{prefix}_ratio"],
            "ci_low": testable[f"{prefix}_ratio_ci_low"],
            "ci_high": testable[f"{prefix}_ratio_ci_high"],
            "flagged": testable[f"{prefix}_flagged"],
        }
    )


def _findings(table: pd.DataFrame) -> list[str]:
    """The flagged values that are bad news (fail more, run slower): what a manager acts on."""
    if table.empty:
        return ["No runs match the filter."]
    bad = table[
        (table["failure_flagged"] & (table["failure_ratio"] > 1))
        | (table["efficiency_flagged"] & (table["efficiency_ratio"] > 1))
    ]
    if bad.empty:
        return ["No setting value stands out of the noise, for failures or for efficiency."]
    return [row["finding"][0].upper() + row["finding"][1:] + "." for _, row in bad.iterrows()]


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table = setting_effects(con, run_filter)
    return AnalysisResult(
        tables={"setting_effects": table},
        charts={
            "setting_failure_ratios.png": charts.ratio_forest(
                _forest_frame(table, "failure", "finished_runs"),
                "Failure rate of each setting value relative to the other runs (95 % CI)",
                "risk ratio vs the same users' other runs (> 1: fails more often); "
                "in brackets: finished runs",
            ),
            "setting_efficiency_ratios.png": charts.ratio_forest(
                _forest_frame(table, "efficiency", "successful_runs"),
                "Efficiency of each setting value relative to the other runs (95 % CI)",
                "efficiency ratio vs same user, cluster and dimension (> 1: slower); "
                "in brackets: successful runs",
            ),
        },
        findings=_findings(table),
    )


ANALYSIS = Analysis(
    name="setting_effects",
    title="Is it related to a setting?",
    description="Failure rate and efficiency per value of each setting, compared with the "
    "other runs, with 95 % confidence intervals; flagged when the effect stands out of the noise.",
    compute=compute,
)
