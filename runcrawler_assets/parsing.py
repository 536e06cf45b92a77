"""One run's parse, as a parse worker runs it: its parser, its bounds, its JSON record.

Kept apart from `crawl.py` so that a worker process imports only the parsers, the
cleaning bounds and the run store, never pandas or DuckDB, which the crawl's warehouse
side needs (issue 16, goal 4: a worker importing `crawl` held ~90 MB; this, ~25 MB).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from runcrawler_assets.archive.discovery import DiscoveredRun
from runcrawler_assets.archive.runstore import PartitionStore, QuarantineEntry
from runcrawler_assets.solvers import registered_parsers
from runcrawler_assets.solvers.jobs import with_job_id
from runcrawler_assets.solvers.rundir import MAX_JOB_DURATION, bound_file_times
from runcrawler_assets.warehouse.cleaning import LIMITS, bound_record, shorten


@dataclass(frozen=True)
class ParseJob:
    """One run to parse and everything its worker needs (workers share nothing else)."""

    archive_root: Path
    runs_dir: Path
    cluster: str
    user: str
    run: DiscoveredRun
    now: datetime
    max_job_duration: timedelta = MAX_JOB_DURATION


def _quarantined(job: ParseJob, reason: str, detail: str) -> QuarantineEntry:
    detail = shorten(detail, LIMITS["message"])  # an exception may quote a whole file
    return QuarantineEntry(
        job.cluster, job.user, job.run.run_path, reason, detail, job.now.isoformat()
    )


def parse_job(job: ParseJob) -> str | QuarantineEntry:
    """Parse one run and write its record into the partition's store; returns its run id.

    A run gone since discovery, or any exception, becomes a quarantine entry (a vanished
    run would otherwise parse as an empty `not_started` row for a run that no longer
    exists). The record is written here, in the worker, so that both cores share the
    writing too and only a run id travels back; the index that lists it is written later
    by the crawl, so a crawl killed in between leaves at worst an orphan record file.
    """
    run_dir = job.archive_root / job.run.run_path
    try:
        if not stat.S_ISDIR(os.lstat(run_dir).st_mode):
            return _quarantined(job, "vanished", "no longer a folder when parsed")
        parser = next(p for p in registered_parsers() if p.name == job.run.solver)
        record = bound_file_times(
            with_job_id(run_dir, parser.parse(run_dir, job.archive_root, job.now)),
            job.max_job_duration,
        )
        # Every solver's record, plugins' too, is bounded before it is stored (contract-notes 16).
        record = bound_record(
            record.replace(
                cluster=job.cluster,
                user=job.user,
                fingerprint=job.run.fingerprint,
                parsed_at=job.now,
            )
        )
    except FileNotFoundError:
        return _quarantined(job, "vanished", "removed from the archive while the crawl ran")
    except Exception as error:  # a parser bug must not stop the partition
        return _quarantined(job, "parser_error", f"{type(error).__name__}: {error}")
    PartitionStore(job.runs_dir, job.cluster, job.user).write_record(record)
    return record.run_id


def parse_jobs(jobs: list[ParseJob]) -> list[str | QuarantineEntry]:
    """A batch of jobs in one worker call: fewer round trips than one job at a time."""
    return [parse_job(job) for job in jobs]
