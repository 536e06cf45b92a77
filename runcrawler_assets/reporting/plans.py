"""Which charts each analysis shows, and what each is given: the charts planned, not drawn.

An analysis's charts are planned from its stored tables (`chart_plans`): per
file name, the `figures` function that draws it, by name, and everything it
draws from, the analyses' vocabulary (category names, labels, thresholds)
included. A plan names its function instead of holding it, so the process
that plans charts never loads matplotlib: the chart worker that draws them
does (`drawing`), and at a million runs the analytics' process, which holds
DuckDB's memory, need not hold matplotlib's too (issue 16). A chart is known
by what it is given (`plan_digest`), so one whose tables did not change need
not be drawn again; nor one whose bars drawn to scale (`DrawnToScale`) would
move by less than `SCALE_TOLERANCE` of their axis (`moved_little`): 10 runs
added to a million move no bar by a pixel, but change every count (issue 16).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from runcrawler_assets.analytics.errors import ERROR_CATEGORY_NAMES
from runcrawler_assets.analytics.habits import MIN_NODES_PER_PROCESS
from runcrawler_assets.analytics.scheduler import NOT_ARCHIVED, RATIO_BIN_LABELS
from runcrawler_assets.analytics.setting_effects import MIN_RUNS
from runcrawler_assets.analytics.settings_usage import SETTING_LABELS
from runcrawler_assets.reporting.chart_plan import (
    EXACT_BELOW,
    MAX_BOXES,
    MAX_SERIES,
    SHOWN_DIGITS,
    TOP_TEMPLATES,
    ChartPlan,
    DrawnToScale,
)

Tables = Mapping[str, pd.DataFrame]
Plans = dict[str, ChartPlan]  # file name -> its chart
# How far bars drawn to scale may move before their chart is drawn again, as a share of
# the longest bar (or stack): a third of a pixel on the charts' ~350-pixel axes.
SCALE_TOLERANCE = 1e-3
Scaled = list[list[list[float | None]]]  # per `DrawnToScale`, per column, its values


def _chart(figure: str, *args: object, to_scale: tuple[DrawnToScale, ...] = ()) -> ChartPlan:
    return ChartPlan(figure, args, to_scale)


def as_printed(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """`frame` with the numbers of `columns` as charts print them: exact below `EXACT_BELOW`,
    else rounded to `SHOWN_DIGITS` significant digits. A chart given its counts so draws
    the same PNG until one of them changes in what it prints: ten runs added to a million
    change every count, not their first three digits (issue 16). Its bars are drawn from
    the rounded values too: at most half a unit of the last digit shown, 0.5 % of a bar."""
    rounded = {}
    for column in columns:
        numbers = frame[column].astype(float)
        big = numbers.abs() >= EXACT_BELOW
        digits = np.floor(np.log10(numbers.abs().where(big, 1.0)))
        unit = 10.0 ** (digits - (SHOWN_DIGITS - 1))
        rounded[column] = numbers.where(~big, (numbers / unit).round() * unit)
    return frame.assign(**rounded)


def _error_charts(tables: Tables) -> Plans:
    """Each chart given only what it draws, so that successful runs, which change the tables'
    counts of all runs, leave the charts as they were (`plan_digest`), and its counts as
    printed (`as_printed`)."""
    categories = tables["error_categories"]
    errors = categories.loc[categories["category"] != "none", ["category", "runs"]]
    by_user = tables["errors_by_user"][["user", *ERROR_CATEGORY_NAMES]]
    stages = tables["failure_stages"][["solver", "stage_code", "stage", "runs"]]
    lost = tables["cpu_hours_lost"][["error_category", "cpu_hours"]]
    return {
        "err_type.png": _chart(
            "error_category_pie", as_printed(errors, "runs"), ERROR_CATEGORY_NAMES
        ),
        "errors_by_user.png": _chart(
            "errors_by_user_heatmap",
            as_printed(by_user, *ERROR_CATEGORY_NAMES),
            ERROR_CATEGORY_NAMES,
        ),
        "failure_stages.png": _chart("failure_stage_bars", as_printed(stages, "runs")),
        "cpu_hours_lost.png": _chart("cpu_hours_lost_bars", as_printed(lost, "cpu_hours")),
    }


def _signature_charts(tables: Tables) -> Plans:
    """The first `TOP_TEMPLATES` errors of each table, those drawn: an error further down
    whose count changes leaves the charts as they were."""
    return {
        "error_signatures.png": _chart(
            "signature_bars",
            as_printed(
                tables["error_signatures"].head(TOP_TEMPLATES)[
                    ["template", "error_category", "runs"]
                ],
                "runs",
            ),
            "The most repeated errors (failed and killed runs)",
            "error_category",
            "tab:red",
        ),
        "unknown_templates.png": _chart(
            "unknown_template_bars",
            as_printed(
                tables["unknown_templates"].head(TOP_TEMPLATES)[
                    ["template", "signature_id", "runs"]
                ],
                "runs",
            ),
            ERROR_CATEGORY_NAMES,
        ),
    }


def _activity_charts(tables: Tables) -> Plans:
    return {
        "runs_per_user.png": _chart(
            "runs_per_user_pie", as_printed(tables["user_activity"][["user", "runs"]], "runs")
        ),
        **{
            f"when_{period}_user.png": _chart(
                "runs_per_period_bars",
                table,
                period,
                # to scale unless users are folded into "others" by their sums
                to_scale=(DrawnToScale(0, ("runs",), period),)
                if table["user"].nunique() <= MAX_SERIES
                else (),
            )
            for period, table in (
                ("year", tables["runs_by_user_year"]),
                ("month", tables["runs_by_user_month"]),
            )
        },
        "when_hour_weekday.png": _chart(
            "hour_and_weekday_bars",
            tables["runs_by_hour"],
            tables["runs_by_weekday"],
            to_scale=(DrawnToScale(0, ("runs",)), DrawnToScale(1, ("runs",))),
        ),
    }


def _settings_charts(tables: Tables) -> Plans:
    return {
        "run_settings.png": _chart(
            "setting_count_panels",
            as_printed(tables["run_settings"][["setting", "value", "runs"]], "runs"),
            SETTING_LABELS,
        ),
        "mixture_by_dimension.png": _chart(
            "mixture_dimension_bars",
            tables["mixture_by_dimension"],
            to_scale=(DrawnToScale(0, ("runs_2d", "runs_3d")),),
        ),
    }


# The box plots of `hpc_habit_distributions`: quantity -> (file name, title, axis label).
DISTRIBUTION_CHARTS: dict[str, tuple[str, str, str]] = {
    "n_procs": ("procs_by_user.png", "MPI processes per run, by user", "MPI processes"),
    "ncell_group": (
        "ncell_group_by_user.png",
        "ncell_group per run, by user",
        "ncell_group [cells per group]",
    ),
}


def _habit_charts(tables: Tables) -> Plans:
    boxes = {
        file_name: _chart("distribution_boxes", _boxes(tables, quantity), quantity, title, label)
        for quantity, (file_name, title, label) in DISTRIBUTION_CHARTS.items()
    }
    histogram = _chart(
        "nodes_per_process_histogram",
        tables["nodes_per_process"],
        MIN_NODES_PER_PROCESS,
        to_scale=(DrawnToScale(0, ("runs",)),),
    )
    return {**boxes, "nodes_per_process.png": histogram}


def _boxes(tables: Tables, quantity: str) -> pd.DataFrame:
    """The box statistics of `quantity`, with the runs counted only when they choose the
    boxes drawn (more than `MAX_BOXES` users): runs that leave every quartile, whisker and
    outlier where it was leave the chart as it was."""
    distributions = tables["hpc_habit_distributions"]
    boxes = distributions[distributions["quantity"] == quantity]
    return boxes if len(boxes) > MAX_BOXES else boxes.drop(columns="runs")


def _scatter(tables: Tables, solver: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One solver's dots, its bins' medians, and what the dots are: every run, or a sample
    of about how many (`SHOWN_DIGITS` significant digits: 10 runs among a million, which
    add no dot to the sample, leave the chart as it was)."""
    points = tables["efficiency_points"]
    points = points.loc[
        points["solver"] == solver, ["dimension", "cluster", "n_procs", "efficiency"]
    ]
    medians = tables["efficiency"]
    medians = medians.loc[
        medians["solver"] == solver, ["dimension", "cluster", "procs_median", "efficiency_median"]
    ]
    by_cluster = tables["efficiency_by_cluster"]
    runs = int(by_cluster.loc[by_cluster["solver"] == solver, "runs"].sum())
    about = int(float(f"{runs:.{SHOWN_DIGITS}g}"))
    dots = "runs" if len(points) == runs else f"a sample of {len(points):,} of about {about:,} runs"
    return points, medians, dots


