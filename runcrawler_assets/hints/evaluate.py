"""Rules evaluated over the runs: one hint per run a rule's condition holds for.

The conditions read `RULE_VIEW`, the (filtered) runs with the derived
columns of `rules.DERIVED_COLUMNS` (a run's case and the run before it in its
case, how many runs in a row ended with its error, the typical fix of its
error when the `fixes` analysis was computed). Each condition is bound by
DuckDB before it runs, so a rule that names a column with the wrong type
fails with its name, before any hint is made.

The hints are made, worded and counted in SQL (`hints_sql`): a million runs
give hundreds of thousands of hints, which the `hints` asset keeps in DuckDB
without a round trip through pandas (`store_hints`); a digest's period reads
its few into a frame (`evaluate_rules`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    RunFilter,
    drop_temporary,
    query,
    temporary_name,
    with_runs,
)
from runcrawler_assets.analytics.memo import Memo, refreshed_digests, write_rows
from runcrawler_assets.analytics.store import runs_version
from runcrawler_assets.hints.rules import Rule, RulesError
from runcrawler_assets.records import RUN_COLUMNS
from runcrawler_assets.warehouse.accounting_join import has_table
from runcrawler_assets.warehouse.database import transaction

RULE_VIEW = "rule_runs"
HINT_COLUMNS = ["run_id", "run_path", "user", "cluster", "created_at", "rule", "severity", "text"]
SIGNATURES_TABLE = "error_fixes"  # each signature's typical fix (analysis `fixes`)
HINTS_SOURCE = "hints_source"  # the version of `runs` the hints were made from
FLOAT_TYPES = ("DOUBLE", "FLOAT")
# The columns of `runs` every hint is made from, whatever the rules: those it shows, and
# those the derived columns are made from (`rule_runs_sql`); the rules add theirs.
HINTED_FROM = frozenset(HINT_COLUMNS[:5]).union(
    ("case_folder", "status", "error_category", "signature_id", "n_nodes", "n_procs")
)


def rule_runs_sql(con: duckdb.DuckDBPyConnection, partitions: str = "true") -> str:
    """`WITH rule_runs AS (...)`: every run of the partitions `partitions` (a condition on
    `runs`; the code's own) with the derived columns the conditions may read (derived over
    all their runs: a run's predecessor may lie before a digest's period; a case is one
    cluster × user's folder, so the rows of a partition do not depend on the others'). They
    are derived from the few columns
    they need and joined back to the table `runs` by row id: ordering every column of a
    million runs held ~700 MB, this ~390 (issue 16)."""
    fixes = has_table(con, SIGNATURES_TABLE)
    fix = "s.typical_fix" if fixes else "CAST(NULL AS VARCHAR)"
    join = f"LEFT JOIN {SIGNATURES_TABLE} s USING (signature_id)" if fixes else ""
    return f"""
        WITH ordered AS (
            SELECT rowid AS row, "user", case_folder, error_category,
                   lag(status) OVER w AS previous_status,
                   lag(error_category) OVER w AS previous_error_category,
                   row_number() OVER w AS position
            FROM runs WHERE {partitions}
            WINDOW w AS (PARTITION BY "user", case_folder ORDER BY created_at, run_path)
        ),
        islands AS (
            SELECT *, sum(CASE WHEN error_category IS NOT DISTINCT FROM previous_error_category
                               THEN 0 ELSE 1 END)
                          OVER (PARTITION BY "user", case_folder ORDER BY position
                                ROWS UNBOUNDED PRECEDING) AS island
            FROM ordered
        ),
        derived AS (
            SELECT row, previous_status, previous_error_category,
                   row_number() OVER (PARTITION BY "user", case_folder, island
                                      ORDER BY position) AS same_error_in_a_row
            FROM islands
        ),
        {RULE_VIEW} AS (
            SELECT r.*, d.previous_status, d.previous_error_category,
                   CASE WHEN r.n_procs > 0 THEN r.n_nodes // r.n_procs END AS nodes_per_process,
                   d.same_error_in_a_row, {fix} AS typical_fix
            FROM runs r JOIN derived d ON d.row = r.rowid {join}
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


def _shown(column: str, column_type: str) -> str:
    """SQL: a column's value as a hint shows it: a float as Python's `{:g}` would (`%g`),
    anything else as its text, and a missing value (NULL, NaN) as `?`."""
    if column_type in FLOAT_TYPES:
        return f"CASE WHEN isnan({column}) THEN '?' ELSE printf('%g', {column}) END"
    return f"CAST({column} AS VARCHAR)"


def _text_sql(rule: Rule, index: int, types: dict[str, str], params: dict[str, Any]) -> str:
    """SQL: the rule's hint with each `{column}` filled in; its literal parts become bound
    parameters (added to `params`), so a quote in a hint is just a quote."""
    parts = []
    for k, (literal, field, _, _) in enumerate(string.Formatter().parse(rule.hint)):
        if literal:
            params[f"hint_{index}_{k}"] = literal
            parts.append(f"$hint_{index}_{k}")
        if field:
            parts.append(f"""coalesce({_shown(f'"{field}"', types[field])}, '?')""")
    return " || ".join(parts) or "''"


def hints_sql(
    con: duckdb.DuckDBPyConnection,
    rules: tuple[Rule, ...],
    partitions: str = "true",
    checked: bool = False,
) -> tuple[str, dict[str, Any]]:
    """A query of `HINT_COLUMNS` (with `{runs}` for the runs hinted, as `core.query` takes
    it) and its parameters: one row per (run, rule) whose condition holds, its hint worded,
    in the file's order of rules, then by time.

    A rule DuckDB refuses stops the whole file with its name: half the hints would read
    as if the other runs were fine. `checked`: the rules were bound already, by a call for
    other partitions on the same connection (binding them takes ~5 ms a rule).
    """
    view = rule_runs_sql(con, partitions)
    if not checked:
        for rule in rules:
            _check(con, rule, view)
    if not rules:  # `parse_rules` refuses a file without any; a caller must too
        raise RulesError("no rules to evaluate")
    shown = list(dict.fromkeys(p for rule in rules for p in rule.placeholders))
    types = dict(
        con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE {view} SELECT * FROM {RULE_VIEW})"
        ).fetchall()
    )
    # One pass over the runs for every rule: a column per rule says whether it holds.
    holds = [f'coalesce(({rule.condition}), false) AS "holds_{i}"' for i, rule in enumerate(rules)]
    columns = [*(f'"{c}"' for c in HINT_COLUMNS[:5]), *(f'"{p}"' for p in shown)]
    params = _rule_params(rules)
    selects = []
    for i, rule in enumerate(rules):
        selects.append(
            f"""SELECT {", ".join(f'"{c}"' for c in HINT_COLUMNS[:5])}, $rule_{i} AS rule,
                   $severity_{i} AS severity, {_text_sql(rule, i, types, params)} AS text,
                   {i} AS rule_order
            FROM checked WHERE "holds_{i}\""""
        )
    sql = f"""{view}, checked AS (
            SELECT {", ".join([*columns, *holds])} FROM {RULE_VIEW}
            WHERE run_id IN (SELECT run_id FROM {{runs}})
        )
        SELECT * EXCLUDE (rule_order) FROM ({" UNION ALL ".join(selects)})
        ORDER BY rule_order, created_at, run_path"""
    return sql, params


