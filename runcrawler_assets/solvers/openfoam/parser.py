"""The OpenFOAM parser: one case directory (system/, constant/, log files) → one RunRecord.

Which files of a case are logs, and the record put together from them: the
settings (`case_settings`), every log and scheduler output cut into application
runs (`log`), the run that decides (`case_runs`), the outcome (`verdicts`) and
the durations derived by contract-notes 2-4 (`rundir`). docs/contract-notes.md
(OpenFOAM) lists the column mapping.

Success is the solver's closing `End` line, whatever else was printed.
`parse` never raises: what cannot be read becomes a `parse_warnings` entry.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from runcrawler_assets.records import RunRecord, Status
from runcrawler_assets.solvers import StageLabel
from runcrawler_assets.solvers.openfoam.case_runs import chronological, sort_case_runs
from runcrawler_assets.solvers.openfoam.case_settings import CONTROL_DICT, read_case_settings
from runcrawler_assets.solvers.openfoam.log import AppRun, read_foam_file
from runcrawler_assets.solvers.openfoam.stages import SOLVER_LOOP, STAGES, SUCCESS
from runcrawler_assets.solvers.rundir import (
    MarkerFileParser,
    cpu_hours_of,
    efficiency_of,
    list_run_files,
    relative_to_archive,
    run_times,
    stat_mtime,
)
from runcrawler_assets.solvers.verdicts import ErrorEvidence, Outcome, decide_outcome

# Application logs, as users and scripts name them (a `.gz` suffix aside, see rundir):
# `log.<app>[.<suffix>|_<suffix>]` (Allrun's runApplication), `<app>[_<suffix>].log` (tee),
# `log`, `log.parallel`. The name's application counts only when the log has no banner:
# the banner's `Exec :` says what ran (`log.simpleFoam` may hold a foamRun run).
LOG_NAME = re.compile(
    r"log\.([A-Za-z][A-Za-z0-9]*)(?:[._-][\w.-]*)?|([A-Za-z][A-Za-z0-9]*)(?:[._-][\w.-]*)?\.log|log"
)
# Batch outputs: verdicts, or the solver's own output when it was not redirected
# (`slurm-<id>.out`, `<name>.o<id>`/`.e<id>`, `#SBATCH --output=<name>.out`, `<name>.err`).
SCHEDULER_NAME = re.compile(r".+\.[oe]\d+|.+\.out|.+\.err")


def application_of_log_name(name: str) -> str | None:
    """The application a log's name suggests (`log.blockMesh`, `pimpleFoam.log`), if any."""
    found = LOG_NAME.fullmatch(name.removesuffix(".gz"))
    return (found.group(1) or found.group(2)) if found else None


class OpenFoamParser(MarkerFileParser):
    """The `SolverParser` for OpenFOAM cases: a directory holding a regular `system/controlDict`."""

    def __init__(self) -> None:
        stages = tuple(StageLabel(s.code, s.label) for s in STAGES)
        super().__init__("openfoam", str(CONTROL_DICT), _parse_case, stages)


def _parse_case(
    base: RunRecord, run_dir: Path, archive_root: Path, now: datetime, warnings: list[str]
) -> RunRecord:
    case = read_case_settings(run_dir)
    warnings.extend(case.warnings)
    record = base.replace(
        created_at=stat_mtime(run_dir / CONTROL_DICT, warnings),
        params=case.params,
        **case.settings,
    )
    logs, scheduler_files = list_run_files(run_dir, (LOG_NAME, SCHEDULER_NAME), warnings)
    runs: list[AppRun] = []
    for source in [*logs, *scheduler_files]:
        file_runs, read_warnings = read_foam_file(source, application_of_log_name(source.path.name))
        runs.extend(file_runs)
        warnings.extend(read_warnings)
    sorted_runs = sort_case_runs(runs, case.application)
    deciding, mesh = sorted_runs.deciding, sorted_runs.mesh
    record = record.replace(
        solver_version=_version(deciding, runs),
        n_cells=mesh.n_cells if mesh else None,
        n_nodes=mesh.n_points if mesh else None,
        dimension=mesh.dimension if mesh else None,
        stage_code=sorted_runs.stage.code if sorted_runs.stage else None,
        stage=sorted_runs.stage.label if sorted_runs.stage else None,
        n_restarts=max(sorted_runs.n_solver_logs - 1, 0),
    )
    # Scheduler lines outside any banner (a job.e<id>, a slurm-<id>.out) are the case's.
    loose = [(run, line) for run in runs if run.application is None for line in run.verdict_lines]
    if deciding is None:
        read_results = sorted_runs.read_results
        after = read_results.application if read_results else None
        return _without_solver_run(
            record, loose, case.application, after, archive_root, now, warnings
        )
    for _, line in loose:
        deciding.evidence.observe(line)
    outcome = decide_outcome(
        deciding.evidence,
        has_log=True,
        end_marker=deciding is sorted_runs.solver and deciding.ended,
        log_mtime=deciding.source.mtime,
        now=now,
    )
    if outcome.status == Status.TRUNCATED and deciding.divergence is not None:
        deciding.evidence.observe_solver_error(deciding.divergence, "numerical_instability")
        outcome = decide_outcome(
            deciding.evidence, has_log=True, end_marker=False, log_mtime=None, now=now
        )
    if deciding.copies > 1:
        warnings.append(
            f"{deciding.source.path.name}: {deciding.copies} copies of {deciding.application} "
            "wrote into it at once (launched by mpirun without -parallel?): one run counted"
        )
    return _with_run(record, deciding, outcome, case.n_subdomains, archive_root, warnings)