def _efficiency_charts(tables: Tables) -> Plans:
    """One scatter per solver, in the tables' order (most successful runs first): the first
    is `efficiency_vs_procs.png`, the others carry their solver's name."""
    by_cluster = tables["efficiency_by_cluster"]
    solvers = list(dict.fromkeys(by_cluster["solver"])) or ["avbp"]
    scatters = {
        "efficiency_vs_procs.png" if i == 0 else f"efficiency_vs_procs_{solver}.png": _chart(
            "efficiency_scatter", *_scatter(tables, solver), solver
        )
        for i, solver in enumerate(solvers)
    }
    hours = tables["cpu_hours_by_user_cluster"][["user", "cluster", "cpu_hours"]]
    hours = _chart("cpu_hours_by_user_cluster_bars", as_printed(hours, "cpu_hours"))
    return {**scatters, "cpu_hours_by_user_cluster.png": hours}


# The forest plots of `setting_effects`: ratio prefix -> (file name, runs column, title,
# axis label).
FOREST_CHARTS: dict[str, tuple[str, str, str, str]] = {
    "failure": (
        "setting_failure_ratios.png",
        "finished_runs",
        "Failure rate of each setting value relative to the other runs (95 % CI)",
        "risk ratio vs the same users' other runs (> 1: fails more often); "
        "in brackets: finished runs",
    ),
    "efficiency": (
        "setting_efficiency_ratios.png",
        "successful_runs",
        "Efficiency of each setting value relative to the other runs (95 % CI)",
        "efficiency ratio vs same user, cluster and dimension (> 1: slower); "
        "in brackets: successful runs",
    ),
}


