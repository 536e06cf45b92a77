"""Worker processes that never outlive the process that started them.

A `ProcessPoolExecutor` worker waits for work on a pipe whose writing end it holds
too, so when its parent is killed (SIGKILL, the OOM killer, a terminated Dagster run)
it waits forever: an orphan keeping its memory. `exit_with_parent`, given to a pool as
its initializer, ends the worker as soon as its parent is gone; `worker_pool` makes
every pool runcrawler starts (parsing, a swap's rows, charts) so; `in_order` hands
back a pool's results in the order their work was given, never far ahead.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import Any, TypeVar

Key = TypeVar("Key")  # what a result handed back in order is known by


def exit_with_parent() -> None:
    """Watch the parent from a daemon thread; exit the moment it is gone."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child: nothing to watch
        return

    def watch() -> None:
        parent.join()  # returns once the parent's end of the spawn pipe closes: it died
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes that end with this one. Spawned, not forked: a
    worker holds what it imports (the parsers, the row makers, matplotlib), not a copy of
    this process's pandas, DuckDB and Dagster."""
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent
    )


def in_order(submitted: Iterator[tuple[Key, Future]], ahead: int) -> Iterator[tuple[Key, Any]]:
    """Each (key, future) of `submitted` as (key, its result), in order, at most `ahead`
    submitted before the one handed back (neither the work nor its results pile up)."""
    in_flight: deque[tuple[Key, Future]] = deque(islice(submitted, ahead))
    while in_flight:
        key, future = in_flight.popleft()
        in_flight.extend(islice(submitted, 1))
        yield key, future.result()
