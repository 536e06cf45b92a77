"""Slurm accounting dumps: every value format, job folding, bad input, and flat memory."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from runcrawler_assets.accounting.sacct import (
    DumpProblem,
    Job,
    merge_jobs,
    parse_duration_s,
    parse_memory_mb,
    parse_slurm_time,
    read_dump,
)

HEADER = (
    "JobID|JobName|User|Account|Partition|State|ExitCode|Submit|Start|End|Elapsed|"
    "Timelimit|AllocCPUS|NNodes|ReqMem|MaxRSS|NodeList|WorkDir"
)


def write(tmp_path: Path, *lines: str, name: str = "2024-03.txt", end: str = "\n") -> Path:
    path = tmp_path / "kraken" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + end for line in lines).encode())
    return path


def read(path: Path) -> tuple[list[Job], list[DumpProblem]]:
    items = list(read_dump(path, "kraken"))
    jobs = [item for item in items if isinstance(item, Job)]
    return jobs, [item for item in items if isinstance(item, DumpProblem)]


def row(**values: str) -> str:
    """A line in HEADER's column order; columns not given are empty."""
    return "|".join(values.get(column.lower(), "") for column in HEADER.split("|"))


# --- value parsers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, 0, 0)),
        (" 2024-12-31T23:59:59 ", datetime(2024, 12, 31, 23, 59, 59)),
        ("2024-03-01 10:00:00", datetime(2024, 3, 1, 10, 0, 0)),
        ("Unknown", None),
        ("None", None),
        ("", None),
    ],
)
def test_slurm_times(text: str, expected: datetime | None) -> None:
    assert parse_slurm_time(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("yesterday", "is not a Slurm time"), ("2024-13-01T00:00:00", "is not a real date")],
)
def test_bad_slurm_times_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_slurm_time(text)
    assert repr(text) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:00", 0),
        ("01:02:03", 3723),
        ("1-02:03:04", 93784),
        ("10-00:00:00", 864000),
        ("12:34", 754),
        ("12:34.567", 755),
        ("00:01.250", 1),
        ("48:00:00", 172800),
        ("5", 300),  # Slurm's grammar: a lone number is minutes
        ("2-12", 216000),
        ("2-12:30", 217800),
        ("UNLIMITED", None),
        ("Partition_Limit", None),
        ("INVALID", None),
        ("", None),
    ],
)
def test_durations(text: str, expected: int | None) -> None:
    assert parse_duration_s(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "is not a Slurm duration"),
        ("1:2:3:4", "is not a Slurm duration"),
        ("1-25:00:00", "hours after a day count"),
        ("00:61:00", "60 or more"),
        ("5.5", "fraction"),
        ("1" * 20, "is not a Slurm duration"),
    ],
)
def test_bad_durations_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration_s(text)


@pytest.mark.parametrize(
    ("text", "nodes", "cpus", "expected"),
    [
        ("123456K", None, None, 123456 / 1024),
        ("16G", None, None, 16384.0),
        ("2T", None, None, 2 * 1024 * 1024.0),
        ("1.50G", None, None, 1536.0),
        ("500M", None, None, 500.0),
        ("0", None, None, 0.0),
        ("1048576", None, None, 1.0),  # a bare number is bytes
        ("4000Mn", 2, 36, 8000.0),
        ("2000Mc", 2, 36, 72000.0),
        ("4000Mn", None, 36, None),  # per node, node count unknown
        ("2000Mc", 1, 0, None),  # per CPU, a pending job has none yet
        ("", 1, 1, None),
    ],
)
def test_memory_sizes(text: str, nodes: int | None, cpus: int | None, expected: float) -> None:
    assert parse_memory_mb(text, nodes, cpus) == expected


@pytest.mark.parametrize("text", ["12X", "M", "lots", "-5K", "9" * 400 + "K"])
def test_bad_memory_sizes_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Slurm memory size"):
        parse_memory_mb(text, 1, 1)


