"""Explore the runs from Python: the `runs` table as a typed pandas DataFrame in one line.

The seed ended in a DataFrame managers aggregated themselves; `load_runs` gives
them that frame with the dtypes pandas needs to be useful (timestamps,
categoricals, nullable integers, so an unknown stays unknown instead of
turning a column into floats). The DuckDB file is opened read-only, so a
notebook can read while Dagster is idle between writes; a writer holding the
file makes it wait briefly, then fail with a message that says so. Nothing
here imports Dagster.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from runcrawler_assets.analytics.core import RunFilter, query
from runcrawler_assets.archive.runstore import INDEX_FILE, PartitionStore
from runcrawler_assets.config import Config
from runcrawler_assets.records import CATEGORY_NAMES, RUN_COLUMNS, RunRecord, Status
from runcrawler_assets.warehouse.cleaning import CLEANING_POLICY, clean_record
from runcrawler_assets.warehouse.database import (
    LOCK_RETRY_SECONDS,
    WarehouseMissingError,
    connect,
)

Frame = Literal["runs", "settings", "execution"]

# What names a run: in every frame, so frames can be joined on run_id and grouped by user.
KEY_COLUMNS: tuple[str, ...] = ("run_id", "cluster", "user", "run_path", "solver", "created_at")
# What the user set in run.params (the seed's first half of the split).
SETTING_COLUMNS: tuple[str, ...] = (
    "mixture_name",
    "les_model",
    "artificial_viscosity_model",
    "convection_scheme",
    "ncell_group",
    "reactive_flow",
    "cfl",
    "iterations_requested",
    "params",
)
# How runcrawler read the run, not the run itself: only in the full `runs` frame.
BOOKKEEPING_COLUMNS: tuple[str, ...] = (
    "log_path",
    "log_bytes",
    "parse_warnings",
    "fingerprint",
    "parsed_at",
)
# Everything else the log says about the run itself (the seed's second half),
# so a column added to `runs` lands here unless it is a setting.
EXECUTION_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in RUN_COLUMNS if c.name not in KEY_COLUMNS + SETTING_COLUMNS + BOOKKEEPING_COLUMNS
)
FRAMES: dict[str, tuple[str, ...]] = {
    "runs": tuple(c.name for c in RUN_COLUMNS),
    "settings": KEY_COLUMNS + SETTING_COLUMNS,
    "execution": KEY_COLUMNS + EXECUTION_COLUMNS,
}

# Text columns with few distinct values: categoricals group fast and keep their order.
CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "cluster",
    "user",
    "solver",
    "solver_version",
    "status",
    "stage",
    "error_category",
    "mixture_name",
    "les_model",
    "artificial_viscosity_model",
    "convection_scheme",
)
# Categories known in advance, in the order of records.py: a count per status or
# error category then lists every one, zeros included.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status),
    "error_category": CATEGORY_NAMES,
}
# DuckDB types to pandas dtypes; integers and booleans nullable, since NULL means unknown.
PANDAS_DTYPES: dict[str, str] = {
    "INTEGER": "Int32",
    "BIGINT": "Int64",
    "BOOLEAN": "boolean",
    "DOUBLE": "float64",
    "TIMESTAMP": "datetime64[us]",
    "VARCHAR": "string",
    "JSON": "string",
}


def _settings(data_dir: str | Path | None) -> Config:
    """Where `data_dir` keeps things; by default RUNCRAWLER_DATA, as the CLI finds it."""
    settings = Config.from_env()
    if data_dir is None:
        return settings
    return dataclasses.replace(settings, data_dir=Path(data_dir).absolute())


def warehouse_path(data_dir: str | Path | None = None) -> Path:
    """The DuckDB file under `data_dir` (default: RUNCRAWLER_DATA)."""
    return _settings(data_dir).duckdb_path


def connect_read_only(
    data_dir: str | Path | None = None, wait: float = LOCK_RETRY_SECONDS
) -> duckdb.DuckDBPyConnection:
    """A read-only connection that never blocks a writer for longer than it is held.

    Raises `WarehouseMissingError` (a `FileNotFoundError`) before the first crawl,
    `WarehouseLockedError` when a writer keeps the file for more than `wait` seconds.
    """
    path = warehouse_path(data_dir)
    if not path.is_file():
        raise WarehouseMissingError(
            f"no warehouse at {path}: crawl the archive first (`runcrawler crawl --data "
            f"{path.parent}`), or point data_dir / RUNCRAWLER_DATA at the right folder"
        )
    return connect(path, read_only=True, wait=wait)


def _moment(value: str | date | datetime | None) -> date | datetime | None:
    """Strings people type in a notebook: '2024-03' (its first day), '2024-03-31', ISO times.

    A bare day stays a date, so that `until` includes the whole day.
    """
    if not isinstance(value, str):
        return value
    if len(value) == len("2024-03"):
        value += "-01"
    if len(value) == len("2024-03-01"):
        return date.fromisoformat(value)
    return datetime.fromisoformat(value)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column to the dtype its DuckDB type and role call for."""
    sql_types = {c.name: c.sql_type for c in RUN_COLUMNS}
    for name in frame.columns:
        if name in CATEGORICAL_COLUMNS:
            observed = frame[name].dropna().unique()
            known = VOCABULARIES.get(name, ())
            extra = sorted(set(observed) - set(known))
            frame[name] = pd.Categorical(frame[name], categories=[*known, *extra])
        elif sql_types[name] in PANDAS_DTYPES:
            frame[name] = frame[name].astype(PANDAS_DTYPES[sql_types[name]])
    return frame


