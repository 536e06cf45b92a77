"""The `runcrawler` command: one subcommand per thing a user does from a shell.

Each subcommand is a thin shell over a core function: it turns options into
arguments, shows progress on stderr and prints a one-line result on stdout.
Errors are handled once, by the group: a `RuncrawlerError` from any command
ends it with one `Error: ...` line, never a traceback (exit 2 when what it
was given must change, as click's usage errors, else 1); `check`, whose exit
code is its answer, ends every error with 3 instead. An option that
stands for a variable declares it and is checked by config.py's own parser,
so `--layout` and RUNCRAWLER_LAYOUT accept the same values and say the same
thing. Dagster and pandas are imported inside the commands: `--help` stays
instant.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from runcrawler_assets.config import BIG_ARCHIVE_RUNS, VARIABLES, Config, ConfigError
from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.progress import DEFAULT_INTERVAL_S, Progress

if TYPE_CHECKING:  # the crawl's modules load pandas and DuckDB: not for `--help`
    from runcrawler_assets.crawl import ArchiveCheck


class _Runcrawler(click.Group):
    """The command group: turns a `RuncrawlerError` into click's one-line `Error: ...`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RuncrawlerError as error:
            failure = click.ClickException(" ".join(str(error).splitlines()))
            failure.exit_code = error.exit_code
            raise failure from error


@click.group(cls=_Runcrawler, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runcrawler", prog_name="runcrawler")
def main() -> None:
    """runcrawler: how a team really uses its parallel solver, read from its run archive.

    The archive (<root>/<cluster>/<user>/.../<run dir>/run.params and solver
    logs) is only ever read. Run `runcrawler COMMAND --help` for one command.
    """


class _VariableText(click.ParamType):
    """An option's text, checked as config.py checks the variable it stands for."""

    def __init__(self, variable: str) -> None:
        self.variable = VARIABLES[variable]
        self.name = variable

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            self.variable.read(value)
        except ConfigError:
            self.fail(f"{value!r} is not {self.variable.allowed}", param, ctx)
        return value


def _variable_option(
    *decls: str, variable: str, metavar: str, help: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option standing for `variable`: read from it when not given, then its default."""
    return click.option(
        *decls,
        type=_VariableText(variable),
        envvar=variable,
        show_envvar=True,
        default=VARIABLES[variable].unset,
        show_default=True,
        metavar=metavar,
        help=help,
    )


def _config(options: dict[str, str]) -> Config:
    """The config of the environment, the options' texts (by variable) in place of theirs."""
    return Config.from_env(overrides=options)


ARCHIVE_OPTION = _variable_option(
    "--archive",
    variable="RUNCRAWLER_ARCHIVE",
    metavar="DIR",
    help="The archive root (read only).",
)
DATA_OPTION = _variable_option(
    "--data",
    variable="RUNCRAWLER_DATA",
    metavar="DIR",
    help="Where runcrawler writes (DuckDB, JSON runs, charts).",
)

PROGRESS_OPTION = click.option(
    "--progress-every",
    default=DEFAULT_INTERVAL_S,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="When stderr is not a terminal (CI, logs): one plain progress line at most this "
    "often, in place of the bar.",
)


@contextmanager
def _stderr_as_now() -> Iterator[TextIO]:
    """Where progress goes during a crawl: stderr as it is before Dagster starts.

    While a step runs, Dagster points file descriptor 2 at the step's log file
    (mirrored to the terminal later): seen from there stderr is never a terminal,
    so the bar would turn into plain lines. A copy of the descriptor taken now
    still reaches the terminal, or the CI log, directly.
    """
    try:
        copy = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # click's test runner: no descriptor
        yield sys.stderr
        return
    sys.stderr.flush()
    with os.fdopen(copy, "w", encoding=sys.stderr.encoding, errors="replace") as stream:
        yield stream


@main.command("demo-archive")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--runs",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many run directories to write.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same archive.")
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write here, outside PATH, one JSON line per run: what a correct parser reports.",
)
@click.option(
    "--openfoam",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Also write this many OpenFOAM cases (a mixed archive).",
)
@click.option(
    "--templates",
    type=click.IntRange(min=0),
    help="Render only this many runs and make the others hard links to their files "
    "(0: render every run). Default: every run up to 20,000 runs, 10,000 above.",
)
@click.option(
    "--accounting",
    "accounting_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the Slurm accounting dumps of the runs' jobs into this new or empty "
    "directory outside PATH (DIR/<cluster>/sacct_<YYYY-MM>.txt); with --truth, each run's "
    "truth says what the join with them must show, and <truth>.unarchived.jsonl lists the "
    "jobs no run matches. Every run must be rendered (no hard-linked copies).",
)
@PROGRESS_OPTION
def demo_archive(
    path: Path,
    runs: int,
    seed: int,
    truth: Path | None,
    openfoam: int,
    templates: int | None,
    accounting_dir: Path | None,
    progress_every: float,
) -> None:
    """Write a realistic demo archive of AVBP runs into PATH (new or empty directory).

    Seven users on four clusters over two years, with their habits, failures of
    every category, restarts, gzip and CRLF logs. The effects it holds (which
    settings fail, what makes runs slow) are listed in runcrawler_assets/demo/knobs.py.

    Big archives: beyond the templates, each run is a folder of its own next to a
    rendered one, its files hard links to that run's files (same bytes and times,
    no data blocks of their own: a million runs take ~12 minutes rendered, ~2 with
    links, and the disk of the 10,000 templates, ~70 MB, plus ~10 KB of folders per
    run). The truth gives each copy its own run_id, run_path and log_path.

    Slurm accounting (--accounting): each run's jobs (restarts included) with their
    queue waits, limits, memory and states, as monthly sacct dumps per cluster; some
    runs missing from them, jobs no run matches, a retired cluster's dump.
    """
    from runcrawler_assets.demo import (
        Accounting,
        JobIds,
        check_accounting_destination,
        check_destination,
        default_templates,
        generate_archive,
        unarchived_path,
        write_openfoam_cases,
    )

    check_destination(path, truth)
    if accounting_dir is not None:
        check_accounting_destination(accounting_dir, path)
    templates = default_templates(runs) if templates is None else templates or None
    job_ids = JobIds()
    accounting = Accounting(seed, job_ids) if accounting_dir is not None else None
    with Progress("writing runs", runs, "runs", interval_s=progress_every) as bar:
        summary = generate_archive(
            path,
            runs=runs,
            seed=seed,
            truth=truth,
            progress=bar.advance,
            templates=templates,
            job_ids=job_ids,
            accounting=accounting,
        )
    if openfoam:
        cases = write_openfoam_cases(path, openfoam, seed, job_ids, accounting)
        if truth is not None:
            with truth.open("a", encoding="utf-8") as lines:
                lines.writelines(json.dumps(case, ensure_ascii=False) + "\n" for case in cases)
    foam = f" and {openfoam} OpenFOAM cases" if openfoam else ""
    click.echo(f"wrote {summary.describe()}{foam}" + (f"; truth in {truth}" if truth else ""))
    if accounting is not None and accounting_dir is not None:
        dumps = accounting.write(accounting_dir)
        said = f"wrote {dumps.files} accounting dumps of {dumps.jobs} jobs in {accounting_dir}"
        if truth is not None:
            unarchived = unarchived_path(truth)
            unarchived.write_text(
                "".join(json.dumps(job, ensure_ascii=False) + "\n" for job in dumps.unarchived),
                encoding="utf-8",
            )
            said += f"; jobs no run matches in {unarchived}"
        click.echo(said)


