"""Charts drawn on two cores (`reporting.drawing`): same PNGs, both processes used, and a
worker that cannot help never loses a chart."""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
import weakref
from collections.abc import Hashable
from contextlib import closing
from functools import partial
from pathlib import Path

import psutil
import pytest
from dagster import asset, build_init_resource_context, materialize

from runcrawler_assets import config
from runcrawler_assets.analytics import AnalysisResult
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import analyses
from runcrawler_assets.defs.resources import ChartDrawing
from runcrawler_assets.defs.runner import run_resources
from runcrawler_assets.reporting.drawing import (
    THREAD_GENERATION,
    Batch,
    ChartDrawer,
    Drawn,
    Plans,
)
from runcrawler_assets.reporting.plans import chart_plans
from runcrawler_tests.conftest import DEMO_RUNS, DemoWarehouse, packages_loaded_by

MAIN = os.getpid()


def drawn_by(seconds: float) -> bytes:
    """A stand-in chart (importable by the worker): which process drew it."""
    time.sleep(seconds)
    return str(os.getpid()).encode()


def dies_in_a_worker(main: int, after: float = 0.0) -> bytes:
    """A chart the worker cannot draw: it kills the worker (once it has drawn for `after`
    seconds), and draws fine in `main`."""
    if os.getpid() != main:
        time.sleep(after)
        os._exit(1)
    return b"here"


def fails(message: str) -> bytes:
    """A chart with a bug."""
    raise ValueError(message)


def a_worker_runs() -> bool:
    """Whether a pool worker of this process is alive (a dead one may linger as a zombie)."""
    for child in psutil.Process().children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                return True
        except psutil.Error:  # gone, or a zombie, meanwhile
            continue
    return False


def started(drawer: ChartDrawer) -> ChartDrawer:
    drawer.start()
    deadline = time.monotonic() + 60
    while not drawer.worker_ready:
        assert time.monotonic() < deadline, "the chart worker did not start in 60 s"
        time.sleep(0.05)
    return drawer


def pngs(batch: dict[str, Drawn] | Exception) -> dict[str, bytes]:
    """A batch's PNGs by file name (raises as a chart of it did)."""
    if isinstance(batch, Exception):
        raise batch
    return {name: chart.png for name, chart in batch.items()}


def finished(drawer: ChartDrawer) -> dict[Hashable, Batch]:
    """Every batch queued, drawn, by batch in the order they were done."""
    return dict(drawer.drawn_batches())


def drawn_with(
    drawer: ChartDrawer, plans: Plans, costs: dict[str, float] | None = None
) -> dict[str, bytes]:
    """Every chart of `plans` drawn as one batch, by file name (raises as a chart does)."""
    drawer.add(None, plans, costs)
    return pngs(finished(drawer).get(None, {}))


def test_both_processes_draw_and_the_order_is_the_plans():
    plans = {f"chart_{i}.png": partial(drawn_by, 0.2) for i in range(6)}
    with closing(started(ChartDrawer())) as drawer:
        drawn = drawn_with(drawer, plans)
    assert list(drawn) == list(plans)
    pids = {int(png) for png in drawn.values()}
    assert MAIN in pids and len(pids) == 2


def drawn_when(seconds: float) -> bytes:
    """A stand-in chart: who drew it (process and thread), and when it was done."""
    time.sleep(seconds)
    who = f"{os.getpid()} {threading.current_thread().name} {time.monotonic()!r}"
    return who.encode()


def test_without_a_spare_worker_a_thread_of_this_process_draws_while_this_one_works():
    """`RUNCRAWLER_WORKERS=1`: no second process, but the charts are still drawn while the
    analyses compute (DuckDB lets go of Python's lock as `sleep` does), then collected."""
    with closing(ChartDrawer(spare_workers=0)) as drawer:
        drawer.start()
        drawer.add("first", {f"a{i}.png": partial(drawn_when, 0.1) for i in range(3)})
        time.sleep(1.5)  # this thread busy (an analysis's SQL)
        finishing = time.monotonic()
        drawer.add("second", {f"b{i}.png": partial(drawn_when, 0) for i in range(2)})
        drawn = finished(drawer)
        assert not a_worker_runs()
    first, second = pngs(drawn["first"]), pngs(drawn["second"])
    assert list(first) == ["a0.png", "a1.png", "a2.png"] and list(second) == ["b0.png", "b1.png"]
    who = [png.decode().split() for png in [*first.values(), *second.values()]]
    assert {int(pid) for pid, _, _ in who} == {MAIN}
    assert all(thread.startswith("runcrawler-charts") for _, thread, _ in who)
    assert all(float(done) < finishing for _, _, done in who[:3])  # drawn meanwhile