# --- folding -------------------------------------------------------------------------


def test_a_job_and_its_steps_fold_into_one_record(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        "1001|cavity|alice|cfd|prod|CANCELLED by 12345|0:15|2024-03-01T09:58:00|"
        "2024-03-01T10:00:00|2024-03-01T11:30:00|01:30:00|1-00:00:00|72|2|4000Mn||"
        "node[001-002]|/scratch/alice/cavity",
        "1001.batch|batch||cfd||CANCELLED|0:15|2024-03-01T10:00:00|2024-03-01T10:00:00|"
        "2024-03-01T11:30:00|01:30:00||36|1|4000Mn|123456K|node001|",
        "1001.extern|extern||cfd||COMPLETED|0:0|2024-03-01T10:00:00|2024-03-01T10:00:00|"
        "2024-03-01T11:30:00|01:30:00||72|2|4000Mn|1024K|node[001-002]|",
        "1001.0|avbp||cfd||FAILED|1:0|2024-03-01T10:00:05|2024-03-01T10:00:05|"
        "2024-03-01T11:29:59|01:29:54||72|2|4000Mn|2.50G|node[001-002]|",
        "1002|pending|bob|cfd|debug|PENDING|0:0|2024-03-01T11:00:00|Unknown|Unknown|"
        "00:00:00|Partition_Limit|0|1|2000Mc||None assigned|/home/bob",
    )
    jobs, problems = read(path)
    assert problems == []
    assert jobs == [
        Job(
            cluster="kraken",
            job_id="1001",
            name="cavity",
            user="alice",
            account="cfd",
            queue="prod",
            state="CANCELLED",
            state_detail="CANCELLED by 12345",
            exit_code="0:15",
            submit_at=datetime(2024, 3, 1, 9, 58),
            start_at=datetime(2024, 3, 1, 10, 0),
            end_at=datetime(2024, 3, 1, 11, 30),
            elapsed_s=5400,
            time_limit_s=86400,
            alloc_cpus=72,
            alloc_nodes=2,
            req_mem_mb=8000.0,
            max_rss_mb=2560.0,
            node_list="node[001-002]",
            work_dir="/scratch/alice/cavity",
            line=2,
        ),
        Job(
            cluster="kraken",
            job_id="1002",
            name="pending",
            user="bob",
            account="cfd",
            queue="debug",
            state="PENDING",
            state_detail="PENDING",
            exit_code="0:0",
            submit_at=datetime(2024, 3, 1, 11, 0),
            start_at=None,
            end_at=None,
            elapsed_s=0,
            time_limit_s=None,
            alloc_cpus=0,
            alloc_nodes=1,
            req_mem_mb=None,
            max_rss_mb=None,
            node_list="None assigned",
            work_dir="/home/bob",
            line=6,
        ),
    ]


def test_steps_fill_only_what_the_job_line_lacks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        row(jobid="7", user="alice", state="RUNNING", timelimit="UNLIMITED", reqmem="16G"),
        row(jobid="7.batch", jobname="batch", state="FAILED", exitcode="9:0", workdir="/w"),
        row(jobid="7.0", jobname="step", user="mallory", workdir="/x", maxrss="100M"),
    )
    [job], _ = read(path)
    assert (job.user, job.state, job.state_detail, job.exit_code) == (
        "alice",
        "RUNNING",
        "RUNNING",
        None,
    )
    assert (job.name, job.work_dir, job.time_limit_s, job.req_mem_mb) == (
        "batch",
        "/w",
        None,
        16384.0,
    )
    assert job.max_rss_mb == 100.0


