"""The AVBP parser: run.params, the solver log, the scheduler files, the record."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcrawler_assets.records import RunRecord, run_id_for
from runcrawler_assets.solvers import parser_for
from runcrawler_assets.solvers.avbp import (
    AvbpLog,
    AvbpParser,
    parse_params_text,
    read_log,
    typed_settings,
)
from runcrawler_assets.solvers.avbp_milestones import MILESTONES
from runcrawler_assets.solvers.logtext import DEFAULT_LIMITS, emit_lines
from runcrawler_assets.solvers.rundir import bound_file_times

NOW = datetime(2024, 3, 20, 12, 0, 0)
LONG_AGO = NOW - timedelta(days=30)

PARAMS = """\
$RUN-CONTROL
  mesh_file                  = ../MESH/burner.mesh.h5
  mixture_name               = CH4-AIR-2S-BFER   ! 2-step methane/air
  reactive_flow              = yes
  simulation_end_iteration   = 50000
  convection_scheme          = TTGC
  CFL                        = 0.7
  LES_model                  = wale
  artificial_viscosity_model = colin
  ncell_group                = 100
$end_RUN-CONTROL
"""
HEADER = """\
 __________________________________________________________
          AVBP  V7.12.0  (build 2024-02-14, intel/2023.1)
 __________________________________________________________
 Run started on   : 2024-03-12 14:02:33
 Host             : kraken-node0042
 Number of MPI processes :   288
 ----> Reading run parameters
 ----> Reading boundary conditions
 ----> Info on initial grid
       Dimension                :   3
       Number of nodes          :   2345678
       Number of cells          :   12876543
 ----> Writes full parameters file
 ----> Info on initial solution
 ----> Reading probe coordinates file
 ----> Writing probe reference file
 ----> Wall distances stored in file
 ----> Starts the temporal loop
"""
LOOP = """\
  Iteration #       100   Time [s] =  1.2345E-05   dt [s] =  1.2E-07
  Iteration #     50000   Time [s] =  6.1725E-03   dt [s] =  1.2E-07
"""
WRAP_UP = """\
 ----> Integral values for boundary patches
 Total CPU time [s]        :   1.4250E+06
 Elapsed wall time [s]     :   4.9479E+03
 Reduced efficiency [s.proc/it/node] : 1.2152E-05
 Run ended on     : 2024-03-12 15:25:02
 ----> End of AVBP session
