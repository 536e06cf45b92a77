"""The OpenFOAM parser on what real run directories hold, not what the tutorials print.

Each test reproduces one phenomenon seen in real, public OpenFOAM run directories
(the local evaluation corpus) with a small log written here: the banner buried
under launcher warnings, serial copies and MPI ranks writing into one file,
launcher and library errors, harmless lines that look like errors, logs renamed,
moved and compressed, dictionaries edited after the run, archive copies that lost
their times. The log text is invented (paths, hosts, numbers); only its shape is
taken from reality. docs/contract-notes.md (OpenFOAM) is the contract.
"""

# Log lines are as long as OpenFOAM prints them.
# ruff: noqa: E501

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pytest

from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.openfoam.stages import DECOMPOSITION, SOLVER_LOOP
from runcrawler_assets.solvers.rundir import bound_file_times
from runcrawler_assets.warehouse.cleaning import clean_record
from runcrawler_tests.test_openfoam import (
    COM_BOX,
    CONTROL_DICT,
    END,
    ORG_BOX,
    banner,
    make_case,
    parse,
    time_loop,
    write,
)

STARTED = datetime(2024, 3, 12, 14, 2, 33)  # the `Date`/`Time` of every `banner(...)`
CASE_DIR = "kraken/jdupont/cases/pitzDaily"


def org_box(version: str, build: str) -> str:
    """An OpenFOAM.org banner box of another release (`ORG_BOX` is version 11)."""
    return ORG_BOX.replace("Version:  11", f"Version:  {version}").replace(
        "Build  : 11-9ec7b30d8f0d", f"Build  : {build}"
    )


def com_box(release: str) -> str:
    """An ESI (openfoam.com) banner box of another release, e.g. `2212`."""
    return COM_BOX.replace("2312", release).replace("20231219", "20221220")


ORG9_BOX = org_box("9", "9-3c5d7e9f1a2b")
ORG13_BOX = org_box("13", "13-0f1e2d3c4b5a")
ORG24_BOX = org_box("2.4.x", "2.4.x-7e6d5c4b3a29")
COM2212_BOX = com_box("2212")


def with_application(case: Path, application: str) -> Path:
    """The case's controlDict naming another solver application."""
    write(case / "system" / "controlDict", CONTROL_DICT.replace("simpleFoam", application))
    return case


def ranked(rank: int, text: str) -> str:
    """Every line of `text` as MPI rank `rank` prints it (`[3] ...`)."""
    return "".join(f"[{rank}] {line}\n" for line in text.splitlines())


def started_on(log: str, date: str) -> str:
    """The log with its banner's `Date` replaced (the run started on another day)."""
    return log.replace("Date   : Mar 12 2024", f"Date   : {date}")


# ---------------------------------------------------------------- 1. the banner is not on line 1

OPENIB_WARNING = """\
--------------------------------------------------------------------------
WARNING: There is at least one non-excluded OpenFabrics device found,
but there are no active ports detected (or Open MPI was unable to use
them).  The openib BTL will be ignored for this job.

  Local host: kraken-node0042
--------------------------------------------------------------------------
--------------------------------------------------------------------------
[[41207,1],0]: A high-performance Open MPI point-to-point messaging module
was unable to find any relevant network interfaces:

Module: OpenFabrics (openib)
  Host: kraken-node0042

Another transport will be used instead, although this may result in
lower performance.
--------------------------------------------------------------------------
"""
OPENIB_AGGREGATE = """\
[kraken-node0042:48113] 3 more processes have sent help message help-mpi-btl-openib.txt / no active ports found
[kraken-node0042:48113] Set MCA parameter "orte_base_help_aggregate" to 0 to see all help / error messages
"""
APPTAINER_START = """\
INFO:    Using cached SIF image
INFO:    Converting SIF file to temporary sandbox...
WARNING: underlay of /etc/localtime required more than 50 (73) bind mounts
"""
APPTAINER_END = "INFO:    Cleaning up image...\n"
SUPERSEDED = """\

simpleFoam has been superseded and replaced by the more general
incompressibleFluid solver module executed by the foamRun application:

    foamRun -solver incompressibleFluid

"""


def test_open_mpi_warning_boxes_before_the_banner_do_not_hide_it(tmp_path: Path) -> None:
    log = (
        OPENIB_WARNING
        + banner(COM_BOX, "simpleFoam -parallel", 4)
        + OPENIB_AGGREGATE
        + time_loop(6)
        + END
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category, record.error_message) == ("success", "none", None)
    assert (record.application, record.solver_version) == ("simpleFoam", "v2312")
    assert (record.n_procs, record.iterations_done) == (4, 6)
    assert (record.started_at, record.host) == (STARTED, "kraken-node0042")
    assert record.wall_time_s == 6


def test_apptainer_lines_around_the_run_do_not_hide_the_banner(tmp_path: Path) -> None:
    log = APPTAINER_START + banner(ORG_BOX, "simpleFoam", 1) + time_loop(3) + END + APPTAINER_END
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_message) == ("success", None)
    assert (record.solver_version, record.n_procs, record.iterations_done) == ("11", 1, 3)
    assert record.started_at == STARTED


