"""Test jobs that run Dagster, mapped over spawned processes (concurrent writers)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import TypeVar

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")


def map_spawned(
    function: Callable[[Job], Outcome], jobs: Sequence[Job], processes: int
) -> list[Outcome]:
    """`function` over `jobs` in `processes` spawned processes, which then leave on their own.

    Not `with Pool(...)`: its exit terminates the workers with SIGTERM, and a Dagster run
    leaves SIGTERM raising KeyboardInterrupt in the process that ran it (Python's
    `default_int_handler`), so a worker unwinds instead of dying, racing the pool's
    shutdown: a test hung there once, its jobs done. Closed and joined, each worker takes
    its sentinel and exits."""
    pool = multiprocessing.get_context("spawn").Pool(processes)
    try:
        return pool.map(function, jobs)
    finally:
        pool.close()
        pool.join()
