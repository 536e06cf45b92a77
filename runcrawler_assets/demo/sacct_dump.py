"""Slurm accounting as `sacct --parsable2` prints it: jobs, their steps, monthly dumps.

Why apart: accounting.py decides what each job was; this module only prints it, the way
sites keep it: one file per cluster and month (`<cluster>/sacct_<YYYY-MM>.txt`), each
the output of `sacct --allusers --parsable2` over that month, header first, every job
that was pending or running during the month in it, as it stood when the dump was taken
(the first instant of the next month; the last month's when the archive was dumped),
and modified then. A job spanning two months is in both: still RUNNING (or PENDING) in
the first, its steps' MaxRSS not measured yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runcrawler_assets.demo.files import posix_time, write_file
from runcrawler_assets.demo.launchers import slurm_time

FIELDS = (
    "JobID", "JobName", "User", "Account", "Partition", "State", "ExitCode", "Submit", "Start",
    "End", "Elapsed", "Timelimit", "AllocCPUS", "NNodes", "ReqMem", "MaxRSS", "NodeList",
    "WorkDir",
)  # fmt: skip
HEADER = "|".join(FIELDS)
UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class SacctStep:
    """One step of a job (`batch`, `extern`, `0`) as its final line shows it."""

    suffix: str
    name: str
    state: str
    exit_code: str
    cpus: int
    nodes: int
    rss_kb: int | None  # MaxRSS of its largest task; None: not measured
    node_list: str


@dataclass(frozen=True, slots=True)
class SacctJob:
    """One job line of the dumps and its steps, as they stand once the job ended.

    `start` None: it never started (cancelled while pending); `end` None: still running
    when the archive was dumped. `time_limit_s` None prints `no_limit` instead.
    """

    cluster: str
    job_id: str  # `123`, an array task `123_4`, a heterogeneous component `123+1`
    name: str
    user: str
    account: str
    partition: str
    state: str  # as printed: `CANCELLED by 10042`
    exit_code: str
    submit: datetime
    start: datetime | None
    end: datetime | None
    time_limit_s: int | None
    no_limit: str  # `Partition_Limit` or `UNLIMITED`
    alloc_cpus: int
    nodes: int
    req_mem: str  # as printed: `16G`, `4000Mn`, `2000Mc`
    req_mem_mb: float  # the whole job's
    node_list: str
    work_dir: str
    steps: tuple[SacctStep, ...]

    @property
    def max_rss_mb(self) -> float | None:
        """The largest MaxRSS of its steps, in MiB."""
        sizes = [step.rss_kb for step in self.steps if step.rss_kb is not None]
        return max(sizes) / 1024 if sizes else None


def duration(seconds: float) -> str:
    """`[D-]HH:MM:SS`, as sacct prints Elapsed and Timelimit."""
    days, rest = divmod(int(seconds), 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


def node_list(host: str, nodes: int, offset: int = 0) -> str:
    """Slurm's compressed host list of `nodes` consecutive nodes, `offset` after `host`."""
    stem = host.rstrip("0123456789")
    digits = host[len(stem) :]
    first, width = int(digits) + offset, len(digits)
    if nodes <= 1:
        return f"{stem}{first:0{width}d}"
    return f"{stem}[{first:0{width}d}-{first + nodes - 1:0{width}d}]"


def _time(moment: datetime | None) -> str:
    return UNKNOWN if moment is None else slurm_time(moment)


def _line(*cells: object) -> str:
    return "|".join(str(cell) for cell in cells)


def job_lines(job: SacctJob, at: datetime) -> list[str]:
    """The job's lines in a dump taken at `at`: final once it ended, else as it stood."""
    ended = job.end is not None and job.end <= at
    limit = job.no_limit if job.time_limit_s is None else duration(job.time_limit_s)
    if job.start is None or job.start > at:  # pending then, or cancelled before it started
        state, exit_code, end = (
            (job.state, job.exit_code, job.end) if ended else ("PENDING", "0:0", None)
        )
        return [
            _line(job.job_id, job.name, job.user, job.account, job.partition, state, exit_code,
                  _time(job.submit), UNKNOWN, _time(end), "00:00:00", limit, 0, job.nodes,
                  job.req_mem, "", "None assigned", job.work_dir)
        ]  # fmt: skip
    end = job.end if ended else None
    elapsed = duration(((end or at) - job.start).total_seconds())
    state, exit_code = (job.state, job.exit_code) if ended else ("RUNNING", "0:0")
    lines = [
        _line(job.job_id, job.name, job.user, job.account, job.partition, state, exit_code,
              _time(job.submit), _time(job.start), _time(end), elapsed, limit, job.alloc_cpus,
              job.nodes, job.req_mem, "", job.node_list, job.work_dir)
    ]  # fmt: skip
    for step in job.steps:
        step_state, step_exit = (step.state, step.exit_code) if ended else ("RUNNING", "0:0")
        rss = "" if step.rss_kb is None or not ended else f"{step.rss_kb}K" if step.rss_kb else "0"
        lines.append(
            _line(f"{job.job_id}.{step.suffix}", step.name, "", job.account, "", step_state,
                  step_exit, _time(job.start), _time(job.start), _time(end), elapsed, "",
                  step.cpus, step.nodes, job.req_mem, rss, step.node_list, "")
        )  # fmt: skip
    return lines


def _month(moment: datetime) -> tuple[int, int]:
    return moment.year, moment.month


def _next(month: tuple[int, int]) -> tuple[int, int]:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def months_between(first: tuple[int, int], last: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """Every month from `first` to `last`, both included."""
    month = first
    while month <= last:
        yield month
        month = _next(month)


def job_months(job: SacctJob, dumped_at: datetime) -> list[tuple[int, int]]:
    """The months whose dump holds the job: from its submission to its end (or the last)."""
    return list(months_between(_month(job.submit), _month(job.end or dumped_at)))


def dump_name(month: tuple[int, int]) -> str:
    return f"sacct_{month[0]:04d}-{month[1]:02d}.txt"


def _order(job: SacctJob) -> tuple[int, int]:
    """sacct's order: by job id, an array's tasks and a heterogeneous job's components after."""
    for mark in "_+":
        base, found, rest = job.job_id.partition(mark)
        if found:
            return int(base), int(rest)
    return int(job.job_id), -1


def write_dumps(
    directory: Path, cluster: str, jobs: Iterable[SacctJob], dumped_at: datetime
) -> int:
    """Write one cluster's monthly dumps, every month from its first job's to `dumped_at`'s
    (a month without jobs holds the header alone); returns the number of files."""
    by_month: defaultdict[tuple[int, int], list[SacctJob]] = defaultdict(list)
    for job in sorted(jobs, key=_order):
        for month in job_months(job, dumped_at):
            by_month[month].append(job)
    if not by_month:
        return 0
    months = list(months_between(min(by_month), _month(dumped_at)))
    for month in months:
        at = min(datetime(*_next(month), 1), dumped_at)
        lines = [HEADER, *(line for job in by_month[month] for line in job_lines(job, at))]
        content = "".join(line + "\n" for line in lines).encode("utf-8")
        write_file(directory / cluster / dump_name(month), content, posix_time(at))
    return len(months)
