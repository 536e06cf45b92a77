"""Bring the warehouse up to date with the JSON run store, a partition at a time.

A partition's version (`partition_version`: the code that makes rows, the
digest of its JSON store, its cluster's accounting) is recorded with its
rows; a partition whose version did not change is not read at all, one whose
store changed is swapped in one transaction: whole, or patched when its rows
were made by the same code and with the same accounting (only the rows of
runs parsed since, and of runs gone, replaced: issue 16, ten new runs in a
partition of 100,000 cost ten runs' work). Rows are read from the store and
made in worker processes while this process inserts, one partition in
memory at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from runcrawler_assets.accounting.load import accounting_versions
from runcrawler_assets.archive.runstore import PartitionStore
from runcrawler_assets.config import Config
from runcrawler_assets.records import RUN_COLUMNS
from runcrawler_assets.subprocesses import in_order, worker_pool
from runcrawler_assets.warehouse import database
from runcrawler_assets.warehouse.cleaning import CLEANING_POLICY, LIMITS
from runcrawler_assets.warehouse.database import (
    PartitionRows,
    RowChunks,
    partition_key_text,
    replace_partitions,
    stale_run_ids,
    swapped_versions,
)
from runcrawler_assets.warehouse.rows import Columns, stored_columns

# Below this many runs to swap, helpers cost more than they save: a helper saves ~30 µs of
# the swap's ~120 µs per run, and takes ~0.1 s to start.
MIN_RUNS_FOR_SWAP_WORKERS = 5_000
# A swap helper's chunk: smaller than a swap's own (`INSERT_CHUNK`), as several are in flight
# (a million runs: 2,000 rows a chunk took a swap's process tree from 402 to 436 MB).
SWAP_WORKER_CHUNK = 500
# What turns a partition's JSON into rows besides its content: the columns and the cleaning
# rules. Part of every partition's version, so a change of either swaps every partition again.
ROWS_CODE_VERSION = hashlib.sha1(
    repr(
        ([(c.name, c.sql_type) for c in RUN_COLUMNS], sorted(LIMITS.items()), CLEANING_POLICY)
    ).encode()
).hexdigest()[:12]


def partition_version(settings: Config, cluster: str, user: str, accounting: str = "") -> str:
    """What a partition's rows are made from, as a digest: its JSON store's index and
    quarantine (as bytes, nothing parsed), the code that turns them into rows, and the
    digest of its cluster's accounting dumps (`accounting.load.accounting_versions`)."""
    digest = PartitionStore(settings.runs_dir, cluster, user).digests().content
    return f"{ROWS_CODE_VERSION}:{digest}:{accounting}"


def current_versions(
    con: duckdb.DuckDBPyConnection, settings: Config, partitions: Iterable[tuple[str, str]]
) -> list[tuple[tuple[str, str], str]]:
    """Each of `partitions` with its version now (`partition_version`, with its cluster's
    accounting digest, `accounting.load.accounting_versions`)."""
    accounting = accounting_versions(con)
    return [
        (pair, partition_version(settings, *pair, accounting.get(pair[0], "")))
        for pair in partitions
    ]


class Patch(NamedTuple):
    """A partition's patch: the run ids whose rows it replaces (runs parsed since its last
    swap, new, or gone), and those of them whose record it reads, in the index's order."""

    replaced: list[str]
    read: list[str]


def partition_rows(
    settings: Config, cluster: str, user: str, version: str | None = None
) -> PartitionRows:
    """A partition's rows for the warehouse, made in this process (`_partitions_rows`)."""
    return next(_partitions_rows(settings, [((cluster, user), version)], None, 0))


def _partitions_rows(
    settings: Config,
    partitions: Iterable[tuple[tuple[str, str], str | None]],
    pool: ProcessPoolExecutor | None,
    ahead: int,
    patches: Mapping[tuple[str, str], Patch] | None = None,
) -> Iterator[PartitionRows]:
    """Each partition's rows: its records cleaned, the rejects quarantined.

    The rows are a one-pass stream, read from the JSON store as the swap inserts them
    (issue 16: the largest partition of a million runs holds ~150,000, ~1 GB as objects),
    made a chunk at a time (`rows.stored_columns`) in `pool`, `ahead` chunks ahead of the
    one being inserted, or in this process. A record the cleaning rejects joins
    `quarantine` as its chunk is read, before the swap reads it. Each partition's version
    (from `partition_version`, taken *before* its records are read) is recorded with its
    swap, so the next swap of an unchanged partition can be skipped. A partition in
    `patches` is a patch: of its records, only those the patch reads are read.
    """
    runs_dir = settings.runs_dir
    patches = patches or {}
    jobs = (
        (pair, version, run_ids)
        for pair, version in partitions
        for run_ids in _run_id_chunks(
            _to_read(runs_dir, pair, patches.get(pair)),
            database.INSERT_CHUNK if pool is None else SWAP_WORKER_CHUNK,
        )
    )
    if pool is None:
        made = (
            ((pair, version), stored_columns(runs_dir, *pair, ids)) for pair, version, ids in jobs
        )
    else:
        submitted = (
            ((pair, version), pool.submit(stored_columns, runs_dir, *pair, ids))
            for pair, version, ids in jobs
        )
        made = in_order(submitted, ahead)
    for (pair, version), chunks in groupby(made, key=itemgetter(0)):
        quarantine = PartitionStore(runs_dir, *pair).read_quarantine()
        rows = RowChunks(_rows(chunks, quarantine))
        patch = patches.get(pair)
        replaced = None if patch is None else patch.replaced
        yield PartitionRows(*pair, rows, quarantine, version, replaced)


