"""Memos (`analytics.memo`: fixes per user; the rows of every other analysis but the
efficiency's and the scheduler's per cluster × user partition) on a crawled demo
warehouse: a refresh makes again the rows of just the users (partitions) whose runs
changed and stores what a computation from scratch gives; new code, or a result never
stored, keeps nothing stale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.analytics import (
    ANALYSES,
    RunFilter,
    activity,
    campaigns,
    compute_results,
    errors,
    fixes,
    habits,
    load_results,
    setting_effects,
    settings_usage,
    signatures,
    version_effects,
)
from runcrawler_assets.analytics.core import Analysis, StagedTable, drop_temporary
from runcrawler_assets.analytics.memo import Memo, key_digests, make_again, refreshed_digests
from runcrawler_assets.analytics.store import refresh_stored, store_result
from runcrawler_assets.warehouse.database import connect, quote_identifier
from runcrawler_tests.conftest import swapped_again

# Each analysis's memo on a warehouse (the version effects': for the versions it holds).
MEMOS: dict[str, Callable[[duckdb.DuckDBPyConnection], Memo]] = {
    "fixes": lambda con: fixes.MEMO,
    "campaigns": lambda con: campaigns.MEMO,
    "hpc_habits": lambda con: habits.MEMO,
    "user_activity": lambda con: activity.MEMO,
    "error_categories": lambda con: errors.MEMO,
    "error_signatures": lambda con: signatures.MEMO,
    "run_settings": lambda con: settings_usage.MEMO,
    "setting_effects": lambda con: setting_effects.MEMO,
    "version_effects": lambda con: version_effects.memo_for(
        version_effects.version_settings(con, RunFilter())
    ),
}


@pytest.fixture
def con(data_copy: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(data_copy / "runcrawler.duckdb") as con:
        yield con


@pytest.fixture(params=sorted(MEMOS))
def analysis(request: pytest.FixtureRequest) -> Analysis:
    return next(a for a in ANALYSES if a.name == request.param)


def _memo(con: duckdb.DuckDBPyConnection, analysis: Analysis) -> Memo:
    return MEMOS[analysis.name](con)


def _changed(con: duckdb.DuckDBPyConnection, memo: Memo) -> int | None:
    """How many keys (users, partitions) a refresh would make again now (None: every one,
    nothing kept)."""
    digests, changed = refreshed_digests(con, memo)
    digests.drop()
    if changed is None:
        return None
    drop_temporary(con, changed.temporary)
    return changed.count


def _assert_stored_as_from_scratch(con: duckdb.DuckDBPyConnection, analysis: Analysis) -> None:
    """What is shown, every table kept (`fix_changes` holds each couple still paired,
    once) and every key's digest, as a computation from scratch stores them."""
    stored = load_results(con, [analysis])[analysis.name].result
    scratch = compute_results(con, [analysis], RunFilter())[analysis.name]
    assert stored.findings == scratch.findings
    for name in analysis.read_tables:
        pd.testing.assert_frame_equal(stored.tables[name], scratch.tables[name], obj=name)
    memo = _memo(con, analysis)
    every_key = f"SELECT {memo.keys}, digest, runs FROM {{digests}} ORDER BY ALL"
    digests = key_digests(con, memo, RunFilter())
    try:
        kept = con.execute(every_key.format(digests=quote_identifier(memo.digests))).df()
        fresh = con.execute(every_key.format(digests=f"({digests.select})")).df()
    finally:
        digests.drop()
    pd.testing.assert_frame_equal(kept, fresh, obj=memo.digests)
    with duckdb.connect() as scratch_store:
        store_result(
            scratch_store, analysis, analysis.compute(con, RunFilter()), "", datetime.now()
        )
        for name in _memo(con, analysis).kept:
            every_row = f"SELECT * FROM {quote_identifier(name)} ORDER BY ALL"
            pd.testing.assert_frame_equal(
                con.execute(every_row).df(), scratch_store.execute(every_row).df(), obj=name
            )


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """A stored table's columns (`"user"` on a table without one binds to DuckDB's `user`
    function, so a condition on it holds for no row rather than failing)."""
    return [row[0] for row in con.execute(f"DESCRIBE {quote_identifier(table)}").fetchall()]


def _fail_one_run_of_a_user(con: duckdb.DuckDBPyConnection, rank: int = 0) -> str:
    """A user with failures gets one more (one of their successes, its LES model changed,
    fails with their most usual error): that user only."""
    [(user,)] = con.execute(
        "SELECT \"user\" FROM runs WHERE status = 'failed' "
        'GROUP BY "user" ORDER BY count(*) DESC, "user" LIMIT 1 OFFSET ?',
        [rank],
    ).fetchall()
    [(run_id,)] = con.execute(
        "SELECT min(run_id) FROM runs WHERE \"user\" = ? AND status = 'success'", [user]
    ).fetchall()
    con.execute(
        """
        UPDATE runs SET status = 'failed',
            error_category = (SELECT mode(error_category) FROM runs
                              WHERE "user" = $user AND status = 'failed'),
            les_model = (SELECT les_model FROM runs WHERE les_model IS DISTINCT FROM (
                             SELECT les_model FROM runs WHERE run_id = $run_id)
                         GROUP BY ALL ORDER BY count(*) DESC, les_model LIMIT 1)
        WHERE run_id = $run_id
        """,
        {"user": user, "run_id": run_id},
    )
    swapped_again(con, "run_id = ?", [run_id])
    return user


