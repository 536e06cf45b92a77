"""Charts drawn on two cores: this process, and a spare worker process once it is up.

A chart is ~100 ms of single-threaded matplotlib, and a refresh draws ~27 of them
after the analyses' SQL, leaving the second core idle (issue 16). A `ChartDrawer`
hands an analysis's charts to one worker process (spawned: it shares no thread or
lock with DuckDB) while this process draws the others: this process takes charts
from the front of the list, the worker from the back, one at a time, so neither
waits on the other for longer than one chart. Until the worker has started
(importing matplotlib takes ~1 s) this process draws everything, so a drawer is
never slower than drawing alone; a worker that dies hands its chart back, and
one whose parent dies exits with it (`subprocesses`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from runcrawler_assets.subprocesses import worker_pool

if TYPE_CHECKING:  # matplotlib is loaded where a chart is drawn, not where one may be
    from runcrawler_assets.reporting.figures import Plans


def _warm_up() -> None:
    """The worker's first call: the chart code imported before the first chart is asked."""
    import runcrawler_assets.reporting.figures  # noqa: F401


class ChartDrawer:
    """Draws planned charts here and, when `spare_workers` allows, in one worker process
    (`close` stops it: `with contextlib.closing(ChartDrawer()) as drawer`)."""

    def __init__(self, spare_workers: int = 1) -> None:
        self._wanted = spare_workers > 0
        self._pool: ProcessPoolExecutor | None = None
        self._started: Future[None] | None = None

    def start(self) -> None:
        """Start the worker in the background (returns at once; harmless twice)."""
        if self._wanted and self._pool is None:
            self._pool = worker_pool(1)
            self._started = self._pool.submit(_warm_up)

    @property
    def worker_ready(self) -> bool:
        started = self._started
        return started is not None and started.done() and started.exception() is None

    def draw(self, plans: Plans) -> dict[str, bytes]:
        """Every chart of `plans`, by file name, in the plans' order."""
        drawn: dict[str, bytes] = {}
        queue = deque(plans.items())
        given: tuple[str, Future[bytes]] | None = None
        while queue:
            if given is None and len(queue) > 1 and self.worker_ready and self._pool:
                name, plan = queue.pop()
                given = (name, self._pool.submit(plan))
            name, plan = queue.popleft()
            drawn[name] = plan()
            if given is not None and given[1].done():
                drawn[given[0]] = self._collect(given[1], plans[given[0]])
                given = None
        if given is not None:
            drawn[given[0]] = self._collect(given[1], plans[given[0]])
        return {name: drawn[name] for name in plans}

    def _collect(self, future: Future[bytes], plan: Callable[[], bytes]) -> bytes:
        """The worker's chart; drawn here instead if the worker died (no worker after)."""
        try:
            return future.result()
        except BrokenProcessPool:
            self._wanted = False
            self.close()
            return plan()

    def close(self) -> None:
        """Stop the worker (charts it was drawing are dropped: call after the last draw)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._started = None, None
