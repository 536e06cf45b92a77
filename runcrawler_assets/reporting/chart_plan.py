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
# Series a stacked chart draws in colours of their own; more are folded into "others", the
# smallest by their sums (so which are folded depends on the values).
MAX_SERIES = 19
# Box plots side by side whose labels (user names) still fit the width; beyond, those of
# the groups with most runs are drawn (so which depends on the runs counted).
MAX_BOXES = 20
# Errors the charts of errors show: the first of their table (the most repeated first).
TOP_TEMPLATES = 15
# Numbers a chart prints are exact below `EXACT_BELOW`, from there rounded to
# `SHOWN_DIGITS` significant digits ("12.3k", "143k"): the tables beside the chart keep
# them exact. The charts that draw counts are given them so rounded (`plans`), so that
# ten runs added to a million leave them as they were (issue 16).
EXACT_BELOW = 1_000
SHOWN_DIGITS = 3


@dataclass(frozen=True)
class DrawnToScale:
    """Columns of the plan's table argument `arg` that its chart draws only as bar lengths
    on a linear axis, no number printed from them: a chart whose bars would move by a
    fraction of a pixel need not be drawn again (`plans.moved_little`). `stacked_by`: the
    column whose equal values stack their rows into one bar; None: each value its own bar.
    `log`: the values are positions on a logarithmic axis instead (the forests' ratios
    and their intervals; a value not above zero is not drawn)."""

    arg: int
    columns: tuple[str, ...]
    stacked_by: str | None = None
    log: bool = False


@dataclass(frozen=True, eq=False)
class ChartPlan:
    """The `figures` function `figure`, called with `args` (picklable: a worker process
    can draw it), and which of its values it draws only to scale."""

    figure: str
    args: tuple[object, ...]
    to_scale: tuple[DrawnToScale, ...] = ()

    def __call__(self) -> bytes:
        return getattr(import_module(FIGURES), self.figure)(*self.args)