def _ratios(prefix: str) -> tuple[str, str, str]:
    """The columns of the `prefix` ratio and its interval."""
    return f"{prefix}_ratio", f"{prefix}_ratio_ci_low", f"{prefix}_ratio_ci_high"


def _forest(table: pd.DataFrame, labels: list[str], runs: str, prefix: str) -> pd.DataFrame:
    """What a forest draws of `table`: its rows' `labels` and runs (as printed), and the
    `prefix` ratio with its interval and flag."""
    return as_printed(table[[*labels, runs, *_ratios(prefix), f"{prefix}_flagged"]], runs)


def _drawn_on_a_log_axis(prefix: str) -> tuple[DrawnToScale, ...]:
    """A forest's ratios and intervals (`_forest`'s table, its first argument) drawn to scale:
    ten runs more among a million move no dot by a pixel, but change every ratio."""
    return (DrawnToScale(0, _ratios(prefix), log=True),)


def _setting_effect_charts(tables: Tables) -> Plans:
    return {
        file_name: _chart(
            "setting_ratio_forest",
            _forest(tables["setting_effects"], ["setting", "value"], runs, prefix),
            prefix,
            runs,
            *shown,
            MIN_RUNS,
            to_scale=_drawn_on_a_log_axis(prefix),
        )
        for prefix, (file_name, runs, *shown) in FOREST_CHARTS.items()
    }


def _scheduler_charts(tables: Tables) -> Plans:
    return {
        "walltime_used_vs_requested.png": _chart(
            "walltime_ratio_bars", tables["walltime_ratio_bins"], RATIO_BIN_LABELS
        ),
        "queue_wait.png": _chart("queue_wait_bars", tables["queue_wait"]),
        "memory_headroom.png": _chart("memory_headroom_bars", tables["memory_headroom"]),
        "cpu_hours_by_scheduler_state.png": _chart(
            "cpu_hours_by_state_bars", tables["cpu_hours_by_state"], NOT_ARCHIVED
        ),
    }


