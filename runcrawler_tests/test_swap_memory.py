"""A crawl's memory does not grow with its partition (issue 16, goal 4: a million runs in
500 MB): DuckDB's memory is capped on the writing connection, a partition's records are
streamed from the JSON store into the inserts, and no chunk outlives its insert; the parse
step makes its jobs as the workers take them and keeps its index as tuples; the coverage
check compares one partition's paths at a time."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets import crawl, subprocesses, swap
from runcrawler_assets.archive import runstore
from runcrawler_assets.archive.discovery import (
    DiscoveredRun,
    PartitionDiscovery,
    Problem,
    partition_digest,
)
from runcrawler_assets.archive.runstore import (
    DISCOVERY_FILE,
    INDEX_FILE,
    IndexEntry,
    PartitionStore,
)
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import ParseJob, refresh_partitions
from runcrawler_assets.defs.assets.ingest import RowTally
from runcrawler_assets.records import RunRecord, run_id_for
from runcrawler_assets.swap import partition_rows, swap_changed_partitions
from runcrawler_assets.warehouse import database, health
from runcrawler_assets.warehouse.database import (
    SWAP_MEMORY_LIMIT,
    WRITER_MEMORY_LIMIT,
    PartitionRows,
    connect,
    replace_partitions,
)
from runcrawler_assets.warehouse.health import Coverage, coverage, open_warehouse


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


def test_a_swap_runs_under_its_own_lower_cap_and_gives_the_writers_back(tmp_path: Path):
    seen: list[str] = []

    def records() -> Iterator[RunRecord]:
        with connect(tmp_path / "other.duckdb") as other:  # the cap is the swap's connection's
            seen.append(memory_limit(other))
        seen.append(memory_limit(con))
        yield record("r0")

    with duckdb.connect() as reference:
        expected = []
        for limit in (WRITER_MEMORY_LIMIT, SWAP_MEMORY_LIMIT, WRITER_MEMORY_LIMIT):
            reference.execute(f"SET memory_limit = '{limit}'")
            expected.append(memory_limit(reference))
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", records(), [])])
        seen.append(memory_limit(con))

    def mib(setting: str) -> float:  # DuckDB shows a limit rounded: set back, it may lose 0.1
        number, unit = setting.split()
        return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]

    assert [mib(s) for s in seen] == pytest.approx([mib(e) for e in expected], abs=0.2)
    assert mib(expected[1]) < mib(expected[0]) / 1.5


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

    def spying_insert(con, table, frame, types, derived=None):
        if table == "runs":
            pulled_at_insert.append(pulled)
        insert(con, table, frame, types, derived)

    monkeypatch.setattr(database, "_insert", spying_insert)
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", records(), [])])
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(10,)]
    assert pulled_at_insert == [3, 6, 9, 10]


def test_no_chunk_is_kept_until_the_partition_commits(tmp_path: Path, monkeypatch):
    """Each chunk's frame is freed once inserted, not held by DuckDB until the commit."""
    monkeypatch.setattr(database, "INSERT_CHUNK", 2)
    frames: list[weakref.ref[pd.DataFrame]] = []
    make_frame = database.columns_frame

    def tracked_frame(chunk):
        frame = make_frame(chunk)
        frames.append(weakref.ref(frame))
        return frame

    monkeypatch.setattr(database, "columns_frame", tracked_frame)
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


# The parse step.


def discovery_of(user: str, n: int) -> PartitionDiscovery:
    runs = tuple(DiscoveredRun(f"k/{user}/r{i:05d}", "avbp", f"f{i}", 1, 1) for i in range(n))
    return PartitionDiscovery("k", user, runs, ())


def test_the_index_is_written_as_one_json_document_would_be(tmp_path: Path, monkeypatch):
    """Written a slice at a time, with the same bytes (so the same content digest)."""
    monkeypatch.setattr(runstore, "INDEX_WRITE_SLICE", 2)
    store = PartitionStore(tmp_path, "k", "u")
    for n in (0, 1, 5):
        index = {
            f"k/u/é{i}": IndexEntry(f"f{i}", None if i == 3 else f"id{i}", "t") for i in range(n)
        }
        store.write_index(dict(reversed(index.items())))
        payload = {path: entry._asdict() for path, entry in sorted(index.items())}
        written = (store.folder / INDEX_FILE).read_text(encoding="utf-8")
        assert written == json.dumps(payload, ensure_ascii=False)
        assert store.read_index() == index
        assert all(type(entry) is IndexEntry for entry in store.read_index().values())


