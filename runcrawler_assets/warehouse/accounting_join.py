"""Join the scheduler's accounting into a partition's rows of `runs` (issue 17).

Why here: a partition's rows are a function of its JSON records *and* of the
accounting dumps of its cluster, so the join runs inside the partition's swap,
in the same transaction (a reader never sees rows without their join), and the
partition's version carries the cluster's accounting digest: new dumps swap the
cluster's partitions again, from their records, and join afresh (never a join
on top of an old join).

A run is its job when the cluster and the job id its files name agree; a run
whose files name no job is its job when the job's user is the run's and the
job's working directory ends with the run's last two folders (`case/run`: the
archive is a copy, its root differs from the cluster's), a job whose directory ends
with the whole run path below the user's folder first. Where the job has a
start and an end, they are the run's times (`timing_source = 'scheduler'`); a
run the files left without a verdict (running, truncated, unknown) takes the
scheduler's (TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL). `accounting_matched`
is NULL for a cluster without dumps, false for a run no job matched.
"""

from __future__ import annotations

import duckdb

JOBS_TABLE = "accounting_jobs"  # written by accounting.load, read by the swap's join
# The scheduler's verdict on a run the files could not judge: status, error category.
SCHEDULER_VERDICTS: dict[str, tuple[str, str]] = {
    "TIMEOUT": ("killed", "time_limit"),
    "DEADLINE": ("killed", "time_limit"),
    "OUT_OF_MEMORY": ("killed", "out_of_memory"),
    "CANCELLED": ("killed", "cancelled"),
    "NODE_FAIL": ("killed", "cancelled"),
    "PREEMPTED": ("killed", "cancelled"),
}
# What the files leave open: the scheduler may say more.
UNDECIDED_SQL = (
    "(r.status IN ('running', 'truncated', 'not_started') "
    "OR (r.status = 'failed' AND coalesce(r.error_category, 'unknown') = 'unknown'))"
)
_TAIL = r"'([^/]+/[^/]+)/*$'"
_BELOW_USER = r"regexp_replace(p.run_path, '^([^/]*/){2}', '')"  # cluster/user/<this>


def _case_sql(column: str, index: int) -> str:
    cases = " ".join(
        f"WHEN '{state}' THEN '{verdict[index]}'" for state, verdict in SCHEDULER_VERDICTS.items()
    )
    return f"CASE m.state {cases} ELSE r.{column} END"


def table_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The tables and views of the warehouse on `con` (its own main schema: no temporary
    table), each with its type (`BASE TABLE`, `VIEW`)."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main'"
    ).fetchall()
    return dict(rows)


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables and views of the warehouse on `con`."""
    return set(table_types(con))


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the warehouse holds `table` (the accounting tables exist once dumps were read,
    an analysis's once it was computed)."""
    return table in table_names(con)


def has_accounting(con: duckdb.DuckDBPyConnection) -> bool:
    return has_table(con, JOBS_TABLE)


