"""Charts drawn on two cores: this process, and a spare worker process.

A chart is ~100 ms of single-threaded matplotlib, and a refresh draws ~27 of
them, which left the second core idle while the analyses' SQL ran (issue 16).
A `ChartDrawer` hands every chart it is given to one worker process (spawned:
it shares no thread or lock with DuckDB) at once, in order, so the worker draws
the first analyses' charts while this process computes the next analyses.
When this process is done computing and charts remain that the worker has not
started, `finish` loads matplotlib here (~0.7 s, while the worker draws on),
then draws those still not started, from the back of the queue, while the
worker goes on from the front: neither waits on the other for longer than one
chart, and where the worker kept up (a million runs: SQL for seconds, charts
for less) this process never loads matplotlib. Until the worker has started
(importing matplotlib takes ~1 s) this process may draw everything, so a
drawer is never slower than drawing alone; a worker that dies hands its
charts back, and one whose parent dies exits with it (`subprocesses`).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from runcrawler_assets.subprocesses import worker_pool

Plans = Mapping[str, Callable[[], bytes]]  # file name -> a picklable call giving its PNG
Drawn = dict[str, bytes]  # file name -> PNG


def _load_chart_code() -> None:
    """Import what drawing a chart needs (matplotlib: ~0.7 s)."""
    import runcrawler_assets.reporting.figures  # noqa: F401


def _warm_up() -> None:
    """The worker's first call: the chart code imported before the first chart is asked,
    and set aside from the garbage collector (`_drawn_in_worker`)."""
    _load_chart_code()
    gc.collect()
    gc.freeze()


def _drawn_in_worker(plan: Callable[[], bytes]) -> bytes:
    """`plan` drawn, then its garbage collected: a matplotlib figure is a web of reference
    cycles that Python's collector leaves for many charts (~25 MB of the worker at a
    million runs, where the process tree's memory counts: issue 16). With the imports
    frozen (`_warm_up`) a collection takes ~3 ms, not ~45."""
    try:
        return plan()
    finally:
        gc.collect()


@dataclass
class _Chart:
    batch: Hashable
    name: str
    plan: Callable[[], bytes]
    future: Future[bytes] | None


class ChartDrawer:
    """Draws queued charts here and, when `spare_workers` allows, in one worker process
    (`close` stops it: `with contextlib.closing(ChartDrawer()) as drawer`)."""

    def __init__(self, spare_workers: int = 1) -> None:
        self._wanted = spare_workers > 0
        self._pool: ProcessPoolExecutor | None = None
        self._started: Future[None] | None = None
        self._queue: list[_Chart] = []

    def start(self) -> None:
        """Start the worker in the background (returns at once; harmless twice)."""
        if self._wanted and self._pool is None:
            self._pool = worker_pool(1)
            self._started = self._pool.submit(_warm_up)

    @property
    def worker_ready(self) -> bool:
        started = self._started
        return started is not None and started.done() and started.exception() is None

    def add(self, batch: Hashable, plans: Plans) -> None:
        """Queue the charts of `plans` as one batch (an analysis's): the worker, if any, is
        given them now, and starts on them when it is done with those queued before."""
        for name, plan in plans.items():
            self._queue.append(_Chart(batch, name, plan, self._submit(plan)))

    def _submit(self, plan: Callable[[], bytes]) -> Future[bytes] | None:
        """The worker's future for `plan`; None (drawn here) without a live worker."""
        if self._pool is None:
            return None
        try:
            return self._pool.submit(_drawn_in_worker, plan)
        except BrokenProcessPool:  # it died on an earlier chart: none after
            self._wanted = False
            self.close()
            return None

    def finish(self) -> dict[Hashable, Drawn | Exception]:
        """Every queued chart, by batch (in the order queued) then file name (in the plans'
        order); a batch one of whose charts raised is that exception instead."""
        queue, self._queue = self._queue, []
        drawn: dict[int, bytes | Exception] = {}
        if any(_not_started(chart) for chart in queue):
            # first: the worker draws on meanwhile, holding up no chart (an import that
            # fails fails each chart drawn here below, as its own error)
            with contextlib.suppress(Exception):
                _load_chart_code()
        for index in reversed(range(len(queue))):  # the worker's not started, from the back
            chart = queue[index]
            if chart.future is not None and not chart.future.cancel():
                break
            drawn[index] = _attempt(chart.plan)
        for index, chart in enumerate(queue):  # the worker's (or those it could not draw)
            if index not in drawn:
                drawn[index] = self._collect(chart)
        batches: dict[Hashable, Drawn | Exception] = {}
        for index, chart in enumerate(queue):
            png, charts = drawn[index], batches.setdefault(chart.batch, {})
            if isinstance(charts, dict):
                if isinstance(png, Exception):
                    batches[chart.batch] = png
                else:
                    charts[chart.name] = png
        return batches

    def _collect(self, chart: _Chart) -> bytes | Exception:
        """The worker's chart; drawn here instead if the worker died (no worker after)."""
        assert chart.future is not None
        try:
            return chart.future.result()
        except BrokenProcessPool:
            self._wanted = False
            self.close()
            return _attempt(chart.plan)
        except Exception as error:  # the chart's own error, raised in the worker
            return error

    def close(self) -> None:
        """Stop the worker (charts it was drawing are dropped: call after `finish`)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._started = None, None


def _not_started(chart: _Chart) -> bool:
    future = chart.future
    return future is None or not (future.running() or future.done())


def _attempt(plan: Callable[[], bytes]) -> bytes | Exception:
    try:
        return plan()
    except Exception as error:  # one chart's bug must not lose the other analyses' charts
        return error
