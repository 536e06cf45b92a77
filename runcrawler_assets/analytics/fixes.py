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

from runcrawler_assets.analytics.cases import INTO_FOLDER_REGEX, MESH_CASE_SQL, PARENT_SQL
from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    NO_RUNS,
    Analysis,
    AnalysisResult,
    RunFilter,
    query,
)
from runcrawler_assets.analytics.signatures import signature_table

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
ERROR_FIX_COLUMNS = [
    "signature_id",
    "error_category",
    "template",
    "runs",
    "users",
    "typical_fix",
    "fixed_runs",
    "reruns",
    "restarts",
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


_PAIRS_SQL = f"""
    WITH r AS (
        SELECT run_id, run_path, "user", solver, status, created_at, error_category,
               signature_id, {PARENT_SQL} AS parent, {MESH_CASE_SQL} AS mesh_case
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
          ON f."user" = s."user" AND f.mesh_case = s.mesh_case AND f.created_at < s.created_at
    ),
    next_success AS (
        SELECT run_id, arg_min(fixing_id, fixing_at) AS fixing_id FROM candidates GROUP BY run_id
    ),
    paired AS (
        SELECT f.run_id AS failed_id, s.run_id AS fixing_id, f.run_path AS failed_run_path,
               s.run_path AS fixing_run_path, f."user", f.solver, f.error_category,
               f.signature_id, f.created_at,
               round(epoch(s.created_at - f.created_at) / 86400, 2) AS days_later
        FROM next_success n JOIN failed f USING (run_id) JOIN success s ON s.run_id = n.fixing_id
        WHERE s.created_at - f.created_at <= to_days($max_days)
    ),
    -- the parameters joined last, to the pairs only (joins above carry ids, not texts), as
    -- maps; each pair's changed keywords found by lookups in its own row, none per keyword
    maps AS (
        SELECT p.* EXCLUDE (failed_id, fixing_id), b.params::VARCHAR AS before_text,
               json_transform(b.params, '"MAP(VARCHAR, VARCHAR)"') AS b,
               json_transform(a.params, '"MAP(VARCHAR, VARCHAR)"') AS a
        FROM paired p JOIN runs b ON b.run_id = p.failed_id JOIN runs a ON a.run_id = p.fixing_id
    ),
    diffs AS (
        SELECT *, list_sort(list_filter(
                      list_distinct(list_concat(coalesce(map_keys(b), []),
                                                coalesce(map_keys(a), []))),
                      lambda k: b[k] IS DISTINCT FROM a[k])) AS keys
        FROM maps
    ),
    changed AS (
        SELECT * EXCLUDE (before_text, b, a, keys), keys AS changed_keywords,
               list_transform(keys, lambda k: coalesce(a[k], '')) AS afters,
               array_to_string(list_transform(keys, lambda k: k || ': '
                   || coalesce(nullif(b[k], ''), '(unset)') || ' → '
                   || coalesce(nullif(a[k], ''), '(unset)')), '; ') AS changes,
               -- every change a path into another run's folder the failed run did not name
               list_bool_and(list_transform(keys, lambda k:
                   regexp_extract(coalesce(a[k], ''), '{INTO_FOLDER_REGEX}', 1) <> ''
                   AND NOT contains(before_text, '../'
                       || regexp_extract(coalesce(a[k], ''), '{INTO_FOLDER_REGEX}', 1) || '/')))
                   AS only_continues
        FROM diffs
    )
"""


_CHANGES = "rc_fix_changes"  # the pairs' changes, computed once per analysis (temporary)


def fixes(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`FIX_COLUMNS`: one row per failure that a later success of its case followed; and
    the targeted fixes' changes, one row per keyword, for `typical_fixes`.

    All in DuckDB, the parameters compared key by key within each pair (a million runs
    hold a few hundred thousand pairs, too many for Python), into a temporary table read
    twice.
    """
    params = {"failed": list(FAILED_STATUSES), "max_days": MAX_DAYS_TO_FIX}
    try:
        query(
            con,
            f"CREATE OR REPLACE TEMP TABLE {_CHANGES} AS "
            + _PAIRS_SQL
            + f"""
            SELECT * EXCLUDE (only_continues),
                   CASE WHEN len(changed_keywords) = 0 THEN '{RERUN}'
                        WHEN only_continues THEN '{RESTART}' ELSE '{FIX}' END AS kind
            FROM changed
            """,
            run_filter,
            **params,
        )
        table = con.execute(f"SELECT * FROM {_CHANGES} ORDER BY created_at, failed_run_path").df()
        changes = con.execute(
            f"""
            SELECT signature_id, error_category, unnest(changed_keywords) AS keyword,
                   1 / len(changed_keywords) AS w, len(changed_keywords) = 1 AS alone,
                   "user", unnest(afters) AS new
            FROM {_CHANGES} WHERE kind = '{FIX}' AND len(changed_keywords) <= $targeted
            """,
            {"targeted": MAX_TARGETED_CHANGES},
        ).df()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_CHANGES}")
    return table[FIX_COLUMNS], changes


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


def _findings(table: pd.DataFrame, errors: pd.DataFrame) -> list[str]:
    if table.empty:
        return [NO_RUNS if errors.empty else "No failure was followed by a success of its case."]
    counts = table["kind"].value_counts()
    findings = [
        f"{len(table)} failed or killed runs were followed within {MAX_DAYS_TO_FIX} days by a "
        f"success of the same case: {counts.get(FIX, 0)} after a change of parameters, "
        f"{counts.get(RERUN, 0)} reruns that changed nothing, {counts.get(RESTART, 0)} "
        "restarts from a run's solution."
    ]
    for row in errors[errors["typical_fix"].notna()].head(3).itertuples(index=False):
        findings.append(
            f"“{row.template}” ({row.runs} runs, {row.error_category}): typically fixed by "
            f"{row.typical_fix}."
        )
    return findings


def error_fixes(
    signatures: pd.DataFrame, table: pd.DataFrame, typical: pd.DataFrame
) -> pd.DataFrame:
    """`ERROR_FIX_COLUMNS`: each typical error (by signature, most runs first) with its
    typical fix, and how many of its failures the next success fixed, reran or restarted."""
    kinds = table.pivot_table(
        index="signature_id", columns="kind", values="failed_run_path", aggfunc="count"
    ).reindex(columns=[FIX, RERUN, RESTART], fill_value=0)
    kinds.columns = ["fixed_runs", "reruns", "restarts"]
    out = signatures.merge(kinds, on="signature_id", how="left").merge(
        best_fix_per_signature(typical), on="signature_id", how="left"
    )
    counts = ["fixed_runs", "reruns", "restarts"]
    out[counts] = out[counts].fillna(0).astype("int64")
    return out[ERROR_FIX_COLUMNS]


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table, changes = fixes(con, run_filter)
    typical = typical_fixes(changes)
    errors = error_fixes(signature_table(con, run_filter), table, typical)
    return AnalysisResult(
        tables={"fixes": table, "error_fixes": errors, "typical_fixes": typical},
        findings=_findings(table, errors),
    )


ANALYSIS = Analysis(
    name="fixes",
    title="What fixed it",
    description="Each typical error with the change that usually fixed it: each failed run's "
    "next success on the same case and the parameters changed between them, reruns and "
    "restarts apart.",
    compute=compute,
    tables=("fixes", "error_fixes", "typical_fixes"),
)
