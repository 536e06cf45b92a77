"""Solver-independent verdicts: categories, their ranking, and error signatures."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from runcrawler_assets.records import CATEGORY_NAMES, Status
from runcrawler_assets.solvers import verdicts
from runcrawler_assets.solvers.verdicts import (
    RUNNING_WINDOW,
    ErrorEvidence,
    classify_message,
    decide_outcome,
    error_signature,
    verdict_of,
)

NOW = datetime(2024, 3, 20, 12, 0, 0)
TIME_LIMIT = (
    "slurmstepd: error: *** JOB 123456 ON node0042 CANCELLED AT 2024-03-12T18:02:33 "
    "DUE TO TIME LIMIT ***"
)
OOM_KILL = (
    "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=123456.0. Some of your "
    "processes may have been killed by the cgroup out-of-memory handler."
)
CANCELLED = "slurmstepd: error: *** JOB 123456 ON node0042 CANCELLED AT 2024-03-12T18:02:33 ***"
SEGFAULT = "forrtl: severe (174): SIGSEGV, segmentation fault occurred"
MPI_ABORT = "MPI_ABORT was invoked on rank 17 in communicator MPI_COMM_WORLD with errorcode 1"
NEGATIVE_DENSITY = "ERROR : Negative density detected at node 123456 (iteration 4521)"


def outcome_of(*lines: str, solver_errors: tuple[str, ...] = ()) -> verdicts.Outcome:
    evidence = ErrorEvidence()
    for line in lines:
        evidence.observe(line, is_solver_error=line in solver_errors)
    return decide_outcome(evidence, has_log=True, end_marker=False, log_mtime=NOW, now=NOW)


@pytest.mark.parametrize(
    ("line", "category"),
    [
        (TIME_LIMIT, "time_limit"),
        (OOM_KILL, "out_of_memory"),
        (CANCELLED, "cancelled"),
        (SEGFAULT, "segfault"),
        ("Segmentation fault (core dumped)", "segfault"),
        ("forrtl: severe (41): insufficient virtual memory", "out_of_memory"),
    ],
)
def test_scheduler_and_runtime_lines_are_verdicts(line: str, category: str) -> None:
    verdict = verdict_of(line)
    assert verdict is not None and verdict[0] == category


@pytest.mark.parametrize(
    ("message", "category"),
    [
        (NEGATIVE_DENSITY, "numerical_instability"),
        ("Error : NaN detected in conservative variables", "numerical_instability"),
        ("ERROR : Temperature out of table bounds: T = 6512.3 K", "thermo_table"),
        (
            "Selected mixture and solution do not contain the same number of species. "
            "Check inputs.",
            "mixture",
        ),
        ("ERROR : Cannot open file ../MESH/burner.mesh.h5", "input_file"),
        ("ERROR : Cannot open file ./mixture_database.dat", "input_file"),
        ("*** Fatal error in subroutine xyz", "unknown"),
    ],
)
def test_solver_messages_are_classified(message: str, category: str) -> None:
    assert classify_message(message) == category


def test_every_category_a_rule_can_give_is_a_known_category() -> None:
    rules = verdicts._SCHEDULER_VERDICTS + verdicts._RUNTIME_VERDICTS + verdicts._MESSAGE_RULES
    assert {category for category, _ in rules} <= set(CATEGORY_NAMES)


def test_a_scheduler_verdict_wins_over_an_earlier_solver_error() -> None:
    outcome = outcome_of(NEGATIVE_DENSITY, TIME_LIMIT, solver_errors=(NEGATIVE_DENSITY,))
    assert (outcome.status, outcome.error_category) == (Status.KILLED, "time_limit")
    assert outcome.error_message == TIME_LIMIT


def test_a_segfault_wins_over_an_earlier_solver_error() -> None:
    outcome = outcome_of(NEGATIVE_DENSITY, SEGFAULT, solver_errors=(NEGATIVE_DENSITY,))
    assert (outcome.status, outcome.error_category) == (Status.FAILED, "segfault")


def test_the_scheduler_kill_wins_over_the_crash_it_causes() -> None:
    assert outcome_of(SEGFAULT, OOM_KILL).error_category == "out_of_memory"


STEP_CANCELLED = (
    "slurmstepd: error: *** STEP 1696563.1 ON cnx010 CANCELLED AT 2026-06-23T16:21:59 ***"
)
JOB_CANCELLED = "slurmstepd: error: *** JOB 1696563 ON cnx010 CANCELLED AT 2026-06-23T16:21:59 ***"


def test_a_step_cancelled_after_a_crash_is_the_crash() -> None:
    outcome = outcome_of(SEGFAULT, STEP_CANCELLED)
    assert (outcome.status, outcome.error_category) == (Status.FAILED, "segfault")


def test_a_step_cancelled_after_a_solver_error_is_that_error() -> None:
    outcome = outcome_of(NEGATIVE_DENSITY, STEP_CANCELLED, solver_errors=(NEGATIVE_DENSITY,))
    assert (outcome.error_category, outcome.error_message) == (
        "numerical_instability",
        NEGATIVE_DENSITY,
    )


def test_a_step_cancelled_after_an_mpi_abort_is_the_abort() -> None:
    outcome = outcome_of(
        "MPI_ABORT was invoked on rank 3 in communicator MPI_COMM_WORLD", STEP_CANCELLED
    )
    assert (outcome.status, outcome.error_category) == (Status.FAILED, "mpi_abort")


def test_a_step_cancelled_with_nothing_else_printed_is_cancelled() -> None:
    assert outcome_of(STEP_CANCELLED).error_category == "cancelled"


def test_a_job_cancelled_by_someone_wins_over_an_earlier_solver_error() -> None:
    outcome = outcome_of(NEGATIVE_DENSITY, JOB_CANCELLED, solver_errors=(NEGATIVE_DENSITY,))
    assert (outcome.status, outcome.error_category) == (Status.KILLED, "cancelled")


def test_the_first_solver_error_line_decides() -> None:
    second = "ERROR : Cannot open file ../x.h5"
    outcome = outcome_of(NEGATIVE_DENSITY, second, solver_errors=(NEGATIVE_DENSITY, second))
    assert outcome.error_category == "numerical_instability"
    assert outcome.error_message == NEGATIVE_DENSITY


def test_mpi_abort_loses_to_a_more_specific_solver_error() -> None:
    outcome = outcome_of(NEGATIVE_DENSITY, MPI_ABORT, solver_errors=(NEGATIVE_DENSITY,))
    assert outcome.error_category == "numerical_instability"


def test_mpi_abort_alone_is_the_category() -> None:
    outcome = outcome_of("  Iteration # 10", MPI_ABORT)
    assert (outcome.status, outcome.error_category) == (Status.FAILED, "mpi_abort")


def test_an_unexplained_solver_error_is_unknown() -> None:
    line = "*** Fatal error in subroutine xyz"
    assert outcome_of(line, solver_errors=(line,)).error_category == "unknown"


def test_the_end_marker_wins_over_every_error() -> None:
    evidence = ErrorEvidence()
    evidence.observe(TIME_LIMIT)
    outcome = decide_outcome(evidence, has_log=True, end_marker=True, log_mtime=NOW, now=NOW)
    assert (outcome.status, outcome.error_category, outcome.error_message) == (
        Status.SUCCESS,
        "none",
        None,
    )


def test_a_silent_recent_log_is_running() -> None:
    outcome = decide_outcome(
        ErrorEvidence(), has_log=True, end_marker=False, log_mtime=NOW - timedelta(hours=1), now=NOW
    )
    assert (outcome.status, outcome.error_category) == (Status.RUNNING, None)


def test_a_silent_old_log_is_truncated() -> None:
    mtime = NOW - RUNNING_WINDOW - timedelta(seconds=1)
    outcome = decide_outcome(
        ErrorEvidence(), has_log=True, end_marker=False, log_mtime=mtime, now=NOW
    )
    assert (outcome.status, outcome.error_category) == (Status.TRUNCATED, "truncated")


def test_no_log_is_not_started() -> None:
    outcome = decide_outcome(
        ErrorEvidence(), has_log=False, end_marker=False, log_mtime=None, now=NOW
    )
    assert (outcome.status, outcome.error_category) == (Status.NOT_STARTED, None)


def test_the_kill_time_is_taken_from_the_scheduler_line() -> None:
    evidence = ErrorEvidence()
    evidence.observe(TIME_LIMIT)
    assert evidence.cancelled_at == datetime(2024, 3, 12, 18, 2, 33)


@pytest.mark.parametrize(
    ("message", "signature"),
    [
        (TIME_LIMIT, "slurmstepd: error: *** JOB <n> ON <node> CANCELLED AT <date> DUE TO TIME "
                     "LIMIT ***"),
        (MPI_ABORT, "MPI_ABORT was invoked on rank <n> in communicator MPI_COMM_WORLD with "
                    "errorcode <n>"),
        ("ERROR : Cannot open file ../MESH/burner.mesh.h5", "ERROR : Cannot open file <path>"),
        ("ERROR : Cannot open file burner.mesh.h5", "ERROR : Cannot open file <path>"),
        ("ERROR : T = 6512.3 K, dt = 1.2E-07", "ERROR : T = <n> K, dt = <n>"),
        ("failure on kraken-node0042 at 0x7ffe12", "failure on <node> at <n>"),
        ("srun: error: irene0107: task 3: Segmentation fault",
         "srun: error: <node>: task <n>: Segmentation fault"),
        ("lost r1i2n3 and topaze2164", "lost <node> and <node>"),
        ("Error   at   2024-03-12 14:02:33  ", "Error at <date>"),
    ],
)  # fmt: skip
def test_signatures_replace_what_varies(message: str, signature: str) -> None:
    assert error_signature(message) == signature


def test_the_same_error_from_two_runs_has_one_signature() -> None:
    other = "ERROR : Negative density detected at node 98 (iteration 12)"
    assert error_signature(NEGATIVE_DENSITY) == error_signature(other)


def test_species_names_are_kept_in_signatures() -> None:
    assert error_signature("Unknown species CH4") != error_signature("Unknown species H2O")