def _version(deciding: AppRun | None, runs: list[AppRun]) -> str | None:
    """The deciding run's version; else the newest other log's (a launch failure has no banner)."""
    if deciding is not None and deciding.version is not None:
        return deciding.version
    versions = [r for r in sorted(runs, key=chronological) if r.version is not None]
    return versions[-1].version if versions else None


def _without_solver_run(
    record: RunRecord,
    loose: list[tuple[AppRun, str]],
    application: str | None,
    ran_after: str | None,
    archive_root: Path,
    now: datetime,
    warnings: list[str],
) -> RunRecord:
    """No solver log, no failed utility: not started, unless the scheduler killed the job.

    A job killed for its time limit whose solver log was never copied still says so in
    the scheduler's error stream (`job.e<id>`): killed, from that file, steps unknown.
    Post-processing that ran (`ran_after`: its application) read a solver's results, so
    the solver ran but its log was not copied: not started as the archive holds it, its
    steps unknown (NULL) rather than none.
    """
    evidence = ErrorEvidence()
    for _, line in loose:
        evidence.observe(line)
    if evidence.scheduler is None:
        outcome = decide_outcome(evidence, has_log=False, end_marker=False, log_mtime=None, now=now)
        if ran_after is not None:
            warnings.append(f"no solver log, though {ran_after} read its results: steps unknown")
        return record.replace(
            status=outcome.status.value,
            iterations_done=None if ran_after else 0,
            parse_warnings=tuple(warnings),
        )
    outcome = decide_outcome(evidence, has_log=True, end_marker=False, log_mtime=None, now=now)
    source = next(run.source for run, line in loose if line == evidence.scheduler[1])
    return record.replace(
        application=application,
        ended_at=evidence.cancelled_at,
        status=outcome.status.value,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        log_path=relative_to_archive(source.path, archive_root),
        log_bytes=source.size,
        parse_warnings=(*warnings, "no solver log: the scheduler's verdict alone decides"),
    )


def _n_procs(run: AppRun, n_subdomains: int | None, warnings: list[str]) -> int | None:
    """nProcs as printed; else the decomposition's subdomains for a `-parallel` run; else 1.

    The dictionary may have been edited since the run: the log says what ran.
    """
    if "n_procs" in run.banner:
        printed = int(run.banner["n_procs"])
        if n_subdomains and "-parallel" in run.exec_args and printed != n_subdomains:
            warnings.append(
                f"decomposeParDict says {n_subdomains} subdomains, the log ran on {printed}"
            )
        return printed
    if "-parallel" in run.exec_args and n_subdomains:
        return n_subdomains
    return 1 if run.has_banner else None


def _with_run(
    record: RunRecord,
    run: AppRun,
    outcome: Outcome,
    n_subdomains: int | None,
    archive_root: Path,
    warnings: list[str],
) -> RunRecord:
    """The record completed with what the deciding application run said."""
    n_procs = _n_procs(run, n_subdomains, warnings)
    started_at = run.started_at
    wall = run.clock_time_s
    cpu = run.execution_time_s * n_procs if run.execution_time_s is not None and n_procs else None
    # OpenFOAM prints no end time: the last ClockTime after the banner's start is the
    # last moment the log vouches for (the end of a success, a lower bound otherwise).
    last_printed = None
    if started_at is not None and wall is not None:
        last_printed = started_at + timedelta(seconds=wall)
    success = outcome.status == Status.SUCCESS
    times = run_times(
        started_at=started_at,
        printed_end=last_printed if success else None,
        printed_wall_s=wall if success else None,
        status=outcome.status,
        cancelled_at=run.evidence.cancelled_at,
        newest_log_mtime=run.source.mtime,
        warnings=warnings,
        last_printed=last_printed,
    )
    wall = times.wall_time_s
    iterations = run.time_steps if record.stage_code in (SOLVER_LOOP.code, SUCCESS.code) else 0
    return record.replace(
        application=run.application,
        started_at=started_at,
        ended_at=times.ended_at,
        host=run.banner.get("host"),
        n_procs=n_procs,
        iterations_done=iterations,
        cpu_time_s=cpu,
        wall_time_s=wall,
        cpu_hours=cpu_hours_of(cpu, wall, n_procs),
        efficiency=efficiency_of(wall, n_procs, iterations, record.n_nodes),
        timing_source=times.source,
        status=outcome.status.value,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        error_signature=outcome.error_signature,
        log_path=relative_to_archive(run.source.path, archive_root),
        log_bytes=run.source.size,
        parse_warnings=tuple(warnings),
    )
