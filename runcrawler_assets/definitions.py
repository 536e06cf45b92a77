"""All of runcrawler's Dagster definitions, assembled in one place.

`workspace.yaml` loads `defs` from here. Settings come from the environment
(RUNCRAWLER_ARCHIVE, RUNCRAWLER_DATA, ...) when the code location loads.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from runcrawler_assets.config import Settings
from runcrawler_assets.defs.assets.analytics import ANALYSIS_ASSETS, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.resources import CrawlProgress, RuncrawlerSettings
from runcrawler_assets.defs.schedules import nightly_reconciliation, reconcile_job
from runcrawler_assets.defs.sensors import archive_sensor, automation_sensor


def build_definitions(settings: Settings | None = None) -> Definitions:
    """The definitions for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    return Definitions(
        assets=[*INGEST_ASSETS, *ANALYSIS_ASSETS, report],
        sensors=[archive_sensor, automation_sensor],
        schedules=[nightly_reconciliation],
        jobs=[reconcile_job],
        # A run's steps form a chain and its DuckDB writes are serialized anyway: a
        # subprocess per step would only add start-up time. Runs execute side by side.
        executor=in_process_executor,
        resources={
            "settings": RuncrawlerSettings.from_settings(settings),
            "progress": CrawlProgress(),
        },
    )


defs = build_definitions()
