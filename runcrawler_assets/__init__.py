"""runcrawler: how a team's parallel solver is really used, from its run archive.

The core (records, solvers, discovery, warehouse, analytics, charts, report)
is plain Python; `runcrawler_assets.definitions` wires it into Dagster. `defs`
is loaded lazily so that using the core never imports Dagster, and `load_runs`
lazily too, so that importing any module of the package stays light.
"""

from importlib import import_module
from typing import Any

# Attribute -> the module that defines it, imported on first use.
_LAZY = {
    "load_runs": "runcrawler_assets.warehouse.explore",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'runcrawler_assets' has no attribute {name!r}")
