"""How a run ended, independent of the solver: verdicts, error categories, signatures.

Every solver's log ends the same few ways: the batch scheduler killed it
(time limit, oom-kill, cancellation), the runtime crashed (segfault, out of
memory), MPI aborted, or the solver printed an error of its own. Those
verdicts and the rules that rank them (runs-schema.md) are shared by every
solver parser, so they live here; a parser only says which of its lines are
solver error lines and feeds every line to an `ErrorEvidence`.

Ranking, as the schema's copy in docs/ says: a scheduler kill wins (it
explains the crash it causes), then a runtime verdict, then the first solver
error line; but a step cancelled with no reason given yields to a crash or an
error (Slurm cancels a step once one of its tasks has crashed); `mpi_abort`
only when nothing more specific was printed.

`error_signature` replaces what varies between runs (dates, paths, host
names, numbers, ids) by placeholders so that one error groups together.
Categories are the names of `records.ERROR_CATEGORIES`, never new strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from runcrawler_assets.records import ERROR_CATEGORIES, Status
from runcrawler_assets.solvers.logtext import by_first_letter

# A run whose log stopped more recently than this may still be running.
RUNNING_WINDOW = timedelta(days=2)

_STATUS_OF = {c.name: c.status for c in ERROR_CATEGORIES}

_SCHEDULER_VERDICTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "time_limit",
        re.compile(
            r"DUE\s+TO\s+TIME\s+LIMIT|walltime\s+\S+\s+exceeded|TERM_RUNLIMIT|"
            r"exceeded\s+(?:the\s+)?(?:wall\s*clock|time)\s+limit",
            re.I,
        ),
    ),
    ("out_of_memory", re.compile(r"oom[-_ ]kill|TERM_MEMLIMIT|exceeded\s+memory\s+limit", re.I)),
    (
        "cancelled",
        re.compile(r"\*\*\*\s*(?:JOB|STEP)\s+\S+\s+ON\s+\S+\s+CANCELLED\b|TERM_OWNER", re.I),
    ),
)
_RUNTIME_VERDICTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "out_of_memory",
        re.compile(
            r"out[- ]of[- ]memory|insufficient\s+virtual\s+memory|cannot\s+allocate\s+memory|"
            r"std::bad_alloc|memory\s+allocation\s+failed",
            re.I,
        ),
    ),
    ("segfault", re.compile(r"SIGSEGV|segmentation\s+(?:fault|violation)|signal\s+11\b", re.I)),
)
# A word every verdict pattern above needs, matched on the case-folded line: one fast
# case-sensitive search rules out most lines (the patterns, case-insensitive, cost ~2 µs each).
VERDICT_WORDS: tuple[str, ...] = (
    *("due", "walltime", "term_", "exceeded", "oom", "cancelled", "memory", "bad_alloc"),
    *("sigsegv", "segmentation", "signal"),
)
_VERDICT_WORDS = re.compile(by_first_letter(VERDICT_WORDS))
# Open MPI's MPI_ABORT box; MS-MPI says `job aborted:`.
_MPI_ABORT = re.compile(r"MPI_ABORT|^job aborted\b", re.I)

# What others print into a solver's log when a run dies: the MPI launcher, a coupled
# library (LAMMPS's `ERROR: ...`). Solver errors for the ranking; the message rules
# give their category (a signal 11 or 8 is a runtime verdict, seen before these).
_FOREIGN_ERRORS = re.compile(
    r"^(?:mpirun|mpiexec|prterun) (?:was unable to (?:find|launch|start)|noticed that "
    r"process rank \d+)|^ERROR(?: on proc \d+)?: (?!ld\.so: )\S|^srun: error: .*(?:task|step)",
)

# Solver messages, tried in order on the signature (so that a path never decides).
_MESSAGE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("thermo_table", re.compile(r"out\s+of\s+(?:the\s+)?(?:\w+\s+)?table|table\s+bounds", re.I)),
    (
        "numerical_instability",
        re.compile(
            r"negative\s+(?:density|pressure|temperature|energy|volume)|\bnan\b|not\s+a\s+number|"
            r"\binf(?:inity)?\b|diverg",
            re.I,
        ),
    ),
    ("mixture", re.compile(r"species|mixture", re.I)),
    (
        "input_file",
        re.compile(
            r"can\s*(?:no|')t\s+(?:open|read|find)|unable\s+to\s+(?:open|read)|no\s+such\s+file|"
            r"file\s+not\s+found|(?:error|failed)\s+(?:while\s+)?(?:opening|reading)|"
            r"does\s+not\s+exist",
            re.I,
        ),
    ),
)

# A rule needs a digit, this substring, or nothing (None) to match: most messages are
# spared most of the rules' searches (~28 µs a message for all of them). No placeholder
# holds a digit or a needed substring, so a rule skipped at the start stays skippable.
_DIGIT = re.compile(r"\d")
_SIGNATURE_RULES: tuple[tuple[re.Pattern[str], str, re.Pattern[str] | str | None], ...] = (
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?|"
            r"\b(?:mon|tue|wed|thu|fri|sat|sun)\w*\s+[a-z]{3}\w*\s+\d{1,2}\s+"
            r"\d{2}:\d{2}:\d{2}(?:\s+\w{3,4})?(?:\s+\d{4})?|\b\d{1,2}:\d{2}:\d{2}\b",
            re.I,
        ),
        "<date>",
        _DIGIT,
    ),
    (re.compile(r"""\b[A-Za-z]:\\[^\s'"]*|\\\\[^\s'"]+"""), "<path>", "\\"),  # C:\x, \\server\x
    (re.compile(r"""[^\s'"=(]*/[^\s'"]*[^\s'".,;:)]|[^\s'"=(/]*/"""), "<path>", "/"),
    (
        re.compile(
            r"\b[\w-]+(?:\.[\w-]+)*\.(?:h5|hdf5?|dat|mesh|sol|txt|params|xmf|in|out|cfg|choices|"
            r"asciibound|bin|nc|log|gz)\b",
            re.I,
        ),
        "<path>",
        ".",
    ),
    (re.compile(r"(?<=\bON )\S+(?= CANCELLED)"), "<node>", " CANCELLED"),
    (
        re.compile(r"\b(?:[a-z][\w]*-)*(?:node|nid|cn|compute|host)[-_]?\d+\b", re.I),
        "<node>",
        _DIGIT,
    ),
    (re.compile(r"\b(?:[a-z]\d+){3,}\b"), "<node>", _DIGIT),
    # cluster-named hosts (irene0107, topaze2164): lower-case letters then 3+ digits
    (re.compile(r"\b[a-z][a-z_-]*\d{3,}\b"), "<node>", _DIGIT),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<n>", _DIGIT),
    (re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d*)?(?:[ed][-+]?\d+)?(?![a-z_\d])", re.I), "<n>", _DIGIT),
    (re.compile(r"\s+"), " ", None),
)


