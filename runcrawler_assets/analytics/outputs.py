"""Where analysis results go: tables into DuckDB, charts as PNG files under the charts folder.

Kept apart from the analyses so that computing stays side-effect free (the
report can compute for a filter without touching the warehouse) and so the
Dagster assets and the CLI write results the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter
from runcrawler_assets.warehouse.database import write_table


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as strings, so an empty table still gets VARCHAR columns, not NULL ones."""
    return frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object})


def write_outputs(
    con: duckdb.DuckDBPyConnection, charts_dir: Path, result: AnalysisResult
) -> list[Path]:
    """Replace each result table in the warehouse and write each chart; returns the chart paths."""
    for name, frame in result.tables.items():
        write_table(con, name, _typed(frame))
    charts_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, png in result.charts.items():
        path = charts_dir / file_name
        path.write_bytes(png)
        paths.append(path)
    return paths


def run_all(
    con: duckdb.DuckDBPyConnection, analyses: Iterable[Analysis], run_filter: RunFilter
) -> dict[str, AnalysisResult]:
    """Every analysis computed for one filter, by name: what `report.build_report` takes."""
    return {analysis.name: analysis.compute(con, run_filter) for analysis in analyses}
