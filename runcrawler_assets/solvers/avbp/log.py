"""An AVBP log, read line by line: banner, milestones, iterations, errors, ranks, launchers.

`AvbpLog` is a state machine fed by `logtext.scan_log`, so that a 2 GB log costs
a bounded read: the head line by line, the middle filtered by `SCAN_FOR`, and the
tail, mostly iteration lines, as one block searched for the few lines that
matter. The scheduler files are fed to the same `AvbpLog` for their verdicts.
It only knows what AVBP prints, and where AVBP's output begins: real logs hold
others' lines too (modules, containers, MPI, the launcher; see "what others
print into the log"), ranks' prefixes, wrapped messages and progress bars, and
a launch may fail before AVBP prints anything. The milestone table comes from
`milestones`, the ranking of verdicts from `verdicts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from runcrawler_assets.solvers.avbp.milestones import MILESTONES, SUCCESS_CODE, Milestone
from runcrawler_assets.solvers.logtext import (
    DEFAULT_LIMITS,
    LogReadReport,
    by_first_letter,
    decode_line,
    emit_lines,
    lines_from_end,
    scan_log,
)
from runcrawler_assets.solvers.rundir import to_float
from runcrawler_assets.solvers.verdicts import (
    VERDICT_WORDS,
    ErrorEvidence,
    classify_message,
    verdict_of,
)

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?)"
_ITERATION = re.compile(r"\s*Iteration\s*#\s*(\d+)", re.I)
# Matched on the lower-cased line, like every pattern without re.I below.
_SOLVER_ERROR = re.compile(
    r"^\s*(?:error\b|\*+\s*(?:fatal|error)\b|fatal\b)|do not contain the same number of species"
)
# (column, a lower-case word the pattern cannot match without, pattern): the word is
# tested first, with `in`, so most lines cost no regex at all.
_FIELDS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("version", "avbp", re.compile(r"\bAVBP\s+(?:version\s+)?V?(\d+(?:\.\d+)+[\w.+-]*)", re.I)),
    ("started_at", "started", re.compile(r"Run\s+started\s+on\s*:\s*(.+?)\s*$", re.I)),
    ("ended_at", "ended", re.compile(r"Run\s+ended\s+on\s*:\s*(.+?)\s*$", re.I)),
    ("host", "host", re.compile(r"^\s*Host\s*:\s*(\S+)", re.I)),
    ("n_procs", "mpi", re.compile(r"Number\s+of\s+MPI\s+processes\s*:\s*(\d+)", re.I)),
    ("dimension", "dimension", re.compile(r"^\s*Dimension\s*:\s*(\d+)", re.I)),
    ("n_nodes", "nodes", re.compile(r"Number\s+of\s+nodes\s*:\s*(\d+)", re.I)),
    ("n_cells", "cells", re.compile(r"Number\s+of\s+cells\s*:\s*(\d+)", re.I)),
    ("cpu_time_s", "cpu", re.compile(r"Total\s+CPU\s+time[^:]*:\s*" + _NUMBER, re.I)),
    ("wall_time_s", "wall", re.compile(r"Elapsed\s+wall\s+time[^:]*:\s*" + _NUMBER, re.I)),
    (
        "efficiency_printed",
        "efficiency",
        re.compile(r"Reduced\s+efficiency[^:]*:\s*" + _NUMBER, re.I),
    ),
)
_INT_FIELDS = {"n_procs", "dimension", "n_nodes", "n_cells"}
_FLOAT_FIELDS = {"cpu_time_s", "wall_time_s", "efficiency_printed"}
_TIME_FIELDS = {"started_at", "ended_at"}
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}", re.ASCII)
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S", "%c")


def _milestone_pattern(milestone: Milestone) -> str:
    """Milestone text as a regex tolerant of spacing (dashes in front never matter)."""
    return r"[ \t]+".join(re.escape(word) for word in milestone.text.split())


# Lower-case patterns matched on the lower-cased line, behind one pattern for them all,
# each behind its first word: testing it with `in` spares most lines the regex.
_MILESTONES: tuple[tuple[Milestone, str, re.Pattern[str]], ...] = tuple(
    (m, m.text.split()[0].lower(), re.compile(_milestone_pattern(m).lower())) for m in MILESTONES
)
_ANY_MILESTONE = re.compile(by_first_letter(tuple(p.pattern for _, _, p in _MILESTONES)))
_LOOP_AND_AFTER = MILESTONES[[m.code for m in MILESTONES].index(300) :]
_LOOP_STARTS = re.compile(
    "|".join(_milestone_pattern(m) for m in MILESTONES if m.code == 300), re.I
)


# Every line the state machine may care about, apart from iterations; also the
# filter of the bounded scan (as bytes), so it must never span a line ending.
_KEYWORDS = by_first_letter(
    (
        *("error", "fatal", "avbp", r"run[ \t]+(?:started|ended)", "host", r"number[ \t]+of"),
        *("dimension", r"cpu[ \t]+time", r"wall[ \t]+time", "efficiency", "species"),
        *("segmentation", "sigsegv", "signal", "oom", "memory", "cancelled", r"time[ \t]+limit"),
        *("walltime", "mpi_abort", "term_", "mpirun", "mpiexec", "prterun", r"job[ \t]+aborted"),
        r"primary[ \t]+job",
        *(_milestone_pattern(m).lower() for m in MILESTONES),
    )
)
# Lower-case and case-sensitive, matched on lower-cased text: much faster than re.I.
_INTERESTING = re.compile(_KEYWORDS)
SCAN_FOR = re.compile(_KEYWORDS.encode())
# Consecutive iteration lines, matched on lower-cased ASCII: `_ITERATION` matches each of
# them too (blanks are a subset of its `\s`, bounded so the number stays within max_line).
_BLANKS = rb"[\t\x0b\x0c\r\x1c-\x1f ]{0,64}"
_ITERATION_RUN = re.compile(
    rb"(?:" + _BLANKS + rb"iteration" + _BLANKS + rb"#" + _BLANKS + rb"[0-9][^\n]*(?:\n|\Z))+"
)


def parse_log_time(text: str) -> datetime | None:
    """A timestamp as AVBP prints it (naive, the cluster's clock); None when unreadable.

    The usual ISO form skips `strptime`, which costs more than the rest of a log line.
    """
    stripped = text.strip()
    if _ISO_TIME.fullmatch(stripped):
        try:
            return datetime.fromisoformat(stripped)
        except ValueError:  # 2024-02-30: no format reads it
            return None
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return None


# ---------------------------------------------------------------- what others print into the log
#
# A real log holds more than AVBP's output: the job script, the modules, the container
# runtime, the network drivers and the MPI library print before AVBP's banner and between
# its lines, and MPI ranks write at once. So nothing before AVBP's first own line (its
# banner, `Run started on`, a milestone) sets a field or is a solver error; rank prefixes
# come off before a line is judged; a message wrapped over several lines is joined; and
# what the MPI launcher reports decides only when nothing else explains the end.

# `[3] `, piled up when ranks write at once (`[2] [3] `), MS-MPI's `[0-3] `, Open MPI's
# --tag-output `[1,3]<stdout>:`.
_RANK_PREFIX = re.compile(r"(?:\[\d+(?:[-,]\d+)*\](?:<std(?:out|err)>:)? ?)+")
_ONE_RANK = re.compile(r"\[\d+(?:[-,]\d+)*\]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colour codes (Lmod, a coloured job script)
# A rank's error begun in the middle of another rank's line (`[2] ERROR : Negative den[3] ERROR`).
_FUSED_RANK = re.compile(r"\[\d+\][ \t]*(?=(?:error|fatal|\*+[ \t]*(?:fatal|error))\b)", re.I)
# AVBP's first own line, matched on the lower-cased line.
_SOLVER_STARTS = re.compile(
    r"\bavbp\s+(?:version\s+)?v?\d+\.\d|run\s+started\s+on|" + _ANY_MILESTONE.pattern
)
# Begins like a solver error, but is the dynamic loader's warning, printed by every process
# that a preloaded tool (XALT, Darshan) could not follow: `ERROR: ld.so: object '...' from
# LD_PRELOAD cannot be preloaded (...): ignored.` (lower-cased).
_LOADER_WARNING = re.compile(r"^\s*error:\s*ld\.so:")
_RULE = re.compile(r"^\s*[-_=*]{8,}\s*$")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
MAX_CONTINUATION_LINES = 3
CONTINUATION_INDENT = 4  # columns deeper than the error line, at least
# MS-MPI's report (lower-cased): `job aborted:`, `[ranks] message`, then each group's message.
_MS_MPI_REPORT = re.compile(r"\s*job aborted:")
_MS_MPI_FILLER = ("", "[ranks] message", "terminated")
MS_MPI_REPORT_LINES = 8


@dataclass(frozen=True)
class LauncherReport:
    """How mpirun or srun reports that a run died: a first line, and what it tells."""

    pattern: re.Pattern[str]  # on the lower-cased line, rank prefixes off
    tells_cause: bool  # how a process died (a signal, a missing executable), not only that one did
    wrapped: bool = True  # Open MPI's help text: the sentence goes on over the next lines


_LAUNCHER = r"^\s*(?:mpirun|mpiexec|prterun) "
_SRUN_TASK = r"^\s*srun: error: \S+: tasks? [\d,-]+: "
LAUNCHER_REPORTS: tuple[LauncherReport, ...] = (
    LauncherReport(re.compile(_LAUNCHER + r"was unable to (?:find|launch|start)"), True),
    LauncherReport(re.compile(_LAUNCHER + r"noticed that process rank \d+"), True),
    LauncherReport(re.compile(_SRUN_TASK + r"(?!exited with exit code)"), True, wrapped=False),
    LauncherReport(re.compile(_LAUNCHER + r"has exited due to process rank \d+"), False),
    LauncherReport(re.compile(r"^\s*primary[ \t]+job[ \t]+terminated normally, but \d+"), False),
    LauncherReport(re.compile(_SRUN_TASK + r"exited with exit code"), False, wrapped=False),
)
# A word every launcher report holds (lower-cased).
_LAUNCHER_WORD_LIST = ("mpirun", "mpiexec", "prterun", "srun: error", r"primary[ \t]+job")
_LAUNCHER_WORDS = re.compile(by_first_letter(_LAUNCHER_WORD_LIST))
# A word that every solver error, verdict, launcher report and MPI abort holds (lower-cased):
# a line in ASCII (where `lower` is `casefold`) without one can only set a field or a milestone.
_ALARM_WORDS = re.compile(
    by_first_letter(
        (
            *("error", "fatal", "species", *VERDICT_WORDS, *_LAUNCHER_WORD_LIST),
            *("job aborted", "mpi_abort"),
        )
    )
)


def without_rank_prefixes(line: str) -> tuple[str, str]:
    """(the line without the MPI rank prefixes in front, the last prefix, "" when none).

    When ranks write at once, prefixes pile up (`[2] [3] ERROR ...`) or one rank's
    error begins in the middle of another's line (`[2] ERROR : Negative den[3] ERROR :
    Negative density ...`): the last rank's part is the one printed whole. The text
    after a prefix keeps its own indentation (a wrapped message's is telling).
    """
    rank = ""
    start = len(line) - len(line.lstrip())
    if (prefix := _RANK_PREFIX.match(line, start)) is not None:
        rank = _ONE_RANK.findall(prefix.group(0))[-1]
        line = line[prefix.end() :]
    if "[" in line and (fused := [*_FUSED_RANK.finditer(line)]):
        rank = fused[-1].group(0).rstrip()
        line = line[fused[-1].end() :]
    return line, rank


def _visible(line: str) -> str:
    """What a terminal shows of a line rewritten with bare carriage returns (a progress bar)."""
    parts = [part for part in line.split("\r") if part.strip()]
    return parts[-1] if parts else ""


def _iteration_in(line: str) -> re.Match[str] | None:
    """The iteration a line prints: at its start, or after the last bare `\\r` in it."""
    found = _ITERATION.match(line)
    if found is None and "\r" in line:
        found = _ITERATION.match(_visible(line))
    return found


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _ends_sentence(text: str) -> bool:
    return text.rstrip()[-1:] in (".", "!", "?")


def _has_own_meaning(line: str) -> bool:
    """A line that says something by itself (a field, a milestone, another error, a verdict)."""
    lowered = line.lower()
    return bool(
        _RULE.match(line)
        or _ITERATION.match(line)
        or _SOLVER_ERROR.search(lowered)
        or _ANY_MILESTONE.search(lowered)
        or _LAUNCHER_WORDS.search(lowered)
        or "mpi_abort" in lowered
        or "job aborted" in lowered
        or verdict_of(line)
        or any(word in lowered and pattern.search(line) for _, word, pattern in _FIELDS)
    )


@dataclass
class _Message:
    """A message that may go on over the next lines, until it is complete."""

    kind: str  # "solver" (an AVBP error), "launcher" (LAUNCHER_REPORTS), "ms-mpi"
    text: str
    rank: str = ""
    indent: int = 0
    tells_cause: bool = True
    lines: int = 0  # lines taken (or, for MS-MPI, looked at) after the first
    complete: bool = False

    def takes(self, body: str, rank: str) -> bool:
        """Whether `body` (the next line, rank prefix off) goes on with this message; joined if so.

        An AVBP error goes on over lines indented under it (`CONTINUATION_INDENT` deeper:
        `ERROR :` then the message on the next line, or a long message wrapped) from the
        same rank, up to the end of a sentence. A launcher's help text is prose wrapped
        at 75 columns: it goes on up to the end of its first sentence. Never over a blank
        line, a rule, or a line that means something by itself. MS-MPI's report: the
        first rank group's message that is not `terminated`.
        """
        words = body.strip()
        if self.kind == "ms-mpi":
            return self._takes_ms_mpi(body, words)
        if rank != self.rank or not words or _has_own_meaning(body):
            return False
        if self.kind == "solver" and _indent(body) < self.indent + CONTINUATION_INDENT:
            return False
        text, self.lines = f"{self.text} {words}", self.lines + 1
        if self.kind == "launcher" and (end := _SENTENCE_END.search(text, len(self.text))):
            text, self.complete = text[: end.end()], True
        self.text = text
        self.complete |= _ends_sentence(text) or self.lines >= MAX_CONTINUATION_LINES
        return True

    def _takes_ms_mpi(self, body: str, words: str) -> bool:
        self.lines += 1
        if self.lines > MS_MPI_REPORT_LINES:
            return False
        if words.lower() not in _MS_MPI_FILLER:
            if not _RULE.match(body) and "error analysis" not in words.lower():
                self.text = f"{self.text} {words}"
            self.complete = True
        return True


@dataclass
class AvbpLog:
    """What one AVBP log says, built line by line in file order.

    `feed` takes consecutive lines; a message that may go on over the next lines waits
    in `_pending` until a line does not continue it. The bounded scan of a big log's
    middle passes only chosen lines (`feed_scanned`): a message ends there at once.
    After the last file, `settle` weighs what the launcher reported.
    """

    values: dict[str, Any] = field(default_factory=dict)
    iterations_done: int = 0
    last_milestone: Milestone | None = None
    end_marker: bool = False
    evidence: ErrorEvidence = field(default_factory=ErrorEvidence)
    warnings: list[str] = field(default_factory=list)
    solver_started: bool = False  # AVBP's first own line was seen: what came before is others'
    launcher_report: tuple[bool, str] | None = None  # (tells the cause?, message)
    _pending: _Message | None = None

    def feed(self, line: str) -> None:
        """Take the next line of the log."""
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        # `_ITERATION` (case-insensitive, ~1 µs) cannot match without a `#`.
        if "#" in line and (iteration := _iteration_in(line)) is not None:
            if self._pending is not None:
                self._close_pending()
            self.iterations_done = int(iteration.group(1))
            self.solver_started = True  # AVBP's own line, even in a log that lost its header
            return
        if "\r" in line:
            line = _visible(line)
        if self._pending is not None and self._continues(line):
            return
        lowered = line.lower()
        if not _INTERESTING.search(lowered):
            return
        rank = ""
        if "[" in line:
            line, rank = without_rank_prefixes(line)
            lowered = line.lower()
        if line.isascii() and _ALARM_WORDS.search(lowered) is None:  # most lines: one search
            if self.solver_started or _SOLVER_STARTS.search(lowered):
                self.solver_started = True
                self._take_fields(line, lowered)
                self._take_milestone(lowered)
            return
        error_like = (
            self.solver_started
            and _SOLVER_ERROR.search(lowered) is not None
            and _LOADER_WARNING.search(lowered) is None
        )
        if error_like and verdict_of(line) is None:
            self._open(_Message("solver", line.strip(), rank, _indent(line)))
            return
        # Every launcher report holds one of these words (`in` is cheap): most lines pass by.
        if (
            "mpi" in lowered or "run" in lowered or "primary" in lowered or "job" in lowered
        ) and self._takes_launcher_report(line, lowered, rank):
            return
        self.evidence.observe(line)
        if error_like or not (self.solver_started or _SOLVER_STARTS.search(lowered)):
            return
        self.solver_started = True
        self._take_fields(line, lowered)
        self._take_milestone(lowered)

    def feed_scanned(self, line: str) -> None:
        """`feed` for `scan_log`: past the head (the temporal loop started), lines are chosen."""
        if self._pending is not None and self.loop_started:
            self._close_pending()
        self.feed(line)

    def feed_scheduler_line(self, line: str) -> None:
        """A scheduler file's line: verdicts, MPI_ABORT and launcher reports, nothing of AVBP's."""
        if "\x1b" in line:
            line = _ANSI.sub("", line)
        if "\r" in line:
            line = _visible(line)
        if self._pending is not None and self._continues(line):
            return
        rank = ""
        if "[" in line:
            line, rank = without_rank_prefixes(line)
        if not self._takes_launcher_report(line, line.lower(), rank):
            self.evidence.observe(line)

    def end_of_file(self) -> None:
        """The file ended: a pending message is complete."""
        if self._pending is not None:
            self._close_pending()

    def settle(self) -> None:
        """After the last file: what the launcher reported decides if nothing else explains the end.

        Its category is the shared message rules' (`verdicts.classify_message`), as for
        any solver error: `unknown` ("it failed, and none of the above says why") for a
        missing executable, a floating point exception or a kill that mpirun or srun
        report with no word from AVBP. A signal 11 is the shared runtime verdict
        (`segfault`), and MS-MPI's `job aborted:` report the shared MPI abort
        (`mpi_abort`), both seen as they come. So a run that died before AVBP printed
        anything is `failed` with the launcher's words, not `truncated`; and help text
        that follows AVBP's own error never replaces it. A step Slurm cancelled with no
        reason given yields to the launcher's report as to any crash (verdicts' ranking).
        """
        self.end_of_file()
        evidence = self.evidence
        if self.launcher_report is None or evidence.solver_error is not None:
            return
        message = self.launcher_report[1]
        decided = evidence.decisive()
        reported = replace(evidence, solver_error=(classify_message(message), message))
        if decided is None or (
            decided == evidence.scheduler and reported.decisive() == reported.solver_error
        ):
            evidence.observe_solver_error(message)

    @property
    def loop_started(self) -> bool:
        return self.last_milestone is not None and self.last_milestone in _LOOP_AND_AFTER

    def _takes_launcher_report(self, line: str, lowered: str, rank: str) -> bool:
        """Open the launcher's report that `line` begins, if it begins one (not a verdict)."""
        if "job aborted" in lowered and _MS_MPI_REPORT.match(lowered):
            self._open(_Message("ms-mpi", line.strip(), rank))
            return True
        if not _LAUNCHER_WORDS.search(lowered):
            return False
        for report in LAUNCHER_REPORTS:
            if report.pattern.search(lowered) and verdict_of(line) is None:
                message = _Message("launcher", line.strip(), rank, tells_cause=report.tells_cause)
                message.complete = not report.wrapped
                self._open(message)
                return True
        return False

    def _open(self, message: _Message) -> None:
        if message.kind != "ms-mpi" and _ends_sentence(message.text):
            message.complete = True
        if message.complete:
            self._record(message)
        else:
            self._pending = message

    def _continues(self, line: str) -> bool:
        """Whether `line` goes on with the pending message (taken); if not, it is recorded."""
        message = self._pending
        assert message is not None
        body, rank = without_rank_prefixes(line) if "[" in line else (line, "")
        taken = message.takes(body, rank)
        if not taken or message.complete:
            self._close_pending()
        return taken

    def _close_pending(self) -> None:
        message, self._pending = self._pending, None
        if message is not None:
            self._record(message)

    def _record(self, message: _Message) -> None:
        if message.kind == "solver":
            self.evidence.observe_solver_error(message.text)
        elif message.kind == "ms-mpi":
            self.evidence.observe(message.text)  # the shared rule: `job aborted` is an MPI abort
        elif self.launcher_report is None or (message.tells_cause and not self.launcher_report[0]):
            self.launcher_report = (message.tells_cause, message.text)

    def feed_tail(self, block: bytes) -> None:
        """Take the tail as `feed` would take its lines, without searching its iteration lines.

        Most of a tail is iteration lines, which `feed` only counts, and the keyword
        search costs ~30 ns a byte: runs of them are matched whole and passed over,
        the rest goes through `SCAN_FOR` (in ASCII without NUL or colour codes,
        lower-casing and the patterns give the same answer on the bytes as on the
        decoded line; any other tail goes line by line), and the last iteration is
        found from the end.
        """
        max_line = DEFAULT_LIMITS.max_line
        if not block.isascii() or b"\x00" in block or b"\x1b" in block:
            emit_lines(block, self.feed, max_line)
            return
        lowered, pos, end = block.lower(), 0, len(block)
        while pos < end:
            if (run := _ITERATION_RUN.match(lowered, pos)) is not None:
                if self._pending is not None:  # as `feed`: an iteration line ends a message
                    self._close_pending()
                self.solver_started = True
                pos = run.end()
                continue
            # Search up to the line of the next possible iteration line.
            stop = lowered.find(b"iteration", pos)
            stop = end if stop == -1 else lowered.rfind(b"\n", pos, stop) + 1
            if stop <= pos:  # this line names an iteration without being one: fed whole
                line_end = lowered.find(b"\n", pos)
                line_end = end if line_end == -1 else line_end
                self.feed(decode_line(block[pos:line_end], max_line))
                pos = line_end + 1
                continue
            self._feed_chosen_lines(block, lowered, pos, stop)
            pos = stop
        for line in lines_from_end(block, b"#", max_line):
            if (iteration := _iteration_in(line)) is not None:
                self.iterations_done = int(iteration.group(1))
                return

    def _feed_chosen_lines(self, block: bytes, lowered: bytes, pos: int, stop: int) -> None:
        """Feed the lines of block[pos:stop] that hold a `SCAN_FOR` keyword, and every line
        while a message is pending (its continuation need hold no keyword)."""
        max_line = DEFAULT_LIMITS.max_line
        at = pos
        while at < stop:
            if self._pending is None:
                if (keyword := SCAN_FOR.search(lowered, at, stop)) is None:
                    return
                at = lowered.rfind(b"\n", at, keyword.start()) + 1 or at
            line_end = lowered.find(b"\n", at, stop)
            line_end = stop if line_end == -1 else line_end
            self.feed(decode_line(block[at:line_end], max_line))
            at = line_end + 1

    def _take_fields(self, line: str, lowered: str) -> None:
        for name, word, pattern in _FIELDS:
            if word not in lowered:
                continue
            if name in self.values and name not in {"ended_at", "cpu_time_s", "wall_time_s"}:
                continue
            if (found := pattern.search(line)) is not None:
                self._store(name, found.group(1))

    def _store(self, name: str, text: str) -> None:
        value: Any = text
        if name in _INT_FIELDS:
            value = int(text)
        elif name in _FLOAT_FIELDS:
            value = to_float(text)
        elif name in _TIME_FIELDS:
            value = parse_log_time(text)
        if value is None:
            self.warnings.append(f"log: cannot read {name} from {text!r}")
            return
        self.values[name] = value

    def _take_milestone(self, lowered: str) -> None:
        if not _ANY_MILESTONE.search(lowered):
            return
        for milestone, word, pattern in _MILESTONES:
            if word in lowered and pattern.search(lowered):
                self.last_milestone = milestone
                self.end_marker = self.end_marker or milestone.code == SUCCESS_CODE


def read_log(path: Path) -> tuple[AvbpLog, LogReadReport]:
    """Feed the head, the scanned error lines and the tail of a log to an `AvbpLog`.

    What the launcher reported is weighed later (`AvbpLog.settle`, after the scheduler files).
    """
    log = AvbpLog()
    report = scan_log(
        path, log.feed_scanned, head_until=_LOOP_STARTS, scan_for=SCAN_FOR, on_tail=log.feed_tail
    )
    log.end_of_file()
    return log, report


def read_scheduler_file(path: Path, log: AvbpLog) -> LogReadReport:
    """Feed a scheduler file (slurm-*.out, *.e<jobid>) to `log`: verdicts and launcher reports."""
    report = scan_log(path, log.feed_scheduler_line, head_until=None, scan_for=SCAN_FOR)
    log.end_of_file()
    return report
