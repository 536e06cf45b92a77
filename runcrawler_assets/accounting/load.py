"""Load the Slurm accounting dumps into DuckDB, only the files that changed.

Why: dumps are copied beside the archive and grow (monthly files appended), so,
like run folders, each file is known by a fingerprint (size and mtime) and only
a new or changed file is read again, streamed (`sacct.read_dump`) in batches so
that a 2 GB dump costs flat memory. Each file's jobs and problems are replaced
in one transaction, with its fingerprint: a killed load leaves the file as it
was, read again next time. A job found in several files (dumps over
overlapping periods) is one row of `accounting_jobs`: its most final row (an end
and a final state), with the largest MaxRSS of all.

Tables: `accounting_files` (what was read), `accounting_job_rows` (per file),
`accounting_jobs` (per cluster and job id) and `accounting_problems` (file,
line, reason: what could not be read, the rest of the file being kept).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import duckdb
import pandas as pd

from runcrawler_assets.accounting.sacct import DumpProblem, Job, read_dump
from runcrawler_assets.warehouse.accounting_join import JOBS_TABLE, has_table
from runcrawler_assets.warehouse.database import transaction

FILES_TABLE = "accounting_files"
ROWS_TABLE = "accounting_job_rows"
PROBLEMS_TABLE = "accounting_problems"
DUMP_PATTERN = "*.txt"
BATCH_ROWS = 20_000
# Every field of `sacct.Job`, typed (test_accounting checks they are the same names).
JOB_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cluster", "VARCHAR"),
    ("job_id", "VARCHAR"),
    ("name", "VARCHAR"),
    ("user", "VARCHAR"),
    ("account", "VARCHAR"),
    ("queue", "VARCHAR"),
    ("state", "VARCHAR"),
    ("state_detail", "VARCHAR"),
    ("exit_code", "VARCHAR"),
    ("submit_at", "TIMESTAMP"),
    ("start_at", "TIMESTAMP"),
    ("end_at", "TIMESTAMP"),
    ("elapsed_s", "BIGINT"),
    ("time_limit_s", "BIGINT"),
    ("alloc_cpus", "INTEGER"),
    ("alloc_nodes", "INTEGER"),
    ("req_mem_mb", "DOUBLE"),
    ("max_rss_mb", "DOUBLE"),
    ("node_list", "VARCHAR"),
    ("work_dir", "VARCHAR"),
    ("line", "BIGINT"),
)
FINAL_STATES_SQL = "state NOT IN ('RUNNING', 'PENDING', 'REQUEUED', 'SUSPENDED')"


def _columns_ddl(columns: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f'"{name}" {sql}' for name, sql in columns)


DDL = (
    f"CREATE TABLE IF NOT EXISTS {FILES_TABLE} (cluster VARCHAR, file VARCHAR, "
    "fingerprint VARCHAR, jobs BIGINT, problems BIGINT, loaded_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {ROWS_TABLE} ({_columns_ddl(JOB_COLUMNS)}, file VARCHAR)",
    f"CREATE TABLE IF NOT EXISTS {JOBS_TABLE} ({_columns_ddl(JOB_COLUMNS)}, file VARCHAR)",
    f"CREATE TABLE IF NOT EXISTS {PROBLEMS_TABLE} "
    "(cluster VARCHAR, file VARCHAR, line BIGINT, reason VARCHAR)",
)


@dataclass(frozen=True)
class DumpFile:
    """A dump as found: its cluster (its folder's name), its name, its fingerprint."""

    cluster: str
    path: Path
    fingerprint: str

    @property
    def name(self) -> str:
        return f"{self.cluster}/{self.path.name}"


@dataclass
class AccountingLoad:
    """What one load did: the counts its asset shows."""

    files: int = 0
    files_read: int = 0
    files_removed: int = 0
    jobs_read: int = 0
    problems: int = 0
    jobs: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.files_read or self.files_removed)


def find_dumps(accounting_dir: Path) -> list[DumpFile]:
    """Every `<cluster>/*.txt` under the folder, sorted; no file is opened."""
    dumps = []
    for folder in sorted(p for p in accounting_dir.iterdir() if p.is_dir()):
        for path in sorted(folder.glob(DUMP_PATTERN)):
            if not path.is_file():
                continue
            info = path.stat()
            dumps.append(DumpFile(folder.name, path, f"{info.st_size}:{info.st_mtime_ns}"))
    return dumps


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def _batches(items: Iterator[Job | DumpProblem], size: int) -> Iterator[list[Job | DumpProblem]]:
    while batch := list(islice(items, size)):
        yield batch


