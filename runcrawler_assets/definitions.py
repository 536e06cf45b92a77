"""All of runcrawler's Dagster definitions, assembled in one place.

`workspace.yaml` loads `defs` from here. The RUNCRAWLER_* variables are
taken as they are when the code location loads, and parsed when a tick or a
run needs them (see `ConfigResource`): a bad value fails those with a message
naming it, and never keeps the code location from loading.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.accounting import accounting
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.assets.tell import digests, hints
from runcrawler_assets.defs.checks import ASSET_CHECKS, with_report_freshness
from runcrawler_assets.defs.resources import (
    ChartDrawing,
    ConfigResource,
    CrawlProgress,
    SmtpResource,
    WebhookResource,
)
from runcrawler_assets.defs.schedules import (
    digest_schedule,
    nightly_reconciliation,
    reconcile_job,
    send_digests_job,
)
from runcrawler_assets.defs.sensors import archive_sensor, automation_sensor


def build_definitions(config: Config | None = None) -> Definitions:
    """The definitions for `config` (default: the environment's, parsed on use)."""
    resource = ConfigResource.from_config(config) if config else ConfigResource.from_env()
    at_load = config or Config.from_env_or_defaults()
    return Definitions(
        assets=with_report_freshness(
            [accounting, *INGEST_ASSETS, analyses, report, hints, digests]
        ),
        asset_checks=ASSET_CHECKS,
        sensors=[archive_sensor, automation_sensor],
        schedules=[nightly_reconciliation, digest_schedule],
        jobs=[reconcile_job, send_digests_job],
        # A run's steps form a chain and its DuckDB writes are serialized anyway: a
        # subprocess per step would only add start-up time. Runs execute side by side.
        executor=in_process_executor,
        resources={
            "settings": resource,
            "progress": CrawlProgress(),
            "drawing": ChartDrawing.from_config(at_load),
            "smtp": SmtpResource.from_config(at_load),
            "webhook": WebhookResource.from_config(at_load),
        },
    )


defs = build_definitions()
