"""The setting effects' medians and their intervals are exact order statistics of each value's
efficiencies, though only the runs of the few efficiency bins that hold them are sorted, and
those bins are counted per partition (runs of three users on two clusters here)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.analytics.core import RunFilter
from runcrawler_assets.analytics.setting_effects.tables import (
    BINS_PER_LN,
    SETTINGS,
    value_statistics,
)
from runcrawler_assets.analytics.statistics import Z95
from runcrawler_assets.warehouse.database import connect

MIXTURE, LES = SETTINGS[0], SETTINGS[1]
assert (MIXTURE.name, LES.name) == ("mixture_name", "les_model")


def _efficiencies(rng: random.Random) -> dict[str, list[float]]:
    """Each mixture's successful runs' efficiencies: spreads, ties within and across bins,
    values on bin edges, and values with one, two or three runs."""
    edge = [math.exp(k / BINS_PER_LN) for k in range(-40, 40)]
    around = [rng.uniform(1e-5, 4e-5) for _ in range(9)]
    return {
        "spread": [rng.lognormvariate(-11, 0.8) for _ in range(3000)],
        "ties": [2.5e-5] * 700 + [2.5e-5 * 1.001] * 300 + around,
        "edges": edge * 3 + [rng.choice(edge) for _ in range(101)],
        "one": [7e-6],
        "two": [1e-6, 3e-6],
        "three": [5e-6, 5e-6, 2e-5],
    }


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Runs of these mixtures (success with their efficiency), plus failures, runs without an
    efficiency or with none above zero, and a mixture that never succeeded."""
    rng = random.Random(16)
    rows = []
    for mixture, values in _efficiencies(rng).items():
        for efficiency in values:
            rows.append((mixture, "success", efficiency))
        rows += [(mixture, "failed", None)] * 5 + [(mixture, "success", None)]
        rows += [(mixture, "success", 0.0), (mixture, "success", -1.0)]
    rows += [("never", "failed", None)] * 4 + [("never", "killed", 3e-5)]
    rng.shuffle(rows)
    frame = pd.DataFrame(rows, columns=["mixture_name", "status", "efficiency"])
    frame.insert(0, "run_id", [f"run{i}" for i in range(len(frame))])
    frame["user"] = [rng.choice(["ana", "bo", "cy"]) for _ in range(len(frame))]
    frame["cluster"] = [rng.choice(["c1", "c2"]) for _ in range(len(frame))]
    frame["dimension"] = 3
    frame["les_model"] = [rng.choice(["wale", "smago"]) for _ in range(len(frame))]
    path = tmp_path_factory.mktemp("medians") / "runs.duckdb"
    with connect(path) as con:
        con.register("planted", frame)
        con.execute("INSERT INTO runs BY NAME SELECT * FROM planted")
    with duckdb.connect(str(path), read_only=True) as con:
        yield con


def _order_statistics(efficiencies: list[float]) -> dict[str, float]:
    """By sorting them all: the median and the bounds of its 95 % interval, at the binomial
    ranks n/2 ± z·√n/2 (1-based, within 1..n)."""
    ordered = sorted(efficiencies)
    n = len(ordered)
    half = Z95 * math.sqrt(n) / 2
    return {
        "median_efficiency": (ordered[(n + 1) // 2 - 1] + ordered[n // 2]) / 2,
        "median_efficiency_ci_low": ordered[max(1, math.floor(n / 2 - half) + 1) - 1],
        "median_efficiency_ci_high": ordered[min(n, math.ceil(n / 2 + half)) - 1],
    }


def _successful(con: duckdb.DuckDBPyConnection, column: str) -> dict[str, list[float]]:
    rows = con.execute(
        f"SELECT {column}, efficiency FROM runs WHERE status = 'success' AND efficiency > 0"
    ).fetchall()
    by_value: dict[str, list[float]] = {}
    for value, efficiency in rows:
        by_value.setdefault(value, []).append(efficiency)
    return by_value


def test_medians_and_bounds_are_the_order_statistics_of_each_values_runs(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    stats = value_statistics(warehouse, RunFilter(), (MIXTURE, LES)).set_index(["setting", "value"])
    for setting in (MIXTURE, LES):
        efficiencies = _successful(warehouse, setting.name)
        assert len(efficiencies) == (6 if setting is MIXTURE else 2)
        for value, values in efficiencies.items():
            row = stats.loc[(setting.name, value)]
            assert row["successful_runs"] == len(values)
            for column, expected in _order_statistics(values).items():
                assert row[column] == expected, (setting.name, value, column)


def test_a_value_that_never_succeeded_has_counts_and_no_median(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    stats = value_statistics(warehouse, RunFilter(), (MIXTURE,)).set_index("value")
    never = stats.loc["never"]
    assert (never["finished_runs"], never["failed_runs"], never["successful_runs"]) == (5, 5, 0)
    assert never[["median_efficiency", "median_efficiency_ci_low", "sum_log"]].isna().all()
    others = stats.drop(index="never")
    assert (never["rest_finished_runs"], never["rest_failed_runs"]) == (
        others["finished_runs"].sum(),
        others["failed_runs"].sum(),
    )


def test_a_filter_that_keeps_no_run_gives_no_row(warehouse: duckdb.DuckDBPyConnection) -> None:
    assert value_statistics(warehouse, RunFilter(user="nobody"), (MIXTURE, LES)).empty


def test_a_filtered_median_is_that_of_the_runs_kept(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    stats = value_statistics(warehouse, RunFilter(user="bo"), (MIXTURE,)).set_index("value")
    rows = warehouse.execute(
        "SELECT efficiency FROM runs WHERE mixture_name = 'spread' AND \"user\" = 'bo' "
        "AND status = 'success' AND efficiency > 0"
    ).fetchall()
    expected = _order_statistics([e for (e,) in rows])
    assert stats.loc["spread", "successful_runs"] == len(rows)
    for column, value in expected.items():
        assert stats.loc["spread", column] == value


def test_a_non_finite_efficiency_is_no_measurement(tmp_path) -> None:
    """An efficiency of infinity (a wall time near the largest double, times the processes)
    or NaN is left out of the medians as a run without one, not a cast that fails the
    analysis."""
    planted = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(7)],
            "user": ["ana"] * 7,
            "cluster": ["c1"] * 7,
            "dimension": [3] * 7,
            "mixture_name": ["air"] * 7,
            "status": ["success"] * 7,
            "efficiency": [1e-5, 2e-5, 3e-5, 4e-5, 5e-5, math.inf, math.nan],
        }
    )
    with connect(tmp_path / "runs.duckdb") as con:
        con.register("planted", planted)
        con.execute("INSERT INTO runs BY NAME SELECT * FROM planted")
        stats = value_statistics(con, RunFilter(), (MIXTURE,)).set_index("value")
    assert stats.loc["air", "successful_runs"] == 5
    assert stats.loc["air", "finished_runs"] == 7
    assert stats.loc["air", "median_efficiency"] == 3e-5
