"""Benchmark 1, cold crawl: runcrawler against the I/O floor, the original approach and pandas.

Four ways to read the same runs, interleaved batch by batch (the machine is
shared, so a load spike hits all four alike), each batch dropped from the page
cache before each pass:

- **I/O floor**: list each run folder as the parser does and read the very
  bytes the parser reads (run.params, the newest solver log: whole when small,
  else head + bounded scan + tail; the scheduler files), parsing nothing;
- **parser**: `AvbpParser.parse`, the parser layer alone, one process;
- **original approach** (runcrawler 0.0.2): read the whole newest log into
  memory and test every milestone pattern against every line, keeping the
  highest code; nothing else is extracted;
- **naive pandas**: what a user writes by hand: whole files into a Series of
  lines, one `str.extract`/`str.contains` per field, milestone and error pattern.

The floor and the parser are also timed warm (page cache full), and
`runcrawler crawl` itself (Dagster, two parse workers, analytics included)
cold, in a child process.
"""

from __future__ import annotations

import gzip
import re
import resource
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import (
    Workspace,
    archive_files,
    evict_from_page_cache,
    load_average,
    temporary_workspace,
)
from runcrawler_assets.archive.discovery import list_partitions, walk_runs
from runcrawler_assets.config import Config
from runcrawler_assets.records import RUN_COLUMNS, RunRecord
from runcrawler_assets.solvers.avbp.milestones import MILESTONES
from runcrawler_assets.solvers.avbp.parser import AvbpParser, list_avbp_files
from runcrawler_assets.solvers.logtext import DEFAULT_LIMITS

BATCH = 250
IDENTITY = {"run_id", "cluster", "user", "run_path", "solver", "fingerprint", "parsed_at"}
Reader = Callable[[Path], Any]


# ---------------------------------------------------------------- the four readers


def _read_like_the_parser(path: Path, size: int) -> int:
    """Read what `logtext.scan_log` reads of a plain file: all of it, or head+scan and tail."""
    limits = DEFAULT_LIMITS
    with open(path, "rb", buffering=0) as f:
        if size <= limits.max_plain_bytes:
            return len(f.read())
        got = len(f.read(limits.head_bytes + limits.scan_bytes))
        f.seek(size - limits.tail_bytes - 1)
        return got + len(f.read())


def io_floor(run_dir: Path) -> int:
    """The bytes the parser reads of one run, read and dropped; returns how many."""
    logs, scheduler = list_avbp_files(run_dir, [])
    with open(run_dir / "run.params", "rb", buffering=0) as f:
        total = len(f.read())  # as `logtext.read_head`: no 1 MB buffer for a 1 KB file
    for run_file in (*logs[-1:], *scheduler):
        total += _read_like_the_parser(run_file.path, run_file.size)
    return total


def make_parser(archive: Path) -> Reader:
    parser, now = AvbpParser(), datetime.now()
    return lambda run_dir: parser.parse(run_dir, archive, now)


def _whole_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", errors="replace") as f:
        return f.read()


_ORIGINAL_PATTERNS = [(re.compile(re.escape(m.text)), m.code) for m in MILESTONES]


def original_approach(run_dir: Path) -> int | None:
    """runcrawler 0.0.2: the whole log in memory, every milestone against every line."""
    logs, _ = list_avbp_files(run_dir, [])
    if not logs:
        return None
    highest = None
    for line in _whole_text(logs[-1].path).splitlines():
        for pattern, code in _ORIGINAL_PATTERNS:
            if pattern.search(line) and (highest is None or code > highest):
                highest = code
    return highest


_PANDAS_FIELDS = {
    "version": r"AVBP\s+V?(\d+(?:\.\d+)+)",
    "started_at": r"Run started on\s*:\s*(.+)",
    "ended_at": r"Run ended on\s*:\s*(.+)",
    "host": r"Host\s*:\s*(\S+)",
    "n_procs": r"Number of MPI processes\s*:\s*(\d+)",
    "dimension": r"Dimension\s*:\s*(\d+)",
    "n_nodes": r"Number of nodes\s*:\s*(\d+)",
    "n_cells": r"Number of cells\s*:\s*(\d+)",
    "cpu_time_s": r"Total CPU time[^:]*:\s*(\S+)",
    "wall_time_s": r"Elapsed wall time[^:]*:\s*(\S+)",
    "efficiency": r"Reduced efficiency[^:]*:\s*(\S+)",
    "iterations_done": r"Iteration\s*#\s*(\d+)",
}


