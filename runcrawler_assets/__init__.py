"""runcrawler: how a team's parallel solver is really used, from its run archive.

Two floors (docs/ARCHITECTURE.md): the plain-Python core (archive/, solvers/,
warehouse/, analytics/, reporting/, demo/, config, records, crawl) and the
Dagster layer in `defs/`, assembled by `runcrawler_assets.definitions`.
`load_runs` is exported lazily, so that importing any module of the package
stays light and importing the core never loads Dagster.
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
