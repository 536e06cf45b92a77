"""Benchmark 3, memory: peak RSS of `runcrawler crawl` (main process and largest worker) by N.

Streaming means flat: the crawl holds one partition's records at a time and
the workers one run, so the peak must not grow with the archive.
"""

from __future__ import annotations

from benchmarks.common import Workspace, temporary_workspace

BUDGET_MB = 500


def bench_memory(n_runs: int, workspace: Workspace | None = None) -> dict:
    """Peak RSS of the cold crawl of `n_runs` runs (the crawl the other benchmarks share)."""
    workspace = workspace or temporary_workspace()
    crawl = workspace.crawl(n_runs)
    return {
        "runs": n_runs,
        "rows": crawl.runs,
        "crawl_s": round(crawl.seconds, 2),
        "main_rss_mb": crawl.main_rss_mb,
        "max_worker_rss_mb": crawl.max_worker_rss_mb,
        "tree_peak_mb": crawl.tree_peak_mb,
        "vs_budget": round(max(crawl.main_rss_mb, crawl.max_worker_rss_mb) / BUDGET_MB, 2),
        "load_average": crawl.load_average,
    }
