"""Child process of a measured crawl: `runcrawler crawl`, then what it wrote, as one JSON line.

It also reports its own VmHWM at the end (the parent samples it while it runs,
and its children, whose peaks only the parent can see before they exit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
    status = Path("/proc/self/status").read_text().splitlines()
    own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    print(
        json.dumps(
            {
                "runs": summary[0],
                "summary": f"{summary[0]} rows, {summary[1]} quarantined",
                "main_rss_mb": round(own, 1),
            }
        )
    )


def _read_summary(data: str) -> tuple[int, int]:
    """Rows and quarantine entries in the warehouse the crawl wrote."""
    from runcrawler_assets.warehouse.database import connect

    with connect(Path(data) / "runcrawler.duckdb", read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    return rows, quarantined


if __name__ == "__main__":
    main(sys.argv[1:])
