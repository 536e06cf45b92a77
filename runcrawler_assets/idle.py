"""Nothing changed since the last crawl, told without starting Dagster (issue 16, goal 1).

An idle `runcrawler crawl` spent most of its ~2 s importing Dagster and opening its
instance, before a scan of the archive found nothing to do. The scan, the accounting
dumps and the analytics' versions need only the JSON store and DuckDB. The one thing
only the instance knows is which partitions it holds: a user folder new since, even an
empty one, must be registered there. So each crawl notes the partitions the instance
holds (`note_registered`, by the CLI), with the instance's folder. When the archive
lists none beyond them, `look_at_archive` scans them; when nothing else is to do either,
`unchanged_since_last_crawl` says so and the CLI stops there (else the crawl reuses the
scan). Anything else takes the full path: another `DAGSTER_HOME`, a new partition, a run
added, changed or removed, new accounting dumps, stale analytics.

With no note (a first crawl), the scan cannot tell "nothing to do" and Dagster is needed
anyway: `scan_meanwhile` makes it in a worker process while the CLI imports Dagster
and opens (or creates) its instance, ~2 s it would otherwise wait after.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from runcrawler_assets.accounting.load import accounting_versions, dumps_changed
from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.analytics.store import out_of_date
from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.archive.runstore import read_text, write_atomic
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import ArchiveCheck, check_archive
from runcrawler_assets.hints.evaluate import hints_are_current
from runcrawler_assets.subprocesses import worker_pool
from runcrawler_assets.warehouse.database import connect, run_count, swapped_versions

REGISTERED_FILE = "registered_partitions.json"  # in the data folder

Pair = tuple[str, str]


@dataclass(frozen=True)
class CrawlSummary:
    """What a crawl found and did: the CLI's last line."""

    partitions: int
    discovered: int
    parsed: int
    unchanged: int
    removed: int
    quarantined: int
    rows: int
    seconds: float
    success: bool = True
    partitions_swapped: int = 0
    analyses_computed: int = 0
    skipped: tuple[str, ...] = ()  # assets asked for that were unchanged, so not materialized
    failed: tuple[tuple[str, str], ...] = ()  # (asset, its error's message) of failed steps

    def describe(self) -> str:
        """The crawl's last line: what it found, and what it did with it."""
        return (
            f"{self.discovered} runs found in {self.partitions} partitions: "
            f"{self.parsed} parsed, {self.unchanged} unchanged, {self.removed} removed, "
            f"{self.quarantined} quarantined; {self.rows} rows in runs ({self.seconds:.1f} s)"
        )

    def describe_skipped(self) -> str:
        """The skipped assets in a few words, e.g. "skipped: runs unchanged (9 assets)"."""
        if not self.skipped:
            return ""
        if "runs" in self.skipped:
            return f"skipped: runs unchanged ({len(self.skipped)} assets not rematerialized)"
        return f"skipped: unchanged {', '.join(self.skipped)}"

    def describe_failed(self) -> str:
        """What failed and why, in one line ("some steps failed" when none of them makes an
        asset: a check)."""
        if not self.failed:
            return "some steps failed"
        return "; ".join(f"{asset} failed ({message})" for asset, message in self.failed)


def stale_analytics(con: duckdb.DuckDBPyConnection, names: set[str] | None = None) -> list[str]:
    """The analyses among `names` (None: all) whose stored result is older than `runs`, and
    the hints if among them and not made from `runs` as it is (never made: their step
    failed), by name: what a crawl makes again though no run changed."""
    analyses = [a for a in ANALYSES if names is None or a.name in names]
    stale = [a.name for a in out_of_date(con, analyses)]
    hints = names is None or "hints" in names
    return [*stale, "hints"] if hints and not hints_are_current(con) else stale


def swap_versions(settings: Config) -> tuple[dict[Pair, str], dict[str, str]]:
    """The partitions' swapped versions, and the clusters' accounting digests (none yet:
    empty)."""
    if not settings.duckdb_path.exists():
        return {}, {}
    with connect(settings.duckdb_path, read_only=True) as con:
        return swapped_versions(con), accounting_versions(con)


