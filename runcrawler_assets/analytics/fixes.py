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

from runcrawler_assets.analytics.core import (
    FAILED_STATUSES,
    NO_RUNS,
    Analysis,
    AnalysisResult,
    RunFilter,
    StagedTable,
    counted,
    query,
    temporary_name,
)
from runcrawler_assets.analytics.memo import Memo, key_digests, make_again
from runcrawler_assets.analytics.signatures import signature_table
from runcrawler_assets.warehouse.cases import INTO_FOLDER_REGEX

MAX_DAYS_TO_FIX = 30
MAX_TARGETED_CHANGES = 3
MIN_TIMES_TYPICAL = 2  # a fix seen once is an anecdote, not a typical fix
TOP_VALUES = 3
FIX, RERUN, RESTART = "fix", "rerun", "restart"
KIND_COLUMNS = {FIX: "fixed_runs", RERUN: "reruns", RESTART: "restarts"}
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
    "failed_at",
    "changed_to",
]
ORDER = "failed_at, failed_run_path"  # the `fixes` table's
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


# Instants as ASOF keys: a run's `created_at` in microseconds, shifted left by 64 bits, plus
# 64 bits that order runs started at the same instant (HUGEINT).
_INSTANT = "epoch_us(created_at)::HUGEINT * 18446744073709551616"
_LAST_OF_INSTANT = "18446744073709551615"

# Each failed or killed run's next success on one of its cases, within `$max_days` days.
# Both cases of a run in one ASOF join, the run once per case (its folder, kind 1, and its
# mesh and name, kind 2), each case known by a 64-bit hash of user, kind and case: the join
# sorts both sides by it, a third faster than by the three (at a million runs). Runs cross
# the join and the grouping as 64-bit hashes of their `run_id`, their columns joined back
# last, to the pairs alone (at a million runs 1.1 s, against 1.4 s joining the failures'
# strings before the grouping). Instants (`_INSTANT`) make the next success one choice,
# always the same: a success's low bits are a hash of its path, a failure's the largest, so
# that the next success starts strictly later and, of two that start together, the same
# one is named at every refresh. (A collision of two hashes, ~1e-8 at a million runs, would
# mix two cases or two runs.)
_PAIRS_SQL = f"""
    WITH outcomes AS (
        SELECT hash(run_id) AS run_key, created_at, status = 'success' AS succeeded,
               {_INSTANT} + if(status = 'success', hash(run_path), {_LAST_OF_INSTANT})
                   AS instant,
               unnest([if(case_folder IS NULL, NULL, hash("user", 1, case_folder)),
                       if(mesh_case IS NULL, NULL, hash("user", 2, mesh_case))]) AS k
        FROM {{runs}}
        WHERE created_at IS NOT NULL AND (status IN $failed OR status = 'success')
    ),
    cases AS (FROM outcomes WHERE k IS NOT NULL),
    candidates AS (
        SELECT f.run_key, s.run_key AS fixing_key, s.instant AS fixing_instant,
               s.created_at AS fixing_at
        FROM (FROM cases WHERE NOT succeeded) f
        ASOF JOIN (FROM cases WHERE succeeded) s ON f.k = s.k AND f.instant < s.instant
    ),
    next_success AS (
        SELECT run_key, arg_min(fixing_key, fixing_instant) AS fixing_key,
               min(fixing_at) AS fixing_at
        FROM candidates GROUP BY run_key
    )
    SELECT f.run_id AS failed_id, x.run_id AS fixing_id, f.run_path AS failed_run_path,
           x.run_path AS fixing_run_path, f."user", f.solver, f.error_category,
           f.signature_id, f.created_at,
           round(epoch(n.fixing_at - f.created_at) / 86400, 2) AS days_later,
           f.params_digest AS before_key, x.params_digest AS after_key
    FROM next_success n JOIN {{runs}} f ON hash(f.run_id) = n.run_key
        JOIN {{runs}} x ON hash(x.run_id) = n.fixing_key
    WHERE n.fixing_at - f.created_at <= to_days($max_days)
"""


