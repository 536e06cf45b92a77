"""Per-user charts of a big team: the busiest users one by one, the rest grouped or left out.

The figures are inspected as drawn (`charts._png` is replaced by one that keeps
them), not read back from the PNG.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

from runcrawler_assets.analytics import RunFilter, habits
from runcrawler_assets.analytics.errors import ERROR_CATEGORY_NAMES
from runcrawler_assets.records import RunRecord
from runcrawler_assets.reporting import charts, figures
from runcrawler_assets.reporting.plans import DISTRIBUTION_CHARTS

TEAM = 60
N_PROCS_SHOWN = DISTRIBUTION_CHARTS["n_procs"][1:]  # its title and axis label


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the charts draw, kept instead of rendered."""
    kept: list[Figure] = []

    def keep(fig: Figure) -> bytes:
        kept.append(fig)
        plt.close(fig)
        return b""

    monkeypatch.setattr(charts, "_png", keep)
    return kept


def only_axes(fig: Figure) -> Axes:
    """The chart's axes (a heat map's colour bar left out)."""
    return next(ax for ax in fig.axes if ax.get_label() != "<colorbar>")


def ticks(labels: list) -> list[str]:
    return [label.get_text() for label in labels]


def errors_by_user(users: int) -> pd.DataFrame:
    """An `errors_by_user` table: user i has i + 1 errors per category (most first, as stored),
    then two users with none; `user_k` sorts after `user_j` for k > j."""
    names = [f"user_{i:02d}" for i in range(users)]
    counts = {name: [(i + 1) * (c + 1) for i in range(users)] for c, name in enumerate(
        ERROR_CATEGORY_NAMES)}  # fmt: skip
    table = pd.DataFrame({"user": names, **counts}).iloc[::-1]
    idle = pd.DataFrame({"user": ["idle_a", "idle_b"], **dict.fromkeys(ERROR_CATEGORY_NAMES, 0)})
    table = pd.concat([table, idle], ignore_index=True)
    table.insert(1, "runs", 1000)
    table.insert(2, "failed_or_killed", table[list(ERROR_CATEGORY_NAMES)].sum(axis=1))
    return table


def cells(heatmap: Axes) -> np.ma.MaskedArray:
    """The values a heatmap colours, one per cell, in its rows' order (top first)."""
    (mesh,) = heatmap.collections
    assert isinstance(mesh, QuadMesh)
    assert heatmap.yaxis_inverted()  # the first row on top
    return mesh.get_array()


def test_a_heatmap_of_a_big_team_draws_its_20_busiest_users_and_one_row_for_the_others(
    drawn: list[Figure],
) -> None:
    by_user = errors_by_user(TEAM)
    figures.errors_by_user_heatmap(by_user, ERROR_CATEGORY_NAMES)
    ax = only_axes(drawn[0])
    top = [f"user_{i:02d}" for i in range(TEAM - 1, TEAM - 21, -1)]  # as stored: most first
    assert ticks(ax.get_yticklabels()) == [*top, f"others ({TEAM - 20} users)"]
    assert ax.get_title() == (
        "Error categories per user (runs): the 20 users with most, the other 40 summed"
    )
    image = cells(ax)
    rest = by_user[~by_user["user"].isin(top)].set_index("user")[list(ERROR_CATEGORY_NAMES)]
    assert image.shape == (21, len(ERROR_CATEGORY_NAMES))
    assert image.data[-1].tolist() == rest.sum().tolist()  # every other user, summed exactly
    assert image.mask[-1].all() and not image.mask[:-1].any()  # grey, off the colour scale
    assert len(ax.texts) == 21 * len(ERROR_CATEGORY_NAMES)  # not 60 rows of numbers


def test_the_rows_folded_are_the_smallest_and_ties_keep_the_tables_order() -> None:
    table = pd.DataFrame({"a": [1, 5, 2, 2, 0, 4], "b": [1, 0, 1, 1, 1, 0]},
                         index=["u", "v", "w", "x", "y", "z"])  # fmt: skip
    folded = charts._top_rows_with_others(table, 3, "users")
    assert folded.index.tolist() == ["v", "w", "z", "others (3 users)"]  # w before x: a tie
    assert folded.loc["others (3 users)"].tolist() == [3, 3]
    assert folded.sum().tolist() == table.sum().tolist()
    assert charts._top_rows_with_others(table, 5, "users") is table  # one row left: its name


