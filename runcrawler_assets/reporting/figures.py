"""Every chart of the analyses, drawn from their tables: one function per chart.

A chart function takes the table (or two) it shows, as the analysis stored
it, and returns PNG bytes. Nothing is computed here beyond pivoting and
labelling: a chart shows what its table holds, so the Dagster UI, the report
and the notebook show the numbers stored once per refresh. `draw_charts`
gives an analysis's charts by file name, in the order the report shows them;
the shapes themselves are drawn by `charts`. A chart is known by what it
shows (`plan_digest`), so one whose tables did not change need not be drawn
again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import matplotlib
import pandas as pd

from runcrawler_assets.analytics.errors import ERROR_CATEGORY_NAMES
from runcrawler_assets.analytics.habits import MIN_NODES_PER_PROCESS
from runcrawler_assets.analytics.scheduler import NOT_ARCHIVED, RATIO_BIN_LABELS
from runcrawler_assets.analytics.setting_effects import MIN_RUNS
from runcrawler_assets.analytics.settings_usage import SETTING_LABELS
from runcrawler_assets.reporting import charts

Tables = Mapping[str, pd.DataFrame]
Plans = dict[str, "partial[bytes]"]  # file name -> its chart function with its tables

TOP_TEMPLATES = 15  # errors shown in the signature charts
# One colour per category, fixed, so a category keeps its colour whatever the filter.
CATEGORY_COLORS = dict(zip(ERROR_CATEGORY_NAMES, charts.PALETTE, strict=False))
# The box plots of `hpc_habit_distributions`: quantity -> (file name, title, axis label).
DISTRIBUTION_CHARTS: dict[str, tuple[str, str, str]] = {
    "n_procs": ("procs_by_user.png", "MPI processes per run, by user", "MPI processes"),
    "ncell_group": (
        "ncell_group_by_user.png",
        "ncell_group per run, by user",
        "ncell_group [cells per group]",
    ),
}


def _wide(long: pd.DataFrame, index: str, columns: str, values: str) -> pd.DataFrame:
    """A long table (period, user, runs) as the wide one stacked bars draw, zeros filled."""
    if long.empty:
        return pd.DataFrame()
    return long.pivot_table(
        index=index, columns=columns, values=values, aggfunc="sum", fill_value=0
    )


# Errors


def error_category_pie(errors: pd.DataFrame) -> bytes:
    """`error_categories` but `none` (`_error_charts`): runs per category of the runs that
    did not succeed."""
    return charts.pie_chart(
        errors.set_index("category")["runs"],
        "Why runs did not succeed: error categories",
        CATEGORY_COLORS,
        max_slices=len(ERROR_CATEGORY_NAMES),
    )


def errors_by_user_heatmap(by_user: pd.DataFrame) -> bytes:
    """`errors_by_user`'s user and category columns (`_error_charts`): users × categories,
    only the users and categories with errors."""
    heat = by_user.set_index("user")[list(ERROR_CATEGORY_NAMES)]
    heat = heat.loc[heat.sum(axis=1) > 0, heat.sum() > 0]
    return charts.heatmap(
        heat, "Error categories per user (runs)", "error category", "user", plural="users"
    )


def failure_stage_bars(stages: pd.DataFrame) -> bytes:
    """`failure_stages`: one panel per solver, its stages in its order, labelled by code."""
    code = stages["stage_code"].astype("Int64").astype("string") + "  "
    labelled = stages.assign(label=code.fillna("") + stages["stage"].astype("string"))
    panels = {
        f"{solver} ({int(group['runs'].sum())} failed or killed runs)": group.set_index("label")[
            "runs"
        ]
        for solver, group in labelled.groupby("solver", sort=False)
    }
    return charts.bar_panels(
        panels, "Last stage reached by failed and killed runs", "runs", color="tab:red"
    )


def cpu_hours_lost_bars(lost: pd.DataFrame) -> bytes:
    """`cpu_hours_lost`: CPU hours of failed and killed runs per category."""
    return charts.bar_panels(
        {"": lost.set_index("error_category")["cpu_hours"]},
        "CPU hours spent in failed and killed runs, per error category",
        "CPU hours [h]",
        color="tab:orange",
    )


def signature_bars(signatures: pd.DataFrame, title: str, tag: str, color: str) -> bytes:
    """`error_signatures` or `unknown_templates`: the most repeated errors by runs, each
    labelled with its template and its `tag` column (category, or id)."""
    top = signatures.head(TOP_TEMPLATES)
    labels = top["template"].astype(str) + "  [" + top[tag].astype(str) + "]"
    return charts.bar_panels(
        {"": pd.Series(top["runs"].to_numpy(), index=labels)}, title, "runs", color=color
    )


def typical_fix_bars(errors: pd.DataFrame) -> bytes:
    """`error_fixes`: the most repeated errors with a typical fix: failures fixed by a
    change, by a rerun that changed nothing, or by a restart."""
    fixed = errors[errors["fixed_runs"] + errors["reruns"] > 0].head(TOP_TEMPLATES)
    fix = fixed["typical_fix"].fillna("(no targeted fix)").str.split(" \\(").str[0]
    frame = fixed.set_index(fixed["template"].astype(str).map(charts.short_label) + "  →  " + fix)
    frame = frame[["fixed_runs", "reruns", "restarts"]]
    frame.columns = ["fixed by a change", "rerun unchanged", "restarted"]
    return charts.stacked_barh(
        frame,
        "Typical errors, their most common targeted fix, and what the next success was",
        "failed runs followed by a success of the same case",
        "the next success",
    )


def _signature_charts(tables: Tables) -> Plans:
    return {
        "error_signatures.png": partial(
            signature_bars,
            tables["error_signatures"],
            "The most repeated errors (failed and killed runs)",
            "error_category",
            "tab:red",
        ),
        "unknown_templates.png": partial(
            signature_bars,
            tables["unknown_templates"],
            "Errors no rule knows ('unknown'), grouped into learned templates",
            "signature_id",
            CATEGORY_COLORS["unknown"],
        ),
    }


def fix_keyword_bars(typical: pd.DataFrame) -> bytes:
    """`typical_fixes`: the keywords whose targeted change fixed failures, by error category
    (weighted: a fix changing k keywords counts 1/k for each)."""
    wide = _wide(typical, "keyword", "error_category", "weight")
    if not wide.empty:
        wide = wide.loc[wide.sum(axis=1).sort_values(ascending=False).index[:TOP_TEMPLATES]]
    return charts.stacked_barh(
        wide,
        "Keywords whose change fixed a failure (next success of the same case)",
        "fixes (a fix changing k keywords counts 1/k for each)",
        "error category",
    )


def campaign_bars(attempts: pd.DataFrame) -> bytes:
    """`campaign_attempts`: campaigns per number of runs, stacked by outcome."""
    wide = _wide(attempts, "attempts", "outcome", "campaigns")
    return charts.stacked_bars(
        wide,
        "Campaigns: runs a user needed to bring a case to its end",
        "runs in the campaign",
        "campaigns",
        "outcome",
    )


def version_failure_forest(effects: pd.DataFrame) -> bytes:
    """`version_effects`: each version's failure ratio to the solver's older versions."""
    tested = effects[effects["finished_runs"] >= MIN_RUNS]
    frame = pd.DataFrame(
        {
            "label": tested["solver"]
            + " "
            + tested["solver_version"]
            + " ("
            + tested["finished_runs"].astype(str)
            + ")",
            "ratio": tested["failure_ratio"],
            "ci_low": tested["failure_ratio_ci_low"],
            "ci_high": tested["failure_ratio_ci_high"],
            "flagged": tested["failure_flagged"],
        }
    )
    return charts.ratio_forest(
        frame,
        "Failure risk of each solver version vs the versions before it (95 % CI)",
        "risk ratio within the same user, CFL and artificial viscosity (> 1: fails more); "
        "in brackets: finished runs",
    )


def _error_charts(tables: Tables) -> Plans:
    """Each chart given only what it draws, so that successful runs, which change the tables'
    counts of all runs, leave the charts as they were (`plan_digest`)."""
    categories = tables["error_categories"]
    errors = categories.loc[categories["category"] != "none", ["category", "runs"]]
    by_user = tables["errors_by_user"][["user", *ERROR_CATEGORY_NAMES]]
    return {
        "err_type.png": partial(error_category_pie, errors),
        "errors_by_user.png": partial(errors_by_user_heatmap, by_user),
        "failure_stages.png": partial(failure_stage_bars, tables["failure_stages"]),
        "cpu_hours_lost.png": partial(cpu_hours_lost_bars, tables["cpu_hours_lost"]),
    }


# Who runs, and when


def runs_per_user_pie(users: pd.DataFrame) -> bytes:
    """`user_activity`: each user's share of the runs."""
    return charts.pie_chart(users.set_index("user")["runs"], "Runs per user")