def test_an_index_without_parse_times_still_reads(tmp_path: Path):
    store = PartitionStore(tmp_path, "k", "u")
    store.folder.mkdir(parents=True)
    raw = {"fingerprint": {"fingerprint": "f", "run_id": "x"}}  # a run folder so named
    (store.folder / INDEX_FILE).write_text(json.dumps(raw), encoding="utf-8")
    assert store.read_index() == {"fingerprint": IndexEntry("f", "x", None)}


def test_a_discovery_reads_back_as_written(tmp_path: Path):
    discovery = PartitionDiscovery(
        "k", "u", discovery_of("u", 3).runs, (Problem("k/u/x", "unreadable", "denied"),)
    )
    store = PartitionStore(tmp_path, "k", "u")
    store.write_discovery(discovery)
    assert store.read_discovery() == discovery
    assert store.discovered_paths() == ["k/u/r00000", "k/u/r00001", "k/u/r00002", "k/u/x"]


def test_a_discoverys_head_gives_its_digest_and_counts_as_a_file_without_one_does(
    tmp_path: Path,
):
    """The head is read alone (the runs after it are not parsed); a discovery file an
    earlier version wrote, without a head, gives the same by reading it whole."""
    discovery = PartitionDiscovery(
        "k", "u", discovery_of("u", 5).runs, (Problem("k/u/x", "unreadable", "denied"),)
    )
    expected = runstore.DiscoveryHead(partition_digest(discovery.runs), 5, 1)
    store = PartitionStore(tmp_path, "k", "u")
    nothing = runstore.DiscoveryHead(partition_digest(()), 0, 0)
    assert store.recorded_head() == nothing  # nothing recorded yet
    store.write_discovery(discovery)
    path = store.folder / DISCOVERY_FILE
    written = path.read_text(encoding="utf-8")
    assert store.recorded_head() == expected
    path.write_text(written[:300] + " broken", encoding="utf-8")  # only the head is read
    assert store.recorded_head() == expected
    old = {key: value for key, value in json.loads(written).items() if key in ("runs", "problems")}
    path.write_text(json.dumps(old), encoding="utf-8")
    assert store.recorded_head() == expected
    assert store.read_discovery() == discovery
    for damaged in ("{broken", "[]", '{"runs": [{"run_path": 1}]}'):  # not a discovery's
        path.write_text(damaged, encoding="utf-8")
        assert store.recorded_head() == runstore.UNREADABLE


def fake_parse(parsed: list[ParseJob]):
    def parse_job(job: ParseJob) -> str:
        parsed.append(job)
        return run_id_for(job.run.run_path)

    return parse_job


def test_parse_jobs_are_made_as_they_are_taken_not_a_partition_at_once(tmp_path: Path, monkeypatch):
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    made: list[int] = []
    parsed: list[ParseJob] = []

    class CountedJob(ParseJob):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)  # type: ignore[arg-type]
            made.append(1)

    monkeypatch.setattr(crawl, "ParseJob", CountedJob)
    parse = fake_parse(parsed)
    ahead: list[int] = []

    def spying_parse(job: ParseJob) -> str:
        ahead.append(len(made) - len(parsed))
        return parse(job)

    monkeypatch.setattr(crawl, "parse_job", spying_parse)
    n = 3 * crawl.BATCH_SIZE * 8
    (refresh,) = refresh_partitions(settings, [discovery_of("u", n)], workers=1)
    assert refresh.new == n and len(parsed) == n
    assert [job.run.run_path for job in parsed] == sorted(job.run.run_path for job in parsed)
    assert max(ahead) <= crawl.BATCH_SIZE * 8 + 1 < n  # never the partition's every job
    index = PartitionStore(settings.runs_dir, "k", "u").read_index()
    assert len(index) == n and len({entry.parsed_at for entry in index.values()}) == 1


