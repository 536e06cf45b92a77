"""Slurm accounting dumps (`sacct --parsable2` output): one folded record per job, streamed.

Sites copy sacct output beside the run archive; it tells what the scheduler saw
(state, limits, memory) where a solver's log cannot. Dumps reach gigabytes, so a
read goes line by line with one job in hand, and whatever cannot be read becomes
a `DumpProblem` next to the jobs, never an exception nor a silent gap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

# Stored text is bounded: a runaway field must not bloat the warehouse.
MAX_TEXT = 512
# Longer lines are skipped, so that memory stays flat even on a file with no newline.
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Job:
    """One Slurm job as its dump lines tell it, steps folded in."""

    cluster: str
    job_id: str
    name: str | None
    user: str | None
    account: str | None
    queue: str | None
    state: str | None
    state_detail: str | None
    exit_code: str | None
    submit_at: datetime | None
    start_at: datetime | None
    end_at: datetime | None
    elapsed_s: int | None
    time_limit_s: int | None
    alloc_cpus: int | None
    alloc_nodes: int | None
    req_mem_mb: float | None
    max_rss_mb: float | None
    node_list: str | None
    work_dir: str | None
    line: int


@dataclass(frozen=True, slots=True)
class DumpProblem:
    """Something in a dump that could not be read; line 0 means the file as a whole."""

    file: str
    line: int
    reason: str


# --- values -----------------------------------------------------------------

_NO_TIME = frozenset({"", "unknown", "none"})
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")
# No limit known, or Slurm saying it has no valid value.
_NO_DURATION = frozenset({"", "UNLIMITED", "PARTITION_LIMIT", "INVALID"})
# Digit counts are bounded so that no value overflows the warehouse's numbers.
_DURATION = re.compile(r"(?:(\d{1,9})-)?(\d{1,9}(?::\d{1,9}){0,2})(\.\d{1,9})?")
_MEMORY = re.compile(r"(\d{1,15}(?:\.\d{1,9})?)([KMGTP]?)([nc]?)", re.IGNORECASE)
_UNIT_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}


def _shown(value: str) -> str:
    """A value quoted for a message, cut so that messages stay short."""
    return repr(value if len(value) <= 60 else value[:60] + "...")


def parse_slurm_time(text: str) -> datetime | None:
    """A time as sacct prints it (ISO, the cluster's local time); Unknown, None, empty: none."""
    value = text.strip()
    if not value[:1].isdigit() and value.lower() in _NO_TIME:
        return None
    if _TIME.fullmatch(value) is None:
        raise ValueError(f"{_shown(value)} is not a Slurm time (YYYY-MM-DDTHH:MM:SS)")
    try:
        return datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{_shown(value)} is not a real date ({error})") from None


def parse_duration_s(text: str) -> int | None:
    """Seconds from Slurm's `[D-]HH:MM:SS`, `MM:SS[.mmm]`; None when no limit is known.

    Slurm's own input grammar decides the short forms: `M`, `D-H`, `D-H:M`.
    UNLIMITED, Partition_Limit and INVALID all mean "no known duration".
    """
    value = text.strip()
    if not value[:1].isdigit() and value.upper() in _NO_DURATION:
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a Slurm duration ([D-]HH:MM:SS or MM:SS)")
    days, clock, fraction = match.groups()
    parts = [int(part) for part in clock.split(":")]
    if days is None:
        # M, M:S, H:M:S
        hours, minutes, seconds = parts if len(parts) == 3 else (0, *parts, 0)[:3]
    else:
        hours, minutes, seconds = (*parts, 0, 0)[:3]
        if hours >= 24:
            raise ValueError(f"{_shown(value)} has {hours} hours after a day count (at most 23)")
    if any(part >= 60 for part in parts[1:]):
        raise ValueError(f"{_shown(value)} has minutes or seconds of 60 or more")
    if fraction and len(parts) < (2 if days is None else 3):
        raise ValueError(f"{_shown(value)} has a fraction on something other than seconds")
    total = int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    return round(total + float(fraction)) if fraction else total


def parse_memory_mb(text: str, nodes: int | None = None, cpus: int | None = None) -> float | None:
    """Megabytes (MiB) from a sacct size: `123456K`, `16G`, a bare number of bytes.

    Old Slurm prints ReqMem per node (`4000Mn`) or per CPU (`2000Mc`): the
    whole job's request is that times `nodes` or `cpus`, unknown (None) when the
    count is unknown or zero, as for a pending job that has no CPUs yet.
    """
    value = text.strip()
    if not value:
        return None
    match = _MEMORY.fullmatch(value)
    if match is None:
        raise ValueError(f"{_shown(value)} is not a Slurm memory size (a number with K, M, G or T)")
    number, unit, scope = match.groups()
    megabytes = float(number) * 1024 ** _UNIT_POWER[unit.upper()] / 1024**2
    if not scope:
        return megabytes
    count = nodes if scope.lower() == "n" else cpus
    return megabytes * count if count else None


def _parse_count(text: str) -> int | None:
    """A whole number (CPUs, nodes)."""
    value = text.strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{_shown(value)} is not a whole number")
    if len(value) > 9:
        raise ValueError(f"{_shown(value)} is too large a count")
    return int(value)


# --- header -----------------------------------------------------------------

# sacct column, lower-cased -> Job field. The header decides which are present.
_COLUMNS = {
    "jobid": "job_id",
    "jobname": "name",
    "user": "user",
    "account": "account",
    "partition": "queue",
    "state": "state",
    "exitcode": "exit_code",
    "submit": "submit_at",
    "start": "start_at",
    "end": "end_at",
    "elapsed": "elapsed_s",
    "timelimit": "time_limit_s",
    "alloccpus": "alloc_cpus",
    "nnodes": "alloc_nodes",
    "reqmem": "req_mem_mb",
    "maxrss": "max_rss_mb",
    "nodelist": "node_list",
    "workdir": "work_dir",
}
_PARSERS: dict[str, Callable[[str], Any]] = {
    "submit_at": parse_slurm_time,
    "start_at": parse_slurm_time,
    "end_at": parse_slurm_time,
    "elapsed_s": parse_duration_s,
    "time_limit_s": parse_duration_s,
    "alloc_cpus": _parse_count,
    "alloc_nodes": _parse_count,
    "max_rss_mb": parse_memory_mb,
}


@dataclass(frozen=True)
class _Header:
    """Where each known column sits in a line."""

    width: int
    job_id_at: int
    state_at: int | None
    texts: tuple[tuple[int, str], ...]  # (index, Job field) kept as printed
    # (index, Job field, column as printed, parser, its recent results)
    parsed: tuple[tuple[int, str, str, Callable[[str], Any], dict[str, Any]], ...]
    req_mem: tuple[int, str] | None  # apart: it scales by the line's nodes or CPUs


def _is_header(cells: list[str]) -> bool:
    return any(cell.strip().lower() == "jobid" for cell in cells)


def _read_header(cells: list[str]) -> tuple[_Header | None, list[str]]:
    """The column layout a header line gives, and what in it was not understood."""
    names = [cell.strip() for cell in cells]
    names[0] = names[0].lstrip("\ufeff")  # a Windows copy may start with a BOM
    if len(names) > 1 and not names[-1]:  # `--parsable` ends lines with `|`
        names.pop()
    if not _is_header(names):
        return None, ["no sacct header: the first line has no JobID column; file skipped"]
    reasons: list[str] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        field = _COLUMNS.get(name.lower())
        if field is None:
            reasons.append(f"unknown column {_shown(name)} in the header; ignored")
        elif field in seen:
            reasons.append(f"column {_shown(name)} appears twice in the header; second ignored")
        else:
            seen[field] = index
    req_mem_at = seen.pop("req_mem_mb", None)
    header = _Header(
        width=len(names),
        job_id_at=seen.pop("job_id"),
        state_at=seen.pop("state", None),
        texts=tuple((index, field) for field, index in seen.items() if field not in _PARSERS),
        parsed=tuple(
            (index, field, names[index], _PARSERS[field], {})
            for field, index in seen.items()
            if field in _PARSERS
        ),
        req_mem=None if req_mem_at is None else (req_mem_at, names[req_mem_at]),
    )
    return header, reasons


# --- lines ------------------------------------------------------------------


# Parsed values remembered per column: steps repeat their job's times, limits
# repeat across jobs; parsing each once makes reading a big dump much faster.
_RECENT_VALUES = 4096


def _cut(text: str) -> str:
    return text[:MAX_TEXT]


def _read_values(cells: list[str], header: _Header) -> tuple[dict[str, Any], list[str]]:
    """One line's known values by Job field (no None: steps fill only gaps); bad ones explained."""
    values: dict[str, Any] = {}
    reasons: list[str] = []
    for index, field in header.texts:
        if cell := cells[index].strip():
            values[field] = _cut(cell)
    if header.state_at is not None and (cell := cells[header.state_at].strip()):
        values["state_detail"] = _cut(cell)
        values["state"] = _cut(cell.split(maxsplit=1)[0].upper())
    for index, field, column, parse, recent in header.parsed:
        cell = cells[index].strip()
        if not cell:
            continue
        value = recent.get(cell)
        if value is None:
            try:
                value = parse(cell)
            except ValueError as error:
                reasons.append(f"{column}: {error}; left empty")
                continue
            if len(recent) >= _RECENT_VALUES:
                recent.clear()
            recent[cell] = value
        if value is not None:
            values[field] = value
    if header.req_mem is not None:
        index, column = header.req_mem
        try:
            value = parse_memory_mb(
                cells[index], values.get("alloc_nodes"), values.get("alloc_cpus")
            )
        except ValueError as error:
            reasons.append(f"{column}: {error}; left empty")
        else:
            if value is not None:
                values["req_mem_mb"] = value
    return values, reasons


_DIGITS = frozenset("0123456789")


def _job_key(raw_id: str) -> str:
    """The job a line belongs to: `123.batch`, `123+1`, `123+0.0` -> `123`; `123_4.0` -> `123_4`."""
    if "." in raw_id or "+" in raw_id:
        return _cut(raw_id.split(".", 1)[0].split("+", 1)[0])
    return _cut(raw_id)


# Only a job line speaks for these: a step's state is not its job's.
_JOB_LINE_ONLY = frozenset({"state", "state_detail", "exit_code"})
_VALUE_FIELDS = tuple(
    f.name for f in fields(Job) if f.name not in {"cluster", "job_id", "line", "max_rss_mb"}
)


class _Group:
    """One job's consecutive lines, folded as they come: all a read holds in memory."""

    __slots__ = ("has_job_line", "key", "line", "max_rss", "values")

    def __init__(self, key: str, line: int) -> None:
        self.key = key
        self.line = line
        self.values: dict[str, Any] = {}
        self.has_job_line = False
        self.max_rss: float | None = None

    def add(self, values: dict[str, Any], job_line: bool) -> None:
        """The job line's values win; steps and later het components fill the gaps."""
        rss = values.pop("max_rss_mb", None)
        if rss is not None and (self.max_rss is None or rss > self.max_rss):
            self.max_rss = rss
        if job_line and not self.has_job_line:
            self.has_job_line = True
            self.values.update(values)
            return
        for field, value in values.items():
            if field not in _JOB_LINE_ONLY:
                self.values.setdefault(field, value)

    def job(self, cluster: str) -> Job:
        return Job(
            cluster=cluster,
            job_id=self.key,
            line=self.line,
            max_rss_mb=self.max_rss,
            **{field: self.values.get(field) for field in _VALUE_FIELDS},
        )


def _numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, str | None]]:
    """(line number, text without its end), text None for a line too long to read."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, raw.rstrip(b"\r\n").decode("utf-8", errors="replace")


def read_dump(path: Path, cluster: str, name: str | None = None) -> Iterator[Job | DumpProblem]:
    """Every job of one sacct dump, folded, with the problems met on the way.

    sacct prints a job's steps right after it, so consecutive lines of one job
    are folded and the job is yielded when the next one starts: memory stays
    flat whatever the file's size. A step away from its job comes out as a job
    of its own with the job's id; `merge_jobs` joins such duplicates. `name`
    is how problems name the file (default: the file's name).
    """
    file = path.name if name is None else name
    cluster = _cut(cluster)
    header: _Header | None = None
    group: _Group | None = None
    with path.open("rb") as stream:
        for number, text in _numbered_lines(stream):
            if text is None:
                yield DumpProblem(file, number, f"line longer than {MAX_LINE_BYTES} bytes; skipped")
                continue
            if not text.strip():
                continue
            cells = text.split("|")
            fits, raw_id = False, ""
            if header is not None:
                if len(cells) == header.width + 1 and not cells[-1].strip():
                    cells.pop()  # `--parsable` ends lines with `|`
                fits = len(cells) == header.width
                raw_id = cells[header.job_id_at].strip() if fits else ""
                if raw_id[:1] in _DIGITS:  # Slurm job ids are numbers
                    values, reasons = _read_values(cells, header)
                    key = _job_key(raw_id)
                    if group is not None and group.key != key:
                        yield group.job(cluster)
                        group = None
                    for reason in reasons:
                        yield DumpProblem(file, number, reason)
                    if group is None:
                        group = _Group(key, number)
                    group.add(values, job_line="." not in raw_id)
                    continue
            # Not a job's line: the header, or a header again (dumps appended: `sacct >> file`)?
            if header is None or _is_header(cells):
                header, reasons = _read_header(cells)
                for reason in reasons:
                    yield DumpProblem(file, number, reason)
                if header is None:
                    return
            elif not fits:
                reason = f"{len(cells)} fields where the header has {header.width}; line skipped"
                yield DumpProblem(file, number, reason)
            else:
                what = f"JobID {_shown(raw_id)} is not a job id" if raw_id else "empty JobID"
                yield DumpProblem(file, number, f"{what}; line skipped")
    if group is not None:
        yield group.job(cluster)
    if header is None:
        yield DumpProblem(file, 0, "no sacct header: the file is empty")


# --- merging ----------------------------------------------------------------

_FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "CANCELLED",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
    }
)
_FIELD_NAMES = tuple(f.name for f in fields(Job))


def _finality(job: Job) -> tuple[Any, ...]:
    """How far along a sighting of a job is; ties broken on content, so order never matters."""
    values = [getattr(job, name) for name in _FIELD_NAMES]
    return (
        job.state in _FINAL_STATES,
        job.end_at is not None,
        job.end_at or datetime.min,
        sum(value is not None for value in values),
        tuple("" if value is None else str(value) for value in values),
    )


def merge_jobs(a: Job, b: Job) -> Job:
    """One record from two sightings of a job (overlapping dumps, a step apart from its job).

    Where both have a value, the more finished sighting wins (a final state,
    then an end time, the later one); where one lacks it, the other fills it;
    MaxRSS is the larger. The result does not depend on the order of a and b.
    """
    if (a.cluster, a.job_id) != (b.cluster, b.job_id):
        raise ValueError(
            f"cannot merge job {a.cluster}/{a.job_id} with a different job {b.cluster}/{b.job_id}"
        )
    first, second = sorted((a, b), key=_finality, reverse=True)
    filled = {
        name: getattr(second, name)
        for name in _FIELD_NAMES
        if getattr(first, name) is None and getattr(second, name) is not None
    }
    sizes = [job.max_rss_mb for job in (a, b) if job.max_rss_mb is not None]
    filled["max_rss_mb"] = max(sizes) if sizes else None
    return replace(first, **filled)
