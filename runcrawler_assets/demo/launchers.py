"""What Slurm and Open MPI print around a solver, whichever solver they launched.

Why apart: the AVBP runs and the OpenFOAM cases are launched by the same schedulers and
MPI runtimes, so their lines (a step cancelled, a rank that died of a signal, the help
summary after an MPI_ABORT) are written once, here, and read the same by both parsers.
"""

from __future__ import annotations

from datetime import datetime

OPEN_MPI_RULE = "-" * 74


def slurm_time(moment: datetime) -> str:
    """A time as Slurm prints it in a `CANCELLED AT` line (to the second)."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}"


def step_cancelled_line(jobid: int, host: str, at: datetime) -> str:
    """Slurm tearing a job step down once a task died: no reason given, so not a verdict."""
    return f"slurmstepd: error: *** STEP {jobid}.0 ON {host} CANCELLED AT {slurm_time(at)} ***"


def step_cancelled(jobid: int, host: str, at: datetime) -> list[str]:
    """What srun and Slurm print once a task crashed: the step is torn down, no reason given.

    The crash printed before it decides (runs-schema.md, the step-cancelled ranking).
    """
    return [
        "srun: Job step aborted: Waiting up to 32 seconds for job step to finish.",
        step_cancelled_line(jobid, host, at),
    ]


def mpirun_noticed(rank: int, pid: int, host: str, signal: str) -> str:
    """mpirun's word that a rank died of `signal` (as printed: `9 (Killed)`)."""
    return (
        f"mpirun noticed that process rank {rank} with PID {pid} on node {host} exited on "
        f"signal {signal}."
    )


def help_aggregate(where: str, n_procs: int) -> list[str]:
    """Open MPI's summary after an MPI_ABORT, tagged `where` (`[host:pid]`): help text,
    never the run's error."""
    return [
        f"{where} {max(1, n_procs - 1)} more processes have sent help message "
        "help-mpi-api.txt / mpi-abort",
        f'{where} Set MCA parameter "orte_base_help_aggregate" to 0 to see all help / '
        "error messages",
    ]
