"""The ways real OpenFOAM logs are messier than the clean demo (issue #14), as a table.

Real logs are messier than a clean pipeline: launchers fail before any banner, every MPI
rank prints its error at once, Slurm tears a crashed step down, users rename, move and
compress logs, edit the dictionaries afterwards. Each such mess is a `Phenomenon` of
`PHENOMENA`, given to a share of the cases it can happen to (`choose_phenomena`), and
rendered by a small function named after it (openfoam_mess.py); its `rule` says what the
truth reports. Why a table: tests read it to check each phenomenon appears and keeps or
changes the truth as its rule says; `phenomena=()` writes the clean archive.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from runcrawler_assets.demo.openfoam_cases import (
    CRASH_OUTCOMES,
    FATAL_OUTCOMES,
    SOLVER_OUTCOMES,
    OpenFoamCase,
)

Eligible = Callable[[OpenFoamCase, Collection[str]], bool]


@dataclass(frozen=True)
class Phenomenon:
    """One way real logs are messier than the clean demo, and what the truth says about it.

    `share` is the chance that a case it can happen to (`eligible`, which may look at
    the phenomena chosen before it in `PHENOMENA`) gets it. `keeps_truth`: the truth is
    exactly that of the same case without it.
    """

    name: str
    item: int  # the item of issue #14
    share: float
    eligible: Eligible
    keeps_truth: bool
    rule: str


def _parallel_solver(case: OpenFoamCase, chosen: Collection[str]) -> bool:
    return case.n_procs > 1 and case.outcome in SOLVER_OUTCOMES


def _no_launcher_failure(chosen: Collection[str]) -> bool:
    return not any(name.startswith("launcher_") for name in chosen)


def _solver_banner(case: OpenFoamCase, chosen: Collection[str]) -> bool:
    """The solver's log opens with a banner."""
    return case.outcome in SOLVER_OUTCOMES and _no_launcher_failure(chosen)


def _every_rank_can_fail(case: OpenFoamCase, chosen: Collection[str]) -> bool:
    return (
        case.outcome in FATAL_OUTCOMES
        and case.n_procs > 1
        and _no_launcher_failure(chosen)
        and "serial_copies" not in chosen
    )


def _fpe(case: OpenFoamCase, chosen: Collection[str]) -> bool:
    return case.outcome == "floating_point" and _no_launcher_failure(chosen)


def _none_of(chosen: Collection[str], names: Iterable[str]) -> bool:
    """None of these mutually exclusive variants was chosen yet."""
    return not any(name in chosen for name in names)


_NAMES = ("name_app_dot_log", "name_suffixed", "name_logs_folder", "name_single_log")
_CRASHES = ("crash_stack_trace_header", "crash_shell_line_only", "crash_sigsegv")

