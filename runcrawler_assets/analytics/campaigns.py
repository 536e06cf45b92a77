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

from runcrawler_assets.analytics.cases import FOLDER_SQL, INTO_FOLDER_REGEX, PARENT_SQL
from runcrawler_assets.analytics.core import NO_RUNS, Analysis, AnalysisResult, RunFilter, query

RETRIED_STATUSES: tuple[str, ...] = ("failed", "killed", "truncated", "not_started")
ATTEMPT_BINS: tuple[str, ...] = ("1", "2", "3", "4", "5+")
SUCCEEDED, GAVE_UP, ONGOING = "succeeded", "never succeeded", "still running"


_CAMPAIGNS = "rc_campaigns"  # every campaign, computed once per analysis (temporary)


def _create_campaigns(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> None:
    """Every campaign into a temporary table: its runs (paths in order), restarts, CPU
    hours, outcome and span. A run's parameters are read once, for the folders they point
    into (`../run_006/...`), not carried through the ordering."""
    query(
        con,
        f"""
        CREATE OR REPLACE TEMP TABLE {_CAMPAIGNS} AS
        WITH r AS (
            SELECT run_path, "user", solver, status, created_at, ended_at, cpu_hours,
                   regexp_extract_all(params::VARCHAR, '{INTO_FOLDER_REGEX}', 1) AS points_into,
                   {PARENT_SQL} AS parent, {FOLDER_SQL} AS folder
            FROM {{runs}} WHERE created_at IS NOT NULL
        ),
        ordered AS (
            SELECT *, lag(status) OVER w AS previous_status, lag(folder) OVER w AS previous
            FROM r WINDOW w AS (PARTITION BY "user", parent ORDER BY created_at, run_path)
        ),
        marked AS (
            SELECT *, coalesce(list_contains(points_into, previous), false) AS restart,
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
        """,
        run_filter,
        retried=list(RETRIED_STATUSES),
    )


def campaigns(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The campaigns of more than one run (a table a manager reads: the rest are single
    successes or single failures), and every campaign counted by runs (`ATTEMPT_BINS`) and
    outcome, with their CPU hours."""
    _create_campaigns(con, run_filter)
    try:
        table = con.execute(
            f"SELECT * FROM {_CAMPAIGNS} WHERE runs > 1 "
            "ORDER BY runs DESC, cpu_hours DESC, campaign_id"
        ).df()
        last = len(ATTEMPT_BINS)
        attempts = con.execute(
            f"""
            SELECT CASE WHEN runs >= {last} THEN '{ATTEMPT_BINS[-1]}' ELSE runs::VARCHAR END
                       AS attempts,
                   outcome, count(*) AS campaigns, round(sum(cpu_hours), 1) AS cpu_hours
            FROM {_CAMPAIGNS} GROUP BY ALL ORDER BY attempts, outcome
            """
        ).df()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_CAMPAIGNS}")
    return table, attempts


def _findings(table: pd.DataFrame, attempts: pd.DataFrame) -> list[str]:
    if attempts.empty:
        return [NO_RUNS]
    done = attempts[attempts["outcome"] != ONGOING]
    single = done.loc[done["attempts"] == "1", "campaigns"].sum()
    finished = done["campaigns"].sum()
    never = done[done["outcome"] == GAVE_UP]
    several = table[table["outcome"] != ONGOING]
    findings = [
        f"{int(attempts['campaigns'].sum())} campaigns (a case's runs until it succeeded or was "
        f"left): {100 * single / max(finished, 1):.0f} % took a single run; those that took "
        f"more needed {several['runs'].mean() if len(several) else 0:.1f} runs on average."
    ]
    if finished:
        findings.append(
            f"{100 * never['campaigns'].sum() / finished:.0f} % of finished campaigns never "
            f"succeeded ({never['cpu_hours'].sum():,.0f} CPU hours); "
            f"{100 * (several['outcome'] == GAVE_UP).mean() if len(several) else 0:.0f} % of "
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
    table, attempts = campaigns(con, run_filter)
    return AnalysisResult(
        tables={"campaigns": table, "campaign_attempts": attempts},
        findings=_findings(table, attempts),
    )


ANALYSIS = Analysis(
    name="campaigns",
    title="Campaigns and restart chains",
    description="The successive runs a user needed to bring a case to its end: attempts, "
    "restarts, CPU hours, outcome and time from first to last run (the table lists the "
    "campaigns of several runs; the chart counts them all).",
    compute=compute,
    tables=("campaigns",),
    chart_tables=("campaign_attempts",),
)
