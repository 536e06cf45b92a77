"""The analytics recover what the demo archive was built with, and filters slice runs right."""

from __future__ import annotations

import ast
import dataclasses
import math
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from matplotlib import cbook

import runcrawler_assets.analytics
from runcrawler_assets.analytics import (
    ANALYSES,
    AnalysisResult,
    RunFilter,
    compute_results,
    efficiency,
    errors,
    habits,
    load_results,
    store_result,
)
from runcrawler_assets.analytics.core import Bins, counted
from runcrawler_assets.analytics.statistics import (
    mantel_haenszel_risk_ratio,
    ratio_test,
    wilson_interval,
)
from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.demo import CLUSTERS, KNOBS, generate_archive, generate_openfoam_cases
from runcrawler_assets.records import CATEGORY_NAMES, RunRecord
from runcrawler_assets.warehouse.database import PartitionRows, replace_partitions, runs_ddl
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
    for analysis in ANALYSES:
        result = demo_results[analysis.name]
        assert analysis.tables[0] == analysis.name
        assert list(result.tables) == list(analysis.read_tables)
        assert result.findings


def _drawing_imports(path: Path) -> list[str]:
    """What a module imports of matplotlib or of the reporting package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names]  # fmt: skip
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    return [n for n in names if n.split(".")[0] == "matplotlib" or "reporting" in n.split(".")]


def test_analytics_compute_tables_and_never_draw() -> None:
    folder = Path(runcrawler_assets.analytics.__file__).parent
    drawing = {p.relative_to(folder).as_posix(): _drawing_imports(p) for p in folder.rglob("*.py")}
    assert "setting_effects/tables.py" in drawing
    assert {module: names for module, names in drawing.items() if names} == {}
    script = (
        "import sys, pkgutil, importlib, runcrawler_assets.analytics as a\n"
        "for m in pkgutil.walk_packages(a.__path__, 'runcrawler_assets.analytics.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


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


@pytest.mark.parametrize(
    ("max_points", "oversample"),
    [(7, efficiency.OVERSAMPLE), (7, 1e-4), (100_000, efficiency.OVERSAMPLE)],
    ids=["sample", "too-few-hashes-kept", "every-run"],
)
def test_the_scatter_samples_the_runs_of_lowest_hash_per_solver(
    demo_con: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
    max_points: int,
    oversample: float,
) -> None:
    """The runs of lowest hash, whether the share of hashes kept for `min_by` holds them all
    or too few (then every run is)."""
    monkeypatch.setattr(efficiency, "MAX_POINTS", max_points)
    monkeypatch.setattr(efficiency, "OVERSAMPLE", oversample)
    measured = efficiency.measured_runs(demo_con, RunFilter())
    points = efficiency.efficiency_points(demo_con, RunFilter(), measured)
    runs = demo_con.execute(
        "SELECT solver, dimension, cluster, n_procs, efficiency, hash(run_id) AS h, run_id "
        f"FROM runs WHERE {efficiency.SUCCESSFUL_WITH_EFFICIENCY}"
    ).df()
    expected = (
        runs.sort_values(["solver", "h", "run_id"])
        .groupby("solver")
        .head(max_points)
        .drop(columns=["h", "run_id"])
        .reset_index(drop=True)
    )
    per_solver = runs.groupby("solver").size().clip(upper=max_points)
    assert expected.groupby("solver").size().equals(per_solver)  # a sample, or every run
    pd.testing.assert_frame_equal(points, expected, check_dtype=False)


def test_a_non_finite_efficiency_is_left_out_of_the_efficiency_tables(tmp_path: Path) -> None:
    """An efficiency of infinity (a wall time near the largest double) or NaN is no
    measurement: the quartiles, medians and the scatter are those of the finite ones."""
    finite = [1e-5, 2e-5, 3e-5, 4e-5, 5e-5]
    planted = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(7)],
            "cluster": "c1",
            "user": "ana",
            "solver": "avbp",
            "status": "success",
            "dimension": 3,
            "n_procs": 64,
            "efficiency": [*finite, math.inf, math.nan],
        }
    )
    with duckdb.connect(str(tmp_path / "runs.duckdb")) as con:
        con.execute(runs_ddl())
        con.register("planted", planted)
        con.execute("INSERT INTO runs BY NAME SELECT * FROM planted")
        tables = efficiency.compute(con, RunFilter()).tables
    [row] = tables["efficiency"].itertuples()
    assert (row.runs, row.efficiency_median) == (5, 3e-5)
    assert (row.efficiency_q1, row.efficiency_q3) == (2e-5, 4e-5)
    assert tables["efficiency_by_cluster"]["runs"].tolist() == [5]
    assert sorted(tables["efficiency_points"]["efficiency"]) == finite


def test_habit_flags_are_the_user_cluster_habits_over_both_thresholds_most_runs_first(
    demo_con: duckdb.DuckDBPyConnection, demo_results: dict[str, AnalysisResult]
) -> None:
    hits = ", ".join(f'coalesce({h.condition_sql}, false) AS "{h.name}"' for h in habits.HABITS)
    runs = demo_con.execute(f'SELECT "user", cluster, {hits} FROM runs').df()
    counted = runs.groupby(["user", "cluster"]).agg(
        runs=("user", "size"), **{h.name: (h.name, "sum") for h in habits.HABITS}
    )
    rows = [
        (user, cluster, rank, habit.name, int(row[habit.name]), int(row["runs"]))
        for (user, cluster), row in counted.iterrows()
        for rank, habit in enumerate(habits.HABITS)
        if row[habit.name] >= habits.MIN_FLAGGED_RUNS
        and row[habit.name] >= habits.FLAG_SHARE * row["runs"]
    ]
    rows.sort(key=lambda r: (-r[4], r[0], r[2], r[1]))
    flags = demo_results["hpc_habits"].tables["hpc_habit_flags"]
    assert len(rows) > 1  # the demo has habits worth flagging
    columns = ["user", "cluster", "habit", "runs_concerned", "runs"]
    assert list(flags[columns].itertuples(index=False, name=None)) == [
        (u, c, h, concerned, n) for u, c, _, h, concerned, n in rows
    ]
    advice = {h.name: h.advice for h in habits.HABITS}
    assert flags["advice"].tolist() == [advice[h] for h in flags["habit"]]


@pytest.mark.parametrize("quantity", habits.DISTRIBUTIONS)
def test_each_users_box_is_the_one_matplotlib_draws_from_every_run(
    demo_con: duckdb.DuckDBPyConnection, demo_results: dict[str, AnalysisResult], quantity: str
) -> None:
    """Read from the runs counted per value, a user's box is that of their runs one by one."""
    runs = demo_con.execute(
        f'SELECT "user", {quantity} AS v FROM runs WHERE "user" IS NOT NULL AND {quantity} > 0'
    ).df()
    boxes = demo_results["hpc_habits"].tables["hpc_habit_distributions"]
    boxes = boxes[boxes["quantity"] == quantity].set_index("user")
    assert sorted(boxes.index) == sorted(runs["user"].unique())
    assert boxes["med"].is_monotonic_increasing
    for user, values in runs.groupby("user")["v"]:
        [expected] = cbook.boxplot_stats(values.to_numpy(dtype=float))
        box = boxes.loc[user]
        assert box["runs"] == len(values)
        for key in ("q1", "med", "q3", "whislo", "whishi"):
            assert box[key] == pytest.approx(expected[key], rel=1e-12), (user, key)
        assert list(box["fliers"]) == sorted(set(expected["fliers"])), user


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
def test_an_empty_selection_gives_empty_tables_that_store_and_read_back(
    empty_con: duckdb.DuckDBPyConnection, run_filter: RunFilter
) -> None:
    for analysis in ANALYSES:
        result = analysis.compute(empty_con, run_filter)
        assert result.findings
        store_result(empty_con, analysis, result, "0:0", datetime(2026, 1, 1))
    stored = load_results(empty_con, ANALYSES)
    assert list(stored) == [a.name for a in ANALYSES]
    assert all(s.result.findings for s in stored.values())


