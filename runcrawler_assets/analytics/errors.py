"""Errors: what goes wrong, how often, for whom, how far runs got, and what it cost.

Answers the seed's first question, "what typical errors do users repeat":
runs per error category (the signatures within them are `signatures`'),
categories per user, the stage failed runs stopped at (per solver, in the
solver's own stages: an OpenFOAM case stops at decomposition, an AVBP run
while reading its grid), and the CPU hours spent in runs that failed or were
killed.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    Analysis,
    AnalysisResult,
    RunFilter,
    complete_counts,
    counted,
    exact_sum,
    query,
    with_share,
)
from runcrawler_assets.records import CATEGORY_NAMES, ERROR_CATEGORIES
from runcrawler_assets.solvers import stages_of

ERROR_CATEGORY_NAMES: tuple[str, ...] = tuple(n for n in CATEGORY_NAMES if n != "none")
NO_STAGE = "no stage in the logs"
SUCCESS_CODE = 0  # the `stage_code` of a run that reached its end (runs-schema.md)


def category_counts(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per error category (all of them, zero included), in the records' order."""
    counts = query(
        con,
        "SELECT error_category AS category, count(*) AS runs FROM {runs} "
        "WHERE error_category IS NOT NULL GROUP BY ALL",
        run_filter,
    )
    reference = pd.DataFrame(
        {
            "category": [c.name for c in ERROR_CATEGORIES],
            "meaning": [c.meaning for c in ERROR_CATEGORIES],
            "status": [str(c.status) for c in ERROR_CATEGORIES],
        }
    )
    return with_share(complete_counts(reference, counts, on="category"))


def errors_by_user(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Users × error categories: runs per cell, with each user's runs and failure rate."""
    long = query(
        con,
        """
        SELECT "user", error_category, count(*) AS runs FROM {runs}
        WHERE error_category IS NOT NULL AND error_category <> 'none' GROUP BY ALL
        """,
        run_filter,
    )
    totals = query(
        con,
        """
        SELECT "user", count(*) AS runs,
               count(*) FILTER (WHERE status IN $failed) AS failed_or_killed
        FROM {runs} GROUP BY ALL ORDER BY "user"
        """,
        run_filter,
        failed=list(FAILED_STATUSES),
    )
    wide = long.pivot_table(
        index="user", columns="error_category", values="runs", aggfunc="sum", fill_value=0
    )
    wide = wide.reindex(columns=list(ERROR_CATEGORY_NAMES), fill_value=0)
    frame = totals.merge(wide, left_on="user", right_index=True, how="left")
    frame[list(ERROR_CATEGORY_NAMES)] = frame[list(ERROR_CATEGORY_NAMES)].fillna(0).astype("int64")
    return frame.sort_values("failed_or_killed", ascending=False, kind="stable")


def _stage_reference(solver: str, observed: pd.DataFrame) -> pd.DataFrame:
    """The stages a failed run of `solver` can stop at, in the solver's order: none reached,
    then the stages its parser declares (success left out), then any other code the runs
    carry (a parser that declares none, an older parser's codes) with the runs' own label."""
    declared = [s for s in stages_of(solver) if s.code != SUCCESS_CODE]
    codes = {s.code for s in declared}
    others = observed[observed["stage_code"].notna() & ~observed["stage_code"].isin(codes)]
    others = others.sort_values("stage_code")
    return pd.DataFrame(
        {
            "solver": solver,
            "stage_code": pd.array(
                [None, *(s.code for s in declared), *others["stage_code"]], dtype="Int64"
            ),
            "stage": [NO_STAGE, *(s.label for s in declared), *others["stage"]],
        }
    )


def failure_stages(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """How far failed and killed runs got, per solver: runs per last stage reached.

    Each solver has its own stages (AVBP's milestones, OpenFOAM's pipeline of
    applications: `solvers.stages_of`), every one listed, zero included, in the
    order a run goes through them. Solvers with the most failed runs come first;
    `share_pct` is the share of the solver's failed runs.
    """
    counts = query(
        con,
        """
        SELECT solver, stage_code, mode(stage ORDER BY stage) AS stage, count(*) AS runs
        FROM {runs} WHERE status IN $failed GROUP BY solver, stage_code
        ORDER BY sum(count(*)) OVER (PARTITION BY solver) DESC, solver
        """,
        run_filter,
        failed=list(FAILED_STATUSES),
    )
    counts["stage_code"] = counts["stage_code"].astype("Int64")
    frames = [
        complete_counts(
            _stage_reference(solver, observed), observed[["stage_code", "runs"]], on="stage_code"
        )
        for solver, observed in counts.groupby("solver", sort=False)
    ]
    if not frames:
        return with_share(_stage_reference("", counts).iloc[:0].assign(runs=0))
    return with_share(pd.concat(frames, ignore_index=True), within="solver")


def cpu_hours_lost(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """CPU hours spent in failed and killed runs, per category, as a share of all CPU hours."""
    return query(
        con,
        f"""
        WITH totals AS (SELECT sum(cpu_hours) AS all_hours FROM {{runs}})
        SELECT error_category, any_value(status) AS status, count(*) AS runs,
               {exact_sum("cpu_hours")} AS cpu_hours,
               round(100 * sum(coalesce(cpu_hours, 0)) / any_value(all_hours), 1)
                   AS share_of_all_cpu_hours_pct
        FROM {{runs}}, totals
        WHERE status IN $failed
        GROUP BY error_category
        ORDER BY cpu_hours DESC
        """,
        run_filter,
        failed=list(FAILED_STATUSES),
    )


def _findings(categories: pd.DataFrame, stages: pd.DataFrame, lost: pd.DataFrame) -> list[str]:
    errors = categories[categories["category"] != "none"]
    total = int(categories["runs"].sum())
    failed = int(errors["runs"].sum())
    if total == 0:
        return ["No finished runs match the filter."]
    top = errors.sort_values("runs", ascending=False).iloc[0]
    findings = [
        f"{failed} of {total} finished runs ({100 * failed / total:.0f} %) did not succeed; "
        f"the most common cause is {top['category']} ({counted(int(top['runs']), 'run')})."
    ]
    for solver, group in stages.groupby("solver", sort=False):
        stage = group.sort_values("runs", ascending=False, kind="stable").iloc[0]
        findings.append(
            f"Failed and killed {solver} runs most often stopped at: {stage['stage']} "
            f"({stage['share_pct']:.0f} %)."
        )
    if not lost.empty:
        findings.append(
            f"{lost['cpu_hours'].sum():,.0f} CPU hours "
            f"({lost['share_of_all_cpu_hours_pct'].sum():.0f} % of all) went into runs that "
            f"failed or were killed, most in {lost.iloc[0]['error_category']}."
        )
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    categories = category_counts(con, run_filter)
    stages = failure_stages(con, run_filter)
    lost = cpu_hours_lost(con, run_filter)
    return AnalysisResult(
        tables={
            "error_categories": categories,
            "errors_by_user": errors_by_user(con, run_filter),
            "failure_stages": stages,
            "cpu_hours_lost": lost,
        },
        findings=_findings(categories, stages, lost),
    )


ANALYSIS = Analysis(
    name="error_categories",
    title="Errors",
    description="What goes wrong, how often, for whom, how far runs got, and the CPU hours lost.",
    compute=compute,
    tables=(
        "error_categories",
        "errors_by_user",
        "failure_stages",
        "cpu_hours_lost",
    ),
)
