"""The scheduler's accounting: dumps loaded incrementally, joined into `runs` (issue 17).

Real files and a real DuckDB file: a small archive of hand-written AVBP runs, a
dump folder beside it, the crawl without Dagster (`crawl_into_warehouse`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import duckdb
import pytest

from runcrawler_assets.accounting.load import (
    JOB_COLUMNS,
    JOBS_TABLE,
    PROBLEMS_TABLE,
    dumps_changed,
    load_accounting,
)
from runcrawler_assets.accounting.sacct import Job
from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.jobs import job_id_of
from runcrawler_assets.warehouse.database import connect

HEADER = (
    "JobID|JobName|User|Account|Partition|State|ExitCode|Submit|Start|End|Elapsed|Timelimit|"
    "AllocCPUS|NNodes|ReqMem|MaxRSS|NodeList|WorkDir\n"
)
LOG_START = """ __________________________________________________________
          AVBP  V7.12.0
 __________________________________________________________
 Run started on   : 2024-03-01 10:00:00
 Number of MPI processes :    96
 ----> Starts the temporal loop
  Iteration #       100   Time [s] =  1.0E-03   dt [s] =  1.0E-07
"""
LOG_END = """ Elapsed wall time [s]     :   7.1000E+03
 Run ended on     : 2024-03-01 11:58:20
 ----> End of AVBP session
