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

Three parts: `tables` (the SQL and the table), `analytics.statistics` (the
formulas, pure functions) and `sentences` (the findings).
"""

from __future__ import annotations

import duckdb

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter
from runcrawler_assets.analytics.setting_effects import sentences
from runcrawler_assets.analytics.setting_effects.tables import (
    MIN_RATIO,
    MIN_RUNS,
    SETTINGS,
    setting_effects,
)


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table = sentences.with_sentences(setting_effects(con, run_filter))
    return AnalysisResult(tables={"setting_effects": table}, findings=sentences.findings(table))


ANALYSIS = Analysis(
    name="setting_effects",
    title="Is it related to a setting?",
    description="Failure rate and efficiency per value of each setting, compared with the "
    "other runs, with 95 % confidence intervals; flagged when the effect stands out of the noise.",
    compute=compute,
    tables=("setting_effects",),
)

__all__ = ["ANALYSIS", "MIN_RATIO", "MIN_RUNS", "SETTINGS", "compute", "setting_effects"]
