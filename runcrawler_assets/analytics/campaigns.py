"""Campaigns: the successive runs a user needed to bring one case to its end.

A case's runs (`cases`: same user, same folder) are read in `created_at`
order; a run belongs to the campaign of the run before it when that run did
not succeed (it is another attempt: failed, killed, truncated, never started)
or when it continues that run's solution (a restart). Any other run starts a
campaign. A campaign's outcome is its last run's status: success, one that
never succeeded (failed, killed, truncated, not started), or still running.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.cases import FOLDER_SQL, PARENT_SQL
from runcrawler_assets.analytics.core import NO_RUNS, Analysis, AnalysisResult, RunFilter, query

RETRIED_STATUSES: tuple[str, ...] = ("failed", "killed", "truncated", "not_started")
ATTEMPT_BINS: tuple[str, ...] = ("1", "2", "3", "4", "5+")
SUCCEEDED, GAVE_UP, ONGOING = "succeeded", "never succeeded", "still running"


def campaigns(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per campaign: its runs (paths in order), restarts, CPU hours, outcome and span."""
    return query(
        con,
        f"""
        WITH r AS (
            SELECT run_path, "user", solver, status, created_at, ended_at, cpu_hours,
                   params::VARCHAR AS params, {PARENT_SQL} AS parent, {FOLDER_SQL} AS folder
            FROM {{runs}} WHERE created_at IS NOT NULL
        ),
        ordered AS (
            SELECT *, lag(status) OVER w AS previous_status, lag(folder) OVER w AS previous
            FROM r WINDOW w AS (PARTITION BY "user", parent ORDER BY created_at, run_path)
        ),
        marked AS (
            SELECT *, coalesce(contains(params, '../' || previous || '/'), false) AS restart,
                   NOT (coalesce(previous_status IN $retried, false) OR restart) AS starts
            FROM ordered
        ),
        numbered AS (
            SELECT *, sum(starts::INTEGER) OVER (
                PARTITION BY "user", parent ORDER BY created_at, run_path
                ROWS UNBOUNDED PRECEDING) AS k
            FROM marked
        )
        SELECT arg_min(run_path, created_at) AS campaign_id, "user", any_value(solver) AS solver,
               parent AS case_folder, count(*) AS runs, count(*) FILTER (WHERE restart) AS restarts,
               round(sum(coalesce(cpu_hours, 0)), 2) AS cpu_hours,
               arg_max(status, created_at) AS last_status,
               CASE WHEN arg_max(status, created_at) = 'success' THEN '{SUCCEEDED}'
                    WHEN arg_max(status, created_at) = 'running' THEN '{ONGOING}'
                    ELSE '{GAVE_UP}' END AS outcome,
               min(created_at) AS started_at, max(coalesce(ended_at, created_at)) AS ended_at,
               round(epoch(max(coalesce(ended_at, created_at)) - min(created_at)) / 86400, 2)
                   AS days,
               list(run_path ORDER BY created_at, run_path) AS run_paths
        FROM numbered GROUP BY "user", parent, k
        ORDER BY runs DESC, cpu_hours DESC, campaign_id
        """,
        run_filter,
        retried=list(RETRIED_STATUSES),
    )


def attempts_by_outcome(table: pd.DataFrame) -> pd.DataFrame:
    """Campaigns per number of runs (`ATTEMPT_BINS`) and outcome, for the chart."""
    bins = (
        table["runs"].clip(upper=len(ATTEMPT_BINS)).astype(int).map(lambda n: ATTEMPT_BINS[n - 1])
    )
    counts = table.assign(attempts=bins).groupby(["attempts", "outcome"]).size()
    frame = counts.rename("campaigns").reset_index()
    return frame.astype({"campaigns": "int64"})


def _findings(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return [NO_RUNS]
    done = table[table["outcome"] != ONGOING]
    retried = done[done["runs"] > 1]
    never = done[done["outcome"] == GAVE_UP]
    findings = [
        f"{len(table)} campaigns (a case's runs until it succeeded or was left): "
        f"{100 * (done['runs'] == 1).mean():.0f} % took a single run; those that took more "
        f"needed {retried['runs'].mean() if len(retried) else 0:.1f} runs on average."
    ]
    if len(done):
        findings.append(
            f"{100 * len(never) / len(done):.0f} % of finished campaigns never succeeded "
            f"({never['cpu_hours'].sum():,.0f} CPU hours); "
            f"{100 * (retried['outcome'] == GAVE_UP).mean() if len(retried) else 0:.0f} % of "
            "those with several runs."
        )
    chains = table[table["restarts"] > 0]
    if len(chains):
        findings.append(
            f"{len(chains)} campaigns restarted from a previous run's solution "
            f"({int(chains['restarts'].sum())} restarts); the longest took "
            f"{chains['days'].max():.0f} days from first to last run."
        )
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table = campaigns(con, run_filter)
    return AnalysisResult(
        tables={"campaigns": table, "campaign_attempts": attempts_by_outcome(table)},
        findings=_findings(table),
    )


ANALYSIS = Analysis(
    name="campaigns",
    title="Campaigns and restart chains",
    description="The successive runs a user needed to bring a case to its end: attempts, "
    "restarts, CPU hours, outcome and time from first to last run.",
    compute=compute,
    tables=("campaigns",),
    chart_tables=("campaign_attempts",),
)