def _same_couple(one: str, other: str) -> str:
    """SQL: the rows `one` and `other` (table aliases) hold the same couple of parameter
    sets (their digests, either missing when a run has no parameters)."""
    return (
        f"{one}.before_key IS NOT DISTINCT FROM {other}.before_key "
        f"AND {one}.after_key IS NOT DISTINCT FROM {other}.after_key"
    )


# What changed between each distinct couple of parameter sets among the pairs (`{pairs}`,
# `_PAIRS_SQL`'s table) not among those of `{known}` (a table of couples), and so the kind of
# their pairs: rows of the `fix_changes` table. What changed depends on the two sets alone
# (known by their digests, MD5s of the parameters' text), and runs share few: each distinct
# couple is compared once (a million runs: 294,580 pairs, 15,161 couples), its texts read
# last by id (the pairs carry ids, not texts), as maps, by lookups in its own row (none per
# key). The new values as a JSON list (`changed_to`).
_COUPLES_SQL = f"""
    WITH couples AS (
        SELECT before_key, after_key, any_value(failed_id) AS failed_id,
               any_value(fixing_id) AS fixing_id
        FROM temp.{{pairs}} p
        WHERE NOT EXISTS (SELECT 1 FROM {{known}} k WHERE {_same_couple("k", "p")})
        GROUP BY before_key, after_key
    ),
    texts AS (  -- in one scan of `runs`' parameters (a million runs: 0.2 s less than two)
        SELECT run_id, params FROM {{runs}}
        WHERE run_id IN (SELECT failed_id FROM couples UNION ALL SELECT fixing_id FROM couples)
    ),
    maps AS (
        SELECT c.before_key, c.after_key, b.params AS before,
               json_transform(b.params, '"MAP(VARCHAR, VARCHAR)"') AS b,
               json_transform(a.params, '"MAP(VARCHAR, VARCHAR)"') AS a
        FROM couples c JOIN texts b ON b.run_id = c.failed_id
            JOIN texts a ON a.run_id = c.fixing_id
    ),
    diffs AS (
        SELECT *, list_sort(list_filter(
                      list_distinct(list_concat(coalesce(map_keys(b), []),
                                                coalesce(map_keys(a), []))),
                      lambda k: b[k] IS DISTINCT FROM a[k])) AS keys
        FROM maps
    ),
    changed AS (
        SELECT before_key, after_key, keys AS changed_keywords,
               to_json(list_transform(keys, lambda k: coalesce(a[k], '')))::VARCHAR
                   AS changed_to,
               array_to_string(list_transform(keys, lambda k: k || ': '
                   || coalesce(nullif(b[k], ''), '(unset)') || ' → '
                   || coalesce(nullif(a[k], ''), '(unset)')), '; ') AS changes,
               -- every change a path into another run's folder the failed run did not name
               list_bool_and(list_transform(keys, lambda k:
                   regexp_extract(coalesce(a[k], ''), '{INTO_FOLDER_REGEX}', 1) <> ''
                   AND NOT contains(before::VARCHAR, '../'
                       || regexp_extract(coalesce(a[k], ''), '{INTO_FOLDER_REGEX}', 1) || '/')))
                   AS only_continues
        FROM diffs
    )
    SELECT before_key, after_key, changed_keywords, changed_to, changes,
           CASE WHEN len(changed_keywords) = 0 THEN '{RERUN}'
                WHEN only_continues THEN '{RESTART}' ELSE '{FIX}' END AS kind
    FROM changed
"""
NONE_KNOWN = "(SELECT NULL AS before_key, NULL AS after_key WHERE false)"
# A refresh that keeps users' pairs keeps the couples compared before: it compares the others
# (`_COUPLES_SQL`'s `{known}`), then stores them beside the kept ones still paired, after the
# pairs (`stored_tables`' order) so that this condition on `fix_changes` sees the new pairs.
UNPAIRED = f"NOT EXISTS (SELECT 1 FROM fix_pairs p WHERE {_same_couple('p', 'fix_changes')})"

