"""The AVBP parser: run.params, the solver log, the scheduler files, the record."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcrawler_assets.config import Config, Layout
from runcrawler_assets.records import RunRecord, run_id_for
from runcrawler_assets.solvers import parse_run, parser_for
from runcrawler_assets.solvers.avbp.log import AvbpLog, read_log
from runcrawler_assets.solvers.avbp.milestones import MILESTONES
from runcrawler_assets.solvers.avbp.params import parse_params_text, typed_settings
from runcrawler_assets.solvers.avbp.parser import AvbpParser
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
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """A run directory kraken/jdupont/burner/run1 under `root`.

    `log_name` and the names of `files` may hold a folder (`logs/avbp.o`); a name
    ending in `.gz` is written gzip-compressed.
    """
    run_dir = root / "kraken" / "jdupont" / "burner" / "run1"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.params").write_bytes(params.encode() if isinstance(params, str) else params)
    for name, content in (files or {}).items():
        write_file(run_dir / name, content, log_mtime)
    if log is not None:
        write_file(run_dir / log_name, log, log_mtime)
    return run_dir


def write_file(path: Path, content: str | bytes, mtime: datetime) -> None:
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    set_mtime(path, mtime)


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


def test_run_path_comes_from_the_archive_and_cluster_user_are_left_to_discovery(
    tmp_path: Path,
) -> None:
    record = parse(make_run(tmp_path), tmp_path)
    assert (record.cluster, record.user) == (None, None)
    assert record.run_path == "kraken/jdupont/burner/run1"
    assert record.run_id == run_id_for("kraken/jdupont/burner/run1")
    assert record.log_path == "kraken/jdupont/burner/run1/avbp.o"


def test_parse_run_takes_cluster_and_user_from_the_partition_discovery_finds(
    tmp_path: Path,
) -> None:
    record = parse_run(make_run(tmp_path), tmp_path, NOW)
    assert record is not None and (record.cluster, record.user) == ("kraken", "jdupont")


def test_parse_run_follows_the_archive_layout_of_its_config(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    root = tmp_path / "kraken"
    config = Config(root, tmp_path / "data", Layout.USER, fixed_cluster="irene")
    record = parse_run(run_dir, root, NOW, config)
    assert record is not None and (record.cluster, record.user) == ("irene", "jdupont")
    assert record.run_path == "jdupont/burner/run1"


def test_parse_run_warns_of_a_run_outside_any_partition_folder(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    record = parse_run(run_dir, run_dir.parent, NOW)
    assert record is not None and (record.cluster, record.user) == (None, None)
    assert any("none of the archive's cluster/user folders" in w for w in record.parse_warnings)


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


# ---------------------------------------------------------------- real logs: where they are


@pytest.mark.parametrize(
    "log_name",
    [
        "avbp_log.txt.gz",
        "avbp.o.gz",
        "job.out.gz",
        "burner.o4242.gz",
        "log_run1.txt.gz",
        "logs/avbp.o",
        "log/job.out",
        "output/avbp_log.txt.gz",
    ],
)
def test_a_log_is_read_gzipped_under_any_accepted_name_and_in_a_log_folder(
    tmp_path: Path, log_name: str
) -> None:
    record = parse_log(tmp_path, SUCCESS_LOG, log_name=log_name)
    assert (record.status, record.iterations_done, record.n_procs) == ("success", 50000, 288)
    assert record.log_path == f"kraken/jdupont/burner/run1/{log_name}"


@pytest.mark.parametrize(
    "name", ["slurm-123456.out.gz", "burner.e123456.gz", "logs/slurm-123456.out", "output/x.e12"]
)
def test_a_gzipped_or_filed_away_scheduler_file_still_gives_its_verdict(
    tmp_path: Path, name: str
) -> None:
    record = parse_log(tmp_path, failed_log(NEGATIVE_DENSITY), files={name: TIME_LIMIT + "\n"})
    assert (record.status, record.error_category, record.error_message) == (
        "killed",
        "time_limit",
        TIME_LIMIT,
    )


def test_logs_in_the_run_folder_and_its_log_folder_count_together_as_restarts(
    tmp_path: Path,
) -> None:
    earlier = {"avbp_log.txt.gz": failed_log(NEGATIVE_DENSITY)}
    run_dir = make_run(tmp_path, None, files=earlier, log_mtime=LONG_AGO - timedelta(days=1))
    make_run(tmp_path, SUCCESS_LOG, log_name="logs/avbp.o")
    record = parse(run_dir, tmp_path)
    assert (record.status, record.n_restarts) == ("success", 1)
    assert record.log_path.endswith("/logs/avbp.o")


# ---------------------------------------------------------------- real logs: others' noise

# What the job script, the modules, the container runtime, the network drivers and
# the MPI library print before AVBP's banner, as seen on the clusters.
PREAMBLE = (
    "Loading module intel/2023.1\n"
    "Loading avbp/7.12.0\n"
    "  Loading requirement: hdf5/1.12.2 parmetis/4.0.3 openmpi/4.1.5\n"
    "INFO:    Converting SIF file to temporary sandbox...\n"
    "WARNING: underlay of /etc/localtime required more than 50 (79) bind mounts\n"
    "WARNING: Skipping mount /etc/resolv.conf [files]: /etc/resolv.conf doesn't exist in "
    "container\n"
    "libibverbs: Warning: couldn't load driver 'libmlx4-rdmav34.so': libmlx4-rdmav34.so: "
    "cannot open shared object file: No such file or directory\n"
    "ERROR: ld.so: object '/opt/xalt/lib64/libxalt_init.so' from LD_PRELOAD cannot be "
    "preloaded (cannot open shared object file): ignored.\n"
    "Host : kraken-login01\n"  # the job script's own echo, on the login node
    "Number of MPI processes : 1\n"
    "--------------------------------------------------------------------------\n"
    "WARNING: There was an error initializing an OpenFabrics device.\n"
    "\n"
    "  Local host:   kraken-node0042\n"
    "  Local device: mlx5_0\n"
    "--------------------------------------------------------------------------\n"
    "[kraken-node0042:12345] mca_base_component_repository_open: unable to open "
    "mca_btl_openib: librdmacm.so.1: cannot open shared object file (ignored)\n"
    "NVIDIA: no NVIDIA devices found\n"
)
LOADER_WARNING = (
    "ERROR: ld.so: object '/opt/xalt/lib64/libxalt_init.so' from LD_PRELOAD cannot be "
    "preloaded (cannot open shared object file): ignored."
)
FORK_WARNING = """\
--------------------------------------------------------------------------
A process has executed an operation involving a call to the
"fork()" system call to create a child process.  Open MPI is currently
operating in a condition that could result in memory corruption or
other system errors; your job may hang, crash, or produce silent
data corruption.
--------------------------------------------------------------------------
"""
# What Open MPI prints after a rank called MPI_Abort or died.
MPI_ABORT_BOX = """\
--------------------------------------------------------------------------
MPI_ABORT was invoked on rank 3 in communicator MPI_COMM_WORLD
with errorcode 1.

