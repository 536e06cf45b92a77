"""Every chart is a real PNG, small enough for the event log, large enough to read."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter, compute_results
from runcrawler_assets.reporting import charts, figures, plans

MAX_BYTES = 150_000


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG header, checking the signature on the way."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_every_analysis_chart_is_a_readable_small_png(
    demo_charts: dict[str, dict[str, bytes]],
) -> None:
    assert list(demo_charts) == [a.name for a in ANALYSES]
    names = [name for pngs in demo_charts.values() for name in pngs]
    assert len(names) == len(set(names)), "chart file names must not collide"
    assert {"err_type.png", "when_month_user.png", "efficiency_vs_procs.png"} <= set(names)
    for pngs in demo_charts.values():
        for name, png in pngs.items():
            width, height = png_size(png)
            assert 600 <= width <= 1400 and 200 <= height <= 1400, name
            assert 2_000 < len(png) < MAX_BYTES, name


def test_a_chart_is_drawn_the_same_from_the_same_table(
    demo_results: dict[str, AnalysisResult], demo_charts: dict[str, dict[str, bytes]]
) -> None:
    errors = demo_results["error_categories"].tables
    drawn = demo_charts["error_categories"]["failure_stages.png"]
    assert figures.failure_stage_bars(errors["failure_stages"]) == drawn


def rendered_charts(
    demo_results: dict[str, AnalysisResult], monkeypatch: pytest.MonkeyPatch
) -> dict[str, tuple[Image.Image, bytes]]:
    """Every chart's rendering (before its palette) and its PNG, by file name."""
    images: list[Image.Image] = []
    encode = charts.palette_png

    def kept(image: Image.Image) -> bytes:
        images.append(image)
        return encode(image)

    monkeypatch.setattr(charts, "palette_png", kept)
    pngs = {}
    for name, result in demo_results.items():
        pngs |= plans.draw_charts(name, result.tables)
    monkeypatch.undo()
    assert len(images) == len(pngs)
    return {name: (image, png) for (name, png), image in zip(pngs.items(), images, strict=True)}


