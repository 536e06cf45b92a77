"""Memos: an analysis's rows of each user (or each cluster × user) kept with its stored
result, and made again at the next refresh only for those whose runs changed (issue 16:
ten new runs cost ten runs' work, not a million's).

Fixes pair a user's failure with the next success of the same case; campaigns chain a
user's runs of a case: the rows of a user come from that user's runs alone. The hints of a
run read the runs of its case before it, and a case is one cluster × user's (its folder):
a partition's hints come from that partition's runs alone. Such an analysis stores, with
its tables, a digest per key (`Memo.by`: a user, or a cluster and a user) of the `runs`
columns its rows are made from, and one of the code that makes them (`key_digests`: new
code makes every key's rows again). Its refresh makes the rows of the keys whose digest
differs from the stored one (new, changed or gone: `refreshed_digests`), and reads the
others' from its stored tables (`Changed.merged`). The store writes the merged tables and
the new digests in one transaction, so the rows kept always match the digests kept; a
result never stored changes nothing.

A refresh reads the runs of the changed keys alone, not every run (issue 16: at a million
runs, reading a column of every run cost a memo 0.05-0.2 s): a partition's rows are
written only by its swap, which notes its version and time in `partition_versions`, so
each digest is kept with its key's generation (a hash of those), and only the keys whose
generation changed are digested again. A swap that left a partition's rows as they were
(a re-parse) makes nothing again. Should rows have been added or removed past a swap (the
digests kept no longer count every run), every key's runs are digested.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    Analysis,
    AnalysisResult,
    RunFilter,
    StagedTable,
    drop_temporary,
    query,
    temporary_name,
    with_runs,
)
from runcrawler_assets.warehouse.accounting_join import table_names
from runcrawler_assets.warehouse.database import VERSIONS_TABLE, quote_identifier


@dataclass(frozen=True)
class Memo:
    """What an analysis keeps: its stored tables `kept` hold every key's rows (by the
    columns `by`; or rows keys share, which the analysis completes itself: `fixes`), made
    from the `runs` columns `columns` by `code` (its SQL and constants); `digests` is the
    stored table of their digests, with the code's."""

    digests: str
    kept: tuple[str, ...]
    columns: tuple[str, ...]
    code: str
    # The `runs` columns whose each value's rows come from its runs alone: a user's, or a
    # cluster × user partition's (ten new runs then make again a partition's rows, not
    # every cluster's of their user: at a million runs, 10,000 runs' hints, not 143,000).
    by: tuple[str, ...] = ("user",)

    @property
    def code_digest(self) -> str:
        """The code's digest; keyed otherwise, the digests stored are another code's."""
        return hashlib.md5(repr((self.code, self.by)).encode()).hexdigest()

    @property
    def kept_per(self) -> str:
        """What a key is, in words: "users" or "partitions"."""
        return "users" if self.by == ("user",) else "partitions"

    @property
    def keys(self) -> str:
        """SQL: the key columns, as a list."""
        return ", ".join(quote_identifier(column) for column in self.by)


def _generations(memo: Memo) -> str:
    """SQL: each key's generation, a hash of the versions and swap times its partitions were
    last written with (`partition_versions`: every swap of a partition writes its row)."""
    return (
        f'SELECT {memo.keys}, bit_xor(hash(cluster, "user", version, swapped_at)) AS generation '
        f"FROM {VERSIONS_TABLE} GROUP BY {memo.keys}"
    )


def key_digests(
    con: duckdb.DuckDBPyConnection, memo: Memo, run_filter: RunFilter | str
) -> StagedTable:
    """Each key's digest of the runs `run_filter` keeps, with their number and the key's
    generation now, left in DuckDB (the table the analysis stores as `memo.digests`)."""
    name = temporary_name("key_digests")
    columns = ", ".join(quote_identifier(c) for c in memo.columns)
    generations = (
        _generations(memo)
        if VERSIONS_TABLE in table_names(con)
        else f"SELECT {memo.keys}, NULL::UBIGINT AS generation FROM runs WHERE false"
    )
    query(
        con,
        f"""
        CREATE TEMP TABLE {name} AS
        SELECT d.*, g.generation, $code AS code
        FROM (SELECT {memo.keys}, bit_xor(hash({columns})) AS digest, count(*) AS runs
              FROM {{runs}} GROUP BY {memo.keys}) d
        LEFT JOIN ({generations}) g USING ({memo.keys})
        """,
        run_filter,
        code=memo.code_digest,
    )
    return StagedTable(con, f"SELECT * FROM temp.{name}", (name,))


