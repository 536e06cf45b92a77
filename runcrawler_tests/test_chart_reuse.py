"""A refresh draws only the charts whose tables changed (issue 16: drawing is most of the
cost of a refresh); the others are read back, and every chart is what drawing it gives."""

from __future__ import annotations

import ast
import json
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.analytics.errors import ERROR_CATEGORY_NAMES
from runcrawler_assets.reporting import plans
from runcrawler_assets.reporting.assemble import Refreshed, refresh_analyses
from runcrawler_assets.reporting.chart_plan import (
    MAX_BOXES,
    MAX_SERIES,
    TOP_TEMPLATES,
    ChartPlan,
    DrawnToScale,
)
from runcrawler_assets.reporting.drawing import ChartDrawer
from runcrawler_assets.reporting.plans import (
    SCALE_TOLERANCE,
    as_printed,
    chart_plans,
    draw_charts,
    moved_little,
    plan_digest,
    scaled_values,
)
from runcrawler_assets.warehouse.database import connect

# A successful run copied under another id: new runs, and not one more failure.
ONE_MORE_SUCCESS = """
    INSERT INTO runs SELECT * REPLACE (run_id || '-copy' AS run_id,
                                       run_path || '-copy' AS run_path)
    FROM runs WHERE status = 'success' ORDER BY run_id LIMIT 1
"""


def _refresh(data: Path, *statements: str) -> list[Refreshed]:
    """Run `statements` on the warehouse in `data`, then refresh every analysis."""
    with connect(data / "runcrawler.duckdb") as con, closing(ChartDrawer(0)) as drawer:
        for statement in statements:
            con.execute(statement)
        refreshed = list(refresh_analyses(con, ANALYSES, data / "charts", drawer))
    assert all(done.error is None for done in refreshed), [done.error for done in refreshed]
    return refreshed


def _written_at(charts: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in charts.glob("*.png")}


def _as_drawn_now(refreshed: list[Refreshed]) -> None:
    for done in refreshed:
        assert done.stored is not None
        expected = draw_charts(done.analysis.name, done.stored.result.tables)
        assert done.charts == expected, done.analysis.name
        assert list(done.charts) == list(expected)  # in the plans' order


def test_charts_that_show_the_same_are_read_back_not_drawn(data_copy: Path) -> None:
    first = _refresh(data_copy)
    assert sum(done.unchanged for done in first) == 0
    written = _written_at(data_copy / "charts")
    again = _refresh(data_copy)
    assert all(done.unchanged == len(done.charts) > 0 for done in again)
    assert _written_at(data_copy / "charts") == written
    charts = {done.analysis.name: done.charts for done in first}
    assert {done.analysis.name: done.charts for done in again} == charts


def test_after_new_runs_only_the_charts_whose_tables_changed_are_drawn(data_copy: Path) -> None:
    _refresh(data_copy)
    written = _written_at(data_copy / "charts")
    refreshed = _refresh(data_copy, ONE_MORE_SUCCESS)
    _as_drawn_now(refreshed)
    now = _written_at(data_copy / "charts")
    kept = {name for name in written if now[name] == written[name]}
    unchanged = sum(done.unchanged for done in refreshed)
    assert len(kept) == unchanged
    assert 0 < unchanged < len(written)
    by_name = {done.analysis.name: done for done in refreshed}
    for name in ("error_categories", "error_signatures", "fixes"):  # a success adds no error
        assert by_name[name].unchanged == len(by_name[name].charts), name
    assert by_name["user_activity"].unchanged == 0  # every chart of it counts runs


def test_a_chart_file_missing_or_a_manifest_unreadable_is_drawn_again(data_copy: Path) -> None:
    charts = data_copy / "charts"
    _refresh(data_copy)
    (charts / "runs_per_user.png").unlink()
    (charts / "error_signatures.charts.json").write_text("{not json")
    refreshed = {done.analysis.name: done for done in _refresh(data_copy)}
    _as_drawn_now(list(refreshed.values()))
    activity = refreshed["user_activity"]
    assert activity.unchanged == len(activity.charts) - 1
    assert (charts / "runs_per_user.png").read_bytes() == activity.charts["runs_per_user.png"]
    assert refreshed["error_signatures"].unchanged == 0


def _manifests(charts: Path) -> dict[str, dict]:
    return {a.name: json.loads((charts / f"{a.name}.charts.json").read_text()) for a in ANALYSES}


