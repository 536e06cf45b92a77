"""Charts drawn on two cores (`reporting.drawing`): same PNGs, both processes used, and a
worker that cannot help never loses a chart."""

from __future__ import annotations

import os
import time
from contextlib import closing
from functools import partial

import psutil
import pytest
from dagster import materialize

from runcrawler_assets.analytics import AnalysisResult
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import ANALYSIS_ASSETS
from runcrawler_assets.defs.resources import ChartDrawing
from runcrawler_assets.defs.runner import run_resources
from runcrawler_assets.reporting.drawing import ChartDrawer
from runcrawler_assets.reporting.figures import chart_plans

MAIN = os.getpid()


def drawn_by(seconds: float) -> bytes:
    """A stand-in chart (importable by the worker): which process drew it."""
    time.sleep(seconds)
    return str(os.getpid()).encode()


def dies_in_a_worker(main: int) -> bytes:
    """A chart the worker cannot draw: it kills the worker, and draws fine in `main`."""
    if os.getpid() != main:
        os._exit(1)
    return b"here"


def started(drawer: ChartDrawer) -> ChartDrawer:
    drawer.start()
    deadline = time.monotonic() + 60
    while not drawer.worker_ready:
        assert time.monotonic() < deadline, "the chart worker did not start in 60 s"
        time.sleep(0.05)
    return drawer


def test_both_processes_draw_and_the_order_is_the_plans():
    plans = {f"chart_{i}.png": partial(drawn_by, 0.2) for i in range(6)}
    with closing(started(ChartDrawer())) as drawer:
        drawn = drawer.draw(plans)
    assert list(drawn) == list(plans)
    pids = {int(png) for png in drawn.values()}
    assert MAIN in pids and len(pids) == 2


def test_without_a_spare_worker_everything_is_drawn_here():
    drawer = ChartDrawer(spare_workers=0)
    drawer.start()
    assert not drawer.worker_ready
    drawn = drawer.draw({f"chart_{i}.png": partial(drawn_by, 0) for i in range(4)})
    assert {int(png) for png in drawn.values()} == {MAIN}


def test_a_worker_that_dies_hands_its_chart_back_and_is_not_used_again():
    plans = {"first.png": partial(drawn_by, 0.5), "dies.png": partial(dies_in_a_worker, MAIN)}
    with closing(started(ChartDrawer())) as drawer:
        drawn = drawer.draw(plans)  # the worker takes the last chart and dies on it
        assert drawn == {"first.png": str(MAIN).encode(), "dies.png": b"here"}
        assert not drawer.worker_ready
        again = drawer.draw({f"c{i}.png": partial(drawn_by, 0) for i in range(3)})
    assert {int(png) for png in again.values()} == {MAIN}


def test_the_analyses_charts_are_the_same_drawn_on_two_cores(
    demo_results: dict[str, AnalysisResult], demo_charts: dict[str, dict[str, bytes]]
):
    with closing(started(ChartDrawer())) as drawer:
        for name, result in demo_results.items():
            assert drawer.draw(chart_plans(name, result.tables)) == demo_charts[name], name


@pytest.mark.parametrize(("workers", "spare"), [(1, 0), (2, 1), (8, 1)])
def test_spare_workers_follow_runcrawler_workers(workers: int, spare: int, tmp_path):
    config = Config(archive_root=tmp_path, data_dir=tmp_path, parse_workers=workers)
    assert ChartDrawing.from_config(config).spare_workers == spare


def test_the_worker_stops_with_the_run(data_copy):
    """An analysis run starts the worker and leaves no process behind it."""
    settings = Config(archive_root=data_copy, data_dir=data_copy)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = materialize(ANALYSIS_ASSETS[:3], resources=run_resources(settings))
    assert result.success
    workers = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline())
    ]
    assert workers == []
