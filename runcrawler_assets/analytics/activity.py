"""Who runs, and when: runs per user, per year and month, per hour of day and weekday.

The seed's notebook counted runs by user and creation date (`when_month_user.png`).
Time here is `created_at`, when the run was set up, which every run has,
even one that never started.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    NO_RUNS,
    complete_counts,
    counted,
    share_pct,
)
from runcrawler_assets.analytics.memo import Memo, kept_analysis, made_by

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# A partition's runs per solver (with their successes, CPU hours and span), and per slot of
# time (`kind`: a month, an hour of day, an ISO weekday): what every table adds up.
_PARTITIONS_SQL = """
    SELECT cluster, "user", solver, count(*) AS runs,
           count(*) FILTER (WHERE status = 'success') AS succeeded,
           sum(coalesce(cpu_hours, 0)::DECIMAL(18, 3)) AS cpu_hours,
           min(created_at) AS first_run, max(created_at) AS last_run
    FROM {runs} GROUP BY ALL
"""
_SLOTS_SQL = """
    SELECT cluster, "user", kind, slot, count(*) AS runs FROM (
        SELECT cluster, "user", unnest(['month', 'hour', 'isodow']) AS kind,
               unnest([strftime(created_at, '%Y-%m'), date_part('hour', created_at)::VARCHAR,
                       date_part('isodow', created_at)::VARCHAR]) AS slot
        FROM {runs} WHERE created_at IS NOT NULL
    ) GROUP BY ALL
"""

# A partition's rows come from its runs alone: kept between refreshes, made again for the
# partitions whose runs changed (issue 16).
MEMO = Memo(
    digests="activity_partition_digests",
    kept=("activity_partitions", "activity_slots"),
    columns=("cluster", "user", "solver", "status", "cpu_hours", "created_at"),
    code=repr((_PARTITIONS_SQL, _SLOTS_SQL)),
    by=("cluster", "user"),
)
_QUERIES = dict(zip(MEMO.kept, (_PARTITIONS_SQL, _SLOTS_SQL), strict=True))
_CPU_HOURS = "round(sum(cpu_hours), 1)::DOUBLE AS cpu_hours"  # sums of decimals: exact


def user_activity(con: duckdb.DuckDBPyConnection, partitions: str) -> pd.DataFrame:
    """One row per user: runs, share, clusters used, first and last run, CPU hours;
    `partitions`: the `activity_partitions` rows, as a query."""
    return con.execute(
        f"""
        SELECT "user", sum(runs)::BIGINT AS runs, {share_pct("sum(runs)")} AS share_pct,
               string_agg(DISTINCT cluster, ', ' ORDER BY cluster) AS clusters,
               min(first_run) AS first_run, max(last_run) AS last_run, {_CPU_HOURS}
        FROM {partitions} GROUP BY "user" ORDER BY runs DESC, "user"
        """
    ).df()


def runs_by_solver(con: duckdb.DuckDBPyConnection, partitions: str) -> pd.DataFrame:
    """One row per solver: runs, users, and how many succeeded (a mixed archive at a glance);
    `partitions`: as `user_activity` reads them."""
    return con.execute(
        f"""
        SELECT solver, sum(runs)::BIGINT AS runs, count(DISTINCT "user") AS users,
               sum(succeeded)::BIGINT AS succeeded, {_CPU_HOURS}
        FROM {partitions} GROUP BY solver ORDER BY runs DESC, solver
        """
    ).df()


def runs_by_user_period(con: duckdb.DuckDBPyConnection, slots: str, period: str) -> pd.DataFrame:
    """Runs per user and period (`year` or `month`), every period of the span present;
    `slots`: the `activity_slots` rows, as a query."""
    fmt = {"year": "%Y", "month": "%Y-%m"}[period]
    counts = con.execute(
        f"""
        SELECT left(slot, $width) AS {period}, "user", sum(runs)::BIGINT AS runs
        FROM {slots} WHERE kind = 'month' GROUP BY ALL ORDER BY {period}, "user"
        """,
        {"width": {"year": 4, "month": 7}[period]},
    ).df()
    if counts.empty:
        return counts
    freq = {"year": "Y", "month": "M"}[period]
    periods = pd.period_range(counts[period].min(), counts[period].max(), freq=freq)
    labels = [p.strftime(fmt) for p in periods]
    full = pd.MultiIndex.from_product([labels, sorted(counts["user"].unique())])
    counts = counts.set_index([period, "user"]).reindex(full, fill_value=0)
    return counts.rename_axis([period, "user"]).reset_index()


def runs_by_clock(con: duckdb.DuckDBPyConnection, slots: str, part: str) -> pd.DataFrame:
    """Runs per hour of day (0-23) or ISO weekday (1 = Monday), every slot present; `slots`:
    as `runs_by_user_period` reads them."""
    slots_of_part = {"hour": range(24), "isodow": range(1, 8)}[part]
    counts = con.execute(
        f"SELECT slot::BIGINT AS slot, sum(runs)::BIGINT AS runs FROM {slots} "
        "WHERE kind = $part GROUP BY ALL",
        {"part": part},
    ).df()
    frame = complete_counts(pd.DataFrame({"slot": list(slots_of_part)}), counts, on="slot")
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


def _shown(
    con: duckdb.DuckDBPyConnection, read: Mapping[str, str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables shown, and the findings, from the kept rows."""
    partitions, slots = (read[name] for name in MEMO.kept)
    users = user_activity(con, partitions)
    by_month = runs_by_user_period(con, slots, "month")
    solvers = runs_by_solver(con, partitions)
    tables = {
        "user_activity": users,
        "runs_by_solver": solvers,
        "runs_by_user_year": runs_by_user_period(con, slots, "year"),
        "runs_by_user_month": by_month,
        "runs_by_hour": runs_by_clock(con, slots, "hour"),
        "runs_by_weekday": runs_by_clock(con, slots, "isodow"),
    }
    return tables, _findings(users, by_month, solvers)


ANALYSIS = kept_analysis(
    MEMO,
    made_by(_QUERIES),
    _shown,
    name="user_activity",
    title="Who runs, and when",
    description="Runs per user and per solver, per year and month, per hour of day and weekday.",
    tables=(
        "user_activity",
        "runs_by_solver",
        "runs_by_user_year",
        "runs_by_user_month",
        "runs_by_hour",
        "runs_by_weekday",
    ),
)