NOTE: invoking MPI_ABORT causes Open MPI to kill all MPI processes.
--------------------------------------------------------------------------
"""
PRIMARY_JOB_BOX = """\
--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
"""
SIGNAL_6 = (
    "mpirun noticed that process rank 3 with PID 0 on node kraken-node0042 exited on "
    "signal 6 (Aborted)."
)
OPEN_MPI_AFTERMATH = MPI_ABORT_BOX + PRIMARY_JOB_BOX + SIGNAL_6 + "\n"
KILLED_BY_SIGNAL_9 = (
    "mpirun noticed that process rank 5 with PID 0 on node kraken-node0042 exited on "
    "signal 9 (Killed)."
)


def test_noise_before_the_banner_hides_no_field_and_sets_none(tmp_path: Path) -> None:
    record = parse_log(tmp_path, PREAMBLE + SUCCESS_LOG)
    assert (record.status, record.solver_version, record.host) == (
        "success",
        "7.12.0",
        "kraken-node0042",
    )
    assert (record.n_procs, record.n_nodes, record.n_cells, record.dimension) == (
        288,
        2345678,
        12876543,
        3,
    )
    assert (record.stage_code, record.iterations_done, record.parse_warnings) == (0, 50000, ())


def test_milestones_after_noise_before_the_banner_still_locate_a_failure(
    tmp_path: Path,
) -> None:
    header_to_grid = HEADER.split(" ----> Writes full parameters file\n")[0]
    record = parse_log(tmp_path, PREAMBLE + header_to_grid + "ERROR : Cannot open file x.h5\n")
    assert (record.status, record.error_category, record.stage_code) == (
        "failed",
        "input_file",
        130,
    )


def test_an_error_line_before_the_banner_is_not_the_runs_error(tmp_path: Path) -> None:
    record = parse_log(tmp_path, PREAMBLE + HEADER + LOOP)
    assert (record.status, record.error_category, record.error_message) == (
        "truncated",
        "truncated",
        None,
    )


def test_a_log_that_lost_its_header_still_reports_avbps_error(tmp_path: Path) -> None:
    """Iteration lines are AVBP's own: what follows them is AVBP's (a log copied with `tail`)."""
    record = parse_log(tmp_path, LOOP + NEGATIVE_DENSITY + "\n")
    assert (record.status, record.error_category, record.iterations_done) == (
        "failed",
        "numerical_instability",
        50000,
    )


def test_noise_in_the_middle_of_the_loop_is_not_a_solver_error(tmp_path: Path) -> None:
    record = parse_log(tmp_path, HEADER + LOOP + LOADER_WARNING + "\n" + FORK_WARNING + LOOP)
    assert (record.status, record.error_category, record.iterations_done) == (
        "truncated",
        "truncated",
        50000,
    )


def test_open_mpi_help_text_after_avbps_error_does_not_replace_it(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log(NEGATIVE_DENSITY) + OPEN_MPI_AFTERMATH)
    assert (record.status, record.error_category, record.error_message) == (
        "failed",
        "numerical_instability",
        NEGATIVE_DENSITY,
    )


def test_the_launchers_report_decides_when_nothing_better_was_printed(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log(KILLED_BY_SIGNAL_9))
    assert (record.status, record.error_category, record.error_message) == (
        "failed",
        "unknown",
        KILLED_BY_SIGNAL_9,
    )
    assert record.stage_code == 300


def test_a_launcher_report_telling_how_a_rank_died_wins_over_one_saying_only_that_it_did(
    tmp_path: Path,
) -> None:
    record = parse_log(tmp_path, failed_log() + PRIMARY_JOB_BOX + SIGNAL_6 + "\n")
    assert (record.error_category, record.error_message) == ("unknown", SIGNAL_6)


def test_help_text_wrapped_over_lines_is_joined_up_to_the_end_of_its_sentence(
    tmp_path: Path,
) -> None:
    record = parse_log(tmp_path, failed_log() + PRIMARY_JOB_BOX)
    assert record.error_message == (
        "Primary job  terminated normally, but 1 process returned a non-zero exit code."
    )


def test_a_launchers_report_yields_to_an_mpi_abort_and_to_a_scheduler_kill(
    tmp_path: Path,
) -> None:
    mpi_abort = "MPI_ABORT was invoked on rank 5 in communicator MPI_COMM_WORLD with errorcode 1"
    aborted = parse_log(tmp_path / "a", failed_log(KILLED_BY_SIGNAL_9, mpi_abort))
    killed = parse_log(tmp_path / "b", failed_log(KILLED_BY_SIGNAL_9, TIME_LIMIT))
    assert (aborted.error_category, aborted.error_message) == ("mpi_abort", mpi_abort)
    assert (killed.error_category, killed.error_message) == ("time_limit", TIME_LIMIT)


# ---------------------------------------------------------------- real logs: MPI ranks


def test_rank_prefixes_come_off_and_the_first_rank_to_speak_decides(tmp_path: Path) -> None:
    record = parse_log(
        tmp_path,
        failed_log(
            "[3] ERROR : Negative density detected at node 42 (iteration 4521)",
            "[7] ERROR : Negative density detected at node 4343 (iteration 4521)",
        ),
    )
    assert record.error_message == "ERROR : Negative density detected at node 42 (iteration 4521)"
    assert record.error_category == "numerical_instability"


@pytest.mark.parametrize(
    "printed",
    [
        "[2] [3] " + NEGATIVE_DENSITY,
        "[1,3]<stdout>: " + NEGATIVE_DENSITY,
        "[2] ERROR : Negative den[3] " + NEGATIVE_DENSITY + "\nsity detected at node 7 (it",
        "  [12]  " + NEGATIVE_DENSITY,
    ],
    ids=["piled-up", "tag-output", "fused-mid-line", "indented"],
)
def test_an_error_printed_by_ranks_at_once_is_read_without_their_prefixes(
    tmp_path: Path, printed: str
) -> None:
    record = parse_log(tmp_path, failed_log(printed))
    assert (record.error_category, record.error_message) == (
        "numerical_instability",
        NEGATIVE_DENSITY,
    )


def test_a_rank_prefixed_error_groups_with_the_same_error_printed_plain(tmp_path: Path) -> None:
    plain = parse_log(tmp_path / "a", failed_log(NEGATIVE_DENSITY))
    prefixed = parse_log(
        tmp_path / "b",
        failed_log("[17] ERROR : Negative density detected at node 99 (iteration 12)"),
    )
    assert prefixed.error_signature == plain.error_signature


def test_a_rank_prefixed_runtime_verdict_is_read_without_its_prefix(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log("[5] forrtl: severe (174): SIGSEGV, segmentation"))
    assert (record.error_category, record.error_message) == (
        "segfault",
        "forrtl: severe (174): SIGSEGV, segmentation",
    )


def test_a_message_wrapped_under_its_error_line_is_joined(tmp_path: Path) -> None:
    record = parse_log(
        tmp_path,
        failed_log("ERROR : Temperature out of table", "        bounds: T = 6512.3 K", " Bye."),
    )
    assert (record.error_category, record.error_message) == (
        "thermo_table",
        "ERROR : Temperature out of table bounds: T = 6512.3 K",
    )


def test_an_error_label_alone_takes_its_message_from_the_next_line_of_its_rank(
    tmp_path: Path,
) -> None:
    record = parse_log(
        tmp_path, failed_log("[3] ERROR :", "[3]      Cannot open file ../MESH/burner.mesh.h5")
    )
    assert (record.error_category, record.error_message) == (
        "input_file",
        "ERROR : Cannot open file ../MESH/burner.mesh.h5",
    )


@pytest.mark.parametrize(
    "following",
    [
        "Negative density at node 12",  # not indented under it
        "[4]      Negative density at node 12",  # another rank
        "",  # a blank line
        " ----> Integral values for boundary patches",  # a milestone
        "      MPI_ABORT was invoked on rank 3",  # a line of its own
        "   Iteration #  4600   Time [s] =  1.2E-05",
    ],
)
def test_a_line_that_does_not_continue_an_error_is_not_joined_to_it(
    tmp_path: Path, following: str
) -> None:
    record = parse_log(tmp_path, failed_log("[3] ERROR : Solver stopped", following))
    assert record.error_message == "ERROR : Solver stopped"


def test_a_message_wrapped_before_the_temporal_loop_is_joined(tmp_path: Path) -> None:
    header_to_grid = HEADER.split(" ----> Writes full parameters file\n")[0]
    wrapped = "ERROR : Cannot open file\n          ../INIT/burner_init.h5\n"
    record = parse_log(tmp_path, header_to_grid + wrapped)
    assert record.error_message == "ERROR : Cannot open file ../INIT/burner_init.h5"


def test_lines_picked_by_the_bounded_scan_never_continue_a_message() -> None:
    """In a big log's middle only keyword lines are read: the next one is not the next line."""
    log = AvbpLog()
    for line in HEADER.splitlines():
        log.feed_scanned(line)
    log.feed_scanned("ERROR : Negative density at node")
    log.feed_scanned("          species 3 (iteration 12)")
    log.end_of_file()
    assert log.evidence.solver_error == (
        "numerical_instability",
        "ERROR : Negative density at node",
    )


