"""What the scheduler saw: the Slurm accounting joined to the runs, and the jobs it left out.

Why: the run folders say what a solver did; the scheduler says what it cost
and how it was asked for. Managers ask whether users request far more wall
time than they use (the queue waits longer for it), how long jobs wait per
cluster, partition and size, whether memory requests fit, and how much of the
work never reached the archive. Jobs of the archive's users that match no run
are counted, never lost: every one is listed in `unarchived_jobs`.

Runs are matched to jobs by `warehouse.accounting_join`; here, a run counts when
`accounting_matched` (NULL: its cluster has no dumps, false: no job found). A
job is unarchived when no run of its cluster names its job id and no run of its
cluster and user sits in a folder ending as its working directory does (the
join's rule, so a restart job of an archived run is not missing). CPU hours are
the scheduler's (allocated CPUs × elapsed time) for jobs and runs alike, so the
share missing compares like with like. Without accounting, the tables are empty
and one finding says how to add it.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pandas as pd

from runcrawler_assets.accounting.load import JOB_COLUMNS, JOBS_TABLE
from runcrawler_assets.analytics.core import (
    NOT_SET,
    UNFINISHED_STATUSES,
    Analysis,
    AnalysisResult,
    RunFilter,
    query,
    with_share,
)
from runcrawler_assets.warehouse.accounting_join import has_accounting

# A run used its limit when its wall time reaches this share of it (or Slurm said TIMEOUT).
LIMIT_HIT_SHARE = 0.98
# Flags of `walltime_accuracy`, for a user with at least MIN_FLAG_RUNS runs on a cluster.
OVER_REQUEST_RATIO = 1 / 3  # median used / requested at most this: asks ≥ 3× what it uses
LIMIT_HIT_FLAG_PCT = 25.0  # at least this % of runs hit the limit
MIN_FLAG_RUNS = 3
OVER_REQUEST_FLAG = "requests ≥ 3× what it uses"
LIMIT_HIT_FLAG = "keeps hitting the limit"
# A run "uses little" of its memory request below this share; a user is named when at
# least MOSTLY_LOW_PCT % of their runs (and MIN_FLAG_RUNS runs) do.
LOW_MEMORY_USE = 0.25
MOSTLY_LOW_PCT = 50.0
# Job size classes by allocated nodes: (label, largest node count; None: no bound).
SIZE_CLASSES: tuple[tuple[str, int | None], ...] = (
    ("1 node", 1),
    ("2–4 nodes", 4),
    ("5–16 nodes", 16),
    ("17–64 nodes", 64),
    ("> 64 nodes", None),
)
SIZE_LABELS: tuple[str, ...] = (*(label for label, _ in SIZE_CLASSES), NOT_SET)
# Wall time used / requested, in bins of 10 %; the last holds runs at or past the limit.
RATIO_BIN_LABELS: tuple[str, ...] = (*(f"{10 * i}–{10 * i + 10} %" for i in range(10)), "≥ 100 %")
NOT_ARCHIVED = "not archived"
MAX_NAMED = 8  # users named in one finding
# The job's last two folders (`case/run`), as `accounting_join` matches them.
TAIL_SQL = r"'([^/]+/[^/]+)/*$'"
MATCHED = "accounting_matched"
FINISHED = f"status NOT IN {UNFINISHED_STATUSES!r}"
SCHEDULER_CPU_HOURS = "coalesce(alloc_cpus * wall_time_s / 3600, cpu_hours)"
NO_ACCOUNTING = (
    "No Slurm accounting is joined to the runs, so what the scheduler saw is unknown: point "
    "RUNCRAWLER_ACCOUNTING (or `runcrawler crawl --accounting DIR`) at a folder of "
    "<cluster>/*.txt sacct dumps (sacct --parsable2) and crawl again."
)
NO_MATCH = "No run matching the filter was matched to a job of the accounting dumps."


def accounting_joined(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether dumps were loaded and joined to at least one cluster's runs (any run's
    `accounting_matched` is set), whatever the filter."""
    if not has_accounting(con):
        return False
    (joined,) = con.execute(f"SELECT count(*) > 0 FROM runs WHERE {MATCHED} IS NOT NULL").fetchone()
    return bool(joined)


def _jobs_source(joined: bool) -> str:
    """`accounting_jobs`, or an empty relation of its columns when none is joined, so that
    every query still gives its columns and types."""
    if joined:
        return JOBS_TABLE
    columns = ", ".join(f'CAST(NULL AS {sql}) AS "{name}"' for name, sql in JOB_COLUMNS)
    return f"(SELECT {columns} LIMIT 0)"