def test_only_the_users_whose_runs_changed_are_made_again(
    con: duckdb.DuckDBPyConnection, analysis: Analysis
):
    memo = _memo(con, analysis)
    assert _changed(con, memo) is None  # nothing stored yet: every key
    refresh_stored(con, analysis)
    assert _changed(con, memo) == 0
    _fail_one_run_of_a_user(con)
    assert _changed(con, memo) == 1
    refresh_stored(con, analysis)
    assert _changed(con, memo) == 0
    _assert_stored_as_from_scratch(con, analysis)


def test_a_user_whose_runs_are_gone_leaves_no_row(
    con: duckdb.DuckDBPyConnection, analysis: Analysis
):
    memo = _memo(con, analysis)
    refresh_stored(con, analysis)
    gone = _fail_one_run_of_a_user(con)
    [(keys,)] = con.execute(  # one for a memo per user, one per cluster of theirs per partition
        f'SELECT count(*) FROM (SELECT DISTINCT {memo.keys} FROM runs WHERE "user" = ?)', [gone]
    ).fetchall()
    assert keys == 1 if memo.by == ("user",) else keys > 1
    swapped_again(con, '"user" = ?', [gone])
    con.execute('DELETE FROM runs WHERE "user" = ?', [gone])
    assert _changed(con, memo) == keys
    refresh_stored(con, analysis)
    per_user = [t for t in (*memo.kept, memo.digests) if "user" in _columns(con, t)]
    assert per_user[0] == memo.kept[0]
    for table in per_user:
        left = f'SELECT count(*) FROM {quote_identifier(table)} WHERE "user" = ?'
        assert con.execute(left, [gone]).fetchall() == [(0,)], table
    _assert_stored_as_from_scratch(con, analysis)


def test_rows_made_by_other_code_are_not_kept(con: duckdb.DuckDBPyConnection, analysis: Analysis):
    memo = _memo(con, analysis)
    refresh_stored(con, analysis)
    assert _changed(con, memo) == 0
    assert _changed(con, replace(memo, code=memo.code + " -- changed")) is None


def test_a_result_never_stored_keeps_the_digests_it_replaces(
    con: duckdb.DuckDBPyConnection, analysis: Analysis
):
    """A refresh that fails before the store leaves the stored rows and digests together."""
    assert analysis.refresh is not None
    refresh_stored(con, analysis)
    _fail_one_run_of_a_user(con, rank=1)
    for table in analysis.refresh(con).tables.values():  # computed, never stored
        if isinstance(table, StagedTable):
            table.drop()
    assert _changed(con, _memo(con, analysis)) == 1
    refresh_stored(con, analysis)
    _assert_stored_as_from_scratch(con, analysis)


def test_a_refresh_whose_rows_fail_to_be_made_leaves_no_temporary_table(
    con: duckdb.DuckDBPyConnection, analysis: Analysis
):
    refresh_stored(con, analysis)
    _fail_one_run_of_a_user(con)
    temporary = "SELECT count(*) FROM duckdb_tables() WHERE temporary"
    [(before,)] = con.execute(temporary).fetchall()

    def fails(runs: object) -> None:
        raise RuntimeError("a bug in the SQL that makes the rows")

    with pytest.raises(RuntimeError):
        make_again(con, _memo(con, analysis), fails)
    assert con.execute(temporary).fetchall() == [(before,)]


@pytest.mark.parametrize(
    ("name", "column"),
    [("setting_effects", "les_model"), ("version_effects", "artificial_viscosity_model")],
)
def test_a_value_changed_in_one_run_makes_its_partitions_partials_again(
    con: duckdb.DuckDBPyConnection, name: str, column: str
):
    """A setting (or a stratum's column) is part of what a partition's partials are made of,
    not only the runs' outcomes."""
    analysis = next(a for a in ANALYSES if a.name == name)
    refresh_stored(con, analysis)
    quoted = quote_identifier(column)
    values = [
        v
        for (v,) in con.execute(f"SELECT DISTINCT {quoted} FROM runs ORDER BY 1").fetchall()
        if v is not None
    ]
    assert len(values) >= 2, column
    [(run_id,)] = con.execute(
        f"SELECT min(run_id) FROM runs WHERE {quoted} = ?", [values[0]]
    ).fetchall()
    con.execute(f"UPDATE runs SET {quoted} = ? WHERE run_id = ?", [values[1], run_id])
    swapped_again(con, "run_id = ?", [run_id])
    assert _changed(con, _memo(con, analysis)) == 1
    made = refresh_stored(con, analysis).result
    assert made.made_again == 1
    assert _changed(con, _memo(con, analysis)) == 0
    _assert_stored_as_from_scratch(con, analysis)


def test_a_partition_swapped_again_alike_is_digested_not_made_again(
    con: duckdb.DuckDBPyConnection, analysis: Analysis
):
    """A swap that leaves a partition's rows as they were (a re-parse) has its runs digested
    again, and no row made again."""
    refresh_stored(con, analysis)
    swapped_again(con, "run_id = (SELECT min(run_id) FROM runs)", [])
    assert _changed(con, _memo(con, analysis)) == 0
    assert refresh_stored(con, analysis).result.made_again == 0
    _assert_stored_as_from_scratch(con, analysis)


def test_rows_written_past_a_swap_are_still_seen(
    con: duckdb.DuckDBPyConnection, analysis: Analysis
):
    """Rows added or removed without their partition's version noted do not match the runs
    the digests kept count: every key is digested again, and the changed one made again."""
    refresh_stored(con, analysis)
    con.execute(
        "INSERT INTO runs SELECT * REPLACE (run_id || '-copy' AS run_id, "
        "run_path || '-copy' AS run_path) FROM runs WHERE run_id = (SELECT min(run_id) FROM runs)"
    )
    assert _changed(con, _memo(con, analysis)) == 1
    refresh_stored(con, analysis)
    _assert_stored_as_from_scratch(con, analysis)
