"""How a report is put together: the one path the `report` asset and `runcrawler report` share.

results (stored, or computed for the question) -> charts drawn from their
tables (`figures`) -> the page (`report.render_report`).

Which results: for all runs under their real names, the analytics stored by
the last refresh, when every analysis is stored and was computed from the
`runs` table as it is now; so after a refresh the report computes nothing.
Otherwise (a filter, pseudonyms, or analytics missing or older than `runs`:
a crawl with `--no-analytics`, an ingest since the last refresh) every
analysis is computed for the question into a scratch store (in memory; the
warehouse is only read) and read back as stored ones are, so the page is
built the same way from the same types. The page says which it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from runcrawler_assets.analytics import (
    ANALYSES,
    AnalysisResult,
    RunFilter,
    compute_results,
    load_results,
    runs_version,
)
from runcrawler_assets.reporting.figures import draw_charts
from runcrawler_assets.reporting.privacy import pseudonymize_runs
from runcrawler_assets.reporting.report import render_report

COMPUTED = "computed for this report"


@dataclass(frozen=True)
class Report:
    """A report page, the results it shows, and where they came from."""

    html: str
    results: dict[str, AnalysisResult]
    source: str

    @property
    def from_store(self) -> bool:
        return self.source != COMPUTED


def report_results(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, pseudonym_key: str | None = None
) -> tuple[dict[str, AnalysisResult], str]:
    """The results a report of `run_filter` shows, and where they come from (see above).

    `pseudonym_key` (None: real names) hides users behind keyed pseudonyms; it
    shadows `runs` on `con` for the connection's life.
    """
    if run_filter == RunFilter() and pseudonym_key is None:
        stored = load_results(con, ANALYSES)
        version = runs_version(con)
        if len(stored) == len(ANALYSES) and all(s.runs_version == version for s in stored.values()):
            refreshed = min(s.computed_at for s in stored.values())
            source = f"stored by the refresh of {refreshed.isoformat(sep=' ', timespec='minutes')}"
            return {name: s.result for name, s in stored.items()}, source
    if pseudonym_key is not None:
        pseudonymize_runs(con, pseudonym_key)
    return compute_results(con, ANALYSES, run_filter), COMPUTED


def assemble_report(
    con: duckdb.DuckDBPyConnection,
    run_filter: RunFilter,
    generated_at: datetime,
    pseudonym_key: str | None = None,
) -> Report:
    """The report page for `run_filter` over the warehouse `con` (only read)."""
    results, source = report_results(con, run_filter, pseudonym_key)
    charts = {name: draw_charts(name, result.tables) for name, result in results.items()}
    return Report(render_report(results, charts, run_filter, generated_at, source), results, source)
