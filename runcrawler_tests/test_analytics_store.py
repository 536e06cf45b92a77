"""The analytics store keeps big tables out of pandas (issue 16) and shows them the same."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter, compute_results
from runcrawler_assets.analytics.core import StagedTable
from runcrawler_assets.analytics.store import refresh_stored, store_result
from runcrawler_tests.conftest import DemoWarehouse

STAGED = {"fixes": "fix_pairs", "campaigns": "campaigns"}  # analysis: its big table


def _temporary_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return [name for (name,) in rows]


@pytest.fixture
def demo_copy(demo_warehouse: DemoWarehouse, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable copy of the demo warehouse, nothing stored in it yet by these tests."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_warehouse.settings.duckdb_path, path)
    with duckdb.connect(str(path)) as con:
        yield con


def test_fixes_and_campaigns_leave_their_big_table_in_duckdb(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    for analysis in (a for a in ANALYSES if a.name in STAGED):
        result = analysis.compute(demo_copy, RunFilter())
        assert isinstance(result.tables[STAGED[analysis.name]], StagedTable)
        store_result(demo_copy, analysis, result, "0:0", datetime(2026, 1, 1))


def test_a_table_stored_in_sql_reads_back_as_one_stored_through_pandas(
    demo_copy: duckdb.DuckDBPyConnection, demo_results: dict[str, AnalysisResult]
) -> None:
    """`demo_results` went through pandas into a scratch store; a refresh copies in SQL."""
    for analysis in (a for a in ANALYSES if a.name in STAGED):
        stored = refresh_stored(demo_copy, analysis).result
        assert stored.findings == demo_results[analysis.name].findings
        for name in analysis.read_tables:
            pd.testing.assert_frame_equal(
                stored.tables[name], demo_results[analysis.name].tables[name]
            )


def test_storing_drops_the_staged_tables_in_either_store(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    staged = [a for a in ANALYSES if a.name in STAGED]
    for analysis in staged:
        refresh_stored(demo_copy, analysis)
    compute_results(demo_copy, staged, RunFilter(user="nobody"))
    assert _temporary_tables(demo_copy) == []


def test_a_result_refused_by_the_store_still_drops_its_staged_tables(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    fixes, campaigns = (next(a for a in ANALYSES if a.name == name) for name in STAGED)
    result = campaigns.compute(demo_copy, RunFilter())
    with pytest.raises(ValueError, match="declares"):
        store_result(demo_copy, fixes, result, "0:0", datetime(2026, 1, 1))
    assert _temporary_tables(demo_copy) == []


@pytest.mark.parametrize("first", [3, 40])
def test_previewed_tables_read_back_as_their_first_rows_and_their_count(
    demo_copy: duckdb.DuckDBPyConnection, demo_results: dict[str, AnalysisResult], first: int
) -> None:
    """Whether read by sorting the whole table or by its own query (`first_rows`: the
    `fixes` view)."""
    for analysis in (a for a in ANALYSES if a.previewed):
        whole = demo_results[analysis.name]
        shown = refresh_stored(demo_copy, analysis, preview_rows=first).result
        for name in analysis.read_tables:
            full = whole.tables[name]
            assert shown.rows(name) == len(full)
            expected = full.head(first) if name in analysis.previewed else full
            pd.testing.assert_frame_equal(shown.tables[name], expected)
        assert all(len(whole.tables[name]) > first for name in analysis.previewed)


def test_no_chart_draws_a_previewed_table(
    demo_copy: duckdb.DuckDBPyConnection, demo_charts: dict[str, dict[str, bytes]]
) -> None:
    """Charts are drawn from what the UI reads back: a previewed table must not feed one."""
    from runcrawler_assets.reporting.plans import draw_charts

    for analysis in (a for a in ANALYSES if a.previewed):
        shown = refresh_stored(demo_copy, analysis, preview_rows=1).result
        assert draw_charts(analysis.name, shown.tables) == demo_charts[analysis.name]


def test_results_stored_in_an_older_format_are_out_of_date(
    demo_copy: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store written before a table changed shape is computed again, not read as it is."""
    from runcrawler_assets.analytics import store

    habits = next(a for a in ANALYSES if a.name == "hpc_habits")
    refresh_stored(demo_copy, habits)
    assert store.out_of_date(demo_copy, [habits]) == []
    monkeypatch.setattr(store, "RESULTS_FORMAT", store.RESULTS_FORMAT + 1)
    assert store.out_of_date(demo_copy, [habits]) == [habits]


def test_a_table_an_older_runcrawler_stored_gives_way_to_the_view_of_that_name(
    demo_copy: duckdb.DuckDBPyConnection, demo_results: dict[str, AnalysisResult]
) -> None:
    """`fixes` was a table until it became a view over `fix_pairs` and `fix_changes`: a store
    from before holds the table, which the refresh replaces (and reads through the view)."""
    fixes = next(a for a in ANALYSES if a.name == "fixes")
    demo_copy.execute("CREATE TABLE fixes AS SELECT 1 AS stale")
    shown = refresh_stored(demo_copy, fixes).result.tables["fixes"]
    kinds = demo_copy.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_name IN ('fixes', 'fix_pairs', 'fix_changes') ORDER BY table_name"
    ).fetchall()
    assert kinds == [("fix_changes", "BASE TABLE"), ("fix_pairs", "BASE TABLE"), ("fixes", "VIEW")]
    pd.testing.assert_frame_equal(shown, demo_results["fixes"].tables["fixes"])
    [(pairs,)] = demo_copy.execute("SELECT count(*) FROM fix_pairs").fetchall()
    assert len(shown) == pairs > 0  # each pair joined to its couple's changes, once


