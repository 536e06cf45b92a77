import re
from pathlib import Path

from runcrawler_assets.records import RUN_COLUMNS, RunRecord
from runcrawler_assets.warehouse.cleaning import (
    CLEANING_POLICY,
    CUT_MARK,
    IDENTITY_COLUMNS,
    LIMITS,
    VALUE_LIMITS,
    bound_record,
    clean_record,
    shorten,
)
from runcrawler_assets.warehouse.database import PartitionRows, connect, replace_partitions

BASE = RunRecord(
    run_id="r1", cluster="kraken", user="bob", run_path="kraken/bob/r1", solver="avbp",
    status="failed",
)  # fmt: skip


def test_a_record_missing_its_identity_is_rejected_with_the_reason():
    cleaned, reason = clean_record(BASE.replace(user=""))
    assert cleaned is None
    assert "user" in reason


def test_an_unknown_status_is_rejected():
    cleaned, reason = clean_record(BASE.replace(status="exploded"))
    assert cleaned is None
    assert "exploded" in reason


def test_missing_values_that_mean_zero_are_filled_with_zero():
    cleaned, _ = clean_record(BASE.replace(n_restarts=None, log_bytes=None))
    assert cleaned is not None
    assert (cleaned.n_restarts, cleaned.log_bytes) == (0, 0)


def test_a_run_that_never_started_used_no_cpu():
    not_started = BASE.replace(status="not_started", iterations_done=0, cpu_hours=None)
    cleaned, _ = clean_record(not_started)
    assert cleaned is not None
    assert (cleaned.iterations_done, cleaned.cpu_hours) == (0, 0)


def test_a_run_not_started_in_the_archive_whose_steps_are_unknown_stays_unknown():
    """Its parser saw that a solver ran (post-processing read its results) without its log."""
    ran = BASE.replace(status="not_started", iterations_done=None, cpu_hours=None)
    cleaned, _ = clean_record(ran)
    assert cleaned is not None
    assert (cleaned.iterations_done, cleaned.cpu_hours) == (None, None)


def test_iterations_of_a_killed_run_without_its_solver_log_stay_unknown():
    killed = BASE.replace(status="killed", error_category="time_limit", iterations_done=None)
    cleaned, _ = clean_record(killed)
    assert cleaned is not None
    assert cleaned.iterations_done is None


def test_unknown_values_stay_null_rather_than_zero():
    cleaned, _ = clean_record(BASE)
    assert cleaned is not None
    assert cleaned.wall_time_s is None
    assert cleaned.efficiency is None


def test_every_policy_column_is_a_run_column():
    names = {c.name for c in RUN_COLUMNS}
    assert {rule.column for rule in CLEANING_POLICY} <= names


# ------------------------------------------------------------ bounded values (contract-notes 16)


def test_shorten_keeps_a_text_that_fits_and_cuts_a_longer_one_to_exactly_the_limit():
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "ab…"
    assert len(shorten("x" * 1_000_000, 256)) == 256


def test_a_setting_over_its_limit_is_cut_with_a_mark_and_a_warning_naming_it():
    bounded = bound_record(BASE.replace(mixture_name="m" * 1000))
    assert bounded.mixture_name == "m" * 255 + CUT_MARK
    assert bounded.parse_warnings == ("mixture_name: 1,000 characters, cut to 256 (setting limit)",)


def test_each_kind_keeps_exactly_its_limit():
    at_limit = BASE.replace(host="h" * 256, error_message="e" * 1024, les_model="l" * 256)
    assert bound_record(at_limit) is at_limit
    over = bound_record(BASE.replace(host="h" * 257, error_message="e" * 1025))
    assert (len(over.host), len(over.error_message)) == (LIMITS["name"], LIMITS["message"])
    assert over.host.endswith(CUT_MARK) and over.error_message.endswith(CUT_MARK)


def test_values_within_their_limits_are_untouched():
    record = BASE.replace(
        mixture_name="ch4-air-2s-bfer", host="node042", params={"mixture_name": "CH4"}
    )
    assert bound_record(record) is record


def test_non_string_values_are_untouched():
    record = BASE.replace(
        n_procs=2**31 - 1, n_nodes=2**63 - 1, cfl=1e300, reactive_flow=True,
        params={"n": 5, "on": True, "none": None, "x": 1.5, "long": "p" * 300},
    )  # fmt: skip
    bounded = bound_record(record)
    assert (bounded.n_procs, bounded.n_nodes, bounded.cfl) == (2**31 - 1, 2**63 - 1, 1e300)
    assert bounded.reactive_flow is True
    assert bounded.params == {"n": 5, "on": True, "none": None, "x": 1.5, "long": "p" * 255 + "…"}
    assert bounded.parse_warnings == ("params.long: 300 characters, cut to 256 (setting limit)",)


