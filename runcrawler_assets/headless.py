"""Run the whole asset chain in-process, as `runcrawler crawl` does.

Same code path as the UI: the partitions are registered in the Dagster
instance of `DAGSTER_HOME` (default `<data>/dagster_home`) and the assets are
materialized there, so the UI shows the crawl in its run history. All
partitions go into one run (a single-run backfill over the full key range).
"""

import os
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from dagster import AssetsDefinition, DagsterInstance, materialize

from runcrawler_assets.discovery import list_partitions
from runcrawler_assets.partitions import all_partition_tags, register_partitions
from runcrawler_assets.resources import CrawlProgress, RuncrawlerSettings
from runcrawler_assets.settings import Settings


def dagster_home(settings: Settings) -> Path:
    """`DAGSTER_HOME` when set, else `<data>/dagster_home`, with runcrawler's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home").absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        template = files("runcrawler_assets").joinpath("dagster_local.yaml")
        config.write_bytes(template.read_bytes())
    return home


def dagster_instance(settings: Settings) -> DagsterInstance:
    return DagsterInstance.from_config(str(dagster_home(settings)))


@dataclass(frozen=True)
class CrawlSummary:
    partitions: int
    discovered: int
    parsed: int
    unchanged: int
    removed: int
    quarantined: int
    rows: int
    seconds: float
    success: bool


def _metadata(result: Any, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def crawl(
    settings: Settings,
    assets: list[AssetsDefinition],
    instance: DagsterInstance,
    progress: CrawlProgress | None = None,
    parse_workers: int = 2,
) -> CrawlSummary:
    """Register the archive's partitions and materialize `assets` over all of them."""
    started = time.monotonic()
    register_partitions(instance, list_partitions(settings))
    tags = all_partition_tags(instance)
    if not tags:
        return CrawlSummary(0, 0, 0, 0, 0, 0, 0, time.monotonic() - started, True)
    result = materialize(
        assets,
        instance=instance,
        resources={
            "settings": RuncrawlerSettings.from_settings(settings, parse_workers),
            "progress": progress or CrawlProgress(),
        },
        tags={**tags, "runcrawler/trigger": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
    parsed = _metadata(result, "parsed_runs")
    runs = _metadata(result, "runs")
    return CrawlSummary(
        partitions=int(_metadata(result, "run_files").get("partitions", 0)),
        discovered=int(parsed.get("discovered", 0)),
        parsed=int(parsed.get("parsed", 0)),
        unchanged=int(parsed.get("unchanged", 0)),
        removed=int(parsed.get("removed", 0)),
        quarantined=int(runs.get("quarantined", 0)),
        rows=int(runs.get("rows_in_table", 0)),
        seconds=time.monotonic() - started,
        success=result.success,
    )