def test_a_stored_result_reads_back_with_its_tables_findings_and_version(
    empty_con: duckdb.DuckDBPyConnection, demo_con: duckdb.DuckDBPyConnection
) -> None:
    habits = next(a for a in ANALYSES if a.name == "hpc_habits")
    result = habits.compute(demo_con, RunFilter())  # its kept tables staged on demo_con
    store_result(empty_con, habits, result, "1800:abc", datetime(2026, 1, 1, 8))
    stored = load_results(empty_con, ANALYSES)
    assert list(stored) == ["hpc_habits"]  # the others were never stored
    back = stored["hpc_habits"]
    assert back.result.findings == result.findings
    assert (back.runs_version, back.computed_at) == ("1800:abc", datetime(2026, 1, 1, 8))
    for name in habits.read_tables:
        frame = result.tables[name]
        pd.testing.assert_frame_equal(back.result.tables[name], frame, check_dtype=False)
    fliers = back.result.tables["hpc_habit_distributions"]["fliers"]
    assert any(len(f) for f in fliers)  # outliers stay lists, not their text


def test_an_analysis_storing_undeclared_tables_is_refused(
    empty_con: duckdb.DuckDBPyConnection, demo_results: dict[str, AnalysisResult]
) -> None:
    errors = next(a for a in ANALYSES if a.name == "error_categories")
    tables = {**demo_results["error_categories"].tables, "extra": pd.DataFrame({"x": [1]})}
    with pytest.raises(ValueError, match="extra"):
        store_result(empty_con, errors, AnalysisResult(tables), "0:0", datetime(2026, 1, 1))


