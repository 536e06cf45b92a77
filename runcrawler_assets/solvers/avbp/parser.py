"""The AVBP parser: one run directory (run.params, solver logs, scheduler files) → one RunRecord.

Which files a run holds, in what order they are read, and the record put
together from them: the parameters (`params`), what the newest log and the
scheduler files said (`log`), the outcome (`verdicts`) and the durations
derived by contract-notes 2-4 (`rundir`).

Success is the end marker, whatever else was printed: the original tool
kept the highest milestone code and so reported successful runs as 900.
`parse` never raises: what cannot be read becomes a `parse_warnings` entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from runcrawler_assets.records import RunRecord, Status, TimingSource
from runcrawler_assets.solvers import StageLabel
from runcrawler_assets.solvers.avbp.log import AvbpLog, read_log, read_scheduler_file
from runcrawler_assets.solvers.avbp.milestones import MILESTONES, SUCCESS_CODE
from runcrawler_assets.solvers.avbp.params import PARAMS_FILE, read_params
from runcrawler_assets.solvers.rundir import (
    MarkerFileParser,
    RunFile,
    cpu_hours_of,
    efficiency_of,
    list_run_files,
    relative_to_archive,
    run_times,
    stat_mtime,
)
from runcrawler_assets.solvers.verdicts import ErrorEvidence, Outcome, decide_outcome

# ---------------------------------------------------------------- the run directory

# Plain names: `rundir.list_run_files` also finds them `.gz`, and in logs/, log/, output/.
SOLVER_LOG_NAME = re.compile(r"avbp\.o|job\.out|avbp_log\.txt|.+\.o\d+|log.*\.txt")
SCHEDULER_FILE_NAME = re.compile(r"slurm-\d+\.out|.+\.e\d+")


def list_avbp_files(run_dir: Path, warnings: list[str]) -> tuple[list[RunFile], list[RunFile]]:
    """(solver logs, scheduler files), each oldest first; only regular files count."""
    logs, scheduler = list_run_files(run_dir, (SOLVER_LOG_NAME, SCHEDULER_FILE_NAME), warnings)
    return logs, scheduler


# ---------------------------------------------------------------- derived columns


@dataclass(frozen=True)
class Timing:
    ended_at: datetime | None
    wall_time_s: float | None
    cpu_time_s: float | None
    cpu_hours: float | None
    efficiency: float | None
    efficiency_printed: float | None
    source: TimingSource | None


def derive_timing(log: AvbpLog, outcome: Outcome, newest: RunFile, warnings: list[str]) -> Timing:
    """Wall time, CPU hours and efficiency, by contract-notes 2-4."""
    values = log.values
    times = run_times(
        started_at=values.get("started_at"),
        printed_end=values.get("ended_at"),
        printed_wall_s=values.get("wall_time_s"),
        status=outcome.status,
        cancelled_at=log.evidence.cancelled_at,
        newest_log_mtime=newest.mtime,
        warnings=warnings,
    )
    wall = times.wall_time_s
    cpu = values.get("cpu_time_s")
    n_procs, n_nodes = values.get("n_procs"), values.get("n_nodes")
    cpu_hours = cpu_hours_of(cpu, wall, n_procs)
    computed = efficiency_of(wall, n_procs, log.iterations_done, n_nodes)
    printed = values.get("efficiency_printed")
    if printed and computed is not None and abs(computed - printed) > 0.05 * abs(printed):
        warnings.append(f"log: printed efficiency {printed:.4g} differs from {computed:.4g}")
    efficiency = printed if printed is not None else computed
    return Timing(times.ended_at, wall, cpu, cpu_hours, efficiency, printed, times.source)


# ---------------------------------------------------------------- the parser


class AvbpParser(MarkerFileParser):
    """The `SolverParser` for AVBP runs: a directory holding a regular `run.params`.

    Its stages are the milestones, in the order AVBP prints them.
    """

    def __init__(self) -> None:
        stages = tuple(StageLabel(m.code, m.label) for m in MILESTONES)
        super().__init__("avbp", PARAMS_FILE, _parse_run, stages)


def _parse_run(
    base: RunRecord, run_dir: Path, archive_root: Path, now: datetime, warnings: list[str]
) -> RunRecord:
    params_path = run_dir / PARAMS_FILE
    params = read_params(params_path)
    warnings.extend(params.warnings)
    record = base.replace(
        created_at=stat_mtime(params_path, warnings),
        params=dict(params.values),
        **params.settings,
    )
    logs, scheduler_files = list_avbp_files(run_dir, warnings)
    if not logs:
        outcome = decide_outcome(
            ErrorEvidence(), has_log=False, end_marker=False, log_mtime=None, now=now
        )
        return record.replace(
            status=outcome.status.value, iterations_done=0, parse_warnings=tuple(warnings)
        )
    newest = logs[-1]
    log, report = read_log(newest.path)
    warnings.extend(report.warnings)
    warnings.extend(log.warnings)
    for scheduler_file in scheduler_files:
        warnings.extend(read_scheduler_file(scheduler_file.path, log).warnings)
    log.settle()
    outcome = decide_outcome(
        log.evidence, has_log=True, end_marker=log.end_marker, log_mtime=newest.mtime, now=now
    )
    return _with_log(record, log, outcome, newest, archive_root, len(logs), warnings)


def _with_log(
    record: RunRecord,
    log: AvbpLog,
    outcome: Outcome,
    newest: RunFile,
    archive_root: Path,
    n_logs: int,
    warnings: list[str],
) -> RunRecord:
    """The record completed with what the newest log and the scheduler files said."""
    timing = derive_timing(log, outcome, newest, warnings)
    milestone = log.last_milestone
    if outcome.status == Status.SUCCESS:
        milestone = next(m for m in MILESTONES if m.code == SUCCESS_CODE)
    values = log.values
    return record.replace(
        solver_version=values.get("version"),
        started_at=values.get("started_at"),
        ended_at=timing.ended_at,
        host=values.get("host"),
        n_procs=values.get("n_procs"),
        n_nodes=values.get("n_nodes"),
        n_cells=values.get("n_cells"),
        dimension=values.get("dimension"),
        iterations_done=log.iterations_done,
        cpu_time_s=timing.cpu_time_s,
        wall_time_s=timing.wall_time_s,
        cpu_hours=timing.cpu_hours,
        efficiency=timing.efficiency,
        efficiency_printed=timing.efficiency_printed,
        timing_source=timing.source,
        status=outcome.status.value,
        stage_code=milestone.code if milestone else None,
        stage=milestone.label if milestone else None,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        n_restarts=n_logs - 1,
        log_path=relative_to_archive(newest.path, archive_root),
        log_bytes=newest.size,
        parse_warnings=tuple(warnings),
    )