def unarchived_jobs(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, joined: bool
) -> pd.DataFrame:
    """Every job of an archive user (one with runs, of the filter's solver if it has one)
    that matches no run of the whole archive; the filter's cluster, user and period (of
    submission) select the jobs."""
    jobs_where, params = dataclasses.replace(run_filter, solver=None).where()
    users_where, user_params = RunFilter(solver=run_filter.solver).where()
    tail = f"regexp_extract(j.work_dir, {TAIL_SQL}, 1)"
    sql = f"""
        WITH jobs AS (
            SELECT * FROM (SELECT *, submit_at AS created_at FROM {_jobs_source(joined)})
            WHERE {jobs_where}
        )
        SELECT j.cluster, j."user", j.job_id, j.name, j.state, j.submit_at, j.start_at,
               j.end_at, j.alloc_cpus * j.elapsed_s / 3600 AS cpu_hours, j.work_dir
        FROM jobs j
        WHERE j."user" IN (SELECT "user" FROM runs WHERE {users_where})
          AND NOT EXISTS (
              SELECT 1 FROM runs r WHERE r.cluster = j.cluster AND r.job_id = j.job_id)
          AND NOT EXISTS (
              SELECT 1 FROM runs r
              WHERE r.cluster = j.cluster AND r."user" = j."user" AND {tail} <> ''
                AND regexp_extract(r.run_path, {TAIL_SQL}, 1) = {tail})
        ORDER BY j.cluster, j."user", j.submit_at, j.job_id
    """
    return con.execute(sql, {**params, **user_params}).df()


def _timed_runs_sql() -> str:
    """Matched finished runs with a time limit and a wall time: used share, and limit hit."""
    return f"""
        SELECT "user", cluster, time_limit_s, wall_time_s / time_limit_s AS used,
               wall_time_s >= {LIMIT_HIT_SHARE} * time_limit_s
                   OR scheduler_state = 'TIMEOUT' AS hit
        FROM {{runs}}
        WHERE {MATCHED} AND {FINISHED} AND time_limit_s > 0 AND wall_time_s IS NOT NULL
    """


