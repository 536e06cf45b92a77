"""Setting effects kept per partition between refreshes (issue 16: ten new runs, ten runs' work).

A table of effects is made of partials (`tables.partials`): counts and sums per
cluster × user partition, stratum, value and bin of efficiency, each
partition's from its runs alone (even the median a run's efficiency is taken
relative to: its user's, cluster's and dimension's). So the partials are
stored with the table, digested per partition (`analytics.memo`), and a
refresh makes again those of the partitions whose runs changed, adds them up
with the others' as stored, and sorts only the runs of the bins that hold
the medians. Both analyses comparing groups of runs this way keep them:
`setting_effects` and `version_effects`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import RunFilter, StagedTable
from runcrawler_assets.analytics.memo import Memo, kept_rows
from runcrawler_assets.analytics.setting_effects.tables import (
    Setting,
    effects,
    partials,
    partials_code,
)

# What a run's partials read besides its settings' and stratum's columns.
RUN_COLUMNS = ("cluster", "user", "dimension", "status", "efficiency")


def partials_memo(
    name: str, settings: Sequence[Setting], stratum: str, stratum_columns: Sequence[str]
) -> Memo:
    """The memo of the analysis `name`'s partials: its `<name>_partials` table, digested per
    partition over every `runs` column they read, keyed by the SQL that makes them (other
    settings, such as a new solver version, make every partition's again)."""
    columns = dict.fromkeys(
        [*RUN_COLUMNS, *stratum_columns, *(c for setting in settings for c in setting.columns)]
    )
    return Memo(
        digests=f"{name}_partition_digests",
        kept=(f"{name}_partials",),
        columns=tuple(columns),
        code=partials_code(settings, stratum),
        by=("cluster", "user"),
    )


@dataclass(frozen=True)
class KeptEffects:
    """A table of effects, and what is stored with it for the next refresh: its partials
    and their digests (`tables`, left in DuckDB), and how many partitions (`made_of`) were
    made again (None: all)."""

    table: pd.DataFrame
    tables: dict[str, StagedTable]
    made_again: int | None
    made_of: str


def kept_effects(
    con: duckdb.DuckDBPyConnection,
    memo: Memo,
    settings: Sequence[Setting],
    stratum: str,
    run_filter: RunFilter | None = None,
) -> KeptEffects:
    """The effects of `settings` over the runs `run_filter` keeps, from partials made now;
    or, without a filter (a refresh), from the stored partials of the partitions whose runs
    did not change and those made again of the others (`memo.kept_rows`)."""
    [name] = memo.kept
    kept = kept_rows(
        con, memo, lambda runs: {name: partials(con, runs, settings, stratum)}, run_filter
    )
    try:
        table = effects(con, kept.read[name], run_filter or RunFilter(), settings)
    except BaseException:
        kept.drop()
        raise
    return KeptEffects(table, kept.tables, kept.made_again, memo.kept_per)
