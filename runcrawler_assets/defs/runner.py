"""Run the whole asset chain in-process, as `runcrawler crawl` does.

Same code path as the UI: the partitions are registered in the Dagster
instance of `DAGSTER_HOME` (default `<data>/dagster_home`) and the assets are
materialized there, so the UI shows the crawl in its run history. The
partitions to refresh go into one run (a single-run backfill over their key
range). The asset checks of the materialized assets run in the same run, as
they do in the sensor's: a blocking check that fails keeps the analytics from
running and fails the run.

Nothing changed, nothing done (issue 16). A scan of the archive (names and
`stat` only, with the sensor's per-run state) first finds the partitions with
anything to do: runs added, changed or removed, or a JSON store not yet
swapped into DuckDB as it is. With none, and every analysis computed from
`runs` as it is, no run is launched: the summary says "skipped: runs
unchanged" (the CLI does not even get here when the instance holds every
partition: `runcrawler_assets.idle`). Otherwise the run covers the key range
of those partitions; in it `runs` materializes only when a partition's rows
were swapped, and each analysis only when `runs` differs from what it was
computed from; what did not change is skipped by Dagster (its step and
everything downstream in the run), and the summary lists it. Analyses left out
of date by an earlier run without them (`crawl --no-analytics`, a sensor's
ingest) get a run of their own."""

import os
import time
from collections.abc import Iterable
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from dagster import (
    AssetsDefinition,
    DagsterInstance,
    ExecuteInProcessResult,
    MultiPartitionKey,
    PartitionKeyRange,
    RunRequest,
    materialize,
)

from runcrawler_assets.accounting.load import dumps_changed
from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import ArchiveCheck, check_archive
from runcrawler_assets.defs.assets.accounting import accounting
from runcrawler_assets.defs.assets.analytics import only_what_changed
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, INGEST_ASSETS
from runcrawler_assets.defs.checks import checks_for
from runcrawler_assets.defs.partitions import (
    CLUSTER,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    USER,
    cluster_partitions,
    cluster_user_partitions,
    names_of,
    register_partitions,
    user_partitions,
)
from runcrawler_assets.defs.resources import ChartDrawing, ConfigResource, CrawlProgress
from runcrawler_assets.defs.sensors import FOLLOWING, INGEST_KEYS
from runcrawler_assets.idle import (
    CrawlSummary,
    scan_reusable,
    stale_analytics,
    swap_versions,
    table_counts,
)
from runcrawler_assets.warehouse.database import connect


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


