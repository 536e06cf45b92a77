"""Per-user memos: an analysis's rows of each user kept with its stored result, and made
again at the next refresh only for the users whose runs changed (issue 16: ten new runs
cost ten runs' work, not a million's).

Fixes pair a user's failure with the next success of the same case; campaigns chain a
user's runs of a case: the rows of a user come from that user's runs alone. Such an
analysis stores, with its tables, a digest per user of the `runs` columns its rows are made
from, and one of the code that makes them (`user_digests`: new code makes every user's
rows again). Its refresh digests every user's runs again (one grouped scan of those columns),
makes the rows of the users whose digest differs from the stored one (new, changed or
gone: `changed_users`), and reads the others' from its stored tables (`Changed.merged`).
The store writes the merged tables and the new digests in one transaction, so the rows
kept always match the digests kept; a result never stored changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import duckdb

from runcrawler_assets.analytics.core import (
    RunFilter,
    StagedTable,
    drop_temporary,
    query,
    temporary_name,
)
from runcrawler_assets.warehouse.accounting_join import table_names
from runcrawler_assets.warehouse.database import quote_identifier


@dataclass(frozen=True)
class Memo:
    """What an analysis keeps: its stored tables `kept` hold every user's rows (by a `user`
    column; or rows users share, which the analysis completes itself: `fixes`), made from
    the `runs` columns `columns` by `code` (its SQL and constants); `digests` is the stored
    table of their digests, with the code's."""

    digests: str
    kept: tuple[str, ...]
    columns: tuple[str, ...]
    code: str

    @property
    def code_digest(self) -> str:
        return hashlib.md5(self.code.encode()).hexdigest()


def user_digests(
    con: duckdb.DuckDBPyConnection, memo: Memo, run_filter: RunFilter | str
) -> StagedTable:
    """Each user's digest of the runs `run_filter` keeps, left in DuckDB (the table the
    analysis stores as `memo.digests`)."""
    name = temporary_name("user_digests")
    columns = ", ".join(quote_identifier(c) for c in memo.columns)
    query(
        con,
        f'CREATE TEMP TABLE {name} AS SELECT "user", bit_xor(hash({columns})) AS digest, '
        '$code AS code FROM {runs} GROUP BY "user"',
        run_filter,
        code=memo.code_digest,
    )
    return StagedTable(con, f"SELECT * FROM temp.{name}", (name,))


@dataclass(frozen=True)
class Changed:
    """The users a refresh makes again: `users`, a condition over a table with a `user`
    column; their list in the temporary table `temporary`."""

    users: str
    count: int
    temporary: tuple[str, ...]

    def replacing(self, made: StagedTable) -> StagedTable:
        """`made` (the rows of the users made again, a query over its own temporary tables)
        as the update of a stored table kept per user: their rows replaced, in place."""
        return StagedTable(
            made.con, made.select, made.temporary + self.temporary, replacing=self.users
        )

    def merged(self, kept: str, made: str) -> str:
        """SQL: the stored table `kept`'s rows of the users not made again, and `made` (a
        query of the same columns: the others' rows)."""
        return (
            f"(SELECT * FROM {quote_identifier(kept)} WHERE NOT ({self.users}) "
            f"UNION ALL BY NAME {made})"
        )


def changed_users(
    con: duckdb.DuckDBPyConnection, memo: Memo, digests: StagedTable
) -> Changed | None:
    """The users whose digest (`user_digests`, of every run) differs from the stored one, or
    who are gone; None when nothing is kept (the first refresh, a table missing, rows made
    by other code): every user's rows are made."""
    if not table_names(con).issuperset((memo.digests, *memo.kept)):
        return None
    stored = quote_identifier(memo.digests)
    [(other_code,)] = con.execute(
        f"SELECT count(*) FROM {stored} WHERE code IS DISTINCT FROM ?", [memo.code_digest]
    ).fetchall()
    if other_code:
        return None
    name = temporary_name("changed_users")
    con.execute(
        f"""
        CREATE TEMP TABLE {name} AS
        SELECT "user" FROM ({digests.select}) d WHERE NOT EXISTS (
            SELECT 1 FROM {stored} s WHERE s."user" = d."user" AND s.digest = d.digest)
        UNION
        SELECT "user" FROM {stored} WHERE "user" NOT IN (SELECT "user" FROM ({digests.select}))
        """
    )
    [(count,)] = con.execute(f"SELECT count(*) FROM temp.{name}").fetchall()
    return Changed(f'"user" IN (SELECT "user" FROM temp.{name})', count, (name,))


def write_rows(
    con: duckdb.DuckDBPyConnection,
    name: str,
    select: str,
    users: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> None:
    """`select`'s rows (with its bound `params`) as the table `name`: the whole table, or,
    with `users` (a condition on its `user` column, as `Changed.users`), in place of those
    users' rows, the others' kept where they lie."""
    table = quote_identifier(name)
    if users is None:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}", params)
    else:
        con.execute(f"DELETE FROM {table} WHERE {users}")
        con.execute(f"INSERT INTO {table} BY NAME {select}", params)


Staged = TypeVar("Staged")


@dataclass(frozen=True)
class MadeAgain(Generic[Staged]):
    """What a refresh starts from: every user's digests, the users made again (None:
    every one, nothing kept) and their rows, staged."""

    digests: StagedTable
    changed: Changed | None
    staged: Staged


def make_again(
    con: duckdb.DuckDBPyConnection, memo: Memo, stage: Callable[[RunFilter | str], Staged]
) -> MadeAgain[Staged]:
    """Digest every user's runs and stage, with `stage` (given the runs to make rows of),
    the rows of the users whose digest changed; on error nothing is left behind."""
    digests = user_digests(con, memo, RunFilter())
    changed = None
    try:
        changed = changed_users(con, memo, digests)
        return MadeAgain(digests, changed, stage(changed.users if changed else RunFilter()))
    except BaseException:
        drop_temporary(con, digests.temporary + (changed.temporary if changed else ()))
        raise
