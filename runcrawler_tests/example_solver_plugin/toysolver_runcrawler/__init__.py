"""A minimal runcrawler solver plugin: the 'toy' solver, as a site would write its own.

A toy run directory holds `toy.inp` (`key = value` lines) and `toy.log`, which
prints `Step <n>` lines and `DONE` at the end, or `FATAL: <message>`. The
parser reuses runcrawler's shared pieces (bounded log reading, verdicts, the
run-directory frame) so that only what the toy solver prints lives here. It
declares no `stages` (they are optional): a plugin written before they existed
keeps working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.logtext import read_head, scan_log
from runcrawler_assets.solvers.rundir import (
    is_regular_file,
    list_run_files,
    parse_guarded,
    relative_to_archive,
    stat_mtime,
)
from runcrawler_assets.solvers.verdicts import ErrorEvidence, decide_outcome

INPUT_FILE = "toy.inp"
LOG_NAME = re.compile(r"toy\.log")
_STEP = re.compile(r"^Step (\d+)")
_FATAL = re.compile(r"^FATAL: ")
# What the bounded scan keeps of a long log (lower-case: matched on lower-cased text).
_SCAN_FOR = re.compile(rb"step |done|fatal|cancelled|oom|segmentation|time limit")


@dataclass
class ToyLog:
    """What a toy log says, fed line by line."""

    steps: int = 0
    done: bool = False
    evidence: ErrorEvidence = field(default_factory=ErrorEvidence)

    def feed(self, line: str) -> None:
        if (step := _STEP.match(line)) is not None:
            self.steps = int(step.group(1))
        self.done = self.done or line.strip() == "DONE"
        if _FATAL.match(line):
            self.evidence.observe_solver_error(line)
        else:
            self.evidence.observe(line)


class ToySolverParser:
    """The `SolverParser` of the toy solver: a directory holding `toy.inp`."""

    name = "toy"

    def detect(self, run_dir: Path) -> bool:
        return is_regular_file(Path(run_dir) / INPUT_FILE)

    def parse(self, run_dir: Path, archive_root: Path, now: datetime | None = None) -> RunRecord:
        return parse_guarded(self.name, run_dir, archive_root, now, _parse)


def _parse(
    base: RunRecord, run_dir: Path, archive_root: Path, now: datetime, warnings: list[str]
) -> RunRecord:
    head = read_head(run_dir / INPUT_FILE)
    warnings.extend(head.warnings)
    params = {
        key.strip().lower(): value.strip()
        for key, sep, value in (line.partition("=") for line in head.text.splitlines())
        if sep
    }
    record = base.replace(
        created_at=stat_mtime(run_dir / INPUT_FILE, warnings), params=params, iterations_done=0
    )
    (logs,) = list_run_files(run_dir, (LOG_NAME,), warnings)
    log = ToyLog()
    if logs:
        report = scan_log(logs[-1].path, log.feed, head_until=None, scan_for=_SCAN_FOR)
        warnings.extend(report.warnings)
    outcome = decide_outcome(
        log.evidence,
        has_log=bool(logs),
        end_marker=log.done,
        log_mtime=logs[-1].mtime if logs else None,
        now=now,
    )
    return record.replace(
        status=outcome.status.value,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        iterations_done=log.steps,
        log_path=relative_to_archive(logs[-1].path, archive_root) if logs else None,
        log_bytes=logs[-1].size if logs else None,
        parse_warnings=tuple(warnings),
    )
