"""One analytics asset per entry of `analytics.ANALYSES`, and the report.

An analytics asset computes its analysis once, stores its tables and
findings in DuckDB, and shows them (charts drawn from the stored tables) in
the UI; the report is assembled from what they stored, computing nothing
after a refresh (`reporting.assemble`). They are unpartitioned and read only
the `runs` table; declarative automation refreshes them once per batch of
`runs` updates. Missing partitions of `runs` (cluster × user pairs nobody
ever used) must not hold them back, hence `eager()` without its
`~any_deps_missing()` clause.
"""

import time
from datetime import date, datetime
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AutomationCondition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from runcrawler_assets.analytics import ANALYSES, Analysis, RunFilter, refresh
from runcrawler_assets.defs.assets import metadata
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, OWNERS
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.reporting.assemble import assemble_report
from runcrawler_assets.reporting.figures import draw_charts, write_charts
from runcrawler_assets.reporting.privacy import key_from_env
from runcrawler_assets.warehouse.database import connect

GROUP = "analytics"
# Eager, but not held back by the many cluster × user pairs that never ran anything, and
# never on an ingest whose blocking checks (defs/checks.py) failed.
AFTER_RUNS_UPDATE = (
    AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
    & AutomationCondition.all_deps_blocking_checks_passed()
)


def analysis_asset(analysis: Analysis) -> AssetsDefinition:
    """The asset of one analysis: its tables and findings into DuckDB, its charts (drawn
    from the stored tables) into <data>/charts/ and the UI."""

    @asset(
        name=analysis.name,
        deps=["runs"],
        description=f"{analysis.title}. {analysis.description}",
        group_name=GROUP,
        owners=OWNERS,
        kinds={"duckdb", "pandas"},
        pool=DUCKDB_POOL,
        automation_condition=AFTER_RUNS_UPDATE,
    )
    def _analysis(settings: ConfigResource) -> MaterializeResult:
        started = time.monotonic()
        paths = settings.config
        with connect(paths.duckdb_path) as con:
            result = refresh(con, analysis)
        charts = draw_charts(analysis.name, result.tables)
        write_charts(paths.charts_dir, charts)
        main_name = analysis.tables[0]
        return MaterializeResult(
            metadata={
                "findings": metadata.findings(result.findings),
                main_name: metadata.table(result.tables[main_name]),
                **{
                    f"chart_{Path(name).stem}": metadata.chart(png, Path(name).stem)
                    for name, png in charts.items()
                },
                "tables": MetadataValue.json(
                    {name: len(frame) for name, frame in result.tables.items()}
                ),
                "charts_dir": MetadataValue.path(str(paths.charts_dir)),
                "duration_s": round(time.monotonic() - started, 3),
            }
        )

    return _analysis


ANALYSIS_ASSETS = [analysis_asset(analysis) for analysis in ANALYSES]


class ReportConfig(Config):
    """The runs the report covers: ISO dates, a cluster, a user, a solver (all optional)."""

    since: str | None = None
    until: str | None = None
    cluster: str | None = None
    user: str | None = None
    solver: str | None = None
    pseudonymize: bool = False  # user names as keyed pseudonyms ($RUNCRAWLER_PSEUDONYM_KEY)

    def run_filter(self) -> RunFilter:
        return RunFilter(
            since=date.fromisoformat(self.since) if self.since else None,
            until=date.fromisoformat(self.until) if self.until else None,
            cluster=self.cluster,
            user=self.user,
            solver=self.solver,
        )


@asset(
    deps=ANALYSIS_ASSETS,
    description="One self-contained HTML page (charts embedded) answering the managers' "
    "questions, written to <data>/report.html.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"html"},
    pool=DUCKDB_POOL,
    automation_condition=AFTER_RUNS_UPDATE,
)
def report(
    context: AssetExecutionContext, config: ReportConfig, settings: ConfigResource
) -> MaterializeResult:
    """Assembled from the stored analytics (computed for the config's filter when it has one)."""
    paths = settings.config
    run_filter = config.run_filter()
    key = key_from_env() if config.pseudonymize else None
    with connect(paths.duckdb_path, read_only=True) as con:
        page = assemble_report(con, run_filter, datetime.now(), pseudonym_key=key)
    out = paths.data_dir / "report.html"
    out.write_text(page.html, encoding="utf-8")
    context.log.info(f"report written to {out} (figures {page.source})")
    summary = [s for result in page.results.values() for s in result.findings[:2]]
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "runs_covered": run_filter.describe(),
            "figures": page.source,
            "bytes": len(page.html.encode("utf-8")),
            "summary": metadata.findings(summary),
        }
    )