def test_an_error_that_ends_its_sentence_takes_no_more_lines(tmp_path: Path) -> None:
    record = parse_log(tmp_path, failed_log("Error : NaN detected.", "      See the manual."))
    assert record.error_message == "Error : NaN detected."


# ---------------------------------------------------------------- real logs: bytes and ends


def test_crlf_in_the_log_the_scheduler_file_and_run_params_is_read(tmp_path: Path) -> None:
    record = parse_log(
        tmp_path,
        (PREAMBLE + failed_log("[3] ERROR :", "[3]      Negative density")).replace("\n", "\r\n"),
        params=PARAMS.replace("\n", "\r\n"),
        files={"slurm-123456.out.gz": "srun: error: n1: task 3: Killed\r\n"},
    )
    assert (record.host, record.n_procs, record.iterations_done, record.cfl) == (
        "kraken-node0042",
        288,
        50000,
        0.7,
    )
    assert record.error_message == "ERROR : Negative density"


def test_a_progress_bar_redrawn_with_bare_carriage_returns_hides_no_line(tmp_path: Path) -> None:
    bar = " Partitioning [###       ]  30%\r Partitioning [##########] 100%\r"
    header = HEADER.replace(" ----> Info on initial grid", bar + " ----> Info on initial grid")
    loop = LOOP.replace("  Iteration #     50000", "  saving 45%\r  Iteration #     50000")
    record = parse_log(tmp_path, header + loop + "ERROR : NaN\r\r\n")
    assert (record.n_nodes, record.stage_code, record.iterations_done) == (2345678, 300, 50000)
    assert record.error_message == "ERROR : NaN"