def runs_per_period_bars(by_period: pd.DataFrame, period: str) -> bytes:
    """`runs_by_user_year` or `runs_by_user_month`: runs per period, stacked by user."""
    wide = _wide(by_period, period, "user", "runs")
    return charts.stacked_bars(wide, f"Runs per {period} and user", period, "runs", "user")


def hour_and_weekday_bars(by_hour: pd.DataFrame, by_weekday: pd.DataFrame) -> bytes:
    """`runs_by_hour` and `runs_by_weekday`: when runs are set up."""
    return charts.hour_and_weekday(
        by_hour.set_index("hour")["runs"],
        by_weekday.set_index("weekday_name")["runs"],
        "When runs are set up (parameter file time)",
    )


def _activity_charts(tables: Tables) -> Plans:
    return {
        "runs_per_user.png": partial(runs_per_user_pie, tables["user_activity"]),
        "when_year_user.png": partial(runs_per_period_bars, tables["runs_by_user_year"], "year"),
        "when_month_user.png": partial(runs_per_period_bars, tables["runs_by_user_month"], "month"),
        "when_hour_weekday.png": partial(
            hour_and_weekday_bars, tables["runs_by_hour"], tables["runs_by_weekday"]
        ),
    }


# What was run


def setting_count_panels(counts: pd.DataFrame) -> bytes:
    """`run_settings`: one panel per setting, runs per value."""
    panels = {
        SETTING_LABELS.get(setting, setting): group.set_index("value")["runs"]
        for setting, group in counts.groupby("setting", sort=False)
    }
    return charts.bar_panels(panels, "Runs per setting value", "runs", ncols=2)