class _Figure:
    """A stand-in for a matplotlib figure: objects that hold each other (a reference
    cycle), freed only by Python's cyclic garbage collector."""

    def __init__(self) -> None:
        self.canvas = {"figure": self}


def drawn_in_a_cycle(figures: list[weakref.ref[_Figure]]) -> bytes:
    """A stand-in chart leaving its figure behind as a real one does: in a cycle."""
    figure = _Figure()
    figures.append(weakref.ref(figure))
    return b"png"


def test_the_thread_collects_each_charts_figure_as_it_is_drawn_young_generations_only():
    """Drawn in a thread of the run's process (`RUNCRAWLER_WORKERS=1`, a big archive), each
    chart's figure is collected once drawn, not left for Python's collector to reach some
    charts later (issue 16: ~10 MB of the process at a million runs), by a collection of the
    young generations only: a full one traverses the whole process's heap holding Python's
    lock, which the analyses' queries wait for. Automatic collection is off here, so only
    the drawer's own collections run, and free the figures."""
    figures: list[weakref.ref[_Figure]] = []
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and threading.current_thread().name.startswith("runcrawler-charts"):
            generations.append(info["generation"])

    gc.disable()
    gc.callbacks.append(seen)
    try:
        with closing(ChartDrawer(spare_workers=0)) as drawer:
            drawer.start()
            plans = {f"c{i}.png": partial(drawn_in_a_cycle, figures) for i in range(3)}
            drawn = drawn_with(drawer, plans)
        assert drawn == {f"c{i}.png": b"png" for i in range(3)}
        assert len(figures) == 3 and all(figure() is None for figure in figures)
        assert generations == [THREAD_GENERATION] * 3 and THREAD_GENERATION < 2
    finally:
        gc.callbacks.remove(seen)
        gc.enable()


def test_a_worker_that_dies_hands_its_charts_back_and_is_not_used_again():
    plans = {"dies.png": partial(dies_in_a_worker, MAIN), "next.png": partial(drawn_by, 0.5)}
    with closing(started(ChartDrawer())) as drawer:
        drawn = drawn_with(drawer, plans)  # the worker takes the first chart and dies on it
        assert drawn == {"dies.png": b"here", "next.png": str(MAIN).encode()}
        assert not drawer.worker_ready
        again = drawn_with(drawer, {f"c{i}.png": partial(drawn_by, 0) for i in range(3)})
    assert {int(png) for png in again.values()} == {MAIN}


def test_a_worker_dying_while_this_process_draws_breaks_nothing(monkeypatch):
    """The worker dies while this process draws the queue's back: every chart is drawn,
    and no thread of the pool fails (taking charts back from Python 3.11's pool made its
    thread raise InvalidStateError on them)."""
    raised: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    plans = {"dies.png": partial(dies_in_a_worker, MAIN, 0.5)}
    plans |= {f"c{i}.png": partial(drawn_by, 0.3) for i in range(6)}
    with closing(started(ChartDrawer())) as drawer:
        drawn = drawn_with(drawer, plans)
    assert list(drawn) == list(plans) and drawn["dies.png"] == b"here"
    assert raised == []


def test_charts_queued_after_the_worker_died_are_drawn_here():
    """The worker dies on a chart while this process computes: what is queued after it is
    drawn here, and no analysis fails for it."""
    with closing(started(ChartDrawer())) as drawer:
        drawer.add("first", {"dies.png": partial(dies_in_a_worker, MAIN)})
        deadline = time.monotonic() + 30
        while a_worker_runs():
            assert time.monotonic() < deadline, "the worker did not die"
            time.sleep(0.05)
        time.sleep(0.5)  # the pool sees its worker gone: a new chart cannot be given to it
        drawer.add("second", {f"c{i}.png": partial(drawn_by, 0) for i in range(3)})
        drawn = finished(drawer)
    assert pngs(drawn["first"]) == {"dies.png": b"here"}
    assert {int(png) for png in pngs(drawn["second"]).values()} == {MAIN}


