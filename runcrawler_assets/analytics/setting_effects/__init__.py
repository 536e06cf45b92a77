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

Four parts: `tables` (the SQL and the table), `kept` (its partials kept per
partition between refreshes), `analytics.statistics` (the formulas, pure
functions) and `sentences` (the findings).
"""

from __future__ import annotations

import duckdb

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter
from runcrawler_assets.analytics.setting_effects import sentences
from runcrawler_assets.analytics.setting_effects.kept import (
    KeptEffects,
    kept_effects,
    partials_memo,
)
from runcrawler_assets.analytics.setting_effects.tables import (
    BY_USER,
    MIN_RATIO,
    MIN_RUNS,
    SETTINGS,
)

MEMO = partials_memo("setting_effect", SETTINGS, BY_USER, ("user",))


def _result(kept: KeptEffects) -> AnalysisResult:
    table = sentences.with_sentences(kept.table)
    return AnalysisResult(
        tables={"setting_effects": table, **kept.tables},
        findings=sentences.findings(table),
        made_again=kept.made_again,
        made_of=kept.made_of,
    )


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    return _result(kept_effects(con, MEMO, SETTINGS, BY_USER, run_filter))


def refresh(con: duckdb.DuckDBPyConnection) -> AnalysisResult:
    """`compute` over all runs, the partials of the partitions whose runs did not change
    read from the stored ones (`kept`)."""
    return _result(kept_effects(con, MEMO, SETTINGS, BY_USER))


ANALYSIS = Analysis(
    name="setting_effects",
    title="Is it related to a setting?",
    description="Failure rate and efficiency per value of each setting, compared with the "
    "other runs, with 95 % confidence intervals; flagged when the effect stands out of the noise.",
    compute=compute,
    refresh=refresh,
    tables=("setting_effects",),
    kept_tables=(*MEMO.kept, MEMO.digests),
)

__all__ = ["ANALYSIS", "MEMO", "MIN_RATIO", "MIN_RUNS", "SETTINGS", "compute"]