def _rows(chunks: Iterable[tuple[Any, tuple[Columns, list]]], quarantine: list) -> Iterator:
    """Each chunk's rows, its rejects added to `quarantine` as it is read."""
    for _, (columns, rejects) in chunks:
        quarantine.extend(rejects)
        yield columns


def _to_read(runs_dir: Path, pair: tuple[str, str], patch: Patch | None) -> list[str]:
    """The ids of the records a swap of the partition reads, in the index's order: all of
    them, or those the patch reads (already known: the index is not read again)."""
    return PartitionStore(runs_dir, *pair).run_ids() if patch is None else patch.read


def _run_id_chunks(run_ids: list[str], size: int) -> list[list[str]]:
    """`run_ids`, `size` at a time (one empty chunk for none: the partition is still
    swapped, to empty it)."""
    return [run_ids[i : i + size] for i in range(0, len(run_ids), size)] or [[]]


def changed_partitions(
    con: duckdb.DuckDBPyConnection, settings: Config, partitions: Iterable[tuple[str, str]]
) -> list[tuple[tuple[str, str], str]]:
    """The partitions whose JSON store differs from what their rows were swapped in from,
    each with its current version: the only ones a swap has to read and rewrite."""
    swapped = swapped_versions(con)
    return [
        (pair, version)
        for pair, version in current_versions(con, settings, partitions)
        if swapped.get(partition_key_text(*pair)) != version
    ]


def swap_changed_partitions(
    con: duckdb.DuckDBPyConnection,
    settings: Config,
    partitions: Iterable[tuple[str, str]],
    on_rows: Callable[[PartitionRows], PartitionRows] = lambda rows: rows,
) -> int:
    """Swap the rows of the changed partitions among `partitions` (`swap_partitions`)."""
    return swap_partitions(con, settings, changed_partitions(con, settings, partitions), on_rows)


def _patches(
    con: duckdb.DuckDBPyConnection,
    settings: Config,
    partitions: Iterable[tuple[tuple[str, str], str | None]],
) -> dict[tuple[str, str], Patch]:
    """The partitions among `partitions` to patch, each with its `Patch` (the runs it
    replaces: `database.stale_run_ids`): those whose rows were swapped in by the same code
    and with the same accounting as their version now says, and of which at most half the
    runs changed (more, as after a re-parse of every run, and a whole swap costs no more;
    nor are a million run ids kept at once)."""
    before = swapped_versions(con)
    patches = {}
    for pair, version in partitions:
        if _made_alike(before.get(partition_key_text(*pair)), version):
            indexed = PartitionStore(settings.runs_dir, *pair).parsed_runs()
            stale = stale_run_ids(con, *pair, indexed)
            if 2 * len(stale) <= len(indexed):
                read = set(stale)
                patches[pair] = Patch(stale, [run_id for run_id, _ in indexed if run_id in read])
    return patches


def _made_alike(before: str | None, version: str | None) -> bool:
    """Whether rows swapped in with version `before` were made by the code and with the
    accounting `version` names (`partition_version`: code, store digest, accounting)."""
    if before is None or version is None:
        return False
    was, now = before.split(":", 2), version.split(":", 2)
    return len(was) == len(now) == 3 and (was[0], was[2]) == (now[0], now[2])


def swap_partitions(
    con: duckdb.DuckDBPyConnection,
    settings: Config,
    partitions: Iterable[tuple[tuple[str, str], str | None]],
    on_rows: Callable[[PartitionRows], PartitionRows] = lambda rows: rows,
) -> int:
    """Swap the rows of `partitions` (each with its version), a transaction per partition,
    one partition in memory at a time; returns how many were swapped. `on_rows` sees each.

    A partition whose rows were swapped in by the same code and with the same accounting
    is patched (issue 16: ten new runs in a partition of 100,000 cost ten runs' reading
    and inserting): only the rows of its runs parsed since, or gone, are replaced, in one
    transaction as a whole swap is (`_patches`).

    With at least `MIN_RUNS_FOR_SWAP_WORKERS` runs, the rows are read, cleaned and made in
    `settings.parse_workers` - 1 worker processes (they import no pandas or DuckDB) while
    this process inserts the ones made before: one helper with the default 2 (a million
    runs: 130 -> 96 s, the ingest's process tree 455 -> 480 MB; two helpers: 85 s, 515 MB).
    """
    partitions = list(partitions)
    patches = _patches(con, settings, partitions)
    helpers = settings.parse_workers - 1  # the run's own process is one of the workers
    pool = None
    if helpers and _holds_at_least(settings, partitions, MIN_RUNS_FOR_SWAP_WORKERS, patches):
        pool = worker_pool(helpers)
    try:
        rows = _partitions_rows(settings, partitions, pool, helpers + 1, patches)
        return replace_partitions(con, map(on_rows, rows))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _holds_at_least(
    settings: Config,
    partitions: Iterable[tuple[tuple[str, str], str | None]],
    runs: int,
    patches: Mapping[tuple[str, str], Patch],
) -> bool:
    """Whether a swap of `partitions` reads at least `runs` records (counted until so): all
    of a partition's, or those its patch reads."""
    held = 0
    for pair, _ in partitions:
        held += len(_to_read(settings.runs_dir, pair, patches.get(pair)))
        if held >= runs:
            return True
    return False