def test_a_partition_index_is_written_only_once_all_its_runs_are_parsed(
    tmp_path: Path, monkeypatch
):
    """A crawl stopped midway leaves each partition's index all old (here: none) or all new."""
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    parsed: list[ParseJob] = []
    parse = fake_parse(parsed)

    def stopping_parse(job: ParseJob) -> str:
        if job.user == "b" and job.run.run_path.endswith("r00005"):
            raise KeyboardInterrupt  # as a kill would, midway through partition b
        return parse(job)

    monkeypatch.setattr(crawl, "parse_job", stopping_parse)
    with pytest.raises(KeyboardInterrupt):
        refresh_partitions(settings, [discovery_of("a", 7), discovery_of("b", 9)], workers=1)
    assert len(PartitionStore(settings.runs_dir, "k", "a").read_index()) == 7
    assert not (settings.runs_dir / "k" / "b" / INDEX_FILE).exists()


class CountedReads(list):
    """Discoveries that count how often they are iterated (read from the store, in a crawl)."""

    reads = 0

    def __iter__(self) -> Iterator[PartitionDiscovery]:
        self.reads += 1
        return super().__iter__()


@pytest.mark.parametrize(("kept_max", "reads"), [(crawl.KEPT_PLANS_MAX_RUNS, 1), (10, 2)])
def test_few_runs_are_planned_once_many_twice_with_the_same_result(
    tmp_path: Path, monkeypatch, kept_max: int, reads: int
):
    """The plans made to count the runs to parse are kept to parse them while they hold few
    runs (a sensor's one partition: its discovery and index read once); beyond, they are
    made again rather than held, and the partitions come out the same."""
    monkeypatch.setattr(crawl, "KEPT_PLANS_MAX_RUNS", kept_max)
    parsed: list[ParseJob] = []
    monkeypatch.setattr(crawl, "parse_job", fake_parse(parsed))
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    discoveries = CountedReads([discovery_of("a", 7), discovery_of("b", 9)])
    progress: list[tuple[int, int]] = []
    refreshes = refresh_partitions(
        settings,
        discoveries,
        workers=1,
        on_parsed=lambda done, total: progress.append((done, total)),
    )
    assert discoveries.reads == reads
    assert [(r.user, r.new, r.discovered) for r in refreshes] == [("a", 7, 7), ("b", 9, 9)]
    assert progress[-1] == (16, 16) and len(parsed) == 16
    for user, n in (("a", 7), ("b", 9)):
        index = PartitionStore(settings.runs_dir, "k", user).read_index()
        assert sorted(index) == [f"k/{user}/r{i:05d}" for i in range(n)]


# The coverage check.


