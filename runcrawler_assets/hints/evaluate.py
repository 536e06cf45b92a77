"""Rules evaluated over the runs: one hint per run a rule's condition holds for.

The conditions read `RULE_VIEW`, the (filtered) runs with the derived
columns of `rules.DERIVED_COLUMNS` (a run's case and the run before it in its
case, how many runs in a row ended with its error, the typical fix of its
error when the `fixes` analysis was computed). Each condition is bound by
DuckDB before it runs, so a rule that names a column with the wrong type
fails with its name, before any hint is made.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.cases import PARENT_SQL
from runcrawler_assets.analytics.core import RunFilter, query
from runcrawler_assets.hints.rules import Rule, RulesError
from runcrawler_assets.warehouse.accounting_join import has_table

RULE_VIEW = "rule_runs"
HINT_COLUMNS = ["run_id", "run_path", "user", "cluster", "created_at", "rule", "severity", "text"]
SIGNATURES_TABLE = "error_fixes"  # each signature's typical fix (analysis `fixes`)


def rule_runs_sql(con: duckdb.DuckDBPyConnection) -> str:
    """`WITH rule_runs AS (...)`: every run with the derived columns the conditions may read
    (derived over all runs: a run's predecessor may lie before a digest's period)."""
    fixes = has_table(con, SIGNATURES_TABLE)
    fix = "s.typical_fix" if fixes else "CAST(NULL AS VARCHAR)"
    join = f"LEFT JOIN {SIGNATURES_TABLE} s USING (signature_id)" if fixes else ""
    return f"""
        WITH ordered AS (
            SELECT *, {PARENT_SQL} AS case_folder,
                   lag(status) OVER w AS previous_status,
                   lag(error_category) OVER w AS previous_error_category,
                   row_number() OVER w AS position
            FROM runs
            WINDOW w AS (PARTITION BY "user", {PARENT_SQL} ORDER BY created_at, run_path)
        ),
        islands AS (
            SELECT *, sum(CASE WHEN error_category IS NOT DISTINCT FROM previous_error_category
                               THEN 0 ELSE 1 END)
                          OVER (PARTITION BY "user", case_folder ORDER BY position
                                ROWS UNBOUNDED PRECEDING) AS island
            FROM ordered
        ),
        {RULE_VIEW} AS (
            SELECT r.* EXCLUDE (position, island),
                   CASE WHEN r.n_procs > 0 THEN r.n_nodes // r.n_procs END AS nodes_per_process,
                   row_number() OVER (PARTITION BY r."user", r.case_folder, r.island
                                      ORDER BY r.position) AS same_error_in_a_row,
                   {fix} AS typical_fix
            FROM islands r {join}
        )
    """


def _check(con: duckdb.DuckDBPyConnection, rule: Rule, view: str) -> None:
    """Bind the rule's condition (EXPLAIN: nothing runs), or name the rule and the problem."""
    try:
        con.execute(f"EXPLAIN {view} SELECT 1 FROM {RULE_VIEW} WHERE ({rule.condition})")
    except duckdb.Error as error:
        first_line = str(error).splitlines()[0]
        raise RulesError(
            f"rule {rule.name!r}: DuckDB refuses its condition: {first_line}"
        ) from None


def _shown(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "?"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def evaluate_rules(
    con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...], run_filter: RunFilter
) -> pd.DataFrame:
    """`HINT_COLUMNS`: one row per (run, rule) whose condition holds, its hint filled in.

    A rule DuckDB refuses stops the whole file with its name: half the hints would read
    as if the other runs were fine.
    """
    view = rule_runs_sql(con)
    for rule in rules:
        _check(con, rule, view)
    if not rules:
        return pd.DataFrame(columns=HINT_COLUMNS)
    # One pass over the runs for every rule: a column per rule says whether it holds.
    shown = dict.fromkeys(p for rule in rules for p in rule.placeholders)
    holds = [f'coalesce(({rule.condition}), false) AS "holds_{i}"' for i, rule in enumerate(rules)]
    columns = [*(f'"{c}"' for c in HINT_COLUMNS[:5]), *(f'"{p}" AS "p_{p}"' for p in shown)]
    any_holds = " OR ".join(f'"holds_{i}"' for i in range(len(rules)))
    found = query(
        con,
        f"""{view}, checked AS (
            SELECT {", ".join([*columns, *holds])} FROM {RULE_VIEW}
            WHERE run_id IN (SELECT run_id FROM {{runs}})
        )
        SELECT * FROM checked WHERE {any_holds} ORDER BY created_at, run_path""",
        run_filter,
    )
    frames = []
    for i, rule in enumerate(rules):
        matched = found[found[f"holds_{i}"]]
        values = matched[[f"p_{p}" for p in rule.placeholders]].itertuples(index=False, name=None)
        texts = [
            rule.hint.format(**{p: _shown(v) for p, v in zip(rule.placeholders, row, strict=True)})
            for row in values
        ]
        frames.append(
            matched[HINT_COLUMNS[:5]].assign(rule=rule.name, severity=rule.severity, text=texts)
        )
    if all(f.empty for f in frames):
        return pd.DataFrame(columns=HINT_COLUMNS)
    return pd.concat([f for f in frames if not f.empty], ignore_index=True)[HINT_COLUMNS]


def hint_counts(hints: pd.DataFrame, rules: tuple[Rule, ...]) -> pd.DataFrame:
    """Per rule, in the file's order (none left out): its severity, runs and users hinted."""
    counts = hints.groupby("rule").agg(runs=("run_id", "size"), users=("user", "nunique"))
    frame = pd.DataFrame(
        {"rule": [r.name for r in rules], "severity": [r.severity for r in rules]}
    ).merge(counts, left_on="rule", right_index=True, how="left")
    return frame.fillna({"runs": 0, "users": 0}).astype({"runs": "int64", "users": "int64"})