# A signature is read from the start of a message: a message a whole file long (a log
# line of megabytes) must not cost seconds in the rules below.
SIGNATURE_SOURCE_CHARS = 1024


def error_signature(message: str) -> str:
    """The message with what varies between runs replaced by `<date>`, `<path>`, `<node>`, `<n>`."""
    signature = message[:SIGNATURE_SOURCE_CHARS]
    has_digit = _DIGIT.search(signature) is not None
    for pattern, placeholder, needs in _SIGNATURE_RULES:
        if needs is _DIGIT:
            if not has_digit:
                continue
        elif isinstance(needs, str) and needs not in signature:
            continue
        signature = pattern.sub(placeholder, signature)
    return signature.strip()


def classify_message(message: str) -> str:
    """The category of a solver error message; `unknown` when no rule says why."""
    signature = error_signature(message)
    for category, pattern in _MESSAGE_RULES:
        if pattern.search(signature):
            return category
    return "unknown"


def verdict_of(line: str) -> tuple[str, bool] | None:
    """(category, from the scheduler?) when `line` is a scheduler or runtime verdict."""
    if not _VERDICT_WORDS.search(line.casefold()):
        return None
    for category, pattern in _SCHEDULER_VERDICTS:
        if pattern.search(line):
            return category, True
    for category, pattern in _RUNTIME_VERDICTS:
        if pattern.search(line):
            return category, False
    return None