# The pairs as the `fix_pairs` table keeps them (from `_PAIRS_SQL`'s table `{pairs}`): what
# changed is the couple's, stored once in `fix_changes`, not in each of its pairs (the
# strings repeated per pair made most of the write: at a million runs 1.2 s, 0.4 s without).
_STORED_PAIRS_SQL = (
    'SELECT failed_run_path, fixing_run_path, "user", solver, error_category, signature_id, '
    "days_later, created_at AS failed_at, before_key, after_key FROM temp.{pairs}"
)

# The pairs with what changed and their kind (`FIX_COLUMNS`), from a table or query of
# pairs (`{pairs}`, as `fix_pairs`) and one of couples (`{couples}`, as `fix_changes`): the
# `fixes` view over the stored tables, and what a compute or refresh reads.
_FIXES_SQL = (
    'SELECT failed_run_path, fixing_run_path, "user", solver, error_category, signature_id, '
    "kind, changed_keywords, changes, days_later, failed_at, changed_to "
    f"FROM {{pairs}} p JOIN {{couples}} c ON {_same_couple('p', 'c')}"
)
FIXES_VIEW = _FIXES_SQL.format(pairs="fix_pairs", couples="fix_changes")


def first_fixes(rows: int) -> str:
    """The `fixes` view's first `rows` rows in its `ORDER`: the first pairs, then joined to
    their couples (each pair has one), rather than the whole join sorted (a million runs:
    0.12 s → 0.04 s a read)."""
    pairs = f"(SELECT * FROM fix_pairs ORDER BY {ORDER} LIMIT {int(rows)})"
    return _FIXES_SQL.format(pairs=pairs, couples="fix_changes") + f" ORDER BY {ORDER}"


def _staged(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter | str, known: str = NONE_KNOWN
) -> tuple[StagedTable, StagedTable]:
    """The pairs of the runs `run_filter` keeps (as `fix_pairs`) and what changed between
    their couples of parameter sets not in `known` (a table of couples), with their pairs'
    kind (as `fix_changes`), left in DuckDB.

    All in DuckDB, the parameters compared key by key (a million runs hold a few hundred
    thousand pairs, too many for Python, and too many to cross pandas: the tables are
    stored from there, `StagedTable`).
    """
    pairs, couples = temporary_name("fixes"), temporary_name("fix_couples")
    query(
        con,
        f"CREATE TEMP TABLE {pairs} AS " + _PAIRS_SQL,
        run_filter,
        failed=list(FAILED_STATUSES),
        max_days=MAX_DAYS_TO_FIX,
    )
    stored_pairs = StagedTable(con, _STORED_PAIRS_SQL.format(pairs=pairs), (pairs,))
    try:
        sql = _COUPLES_SQL.replace("{pairs}", pairs).replace("{known}", known)
        query(con, f"CREATE TEMP TABLE {couples} AS " + sql, run_filter)
    except BaseException:
        stored_pairs.drop()
        raise
    return stored_pairs, StagedTable(con, f"SELECT * FROM temp.{couples}", (couples,))


def _joined(pairs: str, couples: str) -> str:
    """`_FIXES_SQL` as a subquery, over two tables or subqueries."""
    return "(" + _FIXES_SQL.format(pairs=pairs, couples=couples) + ")"


