"""One analytics asset per entry of `analytics.ANALYSES`, and the report.

An analytics asset computes its analysis once, stores its tables and
findings in DuckDB, and shows them (charts drawn from the stored tables) in
the UI; the report is assembled from what they stored, computing nothing
after a refresh (`reporting.assemble`). They are unpartitioned and read only
the `runs` table; declarative automation refreshes them once per batch of
`runs` updates. Missing partitions of `runs` (cluster × user pairs nobody
ever used) must not hold them back, hence `eager()` without its
`~any_deps_missing()` clause.

Nothing changed, nothing done (issue 16): asked to (`only_if_runs_changed`,
as `runcrawler crawl` does), an analysis whose stored result was computed
from the `runs` table as it is now materializes nothing (its step succeeds,
the UI shows no new materialization, and in the same run the report
downstream is skipped). Each materialization carries the version of `runs`
it was computed from as its Dagster data version.
"""

import time
from datetime import date, datetime
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AutomationCondition,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from runcrawler_assets.analytics import ANALYSES, Analysis, RunFilter
from runcrawler_assets.analytics.store import out_of_date, refresh_stored, runs_version
from runcrawler_assets.defs.assets import metadata
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, OWNERS
from runcrawler_assets.defs.resources import ChartDrawing, ConfigResource
from runcrawler_assets.reporting.privacy import key_from_env
from runcrawler_assets.warehouse.database import connect

GROUP = "analytics"
# Eager, but not held back by the many cluster × user pairs that never ran anything, and
# never on an ingest whose blocking checks (defs/checks.py) failed.
AFTER_RUNS_UPDATE = (
    AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
    & AutomationCondition.all_deps_blocking_checks_passed()
)


class AnalysisConfig(Config):
    """`only_if_runs_changed`: compute nothing when the stored result was computed from the
    `runs` table as it is now (what `runcrawler crawl` asks; a manual run computes)."""

    only_if_runs_changed: bool = False


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
        output_required=False,
    )
    def _analysis(
        context: AssetExecutionContext,
        config: AnalysisConfig,
        settings: ConfigResource,
        drawing: ChartDrawing,
    ):
        started = time.monotonic()
        paths = settings.config
        with connect(paths.duckdb_path) as con:
            version = runs_version(con)
            if config.only_if_runs_changed and not out_of_date(con, [analysis], version):
                context.log.info(f"skipped: runs unchanged (version {version}) since computed")
                return
            drawer = drawing.drawer()  # its worker starts while the SQL runs
            stored = refresh_stored(
                con, analysis, preview_rows=metadata.TABLE_ROWS, memory=paths.analytics_memory
            )
        # matplotlib is loaded only when a chart is drawn: an idle `runcrawler crawl`,
        # which imports this module, never pays for it.
        from runcrawler_assets.reporting.assemble import draw_stored_charts

        result = stored.result
        charts = draw_stored_charts(paths.charts_dir, analysis.name, stored, drawer)
        yield MaterializeResult(
            data_version=DataVersion(version),
            metadata={
                "findings": metadata.findings(result.findings),
                **{name: metadata.table(result.tables[name]) for name in analysis.tables},
                **{
                    f"chart_{Path(name).stem}": metadata.chart(png, Path(name).stem)
                    for name, png in charts.items()
                },
                "tables": MetadataValue.json({name: result.rows(name) for name in result.tables}),
                "charts_dir": MetadataValue.path(str(paths.charts_dir)),
                "runs_version": version,
                "duration_s": round(time.monotonic() - started, 3),
            },
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
    from runcrawler_assets.reporting.assemble import assemble_report  # loads matplotlib

    paths = settings.config
    run_filter = config.run_filter()
    key = key_from_env() if config.pseudonymize else None
    with connect(paths.duckdb_path, read_only=True) as con:
        page = assemble_report(
            con,
            run_filter,
            datetime.now(),
            pseudonym_key=key,
            charts_dir=paths.charts_dir,
            memory=paths.analytics_memory,
        )
    out = paths.data_dir / "report.html"
    out.write_text(page.html, encoding="utf-8")
    context.log.info(f"report written to {out} (figures {page.source})")
    summary = [s for result in page.results.values() for s in result.findings[:2]]
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "runs_covered": run_filter.describe(),
            "figures": page.source,
            "charts_reused": page.charts_reused,
            "bytes": len(page.html.encode("utf-8")),
            "summary": metadata.findings(summary),
        }
    )