def test_colour_codes_are_read_past(tmp_path: Path) -> None:
    red, plain = "\x1b[1;31m", "\x1b[0m"
    log = f"{red}Loading{plain} avbp/7.12.0\n" + HEADER + LOOP
    log += f"  {red}Iteration #  50100{plain}  Time [s] = 6.2E-03\n{red}ERROR{plain} : NaN\n"
    record = parse_log(tmp_path, log)
    assert (record.solver_version, record.iterations_done) == ("7.12.0", 50100)
    assert (record.error_category, record.error_message) == ("numerical_instability", "ERROR : NaN")


def test_invalid_utf8_in_noise_and_a_rank_prefixed_error_does_not_stop_the_parse(
    tmp_path: Path,
) -> None:
    log = (PREAMBLE + failed_log("[3] ERROR : Negative density at \xff node")).encode("latin-1")
    record = parse_log(tmp_path, b"\xfe\x93" + log.replace(b"Local", b"Lo\x00\x93cal"))
    assert (record.status, record.n_procs) == ("failed", 288)
    assert record.error_message == "ERROR : Negative density at \ufffd node"


def test_windows_paths_in_run_params_are_kept_as_written(tmp_path: Path) -> None:
    params = PARAMS.replace("../MESH/burner.mesh.h5", r"C:\Users\jdupont\AVBP\MESH\burner.mesh.h5")
    params += (
        "$OUTPUT-CONTROL\n"
        r"  save_directory = C:\\Users\\jdupont\\AVBP\\SOLUT\\" + "\n"
        r"  probe_file     = \\fileserver\cfd\probes dir\probes.dat   ! UNC path" + "\n"
        "$end_OUTPUT-CONTROL\n"
    )
    record = parse(make_run(tmp_path, params=params), tmp_path)
    assert record.params["mesh_file"] == r"C:\Users\jdupont\AVBP\MESH\burner.mesh.h5"
    assert record.params["save_directory"] == r"C:\\Users\\jdupont\\AVBP\\SOLUT\\"
    assert record.params["probe_file"] == r"\\fileserver\cfd\probes dir\probes.dat"
    assert (record.cfl, record.ncell_group, record.status) == (0.7, 100, "success")
    assert not record.parse_warnings