def test_wilson_interval_stays_inside_0_1_and_covers_the_rate() -> None:
    assert wilson_interval(0, 10)[0] == 0.0
    low, high = wilson_interval(30, 100)
    assert low < 0.3 < high and high - low == pytest.approx(0.18, abs=0.01)


def test_mantel_haenszel_with_one_stratum_is_the_crude_risk_ratio() -> None:
    strata = pd.DataFrame({"a": [20], "n1": [50], "c": [10], "n0": [100]})
    log_ratio, se = mantel_haenszel_risk_ratio(strata)
    assert log_ratio == pytest.approx(1.3862944)  # log(0.4 / 0.1)
    assert se == pytest.approx((1 / 20 - 1 / 50 + 1 / 10 - 1 / 100) ** 0.5)


def test_a_ratio_is_flagged_only_when_its_widened_interval_excludes_1_and_it_matters() -> None:
    log_ratio = pd.Series([0.69, 0.69, 0.10, 0.69])  # 2×, 2×, 1.1×, 2×
    se = pd.Series([0.10, 0.40, 0.01, 0.10])
    testable = pd.Series([True, True, True, False])
    tested = ratio_test(log_ratio, se, testable, pd.Series(["cfl"] * 4), min_ratio=1.2)
    # 3 testable values in one family: z = 2.39 (Bonferroni), not 1.96.
    assert list(tested["flagged"]) == [True, False, False, False]
    assert tested["ratio"].iloc[0] == pytest.approx(2.0, rel=0.01)
    assert tested["ratio_ci_low"].iloc[1] < 1 < tested["ratio_ci_high"].iloc[1]


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


# A decomposePar that fails: the demo has none, real archives do.
DECOMPOSITION_FAILURE = """
--> FOAM FATAL ERROR: (openfoam-2306)
Cannot find file "points" in directory "polyMesh" in times "0" down to constant

    From Foam::fileOperations::uncollatedFileOperation::readStream(...)
    in file global/fileOperations/uncollatedFileOperation.C at line 542.

FOAM exiting
"""
PIPELINE_LOGS = {"log.blockMesh", "log.snappyHexMesh", "log.checkMesh", "log.decomposePar"}


def _fail_decomposition(case: Path) -> None:
    """Make a parallel case stop at decomposePar: its log ends in an error, nothing ran after."""
    for path in case.iterdir():
        if path.name.startswith(("log.", "slurm-")) and path.name not in PIPELINE_LOGS:
            path.unlink()
    log = case / "log.decomposePar"
    log.write_text(log.read_text().replace("\nEnd\n", DECOMPOSITION_FAILURE))