@dataclass(frozen=True)
class Changed:
    """The keys a refresh makes again: `condition`, over a table with the key columns;
    their list in the temporary table `temporary`."""

    condition: str
    count: int
    temporary: tuple[str, ...]

    def replacing(self, made: StagedTable) -> StagedTable:
        """`made` (the rows of the keys made again, a query over its own temporary tables)
        as the update of a stored table kept per key: their rows replaced, in place."""
        return StagedTable(
            made.con, made.select, made.temporary + self.temporary, replacing=self.condition
        )

    def merged(self, kept: str, made: str) -> str:
        """SQL: the stored table `kept`'s rows of the keys not made again, and `made` (a
        query of the same columns: the others' rows)."""
        return (
            f"(SELECT * FROM {quote_identifier(kept)} WHERE NOT ({self.condition}) "
            f"UNION ALL BY NAME {made})"
        )


def _kept(con: duckdb.DuckDBPyConnection, memo: Memo) -> bool:
    """Whether the stored tables of `memo` can be kept: all there, their digests by this
    code, with the generations they were taken at (`partition_versions` to compare with)."""
    tables = table_names(con)
    if not tables.issuperset((memo.digests, *memo.kept, VERSIONS_TABLE)):
        return False
    stored = quote_identifier(memo.digests)
    described = {row[0] for row in con.execute(f"DESCRIBE {stored}").fetchall()}
    if not {"generation", "runs"} <= described:
        return False
    [(other_code,)] = con.execute(
        f"SELECT count(*) FROM {stored} WHERE code IS DISTINCT FROM ?", [memo.code_digest]
    ).fetchall()
    return not other_code


def _keys_table(con: duckdb.DuckDBPyConnection, what: str, select: str) -> str:
    """`select` (rows of key columns) into a new temporary table; its name."""
    name = temporary_name(what)
    con.execute(f"CREATE TEMP TABLE {name} AS {select}")
    return name


def refreshed_digests(
    con: duckdb.DuckDBPyConnection, memo: Memo
) -> tuple[StagedTable, Changed | None]:
    """Every key's digest now (to store as `memo.digests`: the stored ones updated in
    place), and the keys whose rows must be made again: those whose digest differs from
    the stored one, or that are new or gone. None: nothing is kept (the first refresh, a
    table missing, rows made by other code), every key's rows are made.

    Only the runs of the keys whose generation changed since their digest was taken are
    digested again (a partition's rows change only in its swap, which writes its version
    and time: ten new runs, their partition's runs read, not a million). Should the stored
    digests not account for every run (rows written past a swap), every key's runs are.
    """
    if not _kept(con, memo):
        return key_digests(con, memo, RunFilter()), None
    candidates = _keys_table(con, "candidate_keys", _candidates(memo))
    among = f"({memo.keys}) IN (SELECT {memo.keys} FROM temp.{candidates})"
    fresh = changed = None
    try:
        fresh = key_digests(con, memo, among)
        if not _counts_every_run(con, memo, among, fresh):
            fresh.drop()
            fresh = None  # nothing of it left to drop, should the next digests fail
            fresh, among = key_digests(con, memo, RunFilter()), "TRUE"
        changed = _keys_table(con, "changed_keys", _changed(memo, among, fresh))
        [(count,)] = con.execute(f"SELECT count(*) FROM temp.{changed}").fetchall()
    except BaseException:
        made = (*(fresh.temporary if fresh else ()), *([changed] if changed else []))
        drop_temporary(con, (candidates, *made))
        raise
    digests = StagedTable(con, fresh.select, (*fresh.temporary, candidates), replacing=among)
    condition = f"({memo.keys}) IN (SELECT {memo.keys} FROM temp.{changed})"
    return digests, Changed(condition, count, (changed,))


