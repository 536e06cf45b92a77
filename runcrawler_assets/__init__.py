"""runcrawler: how a team's parallel solver is really used, from its run archive.

The core (records, solvers, discovery, warehouse, analytics, charts, report)
is plain Python; `runcrawler_assets.definitions` wires it into Dagster. `defs`
is loaded lazily so that using the core never imports Dagster.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "defs":
        from runcrawler_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'runcrawler_assets' has no attribute {name!r}")