def evaluate_rules(
    con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...], run_filter: RunFilter
) -> pd.DataFrame:
    """`HINT_COLUMNS`: the hints of the runs `run_filter` keeps, as a frame (a period's)."""
    sql, params = hints_sql(con, rules)
    return query(con, sql, run_filter, **params)


def hints_memo(
    con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...], sql: str, params: dict[str, Any]
) -> Memo:
    """What a partition's hints are made from: the columns of its runs the hints read
    (`HINTED_FROM` and the rules' own: digesting every column of a million runs took
    ~0.4 s, these ~0.06) and, as code (a change makes every partition's again), the rules'
    query `sql` with its `params` and the typical fixes the hints quote."""
    fixes = (
        con.execute(
            f"SELECT signature_id, typical_fix FROM {SIGNATURES_TABLE} ORDER BY ALL"
        ).fetchall()
        if has_table(con, SIGNATURES_TABLE)
        else None
    )
    read = HINTED_FROM.union(*(rule.columns for rule in rules))
    return Memo(
        digests="hint_user_digests",
        kept=("hints",),
        columns=tuple(column.name for column in RUN_COLUMNS if column.name in read),
        code=repr((sql, sorted(params.items()), fixes)),
        by=("cluster", "user"),
    )


def hints_are_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `hints` was made from the `runs` table as it is now (no run added, changed or
    removed since: every hint's run is a row of `runs`)."""
    if not has_table(con, HINTS_SOURCE):
        return False
    [(version,)] = con.execute(f"SELECT runs_version FROM {HINTS_SOURCE}").fetchall()
    return version == runs_version(con)


@dataclass(frozen=True)
class StoredHints:
    """What `store_hints` left: `hints` in all, made again for `made_again` of the memo's
    keys (`made_of`, as `AnalysisResult` says it: cluster × user "partitions"; None: every
    one's, nothing kept: the first time, or other rules or fixes quoted)."""

    hints: int
    made_again: int | None
    made_of: str


# The runs whose hints one query makes, about: the window over each case's runs, sorted,
# must fit in the analytics' memory (a real million-run crawl's hints, made in one query,
# failed at 160MB and 192MB: issue 16). A chunk starts below this count, and takes its
# last partition whole (at a million demo runs, ≤ 195,000 runs: 0.84 s under 160MB).
CHUNK_RUNS = 50_000


def store_hints(
    con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...], chunk_runs: int = CHUNK_RUNS
) -> StoredHints:
    """Every run's hints into the table `hints` and, per rule in the file's order (none left
    out), its severity and the runs and users hinted into `hint_counts`, all in DuckDB, with
    the version of `runs` they come from (`HINTS_SOURCE`: while `runs` is still that, every
    hint's run is in it).

    A partition's hints come from its runs (a case is one partition's) and the fixes they
    quote: those of the partitions whose runs did not change since the last time, with the
    same rules and typical fixes, are kept (`analytics.memo`; a million runs' hints took
    seconds, ten new runs' take their partition's), in one transaction with the digests
    that say so. The partitions are made a chunk of about `chunk_runs` runs at a time,
    each chunk one query.
    """
    sql, params = hints_sql(con, rules)
    memo = hints_memo(con, rules, sql, params)
    digests, changed = refreshed_digests(con, memo)
    chunks = None
    try:
        partitions = changed.condition if changed else None
        chunks = _chunk_partitions(con, partitions, chunk_runs)
        with transaction(con):
            for number in range(max(1, chunks.count)):  # one, even of no run: the old go
                # the derived columns of the chunk's runs alone
                chunk = f'(cluster, "user") IN ({chunks.pairs(number)})'
                sql, params = hints_sql(con, rules, chunk, checked=True)
                select, _ = with_runs(sql, chunk)
                replacing = partitions if number == 0 else "FALSE"
                write_rows(con, "hints", select, replacing, params)
            write_rows(con, memo.digests, digests.select, digests.replacing)
            _count_hints(con, rules)
            version = "SELECT CAST($version AS VARCHAR) AS runs_version"
            write_rows(con, HINTS_SOURCE, version, params={"version": runs_version(con)})
    finally:
        made = (chunks.table,) if chunks else ()
        drop_temporary(con, digests.temporary + (changed.temporary if changed else ()) + made)
    [(found,)] = con.execute("SELECT count(*) FROM hints").fetchall()
    return StoredHints(found, changed.count if changed else None, memo.kept_per)