def _changes(con: duckdb.DuckDBPyConnection, pairs: str) -> pd.DataFrame:
    """The targeted fixes' changes, one row per keyword, for `typical_fixes`, in time order
    (the order a typical fix's values tie in); `pairs`: a table or subquery of
    `FIX_COLUMNS`."""
    return con.execute(
        f"""
        SELECT signature_id, error_category, unnest(changed_keywords) AS keyword,
               1 / len(changed_keywords) AS w, len(changed_keywords) = 1 AS alone,
               "user", unnest(from_json(changed_to, '["VARCHAR"]')) AS new
        FROM {pairs} WHERE kind = '{FIX}' AND len(changed_keywords) <= $targeted
        ORDER BY {ORDER}
        """,
        {"targeted": MAX_TARGETED_CHANGES},
    ).df()


def _kinds(con: duckdb.DuckDBPyConnection, pairs: str) -> pd.DataFrame:
    """Per signature (one row without), how many of its failures the next success fixed,
    reran or restarted; `pairs`: as `_changes` reads them."""
    return con.execute(
        f"""
        SELECT signature_id, count(*) FILTER (WHERE kind = '{FIX}') AS fixed_runs,
               count(*) FILTER (WHERE kind = '{RERUN}') AS reruns,
               count(*) FILTER (WHERE kind = '{RESTART}') AS restarts
        FROM {pairs} GROUP BY signature_id
        """
    ).df()


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
    """The commonest values, ties in the order first set (`_changes` comes in time order)."""
    counts = values.value_counts(sort=False).sort_values(ascending=False, kind="stable")
    return ", ".join(f"{value or '(unset)'} ({n})" for value, n in counts.head(TOP_VALUES).items())


def best_fix_per_signature(typical: pd.DataFrame) -> pd.DataFrame:
    """Each signature's heaviest fix seen at least `MIN_TIMES_TYPICAL` times, as a
    sentence-ready row: signature_id, typical_fix."""
    typical = typical[typical["times"] >= MIN_TIMES_TYPICAL]
    if typical.empty:
        return pd.DataFrame(columns=["signature_id", "typical_fix"])
    best = typical.sort_values(["weight", "times"], ascending=False).drop_duplicates("signature_id")
    text = [
        f"change {r.keyword} (to {r.new_values}; {r.times} times, {counted(r.users, 'user')})"
        for r in best.itertuples(index=False)
    ]
    return pd.DataFrame({"signature_id": best["signature_id"].to_numpy(), "typical_fix": text})


def _findings(kinds: pd.DataFrame, errors: pd.DataFrame) -> list[str]:
    counts = {kind: int(kinds[column].sum()) for kind, column in KIND_COLUMNS.items()}
    followed = sum(counts.values())
    if not followed:
        return [NO_RUNS if errors.empty else "No failure was followed by a success of its case."]
    findings = [
        f"{counted(followed, 'failed or killed run')} "
        f"{'was' if followed == 1 else 'were'} followed within {MAX_DAYS_TO_FIX} days by a "
        f"success of the same case: {counts[FIX]} after a change of parameters, "
        f"{counted(counts[RERUN], 'rerun')} that changed nothing, "
        f"{counted(counts[RESTART], 'restart')} from a run's solution."
    ]
    for row in errors[errors["typical_fix"].notna()].head(3).itertuples(index=False):
        findings.append(
            f"“{row.template}” ({counted(row.runs, 'run')}, {row.error_category}): typically "
            "fixed by "
            f"{row.typical_fix}."
        )
    return findings


def error_fixes(
    signatures: pd.DataFrame, kinds: pd.DataFrame, typical: pd.DataFrame
) -> pd.DataFrame:
    """`ERROR_FIX_COLUMNS`: each typical error (by signature, most runs first) with its
    typical fix, and how many of its failures the next success fixed, reran or restarted."""
    kinds = kinds[kinds["signature_id"].notna()]
    out = signatures.merge(kinds, on="signature_id", how="left").merge(
        best_fix_per_signature(typical), on="signature_id", how="left"
    )
    counts = list(KIND_COLUMNS.values())
    out[counts] = out[counts].fillna(0).astype("int64")
    return out[ERROR_FIX_COLUMNS]


