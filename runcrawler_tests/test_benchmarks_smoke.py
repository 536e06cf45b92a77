"""The benchmarks at a tiny size: they still run and their figures still mean what they say.

Times are never asserted (the machine is shared); what each benchmark counts is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.analytics import bench_analytics
from benchmarks.analytics_memory import bench_analytics_memory
from benchmarks.analytics_memory import main as analytics_memory_main
from benchmarks.approximate_medians import bench_approximate_medians
from benchmarks.approximate_medians import main as approximate_medians_main
from benchmarks.cold_crawl import bench_cold_crawl
from benchmarks.common import Workspace
from benchmarks.daemon_path import bench_daemon_path
from benchmarks.incremental import bench_incremental, bench_recrawl
from benchmarks.memory import bench_memory
from benchmarks.run_all import END, START, at_scale, markdown, write_markdown
from benchmarks.sensor_tick import bench_sensor_tick
from runcrawler_assets.analytics import ANALYSES

RUNS = 80

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every benchmark once on one tiny workspace (one 32 MB sparse log stands for the 1 GB)."""
    workspace = Workspace(tmp_path_factory.mktemp("bench"), gigabyte_logs=1, big_log_bytes=32 << 20)
    return {
        "sizes": [RUNS],
        "cold_crawl": bench_cold_crawl(RUNS, workspace, sample_runs=40),
        # right after the cold crawl: the sensor benchmark below refreshes a partition
        "recrawl": [bench_recrawl(RUNS, workspace, added=3, floor_repeats=1)],
        "analytics": bench_analytics(300, workspace, source_runs=RUNS),
        "analytics_memory": bench_analytics_memory(300, workspace, RUNS, cap="128MB"),
        "approximate_medians": bench_approximate_medians(300, workspace, RUNS),
        "memory": [bench_memory(RUNS, workspace)],
        "sensor_tick": bench_sensor_tick(RUNS, workspace),
        "incremental": [bench_incremental(RUNS, workspace, added=3)],
        "daemon_path": [bench_daemon_path(RUNS, workspace, added=3, sensor_interval_s=5)],
    }


def test_cold_crawl_compares_the_same_runs_and_the_parser_extracts_most(figures: dict) -> None:
    cold = figures["cold_crawl"]
    assert (cold["runs"], cold["gigabyte_logs"]) == (RUNS, 1)
    typical = cold["typical"]
    assert typical["read_mb"] > 0
    fields = {name: typical[name]["fields_per_run"] for name in ("parser", "original", "pandas")}
    assert fields["parser"] > fields["pandas"] > fields["original"] > 0
    assert set(typical["ratios"]) >= {"parser_vs_floor_cold", "original_vs_parser"}
    big = cold["gigabyte"]
    assert big["read_mb"] < 12  # head + bounded scan + tail, not the whole log
    assert cold["crawl"]["summary"] == f"{RUNS + 1} rows, 0 quarantined"


def test_incremental_refresh_parses_only_the_added_runs(figures: dict) -> None:
    (refresh,) = figures["incremental"]
    assert (refresh["added"], refresh["runs_parsed"], refresh["partitions_refreshed"]) == (3, 3, 1)
    assert refresh["analyses_computed"] == len(ANALYSES)  # once each, after the refresh
    assert refresh["dagster_runs"] == 1  # the sensor's run carried them
    assert 0 < refresh["vs_cold_crawl"] < 1


def test_the_sensor_path_in_dagster_dev_is_one_run_of_the_changed_partition(figures: dict) -> None:
    """As deployed: the sensor's tick requests one run, which the daemon launches in a run
    worker of its own; that run swaps the one partition and carries the analytics."""
    (deployed,) = figures["daemon_path"]
    assert (deployed["added"], deployed["sensor_runs"], deployed["dagster_runs"]) == (3, 1, 1)
    assert (deployed["partitions_swapped"], deployed["rows_written"]) == (1, 3)
    assert deployed["analyses_computed"] == len(ANALYSES) and deployed["report_written"]
    # each stage was read from the run's own events: none is missing from the total
    stages = ("tick_s", "worker_start_s", "run_s")
    assert all(deployed[stage] > 0 for stage in stages)
    assert deployed["total_s"] == pytest.approx(sum(deployed[stage] for stage in stages), abs=2e-3)