@main.command()
@ARCHIVE_OPTION
@DATA_OPTION
@_variable_option(
    "--layout",
    variable="RUNCRAWLER_LAYOUT",
    metavar="[cluster/user|user|single]",
    help="How folders name clusters and users.",
)
@_variable_option(
    "--workers",
    variable="RUNCRAWLER_WORKERS",
    metavar="N",
    help="Parsing processes; from 2, all but one also make a large swap's rows and one "
    f"draws charts (with 1, or from {BIG_ARCHIVE_RUNS:,} runs, a thread of this process "
    "draws them).",
)
@_variable_option(
    "--accounting",
    variable="RUNCRAWLER_ACCOUNTING",
    metavar="DIR",
    help="Slurm accounting dumps to join (<DIR>/<cluster>/*.txt, sacct --parsable2 output).",
)
@click.option(
    "--analytics/--no-analytics",
    default=True,
    show_default=True,
    help="Also rebuild the analytics tables, charts and report.",
)
@click.option(
    "--full-scan",
    is_flag=True,
    help="Stat every file of every run to find changes, not only folders (finds a "
    "finished run's file rewritten in place; slower on a big archive).",
)
@PROGRESS_OPTION
def crawl(
    archive: str,
    data: str,
    layout: str,
    workers: str,
    accounting: str,
    analytics: bool,
    full_scan: bool,
    progress_every: float,
) -> None:
    """Crawl the archive into the data folder, through Dagster.

    Registers every cluster and user folder as a partition and materializes the
    asset chain in one run, recorded in the Dagster instance of $DAGSTER_HOME
    (default: DATA/dagster_home), so the UI shows it. Only new and changed runs
    are parsed: running it twice in a row parses nothing the second time, and
    does not start Dagster (the instance already holds every partition).

    Changes are found as the archive sensor finds them: a finished run (no file
    newer than 2 days) whose folders did not change costs one stat, so a file
    rewritten in place in it is seen only with --full-scan (or by the nightly
    reconciliation).
    """
    config = _config(
        {
            "RUNCRAWLER_ARCHIVE": archive,
            "RUNCRAWLER_DATA": data,
            "RUNCRAWLER_LAYOUT": layout,
            "RUNCRAWLER_WORKERS": workers,
            "RUNCRAWLER_ACCOUNTING": accounting,
        }
    )
    config.check_archive()
    from runcrawler_assets.idle import look_at_archive, scan_meanwhile, unchanged_since_last_crawl

    check = None if full_scan else look_at_archive(config)
    if check and (unchanged := unchanged_since_last_crawl(config, check, analytics)):
        click.echo(unchanged.describe())
        click.echo("skipped: nothing changed since the last crawl", err=True)
        return
    with scan_meanwhile(config, check, full_scan) as scanned:  # a first crawl's, in a worker
        _crawl_through_dagster(config, analytics, full_scan, progress_every, scanned)