def test_params_keywords_and_nested_text_are_cut_too():
    bounded = bound_record(BASE.replace(params={"k" * 300: "v", "list": ["w" * 300, 7]}))
    assert bounded.params == {"k" * 255 + "…": "v", "list": ["w" * 255 + "…", 7]}
    assert len(bounded.parse_warnings) == 2


def test_a_cut_names_where_it_was_made_among_nested_params():
    params = {"chem": {"file": "f" * 300, "ok": "short", "list": [1, {"deep": "d" * 300}]}}
    bounded = bound_record(BASE.replace(params=params))
    assert bounded.params["chem"]["ok"] == "short"
    assert bounded.parse_warnings == (
        "params.chem.file: 300 characters, cut to 256 (setting limit)",
        "params.chem.list.deep: 300 characters, cut to 256 (setting limit)",
    )


def test_params_beyond_the_keyword_limit_are_dropped_with_a_warning():
    many = {f"k{i}": "v" for i in range(LIMITS["params"] + 10)}
    bounded = bound_record(BASE.replace(params=many))
    assert list(bounded.params) == list(many)[: LIMITS["params"]]
    assert bounded.parse_warnings == (f"params: {len(many):,} keywords, only the first 2048 kept",)


def test_parse_warnings_are_bounded_in_count_and_length():
    warnings = ("w" * 10_000, *(f"warning {i}" for i in range(200)))
    bounded = bound_record(BASE.replace(parse_warnings=warnings))
    assert len(bounded.parse_warnings) == LIMITS["warnings"] == 64
    assert bounded.parse_warnings[0] == "w" * 511 + CUT_MARK
    assert bounded.parse_warnings[1:3] == ("warning 0", "warning 1")
    assert bounded.parse_warnings[-1] == "138 more parse warnings not kept"  # 201 - 63


def test_the_warnings_of_the_cuts_follow_the_parsers_own():
    bounded = bound_record(BASE.replace(host="h" * 300, parse_warnings=("log: shrank",)))
    assert bounded.parse_warnings == (
        "log: shrank",
        "host: 300 characters, cut to 256 (name limit)",
    )


def test_an_integer_that_does_not_fit_its_column_is_null_with_a_warning(tmp_path):
    bounded = bound_record(BASE.replace(n_procs=3_000_000_000, n_cells=10**19))
    assert (bounded.n_procs, bounded.n_cells) == (None, None)
    assert bounded.parse_warnings == (
        "n_procs: 3000000000 does not fit INTEGER, left NULL",
        "n_cells: 10000000000000000000 does not fit BIGINT, left NULL",
    )
    with connect(tmp_path / "w.duckdb") as con:  # unbounded, the swap of the partition fails
        replace_partitions(con, [PartitionRows("kraken", "bob", [bounded], [])])
        assert con.execute("SELECT n_procs FROM runs").fetchall() == [(None,)]


def test_identities_are_never_cut():
    record = BASE.replace(run_path="kraken/bob/" + "d" * 300, log_path="x" * 300)
    assert bound_record(record) is record


def test_every_text_column_from_the_files_has_a_limit_new_ones_included():
    for column in RUN_COLUMNS:
        if column.sql_type != "VARCHAR" or column.name in IDENTITY_COLUMNS:
            continue
        bounded = bound_record(BASE.replace(**{column.name: "x" * 5000}))
        assert len(getattr(bounded, column.name)) in (256, 1024), column.name


def test_bounding_twice_changes_nothing():
    once = bound_record(
        BASE.replace(
            mixture_name="m" * 999, parse_warnings=tuple("w" * 600 for _ in range(99)),
            params={"k": "v" * 999}, n_procs=2**40,
        )
    )  # fmt: skip
    assert bound_record(once) is once


def test_clean_record_bounds_records_stored_before_the_limits():
    cleaned, _ = clean_record(BASE.replace(error_signature="s" * 5000))
    assert cleaned is not None and len(cleaned.error_signature) == 1024


def test_the_limits_are_the_ones_contract_notes_documents():
    notes = (Path(__file__).resolve().parents[1] / "docs" / "contract-notes.md").read_text()
    for limit in VALUE_LIMITS:
        assert re.search(rf"\| {limit.kind} \| {limit.limit:,} {limit.unit} \|", notes), limit.kind
