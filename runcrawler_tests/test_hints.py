"""Rules and hints: conditions checked before they run, evaluated in DuckDB, hints filled in."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.analytics.core import RunFilter
from runcrawler_assets.hints import (
    RulesError,
    evaluate_rules,
    load_rules,
    parse_rules,
    store_hints,
)
from runcrawler_assets.hints.evaluate import (
    CHUNK_RUNS,
    hints_are_current,
    hints_memo,
    hints_sql,
)
from runcrawler_assets.hints.rules import Rule
from runcrawler_assets.records import RUN_COLUMNS, RunRecord, run_id_for
from runcrawler_assets.reporting.assemble import stored_hints
from runcrawler_assets.warehouse.database import quote_identifier
from runcrawler_tests.conftest import swapped_again, write_warehouse

START = datetime(2025, 3, 1, 9)


def _run(
    user: str, case: str, k: int, category: str, cluster: str = "kraken", **fields: object
) -> RunRecord:
    status = {"none": "success", "time_limit": "killed"}.get(category, "failed")
    path = f"{cluster}/{user}/{case}/run_{k:03d}"
    values: dict[str, object] = {"n_procs": 36, "n_nodes": 720_000, "cfl": 0.7}
    values.update(fields)
    return RunRecord(
        run_id=run_id_for(path),
        cluster=cluster,
        user=user,
        run_path=path,
        solver="avbp",
        created_at=START + timedelta(days=k),
        status=status,
        error_category=category,
        **values,
    )


# One case hits the time limit twice, succeeds, hits it once more; another diverges at CFL 1.
RECORDS = [
    _run("ana", "jet", 1, "time_limit"),
    _run("ana", "jet", 2, "time_limit"),
    _run("ana", "jet", 3, "none"),
    _run("ana", "jet", 4, "time_limit"),
    _run("bob", "flame", 1, "numerical_instability", cfl=1.0),
    _run("bob", "flame", 2, "none", cfl=0.7, n_procs=576),
]

RULES = """
[[rule]]
name = "time_limit_twice"
severity = "critical"
when = "error_category = 'time_limit' AND same_error_in_a_row >= 2"
hint = "{case_folder}: time limit {same_error_in_a_row} times in a row"

[[rule]]
name = "high_cfl"
when = "error_category = 'numerical_instability' AND cfl > 0.9"
hint = "{run_path} diverged at CFL {cfl}"

