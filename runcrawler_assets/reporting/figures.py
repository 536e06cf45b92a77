"""Every chart of the analyses, drawn from their tables: one function per chart.

A chart function takes the table (or two) it shows, as the analysis stored
it, with the analyses' vocabulary it labels them with (category names,
thresholds), and returns PNG bytes. Nothing is computed here beyond pivoting
and labelling: a chart shows what its table holds, so the Dagster UI, the
report and the notebook show the numbers stored once per refresh. Which
function draws which chart, from what, is planned by `plans`; the shapes
themselves are drawn by `charts`. Only the process that draws loads this
module (and matplotlib), so nothing here imports the analytics (nor DuckDB).
"""

from __future__ import annotations

import pandas as pd

from runcrawler_assets.reporting import charts
from runcrawler_assets.reporting.chart_plan import TOP_TEMPLATES


def _category_colors(categories: tuple[str, ...]) -> dict[str, charts.Color]:
    """One colour per category, fixed, so a category keeps its colour whatever the filter."""
    return dict(zip(categories, charts.PALETTE, strict=False))


def _wide(long: pd.DataFrame, index: str, columns: str, values: str) -> pd.DataFrame:
    """A long table (period, user, runs) as the wide one stacked bars draw, zeros filled."""
    if long.empty:
        return pd.DataFrame()
    return long.pivot_table(
        index=index, columns=columns, values=values, aggfunc="sum", fill_value=0
    )


# Errors


def error_category_pie(errors: pd.DataFrame, categories: tuple[str, ...]) -> bytes:
    """`error_categories` but `none`: runs per category of the runs that did not succeed,
    each of the error `categories` in its colour."""
    return charts.pie_chart(
        errors.set_index("category")["runs"],
        "Why runs did not succeed: error categories",
        _category_colors(categories),
        max_slices=len(categories),
    )


def errors_by_user_heatmap(by_user: pd.DataFrame, categories: tuple[str, ...]) -> bytes:
    """`errors_by_user`: users × error `categories`, only the users and categories with
    errors."""
    heat = by_user.set_index("user")[list(categories)]
    heat = heat.loc[heat.sum(axis=1) > 0, heat.sum() > 0]
    return charts.heatmap(
        heat, "Error categories per user (runs)", "error category", "user", plural="users"
    )


