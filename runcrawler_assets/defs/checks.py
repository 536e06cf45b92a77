"""Asset checks: the ingest's promises, verified by Dagster after each update of `runs`.

On `runs`, run in the same run as the asset (the sensor's, the nightly
reconciliation's and `runcrawler crawl`'s runs include them), in one step
(`runs_checks`: each is still a check of its own in the UI, which can run any):

- `every_discovered_run_is_stored` (blocking): each run directory and problem
  `run_files` recorded is one row of `runs` or one entry of `quarantine`, and
  nothing else is there. In a partitioned run it checks that run's partitions
  (another run may be between discovery and its swap for other partitions);
  run alone (the UI's *Execute*), every recorded partition and every row.
- `run_ids_are_unique` (blocking): no `run_id` holds two rows (guaranteed, and not read,
  when `runs` keeps `run_id` as its primary key, as runcrawler makes it).
- `parse_warnings_are_rare` (warning only): the share of runs with parse warnings.

A blocking check that fails (ERROR severity) fails its step, and Dagster does
not start any asset downstream of `runs` in that run: the analytics keep their
last good state. Checks read DuckDB, so they sit in the `duckdb` pool with the
writers.

The report's freshness is a `FreshnessPolicy` (Dagster 1.13's API, evaluated by
the daemon, shown in the UI): it is refreshed at least nightly, so older than
26 h means the chain has stopped. It is defined here and attached in
`definitions.py` (`with_report_freshness`), leaving the analytics module alone.
"""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    AssetSpec,
    FreshnessPolicy,
    MetadataValue,
    apply_freshness_policy,
    map_asset_specs,
    multi_asset_check,
)

from runcrawler_assets.defs.assets.analytics import report
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL
from runcrawler_assets.defs.partitions import run_pairs
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.warehouse.health import (
    coverage,
    duplicate_run_ids,
    keyed_by_run_id,
    open_warehouse,
    parse_warning_share,
)

RUNS = "runs"
# Above this share of runs with parse warnings, a log format is probably half understood.
PARSE_WARNING_SHARE_LIMIT = 0.2
# The nightly reconciliation (02:30) refreshes `runs`, then the report: a day and two hours.
REPORT_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=26))


def _run_partitions(context: AssetCheckExecutionContext) -> list[tuple[str, str]] | None:
    """The (cluster, user) pairs of the run's partitions; None when the run has none."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    return run_pairs(context)


def _every_discovered_run_is_stored(
    con: duckdb.DuckDBPyConnection, runs_dir: Path, partitions: list[tuple[str, str]] | None
) -> AssetCheckResult:
    found = coverage(con, runs_dir, partitions)
    return AssetCheckResult(
        check_name="every_discovered_run_is_stored",
        passed=found.complete,
        description=None
        if found.complete
        else f"missing (discovered, neither a row nor quarantined): {found.n_missing}; "
        f"unexpected (stored, not discovered or stored twice): {found.n_unexpected}",
        metadata={
            "partitions": found.partitions,
            "discovered": found.discovered,
            "rows_and_quarantine_entries": found.stored,
            "missing": found.n_missing,
            "unexpected": found.n_unexpected,
            "missing_examples": MetadataValue.json(list(found.missing)),
            "unexpected_examples": MetadataValue.json(list(found.unexpected)),
        },
    )


def _run_ids_are_unique(con: duckdb.DuckDBPyConnection) -> AssetCheckResult:
    duplicated = duplicate_run_ids(con)
    return AssetCheckResult(
        check_name="run_ids_are_unique",
        passed=not duplicated,
        description=f"run_ids held by more than one row: {len(duplicated)}" if duplicated else None,
        metadata={
            "guaranteed_by_primary_key": keyed_by_run_id(con),
            "duplicated_run_ids": len(duplicated),
            "examples": MetadataValue.json({str(run_id): rows for run_id, rows in duplicated[:10]}),
        },
    )


def _parse_warnings_are_rare(con: duckdb.DuckDBPyConnection) -> AssetCheckResult:
    warnings = parse_warning_share(con)
    return AssetCheckResult(
        check_name="parse_warnings_are_rare",
        passed=warnings.share <= PARSE_WARNING_SHARE_LIMIT,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "share": MetadataValue.float(round(warnings.share, 4)),
            "limit": MetadataValue.float(PARSE_WARNING_SHARE_LIMIT),
            "runs": warnings.runs,
            "runs_with_warnings": warnings.with_warnings,
            "most_frequent": MetadataValue.json(dict(warnings.most_frequent)),
        },
    )


CHECK_SPECS = [
    AssetCheckSpec(
        "every_discovered_run_is_stored",
        asset=RUNS,
        blocking=True,
        description="Every run directory and problem that discovery recorded is one row of "
        "`runs` or one entry of `quarantine`, and nothing else is stored (nothing lost, "
        "nothing twice).",
    ),
    AssetCheckSpec(
        "run_ids_are_unique",
        asset=RUNS,
        blocking=True,
        description="No `run_id` holds two rows of `runs` (nor is NULL).",
    ),
    AssetCheckSpec(
        "parse_warnings_are_rare",
        asset=RUNS,
        description=f"At most {PARSE_WARNING_SHARE_LIMIT:.0%} of runs carry parse warnings "
        "(more suggests a log format the parsers half understand). A warning, never blocking.",
    ),
]


@multi_asset_check(
    specs=CHECK_SPECS,
    name="runs_checks",
    can_subset=True,
    pool=DUCKDB_POOL,
    description="The checks on `runs`, in one step on one read of the warehouse (three steps "
    "cost a sensor's refresh ~0.2 s more in Dagster's run machinery).",
)
def runs_checks(
    context: AssetCheckExecutionContext, settings: ConfigResource
) -> Iterator[AssetCheckResult]:
    """Each selected check's result (all three unless the UI picked some); a failed blocking
    one fails the step after all are reported, and nothing downstream of `runs` runs."""
    paths = settings.config
    selected = {key.name for key in context.selected_asset_check_keys}
    with open_warehouse(paths.duckdb_path) as con:
        if "every_discovered_run_is_stored" in selected:
            yield _every_discovered_run_is_stored(con, paths.runs_dir, _run_partitions(context))
        if "run_ids_are_unique" in selected:
            yield _run_ids_are_unique(con)
        if "parse_warnings_are_rare" in selected:
            yield _parse_warnings_are_rare(con)


ASSET_CHECKS: list[AssetChecksDefinition] = [runs_checks]


def with_report_freshness(assets: list[AssetsDefinition]) -> list[AssetsDefinition]:
    """`assets`, the report carrying `REPORT_FRESHNESS` (unless it declares its own policy)."""

    def fresh(spec: AssetSpec) -> AssetSpec:
        if spec.key != report.key:
            return spec
        return apply_freshness_policy(spec, REPORT_FRESHNESS, overwrite_existing=False)

    return list(map_asset_specs(fresh, assets))


def checks_for(assets: list[AssetsDefinition]) -> list[AssetChecksDefinition]:
    """The checks whose target is one of `assets`: what a run materializing them includes."""
    keys = {key for asset in assets for key in asset.keys}
    return [check for check in ASSET_CHECKS if {k.asset_key for k in check.check_keys} <= keys]
