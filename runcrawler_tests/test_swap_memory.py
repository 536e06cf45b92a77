"""A swap's memory does not grow with its partition (issue 16, goal 4: a million runs in
500 MB): DuckDB's memory is capped on the writing connection, a partition's records are
streamed from the JSON store into the inserts, and no chunk outlives its insert."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.archive.runstore import IndexEntry, PartitionStore
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import partition_rows, swap_changed_partitions
from runcrawler_assets.defs.assets.ingest import RowTally
from runcrawler_assets.records import RunRecord, run_id_for
from runcrawler_assets.warehouse import database
from runcrawler_assets.warehouse.database import (
    WRITER_MEMORY_LIMIT,
    PartitionRows,
    connect,
    replace_partitions,
)


def record(name: str, status: str = "success") -> RunRecord:
    run_path = f"k/u/{name}"
    return RunRecord(
        run_id=run_id_for(run_path),
        cluster="k",
        user="u",
        run_path=run_path,
        solver="avbp",
        status=status,
        created_at=datetime(2025, 1, 2),
    )


def store_with(tmp_path: Path, records: list[RunRecord]) -> Config:
    """A data folder whose JSON store holds `records` in partition k × u."""
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    store = PartitionStore(settings.runs_dir, "k", "u")
    for r in records:
        store.write_record(r)
    store.write_index({r.run_path: IndexEntry("f", r.run_id, "2025-01-02") for r in records})
    store.write_quarantine([])
    return settings


def memory_limit(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


def test_a_writing_connection_caps_duckdbs_memory(tmp_path: Path):
    with duckdb.connect() as reference:
        reference.execute(f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")
        expected = memory_limit(reference)
    with connect(tmp_path / "w.duckdb") as con:
        assert memory_limit(con) == expected


def test_a_swap_reads_its_records_a_chunk_at_a_time(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(database, "INSERT_CHUNK", 3)
    pulled = 0
    pulled_at_insert: list[int] = []

    def records() -> Iterator[RunRecord]:
        nonlocal pulled
        for i in range(10):
            pulled += 1
            yield record(f"r{i}")

    insert = database._insert

    def spying_insert(con, table, frame, types):
        if table == "runs":
            pulled_at_insert.append(pulled)
        insert(con, table, frame, types)

    monkeypatch.setattr(database, "_insert", spying_insert)
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", records(), [])])
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(10,)]
    assert pulled_at_insert == [3, 6, 9, 10]


def test_no_chunk_is_kept_until_the_partition_commits(tmp_path: Path, monkeypatch):
    """Each chunk's frame is freed once inserted, not held by DuckDB until the commit."""
    monkeypatch.setattr(database, "INSERT_CHUNK", 2)
    frames: list[weakref.ref[pd.DataFrame]] = []
    make_frame = database.records_frame

    def tracked_frame(chunk):
        frame = make_frame(chunk)
        frames.append(weakref.ref(frame))
        return frame

    monkeypatch.setattr(database, "records_frame", tracked_frame)
    alive_before_last: list[int] = []

    def records() -> Iterator[RunRecord]:
        yield from (record(f"r{i}") for i in range(6))
        gc.collect()  # still inside the partition's transaction: nothing committed yet
        alive_before_last.append(sum(ref() is not None for ref in frames))

    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", records(), [])])
    assert len(frames) == 3
    assert alive_before_last == [0]


def test_partition_rows_stream_from_the_store_and_rejects_reach_the_quarantine(
    tmp_path: Path,
):
    settings = store_with(tmp_path, [record("ok"), record("odd", status="exploded")])
    part = partition_rows(settings, "k", "u")
    assert not isinstance(part.records, list)  # read as the swap inserts them
    with connect(settings.duckdb_path) as con:
        assert swap_changed_partitions(con, settings, [("k", "u")]) == 1
        assert con.execute("SELECT run_path FROM runs").fetchall() == [("k/u/ok",)]
        assert con.execute("SELECT path, reason FROM quarantine").fetchall() == [
            ("k/u/odd", "cleaning")
        ]


def test_the_runs_metadata_counts_the_streamed_records(tmp_path: Path):
    settings = store_with(tmp_path, [record("a"), record("b", status="failed"), record("c")])
    tally = RowTally(settings.runs_dir)
    with connect(settings.duckdb_path) as con:
        swap_changed_partitions(con, settings, [("k", "u")], tally.add)
    assert (tally.rows, tally.quarantined) == (3, 0)
    assert tally.by_status == {"success": 2, "failed": 1}
    assert len(tally.preview) == 3


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_the_swap_holds_the_same_rows_whatever_the_chunk(tmp_path: Path, monkeypatch, chunk):
    monkeypatch.setattr(database, "INSERT_CHUNK", chunk)
    settings = store_with(tmp_path, [record(f"r{i}") for i in range(5)])
    with connect(settings.duckdb_path) as con:
        swap_changed_partitions(con, settings, [("k", "u")])
        assert con.execute("SELECT count(DISTINCT run_id) FROM runs").fetchall() == [(5,)]
