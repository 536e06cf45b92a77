"""Real logs' mess for the AVBP demo archive: what a parser meets beyond the spec's example.

Real AVBP logs are messier than archive-format.md shows (issue #14). The job script, the
modules, the container runtime, the network drivers and Open MPI print before AVBP's
banner and in the middle of its output; MPI ranks print the same error at once, their
`[rank]` prefixes piled up or one rank's line cut by another's; a long error wraps onto
the next line; a progress bar redraws its line with bare carriage returns; a launch
fails before AVBP prints anything; Slurm cancels the step of a crashed rank; users keep
logs in `logs/`, gzip them under any name, and prepare run.params on Windows.

`draw_mess` decides which of these habits a run shows, from a random stream of its own,
so that the run's other draws (avbp_planning.py), and the runs without mess, stay as they
were. Each other function renders one habit, as the lines a log holds. What a correct
parser reads from them is in their docstrings, and the truth (avbp_truth.py) follows it: noise
and rank prefixes change nothing in the truth; a wrapped error reads as the unwrapped
line; a launch that failed is a failed run with no banner, so no version, host,
stage or duration.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from runcrawler_assets.demo.knobs import DemoKnobs
from runcrawler_assets.demo.launchers import (
    OPEN_MPI_RULE,
    mpirun_noticed,
    step_cancelled_line,
)

LOG_FOLDERS = ("logs", "log", "output")
RANK_STYLES = ("prefixed", "piled", "tagged", "fused")
# The outcomes a launch can fail with before AVBP prints its banner, and how.
LAUNCH_FAILURES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "unknown": ("launch.executable_not_found", "launch.srun_fpe", "mpirun.killed_signal_9"),
        "segfault": ("launch.signal_11",),
        "mpi_abort": ("launch.ms_mpi_init",),
    }
)


@dataclass(frozen=True)
class LogMess:
    """Which habits of real logs one run shows (`draw_mess`)."""

    log_folder: str | None = None  # its logs (and scheduler file) kept in this subfolder
    gzip_any_name: bool = False  # its finished logs gzipped whatever their name
    preamble: bool = False  # others' lines before AVBP's banner
    loop_noise: bool = False  # a loader warning or an Open MPI help box among iterations
    progress_bar: bool = False  # grid partitioning redrawn with bare carriage returns
    windows_params: bool = False  # run.params prepared on Windows
    rank_style: str | None = None  # how several ranks print its solver error (RANK_STYLES)
    wrapped_error: bool = False  # its solver error wrapped onto a second line
    launch_failure: str | None = None  # LAUNCH_FAILURES template, instead of the planned ending
    step_cancelled: bool = False  # after a crash, Slurm cancels the step
    help_aggregate: bool = False  # after an MPI_ABORT, Open MPI's help-message summary

    @property
    def on_workstation(self) -> bool:
        """Launched with MS-MPI on a Windows workstation: no scheduler file then."""
        return self.launch_failure == "launch.ms_mpi_init"


def draw_mess(rng: random.Random, knobs: DemoKnobs, outcome: str) -> LogMess:
    """The habits of one run whose planned outcome is `outcome` (the same draws for a seed)."""
    draws = [rng.random() for _ in range(11)]
    folder, rank_style, launch = rng.choice(LOG_FOLDERS), rng.choice(RANK_STYLES), None
    launch_kinds = LAUNCH_FAILURES.get(outcome, ())
    launch_kind = rng.choice(launch_kinds) if launch_kinds else None
    if launch_kind and draws[8] < knobs.launch_failure_share:
        launch = launch_kind
    return LogMess(
        log_folder=folder if draws[0] < knobs.log_folder_share else None,
        gzip_any_name=draws[1] < knobs.any_name_gzip_share,
        preamble=draws[2] < knobs.preamble_noise_share,
        loop_noise=draws[3] < knobs.loop_noise_share,
        progress_bar=draws[4] < knobs.progress_bar_share,
        # MS-MPI runs on Windows: its user prepared run.params there
        windows_params=draws[5] < knobs.windows_params_share or launch == "launch.ms_mpi_init",
        rank_style=rank_style if draws[6] < knobs.rank_printed_error_share else None,
        wrapped_error=draws[7] < knobs.wrapped_error_share,
        launch_failure=launch,
        step_cancelled=draws[9] < knobs.step_cancelled_share,
        help_aggregate=draws[10] < knobs.help_summary_share,
    )


# ------------------------------------------------------------------ others' noise


def _modules(rng: random.Random, version: str) -> list[str]:
    if rng.random() < 0.5:
        return [
            "The following have been reloaded with a version change:",
            "  1) openmpi/4.1.1 => openmpi/4.1.5",
            "",
        ]
    return [
        "Loading module intel/2023.1",
        f"Loading avbp/{version}",
        "  Loading requirement: hdf5/1.12.2 parmetis/4.0.3 openmpi/4.1.5",
    ]


def _container(rng: random.Random, uid: int) -> list[str]:
    runtime = rng.choice(("apptainer", "singularity"))
    return [
        "INFO:    Converting SIF file to temporary sandbox...",
        f"WARNING: underlay of /etc/localtime required more than 50 ({rng.randint(51, 99)}) "
        "bind mounts",
        f"WARNING: Could not lookup the current user's information: user: unknown userid {uid}",
        f"WARNING: Skipping mount /var/lib/{runtime}/mnt/session/etc/resolv.conf [files]: "
        "/etc/resolv.conf doesn't exist in container",
    ]


def _network(host: str) -> list[str]:
    return [
        "libibverbs: Warning: couldn't load driver 'libmlx4-rdmav34.so': libmlx4-rdmav34.so: "
        "cannot open shared object file: No such file or directory",
        OPEN_MPI_RULE,
        "WARNING: There was an error initializing an OpenFabrics device.",
        "",
        f"  Local host:   {host}",
        "  Local device: mlx5_0",
        OPEN_MPI_RULE,
    ]


def loader_warning() -> str:
    """The dynamic loader's warning, printed by every process a preloaded tool cannot follow.

    It begins like a solver error (`ERROR: ...`) but says the preload was ignored: never
    the run's error, before the banner or in the middle of the loop.
    """
    return (
        "ERROR: ld.so: object '/opt/xalt/xalt/lib64/libxalt_init.so' from LD_PRELOAD cannot "
        "be preloaded (cannot open shared object file): ignored."
    )


def _topology() -> list[str]:
    return [
        "*" * 76,
        "* hwloc 2.4.1 received invalid information from the operating system.",
        "*",
        "* Failed with: intersection without inclusion",
        "* while inserting Group0 (cpuset 0x00000f00) at L3 (cpuset 0x00000c00)",
        "*",
        "* hwloc will now ignore this invalid topology information and continue.",
        "*" * 76,
    ]


def preamble(rng: random.Random, *, host: str, version: str) -> str:
    """What runs before AVBP's banner: modules, container, network, loader, topology.

    A parser takes no field from these lines (none looks like AVBP's banner, `Run
    started on` or a milestone) and no error: AVBP has not started yet.
    """
    parts = [
        _modules(rng, version),
        _container(rng, rng.randint(10000, 60000)),
        _network(host),
        [loader_warning()],
        _topology(),
        ["NVIDIA: no NVIDIA devices found"],
    ]
    chosen = [part for part in parts if rng.random() < 0.5] or [parts[0]]
    return "".join(line + "\n" for part in chosen for line in part)


def fork_warning(host: str, pid: int) -> list[str]:
    """Open MPI's help box when AVBP forks (a `system()` call at a save): text, not an error."""
    return [
        OPEN_MPI_RULE,
        "A process has executed an operation involving a call to the",
        '"fork()" system call to create a child process.  Open MPI is currently',
        "operating in a condition that could result in memory corruption or",
        "other system errors; your job may hang, crash, or produce silent",
        "data corruption.  The use of fork() (or system() or other calls that",
        "create child processes) is strongly discouraged.",
        "",
        "The process that invoked fork was:",
        "",
        f"  Local host:          {host} (PID {pid})",
        OPEN_MPI_RULE,
    ]


def loop_noise(rng: random.Random, host: str) -> str:
    """A loader warning or Open MPI's fork() box among the iteration lines: never an error."""
    if rng.random() < 0.5:
        return loader_warning() + "\n"
    return "".join(line + "\n" for line in fork_warning(host, rng.randint(1000, 99999)))


def progress_bar(rng: random.Random) -> str:
    """A partitioning progress bar redrawn with bare `\\r`, the next line printed after it.

    What a terminal shows is the text after the last `\\r`: the milestone that follows
    on the same physical line still counts.
    """
    steps = [*sorted(rng.sample(range(5, 100, 5), 3)), 100]
    return "".join(f" Partitioning the grid [{'#' * (p // 10):<10}] {p:3d}%\r" for p in steps)


# ------------------------------------------------------------------ MPI ranks

_LABELS = ("ERROR", "Error", "*** Fatal")


def is_labelled(message: str) -> bool:
    """A message that says it is an error from its first word (`ERROR :`, `*** Fatal`)."""
    return message.startswith(_LABELS)


def wrapped(message: str, rng: random.Random) -> list[str]:
    """A labelled error as AVBP wraps a long one: the rest indented under its first line.

    The break is never right after a word that ends a sentence, nor before a word a
    line could begin an error with, so that the continuation is clearly one: a parser
    joins the lines with one space and reads `message` back.
    """
    words = message.split(" ")
    label_words = 2 if message.startswith("***") else 1
    breaks = [
        i
        for i in range(label_words, len(words))
        if not words[i - 1].endswith((".", "!", "?"))
        and words[i].lower() not in ("error", "fatal")
        and not words[i].startswith("*")
    ]
    if not is_labelled(message) or not breaks:
        return [message]
    cut = rng.choice(breaks)
    indent = " " * rng.choice((8, 9, 10, 12))
    return [" ".join(words[:cut]), indent + " ".join(words[cut:])]


def printed_by_ranks(
    lines: list[str], other: str, style: str, rank: int, other_rank: int, rng: random.Random
) -> list[str]:
    """`lines` (one error) printed by `rank` while `other_rank` prints `other` at once.

    `prefixed`: `[3] ERROR ...`; `piled`: both prefixes before one message (`[7] [3]
    ERROR ...`); `tagged`: Open MPI's --tag-output (`[1,3]<stdout>: ERROR ...`);
    `fused`: the other rank's line cut by this one's (`[7] ERROR : Neg[3] ERROR : ...`),
    the rest of it on the next line. Each time, `rank`'s message comes whole and first:
    a parser strips the prefixes and reads it, the first error printed.
    """
    if style == "fused" and (len(lines) > 1 or not is_labelled(lines[0])):
        style = "piled"
    if style == "fused":
        cut = rng.randint(4, max(4, len(other) - 4))
        return [f"[{other_rank}] {other[:cut]}[{rank}] {lines[0]}", other[cut:]]
    if style == "tagged":
        tag = f"[1,{rank}]<stdout>: "
        return [tag + line for line in lines] + [f"[1,{other_rank}]<stdout>: {other}"]
    first = f"[{other_rank}] [{rank}] " if style == "piled" else f"[{rank}] "
    return (
        [first + lines[0]]
        + [f"[{rank}] {line}" for line in lines[1:]]
        + [f"[{other_rank}] {other}"]
    )


# ------------------------------------------------------------------ launches that failed


@dataclass(frozen=True)
class LaunchFailure:
    """A run that died before AVBP printed its banner (or, `mpirun.killed_signal_9`, silently).

    `stdout` goes to the log; `stderr` to the scheduler file when the user copies it,
    else into the log; `decisive` is what a parser reports as the error message.
    """

    template: str
    stdout: tuple[str, ...]
    stderr: tuple[str, ...]
    decisive: str
    banner: bool = False


def _primary_job_box() -> list[str]:
    return [
        OPEN_MPI_RULE,
        "Primary job  terminated normally, but 1 process returned",
        "a non-zero exit code. Per user-direction, the job has been aborted.",
        OPEN_MPI_RULE,
    ]


def launch_failure(
    template: str, rng: random.Random, *, host: str, jobid: int, n_procs: int, at: datetime
) -> LaunchFailure:
    """The lines of one failed launch (LAUNCH_FAILURES), and the message a parser reports.

    - `launch.executable_not_found`: Open MPI's box; its first sentence, joined over its
      lines, is the message (category unknown);
    - `launch.srun_fpe`: srun's task line (unknown), maybe Slurm cancelling the step;
    - `launch.signal_11`: mpirun noticed a rank died of signal 11 (segfault);
    - `launch.ms_mpi_init`: MS-MPI's `job aborted:` report, read as `job aborted:` and its
      first rank group's message (mpi_abort);
    - `mpirun.killed_signal_9`: after AVBP's loop started, a rank killed with no word
      but mpirun's (unknown): help text decides when nothing better was printed.
    """
    rank, pid = rng.randrange(n_procs), rng.randint(1000, 99999)
    if template == "launch.executable_not_found":
        lines = [
            OPEN_MPI_RULE,
            "mpirun was unable to find the specified executable file, and therefore",
            "did not launch the job.  This error was first reported for process",
            "rank 0; it may have occurred for other processes as well.",
            "",
            "NOTE: A common cause for this error is misspelling a mpirun command",
            "      line parameter option (remember that mpirun interprets the first",
            "      unrecognized command line token as the executable).",
            "",
            f"Node:       {host}",
            f"Executable: {rng.choice(('~/AVBP/HOST/KRAKEN/avbp', './avbp_V7.12', 'avbp'))}",
            OPEN_MPI_RULE,
        ]
        decisive = (
            "mpirun was unable to find the specified executable file, and therefore did not "
            "launch the job."
        )
        return LaunchFailure(template, (), tuple(lines), decisive)
    if template == "launch.srun_fpe":
        decisive = f"srun: error: {host}: task {rank}: Floating point exception (core dumped)"
        lines = [decisive, f"srun: Terminating StepId={jobid}.0"]
        if rng.random() < 0.5:
            lines.append(step_cancelled_line(jobid, host, at))
        return LaunchFailure(template, (), tuple(lines), decisive)
    if template == "launch.signal_11":
        decisive = mpirun_noticed(rank, pid, host, "11 (Segmentation fault)")
        lines = [*_primary_job_box(), OPEN_MPI_RULE, decisive, OPEN_MPI_RULE]
        return LaunchFailure(template, (), tuple(lines), decisive)
    if template == "launch.ms_mpi_init":
        groups = f"0-{n_procs - 1}" if n_procs > 1 else "0"
        station = f"WS-CFD-{rng.randint(1, 40):02d}"
        lines = [
            "",
            "job aborted:",
            "[ranks] message",
            "",
            f"[{groups}] process exited without calling init",
            "",
            "---- error analysis -----",
            "",
            f"[{groups}] on {station}",
            "avbp.exe ended before calling init and may have crashed. exit code -1073741515",
            "",
            "---- error analysis -----",
        ]
        return LaunchFailure(
            template, tuple(lines), (), "job aborted: process exited without calling init"
        )
    if template == "mpirun.killed_signal_9":
        decisive = mpirun_noticed(rank, pid, host, "9 (Killed)")
        lines = [*_primary_job_box(), OPEN_MPI_RULE, decisive, OPEN_MPI_RULE]
        return LaunchFailure(template, (), tuple(lines), decisive, banner=True)
    raise ValueError(f"unknown launch failure {template!r}")


def windows_paths(login: str, case: str) -> list[tuple[str, str, str]]:
    """run.params entries a user wrote on Windows: drive and UNC paths, kept as written."""
    return [
        ("save_directory", f"C:\\Users\\{login}\\Documents\\AVBP\\{case}\\SOLUT", ""),
        ("probe_file", f"\\\\fileserver\\cfd\\{login}\\{case}\\probes.dat", "! UNC path"),
    ]


def after(moment: datetime, rng: random.Random) -> datetime:
    """A few seconds after `moment` (Slurm's reaction to a crash)."""
    return moment + timedelta(seconds=rng.randint(1, 30))
