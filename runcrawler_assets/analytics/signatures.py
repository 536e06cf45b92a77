"""Typical errors, by learned signature: who they hit, when, and what they cost.

Every failed run whose log holds an error message carries a `signature_id`
(given in the warehouse's swap, `warehouse.signatures`): messages a rule
knows are grouped by their masked text, the others (`unknown`) by the
template miner, so the `unknown` slice of the error chart becomes a ranked
list of concrete templates. Ids are stable across crawls. The fix that
usually followed each is `fixes`' table `error_fixes`.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    Analysis,
    AnalysisResult,
    RunFilter,
    counted,
    exact_sum,
    query,
)
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


def signature_table(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per signature: its template, runs, users, first and last seen, CPU hours."""
    learned = has_table(con, TEMPLATES_TABLE)
    template = "t.template" if learned else "NULL"
    join = f"LEFT JOIN {TEMPLATES_TABLE} t USING (signature_id)" if learned else ""
    return query(
        con,
        f"""
        SELECT r.signature_id, min(r.solver) AS solver,
               mode(r.error_category ORDER BY r.error_category) AS error_category,
               coalesce(min({template}), min(r.error_signature)) AS template,  -- min: stable
               count(*) AS runs, count(DISTINCT r."user") AS users,
               string_agg(DISTINCT r."user", ', ' ORDER BY r."user") AS user_names,
               min(r.created_at) AS first_seen, max(r.created_at) AS last_seen,
               {exact_sum("r.cpu_hours")} AS cpu_hours,
               arg_max(r.run_path, r.created_at) AS example_run_path
        FROM {{runs}} r {join}
        WHERE r.signature_id IS NOT NULL
        GROUP BY r.signature_id
        ORDER BY runs DESC, users DESC, r.signature_id
        """,
        run_filter,
    )


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


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table = signature_table(con, run_filter)[SIGNATURE_COLUMNS]
    unknown = table[table["error_category"] == UNKNOWN].head(TOP_SIGNATURES)
    return AnalysisResult(
        tables={"error_signatures": table, "unknown_templates": unknown.reset_index(drop=True)},
        findings=_findings(table),
    )


ANALYSIS = Analysis(
    name="error_signatures",
    title="Typical errors",
    description="Errors grouped by signature (messages no rule knows grouped into learned "
    "templates), ranked by runs: who they hit, when, and what they cost.",
    compute=compute,
    tables=("error_signatures",),
    chart_tables=("unknown_templates",),
)
