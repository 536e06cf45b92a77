"""The DuckDB warehouse: the `runs` and `quarantine` tables and the analytics tables.

The `runs` DDL is derived from `records.RUN_COLUMNS`, never written by hand.
A refresh replaces the rows of its partitions (DELETE + INSERT: all of a
partition's, or a patch's, those of its runs parsed since) inside one
transaction, so a reader sees a partition either before or after, never
half. With its rows, a swap records the partition's version (a digest of what
the rows were made from) and the time in `partition_versions`, in the same
transaction: a partition whose version is unchanged need not be read or
rewritten at all, and the analytics learn which partitions changed from it.
DuckDB allows one writing process: `connect` retries briefly while another
process holds the lock, then says so plainly. A writing connection caps
DuckDB's memory (`WRITER_MEMORY_LIMIT`): left at its default (80 % of RAM),
DuckDB keeps what it allocated while a large crawl swaps partition after
partition, and the crawl's memory grows with the archive (issue 16).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import duckdb
import pandas as pd

from runcrawler_assets.archive.runstore import QuarantineEntry
from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.records import RUN_COLUMNS, RunRecord
from runcrawler_assets.warehouse.accounting_join import join_partition, table_types
from runcrawler_assets.warehouse.cases import CASE_COLUMNS
from runcrawler_assets.warehouse.rows import INSERTED, Columns, clean_text, record_columns
from runcrawler_assets.warehouse.signatures import assign_signatures

QUARANTINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cluster", "VARCHAR"),
    ("user", "VARCHAR"),
    ("path", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("detail", "VARCHAR"),
    ("seen_at", "TIMESTAMP"),
)
LOCK_RETRY_SECONDS = 30.0
# DuckDB's memory on a writing connection (its buffer pool, the swaps' inserts and deletes, the
# analytics' queries): past it DuckDB frees cached blocks and spills to `<warehouse>.tmp/`.
WRITER_MEMORY_LIMIT = "256MB"
# ... lowered while partitions are swapped: a swap streams its rows in chunks and needs little,
# and the swap is the ingest's peak (a million runs: 578 → ~460 MB for the crawl's process tree).
SWAP_MEMORY_LIMIT = "128MB"
# (An analysis computes under its own limit, a setting: `Config.analytics_memory`.)
# Records turned into one pandas frame and inserted at a time, within a partition's swap.
INSERT_CHUNK = 2_000
VERSIONS_TABLE = "partition_versions"
VERSIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} "
    '(cluster VARCHAR, "user" VARCHAR, version VARCHAR, swapped_at TIMESTAMP)'
)


class WarehouseLockedError(RuncrawlerError, RuntimeError):
    """Another process holds the DuckDB file for longer than we wait."""


class WarehouseMissingError(RuncrawlerError, FileNotFoundError):
    """No warehouse where one was looked for: nothing was crawled into that data folder."""


def quote_identifier(identifier: str) -> str:
    """An identifier as DuckDB reads it whatever it holds (doubled inner quotes)."""
    return '"' + identifier.replace('"', '""') + '"'


def runs_ddl() -> str:
    columns = ",\n  ".join(f"{quote_identifier(c.name)} {c.sql_type}" for c in RUN_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS runs (\n  {columns},\n  PRIMARY KEY (run_id)\n)"


def quarantine_ddl() -> str:
    columns = ", ".join(f"{quote_identifier(name)} {sql}" for name, sql in QUARANTINE_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS quarantine ({columns})"


def connect(
    path: Path, read_only: bool = False, wait: float = LOCK_RETRY_SECONDS
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to `wait` seconds for another writer to finish (no
    progress bar of DuckDB's: standard output is runcrawler's)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() >= deadline:
                if "lock" in str(error).lower():
                    raise WarehouseLockedError(
                        f"{path} is in use by another process (a Dagster run?) for more than "
                        f"{wait:.0f} s; retry when it has finished"
                    ) from error
                raise
            time.sleep(0.2)
    # DuckDB draws a progress bar on standard output for queries over 2 s (a million runs'
    # swaps and analyses): amid `runcrawler crawl`'s progress, in a benchmark's JSON, in a
    # run's logs.
    # In Jupyter it draws none without ipywidgets, and refuses the setting there.
    with suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    if not read_only:
        con.execute(f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")
        con.execute(runs_ddl())
        con.execute(quarantine_ddl())
        con.execute(VERSIONS_DDL)
        _add_new_columns(con)
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block's statements in one transaction: committed at its end, rolled back (none
    of them kept) if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@contextmanager
def temporary_setting(con: duckdb.DuckDBPyConnection, name: str, value: object) -> Iterator[None]:
    """DuckDB's setting `name` (`memory_limit`, `threads`) on `con` set to `value` for the
    block, then set back."""
    [(before,)] = con.execute(f"SELECT current_setting('{name}')").fetchall()
    con.execute(f"SET {name} = '{value}'")
    try:
        yield
    finally:
        con.execute(f"SET {name} = '{before}'")


def _add_new_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Columns added to `runs` since the file was made, NULL until their partition is swapped
    again: the swapped versions are forgotten, so the next crawl swaps every partition (the
    swap fills the columns it derives, such as `signature_id`).

    Inserts name their columns, so the order of an upgraded table does not matter.
    """
    present = {
        name for (name,) in con.execute("SELECT name FROM pragma_table_info('runs')").fetchall()
    }
    missing = [column for column in RUN_COLUMNS if column.name not in present]
    for column in missing:
        con.execute(
            f"ALTER TABLE runs ADD COLUMN {quote_identifier(column.name)} {column.sql_type}"
        )
    if missing:
        con.execute(f"DELETE FROM {VERSIONS_TABLE}")