def test_heterogeneous_components_and_their_steps_fold_onto_the_job(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        row(jobid="2000+0", user="alice", state="COMPLETED", alloccpus="4"),
        row(jobid="2000+0.batch", state="COMPLETED", maxrss="10M"),
        row(jobid="2000+1", user="alice", state="FAILED", alloccpus="64"),
        row(jobid="2000+1.0", state="FAILED", maxrss="900M"),
        row(jobid="2001", user="bob", state="COMPLETED"),
    )
    jobs, problems = read(path)
    assert problems == []
    assert [(j.job_id, j.state, j.alloc_cpus, j.max_rss_mb, j.line) for j in jobs] == [
        ("2000", "COMPLETED", 4, 900.0, 2),
        ("2001", "COMPLETED", None, None, 6),
    ]


def test_array_tasks_are_jobs_of_their_own(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        row(jobid="3000_1", state="COMPLETED"),
        row(jobid="3000_1.batch", state="COMPLETED", maxrss="5M"),
        row(jobid="3000_1.extern", state="COMPLETED", maxrss="1M"),
        row(jobid="3000_2", state="TIMEOUT", timelimit="00:30:00"),
        row(jobid="3000_2.batch", state="CANCELLED", maxrss="7M"),
        row(jobid="3000_[3-10%2]", state="PENDING"),
    )
    jobs, problems = read(path)
    assert problems == []
    assert [(j.job_id, j.state, j.max_rss_mb, j.time_limit_s) for j in jobs] == [
        ("3000_1", "COMPLETED", 5.0, None),
        ("3000_2", "TIMEOUT", 7.0, 1800),
        ("3000_[3-10%2]", "PENDING", None, None),
    ]


def test_a_step_away_from_its_job_is_a_record_the_merge_joins(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        row(jobid="400", user="alice", state="OUT_OF_MEMORY", end="2024-03-01T10:00:00"),
        row(jobid="401", user="bob", state="COMPLETED"),
        row(jobid="400.batch", state="OUT_OF_MEMORY", maxrss="64G", nodelist="n1"),
    )
    jobs, _ = read(path)
    assert [(j.job_id, j.line) for j in jobs] == [("400", 2), ("401", 3), ("400", 4)]
    step_only = jobs[2]
    assert (step_only.state, step_only.user, step_only.max_rss_mb) == (None, None, 65536.0)
    merged = merge_jobs(jobs[0], step_only)
    assert merged == merge_jobs(step_only, jobs[0])
    assert (merged.state, merged.user, merged.max_rss_mb, merged.node_list, merged.line) == (
        "OUT_OF_MEMORY",
        "alice",
        65536.0,
        "n1",
        2,
    )


def test_the_header_decides_columns_order_and_presence(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "State|MaxRSS|JobID|NNodes|ReqMem",
        "COMPLETED||55|3|1000Mn",
        "COMPLETED|3M|55.batch|1|",
    )
    [job], problems = read(path)
    assert problems == []
    assert (job.job_id, job.state, job.alloc_nodes, job.req_mem_mb, job.max_rss_mb) == (
        "55",
        "COMPLETED",
        3,
        3000.0,
        3.0,
    )
    assert (job.user, job.submit_at, job.alloc_cpus, job.work_dir) == (None, None, None, None)


def test_parsable_trailing_bars_and_crlf_line_ends(tmp_path: Path) -> None:
    lines = ("JobID|State|Elapsed|", "8|COMPLETED|01:00|", "8.batch|COMPLETED|01:00|", "")
    path = write(tmp_path, *lines, end="\r\n")
    [job], problems = read(path)
    assert problems == []
    assert (job.job_id, job.state, job.elapsed_s) == ("8", "COMPLETED", 60)


def test_a_header_again_starts_an_appended_dump(tmp_path: Path) -> None:
    path = write(tmp_path, "JobID|State", "1|FAILED", "JobID|User|State", "2|bob|COMPLETED")
    jobs, problems = read(path)
    assert problems == []
    assert [(j.job_id, j.user, j.state) for j in jobs] == [
        ("1", None, "FAILED"),
        ("2", "bob", "COMPLETED"),
    ]


# --- bad input ---------------------------------------------------------------------


