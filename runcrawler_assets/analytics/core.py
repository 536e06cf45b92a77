"""What every analysis shares: the manager's filter, the result shape, and filtered queries.

An analysis reads only the `runs` table and returns plain DataFrames (or, for
a table too big to cross pandas, a `StagedTable` the store copies in SQL) and
sentences, never pictures: the charts are drawn from its tables afterwards
(`reporting.figures`), so that the tables and the findings can be stored once
and everything shown (the Dagster UI, the report, the notebook) is drawn from
them. Filters reach SQL as bound parameters only: a user named
`x'; DROP TABLE runs; --` is just a user.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import duckdb
import pandas as pd

# Failure rate = (failed + killed) / finished runs; running and not_started
# runs have no outcome yet, so they count in neither.
FAILED_STATUSES: tuple[str, ...] = ("failed", "killed")
UNFINISHED_STATUSES: tuple[str, ...] = ("running", "not_started")
NOT_SET = "(not set)"
# The runs whose efficiency is a measurement: successful, above zero and finite (a wall time
# near the largest double times the processes overflows to infinity; NaN sorts above all).
MEASURED = "status = 'success' AND efficiency > 0 AND isfinite(efficiency)"
NO_RUNS = "No runs match the filter."


def _as_datetime(moment: date | datetime, end_of_day: bool) -> datetime:
    """A day given as a date covers the whole day, so `until=2024-03-31` includes March 31."""
    if isinstance(moment, datetime):
        return moment
    start = datetime.combine(moment, time())
    return start + timedelta(days=1) if end_of_day else start


@dataclass(frozen=True)
class RunFilter:
    """The runs a manager asks about: a period of `created_at`, a cluster, a user, a solver.

    `since` is inclusive and `until` exclusive for datetimes; a plain date for
    `until` means up to the end of that day.
    """

    since: date | datetime | None = None
    until: date | datetime | None = None
    cluster: str | None = None
    user: str | None = None
    solver: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        """A SQL condition over `runs` with its named parameters (never inlined values)."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.since is not None:
            clauses.append("created_at >= $filter_since")
            params["filter_since"] = _as_datetime(self.since, end_of_day=False)
        if self.until is not None:
            clauses.append("created_at < $filter_until")
            params["filter_until"] = _as_datetime(self.until, end_of_day=True)
        if self.cluster is not None:
            clauses.append("cluster = $filter_cluster")
            params["filter_cluster"] = self.cluster
        if self.user is not None:
            clauses.append('"user" = $filter_user')
            params["filter_user"] = self.user
        if self.solver is not None:
            clauses.append("solver = $filter_solver")
            params["filter_solver"] = self.solver
        return (" AND ".join(clauses) or "TRUE"), params

    def describe(self) -> str:
        """The filter in words, for titles and the report header."""
        parts = []
        if self.since is not None:
            parts.append(f"since {self.since.isoformat()}")
        if self.until is not None:
            parts.append(f"until {self.until.isoformat()}")
        if self.cluster is not None:
            parts.append(f"cluster {self.cluster}")
        if self.user is not None:
            parts.append(f"user {self.user}")
        if self.solver is not None:
            parts.append(f"solver {self.solver}")
        return ", ".join(parts) or "all runs"


def query(
    con: duckdb.DuckDBPyConnection, sql: str, run_filter: RunFilter | str, **params: Any
) -> pd.DataFrame:
    """Run `sql`, where `{runs}` stands for the filtered `runs` table, with bound parameters."""
    text, filter_params = with_runs(sql, run_filter)
    return con.execute(text, {**filter_params, **params}).df()


def with_runs(sql: str, run_filter: RunFilter | str) -> tuple[str, dict[str, Any]]:
    """`sql` with `{runs}` standing for the runs `run_filter` keeps, and the filter's bound
    parameters. `run_filter`: the manager's filter, or a condition over `runs` in SQL (the
    code's own, never a user's text: a memo's users, `memo`)."""
    where, params = (run_filter, {}) if isinstance(run_filter, str) else run_filter.where()
    return sql.replace("{runs}", f"(SELECT * FROM runs WHERE {where})"), params