def _metadata(result: Any, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    return {}


def materialized_assets(result: Any) -> set[str]:
    """The names of the assets a run materialized."""
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def _asset_names(assets: list[AssetsDefinition]) -> list[str]:
    return [key.to_user_string() for asset in assets for key in asset.keys]


def _root_message(error: Any) -> str:
    """The last line of the innermost cause of a step's error (Dagster wraps the asset's own
    error), without its exception's module path: what the user can act on."""
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines() or ["failed"]
    kind, colon, text = lines[-1].partition(": ")
    return f"{kind.rpartition('.')[2]}: {text}" if colon else lines[-1]


def _failed_assets(result: Any, assets: list[AssetsDefinition]) -> dict[str, str]:
    """The assets among `assets` whose step failed in `result` (a step of several assets:
    those it did not materialize), each with its error's message."""
    done = materialized_assets(result)
    failed: dict[str, str] = {}
    for event in result.get_step_failure_events():
        message = _root_message(event.step_failure_data.error)
        for asset in assets:
            if asset.op.name == event.step_key:
                failed |= {key.to_user_string(): message for key in asset.keys}
    return {name: message for name, message in failed.items() if name not in done}


def _table_counts(settings: Config) -> tuple[int, int]:
    """Rows of `runs` and entries of `quarantine` now (whether or not this run swapped any)."""
    if not settings.duckdb_path.exists():
        return 0, 0
    with connect(settings.duckdb_path, read_only=True) as con:
        return table_counts(con)


def _out_of_date_analyses(settings: Config, assets: list[AssetsDefinition]) -> list[str]:
    """`idle.stale_analytics` among `assets` (no warehouse opened when none of them is an
    analysis or the hints)."""
    wanted = set(_asset_names(assets))
    analytics = {a.name for a in ANALYSES} | {"hints"}
    if not wanted & analytics or not settings.duckdb_path.exists():
        return []
    with connect(settings.duckdb_path, read_only=True) as con:
        return stale_analytics(con, wanted)


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


def run_resources(
    settings: Config,
    parse_workers: int | None = None,
    progress: CrawlProgress | None = None,
    archive_runs: int = 0,
) -> dict[str, object]:
    """The resources a run of runcrawler's assets needs, for `settings` (`parse_workers` in
    place of its own, when given) and an archive of `archive_runs` runs (0: unknown): what
    the CLI, the benchmarks and the tests run with."""
    if parse_workers is not None:
        settings = replace(settings, parse_workers=parse_workers)
    return {
        "settings": ConfigResource.from_config(settings),
        "progress": progress or CrawlProgress(),
        "drawing": ChartDrawing.from_config(settings, archive_runs),
    }


def _only_what_changed(names: Iterable[str], full_scan: bool = False) -> dict[str, Any]:
    return {**QUIET_LOGS, **only_what_changed(names, walk_all=full_scan)}


def _stale_range_tags(
    instance: DagsterInstance, keys: list[str], stale: set[str]
) -> dict[str, str]:
    """Run tags covering a key range that holds every stale partition (those in between
    are unchanged: discovered again, neither parsed nor swapped).

    A range of multi-partition keys is a box, one interval per dimension, so the range
    goes from the stale partitions' first cluster and user to their last; if Dagster
    reads it otherwise, the full range is used.
    """
    bounds: dict[str, list[str]] = {}
    for dimension in (CLUSTER, USER):
        definition = cluster_partitions if dimension == CLUSTER else user_partitions
        assert definition.name is not None
        order = list(instance.get_dynamic_partitions(definition.name))
        wanted = {
            cluster_user_partitions.get_partition_key_from_str(key).keys_by_dimension[dimension]
            for key in stale
        }
        positions = [order.index(name) for name in wanted if name in order]
        bounds[dimension] = [order[min(positions)], order[max(positions)]] if positions else []
    if all(bounds.values()):
        start = MultiPartitionKey({d: bounds[d][0] for d in (CLUSTER, USER)})
        end = MultiPartitionKey({d: bounds[d][1] for d in (CLUSTER, USER)})
        covered = set(
            cluster_user_partitions.get_partition_keys_in_range(
                PartitionKeyRange(str(start), str(end)), dynamic_partitions_store=instance
            )
        )
        if stale <= covered:
            return {PARTITION_RANGE_START_TAG: str(start), PARTITION_RANGE_END_TAG: str(end)}
    return {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}


def crawl(
    settings: Config,
    assets: list[AssetsDefinition],
    instance: DagsterInstance,
    progress: CrawlProgress | None = None,
    parse_workers: int = 2,
    full_scan: bool = False,
    check: ArchiveCheck | None = None,
) -> CrawlSummary:
    """Register the archive's partitions and materialize `assets` (and their checks) where
    something changed.

    A scan first (names and `stat` only, as the sensor's; every file stated with
    `full_scan`) finds the partitions with anything to do; the run covers just their key
    range. With none, and the analytics current, no run is launched at all: the summary
    says what was skipped. `check`: that scan, made already (by the CLI, `idle`), reused
    when it covered the partitions the instance holds and no accounting is joined.
    """
    started = time.monotonic()
    release_dead_claims(instance)
    register_partitions(instance, list_partitions(settings))
    keys = [
        str(k)
        for k in cluster_user_partitions.get_partition_keys(dynamic_partitions_store=instance)
    ]
    if not keys:
        return CrawlSummary(0, 0, 0, 0, 0, 0, 0, time.monotonic() - started, True)
    names = {key: names_of(key) for key in keys}
    resources = run_resources(settings, parse_workers, progress)
    success = _load_changed_accounting(settings, instance, resources)
    # The CLI's scan, if it covered every partition the instance holds and may be reused.
    if (
        check is None
        or not scan_reusable(settings, full_scan)
        or check.checked != set(names.values())
    ):
        check = check_archive(settings, names.values(), *swap_versions(settings), full_scan)
    # Again with the runs the scan counted, which a first crawl's store does not know yet.
    resources = run_resources(settings, parse_workers, progress, archive_runs=check.scanned)
    stale_pairs = set(check.stale)
    stale = {key for key, pair in names.items() if pair in stale_pairs}
    materialized: set[str] = set()
    failed: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    runs: dict[str, Any] = {}
    if stale and success:
        result = materialize(
            [*assets, *checks_for(assets)],
            instance=instance,
            resources=resources,
            tags={**_stale_range_tags(instance, keys, stale), "runcrawler/trigger": "cli"},
            run_config=_only_what_changed(_asset_names(assets), full_scan),
            raise_on_error=False,
        )
        materialized, success = materialized_assets(result), result.success
        failed = _failed_assets(result, assets)
        parsed, runs = _metadata(result, "parsed_runs"), _metadata(result, "runs")
    # Analyses (or hints) out of date with `runs` although it did not change now (an earlier
    # `--no-analytics` crawl, a sensor's ingest, a step that failed): Dagster skipped them
    # with `runs`.
    later = _out_of_date_analyses(settings, assets) if success else []
    if later:
        # What reads the analyses follows them: the report, and the hints (typical fixes).
        readers = [name for name in _asset_names(assets) if name in {"report", "hints"}]
        again = materialize(
            assets,
            selection=sorted({*later, *readers}),
            instance=instance,
            resources=resources,
            tags={"runcrawler/trigger": "cli"},
            run_config=_only_what_changed(later),
            raise_on_error=False,
        )
        materialized |= materialized_assets(again)
        failed |= _failed_assets(again, assets)
        success = again.success
    rows, quarantined = _table_counts(settings)
    n_parsed = int(parsed.get("parsed", 0))
    analyses = {a.name for a in ANALYSES}
    found, problems = check.found(settings.runs_dir)
    return CrawlSummary(
        partitions=len(keys),
        discovered=found + problems,
        parsed=n_parsed,
        unchanged=found - int(parsed.get("new", 0)) - int(parsed.get("changed", 0)),
        removed=int(parsed.get("removed", 0)),
        quarantined=quarantined,
        rows=rows,
        seconds=time.monotonic() - started,
        success=success,
        partitions_swapped=int(runs.get("partitions_swapped", 0)),
        analyses_computed=len(materialized & analyses),
        # A failed crawl claims nothing unchanged: what a failed step held back did not run.
        skipped=tuple(n for n in _asset_names(assets) if n not in materialized) if success else (),
        failed=tuple(failed.items()),
    )


def _load_changed_accounting(
    settings: Config, instance: DagsterInstance, resources: dict[str, object]
) -> bool:
    """Materialize `accounting` first when its dumps changed (a run of its own: the stale
    partitions of `runs` are known only once the new dumps are loaded); False if it failed."""
    if settings.accounting_dir is None:
        return True
    with connect(settings.duckdb_path) as con:
        if not dumps_changed(con, settings.accounting_dir):
            return True
    result = materialize(
        [accounting],
        instance=instance,
        resources=resources,
        tags={"runcrawler/trigger": "cli"},
        run_config=QUIET_LOGS,
        raise_on_error=False,
    )
    return result.success


def refresh_partition(
    settings: Config,
    instance: DagsterInstance,
    key: str,
    *,
    reparse_all: bool = False,
    parse_workers: int = 1,
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """One partition's ingest chain and its checks in this process, as the sensor's run for
    one of several changed partitions does."""
    request = RunRequest(
        partition_key=key,
        asset_selection=INGEST_KEYS,
        run_config={"ops": {"parsed_runs": {"config": {"reparse_all": reparse_all}}}},
        tags=tags or {},
    )
    return launch_in_process(settings, instance, request, parse_workers)


def launch_in_process(
    settings: Config, instance: DagsterInstance, request: RunRequest, parse_workers: int = 1
) -> ExecuteInProcessResult:
    """A run the archive sensor requested, executed in this process as the daemon runs it
    (its assets, partition, config and tags)."""
    return materialize(
        [*INGEST_ASSETS, *FOLLOWING, *checks_for(INGEST_ASSETS)],
        selection=request.asset_selection,
        instance=instance,
        partition_key=request.partition_key,
        resources=run_resources(settings, parse_workers),
        run_config={**QUIET_LOGS, **request.run_config},
        tags=request.tags,
        raise_on_error=False,
    )
