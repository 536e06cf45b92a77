"""All of runcrawler's Dagster definitions, assembled in one place.

`workspace.yaml` loads `defs` from here. Settings come from the environment
(RUNCRAWLER_ARCHIVE, RUNCRAWLER_DATA, ...) when the code location loads.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from runcrawler_assets.assets.analytics import ANALYSIS_ASSETS, report
from runcrawler_assets.assets.ingest import INGEST_ASSETS
from runcrawler_assets.resources import CrawlProgress, RuncrawlerSettings
from runcrawler_assets.schedules import nightly_reconciliation, reconcile_job
from runcrawler_assets.sensors import archive_sensor, automation_sensor
from runcrawler_assets.settings import Settings


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
