"""One chart ready to draw, as the chart worker receives it.

Its own module, importing nothing but the standard library, because unpickling
a plan imports the module that defines its class: defined beside the plans
(`plans`, which reads the analyses' vocabulary), it loaded the analytics and
DuckDB into the worker (~17 MB of its memory at a million runs, issue 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

FIGURES = "runcrawler_assets.reporting.figures"


@dataclass(frozen=True, eq=False)
class ChartPlan:
    """The `figures` function `figure`, called with `args` (picklable: a worker process
    can draw it)."""

    figure: str
    args: tuple[object, ...]

    def __call__(self) -> bytes:
        return getattr(import_module(FIGURES), self.figure)(*self.args)