"""


def write_run(root: Path, path: str, *, job_file: str | None, finished: bool) -> Path:
    run = root / path
    run.mkdir(parents=True)
    (run / "run.params").write_text("$RUN-CONTROL\n simulation_end_iteration = 100\n$end\n")
    (run / "avbp.o").write_text(LOG_START + (LOG_END if finished else ""))
    if job_file is not None:
        (run / job_file).write_text("")
    old = 1_600_000_000  # long ago: a log that stops is truncated, not running
    for file in run.iterdir():
        os.utime(file, (old, old))
    return run


def job_line(job_id: str, user: str, state: str, work_dir: str, **values: str) -> str:
    fields = {
        "JobName": "avbp",
        "Account": "proj",
        "Partition": "skylake",
        "ExitCode": "0:0",
        "Submit": "2024-03-01T07:00:00",
        "Start": "2024-03-01T10:00:00",
        "End": "2024-03-01T12:00:00",
        "Elapsed": "02:00:00",
        "Timelimit": "1-00:00:00",
        "AllocCPUS": "96",
        "NNodes": "2",
        "ReqMem": "4000Mn",
        "MaxRSS": "",
        "NodeList": "n[1-2]",
        **values,
    }
    order = HEADER.strip().split("|")
    row = {"JobID": job_id, "User": user, "State": state, "WorkDir": work_dir, **fields}
    return "|".join(row[column] for column in order) + "\n"


@pytest.fixture
def site(tmp_path: Path) -> Config:
    archive = tmp_path / "archive"
    write_run(archive, "kraken/alice/jet/run_1", job_file="slurm-101.out", finished=True)
    write_run(archive, "kraken/alice/jet/run_2", job_file=None, finished=False)  # work_dir
    write_run(archive, "kraken/alice/jet/run_3", job_file="jet.e103", finished=True)  # no job
    write_run(archive, "irene/bob/flame/run_1", job_file="slurm-7.out", finished=True)
    dumps = tmp_path / "accounting"
    (dumps / "kraken").mkdir(parents=True)
    (dumps / "kraken" / "2024-03.txt").write_text(
        HEADER
        + job_line("101", "alice", "COMPLETED", "/scratch/alice/jet/run_1")
        + job_line("101.batch", "", "COMPLETED", "", MaxRSS="1024K")
        + job_line("101.0", "", "COMPLETED", "", MaxRSS="3000M")
        + job_line("102", "alice", "TIMEOUT", "/scratch/alice/jet/run_2", Elapsed="1-00:00:00")
        + job_line("104", "alice", "FAILED", "/scratch/alice/other/run_9", ExitCode="1:0")
        + job_line("105", "zoe", "COMPLETED", "/scratch/zoe/x/y")
        + "105|too|few\n"
    )
    return Config(archive_root=archive, data_dir=tmp_path / "data", accounting_dir=dumps)


def rows(settings: Config, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_job_columns_are_the_fields_of_a_job():
    assert [name for name, _ in JOB_COLUMNS] == [f.name for f in dataclasses.fields(Job)]


def test_job_id_comes_from_the_files_names_or_the_scheduler_message(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    record = RunRecord()
    assert job_id_of(run, record) is None
    assert job_id_of(run, record.replace(error_message="*** JOB 4242 ON n1 CANCELLED AT")) == "4242"
    for name in ("case.o77", "case.e78.gz", "slurm-9_3.out"):
        (run / name).write_text("")
    (run / "logs").mkdir()
    (run / "logs" / "slurm-80.out").write_text("")
    assert job_id_of(run, record) == "80"  # the run's last job: the largest id


def test_runs_are_joined_to_their_jobs_by_id_or_working_directory(site: Config):
    crawl_into_warehouse(site, list_partitions(site), workers=1)
    joined = {
        row[0]: row[1:]
        for row in rows(
            site,
            "SELECT run_path, job_id, queue, account, time_limit_s, queue_wait_s, alloc_cpus, "
            "alloc_nodes, req_mem_mb, max_rss_mb, exit_code, scheduler_state, "
            "accounting_matched, status, error_category, timing_source, wall_time_s FROM runs",
        )
    }
    assert joined["kraken/alice/jet/run_1"] == (
        "101", "skylake", "proj", 86400, 3 * 3600, 96, 2, 8000.0, 3000.0, "0:0", "COMPLETED",
        True, "success", "none", "scheduler", 7200.0,
    )  # fmt: skip
    # No job file: matched by its working directory; the scheduler says why its log stops.
    run_2 = joined["kraken/alice/jet/run_2"]
    assert run_2[0] == "102" and run_2[10:14] == ("TIMEOUT", True, "killed", "time_limit")
    # Its job (103) is not in the dumps: unmatched, its own verdict kept.
    assert joined["kraken/alice/jet/run_3"][10:13] == (None, False, "success")
    # A cluster without dumps: NULL, not false.
    assert joined["irene/bob/flame/run_1"][0] == "7"
    assert joined["irene/bob/flame/run_1"][11] is None
    assert rows(site, f"SELECT file, line FROM {PROBLEMS_TABLE}") == [("kraken/2024-03.txt", 8)]
    assert {r[0] for r in rows(site, f"SELECT job_id FROM {JOBS_TABLE}")} == {
        "101",
        "102",
        "104",
        "105",
    }


def test_only_changed_dumps_are_read_and_new_ones_rejoin_their_cluster(site: Config):
    crawl_into_warehouse(site, list_partitions(site), workers=1)
    with connect(site.duckdb_path) as con:
        assert not dumps_changed(con, site.accounting_dir)
        assert load_accounting(con, site.accounting_dir).files_read == 0
    assert site.accounting_dir is not None
    later = site.accounting_dir / "kraken" / "2024-04.txt"
    later.write_text(HEADER + job_line("103", "alice", "COMPLETED", "/scratch/alice/jet/run_3"))
    crawl_into_warehouse(site, list_partitions(site), workers=1)
    (matched,) = rows(site, "SELECT accounting_matched FROM runs WHERE job_id = '103'")
    assert matched == (True,)
    later.unlink()
    with connect(site.duckdb_path) as con:
        load = load_accounting(con, site.accounting_dir)
    assert (load.files_read, load.files_removed) == (0, 1)
    crawl_into_warehouse(site, list_partitions(site), workers=1)
    (matched,) = rows(site, "SELECT accounting_matched FROM runs WHERE job_id = '103'")
    assert matched == (False,)


def test_a_job_in_two_dumps_is_one_job_with_its_final_state(site: Config):
    assert site.accounting_dir is not None
    running = job_line("101", "alice", "RUNNING", "/scratch/alice/jet/run_1", End="Unknown")
    (site.accounting_dir / "kraken" / "2024-02.txt").write_text(HEADER + running)
    crawl_into_warehouse(site, list_partitions(site), workers=1)
    assert rows(site, f"SELECT state, max_rss_mb FROM {JOBS_TABLE} WHERE job_id = '101'") == [
        ("COMPLETED", 3000.0)
    ]


def test_an_accounting_folder_that_is_missing_or_inside_the_archive_is_refused(site: Config):
    from runcrawler_assets.config import ConfigError

    with pytest.raises(ConfigError, match="RUNCRAWLER_ACCOUNTING"):
        dataclasses.replace(site, accounting_dir=site.data_dir / "nowhere").check_archive()
    inside = site.archive_root / "kraken"
    with pytest.raises(ConfigError, match="inside the archive"):
        dataclasses.replace(site, accounting_dir=inside).check_archive()


JOINED = (
    "job_id", "queue", "account", "time_limit_s", "queue_wait_s", "alloc_cpus", "alloc_nodes",
    "req_mem_mb", "max_rss_mb", "exit_code", "scheduler_state", "accounting_matched",
    "status", "error_category",
)  # fmt: skip


@pytest.mark.slow
def test_the_demo_join_equals_its_truth_field_by_field(tmp_path: Path):
    """Done when of issue 17: every run's accounting fields as the demo's truth says, and
    `unarchived_jobs` exactly the planted jobs of the archive's users."""
    import json

    from click.testing import CliRunner

    from runcrawler_assets.analytics import ANALYSES
    from runcrawler_assets.analytics.store import refresh
    from runcrawler_assets.cli import main

    archive, dumps, truth = tmp_path / "archive", tmp_path / "accounting", tmp_path / "t.jsonl"
    result = CliRunner().invoke(
        main,
        ["demo-archive", str(archive), "--runs", "300", "--openfoam", "30", "--seed", "4",
         "--truth", str(truth), "--accounting", str(dumps)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = Config(archive_root=archive, data_dir=tmp_path / "data", accounting_dir=dumps)
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    columns = ", ".join(JOINED)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = {
            r[0]: r[1:] for r in con.execute(f"SELECT run_path, {columns} FROM runs").fetchall()
        }
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    wrong = []
    for line in lines:
        expected = tuple(line["accounting"][name] for name in JOINED)
        got = rows[line["run_path"]]
        differing = [
            (name, want, have)
            for name, want, have in zip(JOINED, expected, got, strict=True)
            if not (want == have or (isinstance(want, float) and have == pytest.approx(want)))
        ]
        if differing:
            wrong.append((line["run_path"], differing))
    assert len(lines) == len(rows) == 330
    assert wrong == []
    with connect(settings.duckdb_path) as con:
        scheduler = next(a for a in ANALYSES if a.name == "scheduler")
        unarchived = refresh(con, scheduler).tables["unarchived_jobs"]
    planted = [
        json.loads(line) for line in truth.with_name("t.unarchived.jsonl").read_text().splitlines()
    ]
    expected_jobs = {
        (j["cluster"], j["user"], j["job_id"]) for j in planted if not j.get("other_users")
    }
    assert len(expected_jobs) >= 3
    assert (
        set(zip(unarchived["cluster"], unarchived["user"], unarchived["job_id"], strict=True))
        == expected_jobs
    )