FIXES_DRAWN = ("fixed_runs", "reruns", "restarts")  # a typical fix's bar, stacked


def _fixed_errors(errors: pd.DataFrame) -> pd.DataFrame:
    """The typical fixes drawn: the first `TOP_TEMPLATES` errors of `error_fixes` that a
    change or a rerun fixed, with what their bars show."""
    fixed = errors[errors["fixed_runs"] + errors["reruns"] > 0].head(TOP_TEMPLATES)
    return fixed[["template", "typical_fix", *FIXES_DRAWN]]


CHARTS: dict[str, Callable[[Tables], Plans]] = {
    "error_categories": _error_charts,
    "error_signatures": _signature_charts,
    "fixes": lambda tables: {
        "typical_fixes.png": _chart(
            "typical_fix_bars",
            _fixed_errors(tables["error_fixes"]),
            to_scale=(DrawnToScale(0, FIXES_DRAWN, "template"),),
        ),
        "fix_keywords.png": _chart("fix_keyword_bars", tables["typical_fixes"]),
    },
    "campaigns": lambda tables: {
        "campaign_attempts.png": _chart(
            "campaign_bars",
            tables["campaign_attempts"][["attempts", "outcome", "campaigns"]],
            to_scale=(DrawnToScale(0, ("campaigns",), "attempts"),),
        )
    },
    "user_activity": _activity_charts,
    "run_settings": _settings_charts,
    "hpc_habits": _habit_charts,
    "efficiency": _efficiency_charts,
    "setting_effects": _setting_effect_charts,
    "version_effects": lambda tables: {
        "version_failure_risk.png": _chart(
            "version_failure_forest",
            _forest(
                tables["version_effects"], ["solver", "solver_version"], "finished_runs", "failure"
            ),
            MIN_RUNS,
            to_scale=_drawn_on_a_log_axis("failure"),
        )
    },
    "scheduler": _scheduler_charts,
}


def chart_plans(analysis: str, tables: Tables) -> Plans:
    """The charts of `analysis` (its name), each ready to draw, by file name."""
    return CHARTS[analysis](tables)


def draw_charts(analysis: str, tables: Tables) -> dict[str, bytes]:
    """The charts of `analysis` (its name), drawn here from its tables: file name -> PNG."""
    return {name: draw() for name, draw in chart_plans(analysis, tables).items()}


DRAWING_CODE = ("chart_plan.py", "charts.py", "figures.py")  # in this folder


@cache
def _drawing_code() -> bytes:
    """The drawing code's version: `chart_plan` (the limits charts share with the plans),
    `charts`, `figures`, matplotlib's and Pillow's (which encodes the PNGs in their palette;
    a change to any may change every PNG), read without importing them."""
    here = Path(__file__).parent
    code = b"".join((here / name).read_bytes() for name in DRAWING_CODE)
    versions = f"{version('matplotlib')} {version('pillow')}".encode()
    return hashlib.blake2b(code + versions, digest_size=16).digest()


def plan_digest(plan: ChartPlan) -> str:
    """What a chart shows, as 32 hex digits: its function, the tables and values it is
    given, and the drawing code's version; of the values drawn to scale, only which are
    missing, zero or negative (a bar that appears or vanishes). Two plans with one digest
    draw the same PNG, or one whose bars drawn to scale differ by what `scaled_values`
    holds (tables are read to 15 significant digits: beyond, no pixel moves)."""
    args = list(plan.args)
    for entry in plan.to_scale:
        frame = _table(plan, entry)
        signs = {column: np.sign(frame[column].astype(float)) for column in entry.columns}
        args[entry.arg] = args[entry.arg].assign(**signs)  # two entries may share a table
    digest = hashlib.blake2b(_drawing_code(), digest_size=16)
    digest.update(plan.figure.encode())
    digest.update(_shown(tuple(args)))
    return digest.hexdigest()