_FOREIGN_FIRST_LETTERS = frozenset("mpEs")  # mpirun, mpiexec, prterun, ERROR, srun


def is_foreign_error(line: str) -> bool:
    """Whether a (stripped) line is a launcher's or a coupled library's error."""
    return line[:1] in _FOREIGN_FIRST_LETTERS and _FOREIGN_ERRORS.search(line) is not None


_STEP_CANCELLED = re.compile(r"\*\*\*\s*STEP\s+\S+\s+ON\s+\S+\s+CANCELLED\s+AT\s+\S+\s*\*\*\*")
_CANCELLED_AT = re.compile(r"CANCELLED\s+AT\s+(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})")


@dataclass
class ErrorEvidence:
    """The lines that may explain how a run ended, collected in file order."""

    scheduler: tuple[str, str] | None = None
    runtime: tuple[str, str] | None = None
    solver_error: tuple[str, str] | None = None
    mpi_abort: str | None = None
    cancelled_at: datetime | None = None

    def observe(self, line: str, *, is_solver_error: bool = False) -> None:
        """Take one line; `is_solver_error` is the solver parser's judgement of it."""
        verdict = verdict_of(line)
        if verdict is not None:
            self._observe_verdict(line.strip(), *verdict)
        elif is_solver_error:
            self.observe_solver_error(line)
        # `_` has no other case: the case-insensitive search (~1 µs) only where it can match.
        elif (
            self.mpi_abort is None
            and ("_" in line or "job" in line)
            and _MPI_ABORT.search(line.strip())
        ):
            self.mpi_abort = line.strip()

    def observe_solver_error(self, message: str, category: str | None = None) -> None:
        """A solver error the parser assembled itself (several lines, maybe its own category).

        The first one wins; `category` must be a name of `records.ERROR_CATEGORIES`.
        """
        if self.solver_error is None:
            self.solver_error = (category or classify_message(message), message.strip())

    def _observe_verdict(self, line: str, category: str, from_scheduler: bool) -> None:
        if from_scheduler and self.scheduler is None:
            self.scheduler = (category, line)
            if (stamp := _CANCELLED_AT.search(line)) is not None:
                self.cancelled_at = datetime.fromisoformat(stamp.group(1))
        elif not from_scheduler and self.runtime is None:
            self.runtime = (category, line)

    def decisive(self) -> tuple[str, str] | None:
        """(category, the line that decided it), or None when nothing says the run failed.

        A kill explains the crash it causes, so it wins: a time limit, an oom-kill, a
        job cancelled by someone. A cancelled *step* yields to a crash or a solver
        error: once one task dies, Slurm cancels the step (`*** STEP 12.0 ON n1
        CANCELLED AT ...`, no reason given), the crash's consequence.
        """
        step_torn_down = self.scheduler is not None and _STEP_CANCELLED.search(self.scheduler[1])
        if step_torn_down:  # an MPI_ABORT is a cause too: srun cancels the step for it
            abort = ("mpi_abort", self.mpi_abort) if self.mpi_abort is not None else None
            order = (self.runtime, self.solver_error, abort, self.scheduler)
        else:
            order = (self.scheduler, self.runtime, self.solver_error)
        for found in order:
            if found is not None:
                return found
        return ("mpi_abort", self.mpi_abort) if self.mpi_abort is not None else None


@dataclass(frozen=True)
class Outcome:
    """Status and error columns of a run record, decided together."""

    status: Status
    error_category: str | None = None
    error_message: str | None = None
    error_signature: str | None = None


def decide_outcome(
    evidence: ErrorEvidence,
    *,
    has_log: bool,
    end_marker: bool,
    log_mtime: datetime | None,
    now: datetime,
) -> Outcome:
    """The run's status and error columns, by the rules of runs-schema.md and contract-notes."""
    if not has_log:
        return Outcome(Status.NOT_STARTED)
    if end_marker:
        return Outcome(Status.SUCCESS, "none")
    decided = evidence.decisive()
    if decided is not None:
        category, message = decided
        return Outcome(_STATUS_OF[category], category, message, error_signature(message))
    if log_mtime is not None and now - log_mtime <= RUNNING_WINDOW:
        return Outcome(Status.RUNNING)
    return Outcome(Status.TRUNCATED, "truncated")
