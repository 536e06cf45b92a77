"""How a report is put together: the one path the `report` asset and `runcrawler report` share.

results (stored, or computed for the question) -> charts drawn from their
tables (`plans`, `figures`) -> the page (`report.render_report`).

Which results: for all runs under their real names, the analytics stored by
the last refresh, when every analysis is stored and was computed from the
`runs` table as it is now; so after a refresh the report computes nothing.
Otherwise (a filter, pseudonyms, or analytics missing or older than `runs`:
a crawl with `--no-analytics`, an ingest since the last refresh) every
analysis is computed for the question into a scratch store (in memory; the
warehouse is only read) and read back as stored ones are, so the page is
built the same way from the same types. The page says which it was.

Charts, likewise, are drawn once per refresh: the analytics asset writes each
analysis's charts (drawn from its stored tables, `refresh_analyses`) with a
manifest naming the stored result they were drawn from; a report from the store
reads those files back when the manifest matches, and draws only what is
missing or older (issue 16: drawing is most of the cost of a refresh). A
refresh, in turn, draws only the charts whose tables changed: the manifest
also keeps what each chart showed (`plans.plan_digest`, and the values it drew
to scale), and a chart that would show the same, its bars within a third of a
pixel (`plans.moved_little`), is read back (new runs that all succeeded leave
the error charts as they were; 10 runs among a million move no bar of the
runs per month).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import duckdb

from runcrawler_assets.analytics import (
    ANALYSES,
    Analysis,
    AnalysisResult,
    RunFilter,
    compute_results,
    load_results,
    runs_version,
)
from runcrawler_assets.analytics.core import query
from runcrawler_assets.analytics.store import StoredResult, analytics_memory, refresh_stored
from runcrawler_assets.archive.runstore import read_text, write_atomic
from runcrawler_assets.config import DEFAULT_ANALYTICS_MEMORY
from runcrawler_assets.hints.evaluate import hints_are_current
from runcrawler_assets.hints.rules import SEVERITIES
from runcrawler_assets.reporting.drawing import Batch, ChartDrawer
from runcrawler_assets.reporting.plans import (
    Plans,
    Scaled,
    chart_plans,
    draw_charts,
    moved_little,
    plan_digest,
    scaled_values,
    write_charts,
)
from runcrawler_assets.reporting.privacy import pseudonymize_runs
from runcrawler_assets.reporting.report import MAX_TABLE_ROWS, HintsShown, render_report
from runcrawler_assets.warehouse.accounting_join import has_table

COMPUTED = "computed for this report"
MANIFEST_SUFFIX = ".charts.json"


def _stamp(stored: StoredResult) -> dict[str, str]:
    return {"runs_version": stored.runs_version, "computed_at": stored.computed_at.isoformat()}


def _manifest_path(charts_dir: Path, analysis: str) -> Path:
    return charts_dir / f"{analysis}{MANIFEST_SUFFIX}"


def write_chart_manifest(
    charts_dir: Path,
    analysis: str,
    stored: StoredResult,
    shown: dict[str, str],
    seconds: dict[str, float],
    scaled: dict[str, Scaled],
) -> None:
    """Say which stored result the chart files of `analysis` in `charts_dir` were drawn from,
    what each showed (`shown`: file name -> `plan_digest`, in the plans' order; `scaled`:
    the values it drew to scale, `plans.scaled_values`) and what drawing it cost
    (`seconds`: the next refresh hands the costliest to the chart worker first); call it
    once they are written: a manifest never names files older than itself."""
    manifest = {**_stamp(stored), "shown": shown, "seconds": seconds, "scaled": scaled}
    write_atomic(_manifest_path(charts_dir, analysis), json.dumps(manifest))


def _read_manifest(charts_dir: Path, analysis: str) -> dict | None:
    try:
        manifest = json.loads(read_text(_manifest_path(charts_dir, analysis)))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _unchanged_charts(
    charts_dir: Path, manifest: dict, plans: Plans, shown: dict[str, str], scaled: dict
) -> dict[str, bytes]:
    """The chart files that `manifest` (their analysis's, as it was) says were drawn to show
    just what `shown` (file name -> `plan_digest` of `plans`) says they show now, their bars
    drawn to scale (`scaled`, `_manifest_scaled` of it) where they would be drawn now
    (`moved_little`), read back; a file missing or unreadable is left out (drawn again)."""
    before = manifest.get("shown")
    if not isinstance(before, dict):
        return {}
    kept = {}
    for name, digest in shown.items():
        if before.get(name) == digest and moved_little(plans[name], scaled.get(name)):
            try:
                kept[name] = (charts_dir / name).read_bytes()
            except OSError:
                continue
    return kept


def _manifest_scaled(manifest: dict) -> dict:
    """The values each chart was drawn to scale with, as `manifest` says (none: an older one)."""
    scaled = manifest.get("scaled")
    return scaled if isinstance(scaled, dict) else {}


def _drawing_seconds(manifest: dict) -> dict[str, float]:
    """What drawing each chart cost, by file name, as `manifest` says (none: an older one)."""
    seconds = manifest.get("seconds")
    if not isinstance(seconds, dict):
        return {}
    return {name: float(s) for name, s in seconds.items() if isinstance(s, int | float)}


@dataclass(frozen=True)
class Refreshed:
    """One analysis refreshed: as stored, its charts (drawn, or read back when what they
    show did not change: `unchanged` of them), the seconds its SQL took; or the error that
    stopped it (`stored` is then None)."""

    analysis: Analysis
    stored: StoredResult | None
    charts: dict[str, bytes]
    seconds: float
    error: Exception | None = None
    unchanged: int = 0


@dataclass(frozen=True)
class _Planned:
    """An analysis computed and stored, with what its charts show, those unchanged, and
    what each cost to draw the last time."""

    refreshed: Refreshed
    shown: dict[str, str]
    unchanged: dict[str, bytes]
    seconds: dict[str, float]
    scaled: dict[str, Scaled]  # what each chart's file was drawn with, kept or to be drawn


def _plan(charts_dir: Path, refreshed: Refreshed, drawer: ChartDrawer) -> _Planned:
    """Hand `drawer` the charts of a stored analysis that show something new, with what
    each cost the last time."""
    assert refreshed.stored is not None
    name = refreshed.analysis.name
    plans: Plans = chart_plans(name, refreshed.stored.result.tables)
    shown = {file: plan_digest(plan) for file, plan in plans.items()}
    before = _read_manifest(charts_dir, name) or {}
    drawn_with = _manifest_scaled(before)  # a chart read back: its bars are still those
    unchanged = _unchanged_charts(charts_dir, before, plans, shown, drawn_with)
    seconds = _drawing_seconds(before)
    drawer.add(name, {file: plan for file, plan in plans.items() if file not in unchanged}, seconds)
    scaled = {
        file: drawn_with.get(file, []) if file in unchanged else scaled_values(plan)
        for file, plan in plans.items()
    }
    return _Planned(refreshed, shown, unchanged, seconds, scaled)


def refresh_analyses(
    con: duckdb.DuckDBPyConnection,
    analyses: Iterable[Analysis],
    charts_dir: Path,
    drawer: ChartDrawer,
    preview_rows: int | None = None,
    memory: str = DEFAULT_ANALYTICS_MEMORY,
    version: str | None = None,
) -> Iterator[Refreshed]:
    """Compute and store `analyses` one after another, each one's charts that show something
    new handed to `drawer` as soon as it is stored (its worker draws them while the next
    analysis computes), and give each back as soon as its charts are written, with its
    manifest (the report reads them back instead of drawing them again, and the next
    refresh those that show the same): what the analytics asset does after `runs` changed.
    They come in the order they are done, not the order asked: the caller stores each one
    while the charts of the others are drawn.

    One analysis failing (its SQL or a chart) does not stop the others: its entry holds the
    error, and none of its files are written. Each is stored with `version` (default: the
    version of `runs` now, taken once for all).
    """
    version = version if version is not None else runs_version(con)
    planned: dict[str, _Planned] = {}
    for analysis in analyses:
        started = time.monotonic()
        try:
            stored = refresh_stored(con, analysis, preview_rows, memory, version)
            done = Refreshed(analysis, stored, {}, time.monotonic() - started)
            planned[analysis.name] = _plan(charts_dir, done, drawer)
        except Exception as error:  # reported by the caller, with the other analyses done
            yield Refreshed(analysis, None, {}, time.monotonic() - started, error)
        for name, drawn in drawer.ready():
            yield _written(charts_dir, planned.pop(name), drawn)
    for name, drawn in drawer.drawn_batches():
        yield _written(charts_dir, planned.pop(name), drawn)


def _written(charts_dir: Path, planned: _Planned, drawn: Batch) -> Refreshed:
    """A planned analysis with its charts: the new ones written, then its manifest (removed
    first, so that a refresh stopped between the two leaves every chart to draw again)."""
    done = planned.refreshed
    if isinstance(drawn, Exception):
        return replace(done, stored=None, error=drawn)
    assert done.stored is not None
    if drawn:
        _manifest_path(charts_dir, done.analysis.name).unlink(missing_ok=True)
        write_charts(charts_dir, {file: chart.png for file, chart in drawn.items()})
    seconds = planned.seconds | {file: chart.seconds for file, chart in drawn.items()}
    shown_seconds = {file: seconds[file] for file in planned.shown if file in seconds}
    write_chart_manifest(
        charts_dir, done.analysis.name, done.stored, planned.shown, shown_seconds, planned.scaled
    )
    charts = {
        file: drawn[file].png if file in drawn else planned.unchanged[file]
        for file in planned.shown
    }
    return replace(done, charts=charts, unchanged=len(planned.unchanged))


def drawn_charts(charts_dir: Path, analysis: str, stored: StoredResult) -> dict[str, bytes] | None:
    """The chart files of `analysis` drawn from exactly `stored`, or None (draw them)."""
    manifest = _read_manifest(charts_dir, analysis)
    if manifest is None:
        return None
    if {k: manifest.get(k) for k in ("runs_version", "computed_at")} != _stamp(stored):
        return None
    try:
        return {name: (charts_dir / name).read_bytes() for name in manifest["shown"]}
    except (OSError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Report:
    """A report page, the results it shows, and where they came from."""

    html: str
    results: dict[str, AnalysisResult]
    source: str
    charts_reused: int = 0  # analyses whose chart files were read back, not drawn

    @property
    def from_store(self) -> bool:
        return self.source != COMPUTED


def _stored_results(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, pseudonym_key: str | None
) -> dict[str, StoredResult] | None:
    """The stored results, when the report is for all runs under real names and every
    analysis is stored from the `runs` table as it is now; else None."""
    if run_filter != RunFilter() or pseudonym_key is not None:
        return None
    stored = load_results(con, ANALYSES, preview_rows=MAX_TABLE_ROWS)
    version = runs_version(con)
    if len(stored) == len(ANALYSES) and all(s.runs_version == version for s in stored.values()):
        return stored
    return None


def _source(stored: dict[str, StoredResult]) -> str:
    refreshed = min(s.computed_at for s in stored.values())
    return f"stored by the refresh of {refreshed.isoformat(sep=' ', timespec='minutes')}"


def report_results(
    con: duckdb.DuckDBPyConnection,
    run_filter: RunFilter,
    pseudonym_key: str | None = None,
    memory: str = DEFAULT_ANALYTICS_MEMORY,
) -> tuple[dict[str, AnalysisResult], str]:
    """The results a report of `run_filter` shows, and where they come from (see above).

    `pseudonym_key` (None: real names) hides users behind keyed pseudonyms; it
    shadows `runs` on `con` for the connection's life. Results computed for the report
    are computed under the memory limit `memory` (`RUNCRAWLER_ANALYTICS_MEMORY`).
    """
    stored = _stored_results(con, run_filter, pseudonym_key)
    if stored is not None:
        return {name: s.result for name, s in stored.items()}, _source(stored)
    if pseudonym_key is not None:
        pseudonymize_runs(con, pseudonym_key)
    return compute_results(con, ANALYSES, run_filter, memory), COMPUTED


def stored_hints(con: duckdb.DuckDBPyConnection, run_filter: RunFilter) -> HintsShown | None:
    """What the report shows of the hints the `hints` asset stored, of the runs the filter
    keeps (None: none stored), counted and ordered in DuckDB: only the rows shown are read
    (a million runs hold ~500,000 hints). A pseudonymous report shows none: hints name
    users and their folders."""
    if not has_table(con, "hints"):
        return None
    kept = "SELECT * FROM hints WHERE run_id IN (SELECT run_id FROM {runs})"
    if run_filter == RunFilter() and hints_are_current(con):
        kept = "SELECT * FROM hints"  # every hint's run is there (a million runs: 0.16 s less)
    counts = query(
        con,
        f'SELECT severity, rule, count(*) AS runs, count(DISTINCT "user") AS users '
        f"FROM ({kept}) GROUP BY ALL ORDER BY runs DESC, severity, rule",
        run_filter,
    )
    gravest = "CASE severity " + " ".join(
        f"WHEN '{severity}' THEN {rank}" for rank, severity in enumerate(reversed(SEVERITIES))
    )
    first = query(
        con,
        f'SELECT severity, rule, "user", text FROM ({kept}) '
        f"ORDER BY {gravest} END, created_at DESC, run_path, rule LIMIT {MAX_TABLE_ROWS}",
        run_filter,
    )
    return HintsShown(counts, first, int(counts["runs"].sum()))


def assemble_report(
    con: duckdb.DuckDBPyConnection,
    run_filter: RunFilter,
    generated_at: datetime,
    pseudonym_key: str | None = None,
    charts_dir: Path | None = None,
    memory: str = DEFAULT_ANALYTICS_MEMORY,
) -> Report:
    """The report page for `run_filter` over the warehouse `con` (only read).

    `charts_dir`: where the analytics step wrote their charts; those drawn from the very
    results shown are read back instead of drawn again. `memory`: DuckDB's limit while the
    page's results and hints are read or computed (`report_results`): on a read connection
    DuckDB's own default is most of the RAM, and counting a million runs' hints took ~150 MB.
    """
    with analytics_memory(con, memory, "the report"):
        stored = _stored_results(con, run_filter, pseudonym_key)
        if stored is None:
            results, source = report_results(con, run_filter, pseudonym_key, memory)
            drawn: dict[str, dict[str, bytes] | None] = {}
        else:
            results, source = {name: s.result for name, s in stored.items()}, _source(stored)
            drawn = {
                name: drawn_charts(charts_dir, name, s) if charts_dir else None
                for name, s in stored.items()
            }
        hints = stored_hints(con, run_filter) if pseudonym_key is None else None
    charts = {
        name: drawn.get(name) or draw_charts(name, result.tables)
        for name, result in results.items()
    }
    page = render_report(results, charts, run_filter, generated_at, source, hints)
    reused = sum(value is not None for value in drawn.values())
    return Report(page, results, source, reused)