def failure_stage_bars(stages: pd.DataFrame) -> bytes:
    """`failure_stages`: one panel per solver, its stages in its order, labelled by code."""
    code = stages["stage_code"].astype("Int64").astype("string") + "  "
    labelled = stages.assign(label=code.fillna("") + stages["stage"].astype("string"))
    panels = {
        f"{solver} ({charts.count_label(group['runs'].sum())} failed or killed runs)": (
            group.set_index("label")["runs"]
        )
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
    """`error_signatures` or `unknown_templates`, their first `TOP_TEMPLATES` rows (the plans
    give no more): the most repeated errors by runs, each labelled with its template and
    its `tag` column (category, or id)."""
    labels = signatures["template"].astype(str) + "  [" + signatures[tag].astype(str) + "]"
    return charts.bar_panels(
        {"": pd.Series(signatures["runs"].to_numpy(), index=labels)}, title, "runs", color=color
    )


def unknown_template_bars(templates: pd.DataFrame, categories: tuple[str, ...]) -> bytes:
    """`unknown_templates`: `signature_bars` of the errors no rule knows, in their category's
    colour."""
    return signature_bars(
        templates,
        "Errors no rule knows ('unknown'), grouped into learned templates",
        "signature_id",
        _category_colors(categories)["unknown"],
    )


def typical_fix_bars(fixed: pd.DataFrame) -> bytes:
    """`error_fixes`, the most repeated errors with a typical fix (the plans give the first
    `TOP_TEMPLATES`): failures fixed by a change, by a rerun that changed nothing, or by a
    restart."""
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


def version_failure_forest(effects: pd.DataFrame, min_runs: int) -> bytes:
    """`version_effects`: each version's failure ratio to the solver's older versions, of
    the versions with `min_runs` finished runs."""
    tested = effects[effects["finished_runs"] >= min_runs]
    frame = pd.DataFrame(
        {
            "label": tested["solver"]
            + " "
            + tested["solver_version"]
            + " ("
            + tested["finished_runs"].map(charts.count_label).astype(str)
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


# What was run


def setting_count_panels(counts: pd.DataFrame, labels: dict[str, str]) -> bytes:
    """`run_settings`: one panel per setting (named by `labels`), runs per value."""
    panels = {
        labels.get(setting, setting): group.set_index("value")["runs"]
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


# HPC habits


def distribution_boxes(
    distributions: pd.DataFrame, quantity: str, title: str, ylabel: str
) -> bytes:
    """`hpc_habit_distributions`: one quantity's box plot per user, on a log axis."""
    boxes = distributions[distributions["quantity"] == quantity]
    boxes = boxes.drop(columns="quantity").rename(columns={"user": "label"})
    return charts.box_plots(boxes, title, "user", ylabel, log=True, plural="users")


def nodes_per_process_histogram(histogram: pd.DataFrame, threshold: int) -> bytes:
    """`nodes_per_process`: runs per bin of mesh nodes per process, with the `threshold`
    below which a process has too few."""
    return charts.histogram_by_dimension(
        histogram,
        threshold,
        "Mesh nodes per MPI process (left of the dashed line: too few)",
        "mesh nodes per MPI process",
    )


# Efficiency


def efficiency_scatter(
    points: pd.DataFrame, medians: pd.DataFrame, dots: str, solver: str
) -> bytes:
    """`efficiency_points` over `efficiency`'s bin medians, for one solver; `dots` says
    whether the dots are every run or a sample (`plans`)."""
    return charts.efficiency_vs_procs(
        points,
        medians,
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


# Is it related to a setting?


def setting_ratio_forest(
    effects: pd.DataFrame, prefix: str, n_col: str, title: str, xlabel: str, min_runs: int
) -> bytes:
    """`setting_effects`: the `failure` or `efficiency` ratio (`prefix`) of each value
    tested on `min_runs` runs (column `n_col`)."""
    tested = effects[effects[n_col] >= min_runs]
    runs = " (" + tested[n_col].map(charts.count_label).astype(str) + ")"
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


# What the scheduler saw


def walltime_ratio_bars(bins: pd.DataFrame, bin_labels: tuple[str, ...]) -> bytes:
    """`walltime_ratio_bins`: per cluster, the share of its runs in each bin of wall time
    used / requested (`bin_labels`, in order)."""
    wide = _wide(bins, "ratio_bin", "cluster", "share_pct")
    if not wide.empty:
        wide = wide.reindex(list(bin_labels))
        wide.index = [f"used {label} of the request" for label in wide.index]
        runs = bins.groupby("cluster")["runs"].sum()
        wide.columns = [f"{c} ({charts.count_label(runs[c])} runs)" for c in wide.columns]
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
        + " (" + waits["jobs"].map(charts.count_label).astype(str) + " jobs)"
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
        f"{user} ({charts.count_label(runs)} runs)"
        for user, runs in zip(percent.index, known["runs"], strict=True)
    ]
    return charts.grouped_bars(
        percent,
        "Memory used as a share of the memory requested, per user (largest process × processes)",
        "memory used / requested [%]",
        "of the user's runs",
    )


def cpu_hours_by_state_bars(states: pd.DataFrame, not_archived: str) -> bytes:
    """`cpu_hours_by_state`: CPU hours per cluster stacked by scheduler state, the jobs
    missing from the archive (state `not_archived`) last."""
    wide = _wide(states, "cluster", "scheduler_state", "cpu_hours")
    if not wide.empty:
        order = wide.sum().sort_values(ascending=False).index.drop(not_archived, errors="ignore")
        wide = wide[[*order, *([not_archived] if not_archived in wide.columns else [])]]
    return charts.stacked_bars(
        wide,
        f"CPU hours per cluster and scheduler state ('{not_archived}': jobs missing from "
        "the archive)",
        "cluster",
        "CPU hours [h] (allocated CPUs × elapsed)",
        "scheduler state",
    )
