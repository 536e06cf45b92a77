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
escaped), by building the expected entries with `quarantine_frame`, the same
cleaning the partition swap applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from runcrawler_assets.archive.runstore import DISCOVERY_FILE, PartitionStore, QuarantineEntry
from runcrawler_assets.warehouse.database import (
    connect,
    quarantine_ddl,
    quarantine_frame,
    runs_ddl,
)

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


def recorded_partitions(runs_dir: Path) -> list[tuple[str, str]]:
    """Every (cluster, user) whose discovery `run_files` recorded in the JSON run store."""
    return sorted(
        (f.parent.parent.name, f.parent.name) for f in runs_dir.glob(f"*/*/{DISCOVERY_FILE}")
    )


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
    then every stored row too) with what `runs` and `quarantine` hold for them."""
    scoped = partitions is not None
    pairs = partitions if partitions is not None else recorded_partitions(runs_dir)
    found: list[QuarantineEntry] = []
    for cluster, user in pairs:
        discovery = PartitionStore(runs_dir, cluster, user).read_discovery()
        paths = [*(r.run_path for r in discovery.runs), *(p.path for p in discovery.problems)]
        found += [QuarantineEntry(cluster, user, path, "", "", "") for path in paths]
    # As the partition swap would store them: the same cleaning of names and paths.
    expected = quarantine_frame(found)[["cluster", "user", "path"]]
    scope = quarantine_frame(QuarantineEntry(c, u, "", "", "", "") for c, u in pairs)
    stored = f'SELECT cluster, "user", path FROM ({STORED}) AS s'
    if scoped:
        stored += (
            " WHERE EXISTS (SELECT 1 FROM coverage_scope AS p"
            ' WHERE p.cluster = s.cluster AND p."user" = s."user")'
        )
    # Cast: an empty frame has no column types.
    expected_sql = (
        'SELECT CAST(cluster AS VARCHAR), CAST("user" AS VARCHAR), CAST(path AS VARCHAR)'
        " FROM coverage_expected"
    )
    con.register("coverage_expected", expected)
    con.register("coverage_scope", scope[["cluster", "user"]])
    try:
        n_stored = con.execute(f"SELECT count(*) FROM ({stored})").fetchall()[0][0]
        missing = _paths(con, f"{expected_sql} EXCEPT ALL {stored}")
        unexpected = _paths(con, f"{stored} EXCEPT ALL {expected_sql}")
    finally:
        con.unregister("coverage_expected")
        con.unregister("coverage_scope")
    return Coverage(
        partitions=len(pairs),
        discovered=len(expected),
        stored=n_stored,
        missing=tuple(missing[:EXAMPLES]),
        n_missing=len(missing),
        unexpected=tuple(unexpected[:EXAMPLES]),
        n_unexpected=len(unexpected),
    )


def _paths(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    ordered = f'SELECT path FROM ({sql}) AS d(cluster, "user", path) ORDER BY path'
    return [path for (path,) in con.execute(ordered).fetchall()]


def duplicate_run_ids(con: duckdb.DuckDBPyConnection) -> list[tuple[str | None, int]]:
    """(run_id, rows) for every run_id held by more than one row, or NULL; most rows first."""
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
