"""The analytics store: each analysis's tables and findings in DuckDB, read back to be shown.

An analysis is computed once per refresh and stored here; everything shown
afterwards (its charts in the Dagster UI, the report, a CLI report over all
runs) is drawn from what was stored, never computed again. A report for a
filter computes into a scratch store (an in-memory DuckDB) and reads back
through the same `load_results`, so whichever way results came, the report
sees DuckDB's types and shows them the same way.

Per analysis: its tables, replaced whole (or, kept per user by a memo, just
the changed users' rows: `memo`), and one row of `analysis_findings` (its
findings, the version of `runs` they were computed from, and when), in one
transaction, so a reader never sees new tables with old findings. A big
table left in DuckDB by its analysis (`StagedTable`) is copied in SQL, never
through pandas, when computed on the store's own connection.

The version of `runs` stored with each analysis is also what decides whether
a refresh has anything to do (`is_current`): an analysis whose stored version
equals the table's is not computed again (issue 16: nothing changed, nothing done).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter, StagedTable
from runcrawler_assets.analytics.memo import write_rows
from runcrawler_assets.config import DEFAULT_ANALYTICS_MEMORY, memory_bytes
from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.warehouse.accounting_join import table_names
from runcrawler_assets.warehouse.database import (
    VERSIONS_TABLE,
    quote_identifier,
    replace_view,
    run_count,
    temporary_setting,
    transaction,
    write_table,
)

T = TypeVar("T")
FINDINGS_TABLE = "analysis_findings"
FINDINGS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {FINDINGS_TABLE} (analysis VARCHAR, findings VARCHAR[], "
    "runs_version VARCHAR, computed_at TIMESTAMP)"
)
# The shape of the stored tables: raised when an analysis's tables gain or change a column,
# so that results stored by an older runcrawler are computed again, not read with a column
# missing (2: the box statistics' `runs`; 3: the fixes' `failed_at` and `changed_to`, and
# the memos' digests, `memo`; 4: `fixes` a view over `fix_pairs` and `fix_changes`; 5: most
# analyses kept per partition, `runs_version` from the swaps alone).
RESULTS_FORMAT = 5


@dataclass(frozen=True)
class StoredResult:
    """An analysis's result as stored, with the version of `runs` it was computed from."""

    result: AnalysisResult
    runs_version: str
    computed_at: datetime


def runs_version(con: duckdb.DuckDBPyConnection) -> str:
    """What `runs` holds, in a few characters: its rows, a hash of the versions and times
    its partitions were last swapped in with (every write of a partition's rows is its
    swap, which notes them: `database.record_version`; new accounting dumps change rows
    through a swap too), and the store's `RESULTS_FORMAT`. Results computed from another
    version are out of date. No run is read: at a million runs, a scan of their ids cost
    each step that asks 0.02-0.05 s (issue 16)."""
    rows = run_count(con)
    swaps = 0
    if VERSIONS_TABLE in table_names(con):
        [(swaps,)] = con.execute(
            'SELECT coalesce(bit_xor(hash(cluster, "user", version, swapped_at)), 0) '
            f"FROM {VERSIONS_TABLE}"
        ).fetchall()
    return f"{rows}:{swaps:x}:f{RESULTS_FORMAT}"


