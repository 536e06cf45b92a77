"""Version regressions: does a solver version fail more, or run slower, than the others?

Each version of a solver is compared with that solver's other versions the
way `setting_effects` compares a setting's values (the same statistics, the
same flags), but failures are compared within strata of the same user *and*
the same settings that drive failures (CFL bin, artificial viscosity model):
a version adopted by a careless user, or at the time a team raised its CFL,
is not blamed for it. Efficiency is relative to the median of the run's
user, cluster and dimension, as there. A flagged version that fails more
than the others is named in words, with the versions released before it.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter, query
from runcrawler_assets.analytics.setting_effects.sentences import times
from runcrawler_assets.analytics.setting_effects.tables import SETTINGS, Setting, setting_effects

SUFFIX = " version"
_CFL = next(s for s in SETTINGS if s.name == "cfl")
# Same user, same failure-driving settings: the strata failures are compared in.
STRATUM_SQL = (
    f"concat_ws(chr(31), \"user\", coalesce(artificial_viscosity_model, ''), {_CFL.value_sql})"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def version_key(version: str) -> tuple:
    """Versions in release order: 7.9.1 before 7.12.0 (numbers compared as numbers)."""
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-_]", version)
    )


def version_settings(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> list[Setting]:
    """One `Setting` per solver with runs: its version, NULL for other solvers' runs and for
    runs that name none (most stopped before the solver's banner: a launch failure is not
    the version's)."""
    rows = query(
        con,
        "SELECT solver, list(DISTINCT solver_version) AS versions FROM {runs} "
        "WHERE solver_version IS NOT NULL GROUP BY solver ORDER BY solver",
        run_filter,
    )
    settings = []
    for solver, versions in zip(rows["solver"], rows["versions"], strict=True):
        order = tuple(sorted(versions, key=version_key))
        value = f"CASE WHEN solver = {_literal(solver)} THEN solver_version END"
        settings.append(Setting(f"{solver}{SUFFIX}", value, order))
    return settings


def version_effects(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> pd.DataFrame:
    """One row per (solver, version): `setting_effects`' columns, strata `STRATUM_SQL`."""
    table = setting_effects(con, run_filter, version_settings(con, run_filter), STRATUM_SQL)
    table = table.rename(columns={"setting": "solver", "value": "solver_version"})
    table["solver"] = table["solver"].str.removesuffix(SUFFIX)
    sentences = [_sentence(row, table) for _, row in table.iterrows()]
    return table.assign(finding=pd.Series(sentences, index=table.index, dtype=object))


def _sentence(row: pd.Series, table: pd.DataFrame) -> str:
    label = f"{row['solver']} {row['solver_version']}"
    older = [
        v
        for v in table.loc[table["solver"] == row["solver"], "solver_version"]
        if version_key(v) < version_key(row["solver_version"])
    ]
    parts = []
    if row["failure_flagged"]:
        regression = row["failure_ratio"] > 1 and older
        parts.append(
            f"{label} fails {times(row, 'failure', 'more', 'less')} often than the solver's "
            f"other versions in the same users' runs with the same CFL and artificial viscosity "
            f"({100 * row['failure_rate']:.0f} % of {row['finished_runs']} runs)"
            + (f": a regression since {older[-1]}" if regression else "")
        )
    if row["efficiency_flagged"]:
        parts.append(
            f"{label} needs {times(row, 'efficiency', 'more', 'less')} time per node and "
            f"iteration than its other versions ({row['successful_runs']} successful runs)"
        )
    return "; ".join(parts)


def _findings(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return ["No run names its solver version."]
    worse = table[
        (table["failure_flagged"] & (table["failure_ratio"] > 1))
        | (table["efficiency_flagged"] & (table["efficiency_ratio"] > 1))
    ]
    if worse.empty:
        return [
            f"No version of {', '.join(sorted(table['solver'].unique()))} fails more or runs "
            "slower than the others beyond the noise."
        ]
    return [row["finding"][0].upper() + row["finding"][1:] + "." for _, row in worse.iterrows()]


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    table = version_effects(con, run_filter)
    return AnalysisResult(tables={"version_effects": table}, findings=_findings(table))


ANALYSIS = Analysis(
    name="version_effects",
    title="Version regressions",
    description="Failure rate and efficiency per solver version, compared with the solver's "
    "other versions within the same users and settings; flagged beyond the noise.",
    compute=compute,
    tables=("version_effects",),
)