def scaled_values(plan: ChartPlan) -> Scaled:
    """The values `plan` draws to scale, per `DrawnToScale` and column (missing: None), as
    a chart manifest keeps those its chart was drawn with."""
    return [
        [_floats(_table(plan, entry)[column]) for column in entry.columns]
        for entry in plan.to_scale
    ]


def _table(plan: ChartPlan, entry: DrawnToScale) -> pd.DataFrame:
    frame = plan.args[entry.arg]
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{plan.figure}: argument {entry.arg} drawn to scale is not a table")
    return frame


def _floats(values: pd.Series) -> list[float | None]:
    return [None if pd.isna(value) else float(value) for value in values]


def moved_little(plan: ChartPlan, drawn: object) -> bool:
    """Whether the bars `plan` draws to scale are where `drawn` (`scaled_values` of the plan
    its chart was drawn from, with the same digest) put them, within `SCALE_TOLERANCE` of
    the longest bar (or stack, its values summed): no edge of a stack moves further than
    the changes of its values add up to; positions on a log axis within `SCALE_TOLERANCE` of
    the span they cover."""
    if not plan.to_scale:
        return True
    if not isinstance(drawn, list) or len(drawn) != len(plan.to_scale):
        return False
    for entry, before in zip(plan.to_scale, drawn, strict=True):
        frame = _table(plan, entry)
        now = frame[list(entry.columns)].astype(float).to_numpy()
        try:
            old = np.array(before, dtype=float).T.reshape(now.shape)
        except (TypeError, ValueError):  # a manifest written otherwise
            return False
        if not now.size:
            continue
        if entry.log:
            if not _moved_little_on_a_log_axis(now, old):
                return False
            continue
        now, old = np.nan_to_num(now), np.nan_to_num(old)
        moved = np.abs(now - old)
        if entry.stacked_by is None:
            longest, furthest = np.abs(old).max(initial=0.0), moved.max(initial=0.0)
        else:
            stacks = frame[entry.stacked_by].to_numpy()
            longest = pd.Series(np.abs(old).sum(axis=1)).groupby(stacks, dropna=False).sum().max()
            furthest = pd.Series(moved.sum(axis=1)).groupby(stacks, dropna=False).sum().max()
        if not furthest <= SCALE_TOLERANCE * longest:
            return False
    return True


def _moved_little_on_a_log_axis(now: np.ndarray, old: np.ndarray) -> bool:
    """Whether positions on a logarithmic axis moved by at most `SCALE_TOLERANCE` of the
    span the old ones cover (an axis spans at least that); which are drawn (above zero)
    is in the digest, so both hold the same."""
    with np.errstate(divide="ignore", invalid="ignore"):
        now_at, old_at = (
            np.log(np.where(now > 0, now, np.nan)),
            np.log(np.where(old > 0, old, np.nan)),
        )
    if not np.isfinite(old_at).any():
        return True
    span = np.nanmax(old_at) - np.nanmin(old_at)
    return bool(np.nan_to_num(np.abs(now_at - old_at)).max() <= SCALE_TOLERANCE * span)


def _shown(value: object) -> bytes:
    """`value` as bytes that differ when what a chart draws of it may differ."""
    if isinstance(value, pd.DataFrame | pd.Series):
        text = value.to_json(
            orient="split", double_precision=15, date_format="iso", default_handler=repr
        )
        dtypes = value.dtypes.tolist() if isinstance(value, pd.DataFrame) else [value.dtype]
        return f"{type(value).__name__}{text}{dtypes!r}".encode()
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: repr(item[0]))
        return b"{" + b",".join(_shown(k) + b":" + _shown(v) for k, v in items) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(_shown(item) for item in value) + b"]"
    return repr(value).encode()


def write_charts(directory: Path, pngs: Mapping[str, bytes]) -> list[Path]:
    """Write each chart as `directory/<file name>`; returns the paths, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, png in pngs.items():
        path = directory / file_name
        path.write_bytes(png)
        paths.append(path)
    return paths