[[rule]]
name = "split_too_finely"
severity = "info"
when = "status = 'success' AND nodes_per_process < 5000"
hint = "{nodes_per_process} nodes per process after a {previous_error_category}"
"""


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory):
    path = write_warehouse(tmp_path_factory.mktemp("hints") / "runs.duckdb", RECORDS)
    with duckdb.connect(str(path), read_only=True) as connection:
        yield connection


def test_each_rule_finds_its_runs_and_fills_its_hint(con: duckdb.DuckDBPyConnection) -> None:
    hints = evaluate_rules(con, parse_rules(RULES, "test"), RunFilter())
    found = {(row.rule, row.run_path): (row.severity, row.text) for row in hints.itertuples()}
    assert found == {
        ("time_limit_twice", "kraken/ana/jet/run_002"): (
            "critical",
            "kraken/ana/jet: time limit 2 times in a row",
        ),
        ("high_cfl", "kraken/bob/flame/run_001"): (
            "warning",
            "kraken/bob/flame/run_001 diverged at CFL 1",
        ),
        ("split_too_finely", "kraken/bob/flame/run_002"): (
            "info",
            "1250 nodes per process after a numerical_instability",
        ),
    }


def test_a_filter_limits_the_runs_rules_see(con: duckdb.DuckDBPyConnection) -> None:
    hints = evaluate_rules(con, parse_rules(RULES, "test"), RunFilter(user="bob"))
    assert set(hints["user"]) == {"bob"} and len(hints) == 2


def test_the_shipped_rules_load_and_run(con: duckdb.DuckDBPyConnection) -> None:
    rules = load_rules(None)
    assert len(rules) >= 5 and len({r.name for r in rules}) == len(rules)
    hints = evaluate_rules(con, rules, RunFilter())
    assert "time_limit_twice_in_a_row" in set(hints["rule"])


def _one(when: str, hint: str = "x", **extra: str) -> str:
    fields = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    return f'[[rule]]\nname = "bad_one"\nwhen = "{when}"\nhint = "{hint}"\n{fields}'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_one("cfl > 1; DROP TABLE runs"), ["bad_one", "';'"]),
        (_one("cfl > (SELECT max(cfl) FROM runs)"), ["bad_one", "'SELECT'"]),
        (_one("cfl > 1 -- and more"), ["bad_one", "comments"]),
        (_one("cfl > 1 /* x */"), ["bad_one", "comments"]),
        (_one("password = 'x'"), ["bad_one", "'password'", "not a column"]),
        (_one("read_csv('/etc/passwd') IS NOT NULL"), ["bad_one", "'read_csv'"]),
        (_one(""), ["bad_one", "empty"]),
        (_one("cfl > 1", hint="{secret}"), ["bad_one", "{secret}"]),
        (_one("cfl > 1", hint="{cfl:.2f}"), ["bad_one", "without a format"]),
        (_one("cfl > 1", severity="fatal"), ["bad_one", "'fatal'"]),
        (_one("cfl > 1", colour="red"), ["bad_one", "colour"]),
        ('[[rule]]\nwhen = "cfl > 1"\nhint = "x"\n', ["rule #1", "name"]),
        ("[[rule]\nname = ", ["not valid TOML"]),
        ("title = 'no rules'\n", ["no [[rule]]"]),
        (_one("cfl > 1") + _one("cfl > 2"), ["unique", "bad_one"]),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_rule_and_the_problem(
    text: str, words: list[str]
) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(text, "rules.toml")
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_a_condition_duckdb_cannot_bind_names_its_rule(con: duckdb.DuckDBPyConnection) -> None:
    rules = parse_rules(_one("cfl LIKE 1 AND starts_with(cfl, 2)"), "rules.toml")
    with pytest.raises(RulesError, match=r"bad_one.*DuckDB refuses"):
        evaluate_rules(con, rules, RunFilter())
    assert con.execute("SELECT count(*) FROM runs").fetchall() == [(len(RECORDS),)]


def test_an_unreadable_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(tmp_path / "missing.toml")
    binary = tmp_path / "rules.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RulesError, match="cannot be read"):
        load_rules(binary)


def test_the_stored_hints_are_those_evaluated_counted_per_rule_in_the_files_order(
    tmp_path: Path,
) -> None:
    rules = parse_rules(RULES + _one("cfl > 100", hint="never"), "test")
    path = write_warehouse(tmp_path / "runs.duckdb", RECORDS)
    with duckdb.connect(str(path)) as con:
        evaluated = evaluate_rules(con, rules, RunFilter())
        assert store_hints(con, rules).hints == len(evaluated) == 3
        stored = con.execute("SELECT * FROM hints").df()
        counts = con.execute("SELECT * FROM hint_counts").df()
    pd.testing.assert_frame_equal(stored, evaluated)
    assert list(stored["rule"]) == ["time_limit_twice", "high_cfl", "split_too_finely"]
    assert counts.to_dict("records") == [
        {"rule": "time_limit_twice", "severity": "critical", "runs": 1, "users": 1},
        {"rule": "high_cfl", "severity": "warning", "runs": 1, "users": 1},
        {"rule": "split_too_finely", "severity": "info", "runs": 1, "users": 1},
        {"rule": "bad_one", "severity": "warning", "runs": 0, "users": 0},
    ]


def test_a_hint_shows_values_as_written_and_a_missing_one_as_a_question_mark(
    tmp_path: Path,
) -> None:
    records = [
        _run("ana", "jet", 1, "numerical_instability", cfl=None, n_nodes=None),
        _run("ana", "jet", 2, "numerical_instability", cfl=1.23456789, n_nodes=2_345_678),
    ]
    hint = "it's {{not}} a field: CFL {cfl}, {n_nodes} nodes, {previous_error_category}"
    rules = parse_rules(_one("status = 'failed'", hint=hint), "test")
    path = write_warehouse(tmp_path / "runs.duckdb", records)
    with duckdb.connect(str(path), read_only=True) as con:
        texts = list(evaluate_rules(con, rules, RunFilter())["text"])
    assert texts == [
        "it's {not} a field: CFL ?, ? nodes, ?",
        "it's {not} a field: CFL 1.23457, 2345678 nodes, numerical_instability",
    ]


def test_no_rules_is_a_clear_error_not_an_empty_query(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(RulesError, match="no rules"):
        evaluate_rules(con, (), RunFilter())


FIX_RULES = (
    RULES
    + """