def test_queued_charts_are_drawn_while_this_process_works_and_come_back_by_batch():
    """What the analytics step relies on: the worker draws an analysis's charts while this
    process computes the next one, and `finish` gives each analysis its own charts."""
    with closing(started(ChartDrawer())) as drawer:
        drawer.add("first", {f"a{i}.png": partial(drawn_by, 0.1) for i in range(3)})
        time.sleep(1.5)  # this process busy (an analysis's SQL): the worker is not
        drawer.add("second", {f"b{i}.png": partial(drawn_by, 0.3) for i in range(4)})
        drawn = finished(drawer)
    assert list(drawn) == ["first", "second"]
    first, second = pngs(drawn["first"]), pngs(drawn["second"])
    assert list(first) == ["a0.png", "a1.png", "a2.png"]
    assert list(second) == ["b0.png", "b1.png", "b2.png", "b3.png"]
    assert MAIN not in {int(png) for png in first.values()}  # drawn meanwhile, by the worker
    assert MAIN in {int(png) for png in second.values()}  # this process joined in at the end


def test_each_batch_is_handed_out_as_soon_as_its_charts_are_drawn():
    """What lets the analytics step store an analysis while the worker draws the others'
    charts: a batch drawn here comes out while the worker still draws a slow one."""
    costs = {"slow.png": 1.0, "next.png": 0.5, "quick.png": 0.01}
    with closing(started(ChartDrawer())) as drawer:
        for name, cost in costs.items():  # the worker takes the two costliest, slow first
            drawer.add(name, {name: partial(drawn_when, cost)}, {name: cost})
        handed = [
            (batch, time.monotonic(), pngs(charts)) for batch, charts in drawer.drawn_batches()
        ]
    assert [batch for batch, _, _ in handed] == ["quick.png", "slow.png", "next.png"]
    done = {batch: float(charts[batch].split()[-1]) for batch, _, charts in handed}
    handed_at = {batch: at for batch, at, _ in handed}
    assert handed_at["quick.png"] < done["slow.png"] < handed_at["slow.png"] < done["next.png"]


def test_the_worker_takes_the_costliest_charts_and_this_process_the_cheapest():
    """Each chart comes with what it cost the last time: the worker starts on the costliest
    wherever it was queued, and this process draws the cheap ones at the end, so that
    neither waits long on the other's last chart (issue 16)."""
    plans = {f"light_{i}.png": partial(drawn_by, 0.05) for i in range(6)}
    plans["heavy.png"] = partial(drawn_by, 0.6)  # queued last: the back, this process's before
    costs = dict.fromkeys(plans, 0.05) | {"heavy.png": 0.6}
    with closing(started(ChartDrawer())) as drawer:
        drawn = drawn_with(drawer, plans, costs)
    assert list(drawn) == list(plans)
    assert int(drawn["heavy.png"]) != MAIN
    assert MAIN in {int(png) for png in drawn.values()}


def test_a_worker_still_starting_is_given_no_chart():
    """Charts queued while the worker imports matplotlib stay here: a `finish` that comes
    first draws them all, and waits on none held by a worker that cannot draw yet."""
    import runcrawler_assets.reporting.figures  # noqa: F401  (this process draws at once)

    plans = {f"c{i}.png": partial(drawn_by, 0) for i in range(4)}
    with closing(ChartDrawer()) as drawer:
        drawer.start()  # the worker starts importing: ~0.5 s at least
        drawn = drawn_with(drawer, plans, dict.fromkeys(plans, 1.0))
        assert not drawer.worker_ready
    assert {int(png) for png in drawn.values()} == {MAIN}


def test_a_chart_is_timed_where_it_is_drawn():
    """What the next refresh orders the charts by: the seconds each took, in either process."""
    plans = {f"c{i}.png": partial(drawn_by, 0.1 * (i + 1)) for i in range(4)}
    with closing(started(ChartDrawer())) as drawer:
        drawer.add("batch", plans)
        drawn = finished(drawer)["batch"]
    assert isinstance(drawn, dict) and list(drawn) == list(plans)
    assert {int(chart.png) for chart in drawn.values()} == {MAIN, int(drawn["c0.png"].png)}
    for i, chart in enumerate(drawn.values()):
        assert 0.1 * (i + 1) <= chart.seconds < 0.1 * (i + 1) + 0.5