# A user's pairs are made from that user's runs alone (both runs of a pair are the user's):
# kept in the `fix_pairs` and `fix_changes` tables between refreshes, made again for the
# users whose runs changed.
MEMO = Memo(
    digests="fix_user_digests",
    kept=("fix_pairs", "fix_changes"),
    columns=(
        "run_id",
        "run_path",
        "user",
        "solver",
        "status",
        "created_at",
        "error_category",
        "signature_id",
        "case_folder",
        "mesh_case",
        "params_digest",
    ),
    code=repr((_PAIRS_SQL, _COUPLES_SQL, _STORED_PAIRS_SQL, FAILED_STATUSES, MAX_DAYS_TO_FIX)),
)


def _result(
    con: duckdb.DuckDBPyConnection,
    fixes: str,
    stored: tuple[StagedTable, StagedTable],
    run_filter: RunFilter,
    digests: StagedTable,
    made_again: int | None = None,
) -> AnalysisResult:
    """The analysis's result from its pairs with what changed (`fixes`: a subquery of
    `FIX_COLUMNS`), the `fix_pairs` and `fix_changes` tables to store (their temporary
    tables dropped with them, or on error) and the digests of the runs they come from
    (`made_again`: see `AnalysisResult`)."""
    try:
        kinds = _kinds(con, fixes)
        typical = typical_fixes(_changes(con, fixes))
        errors = error_fixes(signature_table(con, run_filter), kinds, typical)
    except BaseException:
        for table in (*stored, digests):
            table.drop()
        raise
    pairs, couples = stored
    return AnalysisResult(
        tables={
            "error_fixes": errors,
            "typical_fixes": typical,
            "fix_pairs": pairs,
            "fix_changes": couples,
            MEMO.digests: digests,
        },
        findings=_findings(kinds, errors),
        made_again=made_again,
        made_of=MEMO.kept_per,
    )


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    digests = key_digests(con, MEMO, run_filter)
    pairs, couples = _staged(con, run_filter)
    fixes = _joined(f"({pairs.select})", f"({couples.select})")
    return _result(con, fixes, (pairs, couples), run_filter, digests)


def refresh(con: duckdb.DuckDBPyConnection) -> AnalysisResult:
    """`compute` over all runs, the pairs of the users whose runs did not change read from
    the stored `fix_pairs` (`memo`), where only the other users' rows are replaced, and the
    couples compared before from `fix_changes`, which gains the new ones and loses those
    no pair holds any more."""
    made = make_again(
        con,
        MEMO,
        # a condition on users (not a filter): the stored tables are kept, those users' made
        lambda runs: _staged(
            con, runs, NONE_KNOWN if isinstance(runs, RunFilter) else "fix_changes"
        ),
    )
    (pairs, couples), changed = made.staged, made.changed
    if changed is None:
        fixes = _joined(f"({pairs.select})", f"({couples.select})")
        return _result(con, fixes, (pairs, couples), RunFilter(), made.digests)
    fixes = _joined(
        changed.merged("fix_pairs", pairs.select),
        f"(SELECT * FROM fix_changes UNION ALL BY NAME {couples.select})",
    )
    stored = (
        changed.replacing(pairs),
        StagedTable(con, couples.select, couples.temporary, replacing=UNPAIRED),
    )
    return _result(con, fixes, stored, RunFilter(), made.digests, changed.count)


ANALYSIS = Analysis(
    name="fixes",
    title="What fixed it",
    description="Each typical error with the change that usually fixed it: each failed run's "
    "next success on the same case and the parameters changed between them, reruns and "
    "restarts apart.",
    compute=compute,
    refresh=refresh,
    tables=("fixes", "error_fixes", "typical_fixes"),
    kept_tables=(*MEMO.kept, MEMO.digests),
    views={"fixes": FIXES_VIEW},
    previewed={"fixes": ORDER},  # a row per failure followed by a success
    first_rows={"fixes": first_fixes},
)
