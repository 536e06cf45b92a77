"""The ingest chain, per cluster × user: run_files -> parsed_runs -> runs + quarantine.

Each asset handles every partition of its run (`partitions.run_pairs`), so a
first import of a large archive is one run with a single-run backfill policy,
and parsing uses worker processes inside it. Outputs live in the data folder
(JSON run store, DuckDB), not in an IO manager: the assets return metadata only.

Cost in proportion to change (issue 16): asked to (`only_changed`, as
`runcrawler crawl` does), `runs` swaps only the partitions whose JSON store
changed since their last swap (their version, kept in DuckDB with the rows),
and when none did it materializes nothing: the UI shows its step *skipped*,
and Dagster skips what depends on it in the run (its checks, the analytics,
the report) instead of rematerializing them. A materialization asked for
otherwise (the UI, the sensor's run of a changed partition) swaps its
partitions, as one expects of "Materialize".
"""

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from runcrawler_assets.archive.discovery import discover_partition
from runcrawler_assets.archive.rescan import discovery_from_scan
from runcrawler_assets.archive.runstore import PartitionStore, QuarantineEntry, StoredDiscoveries
from runcrawler_assets.crawl import refresh_partitions
from runcrawler_assets.defs.assets.metadata import markdown_table
from runcrawler_assets.defs.partitions import cluster_user_partitions, run_pairs
from runcrawler_assets.defs.resources import ConfigResource, CrawlProgress
from runcrawler_assets.idle import table_counts
from runcrawler_assets.swap import current_versions, swap_changed_partitions, swap_partitions
from runcrawler_assets.warehouse.database import (
    PartitionRows,
    RowChunks,
    column_chunks,
    connect,
)
from runcrawler_assets.warehouse.rows import Columns

GROUP = "ingest"
OWNERS = ["team:hpc"]
DUCKDB_POOL = "duckdb"
PREVIEW_ROWS = 10
PREVIEW_COLUMNS = ("run_path", "status", "error_category", "n_procs", "efficiency")
ROW_COUNT = "dagster/row_count"
COMMON = {
    "partitions_def": cluster_user_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "group_name": GROUP,
    "owners": OWNERS,
}


class RunFilesConfig(Config):
    """`walk_all` (a materialization from the UI, the nightly reconciliation) walks every run
    folder and states every file; without it (the archive sensor's runs, `runcrawler crawl`
    unless `--full-scan`), a finished run the archive scan shows unchanged (its folders
    kept their keys: one `stat`) keeps what the last discovery found of it, and only the
    others are walked (`rescan.discovery_from_scan`)."""

    walk_all: bool = True


@asset(
    description="Run directories of a cluster × user folder and the fingerprint of each "
    "(names, sizes and modification times of its files; no file is opened).",
    kinds={"python", "file"},
    **COMMON,
)
def run_files(
    context: AssetExecutionContext, config: RunFilesConfig, settings: ConfigResource
) -> MaterializeResult:
    started = time.monotonic()
    paths = settings.config
    runs = problems = n_bytes = walked = 0
    preview: list[list[object]] = []
    pairs = run_pairs(context)
    for cluster, user in pairs:
        store = PartitionStore(paths.runs_dir, cluster, user)
        if config.walk_all:
            discovery = discover_partition(paths, cluster, user)
            walked += len(discovery.runs)
        else:
            discovery, walked_here = discovery_from_scan(
                paths, cluster, user, store.reusable_discovery()
            )
            walked += walked_here
        store.write_discovery(discovery)
        runs += len(discovery.runs)
        problems += len(discovery.problems)
        n_bytes += discovery.n_bytes
        preview += [[r.run_path, r.solver, r.n_files, r.n_bytes] for r in discovery.runs[:10]]
    return MaterializeResult(
        metadata={
            "partitions": len(pairs),
            "run_directories": runs,
            "run_directories_walked": walked,
            "unreadable_folders": problems,
            "bytes_in_run_folders": MetadataValue.int(n_bytes),
            "duration_s": round(time.monotonic() - started, 3),
            "preview": markdown_table(["run_path", "solver", "files", "bytes"], preview[:10]),
        }
    )


# Each tenth of a parse of at least this many runs is a line in the run's log: every line is
# an event Dagster stores (~10 ms with SQLite), and a few runs need none but the summary.
LOGGED_FROM_RUNS = 100