def mixture_dimension_bars(mixtures: pd.DataFrame) -> bytes:
    """`mixture_by_dimension`: runs per mixture in 2D and in 3D."""
    dims = mixtures.set_index("mixture_name")[["runs_2d", "runs_3d"]]
    return charts.grouped_bars(
        dims.rename(columns={"runs_2d": "2D", "runs_3d": "3D"}),
        "Runs per mixture in 2D and 3D",
        "runs",
        "dimension",
    )


def _settings_charts(tables: Tables) -> Plans:
    return {
        "run_settings.png": partial(setting_count_panels, tables["run_settings"]),
        "mixture_by_dimension.png": partial(mixture_dimension_bars, tables["mixture_by_dimension"]),
    }


# HPC habits


def distribution_boxes(distributions: pd.DataFrame, quantity: str) -> bytes:
    """`hpc_habit_distributions`: one quantity's box plot per user, on a log axis."""
    _, title, ylabel = DISTRIBUTION_CHARTS[quantity]
    boxes = distributions[distributions["quantity"] == quantity]
    boxes = boxes.drop(columns="quantity").rename(columns={"user": "label"})
    return charts.box_plots(boxes, title, "user", ylabel, log=True, plural="users")


def nodes_per_process_histogram(histogram: pd.DataFrame) -> bytes:
    """`nodes_per_process`: runs per bin of mesh nodes per process, with the threshold."""
    return charts.histogram_by_dimension(
        histogram,
        MIN_NODES_PER_PROCESS,
        "Mesh nodes per MPI process (left of the dashed line: too few)",
        "mesh nodes per MPI process",
    )


def _habit_charts(tables: Tables) -> Plans:
    boxes = {
        file_name: partial(distribution_boxes, tables["hpc_habit_distributions"], quantity)
        for quantity, (file_name, _, _) in DISTRIBUTION_CHARTS.items()
    }
    return {
        **boxes,
        "nodes_per_process.png": partial(nodes_per_process_histogram, tables["nodes_per_process"]),
    }


# Efficiency


def efficiency_scatter(
    points: pd.DataFrame, table: pd.DataFrame, by_cluster: pd.DataFrame, solver: str
) -> bytes:
    """`efficiency_points` over `efficiency`'s bin medians, for one solver; the title says
    whether the dots are every run (`efficiency_by_cluster` counts them) or a sample."""
    points = points[points["solver"] == solver]
    runs = int(by_cluster.loc[by_cluster["solver"] == solver, "runs"].sum())
    dots = "runs" if len(points) == runs else f"a sample of {len(points):,} of {runs:,} runs"
    return charts.efficiency_vs_procs(
        points,
        table[table["solver"] == solver],
        f"{solver}: efficiency against MPI processes (successful runs; dots = {dots})",
    )


