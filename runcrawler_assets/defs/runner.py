"""Run the whole asset chain in-process, as `runcrawler crawl` does.

Same code path as the UI: the partitions are registered in the Dagster
instance of `DAGSTER_HOME` (default `<data>/dagster_home`) and the assets are
materialized there, so the UI shows the crawl in its run history. All
partitions go into one run (a single-run backfill over the full key range).
The asset checks of the materialized assets run in the same run, as they do
in the sensor's: a blocking check that fails keeps the analytics from running
and fails the run.
"""

import os
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, INGEST_ASSETS
from runcrawler_assets.defs.checks import checks_for
from runcrawler_assets.defs.partitions import all_partition_tags, register_partitions
from runcrawler_assets.defs.resources import ConfigResource, CrawlProgress


def dagster_home(settings: Config) -> Path:
    """`DAGSTER_HOME` when set, else `<data>/dagster_home`, with runcrawler's dagster.yaml."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        template = files("runcrawler_assets.defs").joinpath("dagster_local.yaml")
        config.write_bytes(template.read_bytes())
    return home


def dagster_instance(settings: Config) -> DagsterInstance:
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


def _process_alive(instance: DagsterInstance, run_id: str) -> bool:
    """Whether the process that ran `run_id` (the pid of its events, on this host) still exists."""
    events = (entry.dagster_event for entry in instance.all_logs(run_id))
    pids = {event.pid for event in events if event is not None and event.pid is not None}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:  # alive, another user's
            return True
        return True
    return False


def release_dead_claims(instance: DagsterInstance, pool: str = DUCKDB_POOL) -> list[str]:
    """Free the pool slots held or awaited by runs whose process is gone; returns their ids.

    A step frees its slot when it ends; a crawl killed (SIGKILL, power cut) while
    writing DuckDB, or waiting for the slot, never does, and every later crawl would
    wait for that slot forever. Such a run is also marked failed, so the UI does not
    show it running.
    """
    dead: list[str] = []
    info = instance.event_log_storage.get_concurrency_info(pool)
    for run_id in {step.run_id for step in (*info.claimed_slots, *info.pending_steps)}:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished and _process_alive(instance, run_id):
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, "the process running it was killed")
        dead.append(run_id)
    return dead


# In-process runs print warnings only: the CLI shows its own progress and summary.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _resources(
    settings: Config, parse_workers: int, progress: CrawlProgress | None = None
) -> dict[str, object]:
    return {
        "settings": ConfigResource.from_config(settings, parse_workers),
        "progress": progress or CrawlProgress(),
    }


def crawl(
    settings: Config,
    assets: list[AssetsDefinition],
    instance: DagsterInstance,
    progress: CrawlProgress | None = None,
    parse_workers: int = 2,
) -> CrawlSummary:
    """Register the archive's partitions and materialize `assets` (and their checks) over all."""
    started = time.monotonic()
    release_dead_claims(instance)
    register_partitions(instance, list_partitions(settings))
    tags = all_partition_tags(instance)
    if not tags:
        return CrawlSummary(0, 0, 0, 0, 0, 0, 0, time.monotonic() - started, True)
    result = materialize(
        [*assets, *checks_for(assets)],
        instance=instance,
        resources=_resources(settings, parse_workers, progress),
        tags={**tags, "runcrawler/trigger": "cli"},
        run_config=QUIET_LOGS,
        raise_on_error=False,
    )
    parsed = _metadata(result, "parsed_runs")
    runs = _metadata(result, "runs")
    return CrawlSummary(
        partitions=int(_metadata(result, "run_files").get("partitions", 0)),
        discovered=int(runs.get("discovered", 0)),
        parsed=int(parsed.get("parsed", 0)),
        unchanged=int(parsed.get("unchanged", 0)),
        removed=int(parsed.get("removed", 0)),
        quarantined=int(runs.get("quarantined", 0)),
        rows=int(runs.get("rows_in_table", 0)),
        seconds=time.monotonic() - started,
        success=result.success,
    )


def refresh_partition(
    settings: Config,
    instance: DagsterInstance,
    key: str,
    *,
    reparse_all: bool = False,
    parse_workers: int = 1,
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """One partition's ingest chain and its checks in this process, as the sensor's run does."""
    return materialize(
        [*INGEST_ASSETS, *checks_for(INGEST_ASSETS)],
        instance=instance,
        partition_key=key,
        resources=_resources(settings, parse_workers),
        run_config={
            **QUIET_LOGS,
            "ops": {"parsed_runs": {"config": {"reparse_all": reparse_all}}},
        },
        tags=tags,
        raise_on_error=False,
    )
