"""The analytics recover what the demo archive was built with, and filters slice runs right."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter, write_outputs
from runcrawler_assets.analytics.core import Bins
from runcrawler_assets.analytics.setting_effects import (
    mantel_haenszel_risk_ratio,
    wilson_interval,
)
from runcrawler_assets.demo.avbp import CLUSTERS, KNOBS
from runcrawler_assets.records import CATEGORY_NAMES, RunRecord
from runcrawler_tests.conftest import DemoWarehouse

ERRORS = next(a for a in ANALYSES if a.name == "error_categories")
ACTIVITY = next(a for a in ANALYSES if a.name == "user_activity")


def _flagged(effects: pd.DataFrame, setting: str, prefix: str) -> pd.DataFrame:
    rows = effects[effects["setting"] == setting]
    return rows[rows[f"{prefix}_flagged"]]


def test_every_analysis_names_its_main_table_after_itself(
    demo_results: dict[str, AnalysisResult],
) -> None:
    assert [a.name for a in ANALYSES] == list(demo_results)
    for name, result in demo_results.items():
        assert next(iter(result.tables)) == name
        assert result.findings


def test_error_categories_equal_the_truth_per_category(
    demo_warehouse: DemoWarehouse, demo_results: dict[str, AnalysisResult]
) -> None:
    truth = pd.read_json(demo_warehouse.truth, lines=True)
    expected = Counter(truth["error_category"].dropna())
    table = demo_results["error_categories"].tables["error_categories"]
    assert list(table["category"]) == list(CATEGORY_NAMES)
    assert dict(zip(table["category"], table["runs"], strict=True)) == {
        name: expected.get(name, 0) for name in CATEGORY_NAMES
    }


def test_3d_cluster_order_follows_the_clusters_speed(
    demo_results: dict[str, AnalysisResult],
) -> None:
    medians = demo_results["efficiency"].tables["efficiency_by_cluster"]
    fastest_first = [c.name for c in sorted(CLUSTERS, key=lambda c: c.speed)]
    assert list(medians.loc[medians["dimension"] == 3, "cluster"]) == fastest_first
    slowest = max(CLUSTERS, key=lambda c: c.speed).name
    assert list(medians.groupby("dimension")["cluster"].last()) == [slowest, slowest]


def test_3d_runs_need_more_time_per_node_than_2d_on_every_cluster(
    demo_results: dict[str, AnalysisResult],
) -> None:
    medians = demo_results["efficiency"].tables["efficiency_by_cluster"]
    wide = medians.pivot_table(index="cluster", columns="dimension", values="efficiency_median")
    assert (wide[3] > wide[2]).all()


def test_efficiency_table_has_quartiles_per_dimension_procs_and_cluster(
    demo_results: dict[str, AnalysisResult],
) -> None:
    table = demo_results["efficiency"].tables["efficiency"]
    assert set(table["dimension"]) == {2, 3}
    assert set(table["cluster"]) == {c.name for c in CLUSTERS}
    assert (table["efficiency_q1"] <= table["efficiency_median"]).all()
    assert (table["efficiency_median"] <= table["efficiency_q3"]).all()


def test_failure_prone_settings_are_flagged(demo_results: dict[str, AnalysisResult]) -> None:
    effects = demo_results["setting_effects"].tables["setting_effects"]
    high_cfl = _flagged(effects, "cfl", "failure")
    assert f"> {KNOBS.high_cfl_threshold:g}" in set(
        high_cfl.loc[high_cfl["failure_ratio"] > 1, "value"]
    )
    artvisc = _flagged(effects, "artificial_viscosity_model", "failure")
    assert "no_artvisc" in set(artvisc.loc[artvisc["failure_ratio"] > 1, "value"])
    findings = " ".join(demo_results["setting_effects"].findings)
    assert "no_artvisc fail" in findings and "cfl = > 0.9 fail" in findings


def test_the_no_effect_setting_and_the_confounder_are_not_flagged(
    demo_results: dict[str, AnalysisResult],
) -> None:
    effects = demo_results["setting_effects"].tables["setting_effects"]
    for setting in (KNOBS.no_effect_setting, "ncell_group"):
        assert _flagged(effects, setting, "failure").empty
    assert _flagged(effects, KNOBS.no_effect_setting, "efficiency").empty


def test_reactive_flow_is_flagged_as_slower(demo_results: dict[str, AnalysisResult]) -> None:
    effects = demo_results["setting_effects"].tables["setting_effects"]
    slower = _flagged(effects, "reactive_flow", "efficiency")
    assert list(slower.loc[slower["efficiency_ratio"] > 1, "value"]) == ["yes"]


def test_user_filter_keeps_only_that_user(
    synthetic_con: duckdb.DuckDBPyConnection, synthetic_records: list[RunRecord]
) -> None:
    result = ACTIVITY.compute(synthetic_con, RunFilter(user="o'neil"))
    assert list(result.tables["user_activity"]["user"]) == ["o'neil"]
    errors = ERRORS.compute(synthetic_con, RunFilter(user="o'neil"))
    finished = [r for r in synthetic_records if r.user == "o'neil" and r.error_category]
    assert errors.tables["error_categories"]["runs"].sum() == len(finished)


def test_cluster_and_period_filters_count_the_runs_inside(
    synthetic_con: duckdb.DuckDBPyConnection, synthetic_records: list[RunRecord]
) -> None:
    run_filter = RunFilter(since=date(2023, 3, 1), until=date(2023, 8, 31), cluster="irene")
    expected = [
        r
        for r in synthetic_records
        if r.cluster == "irene" and datetime(2023, 3, 1) <= r.created_at < datetime(2023, 9, 1)
    ]
    result = ACTIVITY.compute(synthetic_con, run_filter)
    assert result.tables["user_activity"]["runs"].sum() == len(expected)
    months = result.tables["runs_by_user_month"]["month"]
    assert months.min() == "2023-03" and months.max() == "2023-08"


def test_filter_values_are_bound_parameters_not_sql(
    synthetic_con: duckdb.DuckDBPyConnection,
) -> None:
    hostile = RunFilter(user="x'; DROP TABLE runs; --", cluster='"; --')
    result = ERRORS.compute(synthetic_con, hostile)
    assert result.tables["error_categories"]["runs"].sum() == 0
    assert synthetic_con.execute("SELECT count(*) FROM runs").fetchone()[0] > 0


@pytest.mark.parametrize("run_filter", [RunFilter(), RunFilter(user="nobody")])
def test_an_empty_selection_gives_empty_tables_not_errors(
    empty_con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> None:
    for analysis in ANALYSES:
        result = analysis.compute(empty_con, run_filter)
        assert result.charts and result.findings
        assert all(png.startswith(b"\x89PNG") for png in result.charts.values())


def test_write_outputs_stores_tables_and_chart_files(
    empty_con: duckdb.DuckDBPyConnection,
    demo_results: dict[str, AnalysisResult],
    tmp_path: Path,
) -> None:
    result = demo_results["error_categories"]
    paths = write_outputs(empty_con, tmp_path / "charts", result)
    assert sorted(p.name for p in paths) == sorted(result.charts)
    assert (tmp_path / "charts" / "err_type.png").read_bytes() == result.charts["err_type.png"]
    stored = empty_con.execute("SELECT category, runs FROM error_categories").df()
    assert stored["runs"].sum() == result.tables["error_categories"]["runs"].sum()


def test_wilson_interval_stays_inside_0_1_and_covers_the_rate() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    low, high = wilson_interval(30, 100)
    assert low < 0.3 < high and high - low == pytest.approx(0.18, abs=0.01)


def test_mantel_haenszel_with_one_stratum_is_the_crude_risk_ratio() -> None:
    strata = pd.DataFrame({"a": [20], "n1": [50], "c": [10], "n0": [100]})
    log_ratio, se = mantel_haenszel_risk_ratio(strata)
    assert log_ratio == pytest.approx(1.3862944)  # log(0.4 / 0.1)
    assert se == pytest.approx((1 / 20 - 1 / 50 + 1 / 10 - 1 / 100) ** 0.5)


@pytest.mark.parametrize(
    ("bins", "values", "expected"),
    [
        (
            Bins((16, 64), unit="procs"),
            (15, 16, 63, 64, None),
            ["< 16 procs", "16–63 procs", "16–63 procs", "≥ 64 procs", "(not set)"],
        ),
        (
            Bins((0.7, 0.9), integer=False, right_closed=True),
            (0.7, 0.8, 0.9, 0.95, None),
            ["≤ 0.7", "(0.7, 0.9]", "(0.7, 0.9]", "> 0.9", "(not set)"],
        ),
    ],
)
def test_bins_label_and_place_values_the_same_way(
    empty_con: duckdb.DuckDBPyConnection, bins: Bins, values: tuple, expected: list[str]
) -> None:
    assert bins.labels() == sorted(set(expected), key=expected.index)
    placed = [
        empty_con.execute(f"SELECT {bins.sql('x')} FROM (SELECT ?::DOUBLE AS x)", [v]).fetchone()[0]
        for v in values
    ]
    assert placed == expected


def test_cpu_hours_say_how_many_runs_rest_on_file_times(
    demo_warehouse: DemoWarehouse, demo_results: dict[str, AnalysisResult]
) -> None:
    truth = pd.read_json(demo_warehouse.truth, lines=True)
    finished = truth[~truth["status"].isin(["running", "not_started"])]
    basis = demo_results["efficiency"].tables["cpu_hours_by_timing_source"]
    counts = dict(zip(basis["timing_source"], basis["runs"], strict=True))
    assert sum(counts.values()) == len(finished)
    assert counts.get("file_mtime", 0) > 0  # failed runs without a printed end exist
    finding = next(f for f in demo_results["efficiency"].findings if "modification" in f)
    assert f"{counts['file_mtime']:,} of {len(finished):,} finished runs" in finding