@pytest.mark.parametrize("workers", [0, 1])
def test_a_chart_that_fails_fails_its_batch_only(workers: int):
    with closing(ChartDrawer(spare_workers=workers)) as drawer:
        drawer.start()
        drawer.add("broken", {"ok.png": partial(drawn_by, 0), "bad.png": partial(fails, "x")})
        drawer.add("fine", {"fine.png": partial(drawn_by, 0)})
        drawn = finished(drawer)
    assert isinstance(drawn["broken"], ValueError) and "x" in str(drawn["broken"])
    assert list(drawn["fine"]) == ["fine.png"]
    with closing(ChartDrawer(spare_workers=workers)) as drawer, pytest.raises(ValueError):
        drawn_with(drawer, {"bad.png": partial(fails, "y")})


def test_the_analyses_charts_are_the_same_drawn_on_two_cores(
    demo_results: dict[str, AnalysisResult], demo_charts: dict[str, dict[str, bytes]]
):
    with closing(started(ChartDrawer())) as drawer:
        for name, result in demo_results.items():
            assert drawn_with(drawer, chart_plans(name, result.tables)) == demo_charts[name], name


@pytest.mark.parametrize(("workers", "spare"), [(1, 0), (2, 1), (8, 1)])
def test_spare_workers_follow_runcrawler_workers(workers: int, spare: int, tmp_path):
    config = Config(archive_root=tmp_path, data_dir=tmp_path, parse_workers=workers)
    assert ChartDrawing.from_config(config).spare_workers == spare


def _new_children(before: set[int]) -> list[psutil.Process]:
    """This process's children not in `before`, but Python's resource tracker."""
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())
    ]


def test_the_worker_stops_with_the_run(data_copy):
    """An analysis run starts the worker and leaves no process behind it."""
    settings = Config(archive_root=data_copy, data_dir=data_copy)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = materialize([analyses], resources=run_resources(settings))
    assert result.success
    assert _new_children(before) == []


@pytest.fixture
def crawled_copy(data_copy: Path, demo_warehouse: DemoWarehouse) -> Path:
    """`data_copy` with the demo crawl's JSON run store too: its discoveries tell how many
    runs the archive had, as a crawled data folder's do."""
    shutil.copytree(demo_warehouse.settings.runs_dir, data_copy / "runs")
    return data_copy


def _children_in_a_run(settings: Config, archive_runs: int = 0) -> list[list[psutil.Process]]:
    """The new children seen when a first step starts and after the analyses, in a run of
    the three, then in a run of the first step alone (`archive_runs`: as the launcher
    counted them)."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    seen: list[list[psutil.Process]] = []

    @asset
    def a_first_step() -> None:  # sorts before `analyses`, which does not wait for it
        seen.append(_new_children(before))

    @asset(deps=[a_first_step])
    def a_second_step() -> None:  # after the analyses, which it does not wait for either
        seen.append(_new_children(before))

    resources = run_resources(settings, archive_runs=archive_runs)
    result = materialize([a_first_step, analyses, a_second_step], resources=resources)
    assert result.success
    starts = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert starts == ["a_first_step", "analyses", "a_second_step"]
    assert materialize([a_first_step], resources=run_resources(settings)).success
    return seen


def test_the_worker_starts_with_a_run_that_has_analyses(crawled_copy: Path):
    """Its imports overlap the steps before the analyses: the worker is alive when the
    run's first step starts; a run without analyses starts none."""
    settings = Config(archive_root=crawled_copy, data_dir=crawled_copy, parse_workers=2)
    first, after_analyses, alone = _children_in_a_run(settings)
    assert len(first) == len(after_analyses) == 1
    assert alone == []


def test_a_first_crawl_starts_the_worker_with_the_analyses(data_copy: Path):
    """Before any discovery the archive's size is unknown: the worker starts once the
    analyses know it, not with the run."""
    settings = Config(archive_root=data_copy, data_dir=data_copy, parse_workers=2)
    first, after_analyses, _ = _children_in_a_run(settings)
    assert first == []
    assert len(after_analyses) == 1


def test_a_first_crawl_whose_launcher_counted_the_runs_starts_the_worker_with_the_run(
    data_copy: Path,
):
    """The CLI's scan counts the archive's runs before the run starts (`ArchiveCheck`)."""
    settings = Config(archive_root=data_copy, data_dir=data_copy, parse_workers=2)
    first, after_analyses, _ = _children_in_a_run(settings, archive_runs=DEMO_RUNS)
    assert len(first) == len(after_analyses) == 1


