"""The pieces every OpenFOAM log is built from: the banner, a FATAL error block, the
lines of one time step.

Why apart: the pipeline's logs (openfoam_logs.py) and the phenomena that print them
several times over (openfoam_mess.py) assemble the same pieces, in each release line's
own way (openfoam_cases.Release).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from runcrawler_assets.demo.openfoam_cases import OpenFoamCase


def banner(
    case: OpenFoamCase,
    command: str,
    started: datetime,
    *,
    pid: int | None = None,
    n_procs_line: bool = True,
    trap_fpe: bool = False,
) -> str:
    """The banner and header a utility prints as `command` starts, in the release's style."""
    release = case.release
    host = f'"{case.host}"' if release.quoted_host else case.host
    lines = [
        release.box.format(version=release.version).rstrip("\n"),
        f"Build  : {release.build}",
        f"Exec   : {command}",
        f"Date   : {started:%b %d %Y}",
        f"Time   : {started:%H:%M:%S}",
        f"Host   : {host}",
        f"PID    : {pid if pid is not None else case.rng.randrange(1000, 99999)}",
        "I/O    : uncollated",
        f"Case   : {case.case_dir}",
    ]
    if n_procs_line:
        lines.append(f"nProcs : {case.n_procs if '-parallel' in command else 1}")
    lines += [
        "trapFpe: Floating point exception trapping enabled (FOAM_SIGFPE)."
        if trap_fpe
        else "sigFpe : Enabling floating point exception trapping (FOAM_SIGFPE).",
        "",
        "// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //",
        "Create time",
        "",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Message:
    """A FOAM error message: the lines it is wrapped onto, or one line joined by spaces."""

    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def fatal_lines(
    case: OpenFoamCase, kind: str, message: Message, origin: str, *, file: str | None = None
) -> list[str]:
    """A FOAM error block, one line per item; wrapped (`wrapped_message`) with more context."""
    source = origin.split("::")[-1]
    header = f"--> FOAM FATAL {kind}:{case.version_tag}"
    if not case.has("wrapped_message"):
        return [
            header, message.text, "", f"    From {origin}",
            f"    in file {source}.C at line 217.", "", "FOAM exiting", "",
        ]  # fmt: skip
    indent = case.mess_rng.choice(("", "    "))
    wrapped = [message.parts[0], *(indent + part for part in message.parts[1:])]
    context = [f"file: {file} from line 17 to line 49.", ""] if file else []
    return [
        header, *wrapped, "", *context, f"    From function {origin}",
        f"    in file {source}.C at line 217.", "", "FOAM exiting", "",
    ]  # fmt: skip


def fatal(case: OpenFoamCase, kind: str, message: Message, origin: str) -> str:
    """A FOAM error block as one text."""
    return "\n".join(fatal_lines(case, kind, message, origin)) + "\n"


def prefixed(rank: int | None, lines: Iterable[str]) -> list[str]:
    """Lines as MPI rank `rank` prints them (`[N] `), or as they are (None: serial)."""
    return [f"[{rank}] {line}" if rank is not None else line for line in lines]


@dataclass(frozen=True)
class Step:
    """One time step: its `Time =` line, the solving lines, and when it ended (seconds)."""

    time_line: str
    solving: tuple[str, ...]
    seconds: float

    def clock_line(self, slower: float = 1.0) -> str:
        execution, clock = printed_times(self.seconds * slower)
        return f"ExecutionTime = {execution:.2f} s  ClockTime = {clock} s"


def printed_times(seconds: float) -> tuple[float, int]:
    """ExecutionTime and ClockTime as printed after `seconds` of computing."""
    execution = round(seconds, 2)
    return execution, round(execution * 1.04)


def loop_text(loop: Sequence[Step]) -> str:
    """The time loop as one run prints it."""
    if not loop:
        return ""
    lines = ["Starting time loop", ""]
    for step in loop:
        lines += [step.time_line, "", *step.solving, step.clock_line(), ""]
    return "\n".join(lines) + "\n"