[[rule]]
name = "known_fix"
when = "status = 'killed'"
hint = "{run_path}: {typical_fix}"
"""
)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["rule", "run_path"]).reset_index(drop=True)


def _rowids(con: duckdb.DuckDBPyConnection, user: str, cluster: str = "%") -> set[tuple]:
    """Where each of `user`'s hints (on `cluster`) lies: a row written again gets a new row
    id."""
    return set(
        con.execute(
            'SELECT rowid, run_id, rule FROM hints WHERE "user" = ? AND cluster LIKE ?',
            [user, cluster],
        ).fetchall()
    )


def _give_each_failure_a_typical_fix(con: duckdb.DuckDBPyConnection) -> None:
    """Each failed run's signature is its category, and each signature has a typical fix."""
    con.execute("UPDATE runs SET signature_id = error_category WHERE status <> 'success'")
    con.execute(
        "CREATE TABLE error_fixes AS SELECT DISTINCT signature_id, 'raise the limit' "
        "AS typical_fix FROM runs WHERE signature_id IS NOT NULL"
    )


def _stored_as_evaluated(
    con: duckdb.DuckDBPyConnection, rules: tuple[Rule, ...], chunk_runs: int = CHUNK_RUNS
) -> int | None:
    """Store the hints (`chunk_runs` runs' partitions per query), check they are those
    evaluated from scratch in one query, and say how many partitions were made again."""
    made = store_hints(con, rules, chunk_runs).made_again
    stored = con.execute("SELECT * FROM hints").df()
    pd.testing.assert_frame_equal(_sorted(stored), _sorted(evaluate_rules(con, rules, RunFilter())))
    return made


def _bobs_second_run_fails(con: duckdb.DuckDBPyConnection) -> None:
    """bob's second run diverges too (failed, unstable, at CFL 1.2), its swap noted."""
    bobs_second = "\"user\" = 'bob' AND run_path LIKE '%run_002'"
    con.execute(
        "UPDATE runs SET status = 'failed', error_category = 'numerical_instability',"
        f" cfl = 1.2 WHERE {bobs_second}"
    )
    swapped_again(con, bobs_second, [])


def test_stored_hints_are_made_again_for_the_users_whose_runs_or_quoted_fixes_changed(
    tmp_path: Path,
) -> None:
    """Each store equals the hints evaluated from scratch; the hints of a user whose runs
    did not change are kept where they lie (a store from scratch would renumber them, the
    users' hints interleaved), unless the rules or the fixes they quote change."""
    rules = parse_rules(FIX_RULES, "test")
    path = write_warehouse(tmp_path / "runs.duckdb", RECORDS)
    with duckdb.connect(str(path)) as con:
        _give_each_failure_a_typical_fix(con)

        assert _stored_as_evaluated(con, rules) is None  # the first time: every user's
        assert _stored_as_evaluated(con, rules) == 0
        ana, bob = _rowids(con, "ana"), _rowids(con, "bob")
        assert ana and bob
        # bob's second run now diverges too: his hints are made again, ana's kept
        _bobs_second_run_fails(con)
        assert _stored_as_evaluated(con, rules) == 1
        assert _rowids(con, "ana") == ana and _rowids(con, "bob") != bob
        # a user gone: their hints with them
        con.execute("DELETE FROM runs WHERE \"user\" = 'bob'")
        _stored_as_evaluated(con, rules)
        assert _rowids(con, "bob") == set() and _rowids(con, "ana") == ana
        # the fix a hint quotes changed: every user's hints are made again
        con.execute("UPDATE error_fixes SET typical_fix = 'split the run'")
        assert _stored_as_evaluated(con, rules) is None
        texts = con.execute("SELECT text FROM hints WHERE rule = 'known_fix'").fetchall()
        assert len(texts) == 3 and all(text.endswith(": split the run") for (text,) in texts)
        # other rules: the same
        rules = parse_rules(RULES, "test")
        _stored_as_evaluated(con, rules)
        assert con.execute("SELECT count(*) FROM hints WHERE rule = 'known_fix'").fetchone() == (0,)


def test_hints_made_a_partition_at_a_time_are_those_made_in_one_query(tmp_path: Path) -> None:
    """Made one partition per query (a real million runs' hints, made in one query, outgrew
    a 160MB cap), the stored hints are those evaluated in one query: the first time, and
    after one partition's runs changed."""
    rules = parse_rules(FIX_RULES, "test")
    on_irene = [_run("ana", "jet", k, "time_limit", cluster="irene") for k in (1, 2)]
    path = write_warehouse(tmp_path / "runs.duckdb", [*RECORDS, *on_irene])
    with duckdb.connect(str(path)) as con:
        _give_each_failure_a_typical_fix(con)
        [(partitions,)] = con.execute(
            'SELECT count(DISTINCT (cluster, "user")) FROM runs'
        ).fetchall()
        assert partitions >= 3

        assert _stored_as_evaluated(con, rules, chunk_runs=1) is None
        _bobs_second_run_fails(con)
        assert _stored_as_evaluated(con, rules, chunk_runs=1) == 1


