"""load_runs: the runs table as a typed DataFrame, filtered, split in two, read under a lock."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets import load_runs
from runcrawler_assets.records import CATEGORY_NAMES, RUN_COLUMNS, RunRecord, Status
from runcrawler_assets.warehouse.database import WarehouseLockedError
from runcrawler_assets.warehouse.explore import (
    BOOKKEEPING_COLUMNS,
    EXECUTION_COLUMNS,
    KEY_COLUMNS,
    SETTING_COLUMNS,
    cleaning_effect,
)
from runcrawler_tests.conftest import DemoWarehouse, write_warehouse

INTEGER_DTYPES = {"INTEGER": "Int32", "BIGINT": "Int64"}


@pytest.fixture(scope="module")
def demo_runs(demo_warehouse: DemoWarehouse) -> pd.DataFrame:
    return load_runs(demo_warehouse.settings.data_dir)


@pytest.fixture(scope="module")
def synthetic_data(
    tmp_path_factory: pytest.TempPathFactory, synthetic_records: list[RunRecord]
) -> Path:
    """A data folder holding the synthetic warehouse (users include o'neil)."""
    data = tmp_path_factory.mktemp("synthetic_data")
    write_warehouse(data / "runcrawler.duckdb", synthetic_records)
    return data


def test_load_runs_returns_every_row_and_column_of_the_table(
    demo_warehouse: DemoWarehouse, demo_runs: pd.DataFrame
) -> None:
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        (count,) = con.execute("SELECT count(*) FROM runs").fetchone()
    assert list(demo_runs.columns) == [c.name for c in RUN_COLUMNS]
    assert len(demo_runs) == count > 0
    assert demo_runs["run_path"].is_monotonic_increasing


def test_dtypes_are_timestamps_categoricals_and_nullable_integers(
    demo_runs: pd.DataFrame,
) -> None:
    for column in RUN_COLUMNS:
        dtype = demo_runs[column.name].dtype
        if column.sql_type == "TIMESTAMP":
            assert pd.api.types.is_datetime64_dtype(dtype), column.name
        elif column.sql_type in INTEGER_DTYPES:
            assert dtype == INTEGER_DTYPES[column.sql_type], column.name
        elif column.sql_type == "BOOLEAN":
            assert dtype == "boolean", column.name
        elif column.sql_type == "DOUBLE":
            assert dtype == "float64", column.name
    for setting in ("mixture_name", "les_model", "artificial_viscosity_model"):
        assert isinstance(demo_runs[setting].dtype, pd.CategoricalDtype), setting
    # NULL stays missing in integer columns instead of turning them into floats.
    assert demo_runs["n_procs"].isna().any()


def test_status_and_error_category_list_the_whole_vocabulary_in_order(
    demo_runs: pd.DataFrame,
) -> None:
    assert list(demo_runs["status"].cat.categories) == [s.value for s in Status]
    assert list(demo_runs["error_category"].cat.categories) == list(CATEGORY_NAMES)
    counts = demo_runs["error_category"].value_counts(sort=False)
    assert list(counts.index) == list(CATEGORY_NAMES)


def test_filters_select_what_pandas_selects(synthetic_data: Path) -> None:
    everything = load_runs(synthetic_data)
    since = datetime(2024, 2, 1)
    sliced = load_runs(synthetic_data, since=since, cluster="kraken", user="o'neil")
    expected = everything[
        (everything["created_at"] >= since)
        & (everything["cluster"] == "kraken")
        & (everything["user"] == "o'neil")
    ]
    assert 0 < len(sliced) < len(everything)
    assert list(sliced["run_id"]) == list(expected["run_id"])


def test_until_a_day_includes_that_day_and_strings_are_accepted(synthetic_data: Path) -> None:
    everything = load_runs(synthetic_data)
    days = everything["created_at"].dt.date
    day = days.iloc[len(everything) // 2]
    upto = load_runs(synthetic_data, until=day)
    assert list(upto["run_id"]) == list(everything.loc[days <= day, "run_id"])
    assert (upto["created_at"].dt.date == day).any()
    month = load_runs(synthetic_data, since="2024-03", until="2024-03-31")
    in_march = everything["created_at"].dt.strftime("%Y-%m") == "2024-03"
    assert list(month["run_id"]) == list(everything.loc[in_march, "run_id"])
    assert in_march.any()


def test_every_column_belongs_to_exactly_one_part() -> None:
    parts = KEY_COLUMNS + SETTING_COLUMNS + EXECUTION_COLUMNS + BOOKKEEPING_COLUMNS
    assert sorted(parts) == sorted(c.name for c in RUN_COLUMNS)
    run_params_columns = {c.name for c in RUN_COLUMNS if c.doc.startswith("run.params")}
    assert run_params_columns <= set(SETTING_COLUMNS)


def test_settings_and_execution_frames_split_the_run(
    demo_warehouse: DemoWarehouse, demo_runs: pd.DataFrame
) -> None:
    data = demo_warehouse.settings.data_dir
    settings = load_runs(data, frame="settings")
    execution = load_runs(data, frame="execution")
    assert list(settings.columns) == [*KEY_COLUMNS, *SETTING_COLUMNS]
    assert list(execution.columns) == [*KEY_COLUMNS, *EXECUTION_COLUMNS, "duration"]
    assert {"n_procs", "efficiency", "iterations_done", "wall_time_s"} <= set(execution.columns)
    assert list(settings["run_id"]) == list(execution["run_id"]) == list(demo_runs["run_id"])
    pd.testing.assert_frame_equal(settings, demo_runs[list(settings.columns)])
    expected = demo_runs["ended_at"] - demo_runs["started_at"]
    pd.testing.assert_series_equal(execution["duration"], expected, check_names=False)
    assert (execution["duration"].dropna() >= pd.Timedelta(0)).all()


def test_an_unknown_frame_is_a_clear_error(synthetic_data: Path) -> None:
    with pytest.raises(ValueError, match="frame must be one of runs, settings, execution"):
        load_runs(synthetic_data, frame="everything")  # type: ignore[arg-type]


def test_no_warehouse_says_to_crawl_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="crawl the archive first"):
        load_runs(tmp_path)
    assert not (tmp_path / "runcrawler.duckdb").exists()


def test_data_dir_defaults_to_runcrawler_data(
    synthetic_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCRAWLER_DATA", str(synthetic_data))
    assert len(load_runs()) == len(load_runs(synthetic_data))


def test_importing_load_runs_does_not_import_dagster() -> None:
    code = (
        "import sys; from runcrawler_assets import load_runs; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'dagster'], 'dagster imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _hold_lock(path: str, ready, release) -> None:
    con = duckdb.connect(path)
    ready.set()
    release.wait(60)
    con.close()


@pytest.fixture
def locked_copy(demo_warehouse: DemoWarehouse, tmp_path: Path):
    """A copy of the demo warehouse, and a function that makes another process write-lock it."""
    shutil.copy(demo_warehouse.settings.duckdb_path, tmp_path / "runcrawler.duckdb")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(
        target=_hold_lock, args=(str(tmp_path / "runcrawler.duckdb"), ready, release)
    )
    holder.start()
    try:
        assert ready.wait(30)
        yield tmp_path, release
    finally:
        release.set()
        holder.join(30)


def test_a_lock_held_briefly_is_waited_for(locked_copy, demo_runs: pd.DataFrame) -> None:
    data, release = locked_copy
    threading.Timer(1.0, release.set).start()
    start = time.monotonic()
    runs = load_runs(data, wait=30)
    assert time.monotonic() - start >= 0.9
    assert list(runs["run_id"]) == list(demo_runs["run_id"])


def test_a_lock_held_on_gives_a_clear_error(locked_copy) -> None:
    data, _ = locked_copy
    with pytest.raises(WarehouseLockedError, match="in use by another process"):
        load_runs(data, wait=0.5)


def test_cleaning_effect_counts_what_the_policy_did(
    demo_warehouse: DemoWarehouse, demo_runs: pd.DataFrame
) -> None:
    effect = cleaning_effect(demo_warehouse.settings.data_dir)
    assert effect.kept == len(demo_runs)
    assert effect.records == effect.kept + int(effect.dropped["rows"].sum())
    columns = effect.columns.set_index("column")
    assert (columns["missing"] == columns["filled_with_zero"] + columns["still_null"]).all()
    # Zero-filled columns hold no NULL; the others keep exactly what the records lacked.
    for name, row in columns.iterrows():
        assert demo_runs[name].isna().sum() == row["still_null"], name
    assert columns.loc["log_bytes", "policy"] == "zero"
    assert columns.loc["efficiency", "still_null"] > 0


def test_the_readme_sql_examples_run(tmp_path: Path) -> None:
    """Every SQL example of the README runs on a demo crawled with its accounting dumps
    (the scheduler's examples read `accounting_jobs` and the `scheduler` analysis, the
    remedies' one `typical_fixes`) and answers something."""
    from runcrawler_assets.analytics import ANALYSES
    from runcrawler_assets.analytics.store import refresh
    from runcrawler_assets.archive.discovery import list_partitions
    from runcrawler_assets.config import Config
    from runcrawler_assets.crawl import crawl_into_warehouse
    from runcrawler_assets.demo import Accounting, JobIds, generate_archive
    from runcrawler_assets.warehouse.database import connect

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    queries = re.findall(r"```sql\n(.*?)```", readme, flags=re.DOTALL)
    first = next(i for i, sql in enumerate(queries) if "current_date" in sql)
    assert len(queries) == 8
    accounting = Accounting(3, job_ids := JobIds())
    generate_archive(tmp_path / "archive", 300, 3, job_ids=job_ids, accounting=accounting)
    accounting.write(tmp_path / "accounting")
    settings = Config(
        tmp_path / "archive", tmp_path / "data", accounting_dir=tmp_path / "accounting"
    )
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    with connect(settings.duckdb_path) as con:
        for analysis in ANALYSES:
            refresh(con, analysis)
        answers = [len(con.execute(sql).df()) for sql in queries]
    # One asks about this month, which the demo's dates (2024-2026) never reach.
    assert answers.pop(first) == 0 and all(answers), answers
