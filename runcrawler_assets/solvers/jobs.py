"""Which scheduler job a run was: its Slurm job id, read from the run's own files.

Why: the accounting dumps (issue 17) are joined to runs by cluster and job id.
Schedulers name their output after the job (`slurm-<id>.out`, `<name>.o<id>`,
`<name>.e<id>`, array tasks `slurm-<id>_<task>.out`), and their messages print
it (`*** JOB <id> ON ...`, `StepId=<id>.0`). A run directory restarted several
times holds several jobs: the run's job is the last one, the largest id (ids
grow on a cluster; file times do not survive a copy). Applied once by the
crawl to every solver's record, plugins included, when the parser set none.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.rundir import LOG_FOLDERS

# A job id as Slurm prints it: digits, an array task (`_4`), never a step (`.0`).
_ID = r"(\d+(?:_\d+)?)"
_FILE_NAME = re.compile(rf"(?:slurm-{_ID}\.out|.+\.[oe]{_ID})(?:\.gz)?")
_PRINTED = re.compile(rf"\bJOB {_ID} ON\b|\bStepId={_ID}\.|\bSLURM_JOB_ID={_ID}\b")


def _order(job_id: str) -> tuple[int, int]:
    job, _, task = job_id.partition("_")
    return int(job), int(task or -1)


def job_ids_in_names(names: list[str]) -> list[str]:
    """The job ids that these file names carry, in no particular order."""
    found = []
    for name in names:
        match = _FILE_NAME.fullmatch(name)
        if match:
            found.append(match.group(1) or match.group(2))
    return found


def _names(run_dir: Path) -> list[str]:
    """The names in the run directory and in those of its `LOG_FOLDERS` it holds."""
    try:
        names = os.listdir(run_dir)
    except OSError:
        return []  # unreadable: the parser has said so
    for folder in [name for name in LOG_FOLDERS if name in names]:
        try:
            names += os.listdir(run_dir / folder)
        except OSError:
            continue  # a file of that name, or unreadable
    return names


def job_id_of(run_dir: Path, record: RunRecord) -> str | None:
    """The run's (last) job id: from its files' names, else from its error message."""
    ids = job_ids_in_names(_names(run_dir))
    if ids:
        return max(ids, key=_order)
    match = _PRINTED.search(record.error_message or "")
    return next((group for group in match.groups() if group), None) if match else None


def with_job_id(run_dir: Path, record: RunRecord) -> RunRecord:
    """The record with its job id, unless its parser already set one."""
    if record.job_id is not None:
        return record
    job_id = job_id_of(run_dir, record)
    return record if job_id is None else record.replace(job_id=job_id)