# ---------------------------------------------------------------- real logs: no solver at all

EXECUTABLE_NOT_FOUND = """\
--------------------------------------------------------------------------
mpirun was unable to find the specified executable file, and therefore
did not launch the job.  This error was first reported for process
rank 0; it may have occurred for other processes as well.

NOTE: A common cause for this error is misspelling a mpirun command
      line parameter option (remember that mpirun interprets the first
      unrecognized command line token as the executable).

Node:       kraken-node0042
Executable: /home/jdupont/AVBP/HOST/KRAKEN/avbp
--------------------------------------------------------------------------
"""
MS_MPI_NOT_STARTED = """\

job aborted:
[ranks] message

[0-3] process exited without calling init

---- error analysis -----

[0-3] on WS-CFD-07
avbp.exe ended before calling init and may have crashed. exit code -1073741515

---- error analysis -----
"""
SEGFAULT_AT_LAUNCH = (
    "mpirun noticed that process rank 0 with PID 4242 on node kraken-node0042 exited on "
    "signal 11 (Segmentation fault)."
)
FPE_AT_LAUNCH = "srun: error: kraken-node0042: task 3: Floating point exception (core dumped)"


@pytest.mark.parametrize(
    ("log", "slurm_out", "category", "message"),
    [
        (
            PREAMBLE + EXECUTABLE_NOT_FOUND,
            None,
            "unknown",
            "mpirun was unable to find the specified executable file, and therefore did not "
            "launch the job.",
        ),
        (PREAMBLE + SEGFAULT_AT_LAUNCH + "\n", None, "segfault", SEGFAULT_AT_LAUNCH),
        (MS_MPI_NOT_STARTED, None, "mpi_abort", "job aborted: process exited without calling init"),
        (
            PREAMBLE,
            FPE_AT_LAUNCH + "\nsrun: Terminating StepId=123456.0\n",
            "unknown",
            FPE_AT_LAUNCH,
        ),
        ("", "[3] " + FPE_AT_LAUNCH + "\n", "unknown", FPE_AT_LAUNCH),
    ],
    ids=["executable-not-found", "signal-11", "ms-mpi", "srun-fpe", "srun-fpe-empty-log"],
)
def test_a_launch_that_failed_before_avbp_printed_anything_is_a_failed_run(
    tmp_path: Path, log: str, slurm_out: str | None, category: str, message: str
) -> None:
    files = {"slurm-123456.out": slurm_out} if slurm_out else {}
    record = parse_log(tmp_path, log, files=files)
    assert (record.status, record.error_category, record.error_message) == (
        "failed",
        category,
        message,
    )
    assert (record.solver_version, record.host, record.n_procs, record.stage_code) == (
        None,
        None,
        None,
        None,
    )
    assert (record.ended_at, record.wall_time_s, record.iterations_done) == (LONG_AGO, None, 0)


