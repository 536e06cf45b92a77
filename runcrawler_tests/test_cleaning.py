from runcrawler_assets.cleaning import CLEANING_POLICY, clean_record
from runcrawler_assets.records import RUN_COLUMNS, RunRecord

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
    cleaned, _ = clean_record(BASE.replace(iterations_done=None, n_restarts=None))
    assert cleaned is not None
    assert cleaned.iterations_done == 0
    assert cleaned.n_restarts == 0


def test_unknown_values_stay_null_rather_than_zero():
    cleaned, _ = clean_record(BASE)
    assert cleaned is not None
    assert cleaned.wall_time_s is None
    assert cleaned.efficiency is None


def test_a_run_that_never_started_used_zero_cpu_hours():
    cleaned, _ = clean_record(BASE.replace(status="not_started"))
    assert cleaned is not None and cleaned.cpu_hours == 0.0


def test_every_policy_column_is_a_run_column():
    names = {c.name for c in RUN_COLUMNS}
    assert {rule.column for rule in CLEANING_POLICY} <= names