def naive_pandas(run_dir: Path) -> dict[str, Any]:
    """The hand-written parser: whole files, pandas string methods over every line."""
    params = pd.Series(_whole_text(run_dir / "run.params").splitlines(), dtype="string")
    pairs = params.str.extract(r"^\s*(\w+)\s*=\s*(.*?)\s*$").dropna()
    found: dict[str, Any] = dict(zip(pairs[0].str.lower(), pairs[1], strict=True))
    logs, scheduler = list_avbp_files(run_dir, [])
    if not logs:
        return found
    lines = pd.Series(_whole_text(logs[-1].path).splitlines(), dtype="string")
    for name, pattern in _PANDAS_FIELDS.items():
        values = lines.str.extract(pattern, expand=False).dropna()
        if len(values):
            found[name] = values.iloc[-1]
    for milestone in MILESTONES:
        if lines.str.contains(milestone.text, case=False, regex=False).any():
            found["stage_code"] = milestone.code
    errors = lines[lines.str.contains(r"error|fatal|sigsegv|cancelled|oom", case=False)]
    for path in (f.path for f in scheduler):
        more = pd.Series(_whole_text(path).splitlines(), dtype="string")
        errors = pd.concat([errors, more[more.str.contains(r"error|cancelled|oom", case=False)]])
    if len(errors):
        found["error_message"] = errors.iloc[0]
    return found


def fields_extracted(result: Any) -> int:
    """How many values a reader got out of one run (identity columns not counted)."""
    if isinstance(result, RunRecord):
        names = (c.name for c in RUN_COLUMNS if c.name not in IDENTITY)
        values = [getattr(result, name) for name in names]
        return sum(v not in (None, "", (), {}) for v in values) + len(result.params)
    if isinstance(result, dict):
        return len(result)
    return int(result is not None)


# ---------------------------------------------------------------- the measurement


def run_directories(archive: Path) -> list[Path]:
    settings = Config(archive_root=archive, data_dir=archive.parent / "unused")
    return sorted(
        archive / item.run_path
        for cluster, user in list_partitions(settings)
        for item in walk_runs(archive / cluster / user, archive)
        if not hasattr(item, "reason")
    )