def test_the_manifest_keeps_what_each_chart_cost_to_draw(data_copy: Path) -> None:
    """What the next refresh hands the chart worker first by: each chart's seconds, those
    drawn measured anew, those read back kept from when they were drawn."""
    charts = data_copy / "charts"
    _refresh(data_copy)
    first = _manifests(charts)
    for name, manifest in first.items():
        assert list(manifest["seconds"]) == list(manifest["shown"]), name
        assert all(0 < seconds < 60 for seconds in manifest["seconds"].values()), name
    refreshed = {done.analysis.name: done for done in _refresh(data_copy, ONE_MORE_SUCCESS)}
    again = _manifests(charts)
    assert again["error_categories"]["seconds"] == first["error_categories"]["seconds"]
    assert refreshed["user_activity"].unchanged == 0
    assert list(again["user_activity"]["seconds"]) == list(again["user_activity"]["shown"])
    assert again["user_activity"]["seconds"] != first["user_activity"]["seconds"]


def test_a_charts_digest_follows_the_values_it_shows() -> None:
    users = pd.DataFrame({"user": ["alice", "bob"], "runs": [3, 4]})
    digest = plan_digest(ChartPlan("runs_per_user_pie", (users,)))
    assert plan_digest(ChartPlan("runs_per_user_pie", (users.copy(),))) == digest
    for changed in (
        users.assign(runs=[3, 5]),
        users.assign(runs=[3.0, 4.0]),
        users.rename(columns={"runs": "n"}),
        users.iloc[::-1],
    ):
        assert plan_digest(ChartPlan("runs_per_user_pie", (changed,))) != digest
    boxes = pd.DataFrame({"user": ["alice"], "fliers": [np.array([1.0, 2.0])]})
    moved = boxes.assign(fliers=[np.array([1.0, 2.5])])
    assert plan_digest(ChartPlan("distribution_boxes", (boxes, "n_procs"))) != plan_digest(
        ChartPlan("distribution_boxes", (moved, "n_procs"))
    )
    assert plan_digest(ChartPlan("distribution_boxes", (boxes, "n_procs"))) != plan_digest(
        ChartPlan("distribution_boxes", (boxes, "ncell_group"))
    )


def _by_month(runs: list[int], users: tuple[str, ...] = ("alice", "bob")) -> ChartPlan:
    """Runs per month and user, stacked by month: two months, `runs` in (month, user) order."""
    months = [month for month in ("2026-01", "2026-02") for _ in users]
    table = pd.DataFrame({"month": months, "user": list(users) * 2, "runs": runs})
    return ChartPlan(
        "runs_per_period_bars", (table, "month"), (DrawnToScale(0, ("runs",), "month"),)
    )


def test_bars_drawn_to_scale_need_drawing_again_once_they_would_move_a_third_of_a_pixel():
    """A chart that draws its values only as bar lengths is drawn again when a bar appears or
    vanishes, a label changes, or an edge of a stack would move by more than
    `SCALE_TOLERANCE` of the highest stack (a third of a pixel): the changes of a stack's
    values add up. 10 runs among a million move nothing; among 20,000, most stacks."""
    drawn = _by_month([6000, 4000, 3000, 2000])  # the highest stack: 10,000 runs
    digest, values = plan_digest(drawn), scaled_values(drawn)
    assert values == [[[6000.0, 4000.0, 3000.0, 2000.0]]]
    assert moved_little(drawn, values)
    for near in ([6005, 4000, 3000, 2000], [6004, 4000, 3003, 2003], [6000, 4000, 3000, 2010]):
        plan = _by_month(near)
        assert plan_digest(plan) == digest and moved_little(plan, values), near
    for far in ([6006, 4005, 3000, 2000], [6000, 4000, 3000, 2011], [5980, 4000, 3000, 2000]):
        plan = _by_month(far)
        assert plan_digest(plan) == digest and not moved_little(plan, values), far
    assert not moved_little(_by_month([6005, 4000, 3000, 2000]), [])  # nothing kept: draw
    for shown_otherwise in (
        _by_month([6000, 4000, 3000, 0]),  # a bar vanishes
        _by_month([6000, 4000, 3000, 2000], ("alice", "carol")),  # a label changes
    ):
        assert plan_digest(shown_otherwise) != digest


