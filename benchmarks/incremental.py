"""Benchmark 2, incremental refresh: 10 runs land in a crawled archive of N runs.

Two paths, each compared with the cold crawl of the same N in the same run:

- **the sensor** (`bench_incremental`): one `archive_sensor` tick (no cursor,
  so it compares with what the crawl recorded), then the runs it requested, in
  this process (one partition changed: one run, the analytics, hints and
  report following the ingest; several: their ingest runs, then the
  analytics, hints and report, as the automation sensor would); this process
  is warm, where a deployed daemon starts a fresh one for each run
  (`daemon_path` measures that path in `dagster dev`);
- **the CLI** (`bench_recrawl`, issue 16): `runcrawler crawl` again with
  nothing changed (idle), then after copying 10 runs in (+10), each in a child
  process as the cold crawl was, with what each did counted from the Dagster
  instance (partitions swapped, analyses computed, assets skipped); next to
  the floors an idle crawl cannot go below: the discovery walk of the archive
  and the start of a Python process importing the Dagster layer; and the
  floor of a +10 crawl: 10 more runs crawled with `--no-analytics` (the
  interpreter, the imports, the scan and the partition's ingest run; last,
  so that the +10 above refreshed the analytics of its own 10 runs only); and
  Dagster's own floor, which no +10 through Dagster goes below: a run of the
  +10's shape whose assets do nothing, in a fresh interpreter (`dagster_floor`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    SensorResult,
    build_sensor_context,
    materialize,
)

from benchmarks.common import REPO, Workspace, crawl_in_child, load_average, temporary_workspace
from benchmarks.dagster_floor import bench_dagster_floor
from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.archive.discovery import discover_partition, list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.defs.runner import (
    QUIET_LOGS,
    launch_in_process,
    materialized_assets,
    run_resources,
)
from runcrawler_assets.defs.sensors import FOLLOWING, archive_sensor


def add_runs(workspace: Workspace, n_runs: int, count: int, prefix: str = "added") -> list[str]:
    """Copy `count` runs of the first user who has that many (in one-folder cases) as new
    runs of the same cases: one partition changes.

    Each copy is made beside the archive, then renamed into it, as a sync tool lands a
    file: a sensor tick scanning meanwhile sees a run whole or not at all (a million-run
    archive is scanned almost without pause). The first such user is found folder by
    folder, not by listing every run of the archive.
    """
    archive = workspace.archive(n_runs)
    sources = next(
        (
            found[:count]
            for user in sorted(path for path in archive.glob("*/*") if path.is_dir())
            if len(found := sorted(p.parent for p in user.glob("*/*/run.params"))) >= count
        ),
        [],
    )
    if len(sources) < count:
        raise ValueError(f"no user of {archive} has {count} runs in one-folder cases")
    landing = Path(tempfile.mkdtemp(prefix=f".{prefix}-", dir=archive.parent))
    added = []
    for index, source in enumerate(sources):
        target = source.with_name(f"{prefix}_{index}")
        shutil.copytree(source, landing / target.name)
        added.append(target)
    for target in added:
        (landing / target.name).rename(target)
    landing.rmdir()
    return [target.relative_to(archive).as_posix() for target in added]


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
        outcomes = [
            launch_in_process(settings, instance, request, parse_workers=2) for request in requests
        ]
        for outcome in outcomes:
            parsed += _parsed_counts(outcome)
        sensor_runs = time.perf_counter() - started
        started = time.perf_counter()
        analysis_names = {a.name for a in ANALYSES}
        if not any(materialized_assets(outcome) & analysis_names for outcome in outcomes):
            outcomes.append(
                materialize(  # what `runcrawler_automation` refreshes after `runs`
                    FOLLOWING,
                    instance=instance,
                    resources=run_resources(settings),
                    run_config=QUIET_LOGS,
                    raise_on_error=False,
                )
            )
        automation_run = time.perf_counter() - started
    computed = set().union(*(materialized_assets(outcome) for outcome in outcomes))
    total = tick + sensor_runs + automation_run
    return {
        "runs": n_runs,
        "added": len(new_runs),
        "partitions_refreshed": len(requests),
        "dagster_runs": len(outcomes),
        "runs_parsed": sum(parsed),
        "tick_s": round(tick, 3),
        "sensor_runs_s": round(sensor_runs, 3),
        "automation_run_s": round(automation_run, 3),  # 0: the sensor's run carried them
        "analyses_computed": len(computed & analysis_names),
        "total_s": round(total, 3),
        "cold_crawl_s": round(crawl.seconds, 2),
        "vs_cold_crawl": round(total / crawl.seconds, 4),
        "load_average": load,
    }


def _new_runs(instance: DagsterInstance, known: set[str]) -> list[str]:
    return [run.run_id for run in instance.get_runs() if run.run_id not in known]


def what_was_done(data_dir: Path, before: set[str]) -> dict[str, Any]:
    """What the crawls since `before` (run ids) materialized, from the Dagster instance."""
    with DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        run_ids = _new_runs(instance, before)
        materialized: list[str] = []
        swapped = rows = charts = redrawn = events = 0
        made_again: dict[str, object] = {}
        for run_id in run_ids:
            logs = instance.all_logs(run_id)  # read once: counted, then its materializations
            events += len(logs)
            for entry in logs:
                event = entry.dagster_event
                if (
                    event is None
                    or event.event_type != DagsterEventType.ASSET_MATERIALIZATION
                    or event.asset_key is None
                ):
                    continue
                materialized.append(event.asset_key.to_user_string())
                metadata = event.step_materialization_data.materialization.metadata
                if event.asset_key.to_user_string() == "runs":
                    swapped = max(swapped, int(metadata["partitions_swapped"].value))
                    rows += int(metadata["rows_written"].value)
                for kept_per in ("users_made_again", "partitions_made_again"):
                    if kept_per in metadata:
                        made_again[event.asset_key.to_user_string()] = metadata[kept_per].value
                if "charts_redrawn" in metadata:
                    charts += sum(key.startswith("chart_") for key in metadata)
                    redrawn += int(metadata["charts_redrawn"].value)
        return {
            "dagster_runs": len(run_ids),
            "events_written": events,
            "assets_materialized": len(materialized),
            "partitions_swapped": swapped,
            "rows_written": rows,
            "analyses_computed": len(set(materialized) & {a.name for a in ANALYSES}),
            "charts_redrawn": f"{redrawn} of {charts}",
            "made_again": made_again,
            "report_written": "report" in materialized,
        }


def _run_ids(data_dir: Path) -> set[str]:
    with DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        return {run.run_id for run in instance.get_runs()}


def _timed_crawl(archive: Path, data_dir: Path, analytics: bool = True) -> dict[str, Any]:
    before = _run_ids(data_dir)
    crawl = crawl_in_child(archive, data_dir, analytics)
    return {"seconds": round(crawl.seconds, 2), **what_was_done(data_dir, before)}


def discovery_walk_s(settings: Config) -> float:
    """The discovery walk of the whole archive (listing and stat, as `run_files` does)."""
    started = time.perf_counter()
    for cluster, user in list_partitions(settings):
        discover_partition(settings, cluster, user)
    return time.perf_counter() - started


def dagster_start_s() -> float:
    """A fresh interpreter importing the Dagster layer: paid by every `runcrawler crawl`."""
    command = [sys.executable, "-c", "import runcrawler_assets.definitions"]
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - started


def bench_recrawl(
    n_runs: int, workspace: Workspace | None = None, added: int = 10, floor_repeats: int = 3
) -> dict:
    """`runcrawler crawl` idle and after `added` new runs, against the cold crawl of `n_runs`,
    and the run of the +10's shape doing nothing (`dagster_floor`, `floor_repeats` times).

    Call it right after the cold crawl (before the sensor benchmark refreshes anything).
    """
    workspace = workspace or temporary_workspace()
    cold = workspace.crawl(n_runs)
    archive = workspace.archive(n_runs)
    settings = Config(archive_root=archive, data_dir=cold.data_dir)
    load = load_average()
    idle = _timed_crawl(archive, cold.data_dir)
    walk = discovery_walk_s(settings)
    start = dagster_start_s()
    new_runs = add_runs(workspace, n_runs, added, prefix="recrawl_added")
    plus = _timed_crawl(archive, cold.data_dir)
    add_runs(workspace, n_runs, added, prefix="recrawl_floor")
    floor = _timed_crawl(archive, cold.data_dir, analytics=False)
    dagster = bench_dagster_floor(workspace.root, floor_repeats)
    return {
        "runs": n_runs,
        "added": len(new_runs),
        "cold_crawl_s": round(cold.seconds, 2),
        "idle": {**idle, "vs_cold_crawl": round(idle["seconds"] / cold.seconds, 4)},
        "plus": {**plus, "vs_cold_crawl": round(plus["seconds"] / cold.seconds, 4)},
        "plus_without_analytics": {
            **floor,
            "vs_cold_crawl": round(floor["seconds"] / cold.seconds, 4),
        },
        "discovery_walk_s": round(walk, 2),
        "dagster_start_s": round(start, 2),
        "dagster_floor": {**dagster, "vs_cold_crawl": round(dagster["median_s"] / cold.seconds, 4)},
        "load_average": [load, load_average()],
    }


def _parsed_counts(outcome: Any) -> list[int]:
    return [
        int(event.materialization.metadata["parsed"].value)
        for event in outcome.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "parsed_runs"
    ]