def _candidates(memo: Memo) -> str:
    """SQL: the keys whose generation is not the one stored with their digest (or unknown),
    and those stored that no partition has any more."""
    stored, keys = quote_identifier(memo.digests), memo.keys
    same_key = " AND ".join(f"s.{c} = g.{c}" for c in map(quote_identifier, memo.by))
    return f"""
        SELECT {keys} FROM ({_generations(memo)}) g WHERE NOT EXISTS (
            SELECT 1 FROM {stored} s WHERE {same_key} AND s.generation = g.generation)
        UNION
        SELECT {keys} FROM {stored} WHERE generation IS NULL
            OR ({keys}) NOT IN (SELECT {keys} FROM ({_generations(memo)}))
    """


def _counts_every_run(
    con: duckdb.DuckDBPyConnection, memo: Memo, among: str, fresh: StagedTable
) -> bool:
    """Whether the stored digests of the keys not `among` and the `fresh` ones of those
    `among` count every run of `runs` (one count: no run read)."""
    [(counted, runs)] = con.execute(
        f"SELECT (SELECT coalesce(sum(runs), 0) FROM {quote_identifier(memo.digests)} "
        f"WHERE NOT ({among})) + (SELECT coalesce(sum(runs), 0) FROM ({fresh.select})), "
        "(SELECT count(*) FROM runs)"
    ).fetchall()
    return counted == runs


def _changed(memo: Memo, among: str, fresh: StagedTable) -> str:
    """SQL: the keys `among` whose `fresh` digest is not the stored one, or that have none
    any more."""
    stored, keys = quote_identifier(memo.digests), memo.keys
    same_key = " AND ".join(f"s.{c} = f.{c}" for c in map(quote_identifier, memo.by))
    return f"""
        SELECT {keys} FROM ({fresh.select}) f WHERE NOT EXISTS (
            SELECT 1 FROM {stored} s WHERE {same_key} AND s.digest = f.digest)
        UNION
        SELECT {keys} FROM {stored} WHERE {among}
            AND ({keys}) NOT IN (SELECT {keys} FROM ({fresh.select}))
    """


def write_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    select: str,
    replacing: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> None:
    """`select`'s rows (with its bound `params`) as the table `name`: the whole table, or,
    `replacing` the rows a condition holds for (as `Changed.condition`: the keys made
    again), the others kept where they lie."""
    table = quote_identifier(name)
    if replacing is None:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}", params)
    else:
        con.execute(f"DELETE FROM {table} WHERE {replacing}")
        con.execute(f"INSERT INTO {table} BY NAME {select}", params)


Staged = TypeVar("Staged")


@dataclass(frozen=True)
class MadeAgain(Generic[Staged]):
    """What a refresh starts from: every key's digests, the keys made again (None: every
    one, nothing kept) and their rows, staged."""

    digests: StagedTable
    changed: Changed | None
    staged: Staged


def make_again(
    con: duckdb.DuckDBPyConnection, memo: Memo, stage: Callable[[RunFilter | str], Staged]
) -> MadeAgain[Staged]:
    """The keys' digests now (`refreshed_digests`) and, staged with `stage` (given the runs
    to make rows of), the rows of the keys whose digest changed; on error nothing is left
    behind."""
    digests, changed = refreshed_digests(con, memo)
    try:
        return MadeAgain(digests, changed, stage(changed.condition if changed else RunFilter()))
    except BaseException:
        drop_temporary(con, digests.temporary + (changed.temporary if changed else ()))
        raise


@dataclass(frozen=True)
class Kept:
    """Rows kept per key (`Memo.kept`) for the runs asked about: `read`, per kept table, a
    query of every key's rows; `tables`, what to store for the next refresh (those tables
    and the digests), left in DuckDB; `made_again`, how many keys' rows were made now
    (None: all)."""

    read: dict[str, str]
    tables: dict[str, StagedTable]
    made_again: int | None

    def drop(self) -> None:
        """The staged tables' temporary tables, for a result that will never be stored."""
        for table in self.tables.values():
            table.drop()