def _memory_probe(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    """Says DuckDB's memory limit while it computes, and stores one table."""
    [(limit,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    return AnalysisResult(tables={"memory_probe": pd.DataFrame({"x": [1]})}, findings=[limit])


def test_an_analysis_computes_under_the_memory_limit_it_is_given_then_the_limit_is_restored(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    from runcrawler_assets.analytics.core import Analysis

    probe = Analysis("memory_probe", "probe", "probe", _memory_probe, ("memory_probe",))
    demo_copy.execute("SET memory_limit = '512MiB'")  # a writer's own limit, set on connect
    limits = [refresh_stored(demo_copy, probe, memory=m).result.findings for m in ("96MB", "2GB")]
    assert limits == [["91.5 MiB"], ["1.8 GiB"]]
    assert demo_copy.execute("SELECT current_setting('memory_limit')").fetchall() == [
        ("512.0 MiB",)
    ]


def _storing_probe(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    """A staged table that says DuckDB's memory limit and threads while it is stored."""
    select = (
        "SELECT current_setting('memory_limit') AS memory_limit, "
        "current_setting('threads') AS threads"
    )
    return AnalysisResult(tables={"storing_probe": StagedTable(con, select, ())})


def test_a_result_is_stored_under_the_analytics_memory_limit_when_smaller_on_one_thread(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    """A limit set for the analytics holds while their results are written (a million runs'
    fixes are written under it), on one thread; a bigger one leaves the writer's own."""
    from runcrawler_assets.analytics.core import Analysis

    probe = Analysis("storing_probe", "probe", "probe", _storing_probe, ("storing_probe",))
    demo_copy.execute("SET memory_limit = '512MiB'")  # a writer's own limit, set on connect
    [(threads,)] = demo_copy.execute("SELECT current_setting('threads')").fetchall()
    stored = {
        memory: refresh_stored(demo_copy, probe, memory=memory)
        .result.tables["storing_probe"]
        .iloc[0]
        .tolist()
        for memory in ("96MB", "2GB")
    }
    assert stored == {"96MB": ["91.5 MiB", 1], "2GB": ["512.0 MiB", threads]}
    assert demo_copy.execute(
        "SELECT current_setting('memory_limit'), current_setting('threads')"
    ).fetchall() == [("512.0 MiB", threads)]


def test_a_report_for_a_filter_computes_under_the_same_memory_limit(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    """A report for a filter computes every analysis (`compute_results`) on a read
    connection: under RUNCRAWLER_ANALYTICS_MEMORY too, not DuckDB's default of most RAM."""
    from runcrawler_assets.analytics.core import Analysis
    from runcrawler_assets.analytics.store import AnalyticsMemoryError, compute_results

    probe = Analysis("memory_probe", "probe", "probe", _memory_probe, ("memory_probe",))
    greedy = Analysis("greedy", "greedy", "greedy", _needs_memory, ("memory_probe",))
    demo_copy.execute("SET memory_limit = '512MiB'")
    computed = compute_results(demo_copy, [probe], RunFilter(user="nobody"), memory="96MB")
    assert computed["memory_probe"].findings == ["91.5 MiB"]
    assert demo_copy.execute("SELECT current_setting('memory_limit')").fetchall() == [
        ("512.0 MiB",)
    ]
    with pytest.raises(AnalyticsMemoryError, match=r"^greedy needs more memory than"):
        compute_results(demo_copy, [greedy], RunFilter(user="nobody"), memory="64MB")


def _needs_memory(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    """Holds a 160 MB list, which DuckDB cannot spill."""
    con.execute("SELECT len(list(i)) FROM range(20_000_000) t(i)").fetchall()
    return AnalysisResult(tables={"memory_probe": pd.DataFrame({"x": [1]})}, findings=[])


def test_an_analysis_out_of_memory_names_the_setting_to_raise(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    from runcrawler_assets.analytics.core import Analysis
    from runcrawler_assets.analytics.store import AnalyticsMemoryError

    greedy = Analysis("greedy", "greedy", "greedy", _needs_memory, ("memory_probe",))
    told = "greedy needs more memory than RUNCRAWLER_ANALYTICS_MEMORY=64MB lets DuckDB use"
    with pytest.raises(AnalyticsMemoryError, match=f"^{told}: raise it"):
        refresh_stored(demo_copy, greedy, memory="64MB")
    assert refresh_stored(demo_copy, greedy, memory="1GB").result.tables["memory_probe"].size


def test_an_analysis_out_of_memory_on_two_threads_is_computed_again_on_one(
    demo_copy: duckdb.DuckDBPyConnection,
) -> None:
    """Near the limit a query may fit on one thread and not on two (each holds buffers of
    its own): the refresh computes it again on one thread, and sets the threads back."""
    from runcrawler_assets.analytics.core import Analysis

    threads_seen: list[int] = []

    def fits_on_one_thread(con: duckdb.DuckDBPyConnection, _: RunFilter) -> AnalysisResult:
        [(threads,)] = con.execute("SELECT current_setting('threads')").fetchall()
        threads_seen.append(threads)
        held = 20_000_000 if threads > 1 else 1_000  # a list DuckDB cannot spill: 160 MB
        con.execute(f"SELECT len(list(i)) FROM range({held}) t(i)").fetchall()
        return AnalysisResult(tables={"memory_probe": pd.DataFrame({"x": [1]})}, findings=[])

    tight = Analysis("tight", "tight", "tight", fits_on_one_thread, ("memory_probe",))
    demo_copy.execute("SET threads = 2")
    stored = refresh_stored(demo_copy, tight, memory="64MB")
    assert stored.result.tables["memory_probe"]["x"].tolist() == [1]
    assert threads_seen == [2, 1]
    assert demo_copy.execute("SELECT current_setting('threads')").fetchall() == [(2,)]
