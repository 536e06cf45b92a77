"""export_table: a warehouse table to Parquet, CSV or JSON lines that reads back equal."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.records import RunRecord, run_id_for
from runcrawler_assets.warehouse.export import EXPORT_FORMATS, ExportError, export_table
from runcrawler_tests.conftest import DemoWarehouse, write_warehouse

# How DuckDB reads each text format back with the table's types. CSV writes an
# empty string as "" and NULL as nothing; read "" as an empty string.
READERS = {
    "csv": "read_csv($path, columns = $types, allow_quoted_nulls = false)",
    "json": "read_json($path, columns = $types)",
}


def table_frame(
    con: duckdb.DuckDBPyConnection, source: str, params: dict | None = None
) -> pd.DataFrame:
    frame = con.execute(f"SELECT * FROM {source} ORDER BY run_id", params or {}).df()
    frame["params"] = frame["params"].map(json.loads)  # same document, whitespace may differ
    return frame


def read_back(path: Path, fmt: str, db: Path) -> pd.DataFrame:
    """The exported runs as DuckDB reads them, given the table's own column types."""
    with duckdb.connect(str(db), read_only=True) as con:
        if fmt == "parquet":
            return table_frame(con, "read_parquet($path)", {"path": str(path)})
        types = {name: sql for name, sql, *_ in con.execute("DESCRIBE runs").fetchall()}
        return table_frame(con, READERS[fmt], {"path": str(path), "types": types})


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_runs_read_back_equal_to_the_table(
    demo_warehouse: DemoWarehouse, tmp_path: Path, fmt: str
) -> None:
    db = demo_warehouse.settings.duckdb_path
    out = export_table(demo_warehouse.settings.data_dir, "runs", fmt, tmp_path / f"runs.{fmt}")
    assert out == (tmp_path / f"runs.{fmt}").absolute() and out.stat().st_size > 0
    with duckdb.connect(str(db), read_only=True) as con:
        expected = table_frame(con, "runs")
    assert len(expected) > 0
    pd.testing.assert_frame_equal(read_back(out, fmt, db), expected)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_text_with_separators_and_quotes_survives(tmp_path: Path, fmt: str) -> None:
    awkward = 'a, b; "quoted" it\'s [x]\nnext line'
    record = RunRecord(
        run_id=run_id_for("k/o'neil/r"),
        cluster="k",
        user="o'neil",
        run_path="k/o'neil/r",
        solver="avbp",
        status="failed",
        created_at=datetime(2025, 1, 2, 3, 4, 5),
        error_message=awkward,
        params={"probe_x": "0.01, 0.02", "note": "it's [x], y"},
        parse_warnings=(awkward, "second, with a comma"),
    )
    db = write_warehouse(tmp_path / "runcrawler.duckdb", [record])
    out = export_table(tmp_path, "runs", fmt, tmp_path / "out" / f"runs.{fmt}")
    with duckdb.connect(str(db), read_only=True) as con:
        expected = table_frame(con, "runs")
    pd.testing.assert_frame_equal(read_back(out, fmt, db), expected)


def test_default_path_is_under_the_data_folder_and_any_table_exports(data_copy: Path) -> None:
    out = export_table(data_copy, "quarantine", "csv")
    assert out == data_copy / "exports" / "quarantine.csv"
    assert out.read_text(encoding="utf-8").splitlines()[0].startswith("cluster,user,path")
    assert export_table(data_copy, fmt="json") == data_copy / "exports" / "runs.jsonl"


def test_a_bad_format_names_the_formats(data_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown format 'xlsx'; choose one of: parquet, csv"):
        export_table(data_copy, "runs", "xlsx", tmp_path / "runs.xlsx")
    assert not (tmp_path / "runs.xlsx").exists()


@pytest.mark.parametrize("table", ["nope", 'runs"; DROP TABLE runs; --', "RUNS "])
def test_a_bad_table_names_the_tables(data_copy: Path, tmp_path: Path, table: str) -> None:
    listed = (
        r"tables: partition_versions, quarantine, runs, signature_messages, signature_templates$"
    )
    with pytest.raises(ExportError, match=listed):
        export_table(data_copy, table, "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
    with duckdb.connect(str(data_copy / "runcrawler.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0


def test_no_warehouse_says_to_crawl_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="crawl the archive first"):
        export_table(tmp_path, "runs", "parquet", tmp_path / "runs.parquet")