def stored_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The version of `runs` each stored analysis was computed from, by name (one small
    query: no table is read)."""
    if FINDINGS_TABLE not in table_names(con):
        return {}
    rows = con.execute(f"SELECT analysis, runs_version FROM {FINDINGS_TABLE}").fetchall()
    return dict(rows)


def out_of_date(
    con: duckdb.DuckDBPyConnection, analyses: Iterable[Analysis], version: str | None = None
) -> list[Analysis]:
    """The analyses among `analyses` not stored, missing a table, or computed from another
    version of `runs` than `version` (default: the table's now)."""
    version = version if version is not None else runs_version(con)
    stored, existing = stored_versions(con), table_names(con)
    return [
        analysis
        for analysis in analyses
        if stored.get(analysis.name) != version or not existing.issuperset(analysis.stored_names)
    ]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as strings, so an empty table still gets VARCHAR columns, not NULL ones
    (columns holding lists, such as box plots' outliers, stay lists)."""
    text = [
        column
        for column in frame.columns
        if frame[column].dtype == object and all(isinstance(v, str) for v in frame[column].dropna())
    ]
    return frame.astype(dict.fromkeys(text, "string"))


def _write(con: duckdb.DuckDBPyConnection, name: str, table: pd.DataFrame | StagedTable) -> None:
    """One table into the store: a staged one on the same connection in SQL, never through
    pandas (the big tables: `StagedTable`), updated in place when it says so."""
    if isinstance(table, StagedTable) and table.con is con:
        write_rows(con, name, table.select, table.replacing)
    else:
        write_table(con, name, _typed(table.df() if isinstance(table, StagedTable) else table))


def store_result(
    con: duckdb.DuckDBPyConnection,
    analysis: Analysis,
    result: AnalysisResult,
    version: str,
    computed_at: datetime,
) -> None:
    """Replace the analysis's tables, views and findings in the store, in one transaction
    (the result's staged tables are dropped, stored or not)."""
    staged = [table for table in result.tables.values() if isinstance(table, StagedTable)]
    try:
        if set(result.tables) != set(analysis.stored_tables):
            raise ValueError(
                f"{analysis.name} returned tables {sorted(result.tables)}, "
                f"declares {sorted(analysis.stored_tables)}"
            )
        con.execute(FINDINGS_DDL)
        with transaction(con):
            for name in analysis.stored_tables:
                _write(con, name, result.tables[name])
            for name, select in analysis.views.items():
                replace_view(con, name, select)
            con.execute(f"DELETE FROM {FINDINGS_TABLE} WHERE analysis = ?", [analysis.name])
            con.execute(
                f"INSERT INTO {FINDINGS_TABLE} VALUES (?, ?, ?, ?)",
                [analysis.name, list(result.findings), version, computed_at],
            )
    finally:
        for table in staged:
            table.drop()


def load_results(
    con: duckdb.DuckDBPyConnection,
    analyses: Iterable[Analysis],
    preview_rows: int | None = None,
) -> dict[str, StoredResult]:
    """What the store holds of `analyses`, by name; an analysis missing a table is left out.

    An analysis's `previewed` tables are read back in their order; with `preview_rows`,
    as their first `preview_rows` rows and their count (what the UI and the report show
    of them)."""
    existing = table_names(con)
    if FINDINGS_TABLE not in existing:
        return {}
    rows = con.execute(
        f"SELECT analysis, findings, runs_version, computed_at FROM {FINDINGS_TABLE}"
    ).fetchall()
    stored = {name: (list(findings), version, at) for name, findings, version, at in rows}
    results = {}
    for analysis in analyses:
        if analysis.name not in stored or not existing.issuperset(analysis.stored_names):
            continue
        findings, version, computed_at = stored[analysis.name]
        tables, counts = {}, {}
        for name in analysis.read_tables:
            table = quote_identifier(name)
            sql = f"SELECT * FROM {table}"
            if name in analysis.previewed:
                sql += f" ORDER BY {analysis.previewed[name]}"
                if preview_rows is not None:
                    [(counts[name],)] = con.execute(f"SELECT count(*) FROM {table}").fetchall()
                    first = analysis.first_rows.get(name)
                    sql = first(preview_rows) if first else f"{sql} LIMIT {int(preview_rows)}"
            tables[name] = con.execute(sql).df()
        results[analysis.name] = StoredResult(
            AnalysisResult(tables, findings, counts), version, computed_at
        )
    return results


class AnalyticsMemoryError(RuncrawlerError):
    """An analysis needed more memory than `RUNCRAWLER_ANALYTICS_MEMORY` gives DuckDB."""


@contextmanager
def analytics_memory(con: duckdb.DuckDBPyConnection, memory: str, what: str) -> Iterator[None]:
    """DuckDB's memory limit `memory` for computing `what` (an analysis, the hints); running
    out is an error naming the setting to raise, not DuckDB's advice to `SET` it."""
    try:
        with temporary_setting(con, "memory_limit", memory):
            yield
    except duckdb.OutOfMemoryException as error:
        raise AnalyticsMemoryError(
            f"{what} needs more memory than RUNCRAWLER_ANALYTICS_MEMORY={memory} lets DuckDB "
            f"use: raise it ({str(error).splitlines()[0]})"
        ) from None


def within_memory(
    con: duckdb.DuckDBPyConnection, memory: str, what: str, compute: Callable[[], T]
) -> T:
    """`compute()` under DuckDB's memory limit `memory` (`analytics_memory`), once more on
    one thread if it ran out on more. Near the limit, whether a query fits depends on how
    its threads interleave, each holding buffers of its own (a million runs under 160MB:
    the campaigns ran out about one refresh in ten on two threads); on one thread it needs
    less, for more time, where failing would lose the refresh. Out of memory on one thread
    too, the `AnalyticsMemoryError` names the setting to raise."""
    try:
        with analytics_memory(con, memory, what):
            return compute()
    except AnalyticsMemoryError:
        [(threads,)] = con.execute("SELECT current_setting('threads')").fetchall()
        if int(threads) <= 1:
            raise
    with analytics_memory(con, memory, what), temporary_setting(con, "threads", 1):
        return compute()


def refresh_stored(
    con: duckdb.DuckDBPyConnection,
    analysis: Analysis,
    preview_rows: int | None = None,
    memory: str = DEFAULT_ANALYTICS_MEMORY,
    version: str | None = None,
) -> StoredResult:
    """Compute the analysis over all runs, under DuckDB's memory limit `memory`, store it,
    and return it as stored (its `previewed` tables cut to `preview_rows`), with the version
    of `runs` it was computed from: what the analytics step does for it once per refresh.
    `version`: `runs_version`, taken by the caller for all the analyses it refreshes on one
    writing connection (nothing else writes `runs` meanwhile; a million runs: 20 ms each)."""

    def computed() -> AnalysisResult:
        if analysis.refresh is not None:
            return analysis.refresh(con)
        return analysis.compute(con, RunFilter())

    result = within_memory(con, memory, analysis.name, computed)
    version = version if version is not None else runs_version(con)
    with _storing_memory(con, memory, analysis.name):
        store_result(con, analysis, result, version, datetime.now())
    stored = load_results(con, [analysis], preview_rows)[analysis.name]
    made = {"made_again": result.made_again, "made_of": result.made_of}
    return replace(stored, result=replace(stored.result, **made))


@contextmanager
def _storing_memory(con: duckdb.DuckDBPyConnection, memory: str, what: str) -> Iterator[None]:
    """The limits a result is stored under: the connection's own memory limit (a writer's),
    or `memory` when smaller, so that a limit set for the analytics holds while their
    results are written too (issue 16: a million runs in 500 MB), then on one thread: each
    thread writes through buffers of its own (a million runs' fixes, 160MB cap: the step's
    peak 490 MB on two threads, 390 MB on one, for 0.4 s more). Staged tables are written in
    no order: their readers sort (`load_results`)."""
    [(limit,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    if memory_bytes(memory) >= memory_bytes(limit):
        yield
        return
    with (
        analytics_memory(con, memory, f"storing {what}"),
        temporary_setting(con, "threads", 1),
    ):
        yield


def refresh(con: duckdb.DuckDBPyConnection, analysis: Analysis) -> AnalysisResult:
    """`refresh_stored`'s result alone."""
    return refresh_stored(con, analysis).result


def compute_results(
    con: duckdb.DuckDBPyConnection,
    analyses: Iterable[Analysis],
    run_filter: RunFilter,
    memory: str = DEFAULT_ANALYTICS_MEMORY,
) -> dict[str, AnalysisResult]:
    """Every analysis computed for `run_filter` into a scratch store and read back: the
    results of a report for a filter, typed as stored ones are. `con` is only read; each
    analysis computes under the memory limit `memory`, as a refresh does."""
    analyses = list(analyses)
    version, now = runs_version(con), datetime.now()
    with duckdb.connect() as scratch:
        for analysis in analyses:
            compute = partial(analysis.compute, con, run_filter)
            result = within_memory(con, memory, analysis.name, compute)
            store_result(scratch, analysis, result, version, now)
        return {name: stored.result for name, stored in load_results(scratch, analyses).items()}
