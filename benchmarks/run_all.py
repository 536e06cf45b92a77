"""Every benchmark at full size, in one run: figures into BENCHMARKS.md and benchmarks/results.json.

    .venv/bin/python -m benchmarks [--workdir DIR] [--small]
    .venv/bin/python -m benchmarks --scale 1000000   # the sensor tick on a 1 M-run archive

Archives are generated under the work folder (default: a new folder in /tmp;
the 100,000-run archive takes ~2.7 GB) and deleted at the end. The figures go
between the markers of BENCHMARKS.md, so the prose around them stays.
`--small` runs every benchmark at a tenth of the size, to try the command.
`--scale N` generates one archive of N runs (hard links to 10,000 rendered runs above
100,000: ~3 min and ~10 GB of folders at 1,000,000), measures the sensor tick on it, then
its cold crawl's time and process tree's peak (issue 16, goal 4: ~10 min and ~5 GB more at
1,000,000), printing the figures (BENCHMARKS.md, "Big archives", quotes them by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.analytics import bench_analytics
from benchmarks.cold_crawl import bench_cold_crawl
from benchmarks.common import REPO, Workspace, load_average
from benchmarks.daemon_path import bench_daemon_path
from benchmarks.incremental import bench_incremental, bench_recrawl
from benchmarks.memory import bench_memory
from benchmarks.sensor_tick import bench_sensor_tick
from runcrawler_assets.progress import Progress

START, END = "<!-- figures:start -->", "<!-- figures:end -->"
PHASES = 13  # the benchmark calls of `run`, for its progress display


def run(workspace: Workspace, scale: float) -> dict[str, Any]:
    """All five benchmarks, sharing archives and crawls; sizes as the issue asks times `scale`."""
    small, medium, large = (max(50, int(n * scale)) for n in (2_000, 20_000, 100_000))
    figures: dict[str, Any] = {"sizes": [small, medium, large]}
    # PHASES phases of minutes each: the bar (or a line in a log) says which one runs, and the ETA.
    with Progress("benchmarks", PHASES, "phases") as progress:

        def phase(name: str, bench: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            progress.note(name)
            figure = bench(*args, **kwargs)
            progress.note(f"{name} done")
            progress.advance()
            return figure

        rows = int(1_000_000 * scale)
        figures["cold_crawl"] = phase(
            f"cold crawl, {medium:,} runs",
            bench_cold_crawl,
            medium,
            workspace,
            sample_runs=int(5000 * scale),
        )
        figures["analytics"] = phase(
            f"analytics, {rows:,} rows", bench_analytics, rows, workspace, source_runs=medium
        )
        figures["memory"], figures["incremental"], figures["recrawl"] = [], [], []
        figures["daemon_path"] = []
        for n in (small, medium):
            figures["memory"].append(phase(f"memory, {n:,} runs", bench_memory, n, workspace))
            # right after the cold crawl, before the sensor benchmark refreshes a partition
            figures["recrawl"].append(phase(f"recrawl, {n:,} runs", bench_recrawl, n, workspace))
            figures["incremental"].append(
                phase(f"incremental, {n:,} runs", bench_incremental, n, workspace)
            )
            figures["daemon_path"].append(
                phase(f"sensor path in dagster dev, {n:,} runs", bench_daemon_path, n, workspace)
            )
        workspace.remove(small)
        workspace.remove(medium)
        figures["sensor_tick"] = phase(
            f"sensor tick, {large:,} runs", bench_sensor_tick, large, workspace
        )
        figures["memory"].append(phase(f"memory, {large:,} runs", bench_memory, large, workspace))
        figures["incremental"].append(
            phase(f"incremental, {large:,} runs", bench_incremental, large, workspace)
        )
    workspace.remove(large)
    return figures


def at_scale(runs: int, workdir: Path | None) -> dict[str, Any]:
    """One archive of `runs` runs, its generation timed, the sensor tick over it, then its
    cold crawl with the defaults."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="runcrawler-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(workdir, gigabyte_logs=0)
    try:
        started = time.perf_counter()
        workspace.archive(runs)
        generated = time.perf_counter() - started
        figures = bench_sensor_tick(runs, workspace)
        figures["crawl"] = bench_memory(runs, workspace)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"generate_s": round(generated, 1), **figures, "machine": machine()}


def machine() -> str:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{memory_kb / 1024**2:.0f} GB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _x(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:,.0f}×"