def staged_queries(
    con: duckdb.DuckDBPyConnection, queries: Mapping[str, str], run_filter: RunFilter | str
) -> dict[str, StagedTable]:
    """Each of `queries` (over `{runs}`, the runs `run_filter` keeps) run into a temporary
    table of its own: the rows of the kept tables they are named after, staged."""
    staged: dict[str, StagedTable] = {}
    try:
        for name, sql in queries.items():
            temporary = temporary_name(name)
            text, params = with_runs(f"CREATE TEMP TABLE {temporary} AS {sql}", run_filter)
            con.execute(text, params)
            staged[name] = StagedTable(con, f"SELECT * FROM temp.{temporary}", (temporary,))
    except BaseException:
        for table in staged.values():
            table.drop()
        raise
    return staged


def kept_rows(
    con: duckdb.DuckDBPyConnection,
    memo: Memo,
    stage: Callable[[RunFilter | str], Mapping[str, StagedTable]],
    run_filter: RunFilter | None = None,
) -> Kept:
    """Every key's rows of the tables `memo.kept`, for the runs `run_filter` keeps, made now
    by `stage` (given the runs to make rows of: each kept table's rows, staged); or, without
    a filter (a refresh), those of the keys whose runs did not change read from the stored
    tables, and the others' made now."""
    if run_filter is None:
        made = make_again(con, memo, stage)
        digests, staged, changed = made.digests, made.staged, made.changed
    else:
        digests, changed = key_digests(con, memo, run_filter), None
        try:
            staged = stage(run_filter)
        except BaseException:
            digests.drop()
            raise
    if changed is None:  # every key's rows made now
        read = {name: f"({table.select})" for name, table in staged.items()}
        return Kept(read, {**staged, memo.digests: digests}, None)
    read = {name: changed.merged(name, table.select) for name, table in staged.items()}
    stored = {name: replace(table, replacing=changed.condition) for name, table in staged.items()}
    digests = replace(digests, temporary=digests.temporary + changed.temporary)
    return Kept(read, {**stored, memo.digests: digests}, changed.count)


# What an analysis shows, from its kept tables' rows (by name, each as a query): its tables
# (shown and drawn) and findings.
Shown = Callable[
    [duckdb.DuckDBPyConnection, Mapping[str, str]], tuple[dict[str, pd.DataFrame], list[str]]
]


# How an analysis makes its kept tables' rows of some runs (a filter, or a condition in
# SQL): each table's, staged in DuckDB.
Stage = Callable[[duckdb.DuckDBPyConnection, RunFilter | str], Mapping[str, StagedTable]]


def made_by(queries: Mapping[str, str]) -> Stage:
    """The `Stage` running each of `queries` (by kept table) into a table (`staged_queries`)."""
    return lambda con, runs: staged_queries(con, queries, runs)


def kept_analysis(memo: Memo, stage: Stage, shown: Shown, **analysis: Any) -> Analysis:
    """The `Analysis` (`analysis`: its name, title, tables...) made of rows kept per key:
    `stage` makes the kept tables' rows of some runs, `shown` what it shows from every
    key's. A filter's computation and a refresh differ only in which rows are made now; the
    kept tables (those not shown too) and the digests are stored with the result."""

    def result(con: duckdb.DuckDBPyConnection, kept: Kept) -> AnalysisResult:
        try:
            tables, findings = shown(con, kept.read)
        except BaseException:
            kept.drop()
            raise
        return AnalysisResult(
            tables={**tables, **kept.tables},
            findings=findings,
            made_again=kept.made_again,
            made_of=memo.kept_per,
        )

    def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
        return result(con, kept_rows(con, memo, lambda runs: stage(con, runs), run_filter))

    def refresh(con: duckdb.DuckDBPyConnection) -> AnalysisResult:
        return result(con, kept_rows(con, memo, lambda runs: stage(con, runs)))

    shown_too = (*analysis.get("tables", ()), *analysis.get("chart_tables", ()))
    kept = tuple(t for t in (*memo.kept, memo.digests) if t not in shown_too)
    return Analysis(compute=compute, refresh=refresh, kept_tables=kept, **analysis)