def load_runs(
    data_dir: str | Path | None = None,
    *,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    cluster: str | None = None,
    user: str | None = None,
    frame: Frame = "runs",
    wait: float = LOCK_RETRY_SECONDS,
) -> pd.DataFrame:
    """The `runs` table (or one half of it) as a typed DataFrame, one row per run.

    `since`/`until`/`cluster`/`user` are the analytics' `RunFilter` on
    `created_at` (a day given for `until` is included; dates may be strings,
    '2024-03-31' or '2024-03' for the month's first day). `frame` picks the
    columns: "runs" all of them, "settings" what the user set in run.params,
    "execution" what the log says about the run itself plus its `duration`;
    every frame starts with the columns naming the run (`KEY_COLUMNS`).
    """
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {', '.join(FRAMES)}, not {frame!r}")
    run_filter = RunFilter(_moment(since), _moment(until), cluster, user)
    columns = ", ".join(f'"{name}"' for name in FRAMES[frame])
    with connect_read_only(data_dir, wait) as con:
        runs = query(con, f"SELECT {columns} FROM {{runs}} ORDER BY run_path", run_filter)
    runs = _typed(runs)
    if frame == "execution":
        runs["duration"] = runs["ended_at"] - runs["started_at"]
    return runs


@dataclass(frozen=True)
class CleaningEffect:
    """What the NaN policy (cleaning.py) did to the stored records of one data folder."""

    records: int
    dropped: pd.DataFrame  # reason, rows: records that could not become a row
    columns: pd.DataFrame  # per column, over kept records: policy, missing, filled, still NULL

    @property
    def kept(self) -> int:
        return self.records - int(self.dropped["rows"].sum())


def _stored_records(runs_dir: Path) -> Iterator[RunRecord]:
    for cluster_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        for user_dir in sorted(p for p in cluster_dir.iterdir() if (p / INDEX_FILE).is_file()):
            yield from PartitionStore(runs_dir, cluster_dir.name, user_dir.name).records()


# The columns a parsed record holds: the swap's joins and learned ids are not the policy's.
PARSED_COLUMNS = tuple(c for c in RUN_COLUMNS if not c.swapped)


def cleaning_effect(data_dir: str | Path | None = None) -> CleaningEffect:
    """Apply `clean_record` to every stored record and count what it dropped and filled.

    The warehouse only holds the result; the JSON store still holds each record
    as parsed, so the policy's effect is measured, not guessed. `still_null`
    counts the values left unknown on purpose (unknown is not zero).
    """
    runs_dir = _settings(data_dir).runs_dir
    records = 0
    reasons: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    filled: Counter[str] = Counter()
    for record in _stored_records(runs_dir) if runs_dir.is_dir() else ():
        records += 1
        cleaned, reason = clean_record(record)
        if cleaned is None:
            reasons[reason] += 1
            continue
        for column in PARSED_COLUMNS:
            if getattr(record, column.name) is None:
                missing[column.name] += 1
                filled[column.name] += getattr(cleaned, column.name) is not None
    rules = {rule.column: rule for rule in CLEANING_POLICY}
    columns = pd.DataFrame(
        [
            {
                "column": c.name,
                "policy": rules[c.name].rule if c.name in rules else "null unless known zero",
                "why": rules[c.name].why if c.name in rules else "unknown is not zero",
                "missing": missing[c.name],
                "filled_with_zero": filled[c.name],
                "still_null": missing[c.name] - filled[c.name],
            }
            for c in PARSED_COLUMNS
            if missing[c.name] or c.name in rules
        ],
        columns=["column", "policy", "why", "missing", "filled_with_zero", "still_null"],
    )
    dropped_frame = pd.DataFrame(reasons.most_common(), columns=["reason", "rows"])
    return CleaningEffect(records, dropped_frame, columns)
