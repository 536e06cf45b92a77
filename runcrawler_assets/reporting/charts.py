"""The shapes of the charts: pies, bars, heat maps, box plots, scatters; data in, PNG bytes out.

Each function draws one shape and knows nothing of analyses; which table is
drawn as which shape, with which title, is `figures`' business (one function
per chart there), so two charts of the same shape share one function here.

The PNGs are embedded as base64 in the Dagster event log and in the HTML
report, so they are drawn small (about 100 dpi, in 256 colours: a few to a few
tens of KB) but sized to be read at report width: titles say what is counted,
axes carry units, and every chart with several series has a legend. An empty frame gives a
chart that says "no runs" rather than an exception.

Every text drawn that comes from the data (tick labels, legend entries, titles
naming a solver or a setting) goes through `short_label`: one line, at most
`MAX_LABEL_CHARS` characters, `$` taken literally. The table's values are
already bounded (contract-notes 16), but a chart must stay cheap whatever it is
given: matplotlib lays out every glyph, and a 1 MB label costs minutes and
gigabytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
from PIL import Image

from runcrawler_assets.reporting.chart_plan import EXACT_BELOW, MAX_BOXES, MAX_SERIES, SHOWN_DIGITS
from runcrawler_assets.warehouse.cleaning import shorten

DPI = 100
WIDTH_IN = 9.0
HEIGHT_IN = 4.8
MAX_PIE_SLICES = 9
MAX_HEATMAP_ROWS = 20  # rows drawn one by one (users), the rest summed in one more
MAX_LABEL_CHARS = 40  # a tick label or legend entry: a mixture, user or host name
MAX_TITLE_CHARS = 160  # a title or axis label (the longest the analyses give: ~110)
Color = tuple[float, float, float]
# tab20 reordered: its ten strong colours first, then their light twins, so that
# the first ten series never get two shades of one hue.
PALETTE: tuple[Color, ...] = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]

plt.rcParams.update(
    {
        # glyphs as the font draws them, not fitted to the pixel grid by FreeType's
        # autohinter: as readable at this size, and the charts draw an eighth faster
        # (text is most of their time; issue 16)
        "text.hinting": "no_hinting",
        "font.size": 10,
        "axes.titlesize": 12,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def short_label(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    """`value` as a chart label: one line, at most `limit` characters, no mathtext.

    Whitespace runs (newlines too: a folder may be named `new⏎line`) fold to one
    space, the rest is cut with a trailing `…`, and `$` is escaped so that a name
    holding two of them is not parsed as a formula (a bad one raises).
    """
    text = shorten(str(value), 4 * limit)  # folding a 1 MB string would cost a 1 MB split
    return shorten(" ".join(text.split()), limit).replace("$", r"\$")


def _title(text: str) -> str:
    return short_label(text, MAX_TITLE_CHARS)


def _labels(values: Iterable[object]) -> list[str]:
    return [short_label(value) for value in values]


def _figure(ncols: int = 1, height: float = HEIGHT_IN) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, ncols, figsize=(WIDTH_IN, height), dpi=DPI, squeeze=False)
    return fig, list(axes[0])


def _png(fig: Figure) -> bytes:
    """Render and free the figure, as a PNG of at most 256 colours (`palette_png`)."""
    return palette_png(rendered(fig))


def rendered(fig: Figure) -> Image.Image:
    """The figure's pixels, cropped to what is drawn, and the figure freed (pyplot keeps
    figures alive until closed).

    Cropped as `bbox_inches="tight"` crops, but from the box measured here: given "tight",
    savefig first draws the whole figure without rendering to find it, a layout pass this
    measure does not need (the same pixels, a tenth less time). `tight_layout` leaves a
    placeholder layout engine, for which savefig would draw the whole figure once more; the
    layout is done, so it is dropped first (the same pixels). Rendered as raw RGBA (no PNG
    encoded only to be decoded), at the box's size in pixels as matplotlib rounds it
    (`FigureCanvasBase.get_width_height`: truncated, but up within 1e-8 of a pixel).
    """
    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        fig.set_layout_engine(None)
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="rgba", dpi=DPI, bbox_inches=box)
    plt.close(fig)
    size = int(box.width * DPI + 1e-8), int(box.height * DPI + 1e-8)
    pixels = buffer.getvalue()
    if len(pixels) != 4 * size[0] * size[1]:
        raise RuntimeError(
            f"matplotlib rendered {len(pixels)} bytes of RGBA for a {size[0]}×{size[1]} chart"
        )
    return Image.frombytes("RGBA", size, pixels)


def palette_png(image: Image.Image) -> bytes:
    """`image` (opaque: the figures' background is white) as a PNG of at most 256 colours.

    The charts are embedded as base64 in every materialization's metadata (three copies
    in Dagster's event log: the output, the materialization and its index) and in the
    report: in 256 colours they take a third to a quarter of the bytes of full colour (27
    charts: 1.5 → 0.4 MB), and no pixel moves by more than a few levels but on the
    anti-aliased edges of the scatters' dots, which stay as readable. zlib level 3, not
    PIL's 6: a third faster to encode, and hardly bigger on these flat-coloured charts.
    """
    buffer = io.BytesIO()
    palette = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    palette.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def no_runs_chart(title: str) -> bytes:
    """A placeholder that says why there is nothing to draw."""
    fig, (ax,) = _figure(height=2.5)
    ax.set_axis_off()
    ax.set_title(_title(title))
    ax.text(0.5, 0.5, "no runs match", ha="center", va="center", fontsize=14, color="grey")
    return _png(fig)


def _top_with_others(counts: pd.Series, keep: int) -> pd.Series:
    """The `keep - 1` largest entries, the rest summed as "others", so a pie stays readable."""
    counts = counts[counts > 0].sort_values(ascending=False)
    if len(counts) <= keep:
        return counts
    head = counts.iloc[: keep - 1]
    return pd.concat([head, pd.Series({"others": counts.iloc[keep - 1 :].sum()})])


def pie_chart(
    counts: pd.Series,
    title: str,
    colors: Mapping[str, Color] | None = None,
    max_slices: int = MAX_PIE_SLICES,
) -> bytes:
    """Shares of a whole (runs per user, errors per category); `colors` fixes one per label."""
    counts = _top_with_others(counts, max_slices)
    if counts.sum() == 0:
        return no_runs_chart(title)
    fig, (ax,) = _figure()
    total = count_label(counts.sum())
    wedges, _, _ = ax.pie(
        counts.to_numpy(),
        colors=[colors.get(str(name), "lightgrey") for name in counts.index]
        if colors is not None
        else PALETTE[: len(counts)],
        autopct=lambda pct: f"{pct:.0f}%" if pct >= 4 else "",
        startangle=90,
        counterclock=False,
        wedgeprops={"linewidth": 1, "edgecolor": "white"},
        pctdistance=0.75,
    )
    ax.set_title(_title(f"{title} ({total} runs)"))
    ax.axis("equal")
    labels = [f"{short_label(name)}: {count_label(n)}" for name, n in counts.items()]
    ax.legend(wedges, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _png(fig)


def compact_number(value: float, _position: object = None) -> str:
    """A tick label short enough for a half-width panel: 12000 as 12k, 1500000 as 1.5M (to
    `SHOWN_DIGITS` significant digits: 12345 as 12.3k)."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.{SHOWN_DIGITS}g}{suffix}"
    return f"{value:g}"


def count_label(value: float) -> str:
    """A count (or hours) printed on a chart: whole below `EXACT_BELOW` ("987"), else
    `compact_number` ("1.23k", "143k", "1M")."""
    return compact_number(value) if abs(value) >= EXACT_BELOW else f"{value:,.0f}"


def bar_panels(
    panels: Mapping[str, pd.Series],
    title: str,
    xlabel: str,
    color: str = "tab:blue",
    ncols: int = 1,
) -> bytes:
    """Horizontal bars, values printed, one panel per entry (titled by its key when there are
    several): CPU hours per category, runs per value of each setting, per stage of each solver.

    Bars keep the series' order, first on top; empty panels are left out.
    """
    panels = {name: values for name, values in panels.items() if values.sum() > 0}
    if not panels:
        return no_runs_chart(title)
    ncols = min(ncols, len(panels))
    rows = [list(panels)[i : i + ncols] for i in range(0, len(panels), ncols)]
    heights = [0.3 * max(len(panels[name]) for name in row) + 0.9 for row in rows]
    fig, axes = plt.subplots(
        len(rows),
        ncols,
        figsize=(WIDTH_IN, min(HEIGHT_IN * 2.6, max(2.5, sum(heights) + 0.4))),
        dpi=DPI,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    flat = list(np.ravel(axes))
    for ax, (name, values) in zip(flat, panels.items(), strict=False):
        positions = np.arange(len(values))[::-1]
        ax.barh(positions, values.to_numpy(), color=color)
        ax.set_yticks(positions, _labels(values.index))
        for y, value in zip(positions, values.to_numpy(), strict=True):
            ax.text(value, y, f" {count_label(value)}", va="center", fontsize=9)
        ax.margins(x=0.12)
        ax.xaxis.set_major_formatter(FuncFormatter(compact_number))  # 10000 and 12000 ran together
        ax.set_xlabel(_title(xlabel))
        if len(panels) > 1:
            ax.set_title(_title(name), fontsize=10)
    for ax in flat[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle(_title(title))
    fig.tight_layout()
    return _png(fig)


def _stack(
    ax: Axes, positions: np.ndarray, table: pd.DataFrame, width: float, horizontal: bool
) -> None:
    """`table`'s columns stacked at `positions`, a colour and a legend entry each.

    Each column is one shape of all its bars (a `PolyCollection`), not a patch per bar as
    `Axes.bar` makes: 19 users over 37 months are 703 bars, and patches drew them in 0.5 s.
    """
    half = width / 2
    low_edge, high_edge = positions - half, positions + half
    base = np.zeros(len(table))
    for i, column in enumerate(table.columns):
        top = base + table[column].to_numpy(dtype=float)
        if horizontal:
            corners = [(base, low_edge), (top, low_edge), (top, high_edge), (base, high_edge)]
        else:
            corners = [(low_edge, base), (low_edge, top), (high_edge, top), (high_edge, base)]
        bars = np.stack([np.column_stack(corner) for corner in corners], axis=1)
        shape = PolyCollection(
            bars[top > base], facecolors=PALETTE[i], linewidths=0, label=short_label(column)
        )
        (shape.sticky_edges.x if horizontal else shape.sticky_edges.y).append(0)
        ax.add_collection(shape)
        base = top
    ax.autoscale_view()


def stacked_bars(
    table: pd.DataFrame, title: str, xlabel: str, ylabel: str, legend_title: str
) -> bytes:
    """Counts per period (rows) split by a group (columns): runs per user and month, ..."""
    if table.empty or table.to_numpy().sum() == 0:
        return no_runs_chart(title)
    table = _keep_top_columns(table, MAX_SERIES)
    fig, (ax,) = _figure()
    positions = np.arange(len(table))
    _stack(ax, positions, table, width=0.85, horizontal=False)
    step = max(1, len(table) // 16)
    ax.set_xticks(positions[::step], _labels(table.index[::step]), rotation=45, ha="right")
    ax.set_xlabel(_title(xlabel))
    ax.set_ylabel(_title(ylabel))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_title(_title(title))
    ax.legend(
        title=short_label(legend_title), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False
    )
    return _png(fig)


def stacked_barh(table: pd.DataFrame, title: str, xlabel: str, legend_title: str) -> bytes:
    """Horizontal stacked bars, first row on top, for long labels (an error and its fix)."""
    if table.empty or table.to_numpy().sum() == 0:
        return no_runs_chart(title)
    fig, (ax,) = _figure(height=min(13.0, max(3.0, 0.34 * len(table) + 1.6)))
    positions = np.arange(len(table))[::-1]
    _stack(ax, positions, table, width=0.8, horizontal=True)
    ax.set_yticks(positions, [short_label(v, 3 * MAX_LABEL_CHARS) for v in table.index], fontsize=8)
    ax.set_xlabel(_title(xlabel))
    ax.set_title(_title(title))
    ax.legend(title=short_label(legend_title), loc="lower right", frameon=False)
    return _png(fig)


def _keep_top_columns(table: pd.DataFrame, keep: int) -> pd.DataFrame:
    """At most `keep` columns, the smallest summed as "others", so colours stay distinct."""
    if table.shape[1] <= keep:
        return table
    order = table.sum().sort_values(ascending=False).index
    head = table[order[: keep - 1]].copy()
    head["others"] = table[order[keep - 1 :]].sum(axis=1)
    return head


def _top_rows_with_others(table: pd.DataFrame, keep: int, plural: str) -> pd.DataFrame:
    """The `keep` rows with the largest sums, in the table's order (ties: the first), then
    one row summing the rest, "others (K <plural>)", so rows stay tall enough to read."""
    if len(table) <= keep + 1:  # folding one row would hide its name and save no room
        return table
    top = np.zeros(len(table), dtype=bool)
    top[np.argsort(-table.sum(axis=1).to_numpy(), kind="stable")[:keep]] = True
    others = table[~top].sum().rename(f"others ({(~top).sum()} {plural})")
    return pd.concat([table[top], others.to_frame().T])


def heatmap(
    table: pd.DataFrame,
    title: str,
    xlabel: str,
    ylabel: str,
    plural: str = "rows",
    max_rows: int = MAX_HEATMAP_ROWS,
) -> bytes:
    """A count matrix (users × error categories) with the numbers written in the cells.

    Beyond `max_rows` rows (`plural` names them), those with the largest sums are drawn
    and the rest summed in a last row, grey: its sums would set the colour scale alone.
    """
    if table.empty or table.to_numpy().sum() == 0:
        return no_runs_chart(title)
    shown = _top_rows_with_others(table, max_rows, plural)
    values = shown.to_numpy(dtype=float)
    colored = np.ma.masked_array(values)
    if len(shown) < len(table):
        colored[-1] = np.ma.masked
        title = (
            f"{title}: the {max_rows} {plural} with most, the other {len(table) - max_rows} summed"
        )
    height = min(HEIGHT_IN * 1.8, max(3.0, 0.32 * len(shown) + 1.8))
    fig, (ax,) = _figure(height=height)
    # cells as quads centred on (column, row), rows downwards, as `imshow` places them: an
    # image is resampled to the axes' pixels in float arrays (~16 MB more of the chart
    # worker's peak, issue 16), quads are drawn as they are (the same pixels)
    rows, cols = values.shape
    cmap = plt.get_cmap("Reds").with_extremes(bad="0.88")
    image = ax.pcolormesh(np.arange(cols + 1) - 0.5, np.arange(rows + 1) - 0.5, colored, cmap=cmap)
    ax.set(xlim=(-0.5, cols - 0.5), ylim=(rows - 0.5, -0.5))
    ax.set_xticks(np.arange(cols), _labels(shown.columns), rotation=35, ha="right")
    ax.set_yticks(np.arange(rows), _labels(shown.index))
    dark = colored.filled(0) > colored.max() / 2
    for (row, col), value in np.ndenumerate(values):
        if value:
            color = "white" if dark[row, col] else "black"
            # centred in its cell, a number never reaches past the axes: left out of the
            # layout, it is not measured for the crop (a sixth of the chart at hundreds of cells)
            ax.text(col, row, count_label(value), ha="center", va="center", fontsize=8, color=color,
                    in_layout=False)  # fmt: skip
    ax.set_xlabel(_title(xlabel))
    ax.set_ylabel(_title(ylabel))
    ax.set_title(_title(title))
    fig.colorbar(image, ax=ax, label="runs", fraction=0.04)
    return _png(fig)


def hour_and_weekday(by_hour: pd.Series, by_weekday: pd.Series, title: str) -> bytes:
    """Two panels: runs by hour of day (0-23) and by weekday (Mon-Sun)."""
    if by_hour.sum() == 0:
        return no_runs_chart(title)
    fig, (left, right) = _figure(ncols=2)
    left.bar(by_hour.index, by_hour.to_numpy(), color="tab:blue")
    left.set_xticks(range(0, 24, 3))
    left.set_xlabel("hour of day [h, UTC]")
    left.set_ylabel("runs")
    right.bar(range(len(by_weekday)), by_weekday.to_numpy(), color="tab:orange")
    right.set_xticks(range(len(by_weekday)), _labels(by_weekday.index))
    right.set_xlabel("weekday")
    right.set_ylabel("runs")
    fig.suptitle(_title(title))
    return _png(fig)


def grouped_bars(table: pd.DataFrame, title: str, xlabel: str, legend_title: str) -> bytes:
    """Horizontal bars per row, one bar per column (mixture × dimension: 2D and 3D runs)."""
    if table.empty or table.to_numpy().sum() == 0:
        return no_runs_chart(title)
    height = min(HEIGHT_IN * 1.8, max(3.0, 0.45 * len(table) + 1.2))
    fig, (ax,) = _figure(height=height)
    positions = np.arange(len(table))[::-1]
    width = 0.8 / table.shape[1]
    for i, column in enumerate(table.columns):
        offset = (i - (table.shape[1] - 1) / 2) * width
        ax.barh(
            positions - offset,
            table[column],
            height=width,
            label=short_label(column),
            color=PALETTE[i],
        )
    ax.set_yticks(positions, _labels(table.index))
    ax.set_xlabel(_title(xlabel))
    ax.set_title(_title(title))
    ax.legend(title=short_label(legend_title), frameon=False)
    return _png(fig)


def box_plots(
    boxes: pd.DataFrame,
    title: str,
    xlabel: str,
    ylabel: str,
    log: bool,
    plural: str = "groups",
    max_boxes: int = MAX_BOXES,
) -> bytes:
    """Box plots of one quantity per group (MPI processes per user), on a log axis if it spans.

    `boxes` holds the statistics, not the runs, so a million runs draw as fast as
    a hundred: one row per group, in drawing order, with label, q1, med, q3, whislo,
    whishi (as matplotlib's `boxplot` computes them), fliers (a list), and runs when
    there are more than `max_boxes` groups (`plural` names them): only those with most
    runs are then drawn (ties: by label), in that order, so that their labels do not
    overlap.
    """
    if boxes.empty:
        return no_runs_chart(title)
    if len(boxes) > max_boxes:
        busiest = boxes.reset_index(drop=True).sort_values(
            ["runs", "label"], ascending=[False, True], kind="stable"
        )
        boxes = boxes.iloc[sorted(busiest.index[:max_boxes])]
        title = f"{title} (the {max_boxes} {plural} with most runs)"
    fig, (ax,) = _figure()
    stats = [
        {**row, "label": short_label(row["label"]), "fliers": list(row["fliers"])}
        for row in boxes.to_dict("records")
    ]
    ax.bxp(stats, showfliers=True, widths=0.6)
    if log:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis, "g", subs=(1.0, 2.0, 5.0))
    ax.set_xlabel(_title(xlabel))
    ax.set_ylabel(_title(ylabel))
    ax.set_title(_title(title))
    ax.tick_params(axis="x", rotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return _png(fig)


def histogram_by_dimension(bins: pd.DataFrame, threshold: float, title: str, xlabel: str) -> bytes:
    """Binned counts per dimension on a log axis, with the rule-of-thumb threshold drawn in.

    `bins` holds the histogram, not the runs: one row per non-empty bin, with
    dimension, bin_low, bin_high and runs.
    """
    if bins.empty or bins["runs"].sum() == 0:
        return no_runs_chart(title)
    fig, (ax,) = _figure()
    for i, (dim, group) in enumerate(bins.groupby("dimension")):
        ax.bar(
            group["bin_low"],
            group["runs"],
            width=group["bin_high"] - group["bin_low"],
            align="edge",
            alpha=0.6,
            label=f"{int(dim)}D",
            color=PALETTE[i],
        )
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:,.0f}")
    ax.set_xscale("log")
    ax.set_xlabel(_title(xlabel))
    ax.set_ylabel("runs")
    ax.set_title(_title(title))
    ax.legend(frameon=False)
    return _png(fig)


def _plain_log_ticks(
    axis: Axis, fmt: str, subs: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
) -> None:
    """Plain numbers on a log axis (64, not 2^6; 2.0e-05, not 2×10^-5), and no minor ticks.

    The default ticks suit an axis spanning about a decade; pass fewer `subs` for wider spans.
    The labelled ticks are dense enough to read a value by; unlabelled ones between them
    would add little, and each tick costs matplotlib a line and a label to lay out three
    times (the four charts with such an axis drew 15 % faster without them).
    """
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: format(value, fmt)))
    axis.set_minor_locator(NullLocator())


def efficiency_vs_procs(runs: pd.DataFrame, medians: pd.DataFrame, title: str) -> bytes:
    """Efficiency (lower is better) against MPI processes, one panel per dimension, log-log.

    `runs` has one point per successful run (dimension, cluster, n_procs,
    efficiency); `medians` the median per process-count bin (dimension,
    cluster, procs_median, efficiency_median), drawn as a line per cluster.
    """
    runs = runs.dropna(subset=["efficiency", "n_procs", "dimension"])
    if runs.empty:
        return no_runs_chart(title)
    dimensions = sorted(runs["dimension"].unique())
    clusters = sorted(runs["cluster"].unique())
    colors = {cluster: PALETTE[i % 10] for i, cluster in enumerate(clusters)}
    fig, axes = _figure(ncols=len(dimensions))
    for ax, dim in zip(axes, dimensions, strict=True):
        for cluster in clusters:
            points = runs[(runs["dimension"] == dim) & (runs["cluster"] == cluster)]
            if points.empty:
                continue
            ax.scatter(
                points["n_procs"], points["efficiency"], s=8, alpha=0.25, color=colors[cluster]
            )
            line = medians[(medians["dimension"] == dim) & (medians["cluster"] == cluster)]
            ax.plot(
                line["procs_median"],
                line["efficiency_median"],
                marker="o",
                color=colors[cluster],
                label=f"{short_label(cluster)} (median)",
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        _plain_log_ticks(ax.yaxis, ".1e")
        ax.set_title(f"{int(dim)}D runs")
        ax.set_xlabel("MPI processes")
        ax.legend(frameon=False, fontsize=8)
    axes[0].set_ylabel("efficiency [s·proc/(it·node)], lower is better")
    fig.suptitle(_title(title))
    fig.tight_layout()
    return _png(fig)


def ratio_forest(effects: pd.DataFrame, title: str, xlabel: str) -> bytes:
    """Ratios with confidence intervals, one line per setting value; flagged ones in red.

    `effects` has label, ratio, ci_low, ci_high and flagged columns.
    """
    effects = effects.dropna(subset=["ratio", "ci_low", "ci_high"])
    effects = effects[(effects["ratio"] > 0) & (effects["ci_low"] > 0)]
    if effects.empty:
        return no_runs_chart(title)
    height = min(13.0, max(3.0, 0.26 * len(effects) + 1.5))
    fig, (ax,) = _figure(height=height)
    positions = np.arange(len(effects))[::-1]
    colors = ["tab:red" if f else "tab:grey" for f in effects["flagged"]]
    ratio = effects["ratio"].to_numpy()
    ax.hlines(positions, effects["ci_low"], effects["ci_high"], colors=colors, linewidth=1.5)
    ax.scatter(ratio, positions, color=colors, zorder=3, s=18)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    # At least 0.5-2 and symmetric around 1, so "twice as often" reads the same both ways.
    reach = max(2.0, effects["ci_high"].max(), 1 / effects["ci_low"].min()) * 1.1
    ax.set_xlim(1 / reach, reach)
    _plain_log_ticks(ax.xaxis, "g")
    ax.set_yticks(
        positions, [short_label(v, 2 * MAX_LABEL_CHARS) for v in effects["label"]], fontsize=8
    )
    ax.set_xlabel(_title(xlabel))
    ax.set_title(_title(title))
    ax.scatter([], [], color="tab:red", label="stands out of the noise")
    ax.scatter([], [], color="tab:grey", label="within the noise")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)
