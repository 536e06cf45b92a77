"""Who runs, and when: runs per user, per year and month, per hour of day and weekday.

The seed's notebook counted runs by user and creation date (`when_month_user.png`).
Time here is `created_at`, when the run was set up, which every run has,
even one that never started.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    NO_RUNS,
    Analysis,
    AnalysisResult,
    RunFilter,
    complete_counts,
    counted,
    exact_sum,
    query,
    share_pct,
)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def user_activity(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per user: runs, share, clusters used, first and last run, CPU hours."""
    return query(
        con,
        f"""
        SELECT "user", count(*) AS runs, {share_pct("count(*)")} AS share_pct,
               string_agg(DISTINCT cluster, ', ' ORDER BY cluster) AS clusters,
               min(created_at) AS first_run, max(created_at) AS last_run,
               {exact_sum("cpu_hours")} AS cpu_hours
        FROM {{runs}} GROUP BY "user" ORDER BY runs DESC, "user"
        """,
        run_filter,
    )


def runs_by_solver(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per solver: runs, users, and how many succeeded (a mixed archive at a glance)."""
    return query(
        con,
        f"""
        SELECT solver, count(*) AS runs, count(DISTINCT "user") AS users,
               count(*) FILTER (WHERE status = 'success') AS succeeded,
               {exact_sum("cpu_hours")} AS cpu_hours
        FROM {{runs}} GROUP BY solver ORDER BY runs DESC, solver
        """,
        run_filter,
    )


def runs_by_user_period(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, period: str
) -> pd.DataFrame:
    """Runs per user and period (`year` or `month`), every period of the span present."""
    fmt = {"year": "%Y", "month": "%Y-%m"}[period]
    counts = query(
        con,
        f"""
        SELECT strftime(created_at, $fmt) AS {period}, "user", count(*) AS runs
        FROM {{runs}} WHERE created_at IS NOT NULL GROUP BY ALL ORDER BY {period}, "user"
        """,
        run_filter,
        fmt=fmt,
    )
    if counts.empty:
        return counts
    freq = {"year": "Y", "month": "M"}[period]
    periods = pd.period_range(counts[period].min(), counts[period].max(), freq=freq)
    labels = [p.strftime(fmt) for p in periods]
    full = pd.MultiIndex.from_product([labels, sorted(counts["user"].unique())])
    counts = counts.set_index([period, "user"]).reindex(full, fill_value=0)
    return counts.rename_axis([period, "user"]).reset_index()


def runs_by_clock(con: duckdb.DuckDBPyConnection, run_filter: RunFilter, part: str) -> pd.DataFrame:
    """Runs per hour of day (0-23) or ISO weekday (1 = Monday), every slot present."""
    slots = {"hour": range(24), "isodow": range(1, 8)}[part]
    counts = query(
        con,
        f"SELECT date_part('{part}', created_at) AS slot, count(*) AS runs FROM {{runs}} "
        "WHERE created_at IS NOT NULL GROUP BY ALL",
        run_filter,
    )
    frame = complete_counts(pd.DataFrame({"slot": list(slots)}), counts, on="slot")
    if part == "isodow":
        return pd.DataFrame(
            {"weekday": frame["slot"], "weekday_name": WEEKDAYS, "runs": frame["runs"]}
        )
    return frame.rename(columns={"slot": "hour"})


def _findings(users: pd.DataFrame, by_month: pd.DataFrame, solvers: pd.DataFrame) -> list[str]:
    if users.empty:
        return [NO_RUNS]
    top = users.iloc[0]
    findings = [
        f"{counted(len(users), 'user')} set up {counted(int(users['runs'].sum()), 'run')}; "
        f"{top['user']} set up the "
        f"most ({int(top['runs'])}, {top['share_pct']:.0f} %)."
    ]
    if len(solvers) > 1:
        counts = ", ".join(f"{int(r.runs)} {r.solver}" for r in solvers.itertuples())
        findings.append(f"Runs per solver: {counts}.")
    if not by_month.empty:
        busiest = by_month.groupby("month")["runs"].sum().idxmax()
        findings.append(f"The busiest month was {busiest}.")
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    users = user_activity(con, run_filter)
    by_month = runs_by_user_period(con, run_filter, "month")
    solvers = runs_by_solver(con, run_filter)
    return AnalysisResult(
        tables={
            "user_activity": users,
            "runs_by_solver": solvers,
            "runs_by_user_year": runs_by_user_period(con, run_filter, "year"),
            "runs_by_user_month": by_month,
            "runs_by_hour": runs_by_clock(con, run_filter, "hour"),
            "runs_by_weekday": runs_by_clock(con, run_filter, "isodow"),
        },
        findings=_findings(users, by_month, solvers),
    )


ANALYSIS = Analysis(
    name="user_activity",
    title="Who runs, and when",
    description="Runs per user and per solver, per year and month, per hour of day and weekday.",
    compute=compute,
    tables=(
        "user_activity",
        "runs_by_solver",
        "runs_by_user_year",
        "runs_by_user_month",
        "runs_by_hour",
        "runs_by_weekday",
    ),
)
