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

from runcrawler_assets import charts
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


def runs_with_settings(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per run: user, each setting's value label, outcome, normalised efficiency."""
    values = ",\n".join(f'{s.value_sql} AS "{s.name}"' for s in SETTINGS)
    return query(
        con,
        f"""
        WITH filtered AS (SELECT * FROM {{runs}}),
        usual AS (
            SELECT "user", cluster, dimension, median(efficiency) AS usual_efficiency
            FROM filtered WHERE status = 'success' AND efficiency > 0 GROUP BY ALL
        )
        SELECT "user", {values},
               status NOT IN $unfinished AS finished,
               status IN $failed AS failed,
               CASE WHEN status = 'success' AND efficiency > 0 THEN efficiency END AS efficiency,
               CASE WHEN status = 'success' AND efficiency > 0
                    THEN efficiency / usual_efficiency END AS relative_efficiency
        FROM filtered LEFT JOIN usual USING ("user", cluster, dimension)
        """,
        run_filter,
        unfinished=list(UNFINISHED_STATUSES),
        failed=list(FAILED_STATUSES),
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


def log_mean_ratio(values: np.ndarray, rest: np.ndarray) -> tuple[float, float]:
    """(difference of mean logs, its Welch standard error): a ratio of geometric means."""
    if len(values) < 2 or len(rest) < 2:
        return math.nan, math.nan
    a, b = np.log(values), np.log(rest)
    return float(a.mean() - b.mean()), float(
        math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    )


def median_interval(values: np.ndarray) -> tuple[float, float]:
    """Distribution-free 95 % interval of a median, from order statistics (binomial ranks)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    ordered = np.sort(values)
    low = max(0, math.floor(n / 2 - Z95 * math.sqrt(n) / 2))
    high = min(n - 1, math.ceil(n / 2 + Z95 * math.sqrt(n) / 2) - 1)
    return float(ordered[low]), float(ordered[high])


def _ratio_columns(prefix: str, estimate: float, se: float, z: float) -> dict[str, float]:
    return {
        f"{prefix}_ratio": math.exp(estimate),
        f"{prefix}_ratio_ci_low": math.exp(estimate - Z95 * se),
        f"{prefix}_ratio_ci_high": math.exp(estimate + Z95 * se),
        f"{prefix}_flag_low": math.exp(estimate - z * se),
        f"{prefix}_flag_high": math.exp(estimate + z * se),
    }


def _compare(runs: pd.DataFrame, setting: str, value: str) -> dict[str, object]:
    """All statistics of one value against the rest of the runs, before flagging."""
    mine = runs[setting] == value
    finished = runs["finished"].astype(bool)
    failed = runs["failed"].astype(bool)
    strata = (
        pd.DataFrame(
            {
                "user": runs["user"],
                "a": failed & mine,
                "n1": finished & mine,
                "c": failed & ~mine,
                "n0": finished & ~mine,
            }
        )
        .groupby("user")
        .sum()
    )
    k1, n1, k2, n2 = (int(strata[col].sum()) for col in ("a", "n1", "c", "n0"))
    rate_low, rate_high = wilson_interval(k1, n1)
    efficiency = runs.loc[mine, "efficiency"].dropna().to_numpy()
    relative = runs.loc[mine, "relative_efficiency"].dropna().to_numpy()
    relative_rest = runs.loc[~mine, "relative_efficiency"].dropna().to_numpy()
    eff_low, eff_high = median_interval(efficiency)
    return {
        "setting": setting,
        "value": value,
        "finished_runs": n1,
        "failed_runs": k1,
        "failure_rate": k1 / n1 if n1 else math.nan,
        "failure_rate_ci_low": rate_low,
        "failure_rate_ci_high": rate_high,
        "rest_finished_runs": n2,
        "rest_failure_rate": k2 / n2 if n2 else math.nan,
        "failure_stats": mantel_haenszel_risk_ratio(strata),
        "successful_runs": len(efficiency),
        "rest_successful_runs": len(relative_rest),
        "median_efficiency": float(np.median(efficiency)) if len(efficiency) else math.nan,
        "median_efficiency_ci_low": eff_low,
        "median_efficiency_ci_high": eff_high,
        "efficiency_stats": log_mean_ratio(relative, relative_rest),
    }


def _flag(table: pd.DataFrame, prefix: str, n_col: str, rest_col: str) -> pd.DataFrame:
    """Ratio columns with 95 % intervals, and the flag from the Bonferroni-widened interval."""
    testable = (table[n_col] >= MIN_RUNS) & (table[rest_col] >= MIN_RUNS)
    tests = testable.groupby(table["setting"]).transform("sum").clip(lower=1)
    z = [NormalDist().inv_cdf(1 - 0.05 / (2 * n)) for n in tests]
    columns = pd.DataFrame(
        [
            _ratio_columns(prefix, est, se, z_value)
            for (est, se), z_value in zip(table[f"{prefix}_stats"], z, strict=True)
        ],
        index=table.index,
    )
    beyond_noise = (columns[f"{prefix}_flag_low"] > 1) | (columns[f"{prefix}_flag_high"] < 1)
    large = (columns[f"{prefix}_ratio"] >= MIN_RATIO) | (
        columns[f"{prefix}_ratio"] <= 1 / MIN_RATIO
    )
    table = pd.concat([table.drop(columns=f"{prefix}_stats"), columns], axis=1)
    table[f"{prefix}_flagged"] = testable & beyond_noise & large
    return table.drop(columns=[f"{prefix}_flag_low", f"{prefix}_flag_high"])


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
    runs = runs_with_settings(con, run_filter)
    rows = [
        _compare(runs, setting.name, value)
        for setting in SETTINGS
        for value in setting.sorted_values(runs[setting.name])
    ]
    if not rows:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    table = pd.DataFrame(rows)
    table = _flag(table, "failure", "finished_runs", "rest_finished_runs")
    table = _flag(table, "efficiency", "successful_runs", "rest_successful_runs")
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
