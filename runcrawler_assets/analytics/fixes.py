"""What fixed it: each failure, the next success of the same case, and what changed between them.

For each failed or killed run, the next run of the same user on the same
case (`cases`) that succeeded, within `MAX_DAYS_TO_FIX` days; the parameters
that differ between the two are the fix. A next success that changed nothing
is a *rerun* (the failure was transient, or the cause was outside the
parameters), one that only points at another run's solution is a *restart*;
neither is counted as a fix. Aggregated over users: the keywords whose
change fixed each error signature, from targeted fixes only (at most
`MAX_TARGETED_CHANGES` keywords changed: a user who changed everything says
little about which change mattered), weighted so that a fix changing one
keyword counts fully and one changing k keywords counts 1/k for each.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.cases import (
    MESH_CASE_SQL,
    PARENT_SQL,
    changed_keywords,
    continued_folders,
    params_of,
)
from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    NO_RUNS,
    Analysis,
    AnalysisResult,
    RunFilter,
    query,
)

MAX_DAYS_TO_FIX = 30
MAX_TARGETED_CHANGES = 3
MIN_TIMES_TYPICAL = 2  # a fix seen once is an anecdote, not a typical fix
TOP_VALUES = 3
FIX, RERUN, RESTART = "fix", "rerun", "restart"
FIX_COLUMNS = [
    "failed_run_path",
    "fixing_run_path",
    "user",
    "solver",
    "error_category",
    "signature_id",
    "kind",
    "changed_keywords",
    "changes",
    "days_later",
]
TYPICAL_COLUMNS = [
    "signature_id",
    "error_category",
    "keyword",
    "weight",
    "times",
    "alone",
    "users",
    "new_values",
]


def fix_pairs(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Each failed or killed run with the next success of its case (same folder, or same
    mesh and run name) by the same user: their paths, ids and parameters."""
    return query(
        con,
        f"""
        WITH r AS (
            SELECT run_id, run_path, "user", solver, status, created_at, error_category,
                   signature_id, params::VARCHAR AS params, {PARENT_SQL} AS parent,
                   {MESH_CASE_SQL} AS mesh_case
            FROM {{runs}} WHERE created_at IS NOT NULL
        ),
        failed AS (SELECT * FROM r WHERE status IN $failed),
        success AS (SELECT * FROM r WHERE status = 'success'),
        candidates AS (
            SELECT f.run_id, s.run_id AS fixing_id, s.created_at AS fixing_at
            FROM failed f ASOF JOIN success s
              ON f."user" = s."user" AND f.parent = s.parent AND f.created_at < s.created_at
            UNION ALL
            SELECT f.run_id, s.run_id, s.created_at
            FROM failed f ASOF JOIN success s
              ON f."user" = s."user" AND f.mesh_case = s.mesh_case
                 AND f.created_at < s.created_at
        ),
        next_success AS (
            SELECT run_id, arg_min(fixing_id, fixing_at) AS fixing_id
            FROM candidates GROUP BY run_id
        )
        SELECT f.run_path AS failed_run_path, s.run_path AS fixing_run_path, f."user",
               f.solver, f.error_category, f.signature_id, f.params AS failed_params,
               s.params AS fixing_params,
               round(epoch(s.created_at - f.created_at) / 86400, 2) AS days_later
        FROM next_success n JOIN failed f USING (run_id) JOIN success s
          ON s.run_id = n.fixing_id
        WHERE s.created_at - f.created_at <= to_days($max_days)
        ORDER BY f.created_at, f.run_path
        """,
        run_filter,
        failed=list(FAILED_STATUSES),
        max_days=MAX_DAYS_TO_FIX,
    )


def _kind(changes: list[tuple[str, str, str]], before: dict[str, str]) -> str:
    """Rerun (nothing changed), restart (only paths into another run's folder), or fix."""
    if not changes:
        return RERUN
    old = continued_folders(before)
    if all(continued_folders({k: after}) - old for k, _, after in changes):
        return RESTART
    return FIX