def _timed_map(reader: Reader, runs: list[Path]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    results = [reader(run_dir) for run_dir in runs]
    return time.perf_counter() - started, results


def _interleaved(
    groups: list[list[Path]], readers: dict[str, Reader], warm: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Seconds and fields per reader over every group; cold passes rotate their order."""
    totals = {name: {"seconds": 0.0, "fields": 0, "bytes": 0} for name in readers}
    totals.update({f"{name}_warm": {"seconds": 0.0, "fields": 0, "bytes": 0} for name in warm})
    names = list(readers)
    for index, group in enumerate(groups):
        files = [f for run_dir in group for f in run_dir.iterdir() if f.is_file()]
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            evict_from_page_cache(files)
            seconds, results = _timed_map(readers[name], group)
            totals[name]["seconds"] += seconds
            totals[name]["fields"] += sum(map(fields_extracted, results))
            if name == "io_floor":
                totals[name]["bytes"] += sum(results)
        for name in warm:
            totals[f"{name}_warm"]["seconds"] += _timed_map(readers[name], group)[0]
    return totals


def bench_cold_crawl(
    n_runs: int, workspace: Workspace | None = None, crawl: bool = True, sample_runs: int = 5000
) -> dict[str, Any]:
    """Figures of benchmark 1 on the demo archive of `n_runs` runs (+ the workspace's 1 GB logs)."""
    workspace = workspace or temporary_workspace()
    archive = workspace.archive(n_runs)
    load_before = load_average()
    runs = run_directories(archive)
    big = [r for r in runs if r.parent.name == "big_logs"]
    every = [r for r in runs if r.parent.name != "big_logs"]
    # pandas costs ~10 ms a run: the readers share an evenly spread sample of the archive.
    typical = every[:: -(-len(every) // sample_runs)]
    readers: dict[str, Reader] = {
        "io_floor": io_floor,
        "parser": make_parser(archive),
        "original": original_approach,
        "pandas": naive_pandas,
    }
    batches = [typical[i : i + BATCH] for i in range(0, len(typical), BATCH)]
    on_typical = _interleaved(batches, readers, warm=("io_floor", "parser"))
    # The whole-file baselines take ~25 s (original) and ~2 min (pandas) per 1 GB log:
    # the original is timed on one of them, pandas on none.
    big_readers = {k: v for k, v in readers.items() if k != "pandas"}
    on_big = _interleaved([big[:1]], big_readers, warm=()) if big else {}
    log_bytes = sum(
        f.stat().st_size for f in archive_files(archive) if f.name != "mixture_database.dat"
    )
    figures: dict[str, Any] = {
        "runs": len(every),
        "sampled_runs": len(typical),
        "gigabyte_logs": len(big),
        "archive_mb": round(log_bytes / 1e6, 1),
        "typical": _rates(on_typical, len(typical)),
        "gigabyte": _rates(on_big, 1) if big else {},
        "load_average": [load_before, load_average()],
    }
    if crawl:
        figures["crawl"] = _crawl_figures(workspace, n_runs, figures)
    return figures


def _rates(totals: dict[str, dict[str, float]], runs: int) -> dict[str, Any]:
    floor = totals["io_floor"]
    read_mb = floor["bytes"] / 1e6
    rates = {}
    for name, total in totals.items():
        seconds = max(total["seconds"], 1e-9)
        rates[name] = {
            "seconds": round(seconds, 3),
            "runs_per_s": round(runs / seconds, 1),
            "mb_per_s": round(read_mb / seconds, 1),
            "fields_per_run": round(total["fields"] / runs, 1) if total["fields"] else None,
        }
    cold_floor, warm_floor = totals["io_floor"]["seconds"], totals.get("io_floor_warm")
    ratios = {
        "parser_vs_floor_cold": totals["parser"]["seconds"] / cold_floor,
        "original_vs_parser": totals["original"]["seconds"] / totals["parser"]["seconds"],
    }
    if "pandas" in totals:
        ratios["pandas_vs_parser"] = totals["pandas"]["seconds"] / totals["parser"]["seconds"]
    if warm_floor:
        ratios["parser_vs_floor_warm"] = (
            totals["parser_warm"]["seconds"] / totals["io_floor_warm"]["seconds"]
        )
    rates["read_mb"] = round(read_mb, 1)
    rates["ratios"] = {k: round(v, 2) for k, v in ratios.items()}
    return rates


def _crawl_figures(workspace: Workspace, n_runs: int, figures: dict[str, Any]) -> dict[str, Any]:
    """`runcrawler crawl` of the same archive, cold, against the floor measured above."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    crawl = workspace.crawl(n_runs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    typical = figures["typical"]
    runs = figures["runs"] + figures["gigabyte_logs"]
    # The floor of the whole archive, extrapolated from the sample (big logs at their rate).
    scale = figures["runs"] / figures["sampled_runs"]
    big = figures.get("gigabyte", {}).get("io_floor", {}).get("seconds", 0.0)
    floor_seconds = typical["io_floor"]["seconds"] * scale + big * figures["gigabyte_logs"]
    return {
        "seconds": round(crawl.seconds, 2),
        "runs_per_s": round(runs / crawl.seconds, 1),
        "mb_per_s": round(typical["read_mb"] * scale / crawl.seconds, 1),
        "cores_busy": round(cpu / crawl.seconds, 2),
        "vs_floor_cold": round(crawl.seconds / floor_seconds, 2),
        "summary": crawl.summary,
        "load_average": crawl.load_average,
    }