@dataclass(frozen=True)
class RowChunks:
    """A partition's rows already made (`rows.stored_columns`: by the swap's worker
    processes, or by its own), a chunk of columns at a time."""

    chunks: Iterable[Columns]


def column_chunks(records: Iterable[RunRecord] | RowChunks) -> Iterator[Columns]:
    """A partition's rows as columns, at most `INSERT_CHUNK` rows at a time: records are
    made into rows here, chunk by chunk; a `RowChunks` was made already."""
    if isinstance(records, RowChunks):
        return iter(records.chunks)
    remaining = iter(records)
    chunks = iter(lambda: list(islice(remaining, INSERT_CHUNK)), [])
    return (record_columns(chunk) for chunk in chunks)


def columns_frame(columns: Columns) -> pd.DataFrame:
    """A chunk of rows (`rows.INSERTED`'s columns) as the frame the insert reads."""
    return pd.DataFrame(columns, columns=[name for name, _ in INSERTED])


def quarantine_frame(entries: Iterable[QuarantineEntry]) -> pd.DataFrame:
    rows = [
        {name: clean_text(getattr(entry, name)) for name, _ in QUARANTINE_COLUMNS}
        for entry in entries
    ]
    return pd.DataFrame(rows, columns=[name for name, _ in QUARANTINE_COLUMNS])


def _insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    types: Sequence[tuple[str, str]],
    derived: Mapping[str, str] | None = None,
) -> None:
    """Insert `frame`, read by DuckDB's scan of the local variable `incoming_rows`, its
    columns `types` cast, and the columns `derived` (name -> SQL over them) computed.

    Not `con.register`: inside a swap's transaction, an unregistered view (and the frame it
    holds) is kept until the commit, so a partition's every frame would stay in memory.
    """
    if frame.empty:
        return
    incoming_rows = frame  # noqa: F841 -- the name the SQL reads
    derived = derived or {}
    names = ", ".join(quote_identifier(n) for n in [*(n for n, _ in types), *derived])
    casts = ", ".join(
        f"CAST(incoming_rows.{quote_identifier(n)} AS {t}) AS {quote_identifier(n)}"
        for n, t in types
    )
    select = f"SELECT {casts} FROM incoming_rows"
    if derived:
        select = f"SELECT *, {', '.join(derived.values())} FROM ({select})"
    con.execute(f"INSERT INTO {table} ({names}) {select}")


@dataclass(frozen=True)
class PartitionRows:
    """What a partition holds after a refresh: its rows and its quarantine.

    `records` may be a one-pass stream, of records or of rows already made (`RowChunks`: the
    crawl reads them from the JSON store as the swap inserts them, a partition of 150,000
    runs is never all in memory); the swap reads `quarantine` only after the last record,
    so a stream may still add to it.
    """

    cluster: str
    user: str
    records: Iterable[RunRecord] | RowChunks
    quarantine: list[QuarantineEntry]
    version: str | None = None  # what the rows were made from; None: unknown, never skipped
    # None: `records` replace every row of the partition. Else a patch: only the rows of
    # these run ids are removed, then `records` (theirs that are still indexed) inserted.
    replaced: Sequence[str] | None = None


def run_count(con: duckdb.DuckDBPyConnection) -> int:
    """Rows of `runs` (from DuckDB's row groups: no run is read)."""
    [(rows,)] = con.execute("SELECT count(*) FROM runs").fetchall()
    return rows