def counted(count: int, noun: str) -> str:
    """`count` and `noun`, plural unless one: "1 user", "3 users" (findings are read aloud)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def share_pct(expression: str) -> str:
    """SQL: `expression` (a trusted aggregate) as a percentage of its total over the result."""
    return f"round(100 * {expression} / nullif(sum({expression}) OVER (), 0), 1)"


def complete_counts(
    reference: pd.DataFrame, counts: pd.DataFrame, on: str | list[str]
) -> pd.DataFrame:
    """Every row of `reference` (each category, stage, hour) with its `runs` from `counts`,
    zero where nothing was counted, in the reference's order."""
    frame = reference.merge(counts, on=on, how="left")
    frame["runs"] = frame["runs"].fillna(0).astype("int64")
    return frame.reset_index(drop=True)


def with_share(frame: pd.DataFrame, within: str | None = None) -> pd.DataFrame:
    """`frame` with `share_pct`: each row's `runs` as a percentage of all (or of its `within`)."""
    runs = frame["runs"].astype(float)
    if within is None:
        totals = pd.Series(runs.sum(), index=frame.index)
    else:
        totals = runs.groupby(frame[within]).transform("sum")
    frame["share_pct"] = (100 * runs / totals.where(totals > 0)).fillna(0.0).round(1)
    return frame


def exact_sum(column: str, digits: int = 1) -> str:
    """SQL for the sum of a DOUBLE column, rounded to `digits`, computed in decimals: DuckDB
    sums doubles in any order (in parallel), and a float sum that lands on a rounding tie
    (6969.95) would round either way from one refresh to the next."""
    return f"round(sum(coalesce({column}, 0)::DECIMAL(18, 3)), {digits})::DOUBLE"


def temporary_name(what: str) -> str:
    """A temporary table's name no other result on the connection uses (a staged table lives
    until stored, maybe past the next analysis)."""
    return f"rc_{what}_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class StagedTable:
    """A result table still in DuckDB: `select`, a query over the temporary tables
    `temporary` on `con`, the connection the analysis computed on.

    A million runs give hundreds of thousands of fixes and campaigns (issue 16): read into
    pandas only to be written back, they cost more than computing them. The store runs
    `select` into the stored table in SQL when it writes to `con` (else it reads it into
    pandas), then drops the temporary tables; a result never stored keeps them until `con`
    closes.
    """

    con: duckdb.DuckDBPyConnection
    select: str
    temporary: tuple[str, ...]
    # Set by a refresh through a memo (`memo`): the stored table keeps its rows where this
    # condition does not hold and gains `select`'s, in place of being replaced whole.
    replacing: str | None = None

    def df(self) -> pd.DataFrame:
        if self.replacing is not None:
            raise ValueError("a table updated in place is only stored on its own connection")
        return self.con.execute(self.select).df()

    def drop(self) -> None:
        drop_temporary(self.con, self.temporary)


