"""A changed partition is patched: only the rows of its runs parsed since its last swap, and
of runs gone, are rewritten; the tables end as a whole swap of the same store leaves them
(issue 16: ten new runs in a partition of 100,000 cost ten runs' work)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from runcrawler_assets.archive.discovery import discover_partition, list_partitions
from runcrawler_assets.archive.runstore import PartitionStore
from runcrawler_assets.cli import main
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse, refresh_partitions
from runcrawler_assets.swap import current_versions, swap_changed_partitions, swap_partitions
from runcrawler_assets.warehouse.database import PartitionRows, RowChunks, column_chunks, connect

RUNS = 150


@pytest.fixture
def crawled(tmp_path: Path) -> Config:
    """A demo archive with its Slurm accounting, crawled once."""
    archive, dumps = tmp_path / "archive", tmp_path / "dumps"
    args = ["demo-archive", str(archive), "--runs", str(RUNS), "--seed", "3"]
    result = CliRunner().invoke(main, [*args, "--accounting", str(dumps)])
    assert result.exit_code == 0, result.output
    settings = Config(archive_root=archive, data_dir=tmp_path / "data", accounting_dir=dumps)
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    return settings


def _largest(settings: Config) -> tuple[str, str]:
    pairs = list_partitions(settings)
    return max(pairs, key=lambda pair: len(PartitionStore(settings.runs_dir, *pair).run_ids()))


def _run_dirs(settings: Config, pair: tuple[str, str]) -> list[Path]:
    user_dir = settings.archive_root.joinpath(*pair)
    return sorted(p.parent for p in user_dir.rglob("run.params"))


class Swaps:
    """What each swap was given: which rows it replaced (None: all) and how many it wrote."""

    def __init__(self) -> None:
        self.replaced: dict[tuple[str, str], list[str] | None] = {}
        self.written: dict[tuple[str, str], int] = {}

    def see(self, part: PartitionRows) -> PartitionRows:
        pair = (part.cluster, part.user)
        self.replaced[pair] = None if part.replaced is None else sorted(part.replaced)
        self.written[pair] = 0

        def counted():
            for columns in column_chunks(part.records):
                self.written[pair] += len(columns["run_id"])
                yield columns

        return replace(part, records=RowChunks(counted()))


def _refresh(settings: Config, pair: tuple[str, str], swaps: Swaps) -> None:
    """What a crawl does after runs of `pair` changed, watching its swap."""
    discovery = discover_partition(settings, *pair)
    PartitionStore(settings.runs_dir, *pair).write_discovery(discovery)
    refresh_partitions(settings, [discovery], workers=1)
    with connect(settings.duckdb_path) as con:
        assert swap_changed_partitions(con, settings, [pair], swaps.see) == 1


def _tables(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "runs": con.execute("SELECT * FROM runs ORDER BY run_id").fetchall(),
            "quarantine": con.execute("SELECT * FROM quarantine ORDER BY ALL").fetchall(),
        }


def test_new_changed_and_gone_runs_are_all_a_patch_rewrites(crawled: Config) -> None:
    pair = _largest(crawled)
    store = PartitionStore(crawled.runs_dir, *pair)
    before = dict(store.parsed_runs())
    runs = _run_dirs(crawled, pair)
    for i, run in enumerate(runs[:3]):
        shutil.copytree(run, run.with_name(f"{run.name}_copy{i}"))
    changed = next(f for f in sorted(runs[3].iterdir()) if f.is_file())
    changed.write_bytes(changed.read_bytes() + b"\n")
    shutil.rmtree(runs[4])

    swaps = Swaps()
    _refresh(crawled, pair, swaps)

    after = dict(store.parsed_runs())
    parsed = {run_id for run_id, at in after.items() if before.get(run_id) != at}
    gone = set(before) - set(after)
    assert len(parsed) == 4 and len(gone) == 1  # three copies and the changed run
    assert swaps.replaced[pair] == sorted(parsed | gone)
    assert swaps.written[pair] == 4
    with duckdb.connect(str(crawled.duckdb_path), read_only=True) as con:
        kept = con.execute(
            'SELECT count(*) FROM runs WHERE cluster = ? AND "user" = ?', list(pair)
        ).fetchall()
    assert kept == [(len(after),)]


def test_a_patched_partition_holds_what_a_whole_swap_of_its_store_holds(
    crawled: Config, tmp_path: Path
) -> None:
    pair = _largest(crawled)
    runs = _run_dirs(crawled, pair)
    for i, run in enumerate(runs[:5]):
        shutil.copytree(run, run.with_name(f"{run.name}_again{i}"))
    shutil.rmtree(runs[6])
    _refresh(crawled, pair, Swaps())
    patched = _tables(crawled.duckdb_path)

    whole = tmp_path / "whole.duckdb"
    shutil.copy(crawled.duckdb_path, whole)
    swaps = Swaps()
    with duckdb.connect(str(whole)) as con:
        # No version to compare with: the partition is swapped whole.
        con.execute('DELETE FROM partition_versions WHERE cluster = ? AND "user" = ?', list(pair))
        swap_partitions(con, crawled, current_versions(con, crawled, [pair]), swaps.see)
    assert swaps.replaced[pair] is None
    assert swaps.written[pair] == len(PartitionStore(crawled.runs_dir, *pair).run_ids())
    assert _tables(whole) == patched
    with duckdb.connect(str(whole), read_only=True) as con:
        [(joined,)] = con.execute(
            'SELECT count(*) FROM runs WHERE cluster = ? AND "user" = ? AND accounting_matched '
            "AND run_path LIKE '%_again%'",
            list(pair),
        ).fetchall()
    assert joined > 0  # the new rows were joined with the accounting, as a whole swap joins them


def test_an_unchanged_partition_swapped_again_rewrites_no_row(crawled: Config) -> None:
    pair = _largest(crawled)
    swaps = Swaps()
    before = _tables(crawled.duckdb_path)
    with connect(crawled.duckdb_path) as con:
        [(version,)] = con.execute(
            'SELECT version FROM partition_versions WHERE cluster = ? AND "user" = ?', list(pair)
        ).fetchall()
        assert swap_partitions(con, crawled, [(pair, version)], swaps.see) == 1
    assert (swaps.replaced[pair], swaps.written[pair]) == ([], 0)
    assert _tables(crawled.duckdb_path) == before


def test_a_partition_whose_runs_were_all_parsed_again_is_swapped_whole(crawled: Config) -> None:
    pair = _largest(crawled)
    discovery = discover_partition(crawled, *pair)
    refresh_partitions(crawled, [discovery], workers=1, reparse_all=True)
    swaps = Swaps()
    with connect(crawled.duckdb_path) as con:
        assert swap_changed_partitions(con, crawled, [pair], swaps.see) == 1
    assert swaps.replaced[pair] is None
    assert swaps.written[pair] == len(PartitionStore(crawled.runs_dir, *pair).run_ids())