def cpu_hours_by_user_cluster_bars(hours: pd.DataFrame) -> bytes:
    """`cpu_hours_by_user_cluster`: CPU hours per user, stacked by cluster, most first."""
    stacked = _wide(hours, "user", "cluster", "cpu_hours")
    if not stacked.empty:
        stacked = stacked.loc[stacked.sum(axis=1).sort_values(ascending=False).index]
    return charts.stacked_bars(
        stacked, "CPU hours per user and cluster", "user", "CPU hours [h]", "cluster"
    )


def _efficiency_charts(tables: Tables) -> Plans:
    """One scatter per solver, in the tables' order (most successful runs first): the first
    is `efficiency_vs_procs.png`, the others carry their solver's name."""
    by_cluster = tables["efficiency_by_cluster"]
    solvers = list(dict.fromkeys(by_cluster["solver"])) or ["avbp"]
    points, table = tables["efficiency_points"], tables["efficiency"]
    scatters = {
        "efficiency_vs_procs.png" if i == 0 else f"efficiency_vs_procs_{solver}.png": (
            partial(efficiency_scatter, points, table, by_cluster, solver)
        )
        for i, solver in enumerate(solvers)
    }
    hours = partial(cpu_hours_by_user_cluster_bars, tables["cpu_hours_by_user_cluster"])
    return {**scatters, "cpu_hours_by_user_cluster.png": hours}


# Is it related to a setting?

