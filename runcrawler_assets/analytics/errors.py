"""Errors: what goes wrong, how often, for whom, how far runs got, and what it cost.

Answers the seed's first question, "what typical errors do users repeat":
runs per error category (the signatures within them are `signatures`'),
categories per user, the stage failed runs stopped at (per solver, in the
solver's own stages: an OpenFOAM case stops at decomposition, an AVBP run
while reading its grid), and the CPU hours spent in runs that failed or were
killed.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    complete_counts,
    counted,
    with_share,
)
from runcrawler_assets.analytics.memo import Memo, kept_analysis, made_by
from runcrawler_assets.records import CATEGORY_NAMES, ERROR_CATEGORIES
from runcrawler_assets.solvers import stages_of

ERROR_CATEGORY_NAMES: tuple[str, ...] = tuple(n for n in CATEGORY_NAMES if n != "none")
NO_STAGE = "no stage in the logs"
SUCCESS_CODE = 0  # the `stage_code` of a run that reached its end (runs-schema.md)


# A partition's runs counted per solver, status, error category and (for failed and killed
# runs) stage reached, with their CPU hours (an exact decimal sum): what every table adds up.
_FAILED = "status IN (" + ", ".join(f"'{status}'" for status in FAILED_STATUSES) + ")"
_COUNTS_SQL = f"""
    SELECT cluster, "user", solver, status, error_category,
           CASE WHEN {_FAILED} THEN stage_code END AS stage_code,
           CASE WHEN {_FAILED} THEN stage END AS stage,
           count(*) AS runs, sum(coalesce(cpu_hours, 0)::DECIMAL(18, 3)) AS cpu_hours
    FROM {{runs}} GROUP BY ALL
"""

# A partition's counts come from its runs alone: kept between refreshes, made again for the
# partitions whose runs changed (issue 16).
MEMO = Memo(
    digests="error_partition_digests",
    kept=("error_counts",),
    columns=(
        "cluster",
        "user",
        "solver",
        "status",
        "error_category",
        "stage_code",
        "stage",
        "cpu_hours",
    ),
    code=_COUNTS_SQL,
    by=("cluster", "user"),
)
_QUERIES = {"error_counts": _COUNTS_SQL}


def category_counts(con: duckdb.DuckDBPyConnection, counts: str) -> pd.DataFrame:
    """One row per error category (all of them, zero included), in the records' order;
    `counts`: the `error_counts` rows, as a query."""
    counted = con.execute(
        f"SELECT error_category AS category, sum(runs)::BIGINT AS runs FROM {counts} "
        "WHERE error_category IS NOT NULL GROUP BY ALL"
    ).df()
    reference = pd.DataFrame(
        {
            "category": [c.name for c in ERROR_CATEGORIES],
            "meaning": [c.meaning for c in ERROR_CATEGORIES],
            "status": [str(c.status) for c in ERROR_CATEGORIES],
        }
    )
    return with_share(complete_counts(reference, counted, on="category"))


def errors_by_user(con: duckdb.DuckDBPyConnection, counts: str) -> pd.DataFrame:
    """Users × error categories: runs per cell, with each user's runs and failure rate;
    `counts`: as `category_counts` reads them."""
    long = con.execute(
        f"""
        SELECT "user", error_category, sum(runs)::BIGINT AS runs FROM {counts}
        WHERE error_category IS NOT NULL AND error_category <> 'none' GROUP BY ALL
        """
    ).df()
    totals = con.execute(
        f"""
        SELECT "user", sum(runs)::BIGINT AS runs,
               coalesce(sum(runs) FILTER (WHERE status IN $failed), 0)::BIGINT
                   AS failed_or_killed
        FROM {counts} GROUP BY ALL ORDER BY "user"
        """,
        {"failed": list(FAILED_STATUSES)},
    ).df()
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


def failure_stages(con: duckdb.DuckDBPyConnection, counts: str) -> pd.DataFrame:
    """How far failed and killed runs got, per solver: runs per last stage reached.

    Each solver has its own stages (AVBP's milestones, OpenFOAM's pipeline of
    applications: `solvers.stages_of`), every one listed, zero included, in the
    order a run goes through them. Solvers with the most failed runs come first;
    `share_pct` is the share of the solver's failed runs. `counts`: as `category_counts`
    reads them.
    """
    observed = con.execute(
        f"""
        WITH labelled AS (
            SELECT solver, stage_code, stage, sum(runs) AS runs FROM {counts}
            WHERE status IN $failed GROUP BY ALL
        )
        SELECT solver, stage_code,
               -- the label most runs carry (ties: the smallest), as `mode` gives it
               arg_min(stage, (-runs, stage)) FILTER (WHERE stage IS NOT NULL) AS stage,
               sum(runs)::BIGINT AS runs
        FROM labelled GROUP BY solver, stage_code
        ORDER BY sum(sum(runs)) OVER (PARTITION BY solver) DESC, solver
        """,
        {"failed": list(FAILED_STATUSES)},
    ).df()
    observed["stage_code"] = observed["stage_code"].astype("Int64")
    frames = [
        complete_counts(
            _stage_reference(solver, group), group[["stage_code", "runs"]], on="stage_code"
        )
        for solver, group in observed.groupby("solver", sort=False)
    ]
    if not frames:
        return with_share(_stage_reference("", observed).iloc[:0].assign(runs=0))
    return with_share(pd.concat(frames, ignore_index=True), within="solver")


def cpu_hours_lost(con: duckdb.DuckDBPyConnection, counts: str) -> pd.DataFrame:
    """CPU hours spent in failed and killed runs, per category, as a share of all CPU hours;
    `counts`: as `category_counts` reads them."""
    return con.execute(
        f"""
        WITH totals AS (SELECT sum(cpu_hours) AS all_hours FROM {counts})
        SELECT error_category, min(status) AS status, sum(runs)::BIGINT AS runs,
               round(sum(cpu_hours), 1)::DOUBLE AS cpu_hours,
               round(100 * sum(cpu_hours)::DOUBLE / any_value(all_hours)::DOUBLE, 1)
                   AS share_of_all_cpu_hours_pct
        FROM {counts}, totals
        WHERE status IN $failed
        GROUP BY error_category
        ORDER BY cpu_hours DESC
        """,
        {"failed": list(FAILED_STATUSES)},
    ).df()


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


def _shown(
    con: duckdb.DuckDBPyConnection, read: Mapping[str, str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables shown, and the findings, from the kept counts."""
    counts = read["error_counts"]
    categories = category_counts(con, counts)
    stages = failure_stages(con, counts)
    lost = cpu_hours_lost(con, counts)
    tables = {
        "error_categories": categories,
        "errors_by_user": errors_by_user(con, counts),
        "failure_stages": stages,
        "cpu_hours_lost": lost,
    }
    return tables, _findings(categories, stages, lost)


ANALYSIS = kept_analysis(
    MEMO,
    made_by(_QUERIES),
    _shown,
    name="error_categories",
    title="Errors",
    description="What goes wrong, how often, for whom, how far runs got, and the CPU hours lost.",
    tables=(
        "error_categories",
        "errors_by_user",
        "failure_stages",
        "cpu_hours_lost",
    ),
)