def test_an_idle_crawl_swaps_no_partition_and_computes_no_analysis(figures: dict) -> None:
    (recrawl,) = figures["recrawl"]
    idle = recrawl["idle"]
    assert (idle["partitions_swapped"], idle["analyses_computed"]) == (0, 0)
    assert not idle["report_written"]
    assert idle["dagster_runs"] == 0  # nothing to do, so no run launched at all


def test_a_crawl_after_three_new_runs_swaps_their_partition_and_computes_each_analysis_once(
    figures: dict,
) -> None:
    (recrawl,) = figures["recrawl"]
    plus = recrawl["plus"]
    assert recrawl["added"] == 3
    # the three copies land in one user's case: one partition, one run, one refresh, and
    # the partition patched: its three new rows written, not all of its rows again
    assert (plus["partitions_swapped"], plus["dagster_runs"], plus["rows_written"]) == (1, 1, 3)
    assert plus["analyses_computed"] == len(ANALYSES) and plus["report_written"]
    # the assets kept per user (fixes) or per partition (every other analysis but the
    # efficiency and the scheduler, and the hints) made again the rows of the one user, of
    # the one partition, with new runs
    kept = {a.name for a in ANALYSES if a.refresh is not None} | {"hints"}
    assert kept >= {"fixes", "campaigns", "user_activity", "error_categories", "run_settings"}
    assert plus["made_again"] == dict.fromkeys(kept, 1)
    # copies of runs already there: the charts of what they repeat are not drawn again
    redrawn, charts = map(int, plus["charts_redrawn"].split(" of "))
    assert 0 < redrawn < charts
    assert recrawl["idle"]["charts_redrawn"] == "0 of 0"
    assert 0 < recrawl["idle"]["vs_cold_crawl"] < 1 and 0 < plus["vs_cold_crawl"] < 1


def test_the_floor_of_a_crawl_after_new_runs_is_their_ingest_alone(figures: dict) -> None:
    """What a +10 crawl costs before its analytics: the same ingest, no analysis, no report."""
    (recrawl,) = figures["recrawl"]
    floor = recrawl["plus_without_analytics"]
    assert (floor["dagster_runs"], floor["partitions_swapped"], floor["rows_written"]) == (1, 1, 3)
    assert (floor["analyses_computed"], floor["report_written"]) == (0, False)
    assert 0 < floor["vs_cold_crawl"] < 1


def test_dagsters_floor_is_a_run_of_the_shape_of_a_crawl_after_new_runs(figures: dict) -> None:
    """The run that does nothing writes the events a +3 crawl's run wrote, and materializes
    its assets: what it measures is Dagster's cost of that very run."""
    (recrawl,) = figures["recrawl"]
    floor, plus = recrawl["dagster_floor"], recrawl["plus"]
    assert plus["dagster_runs"] == 1
    assert floor["materialized"] == plus["assets_materialized"]
    assert floor["events"] == plus["events_written"]
    assert len(floor["seconds"]) == 1 and 0 < floor["vs_cold_crawl"] < 1


def test_memory_reports_the_main_process_and_the_workers(figures: dict) -> None:
    (memory,) = figures["memory"]
    assert memory["rows"] == RUNS + 1
    assert memory["main_rss_mb"] > 50
    assert memory["max_worker_rss_mb"] > 0  # 80 runs to parse: the crawl used its workers
    assert memory["tree_peak_mb"] > 50  # the main process alone holds more at any sample


def test_the_scale_benchmark_ticks_then_crawls_the_archive_it_generated(tmp_path: Path) -> None:
    """`python -m benchmarks --scale N`: goal 4's figures (tick, cold crawl, tree peak)."""
    figures = at_scale(60, tmp_path / "scale")
    assert figures["skipped_unchanged"] and figures["entries_walked"] > 60  # the tick
    crawl = figures["crawl"]
    assert crawl["rows"] == 60
    assert crawl["tree_peak_mb"] > 50
    assert not (tmp_path / "scale").exists()  # its archive and data are deleted


