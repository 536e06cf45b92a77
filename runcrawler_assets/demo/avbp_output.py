"""How AVBP prints: each version's log style, and the lines a run that ends badly prints.

Why apart: the spec says these details vary between versions and sites; the parser must
read them all, so the demo writes them from one table each (`SOLVER_VERSIONS`,
`ERROR_TEMPLATES`) that tests and the truth can name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from runcrawler_assets.solvers.avbp.milestones import MILESTONES

# The index in MILESTONES of the temporal loop, where iterations are printed.
LOOP = MILESTONES.index(next(m for m in MILESTONES if m.code == 300))


@dataclass(frozen=True)
class SolverVersion:
    """How one AVBP version prints its log: the spec says these details vary."""

    version: str
    released: date
    banner: str  # str.format with version
    arrow: str  # the dashes in front of a milestone
    case: str  # of labels and milestone texts: "spec", "lower" or "upper"
    label_width: int
    colon: str
    number_format: str  # of the summary's floats
    iteration_format: str  # str.format with it, t, dt
    prints_cpu_time: bool
    prints_efficiency: bool

    def cased(self, text: str) -> str:
        return (
            text.lower() if self.case == "lower" else text.upper() if self.case == "upper" else text
        )

    def field(self, label: str, value: object) -> str:
        return f" {self.cased(label):<{self.label_width}}{self.colon}{value}\n"

    def milestone(self, index: int) -> str:
        return f" {self.arrow} {self.cased(MILESTONES[index].text)}\n"


SOLVER_VERSIONS: tuple[SolverVersion, ...] = (
    SolverVersion(
        version="7.8.3",
        released=date(2023, 5, 10),
        banner="      AVBP V{version}",
        arrow="-->",
        case="lower",
        label_width=24,
        colon=": ",
        number_format=".5E",
        iteration_format=" Iteration #{it:>8d}  Time [s] = {t:.4E}  dt [s] = {dt:.1E}\n",
        prints_cpu_time=True,
        prints_efficiency=False,
    ),
    SolverVersion(
        version="7.10.2",
        released=date(2024, 1, 22),
        banner="          AVBP  V{version}  (build 2024-01-22, gnu/12.2)",
        arrow="--->",
        case="spec",
        label_width=26,
        colon=" :  ",
        number_format=".4E",
        iteration_format="  Iteration # {it:>9d}   Time [s] = {t: .4E}   dt [s] = {dt: .1E}\n",
        prints_cpu_time=True,
        prints_efficiency=False,
    ),
    SolverVersion(
        version="7.12.0",
        released=date(2024, 2, 14),
        banner="          AVBP  V{version}  (build 2024-02-14, intel/2023.1)",
        arrow="---->",
        case="spec",
        label_width=16,
        colon=" : ",
        number_format=".4E",
        iteration_format="  Iteration # {it:>9d}   Time [s] = {t: .4E}   dt [s] = {dt: .1E}\n",
        prints_cpu_time=True,
        prints_efficiency=True,
    ),
    SolverVersion(
        version="7.13.1",
        released=date(2025, 4, 3),
        banner="        AVBP  V{version}  (build 2025-04-03, intel/2024.2)",
        arrow="----->",
        case="upper",
        label_width=20,
        colon=" : ",
        number_format=".6E",
        iteration_format="   Iteration #  {it:>10d}    Time [s] =  {t:.5E}    dt [s] =  {dt:.2E}\n",
        prints_cpu_time=True,
        prints_efficiency=True,
    ),
    SolverVersion(
        version="7.14.0",
        released=date(2026, 2, 20),
        banner="          AVBP  V{version}  (build 2026-02-20, nvhpc/25.1)",
        arrow="---->",
        case="spec",
        label_width=18,
        colon=": ",
        number_format=".4E",
        iteration_format="  Iteration # {it:>9d}   Time [s] = {t: .4E}   dt [s] = {dt: .1E}\n",
        prints_cpu_time=False,
        prints_efficiency=True,
    ),
)


@dataclass(frozen=True)
class ErrorTemplate:
    """One way a run ends badly: the line printed, its category, where and when."""

    id: str
    category: str
    text: str  # str.format: node, it, temperature, path, db, rank, code, n, jobid, host, at, and
    # the varying words of avbp_endings.VARYING_WORDS (routine, array, patch, state)
    milestones: tuple[int, ...]  # indexes into MILESTONES of the last milestone printed
    stream: str  # "stdout" (the solver's log) or "stderr" (scheduler file, or merged in the log)


ERROR_TEMPLATES: tuple[ErrorTemplate, ...] = (
    ErrorTemplate(
        "numerical.negative_density", "numerical_instability",
        "ERROR : Negative density detected at node {node} (iteration {it})", (LOOP,), "stdout",
    ),
    ErrorTemplate(
        "numerical.negative_pressure", "numerical_instability",
        "ERROR : Negative pressure detected at node {node} (iteration {it})", (LOOP,), "stdout",
    ),
    ErrorTemplate(
        "numerical.negative_temperature", "numerical_instability",
        "ERROR : Negative temperature detected at node {node} (iteration {it})", (LOOP,),
        "stdout",
    ),
    ErrorTemplate(
        "numerical.nan", "numerical_instability",
        "Error : NaN detected in conservative variables", (LOOP,), "stdout",
    ),
    ErrorTemplate(
        "thermo.out_of_bounds", "thermo_table",
        "ERROR : Temperature out of table bounds: T = {temperature} K", (LOOP,), "stdout",
    ),
    ErrorTemplate(
        "mixture.species_count", "mixture",
        "Selected mixture and solution do not contain the same number of species. Check inputs.",
        (3,), "stdout",
    ),
    ErrorTemplate(
        "mixture.unknown_species", "mixture",
        "ERROR : Unknown species number {n} in the mixture database", (0,), "stdout",
    ),
    ErrorTemplate(
        "mixture.undefined", "mixture",
        "Error in mixture database {db}: the requested mixture is not defined", (0,), "stdout",
    ),
    ErrorTemplate("input.cannot_open", "input_file", "ERROR : Cannot open file {path}",
                  (2, 3, 4), "stdout"),
    ErrorTemplate(
        "input.hdf5_read", "input_file",
        "*** Fatal : HDF5 error while reading {path} (status -1)", (3,), "stdout",
    ),
    ErrorTemplate(
        "segfault.forrtl", "segfault",
        "forrtl: severe (174): SIGSEGV, segmentation fault occurred", (5, 6, LOOP), "stderr",
    ),
    ErrorTemplate(
        "segfault.srun", "segfault",
        "srun: error: {host}: task {rank}: Segmentation fault (core dumped)", (5, 6, LOOP),
        "stderr",
    ),
    ErrorTemplate(
        "mpi.abort", "mpi_abort",
        "MPI_ABORT was invoked on rank {rank} in communicator MPI_COMM_WORLD with errorcode 1",
        (1, 7, LOOP), "stderr",
    ),
    ErrorTemplate(
        "unknown.partitioning", "unknown",
        "*** Fatal error in partitioning: {n} cells without a partition", (7,), "stdout",
    ),
    ErrorTemplate(
        "unknown.ghost_numbering", "unknown",
        "ERROR : Inconsistent ghost node numbering on rank {rank}", (7, LOOP), "stdout",
    ),
    # Messages no rule knows whose words vary (a routine, an array, a patch): what the
    # template miner must group, one template each (issue 18).
    ErrorTemplate(
        "unknown.not_allocated", "unknown",
        "ERROR in routine {routine} : array {array} is not allocated", (LOOP,), "stdout",
    ),
    ErrorTemplate(
        "unknown.reference_state", "unknown",
        "Error : boundary patch {patch} has an inconsistent reference state {state}", (7, LOOP),
        "stdout",
    ),
    ErrorTemplate(
        "scheduler.time_limit", "time_limit",
        "slurmstepd: error: *** JOB {jobid} ON {host} CANCELLED AT {at} DUE TO TIME LIMIT ***",
        (LOOP,), "stderr",
    ),
    ErrorTemplate(
        "scheduler.oom_kill", "out_of_memory",
        "slurmstepd: error: Detected {n} oom-kill event(s) in StepId={jobid}.0. Some of your "
        "processes may have been killed by the cgroup out-of-memory handler.",
        (2, 7, LOOP), "stderr",
    ),
    ErrorTemplate(
        "runtime.out_of_memory", "out_of_memory",
        "forrtl: severe (41): insufficient virtual memory", (2, 7), "stderr",
    ),
    ErrorTemplate(
        "scheduler.cancelled", "cancelled",
        "slurmstepd: error: *** JOB {jobid} ON {host} CANCELLED AT {at} ***",
        (0, 3, 7, LOOP, LOOP, LOOP), "stderr",
    ),
    ErrorTemplate(
        "scheduler.cancelled_bare", "cancelled", "*** JOB {jobid} ON {host} CANCELLED AT {at} ***",
        (LOOP,), "stderr",
    ),
)  # fmt: skip