@dataclass(frozen=True)
class Chunks:
    """The partitions whose hints are made, numbered by chunk in a temporary table."""

    table: str
    count: int

    def pairs(self, number: int) -> str:
        """SQL: the (cluster, user) pairs of chunk `number`."""
        return f'SELECT cluster, "user" FROM temp.{self.table} WHERE chunk = {int(number)}'


def _chunk_partitions(
    con: duckdb.DuckDBPyConnection, partitions: str | None, chunk_runs: int
) -> Chunks:
    """The partitions with runs among `partitions` (a condition over `runs`; None: all) in
    chunks of about `chunk_runs` runs, in key order (a smaller archive: one chunk)."""
    table = temporary_name("hint_chunks")
    con.execute(
        f"""CREATE TEMP TABLE {table} AS
        SELECT cluster, "user", CAST(floor((sum(runs) OVER (ORDER BY cluster, "user"
               ROWS UNBOUNDED PRECEDING) - runs) / {int(chunk_runs)}) AS INTEGER) AS chunk
        FROM (SELECT cluster, "user", count(*) AS runs FROM runs
              WHERE {partitions or "TRUE"} GROUP BY ALL)"""
    )
    [(count,)] = con.execute(f"SELECT coalesce(max(chunk) + 1, 0) FROM temp.{table}").fetchall()
    return Chunks(table, count)


def _count_hints(con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...]) -> None:
    """`hint_counts`: per rule in the file's order (none left out), its severity, and the
    runs and users `hints` holds for it."""
    listed = ", ".join(f"({i}, $rule_{i}, $severity_{i})" for i in range(len(rules)))
    write_rows(
        con,
        "hint_counts",
        f"""
        SELECT r.rule, r.severity, coalesce(h.runs, 0) AS runs, coalesce(h.users, 0) AS users
        FROM (VALUES {listed}) AS r(position, rule, severity)
        LEFT JOIN (SELECT rule, count(*) AS runs, count(DISTINCT "user") AS users
                   FROM hints GROUP BY rule) h USING (rule)
        ORDER BY r.position
        """,
        params=_rule_params(rules),
    )


def _rule_params(rules: tuple[Rule, ...]) -> dict[str, Any]:
    """Each rule's name and severity as bound parameters `rule_i`, `severity_i`."""
    return {
        f"{key}_{i}": value
        for i, rule in enumerate(rules)
        for key, value in (("rule", rule.name), ("severity", rule.severity))
    }
