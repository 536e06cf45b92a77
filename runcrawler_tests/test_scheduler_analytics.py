"""What the scheduler saw, on a warehouse built by hand: runs swapped in through the real
accounting join, jobs planted in `accounting_jobs`, every number worked out below."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.accounting.load import ensure_tables
from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter, compute_results
from runcrawler_assets.analytics.scheduler import (
    ANALYSIS,
    LIMIT_HIT_FLAG,
    NO_ACCOUNTING,
    NO_MATCH,
    NOT_ARCHIVED,
    OVER_REQUEST_FLAG,
    RATIO_BIN_LABELS,
)
from runcrawler_assets.records import RunRecord, run_id_for
from runcrawler_assets.reporting import charts
from runcrawler_assets.reporting.plans import draw_charts
from runcrawler_assets.warehouse.database import PartitionRows, connect, replace_partitions

H = 3600
DAY = datetime(2024, 3, 1)
CHART_FILES = {
    "walltime_used_vs_requested.png",
    "queue_wait.png",
    "memory_headroom.png",
    "cpu_hours_by_scheduler_state.png",
}


def job(
    cluster: str,
    job_id: str,
    user: str,
    day: int,
    wait_h: float | None,
    wall_h: float,
    *,
    state: str = "COMPLETED",
    queue: str = "standard",
    limit_h: float = 10,
    cpus: int = 10,
    nodes: int = 1,
    req_mem_mb: float = 8000,
    max_rss_mb: float | None = None,
    work_dir: str = "",
) -> dict[str, object]:
    """One row of `accounting_jobs`: submitted on March `day`, waited, ran `wall_h` hours
    (no start when `wait_h` is None: cancelled while pending)."""
    submit = DAY + timedelta(days=day - 1)
    start = None if wait_h is None else submit + timedelta(hours=wait_h)
    end = (start or submit) + timedelta(hours=wall_h)
    return {
        "cluster": cluster,
        "job_id": job_id,
        "name": f"job{job_id}",
        "user": user,
        "account": "proj",
        "queue": queue,
        "state": state,
        "state_detail": None,
        "exit_code": "0:0",
        "submit_at": submit,
        "start_at": start,
        "end_at": end,
        "elapsed_s": round(wall_h * H),
        "time_limit_s": round(limit_h * H),
        "alloc_cpus": cpus,
        "alloc_nodes": nodes,
        "req_mem_mb": req_mem_mb,
        "max_rss_mb": max_rss_mb,
        "node_list": "n[1-2]",
        "work_dir": work_dir or f"/scratch/{user}/{job_id}-case/run",
        "line": 2,
        "file": f"{cluster}/2024-03.txt",
    }


def bob(job_id: str, wait_h: float, wall_h: float, state: str = "COMPLETED") -> dict[str, object]:
    return job(
        "kraken", job_id, "bob", 5, wait_h, wall_h, state=state, queue="long", limit_h=2,
        cpus=100, nodes=8, req_mem_mb=64_000, max_rss_mb=100,
    )  # fmt: skip


def carol(job_id: str, wait_h: float, wall_h: float, rss: float, state: str) -> dict[str, object]:
    return job(
        "irene", job_id, "carol", 20, wait_h, wall_h, state=state, queue="skylake", limit_h=4,
        cpus=64, nodes=32, req_mem_mb=6400, max_rss_mb=rss,
    )  # fmt: skip


CASE3 = "/scratch/alice/case3/run"
JOBS = [
    # alice on kraken: asks 10 h, uses 1, 2 and 3 h; waits 1, 2, 3 h; 2D; 10 CPUs.
    job("kraken", "1001", "alice", 1, 1, 1, max_rss_mb=400),
    job("kraken", "1002", "alice", 2, 2, 2, max_rss_mb=1000),
    # Two jobs ran in case3/run, whose files name none: the join takes the later (1004);
    # the first attempt (1003) matches only by its folder, and is not missing.
    job("kraken", "1003", "alice", 3, 0.5, 10, state="TIMEOUT", work_dir=CASE3),
    job("kraken", "1004", "alice", 4, 3, 3, max_rss_mb=1800, work_dir=CASE3 + "/"),
    # Missing from the archive: 10 CPUs × 4 h, and a job cancelled while pending.
    job("kraken", "1005", "alice", 5, 0, 4, work_dir="/scratch/alice/lost/run"),
    job("kraken", "1006", "alice", 6, None, 0, state="CANCELLED"),
    # bob on kraken: asks 2 h; a TIMEOUT, one at 99.5 % of the limit, 50 % and 75 %; 3D.
    bob("2001", 0.5, 2, "TIMEOUT"),
    bob("2002", 0.5, 1.99),
    bob("2003", 1, 1),
    bob("2004", 1, 1.5),
    # Not an archive user: never listed.
    job("kraken", "9000", "dave", 7, 0, 50),
    # carol on irene: asks 4 h, uses 2, 3, 3.5 h; waits 6, 7, 8 h; the last killed OOM.
    carol("3001", 6, 2, 50, "COMPLETED"),
    carol("3002", 7, 3, 60, "COMPLETED"),
    carol("3003", 8, 3.5, 100, "OUT_OF_MEMORY"),
    # Missing on irene: carol's job 1001 (alice's id, another cluster), and bob's job there.
    job("irene", "1001", "carol", 41, 0, 5, cpus=64),
    job("irene", "4001", "bob", 15, 0, 1, cpus=100),
]


def run(
    cluster: str,
    user: str,
    case: str,
    job_id: str | None,
    day: int,
    *,
    status: str = "success",
    category: str = "none",
    procs: int = 4,
    dimension: int = 2,
) -> RunRecord:
    path = f"{cluster}/{user}/{case}/run"
    return RunRecord(
        run_id=run_id_for(path),
        cluster=cluster,
        user=user,
        run_path=path,
        solver="avbp",
        created_at=DAY + timedelta(days=day - 1),
        n_procs=procs,
        dimension=dimension,
        status=status,
        error_category=category,
        job_id=job_id,
        fingerprint="hand-made",
    )


RUNS = [
    run("kraken", "alice", "case1", "1001", 1),
    run("kraken", "alice", "case2", "1002", 2),
    run("kraken", "alice", "case3", None, 4),
    run("kraken", "alice", "case4", "9999", 8),  # a job the dumps do not know
    *(
        run("kraken", "bob", f"b{i}", f"200{i}", 5, procs=64, dimension=3)
        for i in (2, 3, 4)
    ),
    run("kraken", "bob", "b1", "2001", 5, status="killed", category="time_limit", procs=64,
        dimension=3),
    *(run("irene", "carol", f"c{i}", f"300{i}", 20, procs=64, dimension=3) for i in (1, 2)),
    run("irene", "carol", "c3", "3003", 20, status="failed", category="unknown", procs=64,
        dimension=3),
    run("topaze", "bob", "t1", None, 9),  # a cluster without dumps
]  # fmt: skip


def _swap(con: duckdb.DuckDBPyConnection, records: list[RunRecord]) -> None:
    partitions: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        partitions.setdefault((record.cluster, record.user), []).append(record)
    replace_partitions(con, (PartitionRows(c, u, rs, []) for (c, u), rs in partitions.items()))


def build_warehouse(path: Path, jobs: list[dict[str, object]] | None = JOBS) -> Path:
    """`RUNS` swapped in after `jobs` were loaded (None: no accounting table at all)."""
    with connect(path) as con:
        if jobs is not None:
            ensure_tables(con)
        if jobs:
            con.register("planted", pd.DataFrame(jobs))
            con.execute("INSERT INTO accounting_jobs BY NAME SELECT * FROM planted")
            con.unregister("planted")
        _swap(con, RUNS)
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("scheduler") / "runs.duckdb")


@pytest.fixture
def con(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        yield con


def _compute(con: duckdb.DuckDBPyConnection, run_filter: RunFilter | None = None) -> AnalysisResult:
    """The analysis as stored and read back, as the report gets it."""
    return compute_results(con, [ANALYSIS], run_filter or RunFilter())["scheduler"]


def _rows(frame: pd.DataFrame, *columns: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in frame[list(columns)].itertuples(index=False)]


def test_it_is_the_last_analysis() -> None:
    assert ANALYSES[-1] is ANALYSIS


def test_unarchived_jobs_are_exactly_the_planted_ones(con: duckdb.DuckDBPyConnection) -> None:
    jobs = _compute(con).tables["unarchived_jobs"]
    # 1003 (matched by its folder only) and dave's 9000 are not listed.
    assert _rows(jobs, "cluster", "user", "job_id", "state") == [
        ("irene", "bob", "4001", "COMPLETED"),
        ("irene", "carol", "1001", "COMPLETED"),
        ("kraken", "alice", "1005", "COMPLETED"),
        ("kraken", "alice", "1006", "CANCELLED"),
    ]
    assert list(jobs["cpu_hours"]) == [100.0, 320.0, 40.0, 0.0]
    assert list(jobs.columns) == [
        "cluster", "user", "job_id", "name", "state", "submit_at", "start_at", "end_at",
        "cpu_hours", "work_dir",
    ]  # fmt: skip
    assert pd.isna(jobs["start_at"].iloc[3])


def test_cpu_hours_by_state_show_the_missing_work(con: duckdb.DuckDBPyConnection) -> None:
    states = _compute(con).tables["cpu_hours_by_state"]
    assert _rows(states, "cluster", "scheduler_state", "runs", "cpu_hours") == [
        ("irene", "COMPLETED", 2, 320.0),  # 64 CPUs × (2 + 3) h
        ("irene", "OUT_OF_MEMORY", 1, 224.0),
        ("irene", NOT_ARCHIVED, 2, 420.0),
        ("kraken", "COMPLETED", 6, 509.0),  # 10 × (1 + 2 + 3) + 100 × (1.99 + 1 + 1.5)
        ("kraken", "TIMEOUT", 1, 200.0),
        ("kraken", NOT_ARCHIVED, 2, 40.0),
    ]
    assert list(states["share_pct"].iloc[[2, 5]]) == [43.6, 5.3]


def test_the_overview_has_one_row_per_cluster(con: duckdb.DuckDBPyConnection) -> None:
    summary = _compute(con).tables["scheduler"].set_index("cluster")
    assert list(summary.index) == ["irene", "kraken", "topaze"]
    assert list(summary["runs"]) == [3, 8, 1]
    assert summary.loc["kraken", "matched_runs"] == 7  # case4's job is not in the dumps
    assert pd.isna(summary.loc["topaze", "matched_runs"])  # no dumps for topaze
    assert list(summary["unarchived_jobs"]) == [2, 2, 0]
    assert list(summary["share_missing_pct"].iloc[:2]) == [43.6, 5.3]
    assert summary.loc["kraken", "used_ratio_median"] == pytest.approx(0.5)
    assert summary.loc["irene", "queue_wait_median_h"] == pytest.approx(7.0)


def test_walltime_accuracy_flags_the_right_users(con: duckdb.DuckDBPyConnection) -> None:
    result = _compute(con)
    accuracy = result.tables["walltime_accuracy"].set_index("user")
    assert list(accuracy.index) == ["alice", "bob", "carol"]  # flagged first
    assert accuracy.loc["alice", "flag"] == OVER_REQUEST_FLAG
    assert accuracy.loc["bob", "flag"] == LIMIT_HIT_FLAG
    assert pd.isna(accuracy.loc["carol", "flag"])
    assert list(accuracy["runs"]) == [3, 4, 3]
    assert accuracy["used_ratio_median"].tolist() == pytest.approx([0.2, 0.8725, 0.75])
    assert accuracy["used_ratio_p90"].tolist() == pytest.approx([0.28, 0.9985, 0.85])
    assert list(accuracy["limit_hit_pct"]) == [0.0, 50.0, 0.0]
    assert list(accuracy["requested_hours_median"]) == [10.0, 2.0, 4.0]
    bins = result.tables["walltime_ratio_bins"]
    kraken = bins[bins["cluster"] == "kraken"].set_index("ratio_bin")["runs"]
    assert list(kraken.index) == list(RATIO_BIN_LABELS)
    assert kraken.sum() == 7 and kraken["≥ 100 %"] == 1 and kraken["90–100 %"] == 1


def test_queue_wait_per_cluster_partition_size_and_dimension(
    con: duckdb.DuckDBPyConnection,
) -> None:
    result = _compute(con)
    waits = result.tables["queue_wait"]
    assert _rows(waits, "cluster", "queue", "size_class", "jobs", "wait_median_h") == [
        ("irene", "skylake", "17–64 nodes", 3, 7.0),
        ("kraken", "long", "5–16 nodes", 4, 0.75),
        ("kraken", "standard", "1 node", 3, 2.0),
    ]
    assert waits["wait_p90_h"].tolist() == pytest.approx([7.8, 1.0, 2.8])
    by_dimension = result.tables["queue_wait_by_dimension"]
    assert _rows(by_dimension, "cluster", "dimension", "jobs", "wait_median_h") == [
        ("irene", 3, 3, 7.0),
        ("kraken", 2, 3, 2.0),
        ("kraken", 3, 4, 0.75),
    ]


def test_memory_headroom_per_user(con: duckdb.DuckDBPyConnection) -> None:
    memory = _compute(con).tables["memory_headroom"].set_index("user")
    # Largest process × processes / request: alice 4 × (400, 1000, 1800) / 8000.
    assert list(memory.index) == ["bob", "alice", "carol"]  # most headroom first
    assert memory.loc["alice", "memory_use_median"] == pytest.approx(0.5)
    assert memory.loc["alice", "memory_use_p10"] == pytest.approx(0.26)
    assert memory.loc["alice", "memory_use_p90"] == pytest.approx(0.82)
    assert list(memory["low_use_pct"]) == [100.0, 33.3, 0.0]
    assert list(memory["oom_killed_pct"]) == [0.0, 0.0, 33.3]
    assert list(memory["runs"]) == [4, 3, 3]


def test_findings_read_as_sentences(con: duckdb.DuckDBPyConnection) -> None:
    assert _compute(con).findings == [
        "44 % of the CPU hours of irene and 5 % of the CPU hours of kraken are in jobs "
        "missing from the archive (4 jobs of the archive's users, each listed in "
        "unarchived_jobs).",
        "Users request 2.0× the wall time they use on kraken, 1.3× on irene (median).",
        "Users who request ≥ 3× the wall time they use (median): alice (kraken); asking "
        "closer to the need shortens their queue wait.",
        "Users who keep hitting the time limit (≥ 25 % of their runs): bob (kraken); they "
        "should ask for more, or save and restart before the limit.",
        "3D runs wait 7.0 h in the queue on irene, 45 min on kraken (median).",
        "2D runs wait 2.0 h in the queue on kraken (median).",
        "Most runs of bob (100 %) use less than 25 % of the memory they request (share of "
        "their runs in brackets).",
        "Runs killed out of memory: carol (33 %) of their matched runs.",
    ]


@pytest.mark.parametrize(
    ("run_filter", "jobs", "users"),
    [
        (RunFilter(cluster="irene"), ["4001", "1001"], ["carol"]),
        (RunFilter(user="alice"), ["1005", "1006"], ["alice"]),
        # Jobs by their submission, runs by their creation: from March 10 on.
        (RunFilter(since=datetime(2024, 3, 10)), ["4001", "1001"], ["carol"]),
        (RunFilter(until=datetime(2024, 3, 6)), ["1005"], ["alice", "bob"]),
        (RunFilter(user="dave"), [], []),  # in the dumps, not in the archive
        (RunFilter(solver="openfoam"), [], []),  # no user has OpenFOAM runs
    ],
)
def test_the_filter_selects_jobs_and_runs(
    con: duckdb.DuckDBPyConnection, run_filter: RunFilter, jobs: list[str], users: list[str]
) -> None:
    result = _compute(con, run_filter)
    assert list(result.tables["unarchived_jobs"]["job_id"]) == jobs
    assert sorted(result.tables["walltime_accuracy"]["user"]) == users
    if not jobs and not users:
        assert result.findings == [NO_MATCH]


@pytest.mark.parametrize("jobs", [None, []], ids=["no accounting table", "no dumps loaded"])
def test_without_accounting_the_tables_are_empty_and_say_how_to_add_it(
    tmp_path: Path, jobs: list[dict[str, object]] | None
) -> None:
    path = build_warehouse(tmp_path / "runs.duckdb", jobs)
    with duckdb.connect(str(path), read_only=True) as con:
        result = _compute(con)
    assert result.findings == [NO_ACCOUNTING]
    assert "RUNCRAWLER_ACCOUNTING" in NO_ACCOUNTING and "--accounting" in NO_ACCOUNTING
    assert list(result.tables) == list(ANALYSIS.stored_tables)
    for name, frame in result.tables.items():
        assert frame.empty and len(frame.columns) >= 3, name
    pngs = draw_charts("scheduler", result.tables)
    assert set(pngs) == CHART_FILES
    assert pngs["queue_wait.png"] == charts.no_runs_chart(
        "Queue wait per cluster/partition and job size (matched jobs)"
    )


def test_the_charts_are_pngs(con: duckdb.DuckDBPyConnection) -> None:
    pngs = draw_charts("scheduler", _compute(con).tables)
    assert set(pngs) == CHART_FILES
    for name, png in pngs.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert len(png) > 10_000, name  # drawn, not the "no runs" placeholder