def table_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Rows of `runs` and entries of `quarantine`."""
    (quarantined,) = con.execute("SELECT count(*) FROM quarantine").fetchone()
    return run_count(con), quarantined


def note_registered(settings: Config, pairs: Iterable[Pair]) -> None:
    """Note that the Dagster instance of `settings` holds the partitions `pairs` (all it
    holds: those whose folder is gone are still checked, their rows must go)."""
    payload = {
        "dagster_home": str(settings.dagster_home),
        "partitions": sorted([cluster, user] for cluster, user in pairs),
    }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(settings.data_dir / REGISTERED_FILE, json.dumps(payload, ensure_ascii=False))


def _registered(settings: Config) -> list[Pair] | None:
    """The partitions noted for this `DAGSTER_HOME`, if its instance is still configured."""
    try:
        payload = json.loads(read_text(settings.data_dir / REGISTERED_FILE))
        noted = [(str(cluster), str(user)) for cluster, user in payload["partitions"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    home = settings.dagster_home
    if payload.get("dagster_home") != str(home) or not (home / "dagster.yaml").is_file():
        return None
    return noted


def look_at_archive(settings: Config) -> ArchiveCheck | None:
    """What is left to do in the partitions the instance holds, by the sensor's scan; None
    when the archive lists a partition it does not hold (or another `DAGSTER_HOME`)."""
    registered = _registered(settings)
    if registered is None or not settings.duckdb_path.exists():
        return None
    if not set(list_partitions(settings)) <= set(registered):
        return None
    return check_archive(settings, registered, *swap_versions(settings))


def scan_reusable(settings: Config, full_scan: bool) -> bool:
    """Whether a crawl may reuse a scan made before its run: not with `full_scan` (every
    file stated then), nor when it loads accounting dumps (new ones change the partitions'
    versions)."""
    return not full_scan and settings.accounting_dir is None


def check_listed_partitions(settings: Config) -> ArchiveCheck:
    """The scan of the partitions a first crawl's instance will hold: clusters and users are
    two dimensions, so every listed cluster with every listed user (empty pairs cost a
    `stat`)."""
    listed = list_partitions(settings)
    clusters, users = sorted({c for c, _ in listed}), sorted({u for _, u in listed})
    pairs = [(cluster, user) for cluster in clusters for user in users]
    return check_archive(settings, pairs, *swap_versions(settings))


@contextmanager
def scan_meanwhile(
    settings: Config, check: ArchiveCheck | None, full_scan: bool = False
) -> Iterator[Callable[[], ArchiveCheck | None]]:
    """A call giving the scan for the crawl to reuse: `check`, the CLI's, if it made one;
    else, for a first crawl, `check_listed_partitions` started now in a worker process (the
    call waits for it and stops the worker; None if the worker failed: the crawl then scans
    by itself, and meets the error, if any, there). Not when the crawl would not reuse it
    (`scan_reusable`) nor with one process (`RUNCRAWLER_WORKERS=1`)."""
    if check is not None or not scan_reusable(settings, full_scan) or settings.parse_workers < 2:
        yield lambda: check
        return
    with worker_pool(1) as pool:
        pending = pool.submit(check_listed_partitions, settings)

        def result() -> ArchiveCheck | None:
            try:
                return pending.result()
            except Exception:  # the crawl scans again in its own process
                return None
            finally:
                pool.shutdown()  # its imports (pandas, DuckDB) are not kept through the run

        yield result


def unchanged_since_last_crawl(
    settings: Config, check: ArchiveCheck, with_analytics: bool
) -> CrawlSummary | None:
    """The summary of a crawl that would do nothing, after `check` found no partition to
    refresh: no new accounting dump, and the analytics (if `with_analytics`) computed from
    `runs` as it is; None when there is something to do."""
    started = time.monotonic()
    if check.stale:
        return None
    with connect(settings.duckdb_path, read_only=True) as con:
        try:
            dumps_new = settings.accounting_dir is not None and dumps_changed(
                con, settings.accounting_dir
            )
        except duckdb.Error:  # its tables not made yet (read-only here)
            return None
        if dumps_new or (with_analytics and stale_analytics(con)):
            return None
        rows, quarantined = table_counts(con)
    runs, problems = check.found(settings.runs_dir)
    seconds = time.monotonic() - started
    partitions = len(check.checked)
    return CrawlSummary(partitions, runs + problems, 0, runs, 0, quarantined, rows, seconds)