def test_a_file_without_header_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "", "1001|cavity|alice", "1002|x|bob")
    assert list(read_dump(path, "kraken", name="kraken/2024-03.txt")) == [
        DumpProblem(
            "kraken/2024-03.txt",
            2,
            "no sacct header: the first line has no JobID column; file skipped",
        )
    ]
    empty = write(tmp_path, name="empty.txt")
    assert list(read_dump(empty, "kraken")) == [
        DumpProblem("empty.txt", 0, "no sacct header: the file is empty")
    ]


def test_unknown_and_repeated_columns_are_reported_and_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "JobID|Cluster|State|State", "9|kraken|COMPLETED|FAILED")
    [job], problems = read(path)
    assert job.state == "COMPLETED"
    assert [(p.line, p.reason) for p in problems] == [
        (1, "unknown column 'Cluster' in the header; ignored"),
        (1, "column 'State' appears twice in the header; second ignored"),
    ]


def test_bad_lines_are_reported_and_the_rest_of_the_file_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        row(jobid="10", state="COMPLETED"),
        "10.batch|batch|too|few",
        row(jobid="", state="FAILED"),
        row(jobid="JOB11", state="FAILED"),
        row(jobid="12", state="COMPLETED"),
        "12.batch|a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s",
        row(jobid="13", state="TIMEOUT"),
    )
    jobs, problems = read(path)
    assert [j.job_id for j in jobs] == ["10", "12", "13"]
    assert [(p.file, p.line, p.reason) for p in problems] == [
        ("2024-03.txt", 3, "4 fields where the header has 18; line skipped"),
        ("2024-03.txt", 4, "empty JobID; line skipped"),
        ("2024-03.txt", 5, "JobID 'JOB11' is not a job id; line skipped"),
        ("2024-03.txt", 7, "20 fields where the header has 18; line skipped"),
    ]


def test_a_bad_value_empties_its_field_and_keeps_the_job(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        row(
            jobid="20",
            user="alice",
            state="COMPLETED",
            submit="2024-02-30T10:00:00",
            elapsed="ten minutes",
            alloccpus="many",
            reqmem="16Q",
            maxrss="1X",
        ),
        row(jobid="21", user="bob", state="COMPLETED", alloccpus="8", nnodes="1" * 12),
    )
    jobs, problems = read(path)
    assert [
        (j.job_id, j.user, j.submit_at, j.elapsed_s, j.alloc_cpus, j.req_mem_mb) for j in jobs
    ] == [
        ("20", "alice", None, None, None, None),
        ("21", "bob", None, None, 8, None),
    ]
    assert [p.line for p in problems] == [2] * 5 + [3]
    assert problems[-1].reason == "NNodes: '111111111111' is too large a count; left empty"
    reasons = [p.reason for p in problems]
    for column, value in [
        ("Submit", "2024-02-30T10:00:00"),
        ("Elapsed", "ten minutes"),
        ("AllocCPUS", "many"),
        ("ReqMem", "16Q"),
        ("MaxRSS", "1X"),
    ]:
        assert any(r.startswith(f"{column}: ") and repr(value) in r for r in reasons), column


def test_undecodable_bytes_long_text_and_long_lines_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(
        b"JobID|JobName|WorkDir|State\n"
        b"30|caf\xe9 \xff|/w/" + b"x" * 2000 + b"|COMPLETED\n"
        b"31|" + b"y" * (2 << 20) + b"|/w|FAILED\n"
        b"32|ok|/w|FAILED\n"
    )
    jobs, problems = read(path)
    assert [j.job_id for j in jobs] == ["30", "32"]
    assert jobs[0].name == "caf\ufffd \ufffd"
    assert len(jobs[0].work_dir or "") == 512
    assert [(p.line, p.reason) for p in problems] == [
        (3, "line longer than 1048576 bytes; skipped")
    ]


# --- merging -------------------------------------------------------------------------

