"""The ingest's promises, measured on the warehouse: what the Dagster asset checks report.

Three facts about the `runs` table, each a plain function of a DuckDB
connection (and, for the first, of the JSON run store):

- `coverage`: every run directory and problem that discovery recorded
  (`_discovery.json` of each partition, written by `run_files`) is exactly one
  row of `runs` or one entry of `quarantine`, and nothing else is there;
- `duplicate_run_ids`: no `run_id` holds two rows;
- `parse_warning_share`: how many runs carry parse warnings (a log format the
  parsers half understand shows here before it shows in the analytics).

Paths and names are compared as the warehouse stores them (undecodable bytes
escaped), cleaned by `clean_text` as the partition swap cleans them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from runcrawler_assets.archive.runstore import PartitionStore, recorded_partitions
from runcrawler_assets.warehouse.database import (
    connect,
    partition_key_text,
    quarantine_ddl,
    runs_ddl,
)
from runcrawler_assets.warehouse.rows import clean_text

EXAMPLES = 10

# Every stored entry of a run directory or problem, as (cluster, user, path).
STORED = """
    SELECT cluster, "user", run_path AS path FROM runs
    UNION ALL
    SELECT cluster, "user", path FROM quarantine
"""


def open_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse read-only, or an empty one in memory when no crawl has written it yet."""
    if path.exists():
        return connect(path, read_only=True)
    con = duckdb.connect()
    con.execute(runs_ddl())
    con.execute(quarantine_ddl())
    return con


@dataclass(frozen=True)
class Coverage:
    """Recorded discoveries against the stored rows and quarantine entries of some partitions."""

    partitions: int
    discovered: int  # run directories and problems discovery recorded
    stored: int  # rows of `runs` and entries of `quarantine` in the same partitions
    missing: tuple[str, ...]  # discovered paths with neither a row nor an entry (first few)
    n_missing: int
    unexpected: tuple[str, ...]  # stored paths no discovery accounts for, or stored twice
    n_unexpected: int

    @property
    def complete(self) -> bool:
        return self.n_missing == 0 and self.n_unexpected == 0


def coverage(
    con: duckdb.DuckDBPyConnection,
    runs_dir: Path,
    partitions: list[tuple[str, str]] | None = None,
) -> Coverage:
    """Compare the recorded discovery of `partitions` (default: every recorded one, and
    then every stored row too) with what `runs` and `quarantine` hold for them.

    Partition by partition (issue 16, goal 4): only one partition's paths are in memory at
    a time (the largest of a million runs holds ~150,000), and of the missing and
    unexpected paths only the counts and the first `EXAMPLES` are kept.
    """
    scoped = partitions is not None
    pairs = partitions if partitions is not None else recorded_partitions(runs_dir)
    # As the partition swap stores them: names cleaned (two raw names never clean alike,
    # but should they, their paths are compared together, as one partition's).
    cleaned: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for pair in pairs:
        cleaned.setdefault(partition_key_text(*pair), []).append(pair)
    total = _Tally()
    for key, raw_pairs in cleaned.items():
        paths = _discovered(runs_dir, raw_pairs)
        total.add(_partition_coverage(con, key, paths, count_stored=scoped))
        del paths  # not held while the next partition's paths are read
    if not scoped:
        total.stored = con.execute(f"SELECT count(*) FROM ({STORED})").fetchall()[0][0]
        total.add(_unrecorded(con, list(cleaned)))
    return Coverage(
        partitions=len(pairs),
        discovered=total.discovered,
        stored=total.stored,
        missing=tuple(sorted(total.missing)[:EXAMPLES]),
        n_missing=total.n_missing,
        unexpected=tuple(sorted(total.unexpected)[:EXAMPLES]),
        n_unexpected=total.n_unexpected,
    )


@dataclass
class _Tally:
    """Counts summed over partitions, with each partition's first examples."""

    discovered: int = 0
    stored: int = 0
    missing: list[str] = field(default_factory=list)
    n_missing: int = 0
    unexpected: list[str] = field(default_factory=list)
    n_unexpected: int = 0

    def add(self, other: _Tally) -> None:
        self.discovered += other.discovered
        self.stored += other.stored
        self.missing += other.missing
        self.n_missing += other.n_missing
        self.unexpected += other.unexpected
        self.n_unexpected += other.n_unexpected


def _discovered(runs_dir: Path, pairs: list[tuple[str, str]]) -> list[str]:
    """The paths discovery recorded in `pairs`, as the swap stores them."""
    return [
        str(clean_text(path))
        for cluster, user in pairs
        for path in PartitionStore(runs_dir, cluster, user).discovered_paths()
    ]