def fixes(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`FIX_COLUMNS`: one row per failure that a later success of its case followed; and the
    fixes' changes, one row per keyword (`_CHANGE_COLUMNS`), for `typical_fixes`."""
    pairs = fix_pairs(con, run_filter)
    kinds, keywords, texts, changed = [], [], [], []
    for row, failed, fixing in zip(
        pairs.itertuples(index=False), pairs["failed_params"], pairs["fixing_params"], strict=True
    ):
        before = params_of(failed)
        changes = changed_keywords(before, params_of(fixing))
        kind = _kind(changes, before)
        kinds.append(kind)
        keywords.append([k for k, _, _ in changes])
        texts.append("; ".join(f"{k}: {b or '(unset)'} → {a or '(unset)'}" for k, b, a in changes))
        if kind == FIX and len(changes) <= MAX_TARGETED_CHANGES:
            changed += [
                (
                    row.signature_id,
                    row.error_category,
                    k,
                    1 / len(changes),
                    len(changes) == 1,
                    row.user,
                    a,
                )
                for k, _, a in changes
            ]
    table = pairs.assign(kind=kinds, changed_keywords=keywords, changes=texts)[FIX_COLUMNS]
    return table, pd.DataFrame(changed, columns=_CHANGE_COLUMNS)


_CHANGE_COLUMNS = ["signature_id", "error_category", "keyword", "w", "alone", "user", "new"]


def typical_fixes(changes: pd.DataFrame) -> pd.DataFrame:
    """`TYPICAL_COLUMNS`: per signature, the keywords whose targeted change fixed it,
    heaviest first, with the new values users set most (`new_values`: "0.7 (12), 0.5 (3)")."""
    if changes.empty:
        return pd.DataFrame(columns=TYPICAL_COLUMNS)
    grouped = changes.groupby(["signature_id", "error_category", "keyword"], dropna=False)
    out = grouped.agg(
        weight=("w", "sum"), times=("w", "size"), alone=("alone", "sum"), users=("user", "nunique")
    ).reset_index()
    out["weight"] = out["weight"].round(2)
    out["new_values"] = grouped["new"].agg(_top_values).to_numpy()
    out = out.sort_values(["signature_id", "weight", "times"], ascending=[True, False, False])
    return out[TYPICAL_COLUMNS].reset_index(drop=True)


def _top_values(values: pd.Series) -> str:
    counts = values.value_counts().head(TOP_VALUES)
    return ", ".join(f"{value or '(unset)'} ({n})" for value, n in counts.items())


def best_fix_per_signature(typical: pd.DataFrame) -> pd.DataFrame:
    """Each signature's heaviest fix seen at least `MIN_TIMES_TYPICAL` times, as a
    sentence-ready row: signature_id, typical_fix."""
    typical = typical[typical["times"] >= MIN_TIMES_TYPICAL]
    if typical.empty:
        return pd.DataFrame(columns=["signature_id", "typical_fix"])
    best = typical.sort_values(["weight", "times"], ascending=False).drop_duplicates("signature_id")
    text = [
        f"change {r.keyword} (to {r.new_values}; {r.times} times, {r.users} users)"
        for r in best.itertuples(index=False)
    ]
    return pd.DataFrame({"signature_id": best["signature_id"].to_numpy(), "typical_fix": text})


def _findings(table: pd.DataFrame, typical: pd.DataFrame) -> list[str]:
    if table.empty:
        return [NO_RUNS if typical.empty else "No failure was followed by a success of its case."]
    counts = table["kind"].value_counts()
    findings = [
        f"{len(table)} failed or killed runs were followed within {MAX_DAYS_TO_FIX} days by a "
        f"success of the same case: {counts.get(FIX, 0)} after a change of parameters, "
        f"{counts.get(RERUN, 0)} reruns that changed nothing, {counts.get(RESTART, 0)} "
        "restarts from a run's solution."
    ]
    strong = typical[typical["times"] >= MIN_TIMES_TYPICAL].sort_values("weight", ascending=False)
    for row in strong.drop_duplicates("signature_id").head(3).itertuples(index=False):
        findings.append(
            f"Runs failing with {row.signature_id} ({row.error_category}) were fixed by changing "
            f"{row.keyword} ({row.users} users, {row.times} times; most often to "
            f"{row.new_values.split(' (')[0]})."
        )
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table, changes = fixes(con, run_filter)
    typical = typical_fixes(changes)
    return AnalysisResult(
        tables={"fixes": table, "typical_fixes": typical},
        findings=_findings(table, typical),
    )


ANALYSIS = Analysis(
    name="fixes",
    title="What fixed it",
    description="Each failed run's next success on the same case and the parameters changed "
    "between them; reruns and restarts apart; the typical fix of each error.",
    compute=compute,
    tables=("fixes", "typical_fixes"),
)
