"""Every chart is a real PNG, small enough for the event log, large enough to read."""

from __future__ import annotations

import struct

import pandas as pd
import pytest

from runcrawler_assets import charts
from runcrawler_assets.analytics import AnalysisResult

MAX_BYTES = 150_000


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG header, checking the signature on the way."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_every_analysis_chart_is_a_readable_small_png(
    demo_results: dict[str, AnalysisResult],
) -> None:
    names = [name for result in demo_results.values() for name in result.charts]
    assert len(names) == len(set(names)), "chart file names must not collide"
    assert {"err_type.png", "when_month_user.png", "efficiency_vs_procs.png"} <= set(names)
    for result in demo_results.values():
        for name, png in result.charts.items():
            width, height = png_size(png)
            assert 600 <= width <= 1400 and 200 <= height <= 1400, name
            assert 5_000 < len(png) < MAX_BYTES, name


def test_the_no_runs_chart_says_so_in_a_small_png() -> None:
    width, _ = png_size(charts.no_runs_chart("Runs per user"))
    assert width >= 400


@pytest.mark.parametrize("counts", [pd.Series(dtype="int64"), pd.Series({"a": 0, "b": 0})])
def test_a_pie_of_nothing_is_the_no_runs_chart(counts: pd.Series) -> None:
    assert charts.pie_chart(counts, "Runs per user") == charts.no_runs_chart("Runs per user")


def test_a_pie_folds_the_smallest_slices_into_others() -> None:
    counts = pd.Series({f"user{i}": 20 - i for i in range(15)})
    folded = charts._top_with_others(counts, 9)
    assert len(folded) == 9 and folded.index[-1] == "others"
    assert folded.sum() == counts.sum()