def _partition_coverage(
    con: duckdb.DuckDBPyConnection, key: tuple[str, str], paths: list[str], *, count_stored: bool
) -> _Tally:
    """One partition's discovered `paths` against its stored rows and entries."""
    stored = f'SELECT path FROM ({STORED}) AS s WHERE cluster = $cluster AND "user" = $user'
    # Cast: an empty frame has no column types.
    expected = "SELECT CAST(path AS VARCHAR) FROM coverage_expected"
    params = {"cluster": key[0], "user": key[1]}
    con.register("coverage_expected", pd.DataFrame({"path": pd.Series(paths, dtype=object)}))
    try:
        n_stored = (
            con.execute(f"SELECT count(*) FROM ({stored})", params).fetchall()[0][0]
            if count_stored
            else 0
        )
        missing, n_missing = _examples(con, f"{expected} EXCEPT ALL {stored}", params)
        unexpected, n_unexpected = _examples(con, f"{stored} EXCEPT ALL {expected}", params)
    finally:
        con.unregister("coverage_expected")
    return _Tally(len(paths), n_stored, missing, n_missing, unexpected, n_unexpected)


def _unrecorded(con: duckdb.DuckDBPyConnection, keys: list[tuple[str, str]]) -> _Tally:
    """Stored rows and entries of partitions no discovery recorded: all unexpected."""
    con.register("coverage_scope", pd.DataFrame(keys, columns=["cluster", "user"], dtype=object))
    try:
        unexpected, n_unexpected = _examples(
            con,
            f"SELECT path FROM ({STORED}) AS s WHERE NOT EXISTS (SELECT 1 FROM coverage_scope"
            ' AS p WHERE p.cluster = s.cluster AND p."user" = s."user")',
            {},
        )
    finally:
        con.unregister("coverage_scope")
    return _Tally(unexpected=unexpected, n_unexpected=n_unexpected)


def _examples(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, str]
) -> tuple[list[str], int]:
    """The first `EXAMPLES` paths of `sql` (in path order) and how many there are."""
    rows = con.execute(
        f"SELECT path, count(*) OVER () FROM ({sql}) AS d(path) ORDER BY path LIMIT {EXAMPLES}",
        params,
    ).fetchall()
    return [path for path, _ in rows], rows[0][1] if rows else 0


def keyed_by_run_id(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `runs` keeps `run_id` as its primary key, as runcrawler makes it: DuckDB then
    refuses a duplicated or NULL `run_id` at every insert (a hand-made copy may not)."""
    [(keyed,)] = con.execute(
        "SELECT count(*) > 0 FROM duckdb_constraints() WHERE database_name = current_database()"
        " AND schema_name = 'main' AND table_name = 'runs' AND constraint_type = 'PRIMARY KEY'"
        " AND constraint_column_names = ['run_id']"
    ).fetchall()
    return bool(keyed)


def duplicate_run_ids(con: duckdb.DuckDBPyConnection) -> list[tuple[str | None, int]]:
    """(run_id, rows) for every run_id held by more than one row, or NULL; most rows first.
    None when `runs` is keyed by `run_id` (`keyed_by_run_id`): no run is read (a million
    runs' ids cost the check 0.07 s; issue 16)."""
    if keyed_by_run_id(con):
        return []
    return con.execute(
        "SELECT run_id, count(*) AS n FROM runs GROUP BY run_id"
        " HAVING count(*) > 1 OR run_id IS NULL ORDER BY n DESC, run_id"
    ).fetchall()


@dataclass(frozen=True)
class WarningShare:
    """How many runs carry parse warnings, and the most frequent warnings."""

    runs: int
    with_warnings: int
    most_frequent: tuple[tuple[str, int], ...]

    @property
    def share(self) -> float:
        return self.with_warnings / self.runs if self.runs else 0.0


def parse_warning_share(con: duckdb.DuckDBPyConnection) -> WarningShare:
    runs, with_warnings = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE len(parse_warnings) > 0) FROM runs"
    ).fetchall()[0]
    frequent = con.execute(
        "SELECT warning, count(*) AS n FROM (SELECT unnest(parse_warnings) AS warning FROM runs)"
        " GROUP BY warning ORDER BY n DESC, warning LIMIT ?",
        [EXAMPLES // 2],
    ).fetchall()
    return WarningShare(runs, with_warnings, tuple((w, n) for w, n in frequent))
