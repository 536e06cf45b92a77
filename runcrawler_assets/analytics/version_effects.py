"""Version regressions: does a solver version fail more, or run slower, than the ones before it?

Each version of a solver is compared with that solver's *older* versions
(a regression is a newer version doing worse than what users had; compared
with all the others, a good version would look bad beside a better one, and
a neutral one good beside a regression), the way `setting_effects` compares
a setting's values: the same statistics and flags, with the failures
compared within strata of the same user *and* the same settings that drive
failures (CFL bin, artificial viscosity model), so that a version adopted
by a careless user, or when a team raised its CFL, is not blamed for it.
Efficiency is relative to the median of the run's user, cluster and
dimension, as there. Runs that name no version are left out (most stopped
before the solver's banner: a launch failure is not the version's); the
oldest version has nothing to be compared with.
"""

from __future__ import annotations

import re

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import Analysis, AnalysisResult, RunFilter, query
from runcrawler_assets.analytics.memo import Memo
from runcrawler_assets.analytics.setting_effects.kept import (
    KeptEffects,
    kept_effects,
    partials_memo,
)
from runcrawler_assets.analytics.setting_effects.sentences import times
from runcrawler_assets.analytics.setting_effects.tables import SETTINGS, Setting

SEPARATOR = " version "
_CFL = next(s for s in SETTINGS if s.name == "cfl")
# Same user, same failure-driving settings: the strata failures are compared in.
STRATUM_SQL = (
    f"concat_ws(chr(31), \"user\", coalesce(artificial_viscosity_model, ''), {_CFL.value_sql})"
)
STRATUM_COLUMNS = ("user", "artificial_viscosity_model", *_CFL.columns)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def version_key(version: str) -> tuple:
    """Versions in release order: 7.9.1 before 7.12.0 (numbers compared as numbers)."""
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-_]", version)
    )


OLDER = "older versions"


def version_settings(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> list[Setting]:
    """One two-valued `Setting` per solver version but the oldest: the version, or
    `OLDER` for the solver's runs on a version released before it (NULL otherwise)."""
    rows = query(
        con,
        "SELECT solver, list(DISTINCT solver_version) AS versions FROM {runs} "
        "WHERE solver_version IS NOT NULL GROUP BY solver ORDER BY solver",
        run_filter,
    )
    settings = []
    for solver, versions in zip(rows["solver"], rows["versions"], strict=True):
        order = sorted(versions, key=version_key)
        for index, version in enumerate(order[1:], start=1):
            older = ", ".join(_literal(v) for v in order[:index])
            value = (
                f"CASE WHEN solver <> {_literal(solver)} THEN NULL "
                f"WHEN solver_version = {_literal(version)} THEN {_literal(version)} "
                f"WHEN solver_version IN ({older}) THEN '{OLDER}' END"
            )
            settings.append(
                Setting(
                    f"{solver}{SEPARATOR}{version}",
                    value,
                    ("solver", "solver_version"),
                    (version, OLDER),
                )
            )
    return settings


def memo_for(settings: list[Setting]) -> Memo:
    """The memo of the partials for these version settings (a new version: other settings,
    every partition's partials made again)."""
    return partials_memo("version_effect", settings, STRATUM_SQL, STRATUM_COLUMNS)


def _versions_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (solver, version) but each solver's oldest, from the effects' table of the
    version settings (`tables.effects`' columns against the older versions, strata
    `STRATUM_SQL`): a `regression` flag and a sentence."""
    table = table[table["value"] != OLDER].reset_index(drop=True)
    solvers = [setting.partition(SEPARATOR)[0] for setting in table.pop("setting")]
    table["solver"] = pd.Series(solvers, index=table.index, dtype=object)
    table = table.rename(columns={"value": "solver_version"})
    table = table[["solver", *table.columns.drop("solver")]]
    table["regression"] = table["failure_flagged"] & (table["failure_ratio"] > 1)
    sentences = [_sentence(row) for _, row in table.iterrows()]
    return table.assign(finding=pd.Series(sentences, index=table.index, dtype=object))


def _sentence(row: pd.Series) -> str:
    label = f"version {row['solver_version']} of {row['solver']}"
    parts = []
    if row["failure_flagged"]:
        parts.append(
            f"{label} fails {times(row, 'failure', 'more', 'less')} often than the versions "
            "before it, in the same users' runs with the same CFL and artificial viscosity "
            f"({100 * row['failure_rate']:.0f} % of {row['finished_runs']} runs, against "
            f"{100 * row['rest_failure_rate']:.0f} %)"
            + (": a regression" if row["regression"] else "")
        )
    if row["efficiency_flagged"]:
        parts.append(
            f"{label} needs {times(row, 'efficiency', 'more', 'less')} time per node and "
            f"iteration than the versions before it ({row['successful_runs']} successful runs)"
        )
    return "; ".join(parts)


def _findings(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return ["No solver has runs on two versions to compare."]
    worse = table[
        table["regression"] | (table["efficiency_flagged"] & (table["efficiency_ratio"] > 1))
    ]
    if worse.empty:
        return [
            "No solver version fails more or runs slower than the versions before it, "
            "beyond the noise."
        ]
    return [row["finding"][0].upper() + row["finding"][1:] + "." for _, row in worse.iterrows()]


def _result(kept: KeptEffects) -> AnalysisResult:
    table = _versions_table(kept.table)
    return AnalysisResult(
        tables={"version_effects": table, **kept.tables},
        findings=_findings(table),
        made_again=kept.made_again,
        made_of=kept.made_of,
    )


def compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> AnalysisResult:
    settings = version_settings(con, run_filter)
    return _result(kept_effects(con, memo_for(settings), settings, STRATUM_SQL, run_filter))


def refresh(con: duckdb.DuckDBPyConnection) -> AnalysisResult:
    """`compute` over all runs, the partials of the partitions whose runs did not change read
    from the stored ones (`setting_effects.kept`) while no version appeared or went."""
    settings = version_settings(con, RunFilter())
    return _result(kept_effects(con, memo_for(settings), settings, STRATUM_SQL))


KEPT = memo_for([])  # its tables' names, whatever the versions

ANALYSIS = Analysis(
    name="version_effects",
    title="Version regressions",
    description="Failure rate and efficiency of each solver version against the versions "
    "before it, within the same users and settings; regressions flagged beyond the noise.",
    compute=compute,
    refresh=refresh,
    tables=("version_effects",),
    kept_tables=(*KEPT.kept, KEPT.digests),
)
