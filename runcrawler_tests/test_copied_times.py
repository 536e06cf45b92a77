"""An archive copied without its modification times: no absurd durations in `runs`."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.warehouse.database import connect

STARTED = "2025-03-12 14:02:33"
HEADER = f"""\
 AVBP V7.12.0
 Run started on : {STARTED}
 Host : kraken-node0042
 Number of MPI processes : 64
     ----> Iteration #      100   Time [s] =  1.0E-03   dt [s] =  1.0E-07
"""


def _run(root: Path, name: str, log: str, mtime: datetime) -> None:
    run = root / "kraken" / "jdupont" / name
    run.mkdir(parents=True)
    (run / "run.params").write_text(
        "$RUN-CONTROL\nsimulation_end_iteration = 1000\n$end_RUN-CONTROL\n"
    )
    (run / "avbp.o").write_text(log)
    for path in run.iterdir():
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def _crawl(tmp_path: Path, environ: dict[str, str]) -> dict[str, tuple]:
    root = tmp_path / "archive"
    copied = datetime(2026, 11, 1, 9, 0)  # the day of the copy, months after the runs
    _run(root, "diverged", HEADER + "ERROR : Negative density detected at node 12\n", copied)
    _run(root, "stopped", HEADER, copied)
    _run(root, "cancelled", HEADER + "*** JOB 42 ON kraken-node0042 CANCELLED AT "
         "2025-03-12T18:02:33 DUE TO TIME LIMIT ***\n", copied)  # fmt: skip
    settings = Config.from_env(
        {"RUNCRAWLER_ARCHIVE": str(root), "RUNCRAWLER_DATA": str(tmp_path / "data"), **environ}
    )
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    with connect(settings.duckdb_path, read_only=True) as con:
        rows = con.execute(
            "SELECT split_part(run_path, '/', 3), status, wall_time_s, cpu_hours, timing_source, "
            "parse_warnings FROM runs"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_no_duration_rests_on_a_copys_modification_time(tmp_path: Path) -> None:
    rows = _crawl(tmp_path, {})
    for name in ("diverged", "stopped"):
        status, wall, cpu_hours, source, warnings = rows[name]
        assert status in ("failed", "truncated")
        assert (wall, cpu_hours, source) == (None, None, None)
        assert any("longer than any job" in w for w in warnings)


def test_a_time_printed_by_the_scheduler_is_kept_whatever_the_copy(tmp_path: Path) -> None:
    status, wall, cpu_hours, source, _ = _crawl(tmp_path, {})["cancelled"]
    assert (status, wall, source) == ("killed", 4 * 3600, "scheduler")
    assert cpu_hours == 4 * 64


def test_a_site_with_longer_jobs_raises_the_limit(tmp_path: Path) -> None:
    _, wall, _, source, _ = _crawl(tmp_path, {"RUNCRAWLER_MAX_JOB_DAYS": "1000"})["stopped"]
    assert source == "file_mtime"
    assert wall > 200 * 86400