def swapped_versions(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """The version each partition's rows were last swapped in with, by (cluster, user)
    as `partition_key_text` gives them."""
    rows = con.execute(f'SELECT cluster, "user", version FROM {VERSIONS_TABLE}').fetchall()
    return {(cluster, user): version for cluster, user, version in rows}


def partition_key_text(cluster: str, user: str) -> tuple[str, str]:
    """A partition's names as the tables store them (see `rows.clean_text`)."""
    return str(clean_text(cluster)), str(clean_text(user))


def replace_partitions(con: duckdb.DuckDBPyConnection, partitions: Iterable[PartitionRows]) -> int:
    """Swap the rows of every given partition, each in its own transaction; returns how many.

    A reader (or a crash) sees each partition all old or all new; committing one partition
    at a time keeps DuckDB from holding a whole first import's rows uncommitted in memory
    (issue 16: a million runs in flat memory). In the same transaction the rows are joined
    with the scheduler's accounting (`accounting_join`), and the partition's version is
    recorded with them and the swap's time (`record_version`; NULL for a partition without
    one, so the next versioned swap never skips it).
    """
    con.execute(VERSIONS_DDL)
    swapped = 0
    with temporary_setting(con, "memory_limit", SWAP_MEMORY_LIMIT):
        for part in partitions:
            _swap(con, part)
            swapped += 1
    return swapped


def _swap(con: duckdb.DuckDBPyConnection, part: PartitionRows) -> None:
    """One partition's rows (all, or those `part.replaced` names), quarantine entries and
    version, in a transaction of its own."""
    names = list(partition_key_text(part.cluster, part.user))
    patched = None
    if part.replaced is not None:
        patched = "patched_run_ids"
        con.register(patched, pd.DataFrame({"run_id": pd.Series(part.replaced, dtype=object)}))
    in_partition = f"cluster = ? AND {quote_identifier('user')} = ?"
    try:
        with transaction(con):
            among = f" AND run_id IN (SELECT run_id FROM {patched})" if patched else ""
            con.execute(f"DELETE FROM runs WHERE {in_partition}{among}", names)
            con.execute(f"DELETE FROM quarantine WHERE {in_partition}", names)
            for columns in column_chunks(part.records):  # a frame at a time, never all at once
                _insert(con, "runs", columns_frame(columns), INSERTED, CASE_COLUMNS)
            join_partition(con, *names, only=patched)
            assign_signatures(con, *names)
            _insert(con, "quarantine", quarantine_frame(part.quarantine), QUARANTINE_COLUMNS)
            record_version(con, *names, part.version)
    finally:
        if patched:
            con.unregister(patched)


def record_version(
    con: duckdb.DuckDBPyConnection, cluster: str, user: str, version: str | None
) -> None:
    """Note that the partition's rows were written now, from `version` (None: unknown), in
    the caller's transaction. Every write of a partition's rows notes it (the swap): the
    analytics' memos learn from these rows which partitions changed, without reading
    `runs` (`analytics.memo`)."""
    con.execute(VERSIONS_DDL)
    names = [cluster, user]
    con.execute(f'DELETE FROM {VERSIONS_TABLE} WHERE cluster = ? AND "user" = ?', names)
    con.execute(f"INSERT INTO {VERSIONS_TABLE} VALUES (?, ?, ?, now())", [*names, version])


def stale_run_ids(
    con: duckdb.DuckDBPyConnection,
    cluster: str,
    user: str,
    indexed: Iterable[tuple[str, str | None]],
) -> list[str]:
    """The runs of a partition whose row is not its JSON store's record as indexed
    (`indexed`: each record's run id and when it was parsed, as the index says): a run
    parsed since its row was made, a new one, and a row whose run is no longer indexed.
    What a patch of the partition replaces; every other row is its record's as indexed
    (a record is only written when its run is parsed, and parsing stamps `parsed_at`)."""
    frame = pd.DataFrame(list(indexed), columns=["run_id", "parsed_at"], dtype=object)
    con.register("indexed_runs", frame)
    try:
        rows = con.execute(
            """
            WITH part AS (
                SELECT run_id, parsed_at FROM runs WHERE cluster = $cluster AND "user" = $user
            ),
            indexed AS (
                SELECT run_id, TRY_CAST(parsed_at AS TIMESTAMP) AS parsed_at FROM indexed_runs
            )
            SELECT run_id FROM indexed i
            WHERE NOT EXISTS (
                SELECT 1 FROM part p WHERE p.run_id = i.run_id AND p.parsed_at = i.parsed_at
            )
            UNION
            SELECT run_id FROM part WHERE run_id NOT IN (SELECT run_id FROM indexed)
            """,
            dict(zip(("cluster", "user"), partition_key_text(cluster, user), strict=True)),
        ).fetchall()
    finally:
        con.unregister("indexed_runs")
    return [run_id for (run_id,) in rows]


def replace_view(con: duckdb.DuckDBPyConnection, name: str, select: str) -> None:
    """The view `name` as `select`, in place of a view or a table of that name (what an
    older runcrawler stored as a table, this one may store as a view)."""
    if table_types(con).get(name) == "BASE TABLE":
        con.execute(f"DROP TABLE {quote_identifier(name)}")
    con.execute(f"CREATE OR REPLACE VIEW {quote_identifier(name)} AS {select}")


def write_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace an analytics table with `frame` (analytics tables are always rebuildable)."""
    con.register("result_frame", frame)
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote_identifier(name)} AS SELECT * FROM result_frame"
        )
    finally:
        con.unregister("result_frame")
