"""The run record: one row of the `runs` table, one JSON file per run.

This module is the single source of truth for the columns of `runs`: the
DuckDB DDL (warehouse), the JSON files (crawl), the demo generator's truth
and the schema document all derive from `RUN_COLUMNS`. It also holds the
vocabulary the rest of the code shares: run statuses and error categories.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class TimingSource(StrEnum):
    """What a run's duration rests on: what was printed, or (last resort) a file's mtime."""

    LOG = "log"  # the solver printed its times (wall time, end, ClockTime)
    SCHEDULER = "scheduler"  # the scheduler's own time stamp (CANCELLED AT ...)
    FILE_MTIME = "file_mtime"  # a log's modification time: archives are copies, copies lose it


class Status(StrEnum):
    """How a run ended, as managers read it."""

    SUCCESS = "success"
    FAILED = "failed"
    KILLED = "killed"
    RUNNING = "running"
    TRUNCATED = "truncated"
    NOT_STARTED = "not_started"


@dataclass(frozen=True)
class ErrorCategory:
    name: str
    meaning: str
    status: Status


# The one table of error categories (runs-schema.md). Order is the order of
# the report's legend; `status` is the run status a category implies.
ERROR_CATEGORIES: tuple[ErrorCategory, ...] = (
    ErrorCategory("none", "the run succeeded", Status.SUCCESS),
    ErrorCategory("time_limit", "the scheduler cancelled it DUE TO TIME LIMIT", Status.KILLED),
    ErrorCategory("out_of_memory", "an oom-kill event, or an out-of-memory message", Status.KILLED),
    ErrorCategory("cancelled", "the scheduler cancelled it for another reason", Status.KILLED),
    ErrorCategory("segfault", "SIGSEGV / segmentation fault", Status.FAILED),
    ErrorCategory(
        "numerical_instability",
        "negative density, pressure or temperature; NaN",
        Status.FAILED,
    ),
    ErrorCategory("thermo_table", "temperature out of table bounds", Status.FAILED),
    ErrorCategory(
        "mixture",
        "mixture and solution do not match, unknown species, bad mixture database",
        Status.FAILED,
    ),
    ErrorCategory(
        "input_file",
        "a file cannot be opened or read, or an input dictionary lacks or mis-sets a keyword",
        Status.FAILED,
    ),
    ErrorCategory("mpi_abort", "MPI_ABORT with no more specific cause", Status.FAILED),
    ErrorCategory(
        "truncated", "the log stops with no error and no end marker, long ago", Status.TRUNCATED
    ),
    ErrorCategory("unknown", "it failed, and none of the above says why", Status.FAILED),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in ERROR_CATEGORIES)


def _col(sql: str, doc: str, default: Any = None) -> Any:
    """A dataclass field that carries its DuckDB type and its meaning."""
    return field(default=default, metadata={"sql": sql, "doc": doc})


def _swapped(sql: str, doc: str) -> Any:
    """A column only the warehouse's swap fills (a join, a learned id): never in a parsed
    record, so the cleaning policy has nothing to say of it."""
    return field(default=None, metadata={"sql": sql, "doc": doc, "swap": True})


@dataclass(frozen=True)
class RunRecord:
    """One run directory, as parsed. Field order is the column order of `runs`."""

    run_id: str = _col("VARCHAR", "hash of the run path relative to the archive root")
    cluster: str = _col("VARCHAR", "cluster folder name, decoded")
    user: str = _col("VARCHAR", "user folder name, decoded")
    run_path: str = _col("VARCHAR", "run directory relative to the archive root, /-separated")
    solver: str = _col("VARCHAR", "solver that claimed the run directory (avbp, ...)")
    solver_version: str | None = _col("VARCHAR", "solver version, e.g. 7.12.0")
    application: str | None = _col(
        "VARCHAR", "the program that ran, when the solver has several (OpenFOAM: simpleFoam, ...)"
    )
    created_at: datetime | None = _col("TIMESTAMP", "modification time of the parameter file")
    started_at: datetime | None = _col("TIMESTAMP", "run start, from the log")
    ended_at: datetime | None = _col("TIMESTAMP", "run end, from the log")
    host: str | None = _col("VARCHAR", "host the log says it ran on")
    n_procs: int | None = _col("INTEGER", "MPI processes")
    n_nodes: int | None = _col("BIGINT", "mesh nodes")
    n_cells: int | None = _col("BIGINT", "mesh cells")
    dimension: int | None = _col("INTEGER", "2 or 3")
    iterations_requested: int | None = _col("BIGINT", "simulation_end_iteration")
    iterations_done: int | None = _col("BIGINT", "last iteration printed, 0 if none")
    cpu_time_s: float | None = _col("DOUBLE", "total CPU time from the log's summary")
    wall_time_s: float | None = _col("DOUBLE", "elapsed wall time from the log's summary")
    cpu_hours: float | None = _col("DOUBLE", "CPU hours consumed")
    efficiency: float | None = _col("DOUBLE", "s.proc/(it.node); lower is better")
    efficiency_printed: float | None = _col("DOUBLE", "reduced efficiency as printed by the log")
    timing_source: str | None = _col(
        "VARCHAR",
        "what the run's duration rests on: log, scheduler or file_mtime (NULL: no duration)",
    )
    status: str = _col("VARCHAR", "success, failed, killed, running, truncated, not_started", "")
    stage_code: int | None = _col("INTEGER", "last milestone code reached (0 = success)")
    stage: str | None = _col("VARCHAR", "label of the last milestone reached")
    error_category: str | None = _col("VARCHAR", "error category (runs-schema.md)")
    error_message: str | None = _col("VARCHAR", "first error line as printed, stripped")
    error_signature: str | None = _col("VARCHAR", "error message with variable parts replaced")
    signature_id: str | None = _swapped(
        "VARCHAR", "learned: id of the error's template in signature_templates (set in the swap)"
    )
    mixture_name: str | None = _col("VARCHAR", "run.params mixture_name, lower-case")
    les_model: str | None = _col("VARCHAR", "run.params LES_model, lower-case")
    artificial_viscosity_model: str | None = _col(
        "VARCHAR", "run.params artificial_viscosity_model, lower-case"
    )
    convection_scheme: str | None = _col("VARCHAR", "run.params convection_scheme, lower-case")
    ncell_group: int | None = _col("INTEGER", "run.params ncell_group (ncgroup)")
    reactive_flow: bool | None = _col("BOOLEAN", "run.params reactive_flow")
    cfl: float | None = _col("DOUBLE", "run.params CFL")
    n_restarts: int = _col("INTEGER", "solver logs in the run directory minus one", 0)
    params: dict[str, Any] = field(
        default_factory=dict,
        metadata={"sql": "JSON", "doc": "every keyword of the parameter file, lower-case keys"},
    )
    # A run's case (issue 18), derived by the swap (warehouse/cases.py).
    case_folder: str | None = _swapped("VARCHAR", "the run's parent folder: its case")
    mesh_case: str | None = _swapped(
        "VARCHAR", "mesh file name | case folder name: the case, moved (NULL without a mesh)"
    )
    params_digest: str | None = _swapped("VARCHAR", "MD5 of the params JSON text")
    points_into: tuple[str, ...] | None = _swapped(
        "VARCHAR[]", "folders the parameters point into (../run_006/...): the runs it continues"
    )
    log_path: str | None = _col("VARCHAR", "the log that was read, relative to the archive root")
    log_bytes: int | None = _col("BIGINT", "size of the log that was read")
    # The scheduler's view (issue 17): the job id is read from the run's files; the rest is
    # joined from the accounting dumps when the run's rows are swapped into DuckDB.
    job_id: str | None = _col(
        "VARCHAR", "Slurm job id: from slurm-<id>.out, *.o<id>/*.e<id>, a log, or accounting"
    )
    queue: str | None = _swapped("VARCHAR", "accounting: Slurm partition the job ran in")
    account: str | None = _swapped("VARCHAR", "accounting: account charged")
    time_limit_s: int | None = _swapped(
        "BIGINT", "accounting: wall time requested (NULL: no limit)"
    )
    queue_wait_s: int | None = _swapped("BIGINT", "accounting: Start - Submit")
    alloc_cpus: int | None = _swapped("INTEGER", "accounting: CPUs allocated")
    alloc_nodes: int | None = _swapped("INTEGER", "accounting: compute nodes allocated")
    req_mem_mb: float | None = _swapped("DOUBLE", "accounting: memory requested, whole job, MiB")
    max_rss_mb: float | None = _swapped("DOUBLE", "accounting: largest MaxRSS of its steps, MiB")
    exit_code: str | None = _swapped("VARCHAR", "accounting: ExitCode as printed, rc:signal")
    scheduler_state: str | None = _swapped(
        "VARCHAR", "accounting: job state (COMPLETED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, ...)"
    )
    accounting_matched: bool | None = _swapped(
        "BOOLEAN", "a job of the accounting dumps was joined (NULL: no dumps for the cluster)"
    )
    parse_warnings: tuple[str, ...] = field(
        default=(),
        metadata={"sql": "VARCHAR[]", "doc": "what could not be read, and why"},
    )
    fingerprint: str = _col("VARCHAR", "paths, sizes and mtimes of the run's files", "")
    parsed_at: datetime | None = _col("TIMESTAMP", "when this record was produced")

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: timestamps as ISO 8601, plus the schema version. Only the
        timestamp and list fields are looked at (a swap turns every record into one)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **self.__dict__}
        for name in _TIMESTAMP_FIELDS:
            if isinstance(value := out[name], datetime):
                out[name] = value.isoformat()
        for name in _LIST_FIELDS:
            if isinstance(value := out[name], tuple):
                out[name] = list(value)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Inverse of `to_json_dict`; unknown keys (newer schema) are ignored."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported run record schema_version {version!r}")
        # as `__init__` would fill them, without passing it 60 arguments
        fields = {**_DEFAULTS, **{name: make() for name, make in _FACTORIES.items()}}
        fields.update((name, value) for name, value in data.items() if name in _FIELD_SET)
        for name in _TIMESTAMP_FIELDS:
            if fields[name] is not None:
                fields[name] = datetime.fromisoformat(fields[name])
        fields["parse_warnings"] = tuple(fields["parse_warnings"] or ())
        record = object.__new__(cls)
        record.__dict__.update(fields)
        return record

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls.from_json_dict(json.loads(text))

    def replace(self, **changes: Any) -> RunRecord:
        """A copy with `changes`, as `dataclasses.replace` gives, without calling `__init__`
        with every field (a record has no derived field to recompute): a parse replaces
        four times per run, and `dataclasses.replace` was a tenth of the parser's time."""
        unknown = changes.keys() - _FIELD_SET
        if unknown:
            raise TypeError(f"RunRecord has no field {', '.join(sorted(unknown))}")
        copy = object.__new__(RunRecord)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    doc: str
    swapped: bool = False  # filled by the warehouse's swap, never by a parser


# Read once: `dataclasses.fields` per record was a tenth of a swap's time.
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(RunRecord))
_FIELD_SET = frozenset(_FIELD_NAMES)
# Each field's default, in field order (`params`: a new dict per record, from its factory).
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunRecord)}
_FACTORIES = {
    f.name: f.default_factory
    for f in dataclasses.fields(RunRecord)
    if f.default_factory is not dataclasses.MISSING
}
_LIST_FIELDS = tuple(
    f.name for f in dataclasses.fields(RunRecord) if f.metadata["sql"].endswith("[]")
)
_TIMESTAMP_FIELDS = tuple(
    f.name for f in dataclasses.fields(RunRecord) if f.metadata["sql"] == "TIMESTAMP"
)

RUN_COLUMNS: tuple[Column, ...] = tuple(
    Column(f.name, f.metadata["sql"], f.metadata["doc"], f.metadata.get("swap", False))
    for f in dataclasses.fields(RunRecord)
)


def run_id_for(run_path: str) -> str:
    """The stable id of a run: a hash of its `/`-separated path relative to the archive root."""
    return hashlib.sha1(run_path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
