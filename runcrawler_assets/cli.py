"""The `runcrawler` command: one subcommand per thing a user does from a shell.

Each subcommand is a thin shell over a core function: it turns options into
arguments, shows progress on stderr, prints a one-line result on stdout and
turns the core's errors into messages a user can act on (exit status 1).
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import datetime
from pathlib import Path

import click

from runcrawler_assets.config import Layout, Settings, SettingsError
from runcrawler_assets.demo import avbp as demo
from runcrawler_assets.demo.openfoam import write_openfoam_cases


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """runcrawler: how a team really uses its parallel solver, read from its run archive.

    The archive (<root>/<cluster>/<user>/.../<run dir>/run.params and solver
    logs) is only ever read. Run `runcrawler COMMAND --help` for one command.
    """


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
def demo_archive(path: Path, runs: int, seed: int, truth: Path | None, openfoam: int) -> None:
    """Write a realistic demo archive of AVBP runs into PATH (new or empty directory).

    Seven users on four clusters over two years, with their habits, failures of
    every category, restarts, gzip and CRLF logs. The effects it holds (which
    settings fail, what makes runs slow) are listed in runcrawler_assets/demo/avbp.py.
    """
    try:
        demo.check_destination(path, truth)
        with click.progressbar(length=runs, label="writing runs", file=sys.stderr) as bar:
            summary = demo.generate_archive(
                path, runs=runs, seed=seed, truth=truth, progress=bar.update
            )
        if openfoam:
            cases = write_openfoam_cases(path, openfoam, seed=seed)
            if truth is not None:
                with truth.open("a", encoding="utf-8") as lines:
                    lines.writelines(json.dumps(case, ensure_ascii=False) + "\n" for case in cases)
    except demo.DemoArchiveError as error:
        raise click.ClickException(str(error)) from error
    foam = f" and {openfoam} OpenFOAM cases" if openfoam else ""
    click.echo(f"wrote {summary.describe()}{foam}" + (f"; truth in {truth}" if truth else ""))


def _settings(archive: Path | None, data: Path | None, layout: str | None) -> Settings:
    """Settings from the environment, overridden by the options given."""
    base = Settings.from_env()
    return Settings(
        archive_root=(archive or base.archive_root).absolute(),
        data_dir=(data or base.data_dir).absolute(),
        layout=Layout(layout) if layout else base.layout,
        fixed_cluster=base.fixed_cluster,
        fixed_user=base.fixed_user,
    )


ARCHIVE_OPTION = click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="The archive root (read only). Default: $RUNCRAWLER_ARCHIVE, else ./demo_archive.",
)
DATA_OPTION = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where runcrawler writes (DuckDB, JSON runs, charts). Default: $RUNCRAWLER_DATA, "
    "else ./data.",
)


@main.command()
@ARCHIVE_OPTION
@DATA_OPTION
@click.option(
    "--layout",
    type=click.Choice([item.value for item in Layout]),
    help="How folders name clusters and users. Default: $RUNCRAWLER_LAYOUT, else cluster/user.",
)
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(1), help="Parsing processes."
)
@click.option(
    "--analytics/--no-analytics",
    default=True,
    show_default=True,
    help="Also rebuild the analytics tables, charts and report.",
)
def crawl(
    archive: Path | None, data: Path | None, layout: str | None, workers: int, analytics: bool
) -> None:
    """Crawl the archive into the data folder, through Dagster.

    Registers every cluster and user folder as a partition and materializes the
    asset chain in one run, recorded in the Dagster instance of $DAGSTER_HOME
    (default: DATA/dagster_home), so the UI shows it. Only new and changed runs
    are parsed: running it twice in a row parses nothing the second time.
    """
    # Dagster flags the beta APIs we rely on (single-run backfills) on every import.
    warnings.filterwarnings("ignore", module="dagster")
    from runcrawler_assets.defs.assets.analytics import ANALYSIS_ASSETS, report
    from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
    from runcrawler_assets.defs.resources import CrawlProgress
    from runcrawler_assets.defs.runner import crawl as crawl_archive
    from runcrawler_assets.defs.runner import dagster_instance

    class StderrProgress(CrawlProgress):
        def update(self, step: str, done: int, total: int) -> None:
            if done == total or done % max(1, total // 100) == 0:
                end = "\n" if done == total else ""
                click.echo(
                    f"\r{step}: {done}/{total} runs ({100 * done // total}%)", err=True, nl=False
                )
                click.echo(end, err=True, nl=False)

    try:
        settings = _settings(archive, data, layout)
        settings.check_archive()
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    assets = [*INGEST_ASSETS, *ANALYSIS_ASSETS, report] if analytics else INGEST_ASSETS
    click.echo(f"crawling {settings.archive_root} into {settings.data_dir}", err=True)
    with dagster_instance(settings) as instance:
        summary = crawl_archive(settings, assets, instance, StderrProgress(), workers)
    click.echo(
        f"{summary.discovered} runs found in {summary.partitions} partitions: "
        f"{summary.parsed} parsed, {summary.unchanged} unchanged, {summary.removed} removed, "
        f"{summary.quarantined} quarantined; {summary.rows} rows in runs "
        f"({summary.seconds:.1f} s)"
    )
    if not summary.success:
        raise click.ClickException(
            "some steps failed: open the run in the Dagster UI (make run) for the error"
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
    data: Path | None,
    out: Path | None,
    since: datetime | None,
    until: datetime | None,
    cluster: str | None,
    user: str | None,
    solver: str | None,
    pseudonymize: bool,
) -> None:
    """Write the managers' report: one self-contained HTML page, charts embedded.

    Reads the `runs` table of a crawled data folder (read-only); a period, a
    cluster or a user narrow it down.
    """
    from runcrawler_assets.analytics import ANALYSES, RunFilter, run_all
    from runcrawler_assets.reporting.privacy import (
        PseudonymKeyError,
        key_from_env,
        pseudonymize_runs,
    )
    from runcrawler_assets.reporting.report import build_report
    from runcrawler_assets.warehouse.database import WarehouseLockedError, connect

    settings = _settings(None, data, None)
    if not settings.duckdb_path.is_file():
        raise click.ClickException(
            f"no {settings.duckdb_path}: run `runcrawler crawl` first (or give --data)"
        )
    run_filter = RunFilter(
        since=since.date() if since else None,
        until=until.date() if until else None,
        cluster=cluster,
        user=user,
        solver=solver,
    )
    try:
        with connect(settings.duckdb_path, read_only=True) as con:
            if pseudonymize:
                pseudonymize_runs(con, key_from_env())
            results = run_all(con, ANALYSES, run_filter)
    except (WarehouseLockedError, PseudonymKeyError) as error:
        raise click.ClickException(str(error)) from error
    target = out or settings.data_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(build_report(results, run_filter, datetime.now()), encoding="utf-8")
    click.echo(f"report for {run_filter.describe()} written to {target}")


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
def export_command(data: Path | None, fmt: str, table: str, out: Path | None) -> None:
    """Export a table of the warehouse for tools that cannot open DuckDB."""
    from runcrawler_assets.warehouse.database import WarehouseLockedError
    from runcrawler_assets.warehouse.export import ExportError, export_table

    settings = _settings(None, data, None)
    try:
        path = export_table(settings.data_dir, table, fmt, out)
    except (ExportError, FileNotFoundError, WarehouseLockedError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{table} written to {path}")