def drop_temporary(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS temp.{name}")


@dataclass(frozen=True)
class AnalysisResult:
    """What an analysis produced: tables by name, in the order its `Analysis` declares, and
    findings, sentences a manager reads. A stored result's tables are all DataFrames."""

    tables: dict[str, pd.DataFrame | StagedTable]
    findings: list[str] = field(default_factory=list)
    # The full length of the tables read back as a preview (`Analysis.previewed`).
    row_counts: dict[str, int] = field(default_factory=dict)
    # A refresh through a memo (`memo`): how many of its keys (`made_of`: "users" or
    # "partitions") had their rows made again (None: all).
    made_again: int | None = None
    made_of: str = ""

    def rows(self, name: str) -> int:
        """How many rows the table has, whether all of them were read back or its first."""
        return self.row_counts.get(name, len(self.tables[name]))


@dataclass(frozen=True)
class Analysis:
    """One question managers ask, answered by `compute` over the (filtered) `runs` table.

    `tables` are what the report shows, the first named after the analysis;
    `chart_tables` are stored too, but only for drawing (a sample of runs, box
    statistics, histogram bins). `compute` returns exactly these tables.
    `previewed`, among `tables`, are lists no chart draws, of a row per run or so
    (hundreds of thousands at a million runs), each with its order (an `ORDER BY`):
    shown, they are read back as their first rows in that order and their count
    (`store.load_results`), never whole. `refresh`, when given, computes over all runs
    what `compute` does without a filter, reusing what the last refresh stored (`memo`):
    the store refreshes with it. `kept_tables` are stored for it alone (the digests of a
    memo), never read back nor shown. `views`, among `tables`, are stored as views over
    its other stored tables (name → the view's query), so that what is repeated across
    many rows is written once (`fixes`); `compute` does not return them. `first_rows`, for
    a previewed view, gives the query of its first rows (from their number) cheaper than
    sorting the whole view.
    """

    name: str
    title: str
    description: str
    compute: Callable[[duckdb.DuckDBPyConnection, RunFilter], AnalysisResult]
    tables: tuple[str, ...]
    chart_tables: tuple[str, ...] = ()
    previewed: Mapping[str, str] = field(default_factory=dict)
    refresh: Callable[[duckdb.DuckDBPyConnection], AnalysisResult] | None = None
    kept_tables: tuple[str, ...] = ()
    views: Mapping[str, str] = field(default_factory=dict)
    first_rows: Mapping[str, Callable[[int], str]] = field(default_factory=dict)

    @property
    def read_tables(self) -> tuple[str, ...]:
        """The tables read back from the store: shown ones, then those charts draw."""
        return self.tables + self.chart_tables

    @property
    def stored_tables(self) -> tuple[str, ...]:
        """Every table `compute` returns and the store writes, shown ones first, kept ones
        last (its views are made over them)."""
        return tuple(t for t in self.read_tables if t not in self.views) + self.kept_tables

    @property
    def stored_names(self) -> frozenset[str]:
        """What the store holds of the analysis once stored: its tables and its views."""
        return frozenset(self.stored_tables) | frozenset(self.views)


@dataclass(frozen=True)
class Bins:
    """Fixed bins over a numeric column, so a manager reads "64–255 processes", not a float.

    Edges split the line into `< e0`, `[e0, e1)`, ..., `≥ en`; integer bins are
    labelled with inclusive bounds (`64–255`) unless the bound is round in
    thousands (`10k–100k`, as users say it), real ones as half-open ranges.
    `right_closed` real bins read `≤ e0`, `(e0, e1]`, ..., `> en`, for limits
    users state as "above 0.9".
    """

    edges: tuple[float, ...]
    integer: bool = True
    unit: str = ""
    right_closed: bool = False

    @staticmethod
    def _round(value: float) -> str | None:
        for size, suffix in ((1_000_000, "M"), (1_000, "k")):
            if value >= size and value % size == 0:
                return f"{int(value // size)}{suffix}"
        return None

    def _fmt(self, value: float) -> str:
        return (self._round(value) or f"{int(value)}") if self.integer else f"{value:g}"

    def _upper(self, high: float) -> str:
        return self._round(high) or f"{int(high) - 1}"

    def labels(self) -> list[str]:
        """Bin labels in increasing order, then the label of missing values."""
        first, last = self._fmt(self.edges[0]), self._fmt(self.edges[-1])
        pairs = list(zip(self.edges, self.edges[1:], strict=False))
        if self.right_closed:
            inner = [f"({low:g}, {high:g}]" for low, high in pairs]
            ranges = [f"≤ {first}", *inner, f"> {last}"]
        else:
            inner = [
                f"{self._fmt(low)}–{self._upper(high)}" if self.integer else f"[{low:g}, {high:g})"
                for low, high in pairs
            ]
            ranges = [f"< {first}", *inner, f"≥ {last}"]
        unit = f" {self.unit}" if self.unit else ""
        return [label + unit for label in ranges] + [NOT_SET]

    def sql(self, column: str) -> str:
        """A CASE expression naming the bin of `column` (a trusted column name, not input)."""
        labels = self.labels()
        whens = " ".join(
            f"WHEN {column} {'<=' if self.right_closed else '<'} {edge!r} THEN '{label}'"
            for edge, label in zip(self.edges, labels, strict=False)
        )
        return f"CASE WHEN {column} IS NULL THEN '{NOT_SET}' {whens} ELSE '{labels[-2]}' END"
