"""The statistics the analyses rest on: pure functions of counts and sums, no SQL, no words.

Kept apart so each formula can be read against its textbook and tested with
numbers worked by hand: the Wilson interval of a proportion, the
Mantel-Haenszel risk ratio pooled over strata (Greenland-Robins variance),
the ratio of geometric means from sums of logs (Welch standard error), and
the flag that says a ratio stands out of the noise (Bonferroni-widened
interval excluding 1) and matters (at least `min_ratio` either way).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
# Ratios are kept to this many decimals: DuckDB's parallel sums under them differ in the
# 16th digit from one computation to the next, and a stored table (and its chart) should not.
RATIO_DECIMALS = 9


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
    carry no comparison and drop out by themselves; strata without a finished run (all
    running) are left out before dividing by their size.
    """
    strata = strata[strata["n1"] + strata["n0"] > 0]
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
    from counts, sums and sums of squares: a ratio of geometric means. NaN below 2 runs a side.

    `stats` has `n_log`, `sum_log`, `sum_sq_log` and the same for the rest (`rest_` prefix).
    """

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


def bonferroni_z(tests: pd.Series, level: float = 0.05) -> np.ndarray:
    """The two-sided normal quantile for `level` shared by `tests` tests (at least 1)."""
    return np.array([NormalDist().inv_cdf(1 - level / (2 * max(1, n))) for n in tests])


def ratio_test(
    log_ratio: pd.Series,
    log_se: pd.Series,
    testable: pd.Series,
    family: pd.Series,
    min_ratio: float,
) -> pd.DataFrame:
    """Ratios with their 95 % intervals, and whether each stands out and matters.

    `family` groups the ratios tested together (the values of one setting): a
    ratio is flagged when it is `testable`, its interval widened for the
    number of testable ratios in its family excludes 1, and it is at least
    `min_ratio` or at most 1 / `min_ratio`.
    """
    z = bonferroni_z(testable.groupby(family).transform("sum"))
    ratio = np.exp(log_ratio)
    beyond_noise = (np.exp(log_ratio - z * log_se) > 1) | (np.exp(log_ratio + z * log_se) < 1)
    large = (ratio >= min_ratio) | (ratio <= 1 / min_ratio)
    return pd.DataFrame(
        {
            "ratio": ratio.round(RATIO_DECIMALS),
            "ratio_ci_low": np.exp(log_ratio - Z95 * log_se).round(RATIO_DECIMALS),
            "ratio_ci_high": np.exp(log_ratio + Z95 * log_se).round(RATIO_DECIMALS),
            "flagged": testable & beyond_noise & large,
        },
        index=log_ratio.index,
    )
