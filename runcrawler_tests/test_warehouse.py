import multiprocessing
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.archive.runstore import QuarantineEntry
from runcrawler_assets.records import RUN_COLUMNS, RunRecord, run_id_for
from runcrawler_assets.warehouse.database import (
    PartitionRows,
    WarehouseLockedError,
    connect,
    replace_partitions,
    write_table,
)

HOSTILE_USER = "x'; DROP TABLE runs; --"


def record(cluster: str, user: str, name: str, **fields) -> RunRecord:
    run_path = f"{cluster}/{user}/{name}"
    return RunRecord(
        run_id=run_id_for(run_path),
        cluster=cluster,
        user=user,
        run_path=run_path,
        solver="avbp",
        status="success",
        created_at=datetime(2025, 1, 2, 3, 4, 5),
        params={"cfl": "0.7"},
        parse_warnings=("w1",),
        **fields,
    )


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def test_the_runs_table_has_exactly_the_record_columns(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        described = rows(con, "DESCRIBE runs")
    assert [(r[0], r[1]) for r in described] == [(c.name, c.sql_type) for c in RUN_COLUMNS]


def test_replacing_a_partition_leaves_the_others_alone(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(
            con,
            [
                PartitionRows("kraken", "bob", [record("kraken", "bob", "r1")], []),
                PartitionRows("kraken", "eve", [record("kraken", "eve", "r1")], []),
            ],
        )
        replace_partitions(
            con,
            [PartitionRows("kraken", "bob", [record("kraken", "bob", "r2", n_procs=4)], [])],
        )
        got = rows(con, "SELECT run_path, n_procs FROM runs ORDER BY run_path")
    assert got == [("kraken/bob/r2", 4), ("kraken/eve/r1", None)]


def test_every_swap_notes_its_partitions_version_and_time(tmp_path):
    """Even without a version (NULL: never skipped), a swap writes its partition's row of
    `partition_versions`, a new time each swap: what the analytics' memos learn from."""
    swapped = 'SELECT cluster, "user", version, swapped_at FROM partition_versions ORDER BY ALL'
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(
            con,
            [
                PartitionRows("kraken", "bob", [record("kraken", "bob", "r1")], [], "v1"),
                PartitionRows("kraken", "eve", [record("kraken", "eve", "r1")], []),
            ],
        )
        first = rows(con, swapped)
        replace_partitions(con, [PartitionRows("kraken", "bob", [], [])])
        second = rows(con, swapped)
    assert [row[:3] for row in first] == [("kraken", "bob", "v1"), ("kraken", "eve", None)]
    assert [row[:3] for row in second] == [("kraken", "bob", None), ("kraken", "eve", None)]
    assert second[0][3] > first[0][3] and second[1] == first[1]


def test_values_round_trip_with_their_types(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", [record("k", "u", "r", cfl=0.7)], [])])
        created, params, warnings, cfl = rows(
            con, "SELECT created_at, params->>'cfl', parse_warnings, cfl FROM runs"
        )[0]
    assert created == datetime(2025, 1, 2, 3, 4, 5)
    assert params == "0.7"
    assert warnings == ["w1"]
    assert cfl == 0.7


def test_the_swap_derives_each_runs_case(tmp_path):
    restart = {
        "mesh_file": r"..\MESH\jet.mesh.h5",
        "initial_solution_file": "../run_06/SOLUT/last.h5",
    }
    records = [
        record("k", "u", "jet/LES/run_07").replace(params=restart),
        record("k", "u", "run_01"),
    ]
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", records, [])])
        got = rows(
            con,
            "SELECT case_folder, mesh_case, points_into, params_digest = md5(params::VARCHAR), "
            "length(params_digest) FROM runs ORDER BY run_path",
        )
    assert got == [
        ("k/u/jet/LES", "jet.mesh.h5|LES", ["run_06"], True, 32),
        ("k/u", None, [], True, 32),
    ]


def test_a_hostile_user_name_is_just_a_user(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        part = PartitionRows(
            "kraken",
            HOSTILE_USER,
            [record("kraken", HOSTILE_USER, "r1")],
            [QuarantineEntry("kraken", HOSTILE_USER, "p", "why", "d", "2025-01-01T00:00:00")],
        )
        replace_partitions(con, [part])
        replace_partitions(con, [part])
        assert rows(con, "SELECT user FROM runs") == [(HOSTILE_USER,)]
        assert rows(con, "SELECT count(*) FROM quarantine") == [(1,)]


def test_a_failing_swap_rolls_back_to_the_previous_rows(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        replace_partitions(con, [PartitionRows("k", "u", [record("k", "u", "r1")], [])])
        duplicate = record("k", "u", "r2")
        with pytest.raises(duckdb.Error):
            replace_partitions(con, [PartitionRows("k", "u", [duplicate, duplicate], [])])
        assert rows(con, "SELECT run_path FROM runs") == [("k/u/r1",)]


def test_analytics_tables_are_replaced_whole(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        write_table(con, "error_categories", pd.DataFrame({"category": ["a"], "runs": [1]}))
        write_table(con, "error_categories", pd.DataFrame({"category": ["b"], "runs": [2]}))
        assert rows(con, "SELECT * FROM error_categories") == [("b", 2)]


def _hold_lock(path: str, ready, release) -> None:
    con = duckdb.connect(path)
    ready.set()
    release.wait(30)
    con.close()


def test_a_writer_held_by_another_process_gives_a_clear_error(tmp_path):
    path = tmp_path / "w.duckdb"
    connect(path).close()
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(WarehouseLockedError, match="in use by another process"):
            connect(path, wait=0.5)
    finally:
        release.set()
        holder.join(30)
    with connect(path, wait=5) as con:
        assert rows(con, "SELECT count(*) FROM runs") == [(0,)]


def test_params_with_quotes_backslashes_and_odd_bytes_round_trip(tmp_path):
    odd = b"caf\xe9".decode("utf-8", "surrogateescape")
    params = {"mesh_file": 'C:\\mesh "v2".h5', "comment": "jérôme", "raw": odd}
    with connect(tmp_path / "w.duckdb") as con:
        part = PartitionRows("k", "u", [record("k", "u", "r").replace(params=params)], [])
        replace_partitions(con, [part])
        got = rows(con, "SELECT params->>'mesh_file', params->>'comment', params->>'raw' FROM runs")
    assert got == [('C:\\mesh "v2".h5', "jérôme", "caf\\xe9")]


@pytest.mark.parametrize("read_only", [False, True])
def test_duckdb_draws_no_progress_bar_on_runcrawlers_standard_output(tmp_path, read_only):
    """DuckDB's bar, drawn on stdout for a query over 2 s, would land amid `runcrawler crawl`'s
    progress or in a benchmark's JSON."""
    path = tmp_path / "w.duckdb"
    connect(path).close()
    with connect(path, read_only=read_only) as con:
        [(enabled,)] = con.execute("SELECT current_setting('enable_progress_bar')").fetchall()
    assert enabled is False
