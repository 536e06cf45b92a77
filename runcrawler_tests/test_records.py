import dataclasses
from datetime import datetime

import pytest

from runcrawler_assets.records import (
    CATEGORY_NAMES,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    RunRecord,
    run_id_for,
)

CONTRACT_COLUMNS = (
    "run_id",
    "cluster",
    "user",
    "run_path",
    "solver",
    "solver_version",
    "created_at",
    "started_at",
    "ended_at",
    "n_procs",
    "n_nodes",
    "n_cells",
    "dimension",
    "iterations_requested",
    "iterations_done",
    "cpu_time_s",
    "wall_time_s",
    "cpu_hours",
    "efficiency",
    "status",
    "stage_code",
    "stage",
    "error_category",
    "error_message",
    "error_signature",
    "mixture_name",
    "les_model",
    "artificial_viscosity_model",
    "convection_scheme",
    "ncell_group",
    "reactive_flow",
    "cfl",
    "n_restarts",
    "params",
    "log_bytes",
    "fingerprint",
    "parsed_at",
)


def test_every_contract_column_is_a_run_column():
    names = [c.name for c in RUN_COLUMNS]
    assert set(CONTRACT_COLUMNS) <= set(names)
    assert len(names) == len(set(names))


def test_every_error_category_of_the_schema_exists():
    assert set(CATEGORY_NAMES) == {
        "none", "time_limit", "out_of_memory", "cancelled", "segfault",
        "numerical_instability", "thermo_table", "mixture", "input_file",
        "mpi_abort", "truncated", "unknown",
    }  # fmt: skip


def test_json_round_trip_is_lossless():
    record = RunRecord(
        run_id=run_id_for("kraken/o'neil/a/run1"),
        cluster="kraken",
        user="o'neil",
        run_path="kraken/o'neil/a/run1",
        solver="avbp",
        created_at=datetime(2025, 3, 1, 12, 0, 5),
        started_at=datetime(2025, 3, 1, 13, 0, 0, 123000),
        n_procs=288,
        efficiency=1.2152e-05,
        status="success",
        reactive_flow=True,
        params={"cfl": "0.7", "mixture_name": "CH4-AIR-2S-BFER"},
        parse_warnings=("a warning",),
    )
    text = record.to_json()
    assert f'"schema_version": {SCHEMA_VERSION}' in text
    assert RunRecord.from_json(text) == record


def test_a_newer_schema_version_is_refused_with_a_clear_error():
    data = RunRecord(run_id="x", status="success").to_json_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="schema_version"):
        RunRecord.from_json_dict(data)


def test_run_id_is_stable_and_depends_on_the_path():
    assert run_id_for("a/b/c") == run_id_for("a/b/c")
    assert run_id_for("a/b/c") != run_id_for("a/b/d")


def test_replace_gives_what_dataclasses_replace_gives_and_refuses_unknown_fields():
    record = RunRecord(run_id="r", cluster="k", user="u", run_path="k/u/r", solver="avbp")
    changed = record.replace(n_procs=64, parse_warnings=("w",))
    assert changed == dataclasses.replace(record, n_procs=64, parse_warnings=("w",))
    assert (record.n_procs, changed.n_procs, changed.run_path) == (None, 64, "k/u/r")
    with pytest.raises(TypeError, match="no field n_proc"):
        record.replace(n_proc=64)