def test_analytics_rebuild_times_every_analysis_on_the_replicated_rows(figures: dict) -> None:
    analytics = figures["analytics"]
    assert analytics["rows"] == 300
    # every analysis refreshed and drawn, then the report assembled from what they stored
    assert list(analytics["seconds"]) == ["analyses", "report"]
    assert list(analytics["sql_seconds_by_analysis"]) == [a.name for a in ANALYSES]
    # and again after 10 runs of one user were added
    assert list(analytics["plus_10_runs_s"]) == ["analyses", "report"]
    assert list(analytics["plus_10_sql_seconds_by_analysis"]) == [a.name for a in ANALYSES]


def test_analytics_memory_measures_every_analytics_asset_under_the_cap(figures: dict) -> None:
    memory = figures["analytics_memory"]
    assert (memory["rows"], memory["cap"]) == (300, "128MB")
    assets = memory["assets"]
    assert list(assets) == ["analyses", "hints", "report"]
    assert all(asset["success"] for asset in assets.values())
    # each peak is the process's high-water mark since its reset: never below what it holds
    assert all(a["peak_rss_mb"] >= a["rss_after_mb"] > 0 for a in assets.values())
    assert memory["peak_rss_mb"] == max(a["peak_rss_mb"] for a in assets.values())
    # the chart worker's memory on top, while the analyses draw their charts
    for asset in assets.values():
        assert asset["tree_peak_mb"] == asset["peak_rss_mb"] + asset["children_peak_mb"]
    assert assets["analyses"]["children_peak_mb"] > 0
    assert memory["tree_peak_mb"] == max(a["tree_peak_mb"] for a in assets.values())


def test_analytics_memory_refuses_bad_arguments_with_a_message(tmp_path: Path, capsys) -> None:
    used = tmp_path / "used"
    (used / "archive-2000").mkdir(parents=True)  # a workspace a run before left behind
    cases = [
        (["--rows", "0"], "--rows 0: at least 1"),
        (["--workers", "0"], "--workers 0: at least 1"),
        (["--cap", "1kB"], "--cap:"),
        (["--workdir", str(used)], "is not empty"),
        (["--workdir", str(tmp_path / "file")], "is not a folder"),
    ]
    (tmp_path / "file").write_text("")
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            analytics_memory_main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_binned_medians_count_the_same_runs_and_stay_within_a_bin(figures: dict) -> None:
    """The approximate option: each value's median and bounds read from merged bins are
    within half a bin (0.05 %) of the exact ones, over the same successful runs (else
    `compare` raises)."""
    binned = figures["approximate_medians"]
    assert binned["rows"] == 300 and binned["values"] > 0 and binned["bins"] > 0
    half_bin = (binned["bin_ratio"] - 1) / 2
    errors = binned["max_relative_error"]
    assert set(errors) == {"median", "low", "high"}
    assert all(0 <= error <= half_bin * 1.01 for error in errors.values()), errors


def test_approximate_medians_refuses_bad_arguments_with_a_message(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("")
    cases = [
        (["--rows", "0"], "--rows 0: at least 1"),
        (["--source-runs", "0"], "--source-runs 0: at least 1"),
        (["--workdir", str(tmp_path / "file")], "is not a folder"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            approximate_medians_main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_sensor_tick_sees_no_change_and_walks_every_run(figures: dict) -> None:
    tick = figures["sensor_tick"]
    assert tick["skipped_unchanged"]
    assert tick["entries_walked"] > RUNS


def test_the_figures_render_between_the_markers_and_keep_the_prose(
    figures: dict, tmp_path: Path
) -> None:
    figures = {
        **figures,
        "date": "2026-01-01 00:00",
        "machine": "test",
        "command": "python -m benchmarks",
        "minutes": 1.0,
        "load_before": 1.0,
        "load_after": 1.0,
    }
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(f"# Benchmarks\n\nprose\n\n{START}\nstale figures\n{END}\n\nmore prose\n")
    write_markdown(page, markdown(figures))
    text = page.read_text()
    assert "stale figures" not in text
    assert text.startswith("# Benchmarks\n\nprose") and text.endswith("more prose\n")
    assert "### 5. Sensor tick" in text
    assert "Through the CLI" in text
    assert "The same path as deployed" in text
