"""The `accounting` asset: the Slurm accounting dumps of RUNCRAWLER_ACCOUNTING in DuckDB.

Unpartitioned: a dump covers a whole cluster, all users. Each partition of
`runs` depends on it: its rows are joined with the accounting of its cluster
when they are swapped (warehouse/accounting_join.py), and its version carries
the cluster's accounting digest, so new dumps swap that cluster's partitions
again. Only new or changed dump files are read (accounting/load.py).
"""

import time

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from runcrawler_assets.accounting.load import JOBS_TABLE, PROBLEMS_TABLE, load_accounting
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, GROUP, OWNERS, ROW_COUNT
from runcrawler_assets.defs.assets.metadata import markdown_table
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.warehouse.database import connect


@asset(
    description="The scheduler's accounting (sacct dumps under RUNCRAWLER_ACCOUNTING, "
    "<cluster>/*.txt): one row per job in `accounting_jobs`, what could not be read in "
    "`accounting_problems`; only new or changed dumps are read.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "file"},
    pool=DUCKDB_POOL,
)
def accounting(context: AssetExecutionContext, settings: ConfigResource) -> MaterializeResult:
    started = time.monotonic()
    config = settings.config
    if config.accounting_dir is None:
        context.log.info("RUNCRAWLER_ACCOUNTING is not set: no accounting joined")
        return MaterializeResult(metadata={"accounting_dir": "(not set)"})
    with connect(config.duckdb_path) as con:
        load = load_accounting(con, config.accounting_dir)
        problems = con.execute(
            f"SELECT file, line, reason FROM {PROBLEMS_TABLE} ORDER BY file, line LIMIT 10"
        ).fetchall()
        by_cluster = dict(
            con.execute(f"SELECT cluster, count(*) FROM {JOBS_TABLE} GROUP BY ALL").fetchall()
        )
    context.log.info(
        f"{load.files_read} of {load.files} dumps read, {load.files_removed} gone; "
        f"{load.jobs} jobs, {load.problems} problems"
    )
    return MaterializeResult(
        metadata={
            ROW_COUNT: MetadataValue.int(load.jobs),
            "accounting_dir": MetadataValue.path(str(config.accounting_dir)),
            "dumps": load.files,
            "dumps_read": load.files_read,
            "dumps_removed": load.files_removed,
            "jobs_read": load.jobs_read,
            "jobs_by_cluster": MetadataValue.json(by_cluster),
            "problems": load.problems,
            "first_problems": markdown_table(["file", "line", "reason"], problems),
            "duration_s": round(time.monotonic() - started, 3),
        }
    )