def test_runs_per_period_are_exact_once_users_are_folded_into_others_by_their_sums():
    """Beyond `MAX_SERIES` users the smallest are summed as "others", which depends on the
    values: the runs per period are then drawn again whenever a count changes."""

    def month_chart(users: int) -> ChartPlan:
        table = pd.DataFrame({"month": "2026-01", "user": [f"u{i}" for i in range(users)]})
        table = table.assign(runs=1)
        tables = {"runs_by_user_year": table, "runs_by_user_month": table}
        empty = dict.fromkeys(("user_activity", "runs_by_hour", "runs_by_weekday"), table)
        return chart_plans("user_activity", tables | empty)["when_month_user.png"]

    assert month_chart(MAX_SERIES).to_scale == (DrawnToScale(0, ("runs",), "month"),)
    assert month_chart(MAX_SERIES + 1).to_scale == ()


def test_a_chart_whose_bars_moved_little_is_read_back_and_keeps_what_it_was_drawn_with(
    data_copy: Path,
) -> None:
    """Through a refresh: the manifest's values for the runs per month are those the chart
    was drawn with; nudged by less than the tolerance the file is read back and the manifest
    keeps them (what the picture shows, so that small changes add up to a redraw); nudged
    further, the chart is drawn again from the values as they are."""
    charts = data_copy / "charts"
    _refresh(data_copy)
    manifest_path = charts / "user_activity.charts.json"
    manifest = json.loads(manifest_path.read_text())
    [[drawn]] = manifest["scaled"]["when_month_user.png"]
    first = next(i for i, value in enumerate(drawn) if value)

    def nudged(by: float) -> list[float]:
        return [value + by if i == first else value for i, value in enumerate(drawn)]

    def drawn_with(values: list[float]) -> dict[str, Refreshed]:
        manifest["scaled"]["when_month_user.png"] = [[values]]
        manifest_path.write_text(json.dumps(manifest))
        return {done.analysis.name: done for done in _refresh(data_copy)}

    written = _written_at(charts)["when_month_user.png"]
    near = nudged(SCALE_TOLERANCE * max(drawn) / 2)  # the highest stack is at least that
    activity = drawn_with(near)["user_activity"]
    assert activity.unchanged == len(activity.charts)
    assert _written_at(charts)["when_month_user.png"] == written
    assert json.loads(manifest_path.read_text())["scaled"]["when_month_user.png"] == [[near]]
    refreshed = drawn_with(nudged(2 * SCALE_TOLERANCE * sum(drawn)))  # beyond any stack's
    assert refreshed["user_activity"].unchanged == len(refreshed["user_activity"].charts) - 1
    _as_drawn_now(list(refreshed.values()))
    assert json.loads(manifest_path.read_text())["scaled"]["when_month_user.png"] == [[drawn]]


def test_a_box_plot_follows_its_users_runs_only_when_they_choose_the_boxes_drawn():
    """Up to `MAX_BOXES` users every box is drawn, and runs that move no quartile, whisker or
    outlier leave the chart as it was; beyond, the runs choose which users are drawn."""

    def box_chart(users: int, runs: int) -> str:
        stats = {"q1": 2.0, "med": 4.0, "q3": 8.0, "whislo": 1.0, "whishi": 16.0}
        boxes = pd.DataFrame(
            [
                {"quantity": "n_procs", "user": f"u{i}", "runs": runs + i, **stats}
                for i in range(users)
            ]
        ).assign(fliers=[np.array([32.0])] * users)
        return plan_digest(chart_plans("hpc_habits", _habit_tables(boxes))["procs_by_user.png"])

    assert box_chart(MAX_BOXES, 100) == box_chart(MAX_BOXES, 110)
    assert box_chart(MAX_BOXES + 1, 100) != box_chart(MAX_BOXES + 1, 110)