def _crawl_through_dagster(
    config: Config,
    analytics: bool,
    full_scan: bool,
    progress_every: float,
    scanned: Callable[[], ArchiveCheck | None],
) -> None:
    """The crawl's Dagster run(s); `scanned` gives the archive's scan if made already."""
    from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
    from runcrawler_assets.defs.partitions import registered_pairs
    from runcrawler_assets.defs.resources import CrawlProgress
    from runcrawler_assets.defs.runner import crawl as crawl_archive
    from runcrawler_assets.defs.runner import dagster_instance
    from runcrawler_assets.defs.sensors import FOLLOWING
    from runcrawler_assets.idle import note_registered

    bars: dict[str, Progress] = {}
    assets = [*INGEST_ASSETS, *FOLLOWING] if analytics else INGEST_ASSETS
    click.echo(f"crawling {config.archive_root} into {config.data_dir}", err=True)
    with _stderr_as_now() as stderr:

        class StderrProgress(CrawlProgress):
            """One progress display per step, closed when the step reports its last item."""

            def update(self, step: str, done: int, total: int) -> None:
                if step not in bars:
                    bars[step] = Progress(
                        step, total, "runs", stream=stderr, interval_s=progress_every
                    )
                bars[step].update_to(done)
                if done >= total:
                    bars.pop(step).close()

        try:
            with dagster_instance(config) as instance:
                summary = crawl_archive(
                    config,
                    assets,
                    instance,
                    StderrProgress(),
                    config.parse_workers,
                    full_scan,
                    scanned(),
                )
                note_registered(config, registered_pairs(instance))  # for the next idle crawl
        finally:  # a step that failed midway: its display ends with where it stopped
            for bar in bars.values():
                bar.close(failed=True)
    click.echo(summary.describe())
    if skipped := summary.describe_skipped():
        click.echo(skipped, err=True)
    if not summary.success:
        raise RuncrawlerError(
            f"{summary.describe_failed()}: the run's log in the Dagster UI (make run) "
            "has the details"
        )


@main.command("report")
@DATA_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write. Default: DATA/report.html.",
)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Runs created on or after.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Runs created up to this day.")
@click.option("--cluster", help="Only this cluster.")
@click.option("--user", help="Only this user.")
@click.option("--solver", help="Only this solver (avbp, openfoam, ...).")
@click.option(
    "--pseudonymize",
    is_flag=True,
    help="Replace user names by stable pseudonyms keyed by $RUNCRAWLER_PSEUDONYM_KEY "
    "(for sharing outside the team).",
)
def report_command(
    data: str,
    out: Path | None,
    since: datetime | None,
    until: datetime | None,
    cluster: str | None,
    user: str | None,
    solver: str | None,
    pseudonymize: bool,
) -> None:
    """Write the managers' report: one self-contained HTML page, charts embedded.

    Over all runs, it shows the analytics the last crawl or refresh stored, when
    they are up to date with the `runs` table; a period, a cluster, a user or a
    solver narrow the runs down, and are computed for the report. The data
    folder is only read.
    """
    config = _config({"RUNCRAWLER_DATA": data})
    from runcrawler_assets.analytics import RunFilter
    from runcrawler_assets.reporting.assemble import assemble_report
    from runcrawler_assets.warehouse.database import run_count
    from runcrawler_assets.warehouse.explore import connect_read_only

    run_filter = RunFilter(
        since=since.date() if since else None,
        until=until.date() if until else None,
        cluster=cluster,
        user=user,
        solver=solver,
    )
    # The asset's assembly: the stored analytics for all runs when they are up to date,
    # else (a filter, pseudonyms, analytics missing or stale) computed for this report.
    key = config.pseudonym_key if pseudonymize else None
    with connect_read_only(config.data_dir) as con:
        memory = config.analytics_memory_for(run_count(con))
        report = assemble_report(con, run_filter, datetime.now(), pseudonym_key=key, memory=memory)
    target = out or config.data_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report.html, encoding="utf-8")
    click.echo(f"report for {run_filter.describe()} (figures {report.source}) written to {target}")


