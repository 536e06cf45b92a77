"""Benchmark 4, memory of the analytics: each analytics asset's peak RSS in a Dagster process.

What a crawl's process holds while its analytics run (issue 16, goal 4): every
analysis asset, then `hints` and `report`, materialized one at a time in one
process (Dagster, pandas, matplotlib and DuckDB loaded, as in a crawl) on a
`runs` table of N rows replicated as `benchmarks.analytics` does, under the
analytics memory cap given (`RUNCRAWLER_ANALYTICS_MEMORY`). The peak of each
is the process's own high-water mark (VmHWM), reset before it (Linux's
`clear_refs`), so no sampling can miss it. The chart worker's own high-water mark
is read every 20 ms while it lives; their sum (`tree_peak_mb`) bounds the process
tree's peak from above, the two peaks need not coincide.

    .venv/bin/python -m benchmarks.analytics_memory --rows 1000000 --cap 256MB

Run so, the benchmark's `__main__` is this package's `__main__.py`, which a spawned chart
worker does not import again (multiprocessing skips a `*.__main__`): the worker holds what
it holds in a Dagster run (`python -m dagster`) or under `runcrawler crawl`, not this
module's Dagster (~40 MB and a second of its start, as a module run with `-m` it did).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from dagster import AssetsDefinition, DagsterInstance, materialize

from benchmarks.analytics import replicate_runs
from benchmarks.common import (
    Workspace,
    descendants,
    load_average,
    memory_mb,
    peak_rss_mb,
    rows_parser,
    rows_workspace,
    temporary_workspace,
)
from runcrawler_assets.config import AUTO, Config, ConfigError
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.tell import hints
from runcrawler_assets.defs.runner import run_resources


def _memory_mb() -> dict[str, int]:
    """This process's resident memory now and its high-water mark, read at once, in MB."""
    return {name: round(mb) for name, mb in memory_mb(os.getpid()).items()}


def _reset_peak() -> None:
    """The high-water mark back to the current RSS (Linux ≥ 4.0: `clear_refs` 5)."""
    Path("/proc/self/clear_refs").write_text("5")


class _ChildrenPeak:
    """The summed high-water marks of this process's children (the chart worker), in MB,
    each read every 20 ms while it lives within the block."""

    def __init__(self) -> None:
        self._peaks: dict[int, float] = {}
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    @property
    def mb(self) -> int:
        return round(sum(self._peaks.values()))

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            for pid in descendants(os.getpid()):
                self._peaks[pid] = max(self._peaks.get(pid, 0.0), peak_rss_mb(pid))

    def __enter__(self) -> _ChildrenPeak:
        self._sampler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._sampler.join()


def _asset_peaks(settings: Config) -> dict[str, dict[str, float]]:
    """Seconds and peak RSS of each analytics step (the analyses, the hints, the report)
    materialized alone, in order."""
    resources = run_resources(settings)
    assets: list[AssetsDefinition] = [analyses, hints, report]
    figures = {}
    with DagsterInstance.ephemeral() as instance:
        for asset in assets:
            _reset_peak()
            started = time.perf_counter()
            with _ChildrenPeak() as children:
                result = materialize(
                    [asset], resources=resources, instance=instance, selection=[asset]
                )
            seconds, memory = round(time.perf_counter() - started, 2), _memory_mb()
            figures[asset.op.name] = {
                "seconds": seconds,
                "peak_rss_mb": memory["VmHWM"],
                "rss_after_mb": memory["VmRSS"],
                "children_peak_mb": children.mb,
                "tree_peak_mb": memory["VmHWM"] + children.mb,
                "success": result.success,
            }
    return figures


def bench_analytics_memory(
    n_rows: int,
    workspace: Workspace | None = None,
    source_runs: int = 2000,
    cap: str = AUTO,
    workers: int = 2,
) -> dict:
    """Each analytics asset's peak RSS on `n_rows` rows under the cap `cap` with `workers`
    processes (`RUNCRAWLER_WORKERS`: 1, no chart worker; nor from `BIG_ARCHIVE_RUNS` rows),
    and the process's RSS before them (what Dagster and the libraries hold)."""
    workspace = workspace or temporary_workspace()
    source = workspace.crawl(source_runs).data_dir / "runcrawler.duckdb"
    data = workspace.root / f"analytics-memory-{n_rows}"
    data.mkdir(exist_ok=True)
    rows = replicate_runs(source, data / "runcrawler.duckdb", n_rows)
    settings = Config.from_env(
        {
            "RUNCRAWLER_ARCHIVE": str(workspace.archive(source_runs)),
            "RUNCRAWLER_DATA": str(data),
            "RUNCRAWLER_ANALYTICS_MEMORY": cap,
            "RUNCRAWLER_WORKERS": str(workers),
        }
    )
    load = load_average()
    floor = _memory_mb()["VmRSS"]
    assets = _asset_peaks(settings)
    return {
        "rows": rows,
        "cap": settings.analytics_memory_for(rows),
        "workers": settings.parse_workers,
        "rss_before_mb": floor,
        "assets": assets,
        "peak_rss_mb": max(figures["peak_rss_mb"] for figures in assets.values()),
        "tree_peak_mb": max(figures["tree_peak_mb"] for figures in assets.values()),
        "total_s": round(sum(figures["seconds"] for figures in assets.values()), 2),
        "load_average": load,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = rows_parser(
        "python -m benchmarks.analytics_memory",
        "Peak RSS of each analytics asset in one Dagster process, on N rows.",
    )
    parser.add_argument(
        "--cap", default=AUTO, help="the analytics cap (RUNCRAWLER_ANALYTICS_MEMORY; auto)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="RUNCRAWLER_WORKERS (2; 1: no chart worker)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least 1")
    try:
        Config.from_env({"RUNCRAWLER_ANALYTICS_MEMORY": args.cap})
    except ConfigError as error:
        parser.error(f"--cap: {error}")
    workspace = rows_workspace(parser, args)  # last: it makes a temporary folder
    print(
        json.dumps(
            bench_analytics_memory(args.rows, workspace, cap=args.cap, workers=args.workers),
            indent=2,
        )
    )
