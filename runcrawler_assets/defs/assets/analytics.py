"""One analytics asset per entry of `analytics.ANALYSES`, and the report.

Each analysis is an asset of its own (its lineage, history and metadata in
the UI), all computed by one multi-asset step (`analyses`, subsettable: a
user may materialize any of them): each analysis's tables and findings go
into DuckDB, its charts (drawn from the stored tables) into the UI, drawn by
a worker while the next analysis computes; the report is assembled from
what they stored, computing nothing after a refresh (`reporting.assemble`).
They are unpartitioned and read only the `runs` table; declarative
automation refreshes them once per batch of `runs` updates (unless the run
that updated `runs` refreshed them too, as a crawl's and the archive
sensor's for one partition do). Missing
partitions of `runs` (cluster × user pairs nobody ever used) must not hold
them back, hence `eager()` without its `~any_deps_missing()` clause.

Nothing changed, nothing done (issue 16): asked to (`only_if_runs_changed`,
as `runcrawler crawl` does), an analysis whose stored result was computed
from the `runs` table as it is now materializes nothing (the step succeeds,
the UI shows no new materialization, and in the same run the report
downstream is skipped). Each materialization carries the version of `runs`
it was computed from as its Dagster data version.
"""

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from runcrawler_assets.analytics import ANALYSES, RunFilter
from runcrawler_assets.analytics.store import out_of_date, runs_version
from runcrawler_assets.defs.assets import metadata
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, OWNERS, run_files, runs_table
from runcrawler_assets.defs.resources import ChartDrawing, ConfigResource
from runcrawler_assets.reporting.assemble import Refreshed, assemble_report, refresh_analyses
from runcrawler_assets.reporting.privacy import key_from_env
from runcrawler_assets.warehouse.database import connect, run_count

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


def only_what_changed(names: Iterable[str], walk_all: bool = False) -> dict[str, Any]:
    """Run config asking `run_files` (unless `walk_all`), `runs` and the analyses among the
    assets `names` to skip what did not change: what `runcrawler crawl`'s runs and the
    archive sensor's ask."""
    names = set(names)
    ops: dict[str, Any] = {}
    if "run_files" in names and not walk_all:
        ops[run_files.op.name] = {"config": {"walk_all": False}}
    if "runs" in names:
        ops[runs_table.op.name] = {"config": {"only_changed": True}}
    if names & {analysis.name for analysis in ANALYSES}:
        ops[analyses.op.name] = {"config": {"only_if_runs_changed": True}}
    return {"ops": ops}


ANALYSIS_SPECS = [
    AssetSpec(
        analysis.name,
        deps=["runs"],
        description=f"{analysis.title}. {analysis.description}",
        group_name=GROUP,
        owners=OWNERS,
        kinds={"duckdb", "pandas"},
        automation_condition=AFTER_RUNS_UPDATE,
        skippable=True,  # unchanged since computed: not materialized
    )
    for analysis in ANALYSES
]


@multi_asset(
    name="analyses",
    specs=ANALYSIS_SPECS,
    can_subset=True,
    pool=DUCKDB_POOL,
    description="Every analysis, one asset each, refreshed in one step: each one's tables "
    "and findings into DuckDB while the charts of those before it are drawn.",
)
def analyses(
    context: AssetExecutionContext,
    config: AnalysisConfig,
    settings: ConfigResource,
    drawing: ChartDrawing,
):
    """The selected analyses: their tables and findings into DuckDB, their charts (drawn
    from the stored tables) into <data>/charts/ and the UI.

    One step for all, not one each: a chart worker draws an analysis's charts while the
    next one's SQL runs (`reporting.assemble.refresh_analyses`), and each analysis is
    materialized as soon as its charts are written, while the others' are drawn (the UI
    shows them one by one). An analysis that fails leaves the others materialized, and
    fails the step after them.
    """
    paths = settings.config
    selected = [a for a in ANALYSES if AssetKey(a.name) in context.selected_asset_keys]
    with connect(paths.duckdb_path) as con:
        version = runs_version(con)
        stale = out_of_date(con, selected, version) if config.only_if_runs_changed else selected
        for analysis in selected:
            if analysis not in stale:
                context.log.info(f"{analysis.name} skipped: runs unchanged (version {version})")
        if not stale:
            return
        runs = run_count(con)
        drawer = drawing.drawer(runs)  # its worker starts importing matplotlib now
        failed = []
        for done in refresh_analyses(
            con,
            stale,
            paths.charts_dir,
            drawer,
            preview_rows=metadata.TABLE_ROWS,
            memory=paths.analytics_memory_for(runs),
            version=version,
        ):
            if done.stored is None:
                context.log.error(f"{done.analysis.name} failed: {done.error!r}")
                failed.append(done.analysis.name)
                continue
            yield MaterializeResult(  # stored now, while the worker draws the others' charts
                asset_key=done.analysis.name,
                data_version=DataVersion(version),
                metadata=_analysis_metadata(done, paths.charts_dir, version),
            )
    if failed:
        raise Failure(f"analyses failed: {', '.join(failed)} (the others were materialized)")


def _analysis_metadata(done: Refreshed, charts_dir: Path, version: str) -> dict[str, Any]:
    """What the UI shows of one refreshed analysis: findings, tables, charts."""
    assert done.stored is not None
    result, analysis = done.stored.result, done.analysis
    return {
        "findings": metadata.findings(result.findings),
        **{name: metadata.table(result.tables[name]) for name in analysis.tables},
        **{
            f"chart_{Path(name).stem}": metadata.chart(png, Path(name).stem)
            for name, png in done.charts.items()
        },
        "tables": MetadataValue.json({name: result.rows(name) for name in result.tables}),
        "charts_dir": MetadataValue.path(str(charts_dir)),
        "charts_redrawn": len(done.charts) - done.unchanged,  # the others show the same
        **_made_again(done),
        "runs_version": version,
        "duration_s": round(done.seconds, 3),
    }


def _made_again(done: Refreshed) -> dict[str, Any]:
    """For an analysis kept per user or per partition between refreshes (`analytics.memo`):
    whose rows this refresh made again, "all" the first time (or after its code changed)."""
    if done.analysis.refresh is None:
        return {}
    assert done.stored is not None
    result = done.stored.result
    made = "all" if result.made_again is None else result.made_again
    return {f"{result.made_of}_made_again": made}


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
    deps=ANALYSIS_SPECS,
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
        page = assemble_report(
            con,
            run_filter,
            datetime.now(),
            pseudonym_key=key,
            charts_dir=paths.charts_dir,
            memory=paths.analytics_memory_for(run_count(con)),
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
