"""The `runcrawler` command: one subcommand per thing a user does from a shell.

Each subcommand is a thin shell over a core function: it turns options into
arguments, shows progress on stderr, prints a one-line result on stdout and
turns the core's errors into messages a user can act on (exit status 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runcrawler_assets import demo


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
def demo_archive(path: Path, runs: int, seed: int, truth: Path | None) -> None:
    """Write a realistic demo archive of AVBP runs into PATH (new or empty directory).

    Seven users on four clusters over two years, with their habits, failures of
    every category, restarts, gzip and CRLF logs. The effects it holds (which
    settings fail, what makes runs slow) are listed in runcrawler_assets/demo.py.
    """
    try:
        demo.check_destination(path, truth)
        with click.progressbar(length=runs, label="writing runs", file=sys.stderr) as bar:
            summary = demo.generate_archive(
                path, runs=runs, seed=seed, truth=truth, progress=bar.update
            )
    except demo.DemoArchiveError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"wrote {summary.describe()}" + (f"; truth in {truth}" if truth else ""))