FOREST_CHARTS: dict[str, tuple[str, str, str, str]] = {
    # prefix: (file name, runs column, title, axis label)
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


def setting_ratio_forest(effects: pd.DataFrame, prefix: str) -> bytes:
    """`setting_effects`: the `failure` or `efficiency` ratio of each tested value."""
    _, n_col, title, xlabel = FOREST_CHARTS[prefix]
    tested = effects[effects[n_col] >= MIN_RUNS]
    runs = " (" + tested[n_col].astype(str) + ")"
    frame = pd.DataFrame(
        {
            "label": tested["setting"] + " = " + tested["value"] + runs,
            "ratio": tested[f"{prefix}_ratio"],
            "ci_low": tested[f"{prefix}_ratio_ci_low"],
            "ci_high": tested[f"{prefix}_ratio_ci_high"],
            "flagged": tested[f"{prefix}_flagged"],
        }
    )
    return charts.ratio_forest(frame, title, xlabel)


def _setting_effect_charts(tables: Tables) -> Plans:
    return {
        file_name: partial(setting_ratio_forest, tables["setting_effects"], prefix)
        for prefix, (file_name, *_) in FOREST_CHARTS.items()
    }


# What the scheduler saw


def walltime_ratio_bars(bins: pd.DataFrame) -> bytes:
    """`walltime_ratio_bins`: per cluster, the share of its runs in each bin of wall time
    used / requested."""
    wide = _wide(bins, "ratio_bin", "cluster", "share_pct")
    if not wide.empty:
        wide = wide.reindex(list(RATIO_BIN_LABELS))
        wide.index = [f"used {label} of the request" for label in wide.index]
        runs = bins.groupby("cluster")["runs"].sum()
        wide.columns = [f"{cluster} ({runs[cluster]:,} runs)" for cluster in wide.columns]
    return charts.grouped_bars(
        wide,
        "Wall time used, as a share of the time requested (matched finished runs)",
        "share of the cluster's runs [%]",
        "cluster",
    )


def queue_wait_bars(waits: pd.DataFrame) -> bytes:
    """`queue_wait`: median and p90 queue wait per cluster, partition and job size, one
    pair of bars each (a median is not summed over partitions, so each keeps its row)."""
    labels = (
        waits["cluster"] + "/" + waits["queue"] + ", " + waits["size_class"]
        + " (" + waits["jobs"].map("{:,}".format) + " jobs)"
    )  # fmt: skip
    hours = waits[["wait_median_h", "wait_p90_h"]].set_axis(["median", "90th percentile"], axis=1)
    return charts.grouped_bars(
        hours.set_axis(labels, axis=0),
        "Queue wait per cluster/partition and job size (matched jobs)",
        "queue wait [h]",
        "of the jobs' waits",
    )


def memory_headroom_bars(memory: pd.DataFrame) -> bytes:
    """`memory_headroom`: per user, memory used / requested (p10, median, p90) in %."""
    known = memory.dropna(subset=["memory_use_median"])
    percent = 100 * known.set_index("user")[
        ["memory_use_p10", "memory_use_median", "memory_use_p90"]
    ].astype(float)
    percent.columns = ["10th percentile", "median", "90th percentile"]
    percent.index = [
        f"{user} ({runs:,} runs)" for user, runs in zip(percent.index, known["runs"], strict=True)
    ]
    return charts.grouped_bars(
        percent,
        "Memory used as a share of the memory requested, per user (largest process × processes)",
        "memory used / requested [%]",
        "of the user's runs",
    )


def cpu_hours_by_state_bars(states: pd.DataFrame) -> bytes:
    """`cpu_hours_by_state`: CPU hours per cluster stacked by scheduler state, the jobs
    missing from the archive last."""
    wide = _wide(states, "cluster", "scheduler_state", "cpu_hours")
    if not wide.empty:
        order = wide.sum().sort_values(ascending=False).index.drop(NOT_ARCHIVED, errors="ignore")
        wide = wide[[*order, *([NOT_ARCHIVED] if NOT_ARCHIVED in wide.columns else [])]]
    return charts.stacked_bars(
        wide,
        f"CPU hours per cluster and scheduler state ('{NOT_ARCHIVED}': jobs missing from "
        "the archive)",
        "cluster",
        "CPU hours [h] (allocated CPUs × elapsed)",
        "scheduler state",
    )


def _scheduler_charts(tables: Tables) -> Plans:
    return {
        "walltime_used_vs_requested.png": partial(
            walltime_ratio_bars, tables["walltime_ratio_bins"]
        ),
        "queue_wait.png": partial(queue_wait_bars, tables["queue_wait"]),
        "memory_headroom.png": partial(memory_headroom_bars, tables["memory_headroom"]),
        "cpu_hours_by_scheduler_state.png": partial(
            cpu_hours_by_state_bars, tables["cpu_hours_by_state"]
        ),
    }


CHARTS: dict[str, Callable[[Tables], Plans]] = {
    "error_categories": _error_charts,
    "error_signatures": _signature_charts,
    "fixes": lambda tables: {
        "typical_fixes.png": partial(typical_fix_bars, tables["error_fixes"]),
        "fix_keywords.png": partial(fix_keyword_bars, tables["typical_fixes"]),
    },
    "campaigns": lambda tables: {
        "campaign_attempts.png": partial(campaign_bars, tables["campaign_attempts"])
    },
    "user_activity": _activity_charts,
    "run_settings": _settings_charts,
    "hpc_habits": _habit_charts,
    "efficiency": _efficiency_charts,
    "setting_effects": _setting_effect_charts,
    "version_effects": lambda tables: {
        "version_failure_risk.png": partial(version_failure_forest, tables["version_effects"])
    },
    "scheduler": _scheduler_charts,
}


def chart_plans(analysis: str, tables: Tables) -> Plans:
    """The charts of `analysis` (its name), each ready to draw: file name -> a call giving
    its PNG, a chart function with the tables it shows (picklable: a worker can draw it)."""
    return CHARTS[analysis](tables)


# The drawing code's version: these two modules and matplotlib's (a change to any may
# change every PNG).
_DRAWING_CODE = hashlib.blake2b(
    Path(charts.__file__).read_bytes()
    + Path(__file__).read_bytes()
    + matplotlib.__version__.encode(),
    digest_size=16,
).digest()


def plan_digest(plan: partial[bytes]) -> str:
    """What a chart of `chart_plans` shows, as 32 hex digits: its function, the tables and
    values it is given, and the drawing code's version. Two plans with one digest draw the
    same PNG (tables are read to 15 significant digits: beyond, no pixel moves)."""
    digest = hashlib.blake2b(_DRAWING_CODE, digest_size=16)
    digest.update(f"{plan.func.__module__}.{plan.func.__qualname__}".encode())
    for value in (plan.args, plan.keywords):
        digest.update(_shown(value))
    return digest.hexdigest()


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


def draw_charts(analysis: str, tables: Tables) -> dict[str, bytes]:
    """The charts of `analysis` (its name), drawn from its tables: file name -> PNG."""
    return {name: draw() for name, draw in chart_plans(analysis, tables).items()}


def write_charts(directory: Path, pngs: Mapping[str, bytes]) -> list[Path]:
    """Write each chart as `directory/<file name>`; returns the paths, in order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name, png in pngs.items():
        path = directory / file_name
        path.write_bytes(png)
        paths.append(path)
    return paths
