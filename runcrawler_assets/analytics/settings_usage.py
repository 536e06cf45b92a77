"""What was run: runs per mixture × dimension, LES model, artificial viscosity, scheme, mesh size.

The seed asked whether every mixture was tested in both 2D and 3D; the
other counts show which models and mesh sizes the team actually uses.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    NO_RUNS,
    NOT_SET,
    Analysis,
    AnalysisResult,
    Bins,
    RunFilter,
    query,
    share_pct,
)

# The categorical settings counted here: column → label in findings and charts.
COUNTED_SETTINGS: dict[str, str] = {
    "les_model": "LES model",
    "artificial_viscosity_model": "artificial viscosity model",
    "convection_scheme": "convection scheme",
}
# Every setting of the `run_settings` table, with its label.
SETTING_LABELS: dict[str, str] = {**COUNTED_SETTINGS, "mesh_nodes": "mesh size (nodes)"}
# Mesh sizes by decade of nodes, the way users talk about meshes.
MESH_NODE_BINS = Bins((10_000, 100_000, 1_000_000, 10_000_000), unit="nodes")


def _counts(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, setting: str, value_sql: str
) -> pd.DataFrame:
    return query(
        con,
        f"""
        SELECT $setting AS setting, {value_sql} AS value, count(*) AS runs,
               {share_pct("count(*)")} AS share_pct
        FROM {{runs}} GROUP BY value ORDER BY runs DESC, value
        """,
        run_filter,
        setting=setting,
    )


def setting_counts(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Long table (setting, value, runs, share_pct): the counted settings, then mesh-size bins."""
    frames = [
        _counts(con, run_filter, column, f"coalesce({column}, '{NOT_SET}')")
        for column in COUNTED_SETTINGS
    ]
    mesh = _counts(con, run_filter, "mesh_nodes", MESH_NODE_BINS.sql("n_nodes"))
    mesh["value"] = pd.Categorical(mesh["value"], categories=MESH_NODE_BINS.labels())
    mesh = mesh.sort_values("value")
    mesh["value"] = mesh["value"].astype("string")
    return pd.concat([*frames, mesh], ignore_index=True)


def mixture_by_dimension(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """Runs per mixture in 2D and 3D, and whether each mixture was tested in both."""
    return query(
        con,
        f"""
        SELECT coalesce(mixture_name, '{NOT_SET}') AS mixture_name,
               count(*) FILTER (WHERE dimension = 2) AS runs_2d,
               count(*) FILTER (WHERE dimension = 3) AS runs_3d,
               count(*) FILTER (WHERE dimension IS NULL) AS runs_dimension_unknown,
               runs_2d > 0 AND runs_3d > 0 AS tested_in_2d_and_3d
        FROM {{runs}} GROUP BY ALL ORDER BY runs_2d + runs_3d DESC, mixture_name
        """,
        run_filter,
    )


def _findings(counts: pd.DataFrame, mixtures: pd.DataFrame) -> list[str]:
    if mixtures.empty:
        return [NO_RUNS]
    findings = []
    untested = mixtures.loc[~mixtures["tested_in_2d_and_3d"], "mixture_name"].tolist()
    if untested:
        findings.append(
            f"{len(untested)} of {len(mixtures)} mixtures were not run in both 2D and 3D: "
            + ", ".join(untested)
            + "."
        )
    else:
        findings.append(f"All {len(mixtures)} mixtures were run in both 2D and 3D.")
    for column, label in COUNTED_SETTINGS.items():
        top = counts[counts["setting"] == column].iloc[0]
        findings.append(f"Most used {label}: {top['value']} ({top['share_pct']:.0f} % of runs).")
    return findings


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    counts = setting_counts(con, run_filter)
    mixtures = mixture_by_dimension(con, run_filter)
    return AnalysisResult(
        tables={"run_settings": counts, "mixture_by_dimension": mixtures},
        findings=_findings(counts, mixtures),
    )


ANALYSIS = Analysis(
    name="run_settings",
    title="What was run",
    description="Runs per mixture and dimension, LES model, artificial viscosity, "
    "convection scheme and mesh size.",
    compute=compute,
    tables=("run_settings", "mixture_by_dimension"),
)
