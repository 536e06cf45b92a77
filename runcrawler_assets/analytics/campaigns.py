"""Campaigns: the successive runs a user needed to bring one case to its end.

A case's runs (`cases`: same user, same folder) are read in `created_at`
order; a run belongs to the campaign of the run before it when that run did
not succeed (it is another attempt: failed, killed, truncated, never started)
or when it continues that run's solution (a restart). Any other run starts a
campaign. A campaign's outcome is its last run's status: success, one that
never succeeded (failed, killed, truncated, not started), or still running.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    NO_RUNS,
    RunFilter,
    StagedTable,
    drop_temporary,
    exact_sum,
    query,
    temporary_name,
)
from runcrawler_assets.analytics.memo import Memo, kept_analysis
from runcrawler_assets.warehouse.cases import FOLDER_SQL

RETRIED_STATUSES: tuple[str, ...] = ("failed", "killed", "truncated", "not_started")
ATTEMPT_BINS: tuple[str, ...] = ("1", "2", "3", "4", "5+")
SUCCEEDED, GAVE_UP, ONGOING = "succeeded", "never succeeded", "still running"
ORDER = "runs DESC, cpu_hours DESC, campaign_id"  # the `campaigns` table's


# A campaign's outcome from its last run's status (`{status}`: an SQL expression).
_OUTCOME_SQL = (
    f"CASE WHEN {{status}} = 'success' THEN '{SUCCEEDED}' "
    f"WHEN {{status}} = 'running' THEN '{ONGOING}' ELSE '{GAVE_UP}' END"
)


# Every run of the runs `{runs}` keeps, marked from its neighbours in its case (one ordering):
# whether it restarts from the run before it, starts a campaign, ends one (the run after it,
# if any, starts the next), or is a campaign alone (both). A run is carried by its folder,
# not its path: a run's path is its case folder (`parent`), "/" and its folder, as every
# path of the archive (`<cluster>/<user>/.../<run>`), so in its case the folders order
# runs as their paths do, and the paths, made again where listed, cost the orderings
# nothing (a million runs: 0.5 s less, under 192MB). The folders a run's parameters point
# into (`../run_006/...`) are not carried past the ordering.
_RUNS_SQL = f"""
    WITH r AS (
        SELECT cluster, "user", solver, status, created_at, ended_at, cpu_hours, points_into,
               case_folder AS parent, {FOLDER_SQL} AS folder
        FROM {{runs}} WHERE created_at IS NOT NULL
    ),
    ordered AS (
        SELECT *, lag(status) OVER w AS previous_status, lag(folder) OVER w AS previous,
               lead(points_into) OVER w AS next_points_into,
               lead(true, 1, false) OVER w AS has_next
        FROM r WINDOW w AS (PARTITION BY "user", parent ORDER BY created_at, folder)
    )
    -- whether the next run starts a campaign is the same test, from this run's side
    SELECT folder, cluster, "user", solver, status, created_at, ended_at, cpu_hours, parent,
           coalesce(list_contains(points_into, previous), false) AS restart,
           NOT (coalesce(previous_status IN $retried, false) OR restart) AS starts,
           NOT (has_next AND (coalesce(status IN $retried, false)
               OR coalesce(list_contains(next_points_into, folder), false))) AS ends,
           starts AND ends AS alone
    FROM ordered
"""

# Every campaign of several runs of `_RUNS_SQL`'s table `{staged}`: its runs (paths in
# order), restarts, CPU hours, outcome and span. Most campaigns are one run, left out (only
# counted): the others are numbered in a second ordering of their runs alone (each campaign
# left out is a whole one, so the others stay whole) and grouped, their folders listed in
# order, the dearest aggregate, then made paths. Its first and last runs are those of that
# order (the ordering's own, where runs start at the same instant), named by its first run.
_CAMPAIGNS_SQL = f"""
    WITH numbered AS (
        SELECT *, sum(starts::INTEGER) OVER (
                   PARTITION BY "user", parent ORDER BY created_at, folder
                   ROWS UNBOUNDED PRECEDING) AS k
        FROM temp.{{staged}} WHERE NOT alone
    ),
    grouped AS (
        SELECT cluster, "user", min(solver) AS solver, parent AS case_folder, count(*) AS runs,
               count(*) FILTER (WHERE restart) AS restarts,
               {exact_sum("cpu_hours", 2)} AS cpu_hours,
               any_value(status) FILTER (WHERE ends) AS last_status,
               min(created_at) AS started_at, max(coalesce(ended_at, created_at)) AS ended_at,
               round(epoch(max(coalesce(ended_at, created_at)) - min(created_at)) / 86400, 2)
                   AS days,
               list(folder ORDER BY created_at, folder) AS folders
        FROM numbered GROUP BY cluster, "user", parent, k
    ),
    listed AS (
        SELECT *, list_transform(folders, lambda f: case_folder || '/' || f) AS run_paths
        FROM grouped
    )
    SELECT run_paths[1] AS campaign_id, cluster, "user", solver, case_folder, runs, restarts,
           cpu_hours, last_status, {_OUTCOME_SQL.format(status="last_status")} AS outcome,
           started_at, ended_at, days, run_paths
    FROM listed