def join_partition(
    con: duckdb.DuckDBPyConnection, cluster: str, user: str, only: str | None = None
) -> None:
    """Fill the accounting columns of the partition's rows from `accounting_jobs`: all of
    them, or `only` the rows whose `run_id` the relation of that name lists (those a patch
    inserted: the others were joined when they were inserted, with the same accounting)."""
    if not has_accounting(con):
        return
    among = f" AND run_id IN (SELECT run_id FROM {only})" if only else ""
    decided = f"m.state IN ({', '.join(repr(s) for s in SCHEDULER_VERDICTS)}) AND {UNDECIDED_SQL}"
    timed = "m.start_at IS NOT NULL AND m.end_at IS NOT NULL AND m.end_at >= m.start_at"
    wall = "date_diff('second', m.start_at, m.end_at)"
    con.execute(
        f"""
        WITH part AS (
            SELECT run_id, job_id, run_path FROM runs WHERE cluster = $1 AND "user" = $2{among}
        ),
        candidates AS (
            SELECT p.run_id, j.*, 0 AS how FROM part p
            JOIN {JOBS_TABLE} j ON j.cluster = $1 AND j.job_id = p.job_id
            UNION ALL BY NAME
            SELECT p.run_id, j.*,
                -- the whole path below the user's folder agrees: better than two folders
                CASE WHEN ends_with(rtrim(j.work_dir, '/'), '/' || {_BELOW_USER})
                    THEN 1 ELSE 2 END AS how
            FROM part p
            JOIN {JOBS_TABLE} j ON j.cluster = $1 AND j."user" = $2
                AND regexp_extract(j.work_dir, {_TAIL}, 1) = regexp_extract(p.run_path, {_TAIL}, 1)
            WHERE p.job_id IS NULL
        ),
        matched AS (
            SELECT * FROM candidates
            QUALIFY row_number() OVER (
                PARTITION BY run_id ORDER BY how, end_at DESC NULLS LAST, job_id DESC
            ) = 1
        ),
        joined AS (
            SELECT r.run_id,
                coalesce(r.job_id, m.job_id) AS job_id,
                m.queue, m.account, m.time_limit_s,
                date_diff('second', m.submit_at, m.start_at) AS queue_wait_s,
                m.alloc_cpus, m.alloc_nodes, m.req_mem_mb, m.max_rss_mb, m.exit_code,
                m.state AS scheduler_state,
                m.run_id IS NOT NULL AS matched,
                CASE WHEN {timed} THEN m.start_at ELSE r.started_at END AS started_at,
                CASE WHEN {timed} THEN m.end_at ELSE r.ended_at END AS ended_at,
                CASE WHEN {timed} THEN {wall} ELSE r.wall_time_s END AS wall_time_s,
                CASE WHEN {timed} THEN 'scheduler' ELSE r.timing_source END AS timing_source,
                CASE WHEN {decided} THEN {_case_sql("status", 0)} ELSE r.status END AS status,
                CASE WHEN {decided} THEN {_case_sql("error_category", 1)}
                    ELSE r.error_category END AS error_category,
                CASE WHEN {decided} AND r.error_message IS NULL
                    THEN 'accounting: ' || coalesce(m.state_detail, m.state)
                    ELSE r.error_message END AS error_message
            FROM runs r LEFT JOIN matched m USING (run_id)
            WHERE r.cluster = $1 AND r."user" = $2{among}
        )
        UPDATE runs SET
            job_id = joined.job_id, queue = joined.queue, account = joined.account,
            time_limit_s = joined.time_limit_s, queue_wait_s = joined.queue_wait_s,
            alloc_cpus = joined.alloc_cpus, alloc_nodes = joined.alloc_nodes,
            req_mem_mb = joined.req_mem_mb, max_rss_mb = joined.max_rss_mb,
            exit_code = joined.exit_code, scheduler_state = joined.scheduler_state,
            accounting_matched = CASE WHEN dumps.present THEN joined.matched END,
            started_at = joined.started_at, ended_at = joined.ended_at,
            wall_time_s = joined.wall_time_s, timing_source = joined.timing_source,
            cpu_hours = coalesce(runs.cpu_time_s / 3600,
                joined.wall_time_s * runs.n_procs / 3600, runs.cpu_hours),
            efficiency = CASE WHEN joined.wall_time_s IS DISTINCT FROM runs.wall_time_s
                AND runs.n_procs > 0 AND runs.n_nodes > 0 AND runs.iterations_done > 0
                THEN joined.wall_time_s * runs.n_procs / (runs.iterations_done * runs.n_nodes)
                ELSE runs.efficiency END,
            status = joined.status, error_category = joined.error_category,
            error_message = joined.error_message
        FROM joined, (
            SELECT count(*) > 0 AS present FROM {JOBS_TABLE} WHERE cluster = $1
        ) AS dumps
        WHERE runs.run_id = joined.run_id
        """,
        [cluster, user],
    )
