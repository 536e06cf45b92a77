"""Charts drawn on two cores: this process, and a spare worker process (or thread).

A chart is ~100 ms of single-threaded matplotlib, and a refresh draws ~27 of
them, which left the second core idle while the analyses' SQL ran (issue 16).
A `ChartDrawer` hands the charts it is given to one worker process (spawned:
it shares no thread or lock with DuckDB), two at a time, so the worker draws
the first analyses' charts while this process computes the next analyses.
When this process is done computing and charts remain that the worker was
not given, `drawn_batches` loads matplotlib here (~0.3 s, while the worker
draws on), then draws them too, handing out each batch (an analysis's charts)
as soon as it is complete. Each chart comes with what it cost the last time
it was drawn (`Drawn.seconds`, kept by the caller): the worker takes the
costliest chart queued, this process the cheapest, so the last charts of
either are light ones and neither waits long on the other (a +10 refresh
ended on the worker's efficiency scatter, 0.2 s, while this process waited;
issue 16). Where the worker kept up (a million runs: SQL for seconds, charts
for less) this process never loads matplotlib. The worker is given no chart
until it has started (importing matplotlib takes ~1 s): a `drawn_batches`
that comes first draws what is left here, waiting on no chart held by a worker
still importing. A worker that dies hands its charts back, and one whose
parent dies exits with it (`subprocesses`).

Without a spare worker (`RUNCRAWLER_WORKERS=1`, or from 300,000 runs: a process tree
kept small, issue 16's 500 MB at a million runs) a thread of this process draws every
chart instead, without a second interpreter's ~125 MB and multiprocessing's resource
tracker's ~12 MB. DuckDB lets go of Python's lock while a query runs, but takes it back
between the query's tasks (to check for Ctrl-C), and the thread holds it while it draws:
the analyses' SQL takes longer beside it (+10 runs at a million: the step ~1.5× as long
as with the worker). `drawn_batches` then draws nothing itself: two Python threads draw
no faster than one, and pyplot's figures are not shared safely between threads.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from runcrawler_assets.heap import freeze_loaded
from runcrawler_assets.subprocesses import worker_pool

Plans = Mapping[str, Callable[[], bytes]]  # file name -> a picklable call giving its PNG
# What a chart is expected to cost, in seconds, when nothing says (a typical chart at 20,000
# runs: 20-220 ms); equal costs keep the queue's order.
TYPICAL_COST = 0.1


class Drawn(NamedTuple):
    """A chart drawn: its PNG, and the seconds drawing it took."""

    png: bytes
    seconds: float


Batch = dict[str, Drawn] | Exception  # a batch's charts by file name, or the error of one


def _timed(plan: Callable[[], bytes]) -> Drawn:
    started = time.perf_counter()
    png = plan()
    return Drawn(png, time.perf_counter() - started)


def _load_chart_code() -> None:
    """Import what drawing a chart needs (matplotlib: ~0.7 s)."""
    import runcrawler_assets.reporting.figures  # noqa: F401


def _warm_up() -> None:
    """The worker's first call: the chart code imported before the first chart is asked,
    and set aside from the garbage collector (`_drawn_and_collected`), what the imports left
    behind collected first (the worker's collections run after every chart)."""
    _load_chart_code()
    gc.collect()
    freeze_loaded()


def _drawn_and_collected(plan: Callable[[], bytes], generation: int = 2) -> Drawn:
    """`plan` drawn and timed, then its garbage collected up to `generation`: a matplotlib
    figure is a web of reference cycles that Python's collector leaves for many charts
    (~25 MB of the worker at a million runs, where the process tree's memory counts: issue
    16). The worker collects everything: with its imports frozen (`_warm_up`) that takes
    ~3 ms. A thread of the run's process collects only the young generations
    (`THREAD_GENERATION`), where a chart's figure lies: a full collection there traverses
    the whole process's heap (~45 ms: Dagster's, pandas' and DuckDB's objects) holding
    Python's lock, which DuckDB takes back between the tasks of every query (to check for
    Ctrl-C), so the analyses' SQL waited on it (a million runs, +10: the step 0.45 s
    longer, for ~5 MB less)."""
    try:
        return _timed(plan)
    finally:
        gc.collect(generation)


THREAD_GENERATION = 1

# Charts given to the worker at a time: one it draws, one waiting in its pipe, so that it
# never waits for the next; the others stay here, to be drawn by whichever process is free.
IN_FLIGHT = 2


@dataclass
class _Chart:
    batch: Hashable
    name: str
    plan: Callable[[], bytes]
    cost: float  # seconds expected
    future: Future[Drawn] | None = None  # set once given to the worker


class ChartDrawer:
    """Draws queued charts here and in one worker process when `spare_workers` allows, else
    in a thread of this process (`close` stops either: `with contextlib.closing(ChartDrawer())
    as drawer`).

    The worker process is given the costliest chart left, `IN_FLIGHT` at a time (the next
    as each is drawn); `drawn_batches` takes the cheapest (of equal costs: the worker the
    first queued, this process the last). A chart is never taken back from the worker once
    given: cancelling a pool's pending future breaks Python 3.11's pool when its worker then
    dies (it fails on the cancelled one, in its own thread). The thread is given every chart
    as it comes."""

    def __init__(self, spare_workers: int = 1) -> None:
        self._in_a_thread = spare_workers <= 0
        self._wanted = True
        self._pool: Executor | None = None
        self._started: Future[None] | None = None
        self._lock = threading.Lock()  # the queue and what is left, shared with the pool's thread
        self._queue: list[_Chart] = []
        self._left: list[int] = []  # the queue's charts neither given to the worker nor taken
        self._in_flight = 0
        self._batches: dict[Hashable, list[int]] = {}  # queued, not handed out: their charts
        self._pictures: dict[int, Drawn | Exception] = {}  # charts drawn, of batches not handed out

    @property
    def in_a_thread(self) -> bool:
        """Whether a thread of this process draws, not a worker process."""
        return self._in_a_thread

    def start(self) -> None:
        """Start the worker in the background (returns at once; harmless twice)."""
        if self._wanted and self._pool is None:
            if self._in_a_thread:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="runcrawler-charts")
                self._started = self._pool.submit(_load_chart_code)
            else:
                self._pool = worker_pool(1)
                self._started = self._pool.submit(_warm_up)
                self._started.add_done_callback(lambda _: self._give())
            self._give()

    @property
    def worker_ready(self) -> bool:
        started = self._started
        return (
            started is not None
            and started.done()
            and not started.cancelled()
            and started.exception() is None
        )

    def add(self, batch: Hashable, plans: Plans, costs: Mapping[str, float] | None = None) -> None:
        """Queue the charts of `plans` as one batch (an analysis's), with the seconds each
        is expected to cost (`costs`, by file name; `TYPICAL_COST` for those it lacks): the
        worker, if any, takes them as it is free, the costliest first."""
        costs = costs or {}
        with self._lock:
            first = len(self._queue)
            self._queue.extend(
                _Chart(batch, name, plan, costs.get(name, TYPICAL_COST))
                for name, plan in plans.items()
            )
            self._left.extend(range(first, len(self._queue)))
        self._batches.setdefault(batch, []).extend(range(first, len(self._queue)))
        self._give()

    def _give(self) -> None:
        """Give the worker the costliest charts left, up to `IN_FLIGHT` at a time, once it has
        started (called here, and by the pool's thread when it has started and as each chart
        is drawn); the thread is given every chart at once, to draw after its imports (and
        `drawn_batches` draws none here)."""
        with self._lock:
            in_flight = len(self._queue) if self._in_a_thread else IN_FLIGHT
            ready = self._in_a_thread or self.worker_ready
            while (
                ready and self._wanted and self._pool and self._in_flight < in_flight and self._left
            ):
                chart = self._queue[self._take(costliest=True)]
                generation = THREAD_GENERATION if self._in_a_thread else 2
                draw = partial(_drawn_and_collected, chart.plan, generation)
                try:
                    chart.future = self._pool.submit(draw)
                except (BrokenProcessPool, RuntimeError):  # died on an earlier chart, or closed
                    self._wanted = False
                    return  # this chart and the next are drawn here
                self._in_flight += 1
                chart.future.add_done_callback(self._drawn)

    def _drawn(self, _: Future[bytes]) -> None:
        with self._lock:
            self._in_flight -= 1
        self._give()

    def ready(self) -> list[tuple[Hashable, Batch]]:
        """The batches queued whose every chart is drawn, not handed out before, in the order
        queued; waits for nothing (the analytics step stores each as soon as it is ready)."""
        with self._lock:
            queue = self._queue
        done = []
        for batch, indices in list(self._batches.items()):
            for index in indices:
                future = queue[index].future
                if index not in self._pictures and future is not None and future.done():
                    self._pictures[index] = self._collect(queue[index])
            if all(index in self._pictures for index in indices):
                done.append((batch, self._batch(batch)))
        return done

    def drawn_batches(self) -> Iterator[tuple[Hashable, Batch]]:
        """Every batch queued and not handed out yet, each as soon as its every chart is drawn
        (`Batch`: the charts by file name, in the plans' order), while this process draws the
        cheapest charts left, then waits for the worker's; the queue is then empty.

        Handed out as they are done, not all at the end: the caller stores each one while
        the worker draws on (issue 16: the analyses' 22 events took 0.3 s after the last
        chart, the worker idle)."""
        try:
            with self._lock:
                to_draw_here = bool(self._left)
            if to_draw_here:
                # first: the worker draws on meanwhile, holding up no chart (an import that
                # fails fails each chart drawn here below, as its own error)
                with contextlib.suppress(Exception):
                    _load_chart_code()
            yield from self.ready()
            while (index := self._take_here()) is not None:
                self._pictures[index] = _attempt(self._queue[index].plan)
                yield from self.ready()
            while self._batches:  # the worker's, as it draws them (or those it could not take)
                self._wait_for_the_worker()
                yield from self.ready()
        finally:
            with self._lock:
                self._queue, self._left = [], []
            self._batches, self._pictures = {}, {}

    def _wait_for_the_worker(self) -> None:
        """Until one more chart queued is drawn: by the worker, or here if it was not given
        (or its worker died)."""
        waiting = []
        for indices in self._batches.values():
            for index in indices:
                chart = self._queue[index]
                if index in self._pictures:
                    continue
                if chart.future is None:
                    self._pictures[index] = _attempt(chart.plan)
                    return
                waiting.append(chart.future)
        wait(waiting, return_when=FIRST_COMPLETED)

    def _batch(self, batch: Hashable) -> Batch:
        """A batch drawn, handed out: its charts by file name, or the first error of one."""
        pictures = {self._queue[i].name: self._pictures.pop(i) for i in self._batches.pop(batch)}
        errors = [picture for picture in pictures.values() if isinstance(picture, Exception)]
        return errors[0] if errors else pictures

    def _take_here(self) -> int | None:
        """The cheapest chart not given to the worker, now this process's; None when none is
        left."""
        with self._lock:
            return self._take(costliest=False) if self._left else None

    def _take(self, costliest: bool) -> int:
        """Remove from the charts left the costliest (the first queued of equal costs) or the
        cheapest (the last queued), and return its index; call holding the lock."""

        def rank(position: int) -> tuple[float, int]:
            return self._queue[self._left[position]].cost, -position

        positions = range(len(self._left))
        return self._left.pop(max(positions, key=rank) if costliest else min(positions, key=rank))

    def _collect(self, chart: _Chart) -> Drawn | Exception:
        """The worker's chart; drawn here instead if it was not given or the worker died."""
        if chart.future is None:
            return _attempt(chart.plan)
        try:
            return chart.future.result()
        except BrokenProcessPool:
            self._wanted = False
            self.close()
            return _attempt(chart.plan)
        except Exception as error:  # the chart's own error, raised in the worker
            return error

    def close(self) -> None:
        """Stop the worker (charts it was drawing are dropped: call after `drawn_batches`)."""
        with self._lock:
            pool, self._pool, self._started = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _attempt(plan: Callable[[], bytes]) -> Drawn | Exception:
    try:
        return _timed(plan)
    except Exception as error:  # one chart's bug must not lose the other analyses' charts
        return error