def markdown(figures: dict[str, Any]) -> str:
    """The figures as the tables of BENCHMARKS.md."""
    cold, typical = figures["cold_crawl"], figures["cold_crawl"]["typical"]
    big, crawl = cold["gigabyte"], cold["crawl"]
    lines = [
        f"Measured {figures['date']} on {figures['machine']}, with "
        f"`{figures['command']}` ({figures['minutes']:.1f} min). Load average (1 min) "
        f"before / after: {figures['load_before']} / {figures['load_after']}; other "
        "engineers' test runs shared the machine, so each comparison was interleaved "
        "with its baseline in the same run.",
        "",
        f"### 1. Cold crawl ({cold['runs']:,} runs, {cold['sampled_runs']:,} of them read by "
        f"all four readers; {cold['gigabyte_logs']} sparse 1 GB logs; "
        f"load {cold['load_average'][0]}→{cold['load_average'][1]})",
        "",
        "Typical demo logs (page cache dropped before every pass; `warm` = cached):",
        "",
        "| reader | runs/s | MB read/s | values per run | time vs I/O floor | time vs parser |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("io_floor", "I/O floor (same bytes, no parsing)"),
        ("parser", "**runcrawler parser layer** (1 process)"),
        ("original", "original approach (0.0.2: whole log, every milestone × every line)"),
        ("pandas", "naive pandas/regex, whole files"),
        ("io_floor_warm", "I/O floor, warm cache"),
        ("parser_warm", "**runcrawler parser layer**, warm cache"),
    ):
        row = typical[name]
        floor = typical["io_floor_warm" if name.endswith("_warm") else "io_floor"]["seconds"]
        parser = typical["parser_warm" if name.endswith("_warm") else "parser"]["seconds"]
        lines.append(
            f"| {label} | {row['runs_per_s']:,.0f} | {row['mb_per_s']:,.1f} | "
            f"{row['fields_per_run'] or '–'} | {_x(row['seconds'] / floor)} | "
            f"{_x(row['seconds'] / parser) if 'parser' not in name else '–'} |"
        )
    lines += [
        "",
        f"One 1 GB log (sparse: real header and tail; {big['read_mb']} MB of it read by the "
        "parser and the floor):",
        "",
        "| reader | seconds | values | time vs parser |",
        "|---|---:|---:|---:|",
    ]
    for name in ("io_floor", "parser", "original"):
        row = big[name]
        lines.append(
            f"| {name} | {row['seconds']:.3f} | {row['fields_per_run']} | "
            f"{_x(row['seconds'] / big['parser']['seconds'])} |"
        )
    lines += [
        "",
        f"`runcrawler crawl` (Dagster, 2 parse workers, analytics and report included) of all "
        f"{cold['runs'] + cold['gigabyte_logs']:,} runs, cold: **{crawl['seconds']:.1f} s**, "
        f"{crawl['runs_per_s']:,.0f} runs/s, {crawl['mb_per_s']} MB read/s, "
        f"{crawl['cores_busy']} cores busy on average; {_x(crawl['vs_floor_cold'])} the I/O "
        f"floor of the whole archive (one process; extrapolated from the sample); "
        f"{crawl['summary']}; load {crawl['load_average']}.",
        "",
        "### 2. Incremental refresh (10 runs added to one user's case)",
        "",
        "Through the sensor (tick, then the run it requests: the partition's ingest, then "
        "the analytics, hints and report; an automation run only if that run did not carry "
        "them):",
        "",
        "| archive | sensor tick | the sensor's run | automation run | "
        "total | vs cold crawl | runs parsed | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in figures["incremental"]:
        lines.append(
            f"| {row['runs']:,} | {row['tick_s']:.2f} s | {row['sensor_runs_s']:.2f} s | "
            f"{row['automation_run_s']:.2f} s | "
            f"{row['total_s']:.2f} s | {100 * row['vs_cold_crawl']:.1f} % of "
            f"{row['cold_crawl_s']:.0f} s | {row['runs_parsed']} | {row['load_average']} |"
        )
    lines += [
        "",
        "The same path as deployed (`dagster dev` running; the daemon launches the sensor's "
        "run in a fresh process, Dagster's run worker, which imports Dagster and runcrawler "
        "before the run starts; the wait in the daemon's queue is latency, left out):",
        "",
        "| archive | sensor tick | run worker start | the run | total | vs cold crawl | "
        "Dagster runs, partitions swapped, analyses computed | queue wait | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in figures.get("daemon_path", []):
        lines.append(
            f"| {row['runs']:,} | {row['tick_s']:.2f} s | {row['worker_start_s']:.2f} s | "
            f"{row['run_s']:.2f} s | {row['total_s']:.2f} s | "
            f"{100 * row['vs_cold_crawl']:.1f} % of {row['cold_crawl_s']:.0f} s | "
            f"{row['dagster_runs']}, {row['partitions_swapped']}, {row['analyses_computed']} | "
            f"{row['queue_wait_s']:.1f} s | "
            f"{row['load_average']} |"
        )
    lines += [
        "",
        "Through the CLI (`runcrawler crawl` in a child process, as the cold crawl; idle = "
        "nothing changed; the floors: the discovery walk, and a Python process importing "
        "the Dagster layer, and a Dagster run of the +10's shape doing nothing):",
        "",
        "| archive | cold crawl | idle | vs cold | +10 runs | vs cold | +10: partitions "
        "swapped, analyses computed, charts redrawn | +10 `--no-analytics` (the floor) | "
        "vs cold | idle: Dagster runs, swapped, computed | discovery walk | Dagster import | "
        "Dagster's floor of a +10 (vs cold) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in figures.get("recrawl", []):
        idle, plus, floor = row["idle"], row["plus"], row["plus_without_analytics"]
        dagster = row["dagster_floor"]
        lines.append(
            f"| {row['runs']:,} | {row['cold_crawl_s']:.1f} s | {idle['seconds']:.2f} s | "
            f"{100 * idle['vs_cold_crawl']:.1f} % | {plus['seconds']:.2f} s | "
            f"{100 * plus['vs_cold_crawl']:.1f} % | {plus['partitions_swapped']}, "
            f"{plus['analyses_computed']}, {plus['charts_redrawn']} | {floor['seconds']:.2f} s | "
            f"{100 * floor['vs_cold_crawl']:.1f} % | {idle['dagster_runs']}, "
            f"{idle['partitions_swapped']}, {idle['analyses_computed']} | "
            f"{row['discovery_walk_s']:.2f} s | {row['dagster_start_s']:.2f} s | "
            f"{dagster['median_s']:.2f} s ({100 * dagster['vs_cold_crawl']:.1f} %) |"
        )
    first, last = figures["incremental"][0], figures["incremental"][-1]
    lines += [
        "",
        f"The sensor's run at {last['runs']:,} runs vs at {first['runs']:,}: "
        f"{_x(last['sensor_runs_s'] / first['sensor_runs_s'])}; whole (tick + runs): "
        f"{_x(last['total_s'] / first['total_s'])}.",
        "",
        "### 3. Peak RSS of the cold crawl",
        "",
        "| archive | main process | largest parse worker | vs 500 MB budget | crawl time |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in figures["memory"]:
        lines.append(
            f"| {row['runs']:,} | {row['main_rss_mb']:.0f} MB | {row['max_worker_rss_mb']:.0f} MB"
            f" | {_x(row['vs_budget'])} | {row['crawl_s']:.0f} s |"
        )
    first, last = figures["memory"][0], figures["memory"][-1]
    analytics, tick = figures["analytics"], figures["sensor_tick"]
    lines += [
        "",
        f"Main process at {last['runs']:,} runs vs {first['runs']:,}: "
        f"{_x(last['main_rss_mb'] / first['main_rss_mb'])}.",
        "",
        f"### 4. Analytics on {analytics['rows']:,} rows (load {analytics['load_average']})",
        "",
        "| step | rebuild (s) | again after 10 runs of one user (s) |",
        "|---|---:|---:|",
        *(
            f"| {name}'s SQL (within the analyses) | {s:.2f} | "
            f"{analytics['plus_10_sql_seconds_by_analysis'][name]:.2f} |"
            for name, s in analytics["sql_seconds_by_analysis"].items()
        ),
        *(
            f"| {name} | {s:.2f} | {analytics['plus_10_runs_s'][name]:.2f} |"
            for name, s in analytics["seconds"].items()
        ),
        f"| **total** | **{analytics['total_s']:.2f}** | "
        f"**{sum(analytics['plus_10_runs_s'].values()):.2f}** |",
        "",
        f"{_x(analytics['vs_budget'])} the 10 s budget; "
        f"{_x(analytics['vs_source'])} the same rebuild on the {analytics['source_rows']:,}-row "
        f"source warehouse ({analytics['source_total_s']:.2f} s).",
        "",
        f"### 5. Sensor tick over {tick['runs']:,} run directories (load {tick['load_average']})",
        "",
        f"A tick with nothing changed: **{tick['tick_s']:.2f} s** "
        f"({tick['tick_us_per_run']} µs per run directory); a bare stat walk of the same "
        f"{tick['entries_walked']:,} entries: {tick['stat_walk_s']:.2f} s; "
        f"tick = {_x(tick['vs_stat_walk'])} the walk.",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, block: str) -> None:
    """Replace what lies between the markers of `path` (or append them) with `block`."""
    empty = f"# Benchmarks\n\n{START}\n{END}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else empty
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{block}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--workdir", type=Path, help="where archives go (default: a temp folder)")
    parser.add_argument("--small", action="store_true", help="a tenth of the sizes, to try it")
    parser.add_argument(
        "--scale", type=int, metavar="N", help="the sensor tick and the cold crawl at N runs only"
    )
    args = parser.parse_args()
    if args.scale:
        print(json.dumps(at_scale(args.scale, args.workdir), indent=1))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="runcrawler-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started, load_before = time.monotonic(), load_average()
    try:
        figures = run(Workspace(workdir), 0.1 if args.small else 1.0)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures.update(
        date=datetime.now().strftime("%Y-%m-%d %H:%M"),
        machine=machine(),
        command="python -m benchmarks" + (" --small" if args.small else ""),
        minutes=(time.monotonic() - started) / 60,
        load_before=load_before,
        load_after=load_average(),
    )
    (REPO / "benchmarks" / "results.json").write_text(
        json.dumps(figures, indent=1, default=str) + "\n", encoding="utf-8"
    )
    if not args.small:
        write_markdown(REPO / "BENCHMARKS.md", markdown(figures))
    print(markdown(figures))