def test_superseded_messages_printed_once_per_rank_precede_a_foam_run_banner(
    tmp_path: Path,
) -> None:
    log = (
        SUPERSEDED * 4
        + banner(ORG13_BOX, "foamRun -solver incompressibleFluid -parallel", 4)
        + time_loop(5, unit="s")
        + END
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("success", "none")
    assert (record.application, record.solver_version) == ("foamRun", "13")
    assert (record.n_procs, record.iterations_done) == (4, 5)
    assert record.log_path == f"{CASE_DIR}/log.simpleFoam"


def singleton_abort(pid: int) -> str:
    """What one MPI process started without a working launcher prints (no banner)."""
    return (
        "\n\n--> FOAM FATAL ERROR: \n"
        "Foam::UPstream::init(int&, char**&, bool) : attempt to run parallel on 1 processor\n\n"
        "    From function static bool Foam::UPstream::init(int&, char**&, bool)\n"
        "    in file UPstream.C at line 109.\n\n"
        "FOAM aborting\n\n"
        f"[kraken-node0042:{pid}] *** Process received signal ***\n"
        f"[kraken-node0042:{pid}] Signal: Aborted (6)\n"
    )


SINGLETON_FRAMES = """\
#0  Foam::error::printStack(Foam::Ostream&) at ??:?
#0  Foam::error::printStack(Foam::Ostream&) at ??:?
#1  Foam::error::abort() at ??:?
#1  Foam::error::abort() at ??:?
#2  Foam::UPstream::init(int&, char**&, bool) at ??:?
#2  Foam::UPstream::init(int&, char**&, bool) at ??:?
#3  Foam::argList::argList(int&, char**&, bool, bool, bool) at ??:?
#4  __libc_start_main in "/lib/x86_64-linux-gnu/libc.so.6"
#3  Foam::argList::argList(int&, char**&, bool, bool, bool)#4  ? in "/opt/openfoam9/bin/simpleFoam"
"""
BAD_TERMINATION = """\

===================================================================================
=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES
=   PID 40117 RUNNING AT kraken-node0042
=   EXIT CODE: 6
=   CLEANING UP REMAINING PROCESSES
===================================================================================
YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Aborted (signal 6)
"""


def no_banner_launch_failure() -> str:
    """Six singleton processes failing at once, their output interleaved."""
    copies = [singleton_abort(40111 + index) for index in range(6)]
    return "".join(copies[:3]) + SINGLETON_FRAMES + "".join(copies[3:]) + BAD_TERMINATION


def test_a_launch_failure_without_banner_is_failed_with_the_foam_message(tmp_path: Path) -> None:
    block = banner(ORG9_BOX, "blockMesh", 1) + "  nPoints: 1331\n  nCells: 1000\n" + END
    case = make_case(
        tmp_path, **{"log.blockMesh": block, "log.simpleFoam": no_banner_launch_failure()}
    )
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("failed", "unknown")
    assert "attempt to run parallel on 1 processor" in record.error_message
    assert record.log_path == f"{CASE_DIR}/log.simpleFoam"
    assert (record.application, record.n_procs, record.iterations_done) == ("simpleFoam", None, 0)


def test_a_launch_failure_without_banner_takes_the_version_of_another_log(
    tmp_path: Path,
) -> None:
    block = banner(ORG9_BOX, "blockMesh", 1) + "  nPoints: 1331\n  nCells: 1000\n" + END
    case = make_case(
        tmp_path, **{"log.blockMesh": block, "log.simpleFoam": no_banner_launch_failure()}
    )
    assert parse(case, tmp_path).solver_version == "9"


def test_back_to_back_fatal_headers_of_singletons_keep_the_message_that_follows(
    tmp_path: Path,
) -> None:
    message = "Foam::UPstream::init(int&, char**&, bool) : attempt to run parallel on 1 processor"
    fused = (
        "\n\n--> FOAM FATAL ERROR: \n--> FOAM FATAL ERROR: \n"  # two copies' headers first
        f"{message}\n{message}\n\n"
        "    From function static bool Foam::UPstream::init(int&, char**&, bool)\n"
        "    in file UPstream.C at line 109.\n\nFOAM aborting\n\nFOAM aborting\n"
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": fused + BAD_TERMINATION}), tmp_path)
    assert record.status == "failed"
    assert "attempt to run parallel on 1 processor" in record.error_message


# ---------------------------------------------------------------- 2. several banners, fused ranks


def serial_copies(copies: int, steps: int) -> str:
    """`mpirun -np N interFoam` without -parallel: N serial runs writing into one file."""
    one = banner(COM_BOX, "interFoam", 1).splitlines()
    exec_at = next(i for i, line in enumerate(one) if line.startswith("Exec"))
    head, rest = one[: exec_at + 5], one[exec_at + 5 :]  # box to PID, then the rest
    lines = []
    for copy in range(copies):
        lines += [line.replace("PID    : 12345", f"PID    : {12345 + copy}") for line in head]
    for line in rest + (time_loop(steps) + END).splitlines():
        lines += [line] * copies  # every copy prints every line, in step
    return "\n".join(lines) + "\n"


def test_serial_copies_writing_into_one_log_count_as_one_serial_run(tmp_path: Path) -> None:
    case = with_application(make_case(tmp_path, **{"log": serial_copies(2, 9)}), "interFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("success", "none")
    assert (record.application, record.n_procs) == ("interFoam", 1)
    assert record.iterations_done == 9
    assert record.log_path == f"{CASE_DIR}/log"


def test_serial_copies_in_one_log_are_a_parse_warning(tmp_path: Path) -> None:
    case = with_application(make_case(tmp_path, **{"log": serial_copies(2, 9)}), "interFoam")
    assert any("copies" in warning for warning in parse(case, tmp_path).parse_warnings)


def missing_field(rank: int) -> str:
    return f'cannot find file "/scratch/jdupont/motorBike/processor{rank}/0/p"'


READ_STREAM_FROM = (
    "    From virtual Foam::autoPtr<Foam::ISstream> Foam::fileOperations::uncollatedFileOperation"
    "::readStream(Foam::regIOobject&, const Foam::fileName&, const Foam::word&, bool) const\n"
    "    in file global/fileOperations/uncollatedFileOperation/uncollatedFileOperation.C at line 542.\n"
)


def fused_rank_errors(header_of_rank_2: str) -> str:
    """Four ranks fail to read their field; rank 2's header comes first, their lines interleave."""
    header = "--> FOAM FATAL ERROR: (openfoam-2212)"
    return (
        ranked(2, f"\n\n{header_of_rank_2}")
        + "[2] [3] \n"  # two ranks' prefixes fused on one line
        + ranked(3, f"\n{header}\n{missing_field(3)}")
        + ranked(2, f"{missing_field(2)}\n\n{READ_STREAM_FROM}")
        + ranked(3, f"\n{READ_STREAM_FROM}")
        + "FOAM parallel run exiting\n"
        + ranked(0, f"\n\n{header}\n{missing_field(0)}\n\n{READ_STREAM_FROM}")
        + "FOAM parallel run exiting\n"
    )


def test_fused_rank_prefixes_keep_the_first_ranks_clean_message(tmp_path: Path) -> None:
    log = banner(COM2212_BOX, "simpleFoam -parallel", 4) + fused_rank_errors(
        "--> FOAM FATAL ERROR: (openfoam-2212)"
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.status == "failed"
    assert record.error_message == f"FOAM FATAL ERROR: {missing_field(2)}"
    assert (record.n_procs, record.iterations_done) == (4, 0)


def test_fused_rank_errors_about_a_missing_field_are_an_input_file_error(tmp_path: Path) -> None:
    log = banner(COM2212_BOX, "simpleFoam -parallel", 4) + fused_rank_errors(
        "--> FOAM FATAL ERROR: (openfoam-2212)"
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_category == "input_file"


def test_a_fused_version_tag_is_left_out_of_the_message(tmp_path: Path) -> None:
    log = banner(COM2212_BOX, "simpleFoam -parallel", 4) + fused_rank_errors(
        "--> FOAM FATAL ERROR: (openfoam-(openfoam-2212)"
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_message == f"FOAM FATAL ERROR: {missing_field(2)}"
    assert (record.status, record.error_category) == ("failed", "input_file")


LIB = "/opt/openfoam-v2212/platforms/linux64GccDPInt32Opt/lib/libOpenFOAM.so"
INTERLEAVED_FPE = f"""\
[8] #0  Foam::error::printStack(Foam::Ostream&) in {LIB}
[13] #0  Foam::error::printStack(Foam::Ostream&) in {LIB}
[21] #0  Foam::error::printStack(Foam::Ostream&) in {LIB}
[8] #1  Foam::sigFpe::sigHandler(int) in {LIB}
[13] #1  Foam::sigFpe::sigHandler(int) in {LIB}
[21] #1  Foam::sigFpe::sigHandler(int) in {LIB}
[13] #2  ? in /lib64/libpthread.so.0
[8] #2  ? in /lib64/libpthread.so.0
[21] #2  ? in /lib64/libpthread.so.0
[13] #3  Foam::lduMatrix::sumMagOffDiag(Foam::Field<double>&) const in {LIB}
[8] #3  Foam::GAMGSolver::scale(Foam::Field<double>&, Foam::Field<double>&, Foam::lduMatrix const&) const in {LIB}
[21] #3  Foam::GAMGSolver::scale(Foam::Field<double>&, Foam::Field<double>&, Foam::lduMatrix const&) const in {LIB}
[8] #4  Foam::GAMGSolver::Vcycle(Foam::PtrList<Foam::Field<double> > const&) const in {LIB}
[13] #4  Foam::GAMGSolver::solve(Foam::Field<double>&) const in {LIB}
srun: error: kraken-node0042: tasks 8,13,21: Floating point exception (core dumped)
"""


def test_interleaved_fpe_stacks_name_the_first_ranks_first_foam_frame(tmp_path: Path) -> None:
    log = banner(COM2212_BOX, "simpleFoam -parallel", 32) + time_loop(11) + INTERLEAVED_FPE
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == "Floating point exception (sigFpe) in Foam::GAMGSolver::scale"
    assert (record.n_procs, record.iterations_done) == (32, 11)


# ---------------------------------------------------------------- 3. MPI and scheduler verdicts

MPI_ABORT_BOX = """\
--------------------------------------------------------------------------
MPI_ABORT was invoked on rank 4 in communicator MPI_COMM_WORLD
with errorcode 1.

NOTE: invoking MPI_ABORT causes Open MPI to kill all MPI processes.
You may or may not see output from other processes, depending on
exactly when Open MPI kills them.
--------------------------------------------------------------------------
"""
UNDEFINED_KEYWORD = 'keyword nOuterCorrectors is undefined in dictionary "/scratch/jdupont/pitzDaily/system/fvSolution/PIMPLE"'
IO_ERROR_OF_RANK_4 = ranked(
    4,
    f"""
--> FOAM FATAL IO ERROR: (openfoam-2312)
{UNDEFINED_KEYWORD}

file: /scratch/jdupont/pitzDaily/system/fvSolution/PIMPLE from line 31 to line 36.

    From const Foam::entry& Foam::dictionary::lookupEntry(const Foam::word&, Foam::keyType::option) const
    in file db/dictionary/dictionary.C at line 370.

FOAM parallel run exiting
""",
)


def test_an_mpi_abort_box_printed_before_the_fatal_error_yields_to_it(tmp_path: Path) -> None:
    log = banner(COM_BOX, "pimpleFoam -parallel", 8) + MPI_ABORT_BOX + IO_ERROR_OF_RANK_4
    case = with_application(make_case(tmp_path, **{"log.pimpleFoam": log}), "pimpleFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("failed", "input_file")
    assert record.error_message == f"FOAM FATAL IO ERROR: {UNDEFINED_KEYWORD}"


STEP_CANCELLED = (
    "slurmstepd: error: *** STEP 1234.0 ON node12 CANCELLED AT 2024-03-12T14:03:01 ***\n"
)
SIGSEGV_STACK = """\
#0  Foam::error::printStack(Foam::Ostream&) at ??:?
#1  Foam::sigSegv::sigHandler(int) at ??:?
#2  ? in /lib64/libc.so.6
#3  Foam::fvMatrix<double>::solveSegregated(Foam::dictionary const&) at ??:?
#4  Foam::fvMatrix<double>::solve() at ??:?
"""


def test_a_step_cancelled_in_the_solver_log_after_an_fpe_is_the_fpe(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 32) + time_loop(11) + INTERLEAVED_FPE
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log + STEP_CANCELLED}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert "sigFpe" in record.error_message


def test_a_step_cancelled_in_the_slurm_output_after_an_fpe_is_the_fpe(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 32) + time_loop(11) + INTERLEAVED_FPE
    case = make_case(tmp_path, **{"log.simpleFoam": log, "slurm-1234.out": STEP_CANCELLED})
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert "sigFpe" in record.error_message


def test_a_step_cancelled_in_the_slurm_output_after_a_segfault_is_the_segfault(
    tmp_path: Path,
) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(3) + ranked(1, SIGSEGV_STACK)
    case = make_case(tmp_path, **{"log.simpleFoam": log, "slurm-1234.out": STEP_CANCELLED})
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("failed", "segfault")


def test_a_step_cancelled_with_nothing_else_printed_is_a_cancelled_run(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(3)
    case = make_case(tmp_path, **{"log.simpleFoam": log, "slurm-1234.out": STEP_CANCELLED})
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("killed", "cancelled")


def test_a_job_cancelled_due_to_time_limit_in_the_solver_log_kills_the_run(
    tmp_path: Path,
) -> None:
    kill = "slurmstepd: error: *** JOB 1234 ON node12 CANCELLED AT 2024-03-12T16:02:33 DUE TO TIME LIMIT ***\n"
    log = (
        banner(COM_BOX, "pimpleFoam -parallel", 8)
        + time_loop(40, 1e-5)
        + "Time = 0.00041\n\n"
        + kill
    )
    case = with_application(make_case(tmp_path, **{"log.pimpleFoam": log}), "pimpleFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("killed", "time_limit")
    assert record.ended_at == datetime(2024, 3, 12, 16, 2, 33)
    assert record.timing_source == "scheduler"
    assert record.wall_time_s == 7200
    assert record.iterations_done == 41


# ---------------------------------------------------------------- 4. wrapped error messages

HEADER_READ_ERROR = """\
--> FOAM FATAL IO ERROR: (openfoam-2312)
problem while reading header for object controlDict
when re-reading the modified dictionary during the run

file: system/controlDict at line 42.

    From bool Foam::regIOobject::readHeaderOk(Foam::IOstreamOption::streamFormat, const Foam::word&)
    in file db/regIOobject/regIOobjectRead.C at line 257.

FOAM exiting
"""


def test_a_message_wrapped_onto_two_lines_is_joined_without_the_version_tag(
    tmp_path: Path,
) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + time_loop(4) + HEADER_READ_ERROR
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_message == (
        "FOAM FATAL IO ERROR: problem while reading header for object controlDict "
        "when re-reading the modified dictionary during the run"
    )
    assert (record.status, record.error_category) == ("failed", "input_file")


def test_a_message_stops_at_the_blank_line_before_a_list_of_valid_choices(
    tmp_path: Path,
) -> None:
    fatal = (
        "--> FOAM FATAL IO ERROR: (openfoam-2012)\n"
        "Unknown patchField type swirlInletX for patch inlet\n\n"
        "Valid patchField types :\n\n"
        "4\n(\nfixedValue\nswirlFlowRateInletVelocity\nzeroGradient\ninletOutlet\n)\n\n\n"
        "file: /scratch/jdupont/pitzDaily/0/U.boundaryField.inlet from line 26 to line 28.\n\n"
        "    From static Foam::tmp<Foam::fvPatchField<Type> > Foam::fvPatchField<Type>::New(...)\n"
        "    in file fields/fvPatchFields/fvPatchField/fvPatchFieldNew.C at line 117.\n\n"
        "FOAM exiting\n"
    )
    log = banner(com_box("2012"), "simpleFoam", 1) + fatal
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_message == (
        "FOAM FATAL IO ERROR: Unknown patchField type swirlInletX for patch inlet"
    )
    assert (record.status, record.error_category) == ("failed", "input_file")


def test_a_from_line_right_after_the_message_is_not_part_of_it(tmp_path: Path) -> None:
    fatal = (
        "--> FOAM FATAL ERROR: (openfoam-2312)\n"
        "Unknown solver type smoothSolverX\n"
        "    From Foam::autoPtr<Foam::lduMatrix::solver> Foam::lduMatrix::solver::New(...)\n"
        "    in file matrices/lduMatrix/lduMatrix/lduMatrixSolver.C at line 114.\n\n"
        "FOAM exiting\n"
    )
    log = banner(COM_BOX, "simpleFoam", 1) + fatal
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_message == "FOAM FATAL ERROR: Unknown solver type smoothSolverX"


def test_an_in_file_line_right_after_the_message_is_not_part_of_it(tmp_path: Path) -> None:
    fatal = (
        "--> FOAM FATAL ERROR: (openfoam-2312)\n"
        "Unknown solver type smoothSolverX\n"
        "    in file matrices/lduMatrix/lduMatrix/lduMatrixSolver.C at line 114.\n\n"
        "FOAM exiting\n"
    )
    log = banner(COM_BOX, "simpleFoam", 1) + fatal
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_message == "FOAM FATAL ERROR: Unknown solver type smoothSolverX"


def test_a_long_wrapped_message_keeps_at_most_four_lines(tmp_path: Path) -> None:
    fatal = (
        "--> FOAM FATAL ERROR: (openfoam-2312)\n"
        "Patch inlet has 40 faces\n"
        "but the mapped patch outlet of region fluid has 38 faces\n"
        "both patches must have the same number of faces\n"
        "check the geometry of the sampled region\n"
        "and the offset given in constant/polyMesh/boundary\n\n"
        "    From void Foam::mappedPatchBase::calcMapping() const\n"
        "    in file mappedPatches/mappedPolyPatch/mappedPatchBase.C at line 1075.\n\n"
        "FOAM exiting\n"
    )
    log = banner(COM_BOX, "simpleFoam", 1) + fatal
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert record.error_message == (
        "FOAM FATAL ERROR: Patch inlet has 40 faces "
        "but the mapped patch outlet of region fluid has 38 faces "
        "both patches must have the same number of faces "
        "check the geometry of the sampled region"
    )


# ---------------------------------------------------------------- 5. crash layouts

CLASSIC_FPE = """\
#0  Foam::error::printStack(Foam::Ostream&) at ??:?
#1  Foam::sigFpe::sigHandler(int) at ??:?
#2  ? in /lib64/libc.so.6
#3  Foam::PBiCGStab::solve(Foam::Field<double>&, Foam::Field<double> const&, unsigned char) const at ??:?
#4  Foam::fvMatrix<double>::solveSegregated(Foam::dictionary const&) at ??:?
#5  Foam::fvMatrix<double>::solve() at ??:?
#6  ? in /opt/openfoam8/platforms/linux64GccDPInt32Opt/bin/simpleFoam
#7  __libc_start_main in /lib64/libc.so.6
Floating point exception (core dumped)
"""
MAX_ITERATIONS = "Maximum number of iterations exceeded: 100 when starting from T0:1650.4 old T:1702.9 new T:2650.1 f:2.1e+06 p:101325 tol:0.165"
NEWER_LAYOUT_ABORT = f"""\
--> FOAM FATAL ERROR: (openfoam-2312)
{MAX_ITERATIONS}

    From Foam::scalar Foam::species::thermo<Thermo, Type>::T(...) const
    in file lnInclude/thermoI.H at line 76.

FOAM aborting

[stack trace]
=============
#1  Foam::error::simpleExit(int, bool) in /usr/lib/openfoam/openfoam2312/platforms/linux64GccDPInt32Opt/lib/libOpenFOAM.so
#2  ? in /usr/lib/openfoam/openfoam2312/platforms/linux64GccDPInt32Opt/lib/libreactionThermophysicalModels.so
#3  ? in /usr/lib/openfoam/openfoam2312/platforms/linux64GccDPInt32Opt/bin/reactingFoam
#4  __libc_start_main in /lib/x86_64-linux-gnu/libc.so.6
=============
"""
NEWER_LAYOUT_FPE = """\
[stack trace]
=============
#1  Foam::sigFpe::sigHandler(int) in /usr/lib/openfoam/openfoam2312/platforms/linux64GccDPInt32Opt/lib/libOpenFOAM.so
#2  ? in /lib/x86_64-linux-gnu/libc.so.6
#3  Foam::smoothSolver::solve(Foam::Field<double>&, Foam::Field<double> const&, unsigned char) const in /usr/lib/openfoam/openfoam2312/platforms/linux64GccDPInt32Opt/lib/libOpenFOAM.so
#4  Foam::fvMatrix<double>::solveSegregated(Foam::dictionary const&) in /usr/lib/openfoam/openfoam2312/platforms/linux64GccDPInt32Opt/lib/libfiniteVolume.so
=============
Floating point exception (core dumped)
"""


def test_a_classic_fpe_stack_names_the_first_foam_frame_after_the_handler(tmp_path: Path) -> None:
    log = banner(org_box("8", "8-1c9b5879390b"), "simpleFoam", 1) + time_loop(12) + CLASSIC_FPE
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == "Floating point exception (sigFpe) in Foam::PBiCGStab::solve"
    assert (record.stage_code, record.iterations_done) == (SOLVER_LOOP.code, 12)


def test_a_fatal_error_followed_by_a_newer_stack_trace_block_keeps_its_message(
    tmp_path: Path,
) -> None:
    log = banner(COM_BOX, "reactingFoam", 1) + time_loop(2) + NEWER_LAYOUT_ABORT
    case = with_application(make_case(tmp_path, **{"log.reactingFoam": log}), "reactingFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == f"FOAM FATAL ERROR: {MAX_ITERATIONS}"


def test_an_fpe_in_a_newer_stack_trace_block_names_its_first_foam_frame(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + time_loop(5) + NEWER_LAYOUT_FPE
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == "Floating point exception (sigFpe) in Foam::smoothSolver::solve"


def test_the_shells_floating_point_exception_alone_is_numerical_instability(
    tmp_path: Path,
) -> None:
    log = (
        banner(COM_BOX, "pimpleFoam", 1) + time_loop(8) + "Floating point exception (core dumped)\n"
    )
    case = with_application(make_case(tmp_path, **{"log.pimpleFoam": log}), "pimpleFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == "Floating point exception (core dumped)"


def test_a_sigsegv_handler_stack_is_a_segfault(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + time_loop(3) + SIGSEGV_STACK
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "segfault")
    assert "sigSegv" in record.error_message


def test_the_shells_segmentation_fault_line_is_a_segfault(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + time_loop(3) + "Segmentation fault (core dumped)\n"
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "segfault")
    assert record.error_message == "Segmentation fault (core dumped)"


# ---------------------------------------------------------------- 6. foreign errors in a solver log

LOST_ATOMS = "ERROR: Lost atoms: original 4000 current 3998 (src/thermo.cpp:481)"
COUPLED_STEP = """\
 - evolve()
Starting up LIGGGHTS
Executing command: 'run 100 '
  Step Atoms KinEng rke Volume
   12300     4000 1.2e-06 0 0.0027
"""
MS_MPI_ABORT = """\

job aborted:
[ranks] message

[0] application aborted
aborting MPI_COMM_WORLD (comm=0x44000000), error 1, comm rank 0

[1-3] terminated

---- error analysis -----

[0] on WIN-CFD07
simpleFoam.exe aborted the job. abort code 1

---- error analysis -----
"""
EXECUTABLE_NOT_FOUND = """\
--------------------------------------------------------------------------
mpirun was unable to find the specified executable file, and therefore
did not launch the job.  This error was first reported for process
rank 0; it may have occurred for other processes as well.

NOTE: A common cause for this error is misspelling a mpirun command
      line parameter option (remember that mpirun interprets the first
      unrecognized command line token as the executable).

Node:       kraken-node0042
Executable: simpleFoma
--------------------------------------------------------------------------
4 total processes failed to start
"""
RANK_SIGNAL_11 = "mpirun noticed that process rank 3 with PID 0 on node node12 exited on signal 11 (Segmentation fault)."


def test_a_coupled_librarys_error_line_is_the_error_message(tmp_path: Path) -> None:
    loop = time_loop(3, 1e-4).replace("\nExecutionTime", f"\n{COUPLED_STEP}ExecutionTime")
    log = (
        banner(ORG_BOX, "cfdemSolverPiso", 1)
        + loop
        + "Time = 0.0004\n\n"
        + COUPLED_STEP
        + LOST_ATOMS
        + "\n"
    )
    case = with_application(make_case(tmp_path, **{"log.cfdemSolverPiso": log}), "cfdemSolverPiso")
    record = parse(case, tmp_path)
    assert record.status == "failed"
    assert record.error_message == LOST_ATOMS
    assert (record.application, record.iterations_done) == ("cfdemSolverPiso", 4)


def test_ms_mpi_job_aborted_is_an_mpi_abort(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(5) + MS_MPI_ABORT
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "mpi_abort")
    assert record.error_message == "job aborted:"


def test_mpirun_unable_to_find_the_executable_is_a_failed_run_without_banner(
    tmp_path: Path,
) -> None:
    record = parse(make_case(tmp_path, **{"log.simpleFoam": EXECUTABLE_NOT_FOUND}), tmp_path)
    assert record.status == "failed"
    assert record.error_message.startswith(
        "mpirun was unable to find the specified executable file"
    )
    assert (record.n_procs, record.iterations_done) == (None, 0)


def test_mpirun_noticing_a_rank_killed_by_signal_11_is_a_segfault(tmp_path: Path) -> None:
    tail = "-" * 74 + "\n" + RANK_SIGNAL_11 + "\n" + "-" * 74 + "\n"
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(6) + tail
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "segfault")
    assert record.error_message == RANK_SIGNAL_11


# ---------------------------------------------------------------- 7. harmless lines that look like errors

CONTINUITY = (
    "time step continuity errors : sum local = 1e-09, global = -2e-11, cumulative = 3e-10\n"
)
TRAP_FPE = "trapFpe: Floating point exception trapping enabled (FOAM_SIGFPE).\n"
SMALL_BOUNDING = "bounding k, min: -1.2e-05 max: 0.8 average: 0.01\n"
FOAM_WARNING = """\
--> FOAM Warning :
    From void Foam::fv::options::checkApplied() const
    in file cfdTools/general/fvOptions/fvOptions.C at line 131.
    Source porosity1 defined for field U but never used
"""
LIBRARY_WARNING = """\
--> FOAM Warning : (openfoam-2312)
    From void* Foam::dlLibraryTable::openLibrary(const Foam::fileName&, bool)
    in file db/dynamicLibrary/dlLibraryTable/dlLibraryTable.C at line 188
    Could not load "libjdupontBCs.so"
libjdupontBCs.so: cannot open shared object file: No such file or directory
"""
HARMLESS = {
    "continuity errors": CONTINUITY,
    "trapFpe": TRAP_FPE,
    "small bounding": SMALL_BOUNDING,
    "FOAM Warning": FOAM_WARNING,
    "library warning": LIBRARY_WARNING,
}
NAN_RESIDUAL = "smoothSolver:  Solving for Ux, Initial residual = nan, Final residual = nan, No Iterations 1000"
ABSURD_BOUNDING = "bounding omega, min: -1e+04 max: 3.3e+19 average: 4.7e+13"


def with_lines(steps: int, lines: str) -> str:
    """A time loop with `lines` printed in the middle of each step."""
    return time_loop(steps).replace("GAMG:", lines + "GAMG:")


def test_harmless_lines_that_look_like_errors_leave_a_success_clean(tmp_path: Path) -> None:
    log = (
        banner(COM_BOX, "simpleFoam", 1)
        + TRAP_FPE
        + LIBRARY_WARNING
        + FOAM_WARNING
        + with_lines(4, CONTINUITY + SMALL_BOUNDING)
        + END
    )
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("success", "none")
    assert (record.error_message, record.error_signature) == (None, None)
    assert record.iterations_done == 4


@pytest.mark.parametrize("lines", HARMLESS.values(), ids=HARMLESS.keys())
def test_a_stopped_log_with_only_harmless_lines_is_truncated(tmp_path: Path, lines: str) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + with_lines(3, lines) + "Time = 4\n\n" + lines
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category, record.error_message) == (
        "truncated",
        "truncated",
        None,
    )
    assert record.iterations_done == 4


def test_a_stopped_log_with_a_nan_residual_failed_of_numerical_instability(
    tmp_path: Path,
) -> None:
    diverging = f"Time = 4\n\n{NAN_RESIDUAL}\n{NAN_RESIDUAL.replace('Ux', 'Uy')}\n"
    log = banner(COM_BOX, "simpleFoam", 1) + with_lines(3, SMALL_BOUNDING) + diverging
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == NAN_RESIDUAL
    assert (record.stage_code, record.iterations_done) == (SOLVER_LOOP.code, 4)


def test_a_stopped_log_with_an_absurd_bounding_failed_of_numerical_instability(
    tmp_path: Path,
) -> None:
    growing = "bounding omega, min: -0.5 max: 1200 average: 30\n"
    diverging = f"Time = 4\n\n{ABSURD_BOUNDING}\n"
    log = banner(COM_BOX, "simpleFoam", 1) + with_lines(3, growing) + diverging
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.error_message == ABSURD_BOUNDING


def test_a_run_that_ends_wins_over_a_nan_residual_printed_before(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam", 1) + with_lines(3, NAN_RESIDUAL + "\n") + END
    record = parse(make_case(tmp_path, **{"log.simpleFoam": log}), tmp_path)
    assert (record.status, record.error_category, record.error_message) == ("success", "none", None)


# ---------------------------------------------------------------- 8. log names and places

SOLVER_LOG_NAMES = (
    "log.simpleFoam",
    "log.simpleFoam_run2",
    "simpleFoam.log",
    "logs/simpleFoam.log",
    "log/run_2024-03-12.log",
    "output/pitzDaily.log",
    "log",
    "log.parallel",
)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", SOLVER_LOG_NAMES)
def test_a_solver_log_is_found_by_any_usual_name_and_place(
    tmp_path: Path, name: str, compressed: bool
) -> None:
    text = banner(COM_BOX, "simpleFoam", 1) + time_loop(5) + END
    file_name = name + ".gz" if compressed else name
    content: str | bytes = gzip.compress(text.encode()) if compressed else text
    record = parse(make_case(tmp_path, **{file_name: content}), tmp_path)
    assert (record.status, record.application, record.iterations_done) == (
        "success",
        "simpleFoam",
        5,
    )
    assert record.log_path == f"{CASE_DIR}/{file_name}"


BLOCK_MESH = banner(ORG_BOX, "blockMesh", 1) + "  nPoints: 1331\n  nCells: 1000\n" + END
CHECK_MESH = (
    banner(ORG_BOX, "checkMesh", 1)
    + "    points:           1331\n    cells:            1000\n\nMesh OK.\n\n"
    + END
)
JOB_OUT = """\
/scratch/jdupont/cases/cylinder
Tue Mar 12 14:02:30 CDT 2024
Running blockMesh on /scratch/jdupont/cases/cylinder
Running checkMesh on /scratch/jdupont/cases/cylinder
Running icoFoam on /scratch/jdupont/cases/cylinder
"""
JOB_ERR_TIME_LIMIT = """\

Currently Loaded Modules:
  1) gcc/12.2.0   2) openmpi/4.1.5   3) openfoam/11

slurmstepd: error: *** JOB 12345 ON c401-102 CANCELLED AT 2024-03-12T16:02:33 DUE TO TIME LIMIT ***
"""


def test_a_time_limit_in_job_e_without_solver_log_kills_the_run(tmp_path: Path) -> None:
    files = {
        "log.blockMesh": BLOCK_MESH,
        "log.checkMesh": CHECK_MESH,
        "job.o12345": JOB_OUT,
        "job.e12345": JOB_ERR_TIME_LIMIT,
    }
    case = with_application(make_case(tmp_path, "cylinder", **files), "icoFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("killed", "time_limit")
    assert record.log_path == "kraken/jdupont/cases/cylinder/job.e12345"
    assert record.application == "icoFoam"
    assert record.ended_at == datetime(2024, 3, 12, 16, 2, 33)


def test_a_job_o_saying_running_the_solver_is_not_a_solver_log(tmp_path: Path) -> None:
    files = {"log.blockMesh": BLOCK_MESH, "log.checkMesh": CHECK_MESH, "job.o12345": JOB_OUT}
    case = with_application(make_case(tmp_path, "cylinder", **files), "icoFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category, record.log_path) == ("not_started", None, None)


DECOMPOSE_FATAL_MESSAGE = "Wrong number of processor divisions in geomDecomp:"
DECOMPOSE_FAILED = (
    banner(COM_BOX, "decomposePar -force", 1)
    + "Calculating distribution of cells\nSelecting decompositionMethod simple [4]\n\n"
    + "--> FOAM FATAL ERROR: (openfoam-2312)\n"
    + f"{DECOMPOSE_FATAL_MESSAGE}\nNumber of domains    : 4\nWanted decomposition : (2 3 1)\n\n"
    + "    From void Foam::geomDecomp::checkDecompositionDirections(const Foam::Vector<int>&) const\n"
    + "    in file geomDecomp/geomDecomp.C at line 143.\n\nFOAM exiting\n\n"
)
CHECKMESH_USAGE = """\

Usage: checkmesh [OPTIONS]
options:
  -allGeometry      Include bounding box checks
  -allTopology      Include extra topology checks
  -case <dir>       Specify case directory to use (instead of the cwd)
  -parallel         Run in parallel

Using: OpenFOAM-v2312 (2312) - visit www.openfoam.com
"""


def test_failed_and_misnamed_utility_logs_beside_a_finished_solver_do_not_decide(
    tmp_path: Path,
) -> None:
    files = {
        "log.blockMesh": BLOCK_MESH,
        "log.checkmesh": CHECKMESH_USAGE,
        "log.decomposePar": DECOMPOSE_FAILED,
        "log.simpleFoam": banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(6) + END,
    }
    record = parse(make_case(tmp_path, **files), tmp_path)
    assert (record.status, record.error_category, record.error_message) == ("success", "none", None)
    assert record.log_path == f"{CASE_DIR}/log.simpleFoam"
    assert (record.n_procs, record.iterations_done) == (4, 6)


def test_a_failed_decomposition_without_solver_log_is_the_failure(tmp_path: Path) -> None:
    files = {"log.blockMesh": BLOCK_MESH, "log.decomposePar": DECOMPOSE_FAILED}
    record = parse(make_case(tmp_path, **files), tmp_path)
    assert record.status == "failed"
    assert record.error_message.startswith(f"FOAM FATAL ERROR: {DECOMPOSE_FATAL_MESSAGE}")
    assert (record.stage_code, record.stage) == (DECOMPOSITION.code, DECOMPOSITION.label)
    assert record.log_path == f"{CASE_DIR}/log.decomposePar"


def test_a_failed_decomposition_with_an_empty_solver_log_is_the_failure(tmp_path: Path) -> None:
    files = {
        "log.blockMesh": BLOCK_MESH,
        "log.decomposePar": DECOMPOSE_FAILED,
        "log.simpleFoam": "",
    }
    record = parse(make_case(tmp_path, **files), tmp_path)
    assert record.status == "failed"
    assert record.error_message.startswith(f"FOAM FATAL ERROR: {DECOMPOSE_FATAL_MESSAGE}")
    assert (record.stage_code, record.stage) == (DECOMPOSITION.code, DECOMPOSITION.label)
    assert record.log_path == f"{CASE_DIR}/log.decomposePar"


def org24_utility(command: str, body: str) -> str:
    """An OpenFOAM 2.4.x utility's log: it ends with `End.`, not `End`."""
    return banner(ORG24_BOX, command, 1) + body + "End.\n\n"


def as_row(record: RunRecord) -> RunRecord:
    """The record as the warehouse cleans it into a row (its partition given, as the crawl
    does)."""
    cleaned, reason = clean_record(record.replace(cluster="kraken", user="jdupont"))
    assert cleaned is not None, reason
    return cleaned


PIPELINE_ONLY = {
    "log.blockMesh": org24_utility("blockMesh", "  nPoints: 5292\n  nCells: 4800\n"),
    "log.canteraToFoam": org24_utility("canteraToFoam", "Reading chemistry tables\n"),
    "log.decomposePar": org24_utility("decomposePar", "Processor 0\n    Number of cells = 1200\n"),
}


def test_converter_and_post_processing_logs_without_solver_log_are_not_started(
    tmp_path: Path,
) -> None:
    """The solver's log was not copied; post-processing read its results, so it ran: not
    started as the archive holds it, its steps and CPU hours unknown rather than none."""
    post = org24_utility("flameletFoamPost -latestTime", "Time = 0.25\n")
    files = {**PIPELINE_ONLY, "log.flameletFoamPost": post}
    case = with_application(make_case(tmp_path, **files), "flameletFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.error_category) == ("not_started", None)
    assert (record.stage_code, record.n_cells) == (DECOMPOSITION.code, 4800)
    assert record.iterations_done is None
    assert any("flameletFoamPost read its results" in w for w in record.parse_warnings)
    assert (as_row(record).iterations_done, as_row(record).cpu_hours) == (None, None)


@pytest.mark.parametrize("post", [{}, {"log.reconstructPar": ""}], ids=["none", "empty"])
def test_pipeline_logs_alone_are_a_run_that_never_started(
    tmp_path: Path, post: dict[str, str]
) -> None:
    """An empty post-processing log (its command redirected, then never run) holds no run,
    so it says nothing of a solver either."""
    case = with_application(make_case(tmp_path, **PIPELINE_ONLY, **post), "flameletFoam")
    record = parse(case, tmp_path)
    assert (record.status, record.iterations_done) == ("not_started", 0)
    assert (as_row(record).iterations_done, as_row(record).cpu_hours) == (0, 0)


# ---------------------------------------------------------------- 9. line endings, bytes, Windows

WINDOWS_MISSING_FILE = 'cannot find file "C:\\Users\\jdupont\\cases\\pitzDaily\\0\\nut"'


def windows_log() -> bytes:
    fatal = f"--> FOAM FATAL ERROR: (openfoam-2312)\n{WINDOWS_MISSING_FILE}\n\n{READ_STREAM_FROM}\nFOAM exiting\n"
    text = banner(COM_BOX, "simpleFoam", 1) + time_loop(2) + fatal
    return text.replace("\n", "\r\n").encode()


def test_a_crlf_windows_log_gives_a_clean_message_with_its_windows_path(tmp_path: Path) -> None:
    record = parse(make_case(tmp_path, **{"log.simpleFoam": windows_log()}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "input_file")
    assert record.error_message == f"FOAM FATAL ERROR: {WINDOWS_MISSING_FILE}"
    assert (record.started_at, record.iterations_done, record.wall_time_s) == (STARTED, 2, 2)


def test_a_windows_path_in_a_message_becomes_a_path_placeholder(tmp_path: Path) -> None:
    record = parse(make_case(tmp_path, **{"log.simpleFoam": windows_log()}), tmp_path)
    assert record.error_signature == 'FOAM FATAL ERROR: cannot find file "<path>"'


def test_bare_carriage_return_progress_lines_do_not_disturb_the_log(tmp_path: Path) -> None:
    rsync = "\r         32.77K   0%    0.00kB/s    0:00:00  \r         12.40M 100%  140.2MB/s    0:00:00 (xfr#1, to-chk=0/1)\n"
    loop = time_loop(4).replace(
        "ExecutionTime", "Writing fields  40%\rWriting fields 100%\nExecutionTime"
    )
    text = "sending incremental file list\nconstant/polyMesh/faces\n" + rsync
    text += banner(COM_BOX, "simpleFoam", 1) + loop + END + rsync
    record = parse(make_case(tmp_path, **{"slurm-5678.out": text}), tmp_path)
    assert (record.status, record.iterations_done, record.error_message) == ("success", 4, None)
    assert record.log_path == f"{CASE_DIR}/slurm-5678.out"


def test_invalid_utf8_bytes_in_a_message_keep_the_run_readable(tmp_path: Path) -> None:
    fatal = (
        b'--> FOAM FATAL ERROR: (openfoam-2312)\ncannot find file "/scratch/ren\xe9/pitzDaily/0/U"\n\n'
        + READ_STREAM_FROM.encode()
        + b"\nFOAM exiting\n"
    )
    head = banner(COM_BOX, "simpleFoam", 1).replace("/scratch/jdupont", "/scratch/ren\udce9")
    raw = head.encode("utf-8", "surrogateescape") + time_loop(3).encode() + b"\xff\xfe\n" + fatal
    record = parse(make_case(tmp_path, **{"log.simpleFoam": raw}), tmp_path)
    assert (record.status, record.error_category) == ("failed", "input_file")
    assert record.error_message.startswith('FOAM FATAL ERROR: cannot find file "/scratch/ren')
    assert record.error_message.endswith('/pitzDaily/0/U"')
    assert (record.iterations_done, record.started_at) == (3, STARTED)


# ---------------------------------------------------------------- 10. dictionaries edited after the run


def test_the_solver_that_ran_decides_when_control_dict_names_another(tmp_path: Path) -> None:
    log = banner(COM_BOX, "pimpleFoam", 1) + time_loop(5, 0.001) + CLASSIC_FPE
    files = {"log.blockMesh": BLOCK_MESH, "log.pimpleFoam": log}
    record = parse(make_case(tmp_path, **files), tmp_path)  # controlDict: simpleFoam
    assert record.application == "pimpleFoam"
    assert (record.status, record.error_category) == ("failed", "numerical_instability")
    assert record.log_path == f"{CASE_DIR}/log.pimpleFoam"
    assert record.iterations_done == 5


def test_nprocs_printed_wins_over_an_edited_decompose_par_dict(tmp_path: Path) -> None:
    log = banner(COM_BOX, "simpleFoam -parallel", 4) + time_loop(3) + END
    case = make_case(tmp_path, **{"log.simpleFoam": log})
    write(case / "system" / "decomposeParDict", "numberOfSubdomains 8;\nmethod scotch;\n")
    record = parse(case, tmp_path)
    assert record.n_procs == 4
    assert any(
        "decomposeParDict" in warning and "8" in warning and "4" in warning
        for warning in record.parse_warnings
    ), record.parse_warnings


# ---------------------------------------------------------------- 11. times


def test_a_failed_runs_log_copied_months_later_gives_no_duration(tmp_path: Path) -> None:
    log = started_on(banner(COM_BOX, "simpleFoam", 1), "Oct 02 2023") + HEADER_READ_ERROR
    case = make_case(tmp_path, **{"log.simpleFoam": log})  # mtime: Feb 2024
    record = bound_file_times(parse(case, tmp_path))
    assert record.status == "failed"
    assert (record.ended_at, record.wall_time_s, record.cpu_hours) == (None, None, None)
    assert record.timing_source is None
    assert any("longer than any job" in warning for warning in record.parse_warnings)


def test_a_failed_run_with_clock_times_ends_at_its_last_clock_time(tmp_path: Path) -> None:
    log = started_on(banner(COM_BOX, "simpleFoam", 1), "Oct 02 2023") + time_loop(7) + CLASSIC_FPE
    case = make_case(tmp_path, **{"log.simpleFoam": log})  # mtime: months later, a copy's
    record = bound_file_times(parse(case, tmp_path))
    assert record.status == "failed"
    assert record.wall_time_s == 7
    assert record.ended_at == datetime(2023, 10, 2, 14, 2, 40)
    assert record.timing_source == "log"
    assert record.cpu_hours == pytest.approx(1.75 / 3600)


def test_a_success_ends_at_its_last_clock_time(tmp_path: Path) -> None:
    log = started_on(banner(COM_BOX, "simpleFoam", 1), "Oct 02 2023") + time_loop(9) + END
    case = make_case(tmp_path, **{"log.simpleFoam": log})
    record = bound_file_times(parse(case, tmp_path))
    assert (record.status, record.wall_time_s, record.timing_source) == ("success", 9, "log")
    assert record.ended_at == datetime(2023, 10, 2, 14, 2, 42)
    assert record.started_at == datetime(2023, 10, 2, 14, 2, 33)