"""
SUCCESS_LOG = HEADER + LOOP + WRAP_UP
TIME_LIMIT = (
    "slurmstepd: error: *** JOB 123456 ON node0042 CANCELLED AT 2024-03-12T18:02:33 "
    "DUE TO TIME LIMIT ***"
)
NEGATIVE_DENSITY = "ERROR : Negative density detected at node 123456 (iteration 4521)"


def set_mtime(path: Path, when: datetime) -> None:
    stamp = when.replace(tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def make_run(
    root: Path,
    log: str | bytes | None = SUCCESS_LOG,
    *,
    params: str | bytes = PARAMS,
    log_name: str = "avbp.o",
    log_mtime: datetime = LONG_AGO,
    files: dict[str, str] | None = None,
) -> Path:
    """A run directory kraken/jdupont/burner/run1 under `root`."""
    run_dir = root / "kraken" / "jdupont" / "burner" / "run1"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.params").write_bytes(params.encode() if isinstance(params, str) else params)
    for name, text in (files or {}).items():
        (run_dir / name).write_text(text)
        set_mtime(run_dir / name, log_mtime)
    if log is not None:
        data = log.encode() if isinstance(log, str) else log
        path = run_dir / log_name
        path.write_bytes(gzip.compress(data) if log_name.endswith(".gz") else data)
        set_mtime(path, log_mtime)
    return run_dir


def parse(run_dir: Path, root: Path) -> RunRecord:
    return AvbpParser().parse(run_dir, root, now=NOW)


def parse_log(root: Path, log: str | bytes | None, **kwargs: object) -> RunRecord:
    return parse(make_run(root, log, **kwargs), root)  # type: ignore[arg-type]


# ---------------------------------------------------------------- detect and location


def test_a_directory_with_run_params_is_detected(tmp_path: Path) -> None:
    assert AvbpParser().detect(make_run(tmp_path))


def test_a_run_params_that_is_a_directory_is_not_detected(tmp_path: Path) -> None:
    (tmp_path / "run.params").mkdir()
    assert not AvbpParser().detect(tmp_path)


def test_the_registry_hands_avbp_runs_to_the_avbp_parser(tmp_path: Path) -> None:
    parser = parser_for(make_run(tmp_path))
    assert parser is not None and parser.name == "avbp"


def test_cluster_user_and_run_path_come_from_the_archive_layout(tmp_path: Path) -> None:
    record = parse(make_run(tmp_path), tmp_path)
    assert (record.cluster, record.user) == ("kraken", "jdupont")
    assert record.run_path == "kraken/jdupont/burner/run1"
    assert record.run_id == run_id_for("kraken/jdupont/burner/run1")
    assert record.log_path == "kraken/jdupont/burner/run1/avbp.o"


def test_created_at_is_the_utc_mtime_of_run_params(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    set_mtime(run_dir / "run.params", datetime(2024, 1, 2, 3, 4, 5))
    assert parse(run_dir, tmp_path).created_at == datetime(2024, 1, 2, 3, 4, 5)


def test_parsed_at_is_now_and_fingerprint_is_left_to_the_crawl(tmp_path: Path) -> None:
    record = parse(make_run(tmp_path), tmp_path)
    assert (record.parsed_at, record.fingerprint, record.solver) == (NOW, "", "avbp")


# ---------------------------------------------------------------- a successful run


def test_a_successful_run_reads_every_header_field(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG)
    assert record.solver_version == "7.12.0"
    assert record.started_at == datetime(2024, 3, 12, 14, 2, 33)
    assert record.ended_at == datetime(2024, 3, 12, 15, 25, 2)
    assert record.host == "kraken-node0042"
    assert (record.n_procs, record.dimension) == (288, 3)
    assert (record.n_nodes, record.n_cells) == (2345678, 12876543)


def test_a_successful_run_reads_the_summary(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG)
    assert record.iterations_done == 50000
    assert record.cpu_time_s == pytest.approx(1.425e6)
    assert record.wall_time_s == pytest.approx(4947.9)
    assert record.cpu_hours == pytest.approx(1.425e6 / 3600)
    assert record.efficiency == record.efficiency_printed == pytest.approx(1.2152e-5)
    assert record.parse_warnings == ()


def test_success_that_also_printed_the_wrap_up_is_code_0_not_900(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG)
    assert (record.status, record.stage_code, record.stage) == ("success", 0, "success")
    assert (record.error_category, record.error_message) == ("none", None)


def test_success_wins_over_earlier_error_lines(tmp_path: Path) -> None:
    record = parse_log(tmp_path, HEADER + NEGATIVE_DENSITY + "\n" + LOOP + WRAP_UP)
    assert (record.status, record.error_category, record.stage_code) == ("success", "none", 0)


def test_efficiency_is_recomputed_when_not_printed(tmp_path: Path) -> None:
    log = SUCCESS_LOG.replace(" Reduced efficiency [s.proc/it/node] : 1.2152E-05\n", "")
    record = parse_log(tmp_path, log)
    assert record.efficiency_printed is None
    assert record.efficiency == pytest.approx(4947.9 * 288 / (50000 * 2345678))


def test_a_printed_efficiency_far_from_the_recomputed_one_is_a_warning(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG.replace("1.2152E-05", "9.0E-05"))
    assert record.efficiency == pytest.approx(9e-5)
    assert any("efficiency" in w for w in record.parse_warnings)


def test_cpu_hours_fall_back_to_wall_time_times_processes(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG.replace(" Total CPU time [s]", " CPU usage"))
    assert record.cpu_time_s is None
    assert record.cpu_hours == pytest.approx(4947.9 * 288 / 3600)


def test_wall_time_falls_back_to_end_minus_start(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG.replace(" Elapsed wall time", " Wall"))
    assert record.wall_time_s == pytest.approx(82 * 60 + 29)


# ---------------------------------------------------------------- statuses and categories


def failed_log(*lines: str) -> str:
    return HEADER + LOOP + "".join(line + "\n" for line in lines)


@pytest.mark.parametrize(
    ("line", "category", "status"),
    [
        (TIME_LIMIT, "time_limit", "killed"),
        (
            "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=123456.0. Some of your "
            "processes may have been killed by the cgroup out-of-memory handler.",
            "out_of_memory",
            "killed",
        ),
        (
            "slurmstepd: error: *** JOB 123456 ON node0042 CANCELLED AT 2024-03-12T18:02:33 ***",
            "cancelled",
            "killed",
        ),
        ("forrtl: severe (174): SIGSEGV, segmentation fault occurred", "segfault", "failed"),
        (NEGATIVE_DENSITY, "numerical_instability", "failed"),
        ("Error : NaN detected in conservative variables", "numerical_instability", "failed"),
        ("ERROR : Temperature out of table bounds: T = 6512.3 K", "thermo_table", "failed"),
        (
            "Selected mixture and solution do not contain the same number of species. "
            "Check inputs.",
            "mixture",
            "failed",
        ),
        ("ERROR : Cannot open file ../MESH/burner.mesh.h5", "input_file", "failed"),
        (
            "MPI_ABORT was invoked on rank 17 in communicator MPI_COMM_WORLD with errorcode 1",
            "mpi_abort",
            "failed",
        ),
        ("*** Fatal error in subroutine xyz", "unknown", "failed"),
    ],
)
def test_each_error_category_is_recognised_with_its_status(
    tmp_path: Path, line: str, category: str, status: str
) -> None:
    record = parse_log(tmp_path, failed_log(line))
    assert (record.error_category, record.status) == (category, status)
    assert record.error_message == line.strip()
    assert record.error_signature


def test_a_log_that_stops_long_ago_is_truncated(tmp_path: Path) -> None:
    record = parse_log(tmp_path, HEADER + LOOP)
    assert (record.status, record.error_category, record.error_message) == (
        "truncated",
        "truncated",
        None,
    )
    # The log's mtime is before the banner's start (a copy's time): no end, no duration.
    assert (record.ended_at, record.wall_time_s, record.timing_source) == (None, None, None)
    assert any("before start" in warning for warning in record.parse_warnings)


def test_a_log_that_stops_recently_is_running(tmp_path: Path) -> None:
    record = parse_log(tmp_path, HEADER + LOOP, log_mtime=NOW - timedelta(hours=3))
    assert (record.status, record.error_category, record.ended_at) == ("running", None, None)


def test_a_run_without_a_log_is_not_started(tmp_path: Path) -> None:
    record = parse_log(tmp_path, None)
    assert (record.status, record.stage_code, record.error_category) == ("not_started", None, None)
    assert record.mixture_name == "ch4-air-2s-bfer"


def test_a_failed_run_without_printed_end_ends_at_the_log_mtime(tmp_path: Path) -> None:
    two_hours_in = datetime(2024, 3, 12, 16, 2, 33)
    record = parse_log(tmp_path, failed_log(NEGATIVE_DENSITY), log_mtime=two_hours_in)
    assert (record.ended_at, record.wall_time_s) == (two_hours_in, 7200)
    assert record.timing_source == "file_mtime"


def test_a_copy_time_months_after_the_start_gives_no_duration(tmp_path: Path) -> None:
    copied = datetime(2024, 9, 1, 8, 0)
    record = bound_file_times(parse_log(tmp_path, failed_log(NEGATIVE_DENSITY), log_mtime=copied))
    assert (record.ended_at, record.wall_time_s, record.cpu_hours) == (None, None, None)
    assert record.status == "failed"
    assert any("longer than any job" in warning for warning in record.parse_warnings)


def test_a_killed_run_ends_at_the_scheduler_kill_time(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log(TIME_LIMIT))
    assert record.ended_at == datetime(2024, 3, 12, 18, 2, 33)


def test_a_scheduler_verdict_in_slurm_out_wins_over_an_earlier_solver_error(
    tmp_path: Path,
) -> None:
    record = parse_log(
        tmp_path, failed_log(NEGATIVE_DENSITY), files={"slurm-123456.out": TIME_LIMIT + "\n"}
    )
    assert (record.status, record.error_category) == ("killed", "time_limit")
    assert record.error_message == TIME_LIMIT


def test_a_verdict_in_an_e_jobid_file_is_read(tmp_path: Path) -> None:
    record = parse_log(
        tmp_path, failed_log(), files={"burner.e98765": "Segmentation fault (core dumped)\n"}
    )
    assert (record.status, record.error_category) == ("failed", "segfault")


# ---------------------------------------------------------------- milestones


@pytest.mark.parametrize(
    "milestone", [m for m in MILESTONES if m.code != 0], ids=lambda m: str(m.code)
)
def test_a_run_stopped_after_a_milestone_reports_its_stage(tmp_path: Path, milestone) -> None:
    lines = (HEADER + LOOP + WRAP_UP).splitlines(keepends=True)
    upto = next(i for i, line in enumerate(lines) if milestone.text in line)
    record = parse_log(tmp_path, "".join(lines[: upto + 1]) + NEGATIVE_DENSITY + "\n")
    assert (record.stage_code, record.stage) == (milestone.code, milestone.label)
    assert record.status == "failed"


def test_milestones_match_whatever_the_case_dashes_and_spacing(tmp_path: Path) -> None:
    record = parse_log(tmp_path, "--> INFO ON   initial\tGRID\n")
    assert record.stage_code == 130


def test_a_log_without_milestones_has_no_stage(tmp_path: Path) -> None:
    record = parse_log(tmp_path, "hello\n")
    assert (record.stage_code, record.stage, record.iterations_done) == (None, None, 0)


# ---------------------------------------------------------------- awkward logs


def test_the_newest_log_describes_the_run_and_older_ones_are_restarts(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, failed_log(NEGATIVE_DENSITY), log_name="burner.o1001")
    make_run(tmp_path, HEADER, log_name="burner.o1000", log_mtime=LONG_AGO - timedelta(days=1))
    make_run(tmp_path, SUCCESS_LOG, log_name="burner.o1002", log_mtime=LONG_AGO + timedelta(1))
    record = parse(run_dir, tmp_path)
    assert (record.status, record.n_restarts) == ("success", 2)
    assert record.log_path.endswith("burner.o1002")


def test_a_gzip_log_is_parsed(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG, log_name="log_run1.txt.gz")
    assert (record.status, record.iterations_done) == ("success", 50000)


def test_a_crlf_log_is_parsed(tmp_path: Path) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG.replace("\n", "\r\n"))
    assert (record.status, record.host, record.solver_version) == (
        "success",
        "kraken-node0042",
        "7.12.0",
    )


def test_invalid_bytes_in_a_log_do_not_stop_the_parse(tmp_path: Path) -> None:
    log = SUCCESS_LOG.encode().replace(b"Host ", b"Ho\xffst\x00 ") + b"\xfe\xfd\n"
    record = parse_log(tmp_path, log)
    assert (record.status, record.n_procs) == ("success", 288)


def test_an_empty_log_is_a_run_that_printed_nothing(tmp_path: Path) -> None:
    record = parse_log(tmp_path, "")
    assert (record.status, record.stage_code, record.iterations_done) == ("truncated", None, 0)
    assert record.log_bytes == 0


def test_a_log_that_is_only_a_header_reached_the_temporal_loop(tmp_path: Path) -> None:
    record = parse_log(tmp_path, HEADER)
    assert (record.status, record.stage_code, record.iterations_done) == ("truncated", 300, 0)
    assert (record.n_nodes, record.efficiency) == (2345678, None)


def test_a_fifo_named_like_a_log_is_not_opened(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, None)
    os.mkfifo(run_dir / "avbp.o")
    record = parse(run_dir, tmp_path)
    assert record.status == "not_started"
    assert any("not a regular file" in w for w in record.parse_warnings)


@pytest.mark.slow
def test_a_sparse_gigabyte_log_is_parsed_with_a_bounded_read(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, None)
    log = run_dir / "avbp.o"
    with log.open("wb") as f:
        f.write(HEADER.encode())
        f.truncate((1 << 30) + 12345)
        f.seek(0, os.SEEK_END)
        f.write(("\n" + LOOP + WRAP_UP).encode())
    _, report = read_log(log)
    record = parse(run_dir, tmp_path)
    assert report.bytes_read <= DEFAULT_LIMITS.max_plain_bytes
    assert (record.status, record.iterations_done, record.n_procs) == ("success", 50000, 288)
    assert record.log_bytes == log.stat().st_size > 1 << 30


# ---------------------------------------------------------------- run.params


def test_params_blocks_comments_and_case_are_handled() -> None:
    text = (
        "$run-control\n\tMixture_Name\t=  CH4  ! comment\n  CFL = 0.7 # other\n$END_RUN-CONTROL\n"
    )
    values, warnings = parse_params_text(text)
    assert values == {"mixture_name": "CH4", "cfl": "0.7"}
    assert warnings == []


def test_params_list_values_keep_their_items_with_space_folded() -> None:
    values, _ = parse_params_text("$A\n probe = 1.0   2.0\t3.0\n$end_A\n")
    assert values == {"probe": "1.0 2.0 3.0"}


def test_params_unknown_keys_are_kept() -> None:
    assert parse_params_text("$A\n my_new_key = Foo\n$end_A\n")[0] == {"my_new_key": "Foo"}


def test_params_crlf_is_read() -> None:
    assert parse_params_text("$A\r\n cfl = 0.5\r\n$end_A\r\n")[0] == {"cfl": "0.5"}


def test_an_unclosed_params_block_is_a_warning() -> None:
    assert "never closed" in parse_params_text("$A\n cfl = 0.5\n")[1][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("No", False), (".TRUE.", True), (".false.", False), ("1", True), ("0", False)],
)
def test_reactive_flow_reads_every_boolean_spelling(text: str, expected: bool) -> None:
    assert typed_settings({"reactive_flow": text})[0]["reactive_flow"] is expected


def test_typed_settings_are_lower_cased_and_typed(tmp_path: Path) -> None:
    record = parse(make_run(tmp_path), tmp_path)
    assert (record.convection_scheme, record.les_model, record.mixture_name) == (
        "ttgc",
        "wale",
        "ch4-air-2s-bfer",
    )
    assert (record.ncell_group, record.cfl, record.reactive_flow) == (100, 0.7, True)
    assert record.iterations_requested == 50000
    assert record.params["convection_scheme"] == "TTGC"


def test_a_fortran_double_is_read_as_a_float() -> None:
    assert typed_settings({"cfl": "7.0d-1"})[0]["cfl"] == pytest.approx(0.7)


def test_a_setting_that_does_not_parse_is_a_warning_and_null() -> None:
    settings_, warnings = typed_settings({"ncell_group": "lots"})
    assert settings_["ncell_group"] is None
    assert "ncell_group" in warnings[0]


def test_a_run_whose_params_vanished_is_still_a_record(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    (run_dir / "run.params").unlink()
    record = parse(run_dir, tmp_path)
    assert (record.status, record.created_at, record.params) == ("success", None, {})
    assert any("run.params" in w for w in record.parse_warnings)


def test_a_run_dir_that_vanished_is_still_a_record(tmp_path: Path) -> None:
    record = parse(tmp_path / "kraken" / "u" / "gone", tmp_path)
    assert (record.cluster, record.user, record.status) == ("kraken", "u", "not_started")
    assert record.parse_warnings


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=500))
def test_arbitrary_params_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    record = parse(make_run(tmp_path, params=data), tmp_path)
    assert all(key == key.lower() for key in record.params)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.one_of(st.binary(max_size=40), st.sampled_from(SUCCESS_LOG.encode().splitlines())),
        max_size=30,
    )
)
def test_arbitrary_log_bytes_never_raise(tmp_path: Path, data: list[bytes]) -> None:
    record = parse_log(tmp_path, b"\n".join(data))
    assert record.status in {"success", "failed", "killed", "running", "truncated"}


# ---------------------------------------------------------------- JSON


def test_a_parsed_record_survives_a_json_round_trip(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log(NEGATIVE_DENSITY))
    assert RunRecord.from_json(record.to_json()) == record


def test_an_oom_killed_run_ends_when_its_log_was_last_written_so_its_cpu_hours_count(
    tmp_path: Path,
) -> None:
    oom = (
        "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=123456.0. Some of your "
        "processes may have been killed by the cgroup out-of-memory handler."
    )
    killed_at = datetime(2024, 3, 12, 18, 2, 33)
    record = parse_log(tmp_path, failed_log(oom), log_mtime=killed_at)
    assert record.status == "killed"
    assert record.ended_at == killed_at
    assert record.wall_time_s is not None and record.wall_time_s > 0
    assert record.cpu_hours is not None and record.cpu_hours > 0


def test_an_end_before_the_start_gives_no_wall_time_and_says_why(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log(NEGATIVE_DENSITY), log_mtime=LONG_AGO)
    assert record.wall_time_s is None and record.cpu_hours is None
    assert any("before start" in w for w in record.parse_warnings)


def test_the_readme_parses_one_run_in_two_lines(tmp_path: Path) -> None:
    from runcrawler_assets.solvers import parse_run

    run_dir = make_run(tmp_path)
    record = parse_run(str(run_dir), archive_root=str(tmp_path))
    assert record is not None and record.status == "success" and record.solver == "avbp"
    assert parse_run(str(tmp_path), archive_root=str(tmp_path)) is None


@pytest.mark.parametrize(
    "tail",
    [
        b" Iteration #  10 x\n Iteration #  20 error here\n --> end of avbp session\n",
        b" Iteration #  10\n *** error: negative density\n Iteration #  30\r\n Patch #1\n",
        b"iteration#5\n\x1c Iteration # 6 cancelled\n Host : n1\n note: iteration 7 # 8\n",
        b" Iteration #  10\n Iteration #  11 fatal\n total cpu time [s] : 12.5",
        b" Iteration #  10\n er\x00ror: bad\n Iteration #  12\n",
        b" It\xc3\xa9ration #  10\n error: caf\xc3\xa9\n Iteration #  13\n",
        b"no iteration at all\n run ended on : 2024-01-01 10:00:00\n",
    ],
)
def test_feed_tail_is_feeding_every_line(tail: bytes) -> None:
    """The block path of the tail must leave the log exactly as feeding it line by line."""
    by_block, by_line = AvbpLog(iterations_done=3), AvbpLog(iterations_done=3)
    by_block.feed_tail(tail)
    emit_lines(tail, by_line.feed, DEFAULT_LIMITS.max_line)
    assert by_block == by_line


_TAIL_PIECES = [b" Iteration # ", b"iteration", b"#", b"12", b" ", b"\t", b"\r", b"\n", b"\x1f"]
_TAIL_PIECES += [b"error", b"SIGSEGV", b"host : n", b"end of avbp session", b"\xc3\xa9", b"x"]


@given(st.lists(st.sampled_from(_TAIL_PIECES), max_size=40))
def test_feed_tail_is_feeding_every_line_on_any_mix(pieces: list[bytes]) -> None:
    tail = b"".join(pieces)
    by_block, by_line = AvbpLog(), AvbpLog()
    by_block.feed_tail(tail)
    emit_lines(tail, by_line.feed, DEFAULT_LIMITS.max_line)
    assert by_block == by_line
