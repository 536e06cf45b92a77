"""Benchmark 2, incremental refresh: 10 runs land in a crawled archive of N runs.

Timed as the deployment does it: one `archive_sensor` tick (no cursor, so it
compares with what the crawl recorded), then materializing the ingest assets of
just the partitions it requested. Compared with the cold crawl of the same N.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from dagster import DagsterInstance, SensorResult, build_sensor_context

from benchmarks.common import Workspace, load_average, temporary_workspace
from runcrawler_assets.config import Config
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.defs.runner import refresh_partition
from runcrawler_assets.defs.sensors import archive_sensor


def add_runs(workspace: Workspace, n_runs: int, count: int) -> list[str]:
    """Copy `count` runs of the first user's first case as new runs of the same case."""
    archive = workspace.archive(n_runs)
    sources = sorted(p.parent for p in archive.glob("*/*/*/*/run.params"))[:count]
    added = []
    for index, source in enumerate(sources):
        target = source.with_name(f"added_{index}")
        shutil.copytree(source, target)
        added.append(target.relative_to(archive).as_posix())
    return added


def bench_incremental(n_runs: int, workspace: Workspace | None = None, added: int = 10) -> dict:
    """Sensor tick + refresh of `added` new runs after the cold crawl of `n_runs`."""
    workspace = workspace or temporary_workspace()
    crawl = workspace.crawl(n_runs)
    settings = Config(archive_root=workspace.archive(n_runs), data_dir=crawl.data_dir)
    resource = ConfigResource.from_config(settings)
    new_runs = add_runs(workspace, n_runs, added)
    load = load_average()
    with DagsterInstance.from_config(str(crawl.data_dir / "dagster_home")) as instance:
        started = time.perf_counter()
        context = build_sensor_context(instance=instance, resources={"settings": resource})
        result = archive_sensor(context)
        tick = time.perf_counter() - started
        requests = result.run_requests if isinstance(result, SensorResult) else []
        parsed: list[Any] = []
        started = time.perf_counter()
        for request in requests:
            outcome = refresh_partition(settings, instance, request.partition_key, parse_workers=2)
            parsed += _parsed_counts(outcome)
        refresh = time.perf_counter() - started
    return {
        "runs": n_runs,
        "added": len(new_runs),
        "partitions_refreshed": len(requests),
        "runs_parsed": sum(parsed),
        "tick_s": round(tick, 3),
        "refresh_s": round(refresh, 3),
        "total_s": round(tick + refresh, 3),
        "cold_crawl_s": round(crawl.seconds, 2),
        "vs_cold_crawl": round((tick + refresh) / crawl.seconds, 4),
        "load_average": load,
    }


def _parsed_counts(outcome: Any) -> list[int]:
    return [
        int(event.materialization.metadata["parsed"].value)
        for event in outcome.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "parsed_runs"
    ]
