"""Child process of a measured crawl: `runcrawler crawl`, then its peak RSS as one JSON line.

`ru_maxrss` of this process is the crawl's main process; that of its children
is the largest parse worker (they are joined before the crawl returns).
"""

from __future__ import annotations

import json
import resource
import sys

import click


def main(argv: list[str]) -> None:
    from runcrawler_assets.cli import main as runcrawler

    archive, data, *options = argv
    try:
        runcrawler.main(
            ["crawl", "--archive", archive, "--data", data, *options], standalone_mode=False
        )
    except click.ClickException as error:
        sys.exit(f"crawl failed: {error.format_message()}")
    summary = _read_summary(data)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "runs": summary[0],
                "summary": f"{summary[0]} rows, {summary[1]} quarantined",
                "main_rss_mb": round(own, 1),
                "max_worker_rss_mb": round(workers, 1),
            }
        )
    )


def _read_summary(data: str) -> tuple[int, int]:
    """Rows and quarantine entries in the warehouse the crawl wrote."""
    from pathlib import Path

    from runcrawler_assets.warehouse import connect

    with connect(Path(data) / "runcrawler.duckdb", read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    return rows, quarantined


if __name__ == "__main__":
    main(sys.argv[1:])