def warehouse_with(tmp_path: Path, stored: list[tuple[str, str, str]]) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse whose `runs` hold `stored` (cluster, user, path) rows."""
    con = open_warehouse(tmp_path / "absent.duckdb")
    for i, (cluster, user, path) in enumerate(stored):
        con.execute(
            'INSERT INTO runs (run_id, cluster, "user", run_path) VALUES (?, ?, ?, ?)',
            [f"id{i}", cluster, user, path],
        )
    return con


def expected_coverage(
    discovered: list[tuple[str, str, str]], stored: list[tuple[str, str, str]], partitions: int
) -> Coverage:
    """The comparison of every path at once, as a multiset difference."""
    found, kept = Counter(discovered), Counter(stored)
    missing = sorted(path for _, _, path in (found - kept).elements())
    unexpected = sorted(path for _, _, path in (kept - found).elements())
    return Coverage(
        partitions,
        len(discovered),
        len(stored),
        tuple(missing[: health.EXAMPLES]),
        len(missing),
        tuple(unexpected[: health.EXAMPLES]),
        len(unexpected),
    )


@pytest.fixture
def uneven(tmp_path: Path):
    """Partitions a (12 runs missing, one stored twice) and b (a problem, one stray row);
    rows of partition c, which no discovery recorded."""
    runs_dir = tmp_path / "runs"
    a = discovery_of("a", 20)
    b = PartitionDiscovery("k", "b", discovery_of("b", 4).runs, (Problem("k/b/x", "bad", ""),))
    for discovery in (a, b):
        PartitionStore(runs_dir, "k", discovery.user).write_discovery(discovery)
    discovered = [
        ("k", d.user, path)
        for d in (a, b)
        for path in PartitionStore(runs_dir, "k", d.user).discovered_paths()
    ]
    stored = [t for t in discovered if not (t[1] == "a" and t[2] < "k/a/r00012")]
    stored += [("k", "a", "k/a/r00015"), ("k", "b", "k/b/stray"), ("k", "c", "k/c/r1")]
    return runs_dir, discovered, stored, warehouse_with(tmp_path, stored)


def test_coverage_compares_one_partition_at_a_time_with_the_same_result(uneven, monkeypatch):
    runs_dir, discovered, stored, con = uneven
    compared: list[tuple[tuple[str, str], int]] = []
    compare = health._partition_coverage

    def spying_compare(con, key, paths, *, count_stored):
        compared.append((key, len(paths)))
        return compare(con, key, paths, count_stored=count_stored)

    monkeypatch.setattr(health, "_partition_coverage", spying_compare)
    everything = coverage(con, runs_dir)
    assert compared == [(("k", "a"), 20), (("k", "b"), 5)]
    assert everything == expected_coverage(discovered, stored, 2)
    assert everything.n_missing == 12 and everything.n_unexpected == 3
    in_b = [t for t in stored if t[1] == "b"]
    assert coverage(con, runs_dir, [("k", "b")]) == expected_coverage(
        [t for t in discovered if t[1] == "b"], in_b, 1
    )


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_rows_made_in_worker_processes_are_the_rows_made_here(
    tmp_path: Path, monkeypatch, workers: int
):
    """Two partitions, one emptied since its last swap, a record the cleaning rejects, and
    chunks of 3 rows: in `workers` - 1 helper processes (a real pool, its calls counted)
    or here."""
    monkeypatch.setattr(swap, "MIN_RUNS_FOR_SWAP_WORKERS", 1)
    monkeypatch.setattr(database, "INSERT_CHUNK", 3)
    monkeypatch.setattr(swap, "SWAP_WORKER_CHUNK", 3)
    submitted: list[tuple[str, str, int]] = []
    sizes: list[int] = []

    class CountedPool(ProcessPoolExecutor):
        def __init__(self, max_workers: int, **kwargs) -> None:
            sizes.append(max_workers)
            super().__init__(max_workers, **kwargs)

        def submit(self, fn, /, *args, **kwargs):
            submitted.append((args[1], args[2], len(args[3])))
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(subprocesses, "ProcessPoolExecutor", CountedPool)
    kept = [record(f"r{i}", status="failed" if i % 2 else "success") for i in range(7)]
    settings = store_with(tmp_path, [*kept, record("odd", status="exploded")])
    settings = replace(settings, parse_workers=workers)
    PartitionStore(settings.runs_dir, "k", "v").write_index({})
    with connect(settings.duckdb_path) as con:
        con.execute("INSERT INTO runs (run_id, cluster, \"user\", run_path) VALUES "
                    "('gone', 'k', 'v', 'k/v/gone')")  # fmt: skip
        versions = [(("k", "u"), "1"), (("k", "v"), "1")]
        assert swap.swap_partitions(con, settings, versions) == 2
        rows = con.execute(
            'SELECT run_path, status, "user", case_folder FROM runs ORDER BY run_path'
        ).fetchall()
        quarantine = con.execute("SELECT path, reason FROM quarantine").fetchall()
    assert rows == [(r.run_path, r.status, "u", "k/u") for r in kept]
    assert quarantine == [("k/u/odd", "cleaning")]
    expected = [("k", "u", 3), ("k", "u", 3), ("k", "u", 2), ("k", "v", 0)]
    assert submitted == (expected if workers > 1 else [])
    assert sizes == ([workers - 1] if workers > 1 else [])  # the run's own process is one


def test_the_worker_modules_import_no_pandas_or_duckdb() -> None:
    """What a parse or swap worker imports stays light (~25 MB, not ~90 MB each)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, runcrawler_assets.parsing, runcrawler_assets."
         "warehouse.rows; print(*sorted(m for m in ('pandas', 'duckdb', 'dagster') "
         "if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert loaded == []