BASE = Job(
    cluster="kraken",
    job_id="500",
    name="run",
    user="alice",
    account=None,
    queue="prod",
    state="RUNNING",
    state_detail="RUNNING",
    exit_code="0:0",
    submit_at=datetime(2024, 3, 31, 20, 0),
    start_at=datetime(2024, 3, 31, 21, 0),
    end_at=None,
    elapsed_s=10800,
    time_limit_s=86400,
    alloc_cpus=36,
    alloc_nodes=1,
    req_mem_mb=None,
    max_rss_mb=900.0,
    node_list="n1",
    work_dir=None,
    line=80,
)


def test_merge_prefers_the_finished_sighting_and_fills_the_gaps() -> None:
    march = BASE
    april = replace(
        BASE,
        state="TIMEOUT",
        state_detail="TIMEOUT",
        exit_code="0:1",
        end_at=datetime(2024, 4, 1, 21, 0),
        elapsed_s=86400,
        account="cfd",
        max_rss_mb=500.0,
        queue=None,
        line=3,
    )
    merged = merge_jobs(march, april)
    assert merged == merge_jobs(april, march)
    assert (merged.state, merged.exit_code, merged.elapsed_s, merged.line) == (
        "TIMEOUT",
        "0:1",
        86400,
        3,
    )
    assert (merged.account, merged.queue, merged.max_rss_mb) == ("cfd", "prod", 900.0)


def test_merge_order_does_not_matter() -> None:
    sightings = [
        replace(BASE, user=None, max_rss_mb=None),
        replace(BASE, state="COMPLETED", end_at=datetime(2024, 4, 1), name="final", line=1),
        replace(BASE, state="COMPLETED", end_at=datetime(2024, 4, 2), name="later", line=2),
        replace(BASE, queue="debug", max_rss_mb=2000.0, work_dir="/w"),
    ]
    results = set()
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]):
        merged = sightings[order[0]]
        for index in order[1:]:
            merged = merge_jobs(merged, sightings[index])
        results.add(merged)
    [merged] = results
    assert (merged.name, merged.end_at, merged.max_rss_mb, merged.work_dir) == (
        "later",
        datetime(2024, 4, 2),
        2000.0,
        "/w",
    )


def test_merge_refuses_two_different_jobs() -> None:
    with pytest.raises(ValueError, match="different job"):
        merge_jobs(BASE, replace(BASE, job_id="501"))


# --- streaming -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_big_dump_streams_in_flat_memory(tmp_path: Path) -> None:
    jobs_written = 100_000
    path = tmp_path / "big.txt"
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for n in range(jobs_written):
            job = 5_000_000 + n
            day, minute = 1 + n // 4000, (n // 4) % 1000
            start = f"2024-03-{day:02d}T{minute // 60:02d}:{minute % 60:02d}:00"
            end = f"2024-03-{day:02d}T{minute // 60 + 2:02d}:{minute % 60:02d}:00"
            nodes = f"node[{n % 500:03d}-{n % 500 + 1:03d}]"
            times = f"{start}|{start}|{end}"
            out.write(
                f"{job}|case_{n}|user{n % 40}|proj{n % 9}|prod|COMPLETED|0:0|{times}|02:00:00|"
                f"1-00:00:00|72|2|4000Mn||{nodes}|/scratch/user{n % 40}/case_{n}\n"
                f"{job}.batch|batch||proj{n % 9}||COMPLETED|0:0|{times}|02:00:00||36|1|4000Mn|"
                f"{1000 + n % 7919}K|node{n % 500:03d}|\n"
                f"{job}.0|solver||proj{n % 9}||COMPLETED|0:0|{times}|01:59:58||72|2|4000Mn|"
                f"{200 + n % 997}M|{nodes}|\n"
            )
    assert 35e6 < path.stat().st_size < 50e6

    count = problems = 0
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for item in read_dump(path, "kraken"):
            if isinstance(item, Job):
                count += 1
            else:
                problems += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, problems) == (jobs_written, 0)
    assert peak - baseline < 30 * 2**20