@main.command("export")
@DATA_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv", "json"]),
    default="parquet",
    show_default=True,
    help="Parquet keeps every type; CSV for spreadsheets; JSON is one object per line.",
)
@click.option("--table", default="runs", show_default=True, help="Any table of the warehouse.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write. Default: DATA/exports/TABLE.EXT.",
)
def export_command(data: str, fmt: str, table: str, out: Path | None) -> None:
    """Export a table of the warehouse for tools that cannot open DuckDB."""
    config = _config({"RUNCRAWLER_DATA": data})
    from runcrawler_assets.warehouse.export import export_table

    path = export_table(config.data_dir, table, fmt, out)
    click.echo(f"{table} written to {path}")


class _CheckCommand(click.Command):
    """`check` answers with its exit code (0 ok, 1 warning, 2 likely failure), so every error,
    a usage error too, exits with `checking.EXIT_ERROR`: a job script never reads one as a
    verdict. An unexpected error keeps its traceback, and that exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            from runcrawler_assets.checking import EXIT_ERROR

            error.exit_code = EXIT_ERROR
            raise

    def invoke(self, ctx: click.Context) -> Any:
        from runcrawler_assets.checking import EXIT_ERROR

        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except RuncrawlerError as error:
            failure = click.ClickException(" ".join(str(error).splitlines()))
            failure.exit_code = EXIT_ERROR
            raise failure from error
        except Exception:
            traceback.print_exc()
            ctx.exit(EXIT_ERROR)


@main.command("check", cls=_CheckCommand)
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--solver-version",
    metavar="VERSION",
    help="The solver version the job will use (run.params does not name it), e.g. 7.12.0.",
)
@DATA_OPTION
@click.option(
    "--wait",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long to wait while a crawl holds the warehouse, before giving up.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict and evidence as JSON.")
def check_command(
    path: Path, solver_version: str | None, data: str, wait: float, as_json: bool
) -> None:
    """Check a run's settings against the team's history before submitting it.

    PATH is an AVBP run.params (or a folder holding one) or an OpenFOAM case
    folder. From the crawled warehouse (only read): the failure ratio of each of
    its setting values, the team's record for runs with the same settings, the
    nearest past failures with their error and fix, and a regression of the
    solver version.

    \b
    Exit codes:
      0  ok: nothing in the team's history speaks against it
      1  warning: a setting value or the version fails more often (flagged)
      2  likely_failure: the same settings failed at least half of 5+ runs,
         or a flagged value or version fails at least twice as often
      3  no check was made: a bad PATH or option, no warehouse, or one busy
    """
    config = _config({"RUNCRAWLER_DATA": data})
    from runcrawler_assets.checking import check_run

    result = check_run(path, config.duckdb_path, solver_version, wait)
    click.echo(result.to_json() if as_json else "\n".join(result.lines()))
    click.get_current_context().exit(result.exit_code)


@main.command("digest")
@DATA_OPTION
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    help="Runs set up on or after. Default: the end of the last digest sent, else a week ago.",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    help="Runs set up before (a day: its start). Default: now.",
)
@click.option(
    "--dry-run",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write every message that would be sent (one .eml per user with runs, plus "
    "managers.eml) into DIR and send nothing.",
)
def digest_command(
    data: str, since: datetime | None, until: datetime | None, dry_run: Path | None
) -> None:
    """Send each user the digest of their runs, and the managers their summary.

    A user's digest lists their runs of the period, each failure with its cause, the
    hints of the rules ($RUNCRAWLER_RULES) and a known fix, and the CPU hours lost;
    addresses come from $RUNCRAWLER_RECIPIENTS (a user without one is skipped and
    counted). Messages go through $RUNCRAWLER_SMTP_HOST, each once: a period already
    sent is not sent again, a failed send is retried, then reported.
    """
    config = _config({"RUNCRAWLER_DATA": data})
    from runcrawler_assets.digests import digest_round, next_period

    period = next_period(config, until or datetime.now(), since)
    outcome = digest_round(config, period, dry_run)
    for path in outcome.written:
        click.echo(f"wrote {path}")
    click.echo(outcome.summary())
    if outcome.report.failed:
        raise RuncrawlerError(f"{len(outcome.report.failed)} messages could not be sent")
