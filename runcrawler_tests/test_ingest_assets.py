"""The ingest chain through Dagster: archive -> JSON runs -> DuckDB, incremental."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, MetadataValue

from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.archive.rescan import SETTLE_NS
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.partitions import partition_key, register_partitions
from runcrawler_assets.defs.runner import crawl, refresh_partition
from runcrawler_assets.demo import generate_archive
from runcrawler_tests.spawned import map_spawned

COMPARED = (
    "cluster", "user", "status", "error_category", "stage_code", "n_procs", "n_nodes",
    "iterations_done", "n_restarts", "mixture_name", "les_model", "ncell_group",
)  # fmt: skip


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Config, Path]:
    root, truth = tmp_path / "archive", tmp_path / "truth.jsonl"
    generate_archive(root, runs=120, seed=3, truth=truth)
    return Config(archive_root=root, data_dir=tmp_path / "data"), truth


def table(settings: Config, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_runs_table_agrees_with_the_generators_truth(archive):
    settings, truth_path = archive
    summary = crawl(settings, INGEST_ASSETS, DagsterInstance.ephemeral())
    assert summary.success
    truth = {t["run_path"]: t for t in map(json.loads, truth_path.read_text().splitlines())}
    cols = ", ".join(f'"{c}"' for c in ("run_path", *COMPARED))
    rows = {row[0]: row[1:] for row in table(settings, f"SELECT {cols} FROM runs")}
    assert set(rows) == set(truth)
    assert summary.discovered == summary.rows + summary.quarantined == len(truth)
    mismatches = [
        (path, col, got, truth[path][col])
        for path, values in rows.items()
        for col, got in zip(COMPARED, values, strict=True)
        if got != truth[path][col]
    ]
    assert mismatches == []


def test_runs_and_quarantine_report_their_row_counts_to_dagster(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    assert crawl(settings, INGEST_ASSETS, instance).success
    for name in ("runs", "quarantine"):
        event = instance.get_latest_materialization_event(AssetKey(name))
        row_count = event.asset_materialization.metadata["dagster/row_count"]
        assert row_count == MetadataValue.int(table(settings, f"SELECT count(*) FROM {name}")[0][0])
    assert table(settings, "SELECT count(*) FROM runs")[0][0] == 120


def test_a_second_crawl_parses_nothing(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    crawl(settings, INGEST_ASSETS, instance)
    again = crawl(settings, INGEST_ASSETS, instance)
    assert again.success and again.parsed == 0 and again.unchanged == again.discovered


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("run.params"))


def test_refresh_parses_exactly_the_new_and_changed_runs(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    crawl(settings, INGEST_ASSETS, instance)
    first_parse = dict(table(settings, "SELECT run_path, parsed_at FROM runs"))
    runs = _run_dirs(settings.archive_root)
    for index, source in enumerate(runs[:5]):
        shutil.copytree(source, source.with_name(f"{source.name}_copy{index}"))
    with_log = next(d for d in runs[5:] if any(f.suffix in {".o", ".txt"} for f in d.iterdir()))
    log = next(f for f in with_log.iterdir() if f.suffix in {".o", ".txt"})
    with log.open("a") as handle:
        handle.write(" ----> End of AVBP session\n")
    deleted = runs[-1]
    shutil.rmtree(deleted)
    deleted_path = deleted.relative_to(settings.archive_root).as_posix()

    summary = crawl(settings, INGEST_ASSETS, instance)

    assert summary.parsed == 6
    assert summary.removed == 1
    now_parsed = dict(table(settings, "SELECT run_path, parsed_at FROM runs"))
    reparsed = {p for p, at in now_parsed.items() if first_parse.get(p) != at}
    assert len(reparsed) == 6
    assert with_log.relative_to(settings.archive_root).as_posix() in reparsed
    assert deleted_path not in now_parsed
    assert len(now_parsed) == len(first_parse) + 5 - 1
    json_files = {p.name for p in settings.runs_dir.rglob("*.json") if not p.name.startswith("_")}
    assert len(json_files) == len(now_parsed)


def _parse_lines(instance: DagsterInstance, run_id: str) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.user_message.startswith("parsed ")
    ]


def test_the_parse_logs_each_tenth_of_a_big_parse_and_only_the_summary_of_a_small_one(archive):
    """Each line is an event Dagster stores: ten new runs are told in one line, not eleven."""
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    total = crawl(settings, INGEST_ASSETS, instance).parsed
    source = _run_dirs(settings.archive_root)[0]
    shutil.copytree(source, source.with_name(f"{source.name}_copy"))
    assert crawl(settings, INGEST_ASSETS, instance).parsed == 1
    small, big = (_parse_lines(instance, run.run_id) for run in instance.get_runs(limit=2))
    tenth = total // 10
    assert total >= 100 and big[:-1] == [
        f"parsed {n}/{total} runs" for n in range(tenth, total, tenth)
    ]
    assert big[-1].startswith(f"parsed {total} runs: ")
    assert len(small) == 1 and small[0].startswith("parsed 1 runs: ")


def _materialize_one(args: tuple[str, str, str, str, str]) -> bool:
    home, archive_root, data_dir, cluster, user = args
    settings = Config(archive_root=Path(archive_root), data_dir=Path(data_dir))
    with DagsterInstance.from_config(home) as instance:
        return refresh_partition(settings, instance, str(partition_key(cluster, user))).success


def test_two_partitions_materialized_concurrently_both_succeed(archive, tmp_path):
    settings, _ = archive
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    root = settings.archive_root
    pairs = sorted({d.relative_to(root).parts[:2] for d in _run_dirs(root)})[:2]
    with DagsterInstance.from_config(str(home)) as instance:
        register_partitions(instance, pairs)
    jobs = [(str(home), str(settings.archive_root), str(settings.data_dir), c, u) for c, u in pairs]
    assert map_spawned(_materialize_one, jobs, 2) == [True, True]
    got = table(settings, 'SELECT cluster, "user", count(*) FROM runs GROUP BY ALL ORDER BY ALL')
    expected = sorted(
        (c, u, sum(1 for d in _run_dirs(settings.archive_root / c / u))) for c, u in pairs
    )
    assert got == expected
    assert os.path.exists(settings.duckdb_path)


# ---------------------------------------------------------------- issue 16: cost in proportion


def _all_assets() -> list:
    from runcrawler_assets.defs.assets.analytics import analyses, report

    return [*INGEST_ASSETS, analyses, report]


def test_an_idle_crawl_launches_no_run_swaps_nothing_and_computes_nothing(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    cold = crawl(settings, _all_assets(), instance)
    assert cold.success and cold.analyses_computed == len(ANALYSES) and cold.partitions_swapped > 0
    runs_before = len(instance.get_runs())
    idle = crawl(settings, _all_assets(), instance)
    assert idle.success and (idle.partitions_swapped, idle.analyses_computed) == (0, 0)
    assert "runs" in idle.skipped and "report" in idle.skipped
    assert idle.describe_skipped().startswith("skipped: runs unchanged")
    assert len(instance.get_runs()) == runs_before
    assert idle.rows == cold.rows and idle.discovered == cold.discovered


def test_an_idle_cli_crawl_never_loads_the_chart_code(archive):
    """An idle `runcrawler crawl` pays for what it does (a look at the archive), not for
    importing matplotlib, which only drawing a chart needs (issue 16, goal 1)."""
    settings, _ = archive
    env = {
        **os.environ,
        "RUNCRAWLER_ARCHIVE": str(settings.archive_root),
        "RUNCRAWLER_DATA": str(settings.data_dir),
    }
    crawl_then_tell = (
        "import sys\n"
        "from runcrawler_assets.cli import main\n"
        "sys.argv = ['runcrawler', 'crawl']\n"
        "try:\n    main()\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "print('matplotlib loaded:', 'matplotlib' in sys.modules)\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", crawl_then_tell], env=env, capture_output=True, text=True
        )
        for _ in ("cold", "idle")
    ]
    assert [o.returncode for o in outputs] == [0, 0], outputs[-1].stderr[-2000:]
    cold, idle = (o.stdout.splitlines() for o in outputs)
    assert cold[-1] == "matplotlib loaded: True"  # it drew the charts
    assert idle[-1] == "matplotlib loaded: False"
    assert ": 0 parsed," in idle[-2]  # the idle crawl's summary


def test_a_folder_added_beside_the_runs_launches_no_run(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    cold = crawl(settings, INGEST_ASSETS, instance)
    (_run_dirs(settings.archive_root)[0].parent / "notes").mkdir()
    runs_before = len(instance.get_runs())
    again = crawl(settings, INGEST_ASSETS, instance)
    assert again.success and (again.parsed, again.partitions_swapped) == (0, 0)
    assert len(instance.get_runs()) == runs_before and again.discovered == cold.discovered


def test_a_finished_runs_log_rewritten_in_place_is_found_by_a_full_scan(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    run = _run_dirs(settings.archive_root)[0]
    finished = time.time_ns() - 10 * 86_400 * 1_000_000_000  # no file within 2 days
    for path in run.rglob("*"):
        os.utime(path, ns=(finished, finished))
    time.sleep(SETTLE_NS / 1e9)  # folders changed within it are listed again by the next scan
    crawl(settings, INGEST_ASSETS, instance)
    log = max((p for p in run.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    folders = {f: f.stat() for f in (run, *run.rglob("*")) if f.is_dir()}
    times = log.stat()
    with log.open("r+b") as handle:  # in place: no entry added to any folder
        handle.seek(0)
        handle.write(b"#" + handle.read(1))
    os.utime(log, ns=(times.st_atime_ns, times.st_mtime_ns + 1_000_000_000))
    assert all(f.stat().st_mtime_ns == info.st_mtime_ns for f, info in folders.items())
    # The default scan trusts the folders of a finished run, as the sensor does ...
    assert crawl(settings, INGEST_ASSETS, instance).parsed == 0
    # ... a full scan states every file.
    full = crawl(settings, INGEST_ASSETS, instance, full_scan=True)
    assert full.success and (full.parsed, full.partitions_swapped) == (1, 1)


def test_new_runs_swap_only_their_partition_and_the_analyses_run_once(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    crawl(settings, _all_assets(), instance)
    source = _run_dirs(settings.archive_root)[0]
    shutil.copytree(source, source.with_name("copied"))
    again = crawl(settings, _all_assets(), instance)
    assert again.success and (again.parsed, again.partitions_swapped) == (1, 1)
    assert again.analyses_computed == len(ANALYSES) and again.skipped == ()


def test_analyses_left_out_of_date_by_an_ingest_only_crawl_are_computed_by_the_next(archive):
    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    assert crawl(settings, INGEST_ASSETS, instance).success
    summary = crawl(settings, _all_assets(), instance)
    assert (
        summary.success
        and summary.partitions_swapped == 0
        and summary.analyses_computed == len(ANALYSES)
    )


def test_a_store_left_unswapped_by_a_killed_crawl_is_swapped_by_the_next(archive):
    from runcrawler_assets.warehouse.database import connect

    settings, _ = archive
    instance = DagsterInstance.ephemeral()
    crawl(settings, INGEST_ASSETS, instance)
    with connect(settings.duckdb_path) as con:  # as if killed between the JSON and the swap
        con.execute("DELETE FROM partition_versions")
        con.execute("DELETE FROM runs")
    summary = crawl(settings, INGEST_ASSETS, instance)
    assert summary.parsed == 0 and summary.rows == 120 and summary.partitions_swapped > 0
