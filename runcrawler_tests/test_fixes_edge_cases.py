"""Fixes and campaigns on what the demo never holds: runs without parameters or without a
mesh, a case moved to another folder, a success too late, a restart, single-run campaigns at
the end of a case (what their short cuts must get right: one ASOF join for both cases of a
run, parameters digested after pairing, a couple's changes joined where read, campaigns
numbered without their single runs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter, compute_results
from runcrawler_assets.records import RunRecord
from runcrawler_assets.warehouse.database import PartitionRows, connect, replace_partitions

FIXES, CAMPAIGNS = (next(a for a in ANALYSES if a.name == name) for name in ("fixes", "campaigns"))

FOLDER, MOVED = "kraken/ana/jet/LES", "irene/ana/LES"  # the same case: same mesh, same name
MESH = {"mesh_file": "../MESH/jet.h5"}
HOT, COOL = {**MESH, "cfl": "0.9"}, {**MESH, "cfl": "0.7"}
NO_MESH = {"cfl": "0.7"}
RESTART = {**COOL, "initial_solution_file": "../run_09/SOLUT/last.h5"}
# (folder, run, status, day, parameters), in time order
RUNS = [
    (FOLDER, "run_01", "failed", 0, HOT),
    (FOLDER, "run_02", "success", 1, COOL),  # fixes run_01: cfl changed
    (FOLDER, "run_03", "failed", 2, COOL),
    (MOVED, "run_01", "success", 3, COOL),  # reruns run_03 from the moved folder, first
    (FOLDER, "run_04", "success", 4, COOL),
    (FOLDER, "run_05", "killed", 5, None),
    (FOLDER, "run_06", "success", 6, None),  # reruns run_05: no parameters either side
    (FOLDER, "run_07", "failed", 7, NO_MESH),
    (FOLDER, "run_08", "success", 50, NO_MESH),  # 43 days later: fixes nothing
    (FOLDER, "run_09", "success", 51, COOL),
    (FOLDER, "run_10", "success", 52, RESTART),  # restarts from run_09
    (FOLDER, "run_11", "success", 53, COOL),  # a campaign alone
    (FOLDER, "run_12", "failed", 54, COOL),  # a campaign alone, never succeeded
]


START = datetime(2024, 1, 1)


def _swap(con: duckdb.DuckDBPyConnection, records: list[RunRecord]) -> None:
    """`records` swapped in as a crawl swaps them (which derives their cases), one partition
    per cluster, each in the order given."""
    clusters = sorted({r.cluster for r in records})
    replace_partitions(
        con, [PartitionRows(c, "ana", [r for r in records if r.cluster == c], []) for c in clusters]
    )


def _run(
    folder: str, name: str, status: str, after: timedelta, params: dict[str, str] | None = COOL
) -> RunRecord:
    """A run of ana's, `after` the start, an hour of CPU."""
    return RunRecord(
        run_id=f"{folder}/{name}", cluster=folder.split("/")[0], user="ana",
        run_path=f"{folder}/{name}", solver="avbp", status=status,
        created_at=START + after, cpu_hours=1.0, params=params or {},
    )  # fmt: skip


@pytest.fixture
def results(empty_con: duckdb.DuckDBPyConnection) -> dict[str, AnalysisResult]:
    records = [
        _run(folder, run, status, timedelta(days=day), params)
        for folder, run, status, day, params in RUNS
    ]
    _swap(empty_con, records)
    return compute_results(empty_con, [FIXES, CAMPAIGNS], RunFilter())


def test_each_failure_pairs_with_the_first_success_of_either_case(
    results: dict[str, AnalysisResult],
) -> None:
    fixes = results["fixes"].tables["fixes"]
    pairs = {
        (r.failed_run_path, r.fixing_run_path, r.kind, r.changes)
        for r in fixes.itertuples(index=False)
    }
    assert pairs == {
        (f"{FOLDER}/run_01", f"{FOLDER}/run_02", "fix", "cfl: 0.9 → 0.7"),
        (f"{FOLDER}/run_03", f"{MOVED}/run_01", "rerun", ""),
        (f"{FOLDER}/run_05", f"{FOLDER}/run_06", "rerun", ""),
    }


def test_of_successes_started_together_the_same_one_is_named_in_any_order(
    tmp_path: Path,
) -> None:
    """A job array starts many runs of a case in one second: the failure before them names
    one of them, the same one whichever order they were stored in (a refresh names what
    the last one did), and never a success started in the same instant as itself."""
    failed = _run(FOLDER, "run_00", "failed", timedelta(0))
    beside = _run(FOLDER, "run_01", "success", timedelta(0))
    array = [_run(FOLDER, f"run_{i:02d}", "success", timedelta(minutes=1)) for i in range(2, 12)]
    named = set()
    for order, successes in enumerate((array, array[::-1], array[4:] + array[:4])):
        with connect(tmp_path / f"order-{order}.duckdb") as con:
            _swap(con, [failed, beside, *successes])
            fixes = compute_results(con, [FIXES], RunFilter())["fixes"].tables["fixes"]
        assert fixes["failed_run_path"].tolist() == [failed.run_path]
        named.update(fixes["fixing_run_path"])
    assert len(named) == 1
    assert named < {r.run_path for r in array}


def test_a_campaign_of_runs_started_together_ends_with_its_last_run_in_path_order(
    empty_con: duckdb.DuckDBPyConnection,
) -> None:
    """Runs of a case started in the same second are ordered by path: a failure then a
    success so ordered are one campaign that succeeded, named by the failure, whatever order
    they were stored in."""
    folders = [f"{FOLDER}/{i:02d}" for i in range(12)]
    runs = [_run(folder, name, status, timedelta(0)) for folder in folders
            for name, status in (("a", "failed"), ("b", "success"))]  # fmt: skip
    _swap(empty_con, runs[::-1])
    campaigns = compute_results(empty_con, [CAMPAIGNS], RunFilter())["campaigns"]
    listed = campaigns.tables["campaigns"]
    assert sorted(listed["campaign_id"]) == [f"{folder}/a" for folder in folders]
    assert {tuple(paths) for paths in listed["run_paths"]} == {
        (f"{folder}/a", f"{folder}/b") for folder in folders
    }
    assert set(listed["last_status"]) == {"success"}
    assert set(listed["outcome"]) == {"succeeded"}


def test_campaigns_of_several_runs_are_listed_and_single_ones_only_counted(
    results: dict[str, AnalysisResult],
) -> None:
    campaigns = results["campaigns"].tables["campaigns"]
    listed = {(tuple(r.run_paths), r.restarts) for r in campaigns.itertuples(index=False)}
    assert listed == {
        ((f"{FOLDER}/run_01", f"{FOLDER}/run_02"), 0),
        ((f"{FOLDER}/run_03", f"{FOLDER}/run_04"), 0),
        ((f"{FOLDER}/run_05", f"{FOLDER}/run_06"), 0),
        ((f"{FOLDER}/run_07", f"{FOLDER}/run_08"), 0),
        ((f"{FOLDER}/run_09", f"{FOLDER}/run_10"), 1),
    }
    attempts = results["campaigns"].tables["campaign_attempts"]
    assert attempts.to_dict("records") == [
        {"attempts": "1", "outcome": "never succeeded", "campaigns": 1, "cpu_hours": 1.0},
        {"attempts": "1", "outcome": "succeeded", "campaigns": 2, "cpu_hours": 2.0},
        {"attempts": "2", "outcome": "succeeded", "campaigns": 5, "cpu_hours": 10.0},
    ]