def _insert_rows(con: duckdb.DuckDBPyConnection, jobs: list[Job], file: str) -> None:
    names = [name for name, _ in JOB_COLUMNS]
    frame = pd.DataFrame([[getattr(job, n) for n in names] for job in jobs], columns=names)
    frame["file"] = file
    con.register("incoming_jobs", frame)
    try:
        casts = ", ".join(f'CAST("{n}" AS {t})' for n, t in JOB_COLUMNS)
        con.execute(f"INSERT INTO {ROWS_TABLE} SELECT {casts}, file FROM incoming_jobs")
    finally:
        con.unregister("incoming_jobs")


def _read_into(con: duckdb.DuckDBPyConnection, dump: DumpFile, load: AccountingLoad) -> None:
    """Replace the file's rows and problems, in one transaction with its fingerprint."""
    with transaction(con):
        for table in (ROWS_TABLE, PROBLEMS_TABLE, FILES_TABLE):
            con.execute(f"DELETE FROM {table} WHERE file = ?", [dump.name])
        jobs = problems = 0
        for batch in _batches(read_dump(dump.path, dump.cluster, dump.name), BATCH_ROWS):
            found = [item for item in batch if isinstance(item, Job)]
            if found:
                _insert_rows(con, found, dump.name)
            for problem in batch:
                if isinstance(problem, DumpProblem):
                    con.execute(
                        f"INSERT INTO {PROBLEMS_TABLE} VALUES (?, ?, ?, ?)",
                        [dump.cluster, dump.name, problem.line, problem.reason],
                    )
            jobs, problems = jobs + len(found), problems + len(batch) - len(found)
        con.execute(
            f"INSERT INTO {FILES_TABLE} VALUES (?, ?, ?, ?, ?, now())",
            [dump.cluster, dump.name, dump.fingerprint, jobs, problems],
        )
    load.files_read += 1
    load.jobs_read += jobs
    load.problems += problems


def _rebuild_jobs(con: duckdb.DuckDBPyConnection) -> None:
    """One row per (cluster, job id): the most final of its rows, the largest MaxRSS."""
    names = ", ".join(f'"{name}"' for name, _ in JOB_COLUMNS if name != "max_rss_mb")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {JOBS_TABLE} AS
        SELECT {names}, max_rss_mb, file FROM (
            SELECT * EXCLUDE (max_rss_mb),
                max(max_rss_mb) OVER (PARTITION BY cluster, job_id) AS max_rss_mb,
                row_number() OVER (
                    PARTITION BY cluster, job_id
                    ORDER BY (state IS NOT NULL AND {FINAL_STATES_SQL}) DESC,
                        end_at DESC NULLS LAST, state IS NULL, file DESC, line
                ) AS rank
            FROM {ROWS_TABLE}
        ) WHERE rank = 1
        ORDER BY cluster, job_id
        """
    )


def dumps_changed(con: duckdb.DuckDBPyConnection, accounting_dir: Path) -> bool:
    """Whether a dump was added, changed or removed since the last load (names, stat)."""
    ensure_tables(con)
    known = dict(con.execute(f"SELECT file, fingerprint FROM {FILES_TABLE}").fetchall())
    return known != {dump.name: dump.fingerprint for dump in find_dumps(accounting_dir)}


def load_accounting(con: duckdb.DuckDBPyConnection, accounting_dir: Path) -> AccountingLoad:
    """Bring the accounting tables up to date with the folder's dumps."""
    ensure_tables(con)
    dumps = find_dumps(accounting_dir)
    known = dict(con.execute(f"SELECT file, fingerprint FROM {FILES_TABLE}").fetchall())
    load = AccountingLoad(files=len(dumps))
    for dump in dumps:
        if known.get(dump.name) != dump.fingerprint:
            _read_into(con, dump, load)
    present = {dump.name for dump in dumps}
    for name in sorted(set(known) - present):
        for table in (ROWS_TABLE, PROBLEMS_TABLE, FILES_TABLE):
            con.execute(f"DELETE FROM {table} WHERE file = ?", [name])
        load.files_removed += 1
    if load.changed or not _has_rows(con, JOBS_TABLE):
        _rebuild_jobs(con)
    load.jobs = con.execute(f"SELECT count(*) FROM {JOBS_TABLE}").fetchall()[0][0]
    load.problems = con.execute(f"SELECT count(*) FROM {PROBLEMS_TABLE}").fetchall()[0][0]
    return load


def _has_rows(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] > 0


def accounting_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Per cluster, a digest of the dumps loaded for it: a partition's rows depend on it."""
    if not has_table(con, FILES_TABLE):
        return {}
    rows = con.execute(
        f"SELECT cluster, string_agg(file || '=' || fingerprint, ';' ORDER BY file) "
        f"FROM {FILES_TABLE} GROUP BY cluster"
    ).fetchall()
    return {cluster: hashlib.sha1(text.encode()).hexdigest()[:12] for cluster, text in rows}