def logs_progress(done: int, total: int) -> bool:
    """Whether `done` of `total` runs parsed is worth a line in the run's log: each tenth of
    a big parse, short of the end (the summary line after the parse says it)."""
    return total >= LOGGED_FROM_RUNS and done < total and done % (total // 10) == 0


class ParseConfig(Config):
    """`reparse_all` parses every run again, even with an unchanged fingerprint."""

    reparse_all: bool = False


@asset(
    deps=[run_files],
    description="One JSON record per run under <data>/runs/<cluster>/<user>/; only runs whose "
    "fingerprint is new or changed are parsed, records of vanished runs are removed.",
    kinds={"python", "json"},
    **COMMON,
)
def parsed_runs(
    context: AssetExecutionContext,
    config: ParseConfig,
    settings: ConfigResource,
    progress: CrawlProgress,
) -> MaterializeResult:
    started = time.monotonic()
    paths = settings.config

    def on_parsed(done: int, total: int) -> None:
        progress.update("parse", done, total)
        if logs_progress(done, total):
            context.log.info(f"parsed {done}/{total} runs")

    refreshes = refresh_partitions(
        paths,
        StoredDiscoveries(paths.runs_dir, run_pairs(context)),
        workers=paths.parse_workers,
        on_parsed=on_parsed,
        reparse_all=config.reparse_all,
    )
    totals = {
        name: sum(getattr(r, name) for r in refreshes)
        for name in (
            "discovered",
            "new",
            "changed",
            "unchanged",
            "removed",
            "quarantined",
            "problems",
        )
    }
    totals["partitions_changed"] = sum(not r.files_unchanged for r in refreshes)
    parsed = sum(r.parsed for r in refreshes)
    context.log.info(f"parsed {parsed} runs: {totals}")
    return MaterializeResult(
        metadata={
            **totals,
            "parsed": parsed,
            "log_bytes_parsed": MetadataValue.int(sum(r.bytes_parsed for r in refreshes)),
            "duration_s": round(time.monotonic() - started, 3),
            "parsed_run_ids": MetadataValue.json(
                [run_id for r in refreshes for run_id in r.parsed_run_ids][:200]
            ),
        }
    )


class SwapConfig(Config):
    """`only_changed` swaps only the partitions whose JSON store changed since their last
    swap, and materializes nothing when none did (what `runcrawler crawl` asks)."""

    only_changed: bool = False


@multi_asset(
    specs=[
        AssetSpec(
            "runs",
            deps=[parsed_runs, "accounting"],
            description="The cleaned `runs` table in DuckDB, one row per run (runs-schema.md), "
            "joined with the scheduler's accounting; a partition's rows are swapped in one "
            "transaction.",
            kinds={"duckdb"},
            group_name=GROUP,
            owners=OWNERS,
            skippable=True,
        ),
        AssetSpec(
            "quarantine",
            deps=[parsed_runs],
            description="Every run directory or folder that could not become a row, with its "
            "reason: discovered = rows in runs + rows in quarantine.",
            kinds={"duckdb"},
            group_name=GROUP,
            owners=OWNERS,
            skippable=True,
        ),
    ],
    partitions_def=cluster_user_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
)
def runs_table(context: AssetExecutionContext, config: SwapConfig, settings: ConfigResource):
    started = time.monotonic()
    paths = settings.config
    pairs = run_pairs(context)
    tally = RowTally(paths.runs_dir)
    with connect(paths.duckdb_path) as con:
        # One partition in memory at a time: the first import of a large archive is one run
        # over every partition. Asked to, only those whose JSON store changed.
        if config.only_changed:
            swapped = swap_changed_partitions(con, paths, pairs, tally.add)
        else:
            swapped = swap_partitions(con, paths, current_versions(con, paths, pairs), tally.add)
        if not swapped and config.only_changed:
            context.log.info(f"skipped: runs unchanged in the {len(pairs)} partitions")
            return
        total_rows, total_quarantined = table_counts(con)
    context.log.info(f"swapped {swapped} of {len(pairs)} partitions")
    yield MaterializeResult(
        asset_key="runs",
        metadata={
            # The whole table's, as the UI's "Row count" reads it (not this run's partitions).
            ROW_COUNT: MetadataValue.int(total_rows),
            "partitions_swapped": swapped,
            "partitions_unchanged": len(pairs) - swapped,
            "rows_written": tally.rows,
            "quarantined": tally.quarantined,
            # Of the swapped partitions, counted from what run_files found: they must agree.
            "discovered": tally.discovered,
            "rows_in_table": total_rows,
            "by_status": MetadataValue.json(dict(tally.by_status)),
            "duration_s": round(time.monotonic() - started, 3),
            "preview": markdown_table(list(PREVIEW_COLUMNS), tally.preview),
        },
    )
    yield MaterializeResult(
        asset_key="quarantine",
        metadata={
            ROW_COUNT: MetadataValue.int(total_quarantined),
            "entries": tally.quarantined,
            "by_reason": MetadataValue.json(dict(tally.by_reason)),
        },
    )


@dataclass
class RowTally:
    """What the `runs` metadata reports, counted as the swapped partitions stream past
    (their records one at a time, as the swap reads them: never a partition's all at once)."""

    runs_dir: Path
    discovered: int = 0
    rows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    preview: list[list[object]] = field(default_factory=list)
    # Each partition's quarantine, complete once the swap has read its records.
    quarantines: list[list[QuarantineEntry]] = field(default_factory=list)

    def add(self, part: PartitionRows) -> PartitionRows:
        head = PartitionStore(self.runs_dir, part.cluster, part.user).recorded_head()
        self.discovered += head.n_runs + head.n_problems
        self.quarantines.append(part.quarantine)
        return replace(part, records=RowChunks(self._count(column_chunks(part.records))))

    def _count(self, chunks: Iterable[Columns]) -> Iterator[Columns]:
        for columns in chunks:
            self.rows += len(columns["run_id"])
            self.by_status.update(columns["status"])
            room = PREVIEW_ROWS - len(self.preview)
            if room > 0:
                shown = (columns[name][:room] for name in PREVIEW_COLUMNS)
                self.preview.extend(map(list, zip(*shown, strict=True)))
            yield columns

    @property
    def quarantined(self) -> int:
        return sum(map(len, self.quarantines))

    @property
    def by_reason(self) -> Counter[str]:
        return Counter(entry.reason for entries in self.quarantines for entry in entries)


INGEST_ASSETS = [run_files, parsed_runs, runs_table]