@pytest.fixture(scope="module")
def mixed_stages(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The failure-stage table of a crawled archive of AVBP runs and OpenFOAM cases."""
    base = tmp_path_factory.mktemp("mixed")
    archive = base / "archive"
    generate_archive(archive, runs=60, seed=2)
    generate_openfoam_cases(archive, 27, seed=2, phenomena=())
    _fail_decomposition(next(archive.rglob("log.decomposePar")).parent)
    config = Config(archive_root=archive, data_dir=base / "data")
    crawl_into_warehouse(config, list_partitions(config))
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        return errors.ANALYSIS.compute(con, RunFilter()).tables["failure_stages"]


def test_openfoam_failures_keep_their_own_stages(mixed_stages: pd.DataFrame) -> None:
    foam = mixed_stages[mixed_stages["solver"] == "openfoam"].set_index("stage_code")
    assert foam.loc[200, "stage"] == "decomposition" and foam.loc[200, "runs"] == 1
    assert foam.loc[250, "stage"] == "solver start-up" and foam.loc[250, "runs"] > 0
    assert foam.loc[110, "stage"] == "meshing" and foam.loc[110, "runs"] > 0
    avbp = mixed_stages[mixed_stages["solver"] == "avbp"].set_index("stage_code")
    assert avbp.loc[110, "stage"] == "reading parameters"
    assert 200 not in avbp.index and 250 not in avbp.index


def test_every_failed_run_counts_once_in_its_solvers_stages(
    mixed_stages: pd.DataFrame, tmp_path: Path
) -> None:
    assert set(mixed_stages["solver"]) == {"avbp", "openfoam"}
    for _, stages in mixed_stages.groupby("solver"):
        assert stages["share_pct"].sum() == pytest.approx(100, abs=0.5)
        codes = list(stages["stage_code"].dropna())
        assert codes == sorted(codes)  # the order a run goes through them
        assert pd.isna(stages["stage_code"].iloc[0])  # "no stage in the logs" first


# One user's one failed run: findings over it speak in the singular.
ONE_FAILED_RUN = RunRecord(
    run_id="r1", cluster="k", user="ana", run_path="k/ana/jet/run_1", solver="avbp",
    status="failed", error_category="segfault", error_message="forrtl: severe (174): SIGSEGV",
    error_signature="forrtl: severe (<n>): SIGSEGV", created_at=datetime(2025, 3, 1),
)  # fmt: skip


def test_findings_count_one_user_and_one_run_in_the_singular(
    empty_con: duckdb.DuckDBPyConnection,
) -> None:
    replace_partitions(empty_con, [PartitionRows("k", "ana", [ONE_FAILED_RUN], [])])
    analyses = [a for a in ANALYSES if a.name in ("user_activity", "error_signatures")]
    results = compute_results(empty_con, analyses, RunFilter())
    activity, signatures = (results[n].findings[0] for n in ("user_activity", "error_signatures"))
    assert activity.startswith("1 user set up 1 run; ana set up the most")
    assert signatures.startswith("1 distinct error signature;")
    assert signatures.endswith("hit 1 run of 1 user.")


def test_the_fixes_finding_counts_one_rerun_in_the_singular(
    empty_con: duckdb.DuckDBPyConnection,
) -> None:
    rerun = dataclasses.replace(
        ONE_FAILED_RUN, run_id="r2", run_path="k/ana/jet/run_2", status="success",
        error_category=None, error_message=None, error_signature=None,
        created_at=datetime(2025, 3, 2),
    )  # fmt: skip
    replace_partitions(empty_con, [PartitionRows("k", "ana", [ONE_FAILED_RUN, rerun], [])])
    fixes = next(a for a in ANALYSES if a.name == "fixes")
    finding = compute_results(empty_con, [fixes], RunFilter())["fixes"].findings[0]
    assert finding.startswith("1 failed or killed run was followed within")
    assert "0 after a change of parameters, 1 rerun that changed nothing, 0 restarts from" in (
        finding
    )


def test_counted_says_one_in_the_singular_and_others_in_the_plural() -> None:
    assert [counted(n, "user") for n in (0, 1, 2)] == ["0 users", "1 user", "2 users"]
