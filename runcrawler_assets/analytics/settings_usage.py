"""What was run: runs per mixture × dimension, LES model, artificial viscosity, scheme, mesh size.

The seed asked whether every mixture was tested in both 2D and 3D; the
other counts show which models and mesh sizes the team actually uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import (
    NO_RUNS,
    NOT_SET,
    Bins,
    share_pct,
)
from runcrawler_assets.analytics.memo import Memo, kept_analysis, made_by

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


# A partition's runs per value of each setting counted (`NOT_SET` for none), and per
# mixture and dimension: what both tables add up.
_VALUES_SQL = " UNION ALL ".join(
    f"""SELECT cluster, "user", '{setting}' AS setting, {value_sql} AS value, count(*) AS runs
        FROM {{runs}} GROUP BY ALL"""
    for setting, value_sql in (
        *((column, f"coalesce({column}, '{NOT_SET}')") for column in COUNTED_SETTINGS),
        ("mesh_nodes", MESH_NODE_BINS.sql("n_nodes")),
    )
)
_MIXTURES_SQL = f"""
    SELECT cluster, "user", coalesce(mixture_name, '{NOT_SET}') AS mixture_name, dimension,
           count(*) AS runs
    FROM {{runs}} GROUP BY ALL
"""

# A partition's counts come from its runs alone: kept between refreshes, made again for the
# partitions whose runs changed (issue 16).
MEMO = Memo(
    digests="run_setting_partition_digests",
    kept=("run_setting_values", "run_setting_mixtures"),
    columns=("cluster", "user", *COUNTED_SETTINGS, "n_nodes", "mixture_name", "dimension"),
    code=repr((_VALUES_SQL, _MIXTURES_SQL)),
    by=("cluster", "user"),
)
_QUERIES = dict(zip(MEMO.kept, (_VALUES_SQL, _MIXTURES_SQL), strict=True))


def _counts(con: duckdb.DuckDBPyConnection, values: str, setting: str) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT setting, value, sum(runs)::BIGINT AS runs, {share_pct("sum(runs)")} AS share_pct
        FROM {values} WHERE setting = $setting GROUP BY ALL ORDER BY runs DESC, value
        """,
        {"setting": setting},
    ).df()


def setting_counts(con: duckdb.DuckDBPyConnection, values: str) -> pd.DataFrame:
    """Long table (setting, value, runs, share_pct): the counted settings, then mesh-size bins;
    `values`: the `run_setting_values` rows, as a query."""
    frames = [_counts(con, values, column) for column in COUNTED_SETTINGS]
    mesh = _counts(con, values, "mesh_nodes")
    mesh["value"] = pd.Categorical(mesh["value"], categories=MESH_NODE_BINS.labels())
    mesh = mesh.sort_values("value")
    mesh["value"] = mesh["value"].astype("string")
    return pd.concat([*frames, mesh], ignore_index=True)


def mixture_by_dimension(con: duckdb.DuckDBPyConnection, mixtures: str) -> pd.DataFrame:
    """Runs per mixture in 2D and 3D, and whether each mixture was tested in both;
    `mixtures`: the `run_setting_mixtures` rows, as a query."""
    return con.execute(
        f"""
        SELECT mixture_name,
               coalesce(sum(runs) FILTER (WHERE dimension = 2), 0)::BIGINT AS runs_2d,
               coalesce(sum(runs) FILTER (WHERE dimension = 3), 0)::BIGINT AS runs_3d,
               coalesce(sum(runs) FILTER (WHERE dimension IS NULL), 0)::BIGINT
                   AS runs_dimension_unknown,
               runs_2d > 0 AND runs_3d > 0 AS tested_in_2d_and_3d
        FROM {mixtures} GROUP BY ALL ORDER BY runs_2d + runs_3d DESC, mixture_name
        """
    ).df()


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


def _shown(
    con: duckdb.DuckDBPyConnection, read: Mapping[str, str]
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables shown, and the findings, from the kept counts."""
    values, mixtures = (read[name] for name in MEMO.kept)
    counts = setting_counts(con, values)
    by_dimension = mixture_by_dimension(con, mixtures)
    tables = {"run_settings": counts, "mixture_by_dimension": by_dimension}
    return tables, _findings(counts, by_dimension)


ANALYSIS = kept_analysis(
    MEMO,
    made_by(_QUERIES),
    _shown,
    name="run_settings",
    title="What was run",
    description="Runs per mixture and dimension, LES model, artificial viscosity, "
    "convection scheme and mesh size.",
    tables=("run_settings", "mixture_by_dimension"),
)