def test_a_crash_followed_by_slurm_cancelling_the_step_is_the_crash(tmp_path: Path) -> None:
    crash = "forrtl: severe (174): SIGSEGV, segmentation fault occurred"
    step_cancelled = (
        "slurmstepd: error: *** STEP 123456.0 ON kraken-node0042 CANCELLED AT "
        "2024-03-12T18:02:33 ***"
    )
    record = parse_log(
        tmp_path,
        failed_log("[3] " + crash, "srun: Job step aborted: Waiting up to 32 seconds"),
        files={"slurm-123456.out": step_cancelled + "\n"},
    )
    assert (record.status, record.error_category, record.error_message) == (
        "failed",
        "segfault",
        crash,
    )


def test_a_launch_crash_wins_over_the_step_slurm_cancelled_because_of_it(
    tmp_path: Path,
) -> None:
    step_cancelled = "slurmstepd: error: *** STEP 9.0 ON n1 CANCELLED AT 2024-03-12T18:02:33 ***"
    record = parse_log(
        tmp_path, PREAMBLE, files={"slurm-9.out": f"{FPE_AT_LAUNCH}\n{step_cancelled}\n"}
    )
    assert (record.status, record.error_category, record.error_message) == (
        "failed",
        "unknown",
        FPE_AT_LAUNCH,
    )
    assert record.ended_at == LONG_AGO  # a failed run ends when its log was last written


def test_a_job_cancelled_after_a_crash_is_still_someones_decision(tmp_path: Path) -> None:
    job_cancelled = (
        "slurmstepd: error: *** JOB 123456 ON kraken-node0042 CANCELLED AT 2024-03-12T18:02:33 ***"
    )
    record = parse_log(tmp_path, failed_log(NEGATIVE_DENSITY, job_cancelled))
    assert (record.status, record.error_category) == ("killed", "cancelled")


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
    assert (record.run_path, record.status) == ("kraken/u/gone", "not_started")
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
# Real logs' mess: rank prefixes, indented continuations, bare carriage returns, launchers.
_TAIL_PIECES += [b"[3] ", b"[2] [3] ", b"        ", b"error :", b"done.", b"\r", b"45%\r"]
_TAIL_PIECES += [b"mpirun noticed that process rank 3", b"job aborted:", b"terminated"]
_TAIL_PIECES += [b"srun: error: n1: task 3: killed", b"primary job terminated normally, but 1"]
_TAIL_PIECES += [b"\x1b[31m", b"\x1b[0m"]


@given(st.lists(st.sampled_from(_TAIL_PIECES), max_size=40), st.booleans())
def test_feed_tail_is_feeding_every_line_on_any_mix(pieces: list[bytes], banner: bool) -> None:
    """Also after AVBP's banner, where error lines open messages that may go on."""
    tail = b"".join(pieces)
    by_block, by_line = AvbpLog(), AvbpLog()
    for log in (by_block, by_line) if banner else ():
        log.feed("          AVBP  V7.12.0")
    by_block.feed_tail(tail)
    emit_lines(tail, by_line.feed, DEFAULT_LIMITS.max_line)
    assert by_block == by_line