def test_a_new_run_makes_again_the_hints_of_its_partition_not_its_users_other_clusters(
    tmp_path: Path,
) -> None:
    """A case is one cluster × user's folder: a run landing in ana's case on irene makes
    again the hints of that partition alone, hers on kraken are kept where they lie, and
    what is stored equals the hints evaluated from scratch."""
    rules = parse_rules(RULES, "test")
    on_irene = [_run("ana", "jet", k, "time_limit", cluster="irene") for k in (1, 2)]
    path = write_warehouse(tmp_path / "runs.duckdb", [*RECORDS, *on_irene])
    with duckdb.connect(str(path)) as con:
        first = store_hints(con, rules)
        assert first.made_again is None and first.made_of == "partitions"
        kraken, irene = _rowids(con, "ana", "kraken"), _rowids(con, "ana", "irene")
        assert kraken and irene
        third = _run("ana", "jet", 3, "time_limit", cluster="irene")
        con.execute(
            "INSERT INTO runs BY NAME SELECT * REPLACE ($id AS run_id, $path AS run_path, "
            "created_at + INTERVAL 2 DAY AS created_at) FROM runs WHERE run_path = $last",
            {"id": third.run_id, "path": third.run_path, "last": on_irene[-1].run_path},
        )
        assert store_hints(con, rules).made_again == 1
        assert _rowids(con, "ana", "kraken") == kraken
        assert _rowids(con, "ana", "irene") != irene
        stored = con.execute("SELECT * FROM hints").df()
        pd.testing.assert_frame_equal(
            _sorted(stored), _sorted(evaluate_rules(con, rules, RunFilter()))
        )
        assert {"irene/ana/jet/run_003"} <= set(stored["run_path"])


def test_a_rule_reads_the_columns_its_condition_and_hint_name() -> None:
    condition = """lower(status) = 'failed' AND "cfl" > 1 AND previous_status <> 'y'"""
    rule = Rule("r", condition, "warning", "{run_path} on {n_procs}")
    assert rule.columns == {"status", "cfl", "previous_status", "run_path", "n_procs"}
    assert Rule("r", "coalesce(cfl, 1) > 0", "info", "x").columns == {"cfl"}


@pytest.mark.parametrize("rules_text", [RULES, FIX_RULES, None], ids=["test", "fixes", "default"])
def test_the_hints_read_no_column_of_runs_their_memo_leaves_out(
    tmp_path: Path, rules_text: str | None
) -> None:
    """A user's hints are kept while the columns the memo digests are unchanged: so every
    other column may change (here: all emptied) without changing any hint."""
    rules = load_rules(None) if rules_text is None else parse_rules(rules_text, "test")
    path = write_warehouse(tmp_path / "runs.duckdb", RECORDS)
    with duckdb.connect(str(path)) as con:
        _give_each_failure_a_typical_fix(con)
        before = evaluate_rules(con, rules, RunFilter())
        sql, params = hints_sql(con, rules)
        read = set(hints_memo(con, rules, sql, params).columns)
        left_out = [c.name for c in RUN_COLUMNS if c.name not in read]
        assert left_out and "cfl" in read
        for column in left_out:
            con.execute(f"UPDATE runs SET {quote_identifier(column)} = NULL")
        pd.testing.assert_frame_equal(evaluate_rules(con, rules, RunFilter()), before)


def test_the_report_shows_the_hints_of_the_runs_there_whether_or_not_they_are_current(
    tmp_path: Path,
) -> None:
    """Right after they are stored, the report reads every hint (no run of theirs can be
    gone); once a run is removed behind their back, they are no longer current and the
    report leaves out that run's hints."""
    rules = parse_rules(RULES, "test")
    path = write_warehouse(tmp_path / "runs.duckdb", RECORDS)
    with duckdb.connect(str(path)) as con:
        store_hints(con, rules)
        assert hints_are_current(con)
        shown = stored_hints(con, RunFilter())
        assert shown is not None and shown.total == 3
        [(hinted,)] = con.execute("SELECT run_id FROM hints WHERE rule = 'high_cfl'").fetchall()
        con.execute("DELETE FROM runs WHERE run_id = ?", [hinted])
        assert not hints_are_current(con)
        shown = stored_hints(con, RunFilter())
        assert shown is not None and shown.total == 2
        assert "high_cfl" not in set(shown.counts["rule"])
        store_hints(con, rules)
        assert hints_are_current(con) and stored_hints(con, RunFilter()).total == 2
