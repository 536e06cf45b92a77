"""The analytics core: one `Analysis` per question managers ask, over the `runs` table.

`ANALYSES` is the one registry: the Dagster layer makes one asset per entry
and the report one section per entry, in this order. Nothing here imports
Dagster.
"""

from __future__ import annotations

from runcrawler_assets.analytics import (
    activity,
    efficiency,
    errors,
    habits,
    setting_effects,
    settings_usage,
)
from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter
from runcrawler_assets.analytics.outputs import run_all, write_outputs

ANALYSES: tuple[Analysis, ...] = (
    errors.ANALYSIS,
    activity.ANALYSIS,
    settings_usage.ANALYSIS,
    habits.ANALYSIS,
    efficiency.ANALYSIS,
    setting_effects.ANALYSIS,
)

__all__ = ["ANALYSES", "Analysis", "AnalysisResult", "RunFilter", "run_all", "write_outputs"]
