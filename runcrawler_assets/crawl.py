"""Bring the JSON run store up to date with the archive, parsing only what changed.

A partition's runs are compared with its index by fingerprint: new and
changed runs are parsed (in worker processes when there are enough of them,
so both cores work), unchanged ones are left alone, and the records of runs
that disappeared are removed. A run whose parser fails unexpectedly becomes
a quarantine entry; nothing found is ever silently dropped.

Crash safety: records are written before the index that lists them, and
record files are removed only after the index that no longer lists them, so
a crawl killed at any point leaves an index whose every record exists (at
worst an orphan record file, rewritten or ignored by the next crawl).

Cost in proportion to change (issue 16): a partition in which nothing was
parsed, removed or newly quarantined keeps its index and quarantine files
untouched (a problem seen again keeps the time it was first seen), so its
content digest (`swap.partition_version`) is unchanged and the warehouse skips
it without reading its records.

`check_archive` tells, from names and `stat` alone, which partitions have
anything to do; `crawl_into_warehouse` runs the whole chain without Dagster
(this, then `swap`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from pathlib import Path

from runcrawler_assets.accounting.load import load_accounting
from runcrawler_assets.archive.discovery import (
    DiscoveredRun,
    PartitionDiscovery,
    Problem,
    discover_partition,
)
from runcrawler_assets.archive.rescan import scan_partition
from runcrawler_assets.archive.runstore import (
    INDEX_FILE,
    IndexEntry,
    PartitionStore,
    QuarantineEntry,
)
from runcrawler_assets.config import Config
from runcrawler_assets.parsing import ParseJob, parse_job, parse_jobs
from runcrawler_assets.records import run_id_for
from runcrawler_assets.subprocesses import in_order, worker_pool
from runcrawler_assets.swap import partition_version, swap_changed_partitions
from runcrawler_assets.warehouse.database import connect, partition_key_text

# Below this many runs to parse, worker start-up costs more than it saves.
MIN_RUNS_FOR_WORKERS = 64
# Runs per worker call, and batches queued per worker ahead of the writer.
BATCH_SIZE = 128
IN_FLIGHT_BATCHES = 3
# Quarantine reasons given while parsing a run: kept while its fingerprint holds.
PARSE_REASONS = frozenset({"parser_error", "vanished"})
# Run ids of the parsed runs kept per partition, for the UI (not a million of them).
MAX_RUN_IDS_KEPT = 200
# Up to this many discovered runs, the plans made to count the runs to parse are kept for
# parsing them (a sensor's run: one partition, planned once); beyond, planned again.
KEPT_PLANS_MAX_RUNS = 20_000


@dataclass
class PartitionRefresh:
    """What one refresh did to one partition: the counts the UI shows."""

    cluster: str
    user: str
    discovered: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    quarantined: int = 0
    problems: int = 0  # folders found unreadable by discovery (part of `quarantined`)
    bytes_parsed: int = 0
    files_unchanged: bool = False  # index and quarantine left as they were: same version
    parsed_run_ids: list[str] = field(default_factory=list)  # the first MAX_RUN_IDS_KEPT

    @property
    def parsed(self) -> int:
        return self.new + self.changed


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _parse_all(
    jobs: Iterator[ParseJob], workers: int
) -> Iterator[tuple[ParseJob, str | QuarantineEntry]]:
    """Parse `jobs` in order, in worker processes when there are enough of them (they
    import `parsing`, not this module: no pandas or DuckDB in a worker).

    `jobs` is consumed lazily, and at most `IN_FLIGHT_BATCHES` batches per worker are
    submitted ahead of the one being handed back, so neither the jobs nor their outcomes
    pile up in memory: memory stays flat whatever the archive's size.
    """
    ahead = list(islice(jobs, workers * 8 * BATCH_SIZE))  # enough to size the batches
    if workers <= 1 or len(ahead) < MIN_RUNS_FOR_WORKERS:
        for job in chain(ahead, jobs):
            yield job, parse_job(job)
        return
    size = max(1, min(BATCH_SIZE, len(ahead) // (workers * 8)))
    remaining = chain(ahead, jobs)
    batches = iter(lambda: list(islice(remaining, size)), [])
    with worker_pool(workers) as pool:
        submitted = ((batch, pool.submit(parse_jobs, batch)) for batch in batches)
        for batch, outcomes in in_order(submitted, IN_FLIGHT_BATCHES * workers):
            yield from zip(batch, outcomes, strict=True)


def _problem_entry(
    cluster: str,
    user: str,
    problem: Problem,
    now: datetime,
    seen: dict[tuple[str, str, str], QuarantineEntry],
) -> QuarantineEntry:
    """The quarantine entry of a problem; one already recorded keeps its first `seen_at`
    (so a partition where nothing changed keeps its files, and its version, as they were)."""
    previous = seen.get((problem.path, problem.reason, problem.detail))
    if previous is not None:
        return previous
    return QuarantineEntry(
        cluster, user, problem.path, problem.reason, problem.detail, now.isoformat()
    )


def _entry_key(entry: QuarantineEntry) -> tuple[str, ...]:
    return (entry.path, entry.reason, entry.detail, entry.seen_at)


@dataclass
class _PartitionPlan:
    """One partition's refresh while its runs are parsed: what to write once they all are.

    Its runs to parse are kept as the discovered runs themselves, and each becomes a
    `ParseJob` only when the workers are about to take it (`jobs`): the largest partition
    of a million runs would otherwise hold ~150,000 jobs besides its discovery.
    """

    store: PartitionStore
    refresh: PartitionRefresh
    old_index: dict[str, IndexEntry]
    old_quarantine: list[QuarantineEntry]
    index: dict[str, IndexEntry]
    quarantine: list[QuarantineEntry]
    stale_records: list[str]
    to_parse: list[DiscoveredRun]
    pending: int = 0

    def jobs(self, settings: Config, now: datetime) -> Iterator[ParseJob]:
        """The parse jobs of the runs to parse, made one at a time; each run is let go of
        as it is handed out, so that a partition parsed holds only its index."""
        to_parse, self.to_parse = self.to_parse, []
        to_parse.reverse()  # handed out from the end: in discovery order
        cluster, user = self.refresh.cluster, self.refresh.user
        while to_parse:
            yield ParseJob(
                settings.archive_root,
                settings.runs_dir,
                cluster,
                user,
                to_parse.pop(),
                now,
                settings.max_job_duration,
            )

    def finish(self) -> PartitionRefresh:
        """Write the index and quarantine (only when they changed), then remove the records
        the index no longer lists (only now: a crash before leaves an orphan, not a hole)."""
        refresh, store = self.refresh, self.store
        refresh.quarantined = len(self.quarantine)
        unchanged = self.index == self.old_index and sorted(
            map(_entry_key, self.quarantine)
        ) == sorted(map(_entry_key, self.old_quarantine))
        if unchanged and (store.folder / INDEX_FILE).is_file():
            refresh.files_unchanged = True
        elif refresh.discovered or self.quarantine or store.folder.exists():
            store.write_quarantine(self.quarantine)
            store.write_index(self.index)
        for run_id in self.stale_records:
            store.remove_record(run_id)
        return refresh


def _plan(
    settings: Config, discovery: PartitionDiscovery, now: datetime, reparse_all: bool
) -> _PartitionPlan:
    """Compare a partition's discovered runs with its index: the runs to parse, the entries
    kept, the records to remove."""
    cluster, user = discovery.cluster, discovery.user
    store = PartitionStore(settings.runs_dir, cluster, user)
    old_index, old_entries = store.read_index(), store.read_quarantine()
    old_parse_problems = {q.path: q for q in old_entries if q.reason in PARSE_REASONS}
    seen = {(q.path, q.reason, q.detail): q for q in old_entries}
    plan = _PartitionPlan(
        store,
        PartitionRefresh(
            cluster, user, discovered=len(discovery.runs), problems=len(discovery.problems)
        ),
        old_index,
        old_entries,
        index={},
        quarantine=[_problem_entry(cluster, user, p, now, seen) for p in discovery.problems],
        stale_records=[],
        to_parse=[],
    )
    refresh = plan.refresh
    for run in discovery.runs:
        previous = old_index.get(run.run_path)
        if not reparse_all and previous is not None and previous.fingerprint == run.fingerprint:
            refresh.unchanged += 1
            plan.index[run.run_path] = previous
            if previous.run_id is None and run.run_path in old_parse_problems:
                plan.quarantine.append(old_parse_problems[run.run_path])
            continue
        if previous is None:
            refresh.new += 1
        else:
            refresh.changed += 1
        refresh.bytes_parsed += run.n_bytes
        plan.to_parse.append(run)
    present = {run.run_path for run in discovery.runs} if old_index else set()
    for run_path, entry in old_index.items():
        if run_path not in present:
            refresh.removed += 1
            if entry.run_id is not None:
                plan.stale_records.append(entry.run_id)
    plan.pending = len(plan.to_parse)
    return plan


def _counted(plans: Iterable[_PartitionPlan]) -> tuple[int, list[_PartitionPlan] | None]:
    """How many runs `plans` give to parse, and the plans themselves while they hold at most
    `KEPT_PLANS_MAX_RUNS` discovered runs (None beyond: they are made again to parse)."""
    kept: list[_PartitionPlan] | None = []
    total = runs = 0
    for plan in plans:
        total += plan.pending
        runs += plan.refresh.discovered
        if kept is not None and runs <= KEPT_PLANS_MAX_RUNS:
            kept.append(plan)
        else:
            kept = None
    return total, kept


def refresh_partitions(
    settings: Config,
    discoveries: Collection[PartitionDiscovery],
    *,
    workers: int = 2,
    now: datetime | None = None,
    on_parsed: Callable[[int, int], None] | None = None,
    reparse_all: bool = False,
) -> list[PartitionRefresh]:
    """Bring the JSON store of each discovered partition up to date; returns what changed.

    Partition by partition (issue 16: a million runs in flat memory): `discoveries` is
    iterated once to count the runs to parse and, should the plans it gave hold more than
    `KEPT_PLANS_MAX_RUNS` runs, again to parse them, so it may read each partition's
    discovery from the store when iterated rather than hold them all.
    A partition's parse jobs are made as the workers take them, and its index holds
    tuples. Each partition's files are written as soon as its last run is parsed (never
    before: a crawl killed midway leaves each index all old or all new), while the
    workers go on with the next partition's runs.

    `on_parsed(done, total)` is called as runs are parsed, for progress displays.
    `reparse_all` parses unchanged runs too (catches files edited in place with the
    same size and modification time).
    """
    now = now or utc_now()
    parsed_at = now.isoformat()  # one string shared by every index entry written
    refreshes: dict[int, PartitionRefresh] = {}  # by position in `discoveries`
    in_flight: dict[tuple[str, str], tuple[int, _PartitionPlan]] = {}

    def plans() -> Iterator[_PartitionPlan]:
        for discovery in discoveries:
            plan = _plan(settings, discovery, now, reparse_all)
            del discovery  # released before the next partition's discovery is read
            yield plan

    total, kept = _counted(plans())

    def jobs() -> Iterator[ParseJob]:
        for position, plan in enumerate(kept if kept is not None else plans()):
            if not plan.pending:
                refreshes[position] = plan.finish()
                continue
            in_flight[(plan.refresh.cluster, plan.refresh.user)] = (position, plan)
            yield from plan.jobs(settings, now)

    for done, (job, outcome) in enumerate(_parse_all(jobs(), workers), start=1):
        position, plan = in_flight[(job.cluster, job.user)]
        if isinstance(outcome, str):
            plan.index[job.run.run_path] = IndexEntry(job.run.fingerprint, outcome, parsed_at)
            if len(plan.refresh.parsed_run_ids) < MAX_RUN_IDS_KEPT:
                plan.refresh.parsed_run_ids.append(outcome)
        else:
            plan.stale_records.append(run_id_for(job.run.run_path))
            plan.index[job.run.run_path] = IndexEntry(job.run.fingerprint, None, parsed_at)
            plan.quarantine.append(outcome)
        plan.pending -= 1
        if not plan.pending:
            del in_flight[(job.cluster, job.user)]
            refreshes[position] = plan.finish()
        if on_parsed is not None:
            on_parsed(done, total)
    return [refreshes[position] for position in sorted(refreshes)]


@dataclass(frozen=True)
class ArchiveCheck:
    """What a look at the archive (names and `stat`, no file opened) says is left to do."""

    runs: int  # run directories found in the partitions not stale
    problems: int  # folders that will be quarantine entries, in the partitions not stale
    stale: list[tuple[str, str]]  # partitions to refresh: new, changed or not yet in DuckDB
    checked: frozenset[tuple[str, str]] = frozenset()  # the partitions looked at
    scanned: int = 0  # run directories found in every partition looked at, stale or not

    def found(self, runs_dir: Path) -> tuple[int, int]:
        """Runs and problems found in the whole archive, once the stale partitions were
        refreshed (their discovery, recorded then, counts them)."""
        heads = [PartitionStore(runs_dir, c, u).recorded_head() for c, u in self.stale]
        runs, problems = sum(h.n_runs for h in heads), sum(h.n_problems for h in heads)
        return self.runs + runs, self.problems + problems


def _walked(
    settings: Config, store: PartitionStore, cluster: str, user: str
) -> tuple[bool, int, int]:
    """The partition walked as `run_files` does: whether its store holds exactly that, and
    how many runs and problems were found."""
    discovery = discover_partition(settings, cluster, user)
    return store.is_settled(discovery), len(discovery.runs), len(discovery.problems)


def check_archive(
    settings: Config,
    partitions: Iterable[tuple[str, str]],
    swapped: dict[tuple[str, str], str],
    accounting: dict[str, str],
    full_scan: bool = False,
) -> ArchiveCheck:
    """List the partitions among `partitions` with anything to do: runs added, changed or
    removed since the JSON store last indexed them, or a store not yet swapped into DuckDB as
    it is (`swapped`: `database.swapped_versions`; `accounting`: the clusters' accounting
    digests, `accounting.load.accounting_versions`). A partition missing from the archive
    whose store folder exists is checked too (its rows must go).

    The archive is scanned as the sensor does (`archive.rescan`: one `stat` per finished run
    whose folder did not change, so a finished run's file rewritten in place without any
    folder changing is not seen). Where a folder changed but every run kept its fingerprint
    (a file added beside the runs), and everywhere with `full_scan`, the partition is walked
    as `run_files` does (every file stated) and compared with what its store recorded;
    elsewhere the scan's digest is compared with the one its store keeps
    (`PartitionStore.digests`: no index read while the store is unchanged)."""
    runs = problems = scanned = 0
    stale = []
    partitions = list(partitions)
    for cluster, user in partitions:
        store = PartitionStore(settings.runs_dir, cluster, user)
        if full_scan:
            settled, found, found_problems = _walked(settings, store, cluster, user)
        else:
            state, changed = scan_partition(settings, cluster, user)
            settled = store.digests().fingerprints == state.digest
            if settled and changed:
                settled, found, found_problems = _walked(settings, store, cluster, user)
            else:
                head = store.recorded_head()
                settled = settled and head.readable
                found, found_problems = len(state.runs), head.n_problems
        settled = settled and swapped.get(partition_key_text(cluster, user)) == partition_version(
            settings, cluster, user, accounting.get(cluster, "")
        )
        scanned += found
        nothing_there = not (found or found_problems or store.folder.exists())
        if settled or nothing_there:
            runs, problems = runs + found, problems + found_problems
        else:
            stale.append((cluster, user))
    return ArchiveCheck(runs, problems, stale, frozenset(partitions), scanned)


def crawl_into_warehouse(
    settings: Config, partitions: list[tuple[str, str]], *, workers: int = 2
) -> list[PartitionRefresh]:
    """Refresh the JSON store, the accounting (when configured) and the warehouse for
    `partitions`: the whole chain, no Dagster.

    The Dagster assets run the same two steps separately; this is for tests and notebooks.
    """
    discoveries = [discover_partition(settings, c, u) for c, u in partitions]
    for discovery in discoveries:
        PartitionStore(settings.runs_dir, discovery.cluster, discovery.user).write_discovery(
            discovery
        )
    refreshes = refresh_partitions(settings, discoveries, workers=workers)
    with connect(settings.duckdb_path) as con:
        if settings.accounting_dir is not None:
            load_accounting(con, settings.accounting_dir)
        swap_changed_partitions(con, settings, partitions)
    return refreshes
