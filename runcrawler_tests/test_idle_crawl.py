"""A crawl with nothing to do says so without starting Dagster (`runcrawler_assets.idle`),
and anything the instance must see takes the full path: a new partition, another
DAGSTER_HOME, a run added, analytics older than `runs`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.archive.runstore import DISCOVERY_FILE
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import ArchiveCheck, check_archive
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.partitions import registered_pairs
from runcrawler_assets.defs.runner import crawl as runner_crawl
from runcrawler_assets.defs.runner import dagster_instance
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.idle import swap_versions
from runcrawler_tests.test_cli import REPO

RUNS = 30
# `runcrawler ARGS`, then whether the command imported Dagster, on stderr's last line.
COMMAND = (
    "import sys\n"
    "from runcrawler_assets.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print('dagster loaded:', 'dagster' in sys.modules, file=sys.stderr)\n"
)
NOTHING_CHANGED = "skipped: nothing changed since the last crawl"


def crawl(
    archive: Path, data: Path, *args: str, before: str = "", **env: str
) -> subprocess.CompletedProcess:
    """`runcrawler crawl` in a child process, `before` run first in it."""
    paths = ["--archive", str(archive), "--data", str(data)]
    result = subprocess.run(
        [sys.executable, "-c", before + COMMAND, "crawl", *paths, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
    )
    assert result.returncode == 0, result.stderr
    return result


def started_dagster(result: subprocess.CompletedProcess) -> bool:
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dagster loaded:"), result.stderr
    return last.endswith("True")


def materializations(home: Path, asset: str) -> int:
    with DagsterInstance.from_config(str(home)) as instance:
        return len(instance.fetch_materializations(AssetKey(asset), limit=100).records)


def users_registered(home: Path) -> list[str]:
    with DagsterInstance.from_config(str(home)) as instance:
        return instance.get_dynamic_partitions("user")


@pytest.fixture
def crawled(tmp_path: Path) -> tuple[Path, Path]:
    archive, data = tmp_path / "archive", tmp_path / "data"
    generate_archive(archive, runs=RUNS, seed=9)
    first = crawl(archive, data)
    assert started_dagster(first) and f"{RUNS} parsed" in first.stdout
    return archive, data


def test_nothing_changed_is_told_without_dagster(crawled: tuple[Path, Path]):
    archive, data = crawled
    home = data / "dagster_home"
    runs_before = materializations(home, "fixes")
    idle = crawl(archive, data)
    assert not started_dagster(idle)
    assert NOTHING_CHANGED in idle.stderr
    assert f"{RUNS} runs found" in idle.stdout and f"0 parsed, {RUNS} unchanged" in idle.stdout
    assert f"{RUNS} rows in runs" in idle.stdout
    assert materializations(home, "fixes") == runs_before
    # --full-scan always looks through Dagster (and finds nothing either)
    full = crawl(archive, data, "--full-scan")
    assert started_dagster(full) and NOTHING_CHANGED not in full.stderr
    assert f"0 parsed, {RUNS} unchanged" in full.stdout


def test_a_new_user_folder_is_registered_then_the_next_crawl_is_idle(
    crawled: tuple[Path, Path],
):
    archive, data = crawled
    cluster = next(p for p in archive.iterdir() if p.is_dir())
    (cluster / "newcomer").mkdir()  # no run yet: still a partition the UI must list
    first = crawl(archive, data)
    assert started_dagster(first)
    assert "newcomer" in users_registered(data / "dagster_home")
    assert not started_dagster(crawl(archive, data))


def test_another_dagster_home_gets_the_partitions(crawled: tuple[Path, Path], tmp_path: Path):
    archive, data = crawled
    other = tmp_path / "other_home"
    other.mkdir()
    result = crawl(archive, data, DAGSTER_HOME=str(other))
    assert started_dagster(result) and NOTHING_CHANGED not in result.stderr
    assert users_registered(other) == users_registered(data / "dagster_home")
    assert not started_dagster(crawl(archive, data, DAGSTER_HOME=str(other)))


def test_a_run_added_then_analytics_left_behind_take_the_full_path(
    crawled: tuple[Path, Path],
):
    archive, data = crawled
    home = data / "dagster_home"
    run = next(p.parent for p in sorted(archive.rglob("run.params")))
    shutil.copytree(run, run.with_name(run.name + "_again"))
    ingest = crawl(archive, data, "--no-analytics")
    assert started_dagster(ingest) and "1 parsed" in ingest.stdout
    computed = materializations(home, "fixes")
    # `runs` changed since the analytics were computed: the next crawl computes them
    later = crawl(archive, data)
    assert started_dagster(later) and NOTHING_CHANGED not in later.stderr
    assert materializations(home, "fixes") == computed + 1
    assert not started_dagster(crawl(archive, data))


def test_the_crawl_reuses_the_clis_scan_only_when_it_covered_every_partition(
    crawled: tuple[Path, Path],
):
    """The CLI's scan (`idle.look_at_archive`) is handed to the crawl: one scan, not two.
    A scan that covered other partitions than the instance holds is made again."""
    archive, data = crawled
    settings = Config(archive_root=archive, data_dir=data)
    run = next(p.parent for p in sorted(archive.rglob("run.params")))
    shutil.copytree(run, run.with_name(run.name + "_again"))
    with dagster_instance(settings) as instance:
        everything = set(registered_pairs(instance))
        stale_free = ArchiveCheck(RUNS, 0, [], frozenset(everything))  # says: nothing to do
        trusted = runner_crawl(settings, INGEST_ASSETS, instance, check=stale_free)
        assert trusted.parsed == 0 and trusted.skipped  # no run launched: the scan was reused
        partial = ArchiveCheck(RUNS, 0, [], frozenset(list(everything)[:1]))
        looked_again = runner_crawl(settings, INGEST_ASSETS, instance, check=partial)
        assert looked_again.parsed == 1


@pytest.mark.parametrize("note", ["{not json", '{"dagster_home": 3, "partitions": 4}', ""])
def test_a_damaged_note_takes_the_full_path_and_is_written_again(
    crawled: tuple[Path, Path], note: str
):
    archive, data = crawled
    (data / "registered_partitions.json").write_text(note)
    again = crawl(archive, data)
    assert started_dagster(again) and "Traceback" not in again.stderr
    assert f"0 parsed, {RUNS} unchanged" in again.stdout
    assert not started_dagster(crawl(archive, data))


@pytest.mark.parametrize("damage", ['{"runs": [broken', "[]", '{"runs": 3}'])
def test_a_damaged_discovery_file_takes_the_full_path_and_is_written_again(
    crawled: tuple[Path, Path], damage: str
):
    """What discovery recorded of a partition, damaged (not JSON, not a discovery's): the
    partition is looked at again, its file written again, and the next crawl is idle."""
    archive, data = crawled
    damaged = next(data.glob(f"runs/*/*/{DISCOVERY_FILE}"))
    damaged.write_text(damage, encoding="utf-8")
    again = crawl(archive, data)
    assert started_dagster(again) and "Traceback" not in again.stderr
    assert f"{RUNS} runs found" in again.stdout and f"0 parsed, {RUNS} unchanged" in again.stdout
    assert damaged.read_text(encoding="utf-8").startswith('{"digest": ')
    assert not started_dagster(crawl(archive, data))


def test_a_user_folder_with_undecodable_bytes_is_noted_and_read_back(tmp_path: Path):
    """A Latin-1 folder name (`caf\\xe9`): the note of registered partitions keeps its bytes,
    so the crawl ends cleanly and the next one is idle."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    generate_archive(archive, runs=6, seed=3)
    cluster = next(p for p in archive.iterdir() if p.is_dir())
    user = next(p for p in cluster.iterdir() if p.is_dir())
    os.rename(bytes(user), bytes(cluster) + b"/caf\xe9")
    first = crawl(archive, data)
    assert started_dagster(first) and "Traceback" not in first.stderr
    assert "6 parsed" in first.stdout
    assert not started_dagster(crawl(archive, data))


def test_the_scan_counts_the_archives_runs_before_and_after_the_first_crawl(tmp_path: Path):
    """What a first crawl's run is told of the archive's size (`ChartDrawing`): every run
    found, in the stale partitions too."""
    archive, data = tmp_path / "archive", tmp_path / "data"
    generate_archive(archive, runs=RUNS, seed=9)
    settings = Config(archive_root=archive, data_dir=data)
    partitions = list_partitions(settings)
    first = check_archive(settings, partitions, {}, {})
    assert (first.runs, first.scanned, sorted(first.stale)) == (0, RUNS, sorted(partitions))
    crawl(archive, data)
    again = check_archive(settings, partitions, *swap_versions(settings))
    assert (again.runs, again.scanned, again.stale) == (RUNS, RUNS, [])


# In the CLI's own process, a scan of the archive fails (the worker processes it starts
# import the modules afresh, so theirs still work).
NO_SCAN_HERE = (
    "import runcrawler_assets.defs.runner as runner\n"
    "def refused(*args, **kwargs):\n"
    "    raise AssertionError('the archive scanned in the CLI process')\n"
    "runner.check_archive = refused\n"
)
# The worker process is handed a scan it cannot run (a lambda does not pickle).
NO_SCAN_THERE = (
    "import runcrawler_assets.idle as idle\nidle.check_listed_partitions = lambda settings: None\n"
)


def test_a_first_crawl_scans_the_archive_in_a_worker_while_dagster_loads(tmp_path: Path):
    archive, data = tmp_path / "archive", tmp_path / "data"
    generate_archive(archive, runs=RUNS, seed=9)
    first = crawl(archive, data, before=NO_SCAN_HERE)
    assert f"{RUNS} runs found" in first.stdout and f"{RUNS} parsed" in first.stdout
    assert not started_dagster(crawl(archive, data))  # the worker's scan state serves next


def test_a_first_crawl_whose_scanning_worker_failed_scans_by_itself(tmp_path: Path):
    archive, data = tmp_path / "archive", tmp_path / "data"
    generate_archive(archive, runs=RUNS, seed=9)
    first = crawl(archive, data, before=NO_SCAN_THERE)
    assert f"{RUNS} runs found" in first.stdout and f"{RUNS} parsed" in first.stdout
    with pytest.raises(AssertionError, match="scanned in the CLI process"):  # no worker
        crawl(archive, tmp_path / "other", "--workers", "1", before=NO_SCAN_HERE)
