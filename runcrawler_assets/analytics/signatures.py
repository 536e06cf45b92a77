"""Typical errors, by learned signature: who they hit, when, and what they cost.

Every failed run whose log holds an error message carries a `signature_id`
(given in the warehouse's swap, `warehouse.signatures`): messages a rule
knows are grouped by their masked text, the others (`unknown`) by the
template miner, so the `unknown` slice of the error chart becomes a ranked
list of concrete templates. Ids are stable across crawls. The fix that
usually followed each is `fixes`' table `error_fixes`.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    RunFilter,
    counted,
)
from runcrawler_assets.analytics.memo import Memo, kept_analysis, made_by, staged_queries
from runcrawler_assets.warehouse.accounting_join import has_table
from runcrawler_assets.warehouse.signatures import TEMPLATES_TABLE

TOP_SIGNATURES = 50
SIGNATURE_COLUMNS = [
    "signature_id",
    "error_category",
    "template",
    "runs",
    "users",
    "cpu_hours",
    "first_seen",
    "last_seen",
    "solver",
    "user_names",
    "example_run_path",
]
UNKNOWN = "unknown"


# A partition's runs per signature and error category: their number, CPU hours (an exact
# decimal sum), first and last `created_at` and the last one's path (ties: the greatest),
# and the smallest solver and message (a stable choice), which the table adds up.
_SIGNATURES_SQL = """
    SELECT cluster, "user", signature_id, error_category, count(*) AS runs,
           min(solver) AS solver, min(error_signature) AS error_signature,
           sum(coalesce(cpu_hours, 0)::DECIMAL(18, 3)) AS cpu_hours,
           min(created_at) AS first_seen, max(created_at) AS last_seen,
           arg_max(run_path, (created_at, run_path)) AS example_run_path
    FROM {runs} WHERE signature_id IS NOT NULL GROUP BY ALL
"""

# A partition's rows come from its runs alone: kept between refreshes, made again for the
# partitions whose runs changed (issue 16).
MEMO = Memo(
    digests="signature_partition_digests",
    kept=("signature_partitions",),
    columns=(
        "cluster",
        "user",
        "signature_id",
        "error_category",
        "solver",
        "error_signature",
        "cpu_hours",
        "created_at",
        "run_path",
    ),
    code=_SIGNATURES_SQL,
    by=("cluster", "user"),
)
_QUERIES = {"signature_partitions": _SIGNATURES_SQL}


def _table(con: duckdb.DuckDBPyConnection, partitions: str) -> pd.DataFrame:
    """One row per signature: its template, runs, users, first and last seen, CPU hours;
    `partitions`: the `signature_partitions` rows, as a query."""
    learned = has_table(con, TEMPLATES_TABLE)
    template = "t.template" if learned else "NULL"
    join = f"LEFT JOIN {TEMPLATES_TABLE} t USING (signature_id)" if learned else ""
    return con.execute(
        f"""
        WITH categories AS (
            SELECT signature_id, error_category, sum(runs) AS runs FROM {partitions}
            WHERE error_category IS NOT NULL GROUP BY ALL
        ),
        usual AS (  -- the category most runs carry (ties: the smallest), as `mode` gives it
            SELECT signature_id, arg_min(error_category, (-runs, error_category))
                AS error_category
            FROM categories GROUP BY signature_id
        )
        SELECT p.signature_id, min(p.solver) AS solver,
               any_value(u.error_category) AS error_category,
               coalesce(min({template}), min(p.error_signature)) AS template,  -- min: stable
               sum(p.runs)::BIGINT AS runs, count(DISTINCT p."user") AS users,
               string_agg(DISTINCT p."user", ', ' ORDER BY p."user") AS user_names,
               min(p.first_seen) AS first_seen, max(p.last_seen) AS last_seen,
               round(sum(p.cpu_hours), 1)::DOUBLE AS cpu_hours,
               arg_max(p.example_run_path, (p.last_seen, p.example_run_path))
                   AS example_run_path
        FROM {partitions} p LEFT JOIN usual u USING (signature_id) {join}
        GROUP BY p.signature_id
        ORDER BY runs DESC, users DESC, p.signature_id
        """
    ).df()


def signature_table(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """The table of the signatures of the runs `run_filter` keeps, made now (what the fixes
    of those runs are listed by)."""
    [staged] = staged_queries(con, _QUERIES, run_filter).values()
    try:
        return _table(con, f"({staged.select})")
    finally:
        staged.drop()


def _findings(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return ["No failed run printed an error message."]
    first = table.iloc[0]
    findings = [
        f"{counted(len(table), 'distinct error signature')}; the most repeated, "
        f"“{first['template']}”, hit {counted(int(first['runs']), 'run')} of "
        f"{counted(int(first['users']), 'user')}."
    ]
    learned = table[table["error_category"] == UNKNOWN]
    if len(learned):
        findings.append(
            f"Messages no rule knows fall into {counted(len(learned), 'learned template')}; the "
            f"most common, “{learned.iloc[0]['template']}”, hit "
            f"{counted(int(learned.iloc[0]['runs']), 'run')}."
        )
    return findings


def _shown(
    con: duckdb.DuckDBPyConnection, read: Mapping[str, str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables shown and drawn, and the findings, from the kept rows."""
    table = _table(con, read["signature_partitions"])[SIGNATURE_COLUMNS]
    unknown = table[table["error_category"] == UNKNOWN].head(TOP_SIGNATURES)
    tables = {"error_signatures": table, "unknown_templates": unknown.reset_index(drop=True)}
    return tables, _findings(table)


ANALYSIS = kept_analysis(
    MEMO,
    made_by(_QUERIES),
    _shown,
    name="error_signatures",
    title="Typical errors",
    description="Errors grouped by signature (messages no rule knows grouped into learned "
    "templates), ranked by runs: who they hit, when, and what they cost.",
    tables=("error_signatures",),
    chart_tables=("unknown_templates",),
)