def walltime_accuracy(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per user and cluster: wall time used / requested (median, p90), the share of runs
    that hit the limit, the median request, and a flag; flagged users first."""
    return query(
        con,
        f"""
        SELECT "user", cluster, count(*) AS runs,
               median(used) AS used_ratio_median, quantile_cont(used, 0.9) AS used_ratio_p90,
               round(100 * avg(hit::DOUBLE), 1) AS limit_hit_pct,
               median(time_limit_s) / 3600 AS requested_hours_median,
               CASE WHEN count(*) >= $min_runs THEN nullif(concat_ws('; ',
                   CASE WHEN median(used) <= $over_ratio THEN $over_flag END,
                   CASE WHEN 100 * avg(hit::DOUBLE) >= $hit_pct THEN $hit_flag END), '')
               END AS flag
        FROM ({_timed_runs_sql()}) GROUP BY ALL ORDER BY flag IS NULL, cluster, "user"
        """,
        run_filter,
        min_runs=MIN_FLAG_RUNS,
        over_ratio=OVER_REQUEST_RATIO,
        over_flag=OVER_REQUEST_FLAG,
        hit_pct=LIMIT_HIT_FLAG_PCT,
        hit_flag=LIMIT_HIT_FLAG,
    )


def walltime_ratio_bins(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per cluster, runs per bin of wall time used / requested (every bin, zeros too) and
    their share of the cluster's runs, for the distribution chart."""
    counts = query(
        con,
        f"""
        SELECT cluster, least(floor(used * 10), 10)::INTEGER AS bin, count(*) AS runs
        FROM ({_timed_runs_sql()}) GROUP BY ALL
        """,
        run_filter,
    )
    labels = [RATIO_BIN_LABELS[i] for i in counts["bin"]]
    counts["ratio_bin"] = pd.Series(labels, index=counts.index, dtype=object)
    grid = pd.MultiIndex.from_product(
        [sorted(counts["cluster"].unique()), RATIO_BIN_LABELS], names=["cluster", "ratio_bin"]
    ).to_frame(index=False)
    frame = grid.merge(counts.drop(columns="bin"), how="left", on=["cluster", "ratio_bin"])
    frame["runs"] = frame["runs"].fillna(0).astype("int64")
    return with_share(frame, within="cluster")


def _size_class_sql(column: str) -> str:
    """A CASE naming the size class of `column` (a trusted column of node counts)."""
    whens = " ".join(
        f"WHEN {column} <= {largest} THEN '{label}'"
        for label, largest in SIZE_CLASSES
        if largest is not None
    )
    return f"CASE WHEN {column} IS NULL THEN '{NOT_SET}' {whens} ELSE '{SIZE_CLASSES[-1][0]}' END"


def _queue_wait(con: duckdb.DuckDBPyConnection, run_filter: RunFilter, by: str) -> pd.DataFrame:
    """Matched jobs (one per job, however many runs it holds) and their queue wait in hours
    (median, p90), per cluster and `by` (trusted column expressions)."""
    return query(
        con,
        f"""
        WITH jobs AS (
            SELECT cluster, coalesce(queue, '{NOT_SET}') AS queue,
                   {_size_class_sql("alloc_nodes")} AS size_class, dimension, queue_wait_s
            FROM {{runs}} WHERE {MATCHED} AND queue_wait_s >= 0
            QUALIFY row_number() OVER (PARTITION BY cluster, job_id ORDER BY run_id) = 1
        )
        SELECT cluster, {by}, count(*) AS jobs,
               median(queue_wait_s) / 3600 AS wait_median_h,
               quantile_cont(queue_wait_s, 0.9) / 3600 AS wait_p90_h
        FROM jobs GROUP BY ALL ORDER BY ALL
        """,
        run_filter,
    )


def queue_wait(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per cluster, partition and job size class: jobs, median and p90 queue wait [h]."""
    frame = _queue_wait(con, run_filter, "queue, size_class")
    rank = frame["size_class"].map({label: i for i, label in enumerate(SIZE_LABELS)})
    order = frame.assign(_rank=rank).sort_values(["cluster", "queue", "_rank"]).index
    return frame.loc[order].reset_index(drop=True)


def queue_wait_by_dimension(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per cluster and dimension of the run (2D, 3D): jobs, median and p90 queue wait [h]."""
    return _queue_wait(con, run_filter, "dimension")


def memory_headroom(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Per user, memory used / requested over finished matched runs, most headroom first.

    MaxRSS is that of the largest single process (task), ReqMem the whole job's
    request: a run's use is its largest process times its processes (MPI ranks,
    else allocated CPUs) over the request, an upper bound of what the job held,
    so "uses little" is never claimed of a run that did not.
    """
    return query(
        con,
        f"""
        WITH sized AS (
            SELECT "user",
                   max_rss_mb * coalesce(nullif(n_procs, 0), nullif(alloc_cpus, 0), 1)
                       / nullif(req_mem_mb, 0) AS used,
                   error_category = 'out_of_memory'
                       OR scheduler_state = 'OUT_OF_MEMORY' AS oom
            FROM {{runs}} WHERE {MATCHED} AND {FINISHED}
        )
        SELECT "user", count(used) AS runs,
               quantile_cont(used, 0.1) AS memory_use_p10,
               median(used) AS memory_use_median,
               quantile_cont(used, 0.9) AS memory_use_p90,
               round(100 * count(*) FILTER (WHERE used < $low) / nullif(count(used), 0), 1)
                   AS low_use_pct,
               count(*) AS matched_runs,
               round(100 * avg(coalesce(oom, false)::DOUBLE), 1) AS oom_killed_pct
        FROM sized GROUP BY ALL ORDER BY memory_use_median NULLS LAST, "user"
        """,
        run_filter,
        low=LOW_MEMORY_USE,
    )


def cpu_hours_by_state(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, unarchived: pd.DataFrame
) -> pd.DataFrame:
    """Per cluster and scheduler state: matched runs and their CPU hours, then one row of
    the cluster's unarchived jobs (`not archived`); `share_pct`: of the cluster's hours."""
    runs = query(
        con,
        f"""
        SELECT cluster, coalesce(scheduler_state, '{NOT_SET}') AS scheduler_state,
               count(*) AS runs, sum(coalesce({SCHEDULER_CPU_HOURS}, 0)) AS cpu_hours
        FROM {{runs}} WHERE {MATCHED} GROUP BY ALL ORDER BY cluster, cpu_hours DESC
        """,
        run_filter,
    )
    missing = (
        unarchived.groupby("cluster", as_index=False)
        .agg(runs=("job_id", "size"), cpu_hours=("cpu_hours", "sum"))
        .assign(scheduler_state=NOT_ARCHIVED)
    )
    frame = pd.concat([runs, missing[runs.columns]], ignore_index=True)
    frame = frame.sort_values("cluster", kind="stable").reset_index(drop=True)
    frame["runs"] = frame["runs"].astype("int64")
    frame["cpu_hours"] = frame["cpu_hours"].astype(float).round(1)
    totals = frame.groupby("cluster")["cpu_hours"].transform("sum")
    frame["share_pct"] = (100 * frame["cpu_hours"] / totals.where(totals > 0)).round(1)
    return frame


def overview(
    con: duckdb.DuckDBPyConnection,
    run_filter: RunFilter,
    unarchived: pd.DataFrame,
    states: pd.DataFrame,
) -> pd.DataFrame:
    """Per cluster: runs, matched runs (NULL: no dumps), unarchived jobs, CPU hours in the
    archive and missing from it, median wall time used / requested and queue wait."""
    runs = query(
        con,
        f"""
        SELECT cluster, count(*) AS runs,
               CASE WHEN count({MATCHED}) > 0 THEN count(*) FILTER (WHERE {MATCHED}) END
                   AS matched_runs,
               median(wall_time_s / time_limit_s) FILTER (
                   WHERE {MATCHED} AND {FINISHED} AND time_limit_s > 0) AS used_ratio_median,
               median(queue_wait_s) FILTER (WHERE {MATCHED} AND queue_wait_s >= 0) / 3600
                   AS queue_wait_median_h
        FROM {{runs}} GROUP BY ALL
        """,
        run_filter,
    )
    missing = states["scheduler_state"] == NOT_ARCHIVED
    hours = pd.DataFrame(
        {
            "unarchived_jobs": unarchived.groupby("cluster").size(),
            "cpu_hours_archived": states[~missing].groupby("cluster")["cpu_hours"].sum(),
            "cpu_hours_missing": states[missing].groupby("cluster")["cpu_hours"].sum(),
        }
    )
    hours.index.name = "cluster"
    frame = runs.merge(hours.reset_index(), how="outer", on="cluster")
    frame[["runs", "unarchived_jobs"]] = frame[["runs", "unarchived_jobs"]].fillna(0)
    frame[["cpu_hours_archived", "cpu_hours_missing"]] = frame[
        ["cpu_hours_archived", "cpu_hours_missing"]
    ].fillna(0.0)
    total = frame["cpu_hours_archived"] + frame["cpu_hours_missing"]
    frame["share_missing_pct"] = (100 * frame["cpu_hours_missing"] / total.where(total > 0)).round(
        1
    )
    frame = frame.astype({"runs": "int64", "unarchived_jobs": "int64", "matched_runs": "Int64"})
    columns = [
        "cluster",
        "runs",
        "matched_runs",
        "unarchived_jobs",
        "cpu_hours_archived",
        "cpu_hours_missing",
        "share_missing_pct",
        "used_ratio_median",
        "queue_wait_median_h",
    ]
    return frame[columns].sort_values("cluster").reset_index(drop=True)


def _named(names: list[str]) -> str:
    """At most MAX_NAMED names, then how many more: a finding stays a sentence."""
    more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more


def _hours(value: float) -> str:
    """A duration for a sentence: minutes below an hour, else hours."""
    return f"{value * 60:.0f} min" if value < 1 else f"{value:.1f} h"


def _per_cluster(first: str, values: list[str], rows: pd.DataFrame) -> str:
    """`first` on the first row's cluster, then each other value with its cluster:
    "wait 7.0 h in the queue on irene, 45 min on kraken"."""
    clusters = list(rows["cluster"])
    rest = "".join(f", {value} on {c}" for value, c in zip(values[1:], clusters[1:], strict=True))
    return f"{first} on {clusters[0]}{rest}"


def _missing_finding(summary: pd.DataFrame) -> list[str]:
    """How much of each cluster's CPU hours is in jobs that never reached the archive."""
    missing = summary[summary["unarchived_jobs"] > 0]
    if missing.empty:
        return []
    parts = " and ".join(
        f"{row.share_missing_pct:.0f} % of the CPU hours of {row.cluster}"
        for row in missing.sort_values("share_missing_pct", ascending=False).itertuples()
    )
    jobs = int(missing["unarchived_jobs"].sum())
    return [
        f"{parts} {'are' if len(missing) > 1 else 'is'} in jobs missing from the archive "
        f"({jobs:,} jobs of the archive's users, each listed in unarchived_jobs)."
    ]


def _walltime_findings(summary: pd.DataFrame, accuracy: pd.DataFrame) -> list[str]:
    """Requested against used wall time per cluster, then the users flagged for it."""
    known = summary.dropna(subset=["used_ratio_median"])
    known = known[known["used_ratio_median"] > 0].sort_values("used_ratio_median")
    findings = []
    if not known.empty:
        ratios = [f"{1 / row.used_ratio_median:.1f}×" for row in known.itertuples()]
        parts = _per_cluster(f"request {ratios[0]} the wall time they use", ratios, known)
        findings.append(f"Users {parts} (median).")
    for flag, who_they_are, advice in (
        (
            OVER_REQUEST_FLAG,
            "request ≥ 3× the wall time they use (median)",
            "asking closer to the need shortens their queue wait",
        ),
        (
            LIMIT_HIT_FLAG,
            f"keep hitting the time limit (≥ {LIMIT_HIT_FLAG_PCT:.0f} % of their runs)",
            "they should ask for more, or save and restart before the limit",
        ),
    ):
        rows = accuracy[accuracy["flag"].fillna("").str.contains(flag, regex=False)]
        if rows.empty:
            continue
        by_user = rows.groupby("user").agg(runs=("runs", "sum"), clusters=("cluster", sorted))
        by_user = by_user.sort_values("runs", ascending=False, kind="stable")
        names = [f"{user} ({', '.join(row.clusters)})" for user, row in by_user.iterrows()]
        findings.append(f"Users who {who_they_are}: {_named(names)}; {advice}.")
    return findings


def _queue_findings(by_dimension: pd.DataFrame) -> list[str]:
    """Median queue wait per dimension, clusters longest first: 3D runs before 2D."""
    findings = []
    known = by_dimension.dropna(subset=["dimension"])
    for dimension, group in known.groupby("dimension", sort=True):
        group = group.sort_values("wait_median_h", ascending=False)
        waits = [_hours(hours) for hours in group["wait_median_h"]]
        parts = _per_cluster(f"wait {waits[0]} in the queue", waits, group)
        findings.append(f"{int(dimension)}D runs {parts} (median).")
    return findings[::-1]


def _memory_findings(memory: pd.DataFrame) -> list[str]:
    """Users who mostly use little of the memory they request; users killed out of memory."""
    findings = []
    low = memory[(memory["runs"] >= MIN_FLAG_RUNS) & (memory["low_use_pct"] >= MOSTLY_LOW_PCT)]
    low = low.sort_values("low_use_pct", ascending=False, kind="stable")
    if not low.empty:
        who = _named([f"{row.user} ({row.low_use_pct:.0f} %)" for row in low.itertuples()])
        findings.append(
            f"Most runs of {who} use less than {100 * LOW_MEMORY_USE:.0f} % of the memory "
            "they request (share of their runs in brackets)."
        )
    oom = memory[memory["oom_killed_pct"] > 0].sort_values("oom_killed_pct", ascending=False)
    if not oom.empty:
        who = _named([f"{row.user} ({row.oom_killed_pct:.0f} %)" for row in oom.itertuples()])
        findings.append(f"Runs killed out of memory: {who} of their matched runs.")
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    joined = accounting_joined(con)
    unarchived = unarchived_jobs(con, run_filter, joined)
    states = cpu_hours_by_state(con, run_filter, unarchived)
    summary = overview(con, run_filter, unarchived, states)
    accuracy = walltime_accuracy(con, run_filter)
    by_dimension = queue_wait_by_dimension(con, run_filter)
    memory = memory_headroom(con, run_filter)
    tables = {
        "scheduler": summary if joined else summary.head(0),
        "unarchived_jobs": unarchived,
        "walltime_accuracy": accuracy,
        "queue_wait": queue_wait(con, run_filter),
        "queue_wait_by_dimension": by_dimension,
        "memory_headroom": memory,
        "cpu_hours_by_state": states,
        "walltime_ratio_bins": walltime_ratio_bins(con, run_filter),
    }
    if not joined:
        return AnalysisResult(tables=tables, findings=[NO_ACCOUNTING])
    findings = (
        _missing_finding(summary)
        + _walltime_findings(summary, accuracy)
        + _queue_findings(by_dimension)
        + _memory_findings(memory)
    )
    return AnalysisResult(tables=tables, findings=findings or [NO_MATCH])


ANALYSIS = Analysis(
    name="scheduler",
    title="What the scheduler saw",
    description="The Slurm accounting joined to the runs: jobs of the archive's users missing "
    "from it, wall time used against requested, queue wait per cluster, partition and job "
    "size, memory used against requested, and CPU hours (allocated CPUs × elapsed) per "
    "scheduler state.",
    compute=compute,
    tables=(
        "scheduler",
        "unarchived_jobs",
        "walltime_accuracy",
        "queue_wait",
        "queue_wait_by_dimension",
        "memory_headroom",
        "cpu_hours_by_state",
    ),
    chart_tables=("walltime_ratio_bins",),
)
