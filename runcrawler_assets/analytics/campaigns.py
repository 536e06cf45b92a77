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

from runcrawler_assets.analytics.core import (
    NO_RUNS,
    Analysis,
    AnalysisResult,
    RunFilter,
    StagedTable,
    exact_sum,
    query,
    temporary_name,
)
from runcrawler_assets.warehouse.cases import FOLDER_SQL

RETRIED_STATUSES: tuple[str, ...] = ("failed", "killed", "truncated", "not_started")
ATTEMPT_BINS: tuple[str, ...] = ("1", "2", "3", "4", "5+")
SUCCEEDED, GAVE_UP, ONGOING = "succeeded", "never succeeded", "still running"


# A campaign's outcome from its last run's status (`{status}`: an SQL expression).
_OUTCOME_SQL = (
    f"CASE WHEN {{status}} = 'success' THEN '{SUCCEEDED}' "
    f"WHEN {{status}} = 'running' THEN '{ONGOING}' ELSE '{GAVE_UP}' END"
)


def _stage_runs(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> str:
    """Every run into a temporary table, its name, marked from its neighbours in its case (one
    ordering): whether it restarts from the run before it, starts a campaign, or is a campaign
    alone (it starts one and so does the run after it). The folders a run's parameters point
    into (`../run_006/...`) are not carried past the ordering."""
    name = temporary_name("campaign_runs")
    query(
        con,
        f"""
        CREATE TEMP TABLE {name} AS
        WITH r AS (
            SELECT run_path, "user", solver, status, created_at, ended_at, cpu_hours,
                   points_into, case_folder AS parent, {FOLDER_SQL} AS folder
            FROM {{runs}} WHERE created_at IS NOT NULL
        ),
        ordered AS (
            SELECT *, lag(status) OVER w AS previous_status, lag(folder) OVER w AS previous,
                   lead(points_into) OVER w AS next_points_into,
                   lead(true, 1, false) OVER w AS has_next
            FROM r WINDOW w AS (PARTITION BY "user", parent ORDER BY created_at, run_path)
        )
        -- whether the next run starts a campaign is the same test, from this run's side
        SELECT run_path, "user", solver, status, created_at, ended_at, cpu_hours, parent,
               coalesce(list_contains(points_into, previous), false) AS restart,
               NOT (coalesce(previous_status IN $retried, false) OR restart) AS starts,
               starts AND NOT (has_next AND (coalesce(status IN $retried, false)
                   OR coalesce(list_contains(next_points_into, folder), false))) AS alone
        FROM ordered
        """,
        run_filter,
        retried=list(RETRIED_STATUSES),
    )
    return name


def _stage_campaigns(con: duckdb.DuckDBPyConnection, runs: str) -> str:
    """Every campaign of several runs into a temporary table, its name: its runs (paths in
    order), restarts, CPU hours, outcome and span, from `_stage_runs`'s table `runs`.

    Most campaigns are one run, left out (`_attempts` counts them): the others are numbered
    in a second ordering of their runs alone (each campaign left out is a whole one, so the
    others stay whole) and grouped, their paths listed in order, the dearest aggregate."""
    name = temporary_name("campaigns")
    con.execute(
        f"""
        CREATE TEMP TABLE {name} AS
        WITH numbered AS (
            SELECT *, sum(starts::INTEGER) OVER (
                       PARTITION BY "user", parent ORDER BY created_at, run_path
                       ROWS UNBOUNDED PRECEDING) AS k
            FROM temp.{runs} WHERE NOT alone
        )
        SELECT arg_min(run_path, created_at) AS campaign_id, "user", min(solver) AS solver,
               parent AS case_folder, count(*) AS runs, count(*) FILTER (WHERE restart) AS restarts,
               {exact_sum("cpu_hours", 2)} AS cpu_hours,
               arg_max(status, created_at) AS last_status,
               {_OUTCOME_SQL.format(status="arg_max(status, created_at)")} AS outcome,
               min(created_at) AS started_at, max(coalesce(ended_at, created_at)) AS ended_at,
               round(epoch(max(coalesce(ended_at, created_at)) - min(created_at)) / 86400, 2)
                   AS days,
               list(run_path ORDER BY created_at, run_path) AS run_paths
        FROM numbered GROUP BY "user", parent, k
        """
    )
    return name


def _attempts(con: duckdb.DuckDBPyConnection, runs: str, campaigns: str) -> pd.DataFrame:
    """Every campaign counted by runs (`ATTEMPT_BINS`) and outcome, with their CPU hours: those
    of several runs from `campaigns`, those of one from `runs` (`_stage_runs`)."""
    last = len(ATTEMPT_BINS)
    return con.execute(
        f"""
        SELECT CASE WHEN runs >= {last} THEN '{ATTEMPT_BINS[-1]}' ELSE runs::VARCHAR END
                   AS attempts,
               outcome, count(*) AS campaigns,
               {exact_sum("cpu_hours")} AS cpu_hours
        FROM (SELECT runs, outcome, cpu_hours FROM temp.{campaigns}
              UNION ALL
              SELECT 1, {_OUTCOME_SQL.format(status="status")}, round(coalesce(cpu_hours, 0), 2)
              FROM temp.{runs} WHERE alone)
        GROUP BY ALL ORDER BY attempts, outcome
        """
    ).df()


def _several(con: duckdb.DuckDBPyConnection, campaigns: str) -> dict[str, float]:
    """What the findings say of the campaigns of several runs (the table's)."""
    [(mean_runs, gave_up, chains, restarts, longest)] = con.execute(
        f"""
        SELECT avg(runs) FILTER (WHERE outcome <> '{ONGOING}'),
               avg((outcome = '{GAVE_UP}')::INTEGER) FILTER (WHERE outcome <> '{ONGOING}'),
               count(*) FILTER (WHERE restarts > 0), sum(restarts) FILTER (WHERE restarts > 0),
               max(days) FILTER (WHERE restarts > 0)
        FROM temp.{campaigns}
        """
    ).fetchall()
    return {
        "mean_runs": mean_runs or 0,
        "gave_up_share": gave_up or 0,
        "chains": chains,
        "restarts": restarts or 0,
        "longest_days": longest or 0,
    }


def _findings(several: dict[str, float], attempts: pd.DataFrame) -> list[str]:
    if attempts.empty:
        return [NO_RUNS]
    done = attempts[attempts["outcome"] != ONGOING]
    single = done.loc[done["attempts"] == "1", "campaigns"].sum()
    finished = done["campaigns"].sum()
    never = done[done["outcome"] == GAVE_UP]
    findings = [
        f"{int(attempts['campaigns'].sum())} campaigns (a case's runs until it succeeded or was "
        f"left): {100 * single / max(finished, 1):.0f} % took a single run; those that took "
        f"more needed {several['mean_runs']:.1f} runs on average."
    ]
    if finished:
        findings.append(
            f"{100 * never['campaigns'].sum() / finished:.0f} % of finished campaigns never "
            f"succeeded ({never['cpu_hours'].sum():,.0f} CPU hours); "
            f"{100 * several['gave_up_share']:.0f} % of those with several runs."
        )
    if several["chains"]:
        findings.append(
            f"{several['chains']} campaigns restarted from a previous run's solution "
            f"({int(several['restarts'])} restarts); the longest took "
            f"{several['longest_days']:.0f} days from first to last run."
        )
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    """The campaigns of more than one run (a table a manager reads: the rest are single
    successes or single failures), left in DuckDB (`StagedTable`), and every campaign
    counted by runs and outcome."""
    runs = _stage_runs(con, run_filter)
    try:
        campaigns = _stage_campaigns(con, runs)
        table = StagedTable(
            con,
            f"SELECT * FROM temp.{campaigns} ORDER BY runs DESC, cpu_hours DESC, campaign_id",
            (campaigns,),
        )
        try:
            attempts = _attempts(con, runs, campaigns)
            findings = _findings(_several(con, campaigns), attempts)
        except BaseException:
            table.drop()
            raise
    finally:
        con.execute(f"DROP TABLE IF EXISTS temp.{runs}")
    return AnalysisResult(
        tables={"campaigns": table, "campaign_attempts": attempts}, findings=findings
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
    previewed=("campaigns",),  # a row per campaign of several runs
)