def _habit_tables(boxes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    histogram = pd.DataFrame({"dimension": [3], "bin_low": [1.0], "bin_high": [2.0], "runs": [1]})
    return {"hpc_habit_distributions": boxes, "nodes_per_process": histogram}


def test_values_drawn_to_scale_that_a_manifest_garbles_get_the_chart_drawn_again():
    plan = _by_month([6000, 4000, 3000, 2000])
    for garbled in (None, "bars", {"runs": 1}, [], [[["6000", "x"]]], [[[6000.0, 4000.0]]]):
        assert not moved_little(plan, garbled), garbled


def test_an_error_below_those_drawn_leaves_the_charts_of_errors_as_they_were():
    """The charts of errors draw the first `TOP_TEMPLATES` rows of their tables: the plans
    give them no more, so an error further down whose count changes draws nothing again."""
    errors = pd.DataFrame(
        {
            "template": [f"error {i}" for i in range(TOP_TEMPLATES + 5)],
            "signature_id": [f"s{i}" for i in range(TOP_TEMPLATES + 5)],
            "error_category": "numerics",
            "runs": range(100, 100 - TOP_TEMPLATES - 5, -1),
            "fixed_runs": 1,
            "reruns": 0,
            "restarts": 0,
            "typical_fix": "CFL",
        }
    )

    def digests(table: pd.DataFrame) -> list[str]:
        plans = chart_plans(
            "error_signatures", {"error_signatures": table, "unknown_templates": table}
        )
        fixes = chart_plans("fixes", {"error_fixes": table, "typical_fixes": pd.DataFrame()})
        return [plan_digest(plans["error_signatures.png"]), plan_digest(fixes["typical_fixes.png"])]

    below = errors.copy()
    below.loc[TOP_TEMPLATES + 2, ["runs", "fixed_runs"]] = [50, 3]
    assert digests(below) == digests(errors)
    drawn = errors.copy()
    drawn.loc[0, ["template"]] = "another error"
    assert all(a != b for a, b in zip(digests(drawn), digests(errors), strict=True))


def test_the_drawing_codes_version_covers_every_reporting_module_the_charts_import():
    """A chart is read back while its digest, which holds the drawing code's version, is the
    same: a limit the charts take from another module of the package (`chart_plan`'s) must
    change that version too."""
    folder = Path(plans.__file__).parent
    imported = set()
    for name in ("charts.py", "figures.py"):
        for node in ast.walk(ast.parse((folder / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:2] == ["runcrawler_assets", "reporting"]:
                    modules = parts[2:] or [alias.name for alias in node.names]
                    imported.update(f"{module}.py" for module in modules)
    assert "chart_plan.py" in imported
    assert imported <= set(plans.DRAWING_CODE)


def test_a_sampled_scatter_says_about_how_many_runs_it_samples():
    """The efficiency scatter of a big archive draws a sample: its title gives the runs
    sampled to three significant digits, so 10 runs more that add no dot leave it as it
    was; a dot more draws it again. Every run drawn, the title says so."""

    def scatter(runs: int, dots: int) -> ChartPlan:
        points = pd.DataFrame(
            {"solver": "avbp", "dimension": 3, "cluster": "irene", "n_procs": 64.0,
             "efficiency": np.linspace(1.0, 2.0, dots)}
        )  # fmt: skip
        medians = pd.DataFrame(
            {"solver": ["avbp"], "dimension": [3], "cluster": ["irene"], "runs": [runs],
             "procs_median": [64.0], "efficiency_median": [1.5]}
        )  # fmt: skip
        by_cluster = pd.DataFrame({"solver": ["avbp"], "cluster": ["irene"], "runs": [runs]})
        tables = {
            "efficiency_points": points,
            "efficiency": medians,
            "efficiency_by_cluster": by_cluster,
            "cpu_hours_by_user_cluster": pd.DataFrame(columns=["user", "cluster", "cpu_hours"]),
        }
        return chart_plans("efficiency", tables)["efficiency_vs_procs.png"]

    sampled = scatter(1_000_460, 3)
    assert sampled.args[2:] == ("a sample of 3 of about 1,000,000 runs", "avbp")
    assert plan_digest(scatter(1_000_470, 3)) == plan_digest(sampled)
    assert plan_digest(scatter(1_000_460, 4)) != plan_digest(sampled)
    assert plan_digest(scatter(1_006_000, 3)) != plan_digest(sampled)  # about 1,010,000
    assert scatter(3, 3).args[2] == "runs"


def test_two_entries_drawn_to_scale_from_one_table_both_keep_their_bars_signs():
    table = pd.DataFrame({"mixture": ["air", "h2"], "runs_2d": [5, 7], "runs_3d": [2, 3]})

    def digest(frame: pd.DataFrame) -> str:
        entries = (DrawnToScale(0, ("runs_2d",)), DrawnToScale(0, ("runs_3d",)))
        return plan_digest(ChartPlan("mixture_dimension_bars", (frame,), entries))

    assert digest(table.assign(runs_2d=[6, 7], runs_3d=[2, 4])) == digest(table)
    assert digest(table.assign(runs_2d=[0, 7])) != digest(table)  # a bar of the first vanishes
    assert digest(table.assign(runs_3d=[0, 3])) != digest(table)


def test_counts_are_given_to_the_charts_as_they_print_them():
    table = pd.DataFrame({"n": [0, 7, 999, 1_234, 143_012, 1_000_240, -2_346, None]})
    printed = as_printed(table, "n")["n"].tolist()
    assert printed[:7] == [0, 7, 999, 1_230, 143_000, 1_000_000, -2_350]
    assert pd.isna(printed[7])


@pytest.mark.parametrize(
    ("before", "after", "drawn_again"),
    [(143_012, 143_022, False), (143_012, 143_612, True), (543, 553, True)],
)
def test_a_count_that_prints_the_same_leaves_its_chart_as_it_was(
    before: int, after: int, drawn_again: bool
):
    """Ten runs more among a million change no count's first three digits: the pie of runs
    per user and the heat map of errors per user are not drawn again; a count that prints
    otherwise draws them again."""

    def digests(runs: int) -> list[str]:
        users = pd.DataFrame({"user": ["ana", "bob"], "runs": [runs, 90_000], "last": [runs, 1]})
        by_user = pd.DataFrame({"user": ["ana", "bob"]}).assign(
            **{name: [runs, 5] for name in ERROR_CATEGORY_NAMES}
        )
        tables = {"user_activity": users, "runs_by_hour": users, "runs_by_weekday": users}
        activity = chart_plans(
            "user_activity", tables | dict.fromkeys(("runs_by_user_year", "runs_by_user_month"),
                                                    users.assign(year=1, month=1))
        )  # fmt: skip
        errors = chart_plans(
            "error_categories",
            {
                "error_categories": pd.DataFrame({"category": ["numerics"], "runs": [runs]}),
                "errors_by_user": by_user,
                "failure_stages": pd.DataFrame(columns=["solver", "stage_code", "stage", "runs"]),
                "cpu_hours_lost": pd.DataFrame(columns=["error_category", "cpu_hours"]),
            },
        )
        return [
            plan_digest(activity["runs_per_user.png"]),
            plan_digest(errors["errors_by_user.png"]),
            plan_digest(errors["err_type.png"]),
        ]

    first, second = digests(before), digests(after)
    assert all((a != b) == drawn_again for a, b in zip(first, second, strict=True))


def _forest_tables(ratio: float, runs: int = 5_000, low: float = 0.9) -> dict[str, pd.DataFrame]:
    effects = pd.DataFrame(
        {"setting": "cfl", "value": ["0.5", "0.9"], "finished_runs": [runs, 90_000],
         "successful_runs": 50, "other_runs": [runs + 7, 3],
         "failure_ratio": [ratio, 0.8], "failure_ratio_ci_low": [low, 0.7],
         "failure_ratio_ci_high": [1.9, 0.9], "failure_flagged": [False, True],
         "efficiency_ratio": 1.0, "efficiency_ratio_ci_low": 0.9,
         "efficiency_ratio_ci_high": 1.1, "efficiency_flagged": False}
    )  # fmt: skip
    return {"setting_effects": effects}


@pytest.mark.parametrize(
    ("ratio", "runs", "low", "same_digest", "moved_little"),
    [
        (1.3 * (1 + 1e-5), 5_000, 0.9, True, True),  # ten runs among a million
        (1.3 * 1.01, 5_000, 0.9, True, False),  # a dot that moves by pixels
        (1.3, 5_004, 0.9, True, True),  # its runs print the same
        (1.3, 5_100, 0.9, False, True),  # its runs print otherwise
        (1.3, 5_000, 0.0, False, True),  # an interval no longer drawn
    ],
)
def test_a_forest_is_drawn_again_when_a_dot_moves_or_a_label_changes(
    ratio: float, runs: int, low: float, same_digest: bool, moved_little: bool
):
    """The forests draw ratios on a log axis: ten runs more among a million change them
    all by a fraction of a pixel (read back); the other columns of the table (not drawn)
    change nothing."""
    file = "setting_failure_ratios.png"
    before = chart_plans("setting_effects", _forest_tables(1.3))[file]
    after = chart_plans("setting_effects", _forest_tables(ratio, runs, low))[file]
    assert (plan_digest(after) == plan_digest(before)) == same_digest
    if same_digest:
        assert plans.moved_little(after, scaled_values(before)) == moved_little