def test_every_chart_is_cropped_as_matplotlibs_tight_crop(
    demo_results: dict[str, AnalysisResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rendered` measures the drawn box itself instead of savefig's `bbox_inches="tight"`,
    and takes savefig's raw pixels at that box's size: the same pixels, chart by chart
    (with a legend outside the axes, a colour bar, ...)."""
    ours = rendered_charts(demo_results, monkeypatch)

    def tight_png(fig: charts.Figure) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=charts.DPI, bbox_inches="tight")
        charts.plt.close(fig)
        return buffer.getvalue()

    monkeypatch.setattr(charts, "_png", tight_png)
    for name, result in demo_results.items():
        for file_name, png in plans.draw_charts(name, result.tables).items():
            theirs = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
            assert np.array_equal(np.asarray(ours[file_name][0]), theirs), file_name


def test_every_chart_is_kept_in_256_colours_as_drawn_in_under_half_the_bytes(
    demo_results: dict[str, AnalysisResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PNG holds a palette: every pixel as rendered but for a few levels (more only on
    some anti-aliased edges), in less than half of what full colour takes (2.7× less on
    the demo warehouse)."""
    full_colour = palette = 0
    for file_name, (image, png) in rendered_charts(demo_results, monkeypatch).items():
        stored = Image.open(io.BytesIO(png))
        assert stored.mode == "P" and len(stored.getcolors(256) or []) <= 256, file_name
        assert image.getchannel("A").getextrema() == (255, 255), f"{file_name} is opaque"
        drawn, kept = np.asarray(image.convert("RGB"), int), np.asarray(stored.convert("RGB"), int)
        error = np.abs(drawn - kept).max(axis=2)
        assert error.mean() < 3 and (error > 16).mean() < 0.02, file_name
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", compress_level=3)
        full_colour, palette = full_colour + len(buffer.getvalue()), palette + len(png)
    assert palette < full_colour / 2


def test_a_chart_laid_out_by_tight_layout_is_drawn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tight_layout` leaves a placeholder layout engine, for which savefig would draw the
    whole figure once more before rendering it: `_png` drops it (the layout is done)."""
    drawn = []
    draw = charts.Figure.draw

    def counted(fig: charts.Figure, renderer: object) -> None:
        drawn.append(fig)
        draw(fig, renderer)

    monkeypatch.setattr(charts.Figure, "draw", counted)
    fig, (ax,) = charts._figure()
    ax.bar(["a", "b"], [1, 2])
    fig.tight_layout()
    assert png_size(charts._png(fig))[0] > 0
    assert len(drawn) == 1


@pytest.mark.parametrize("run_filter", [RunFilter(), RunFilter(user="nobody")])
def test_every_chart_of_an_empty_selection_says_no_runs(
    empty_con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> None:
    drawn = {}
    for name, result in compute_results(empty_con, ANALYSES, run_filter).items():
        drawn[name] = pngs = plans.draw_charts(name, result.tables)
        assert pngs and all(png.startswith(b"\x89PNG") for png in pngs.values()), name
    assert drawn["setting_effects"]["setting_failure_ratios.png"] == charts.no_runs_chart(
        "Failure rate of each setting value relative to the other runs (95 % CI)"
    )


def test_charts_are_written_as_files_named_as_drawn(
    demo_charts: dict[str, dict[str, bytes]], tmp_path: Path
) -> None:
    pngs = demo_charts["error_categories"]
    paths = plans.write_charts(tmp_path / "charts", pngs)
    assert [p.name for p in paths] == list(pngs)
    assert (tmp_path / "charts" / "err_type.png").read_bytes() == pngs["err_type.png"]


def test_failure_stages_draw_one_panel_per_solver_in_its_own_words() -> None:
    stages = pd.DataFrame(
        {
            "solver": ["avbp", "avbp", "openfoam", "openfoam", "openfoam"],
            "stage_code": pd.array([None, 300, 110, 200, 250], dtype="Int64"),
            "stage": ["no stage in the logs", "in the temporal loop", "meshing",
                      "decomposition", "solver start-up"],
            "runs": [1, 8, 2, 3, 4],
            "share_pct": [11.1, 88.9, 22.2, 33.3, 44.4],
        }
    )  # fmt: skip
    one_solver = figures.failure_stage_bars(stages[stages["solver"] == "avbp"])
    both = figures.failure_stage_bars(stages)
    assert png_size(both)[1] > png_size(one_solver)[1]  # a second panel below the first


@pytest.mark.parametrize("horizontal", [False, True])
def test_stacked_bars_hold_each_columns_values_on_top_of_the_previous(horizontal: bool) -> None:
    table = pd.DataFrame({"ana": [3, 0, 2], "bob": [1, 4, 0]}, index=["2024", "2025", "2026"])
    fig, (ax,) = charts._figure()
    charts._stack(ax, np.arange(3), table, width=0.8, horizontal=horizontal)
    spans = {}  # column -> [(position, low, high)] of its bars
    for shape in ax.collections:
        for path in shape.get_paths():
            (x0, y0), (x1, y1) = path.vertices.min(axis=0), path.vertices.max(axis=0)
            along, low, high = ((y0 + y1) / 2, x0, x1) if horizontal else ((x0 + x1) / 2, y0, y1)
            spans.setdefault(shape.get_label(), []).append((round(along), low, high))
    charts.plt.close(fig)
    assert spans == {"ana": [(0, 0, 3), (2, 0, 2)], "bob": [(0, 3, 4), (1, 0, 4)]}
    legend = [text.get_text() for text in fig.axes[0].legend().get_texts()]
    assert legend == ["ana", "bob"]


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


HUGE = "m" * 1_000_000  # a label no table holds any more (contract-notes 16), drawn anyway


def test_a_label_is_one_line_of_at_most_40_characters() -> None:
    assert charts.short_label(HUGE) == "m" * 39 + "…"
    assert charts.short_label("m" * 40) == "m" * 40
    assert charts.short_label("new\nline  here") == "new line here"
    assert charts.short_label(42) == "42"
    assert len(charts.short_label(HUGE, 120)) == 120


def test_a_dollar_in_a_name_is_drawn_as_itself_not_as_a_formula() -> None:
    assert charts.short_label("cost $x$") == r"cost \$x\$"
    png = charts.bar_panels({"": pd.Series({r"bad $\frac{$ name": 3, "b": 1})}, "Runs", "runs")
    assert png_size(png)[0] <= 1400


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore:Tight layout not applied")  # 40 wide letters twice a row
def test_every_chart_of_megabyte_labels_stays_small(tmp_path) -> None:
    names = [HUGE, "b" + HUGE, "c"]
    counts = pd.Series([5, 3, 1], index=names)
    table = pd.DataFrame({names[0]: [1, 2], names[1]: [3, 0]}, index=[HUGE, "2024"])
    boxes = pd.DataFrame(
        [{"label": n, "runs": 9, "q1": 8, "med": 16, "q3": 32, "whislo": 4, "whishi": 64,
          "fliers": []} for n in names]
    )  # fmt: skip
    runs = pd.DataFrame(
        {"dimension": [3, 3], "cluster": [HUGE, "c"], "n_procs": [36, 72],
         "efficiency": [1e-5, 2e-5]}
    )  # fmt: skip
    medians = runs.rename(columns={"n_procs": "procs_median", "efficiency": "efficiency_median"})
    effects = pd.DataFrame(
        {"label": names, "ratio": [2.0, 1.0, 0.5], "ci_low": [1.5, 0.8, 0.3],
         "ci_high": [3.0, 1.2, 0.9], "flagged": [True, False, True]}
    )  # fmt: skip
    bins = pd.DataFrame({"dimension": [3], "bin_low": [10.0], "bin_high": [20.0], "runs": [4]})
    pngs = [
        charts.pie_chart(counts, "Runs per user"),
        charts.bar_panels({HUGE: counts, "b": counts}, "Runs per stage", "runs"),
        charts.stacked_bars(table, "Runs per year and user", "year", "runs", "user"),
        charts.heatmap(table, "Errors per user", "category", "user"),
        charts.bar_panels({"mixture": counts, HUGE: counts}, "Runs per value", "runs", ncols=2),
        charts.histogram_by_dimension(bins, 15.0, f"{HUGE} per process", HUGE),
        charts.grouped_bars(table, "Runs per mixture", "runs", "dimension"),
        charts.box_plots(boxes, "Processes per user", "user", "processes", log=True),
        charts.efficiency_vs_procs(runs, medians, f"{HUGE}: efficiency"),
        charts.ratio_forest(effects, "Failure ratio", "ratio"),
    ]
    # Wider than usual (40 or 160 of the widest letter), but unbounded a label this long
    # asks for a PNG millions of pixels wide, which matplotlib refuses after minutes.
    for png in pngs:
        width, height = png_size(png)
        assert width <= 3000 and height <= 1400
        assert len(png) < MAX_BYTES


@pytest.mark.parametrize(
    ("value", "label"),
    [(0, "0"), (2.5, "2.5"), (250, "250"), (2000, "2k"), (12_000, "12k"), (1_500_000, "1.5M")],
)
def test_bar_ticks_are_short_enough_for_a_half_width_panel(value: float, label: str) -> None:
    """10000 and 12000 ran together under a half-width panel of 20,000 runs."""
    assert charts.compact_number(value) == label


@pytest.mark.parametrize(
    ("value", "label"),
    [(0, "0"), (7, "7"), (999, "999"), (512.4, "512"), (1_000, "1k"), (1_234, "1.23k"),
     (12_345, "12.3k"), (143_000, "143k"), (1_000_000, "1M"), (-2_350, "-2.35k")],
)  # fmt: skip
def test_counts_are_printed_whole_below_a_thousand_then_to_three_digits(
    value: float, label: str
) -> None:
    """The tables keep exact counts; a chart prints what its bars show (issue 16)."""
    assert charts.count_label(value) == label
