"""Benchmark 5, sensor tick: one `archive_sensor` evaluation over N run directories.

Compared with the floor of any change detection by stat: a bare walk that lists
every folder down to the run directories and stats every file in them. The tick
rests on the sensor's saved per-run state (archive/rescan.py), made by a first
scan without it, which is timed too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dagster import DagsterInstance, SkipReason, build_sensor_context

from benchmarks.common import Workspace, load_average, temporary_workspace
from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.defs.partitions import register_partitions
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.defs.sensors import archive_sensor, scan_digests

ROUNDS = 2


def stat_walk(root: Path) -> int:
    """List every folder and stat every entry, descending into folders; returns entries seen."""
    seen = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                entry.stat(follow_symlinks=False)
                seen += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return seen


def bench_sensor_tick(n_runs: int, workspace: Workspace | None = None) -> dict:
    """Seconds of a steady-state tick (nothing changed) against the bare stat walk, best of 2."""
    workspace = workspace or temporary_workspace()
    archive = workspace.archive(n_runs)
    resource = ConfigResource.from_config(
        Config(archive_root=archive, data_dir=workspace.root / "sensor-data")
    )
    started = time.perf_counter()
    cursor = json.dumps(scan_digests(resource), sort_keys=True)  # no saved state: a full scan
    first_scan = time.perf_counter() - started
    load = load_average()
    ticks, walks, skipped, entries = [], [], True, 0
    with DagsterInstance.ephemeral() as instance:
        register_partitions(instance, list_partitions(resource.config))
        for _ in range(ROUNDS):
            started = time.perf_counter()
            entries = stat_walk(archive)
            walks.append(time.perf_counter() - started)
            context = build_sensor_context(
                instance=instance, cursor=cursor, resources={"settings": resource}
            )
            started = time.perf_counter()
            skipped &= isinstance(archive_sensor(context), SkipReason)
            ticks.append(time.perf_counter() - started)
    return {
        "runs": n_runs,
        "entries_walked": entries,
        "tick_s": round(min(ticks), 3),
        "stat_walk_s": round(min(walks), 3),
        "tick_us_per_run": round(min(ticks) / n_runs * 1e6, 1),
        "first_scan_s": round(first_scan, 3),
        "vs_stat_walk": round(min(ticks) / min(walks), 2),
        "skipped_unchanged": skipped,
        "load_average": load,
    }
