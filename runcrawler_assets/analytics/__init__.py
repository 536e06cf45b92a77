"""The analytics core: one `Analysis` per question managers ask, over the `runs` table.

`ANALYSES` is the one registry: the Dagster layer makes one asset per entry
and the report one section per entry, in this order. An analysis returns
tables and findings, never pictures (charts are planned from the stored
tables by `reporting.plans` and drawn by `reporting.figures`); `store` keeps
them in DuckDB. Nothing here imports Dagster or matplotlib.
"""

from __future__ import annotations

from runcrawler_assets.analytics import (
    activity,
    campaigns,
    efficiency,
    errors,
    fixes,
    habits,
    scheduler,
    setting_effects,
    settings_usage,
    signatures,
    version_effects,
)
from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter
from runcrawler_assets.analytics.store import (
    StoredResult,
    compute_results,
    load_results,
    refresh,
    runs_version,
    store_result,
)

ANALYSES: tuple[Analysis, ...] = (
    errors.ANALYSIS,
    signatures.ANALYSIS,
    fixes.ANALYSIS,
    campaigns.ANALYSIS,
    activity.ANALYSIS,
    settings_usage.ANALYSIS,
    habits.ANALYSIS,
    efficiency.ANALYSIS,
    setting_effects.ANALYSIS,
    version_effects.ANALYSIS,
    scheduler.ANALYSIS,
)

__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalysisResult",
    "RunFilter",
    "StoredResult",
    "compute_results",
    "load_results",
    "refresh",
    "runs_version",
    "store_result",
]