@pytest.mark.parametrize("users", [7, 21])
def test_a_heatmap_of_a_small_team_draws_every_user_as_before(
    drawn: list[Figure], users: int
) -> None:
    by_user = errors_by_user(users)
    figures.errors_by_user_heatmap(by_user, ERROR_CATEGORY_NAMES)
    ax = only_axes(drawn[0])
    heat = by_user[by_user["failed_or_killed"] > 0].set_index("user")
    assert ticks(ax.get_yticklabels()) == heat.index.tolist()
    assert ax.get_title() == "Error categories per user (runs)"
    image = cells(ax)
    assert not np.ma.is_masked(image)
    assert image.data.tolist() == heat[list(ERROR_CATEGORY_NAMES)].to_numpy().tolist()


def distributions(users: int) -> pd.DataFrame:
    """A `hpc_habit_distributions` block of n_procs: user i has 10 + i % 30 runs (so ties),
    users in order of their median, which falls as i grows."""
    rows = [
        {"quantity": "n_procs", "user": f"user_{i:02d}", "runs": 10 + i % 30, "q1": 8.0,
         "med": 1000.0 - i, "q3": 2000.0, "whislo": 2.0, "whishi": 4000.0, "fliers": [8192.0]}
        for i in range(users)
    ]  # fmt: skip
    return pd.DataFrame(rows[::-1])


def test_box_plots_of_a_big_team_draw_the_20_users_with_most_runs_by_median(
    drawn: list[Figure],
) -> None:
    figures.distribution_boxes(distributions(TEAM), "n_procs", *N_PROCS_SHOWN)
    ax = only_axes(drawn[0])
    # 39 runs: users 29 and 59; 38: 28 and 58; ... 30 runs: users 20 and 50; ties by name
    busiest = sorted([*range(20, 30), *range(50, 60)], key=lambda i: (-(10 + i % 30), i))[:20]
    by_median = sorted(busiest, reverse=True)
    assert ticks(ax.get_xticklabels()) == [f"user_{i:02d}" for i in by_median]
    assert ax.get_title() == "MPI processes per run, by user (the 20 users with most runs)"


def test_box_plot_ties_at_the_cut_are_broken_by_name(drawn: list[Figure]) -> None:
    boxes = distributions(25).assign(runs=5)  # all tied: the first 20 names are kept
    figures.distribution_boxes(boxes, "n_procs", *N_PROCS_SHOWN)
    names = ticks(only_axes(drawn[0]).get_xticklabels())
    assert names == [f"user_{i:02d}" for i in range(19, -1, -1)]  # by median, as before


def test_a_log_axis_is_labelled_in_plain_numbers_without_minor_ticks(drawn: list[Figure]) -> None:
    boxes = distributions(7).drop(columns="quantity").rename(columns={"user": "label"})
    charts.box_plots(boxes, "MPI processes per run", "user", "processes", log=True)
    axis = only_axes(drawn[0]).yaxis
    assert axis.get_scale() == "log"
    assert len(axis.get_minorticklocs()) == 0
    shown = [axis.get_major_formatter()(value) for value in axis.get_majorticklocs()]
    assert {"2", "10", "100", "1000"} <= set(shown)  # not 10^2, nor 1e+03


@pytest.mark.parametrize("users", [7, 20])
def test_box_plots_of_a_small_team_draw_every_user_as_before(
    drawn: list[Figure], users: int
) -> None:
    boxes = distributions(users)
    figures.distribution_boxes(boxes, "n_procs", *N_PROCS_SHOWN)
    ax = only_axes(drawn[0])
    assert ticks(ax.get_xticklabels()) == boxes["user"].tolist()
    assert ax.get_title() == "MPI processes per run, by user"


def test_box_statistics_count_each_users_runs(
    synthetic_con: duckdb.DuckDBPyConnection, synthetic_records: list[RunRecord]
) -> None:
    result = habits.ANALYSIS.compute(synthetic_con, RunFilter())
    boxes = result.tables["hpc_habit_distributions"].query("quantity == 'n_procs'")
    expected = Counter(r.user for r in synthetic_records if r.n_procs is not None)
    assert dict(zip(boxes["user"], boxes["runs"], strict=True)) == expected
    assert boxes.columns.tolist() == [
        "quantity", "user", "runs", "q1", "med", "q3", "whislo", "whishi", "fliers"
    ]  # fmt: skip