@pytest.mark.parametrize(
    ("recorded", "counted"),
    [(True, 0), (False, 0), (False, DEMO_RUNS)],
    ids=["recorded", "first-crawl", "counted-by-the-launcher"],
)
def test_a_big_archive_draws_its_charts_in_a_thread(
    recorded: bool,
    counted: int,
    crawled_copy: Path,
    demo_charts: dict[str, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
):
    """From `BIG_ARCHIVE_RUNS` runs no chart process starts, with the run nor with the
    analyses (issue 16: a million runs within 500 MB), and the charts are drawn all the
    same."""
    monkeypatch.setattr(config, "BIG_ARCHIVE_RUNS", DEMO_RUNS // 2)
    if not recorded:
        shutil.rmtree(crawled_copy / "runs")
    settings = Config(archive_root=crawled_copy, data_dir=crawled_copy, parse_workers=2)
    first, after_analyses, _ = _children_in_a_run(settings, archive_runs=counted)
    assert first == after_analyses == []
    for charts in demo_charts.values():
        for name, png in charts.items():
            assert (settings.charts_dir / name).read_bytes() == png, name


def test_a_worker_started_for_a_small_archive_stops_once_it_is_big(
    crawled_copy: Path, monkeypatch: pytest.MonkeyPatch
):
    """A run that found a small archive at its start and a big one at its analyses (a
    first crawl of most of it) draws in a thread, its worker stopped."""
    settings = Config(archive_root=crawled_copy, data_dir=crawled_copy, parse_workers=2)
    drawing = ChartDrawing.from_config(settings)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    drawing.setup_for_execution(build_init_resource_context())
    try:
        assert not drawing.drawer(DEMO_RUNS).in_a_thread
        assert len(_new_children(before)) == 1
        monkeypatch.setattr(config, "BIG_ARCHIVE_RUNS", DEMO_RUNS)
        assert drawing.drawer(DEMO_RUNS).in_a_thread
        assert _new_children(before) == []
    finally:
        drawing.teardown_after_execution(build_init_resource_context())


def test_charts_are_planned_without_matplotlib_and_drawn_without_duckdb(
    synthetic_warehouse: Path, tmp_path: Path
) -> None:
    """The analytics' process, which holds DuckDB's memory, plans and digests every chart
    without loading matplotlib; the chart worker, given those plans pickled as its pool
    sends them, draws them without loading DuckDB nor the analytics (issue 16: the
    process tree's memory at a million runs)."""
    sent = tmp_path / "sent.pickle"
    planned = packages_loaded_by(
        "import pickle\n"
        "from functools import partial\n"
        "import duckdb\n"
        "from runcrawler_assets.analytics import ANALYSES, RunFilter, compute_results\n"
        "from runcrawler_assets.reporting.assemble import refresh_analyses\n"
        "from runcrawler_assets.reporting.drawing import _drawn_and_collected\n"
        "from runcrawler_assets.reporting.plans import chart_plans, plan_digest\n"
        f"con = duckdb.connect({str(synthetic_warehouse)!r}, read_only=True)\n"
        "results = compute_results(con, ANALYSES, RunFilter())\n"
        "plans = [p for name, r in results.items() for p in chart_plans(name, r.tables).values()]\n"
        "assert len({plan_digest(p) for p in plans}) == len(plans) >= 27, len(plans)\n"
        "calls = [partial(_drawn_and_collected, plan) for plan in plans]\n"
        f"open({str(sent)!r}, 'wb').write(pickle.dumps(calls))\n"
    )
    assert "duckdb" in planned and "pandas" in planned and "matplotlib" not in planned
    drawn = packages_loaded_by(
        "import pickle, sys\n"
        "from runcrawler_assets.reporting.drawing import _warm_up\n"
        "_warm_up()\n"
        f"calls = pickle.loads(open({str(sent)!r}, 'rb').read())\n"
        "assert all(call().png.startswith(b'\\x89PNG') for call in calls)\n"
        "assert 'runcrawler_assets.analytics' not in sys.modules\n"
    )
    assert "matplotlib" in drawn and "duckdb" not in drawn
