"""One analytics asset per entry of `analytics.ANALYSES`, and the report.

They are unpartitioned and read only the `runs` table; declarative
automation refreshes them once per batch of `runs` updates. Missing
partitions of `runs` (cluster × user pairs nobody ever used) must not hold
them back, hence `eager()` without its `~any_deps_missing()` clause.
"""

import time
from datetime import date, datetime

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AutomationCondition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from runcrawler_assets.analytics import ANALYSES, Analysis, RunFilter, run_all, write_outputs
from runcrawler_assets.defs.assets import metadata
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, OWNERS
from runcrawler_assets.defs.resources import RuncrawlerSettings
from runcrawler_assets.reporting.privacy import key_from_env, pseudonymize_runs
from runcrawler_assets.reporting.report import build_report
from runcrawler_assets.warehouse.database import connect

GROUP = "analytics"
AFTER_RUNS_UPDATE = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())


def analysis_asset(analysis: Analysis) -> AssetsDefinition:
    """The asset of one analysis: its tables into DuckDB, its charts into <data>/charts/."""

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
    def _analysis(settings: RuncrawlerSettings) -> MaterializeResult:
        started = time.monotonic()
        paths = settings.settings
        with connect(paths.duckdb_path) as con:
            result = analysis.compute(con, RunFilter())
            chart_paths = write_outputs(con, paths.charts_dir, result)
        main_name, main_table = next(iter(result.tables.items()))
        return MaterializeResult(
            metadata={
                "findings": metadata.findings(result.findings),
                main_name: metadata.table(main_table),
                **{
                    f"chart_{path.stem}": metadata.chart(result.charts[path.name], path.stem)
                    for path in chart_paths
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
    context: AssetExecutionContext, config: ReportConfig, settings: RuncrawlerSettings
) -> MaterializeResult:
    paths = settings.settings
    run_filter = config.run_filter()
    with connect(paths.duckdb_path) as con:
        if config.pseudonymize:
            pseudonymize_runs(con, key_from_env())
        results = run_all(con, ANALYSES, run_filter)
    page = build_report(results, run_filter, datetime.now())
    out = paths.data_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    context.log.info(f"report written to {out}")
    summary = [s for result in results.values() for s in result.findings[:2]]
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "runs_covered": run_filter.describe(),
            "bytes": len(page.encode("utf-8")),
            "summary": metadata.findings(summary),
        }
    )