"""

# The campaigns of one run, counted per cluster, user and outcome with their CPU hours, from
# `_RUNS_SQL`'s table `{staged}` (most campaigns are a run alone).
_SINGLES_SQL = f"""
    SELECT cluster, "user", outcome, count(*) AS campaigns,
           sum(round(coalesce(cpu_hours, 0), 2)::DECIMAL(18, 3))::DECIMAL(18, 3) AS cpu_hours
    FROM (SELECT cluster, "user", {_OUTCOME_SQL.format(status="status")} AS outcome, cpu_hours
          FROM temp.{{staged}} WHERE alone)
    GROUP BY cluster, "user", outcome
"""


def _staged(con: duckdb.DuckDBPyConnection, run_filter: RunFilter | str) -> dict[str, StagedTable]:
    """The `campaigns` (those of several runs) and `campaign_singles` of the runs
    `run_filter` keeps: the runs marked into a temporary table (`_RUNS_SQL`), the campaigns
    of several runs into another (`_CAMPAIGNS_SQL`)."""
    runs, campaigns = temporary_name("campaign_runs"), temporary_name("campaigns")
    try:
        query(
            con,
            f"CREATE TEMP TABLE {runs} AS {_RUNS_SQL}",
            run_filter,
            retried=list(RETRIED_STATUSES),
        )
        con.execute(f"CREATE TEMP TABLE {campaigns} AS " + _CAMPAIGNS_SQL.replace("{staged}", runs))
    except BaseException:
        drop_temporary(con, (runs, campaigns))
        raise
    return {
        "campaigns": StagedTable(con, f"SELECT * FROM temp.{campaigns}", (runs, campaigns)),
        "campaign_singles": StagedTable(con, _SINGLES_SQL.replace("{staged}", runs), ()),
    }


def _attempts(con: duckdb.DuckDBPyConnection, several: str, singles: str) -> pd.DataFrame:
    """Every campaign counted by runs (`ATTEMPT_BINS`) and outcome, with their CPU hours;
    `several`, `singles`: the `campaigns` and `campaign_singles` tables' rows, as queries."""
    last = len(ATTEMPT_BINS)
    return con.execute(
        f"""
        SELECT CASE WHEN runs >= {last} THEN '{ATTEMPT_BINS[-1]}' ELSE runs::VARCHAR END
                   AS attempts,
               outcome, sum(counted)::BIGINT AS campaigns,
               {exact_sum("cpu_hours")} AS cpu_hours
        FROM (SELECT runs, outcome, 1 AS counted, cpu_hours FROM {several}
              UNION ALL
              SELECT 1, outcome, campaigns, cpu_hours FROM {singles})
        GROUP BY ALL ORDER BY attempts, outcome
        """
    ).df()


def _several(con: duckdb.DuckDBPyConnection, several: str) -> dict[str, float]:
    """What the findings say of the campaigns of several runs (the table's); `several`: as
    `_attempts` reads them."""
    [(mean_runs, gave_up, chains, restarts, longest)] = con.execute(
        f"""
        SELECT avg(runs) FILTER (WHERE outcome <> '{ONGOING}'),
               avg((outcome = '{GAVE_UP}')::INTEGER) FILTER (WHERE outcome <> '{ONGOING}'),
               count(*) FILTER (WHERE restarts > 0), sum(restarts) FILTER (WHERE restarts > 0),
               max(days) FILTER (WHERE restarts > 0)
        FROM {several}
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


# A partition's campaigns are made from its runs alone (a case is one cluster × user's
# folder): kept in the `campaigns` and `campaign_singles` tables between refreshes, made again
# for the partitions whose runs changed (ten new runs: their partition's runs, not their
# user's on every cluster).
MEMO = Memo(
    digests="campaign_user_digests",
    kept=("campaigns", "campaign_singles"),
    columns=(
        "run_path",
        "cluster",
        "user",
        "solver",
        "status",
        "created_at",
        "ended_at",
        "cpu_hours",
        "points_into",
        "case_folder",
    ),
    code=repr((_RUNS_SQL, _CAMPAIGNS_SQL, _SINGLES_SQL, RETRIED_STATUSES)),
    by=("cluster", "user"),
)


def _shown(
    con: duckdb.DuckDBPyConnection, read: Mapping[str, str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Every campaign counted by runs and outcome, and the findings, from the kept
    `campaigns` (those of more than one run: a table a manager reads, the rest are single
    successes or single failures) and `campaign_singles`."""
    several = read["campaigns"]
    attempts = _attempts(con, several, read["campaign_singles"])
    return {"campaign_attempts": attempts}, _findings(_several(con, several), attempts)


ANALYSIS = kept_analysis(
    MEMO,
    _staged,
    _shown,
    name="campaigns",
    title="Campaigns and restart chains",
    description="The successive runs a user needed to bring a case to its end: attempts, "
    "restarts, CPU hours, outcome and time from first to last run (the table lists the "
    "campaigns of several runs; the chart counts them all).",
    tables=("campaigns",),
    chart_tables=("campaign_attempts",),
    previewed={"campaigns": ORDER},  # a row per campaign of several runs
)