PHENOMENA: tuple[Phenomenon, ...] = (
    Phenomenon(
        "launcher_missing_executable", 2, 0.06, _parallel_solver, False,
        "no banner, mpirun's `unable to find the specified executable` box: failed, unknown, "
        "that line; n_procs, started_at, host NULL; version from the meshing logs' banners",
    ),
    Phenomenon(
        "launcher_singleton_processes", 2, 0.05,
        lambda c, chosen: _parallel_solver(c, chosen) and _no_launcher_failure(chosen), False,
        "no banner, N singleton processes each print `attempt to run parallel on 1 processor`: "
        "failed, unknown, `FOAM FATAL ERROR: <that line>`; as above otherwise",
    ),
    Phenomenon(
        "serial_copies", 3, 0.12,
        lambda c, chosen: c.n_procs > 1
        and c.outcome in {"none", "truncated", "running", "time_limit", *FATAL_OUTCOMES}
        and _no_launcher_failure(chosen),
        False,
        "`mpirun -np K solver` without -parallel: K banners, every `Time =` K times, K `End`: "
        "n_procs 1, the steps and times of one copy (the last to print), its status",
    ),
    Phenomenon(
        "ranks_interleaved", 4, 0.45, _every_rank_can_fail, False,
        "every rank prints its FATAL block, `[N] `-prefixed and interleaved (`[2] [3] `, "
        "`(openfoam-(openfoam-2312)`): the message of the first header's own rank",
    ),
    Phenomenon(
        "mpi_abort_first", 5, 0.35, _every_rank_can_fail, True,
        "the MPI_ABORT box before the FATAL block, Open MPI help lines after: the FOAM error",
    ),
    Phenomenon(
        "step_cancelled_after_crash", 6, 0.15,
        lambda c, chosen: c.outcome in CRASH_OUTCOMES and _no_launcher_failure(chosen), True,
        "`*** STEP <id>.0 ON <node> CANCELLED AT ... ***` after the crash: the crash decides",
    ),
    Phenomenon(
        "wrapped_message", 7, 0.2,
        lambda c, chosen: c.outcome in (FATAL_OUTCOMES | {"meshing"})
        and _no_launcher_failure(chosen),
        True,
        "the message wrapped onto 2-3 lines, `From function` / `in file` / `file:` context: "
        "the message lines joined by one space",
    ),
    Phenomenon(
        "crash_stack_trace_header", 8, 0.45, lambda c, chosen: _fpe(c, chosen) and not c.org, True,
        "the newer `[stack trace]` / `=====` layout (several ranks interleaved in parallel): "
        "`Floating point exception (sigFpe) in <first Foam:: frame after the handler>`",
    ),
    Phenomenon(
        "crash_shell_line_only", 8, 0.3,
        lambda c, chosen: _fpe(c, chosen) and _none_of(chosen, _CRASHES), False,
        "no stack printed: the shell's `Floating point exception (core dumped)` (serial) or "
        "mpirun's `... exited on signal 8 (Floating point exception).` (parallel)",
    ),
    Phenomenon(
        "crash_sigsegv", 8, 0.35,
        lambda c, chosen: _fpe(c, chosen) and _none_of(chosen, _CRASHES), False,
        "a segmentation fault instead (classic stack, sigSegv handler): segfault, the shared "
        "runtime verdict, whose message is the line that decided: `#1  Foam::sigSegv::...`",
    ),
    Phenomenon(
        "crash_mid_step", 8, 0.5, _fpe, False,
        "the crash comes inside a step (its `Time =` and some solving printed, no ExecutionTime): "
        "that step counts in iterations_done; times are the last ExecutionTime/ClockTime's",
    ),
    Phenomenon(
        "noise_container_warnings", 1, 0.05, _solver_banner, True,
        "Apptainer and InfiniBand driver warnings before the banner, one set per rank",
    ),
    Phenomenon(
        "noise_openib_box", 1, 0.08,
        lambda c, chosen: _solver_banner(c, chosen) and c.n_procs > 1, True,
        "Open MPI's openib `no relevant network interfaces` box (with a `Host:` line) first",
    ),
    Phenomenon(
        "noise_superseded", 1, 0.1, lambda c, chosen: _solver_banner(c, chosen) and c.org, True,
        "OpenFOAM 13's `<solver> has been superseded ...` notice, once per rank, first",
    ),
    Phenomenon(
        "harmless_lookalikes", 9, 0.08, _solver_banner, True,
        "continuity errors, trapFpe, small bounding lines, FOAM Warning blocks, a library "
        "that `cannot open shared object file`: nothing changes",
    ),
    Phenomenon(
        "name_app_dot_log", 10, 0.035, lambda c, chosen: True, False,
        "every log named `<app>.log`: log_path follows",
    ),
    Phenomenon(
        "name_suffixed", 10, 0.035,
        lambda c, chosen: c.outcome != "not_started" and _none_of(chosen, _NAMES), False,
        "the deciding log named `log.<app>_<suffix>`: log_path follows",
    ),
    Phenomenon(
        "name_logs_folder", 10, 0.035, lambda c, chosen: _none_of(chosen, _NAMES), False,
        "every log moved to `logs/<app>.log`: log_path follows",
    ),
    Phenomenon(
        "name_single_log", 10, 0.035,
        lambda c, chosen: _no_launcher_failure(chosen) and _none_of(chosen, _NAMES), False,
        "the whole pipeline in one file named `log`: log_path follows",
    ),
    Phenomenon(
        "gzip_logs", 10, 0.04, lambda c, chosen: True, False,
        "every log gzip-compressed (`.gz`): log_path follows",
    ),
    Phenomenon(
        "crlf_line_endings", 11, 0.04, lambda c, chosen: c.outcome != "not_started", True,
        "the deciding log written with CRLF line endings",
    ),
    Phenomenon(
        "carriage_return_progress", 11, 0.04, lambda c, chosen: c.outcome != "not_started", True,
        "bare `\\r` progress output in the deciding log",
    ),
    Phenomenon(
        "invalid_utf8", 11, 0.04, lambda c, chosen: c.outcome != "not_started", True,
        "a Latin-1 line and stray bytes (invalid UTF-8) in the deciding log",
    ),
    Phenomenon(
        "windows_paths", 11, 0.15,
        lambda c, chosen: c.outcome in FATAL_OUTCOMES and _no_launcher_failure(chosen), False,
        "the case under `C:\\Users\\...`: the message holds the Windows path as printed",
    ),
    Phenomenon(
        "application_edited", 12, 0.05, _solver_banner, False,
        "controlDict's `application` names another solver than `Exec`: the log decides; "
        "params say what controlDict says",
    ),
    Phenomenon(
        "subdomains_edited", 12, 0.1,
        lambda c, chosen: _solver_banner(c, chosen) and c.n_procs > 1
        and "serial_copies" not in chosen,
        False,
        "decomposeParDict's numberOfSubdomains differs from the banner's nProcs: n_procs is "
        "the banner's; params say what decomposeParDict says",
    ),
)  # fmt: skip
PHENOMENON_NAMES: tuple[str, ...] = tuple(p.name for p in PHENOMENA)


def choose_phenomena(
    case: OpenFoamCase, rng: random.Random, phenomena: Sequence[Phenomenon] = PHENOMENA
) -> frozenset[str]:
    """The phenomena one case gets: one draw per phenomenon, eligible or not, so that
    a change of one phenomenon's eligibility leaves the others' draws alone."""
    chosen: set[str] = set()
    for phenomenon in phenomena:
        draw = rng.random()
        if draw < phenomenon.share and phenomenon.eligible(case, chosen):
            chosen.add(phenomenon.name)
    return frozenset(chosen)
