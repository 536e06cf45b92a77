"""The approximate option for flat medians (issue 16): per-user bins merged, against exact.

`setting_effects` gives each setting value the median efficiency of its
successful runs with an order-statistic interval, exact: it keeps per partition
how many efficiencies fall in each 1 % bin (`setting_effects.kept`), and a
refresh sorts the runs of the bins holding the ranks wanted, a second scan of
`runs`. The option measured here would skip that scan: it keeps, per user,
setting and value, how many efficiencies fall in each bin of `BIN_RATIO` (0.1 %:
`floor(ln(efficiency) / ln(1.001))`), merges them all and reads the median and
both bounds from cumulative counts, each bin read as its middle. On a `runs`
table of N rows (a crawled demo archive of 20,000 runs replicated, as
`benchmarks.analytics` does: fewer source runs would repeat fewer efficiencies,
and fill fewer bins), it times building every user's bins (one full scan,
once), the merge and read, and the exact `value_statistics`, and reports how
far each approximate median and bound is from the exact one.

    .venv/bin/python -m benchmarks.approximate_medians --rows 1000000
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence

import duckdb
import pandas as pd

from benchmarks.analytics import replicate_runs
from benchmarks.common import (
    Workspace,
    load_average,
    rows_parser,
    rows_workspace,
    temporary_workspace,
)
from runcrawler_assets.analytics import RunFilter
from runcrawler_assets.analytics.setting_effects.tables import SETTINGS, value_statistics
from runcrawler_assets.analytics.statistics import Z95

BIN_RATIO = 1.001  # each bin's upper edge over its lower one
BOUNDS = {  # approximate column -> the exact `value_statistics` column it stands for
    "median": "median_efficiency",
    "low": "median_efficiency_ci_low",
    "high": "median_efficiency_ci_high",
}


def build_bins(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary table `bins`: per user, setting, value and bin, the successful runs
    whose efficiency falls in it (the runs `value_statistics` takes the median of)."""
    values = ", ".join(f'{s.value_sql} AS "{s.name}"' for s in SETTINGS)
    names = ", ".join(f'"{s.name}"' for s in SETTINGS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE bins AS
        WITH labelled AS (
            SELECT "user", efficiency, {values} FROM runs
            WHERE status = 'success' AND efficiency > 0
        ),
        long AS (UNPIVOT labelled ON {names} INTO NAME setting VALUE value)
        SELECT "user", setting, value, floor(ln(efficiency) / $width)::INTEGER AS bin,
               count(*) AS runs
        FROM long GROUP BY ALL
        """,
        {"width": math.log(BIN_RATIO)},
    )


def merged_medians(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per setting and value, from every user's bins: the successful runs, and the median
    and interval bounds at the ranks `value_statistics` takes (each bin read as its
    geometric middle)."""
    return con.execute(
        """
        WITH merged AS (SELECT setting, value, bin, sum(runs) AS runs FROM bins GROUP BY ALL),
        counted AS (
            SELECT *, sum(runs) OVER (PARTITION BY setting, value ORDER BY bin) AS up_to,
                   sum(runs) OVER (PARTITION BY setting, value) AS n
            FROM merged
        ),
        picked AS (
            SELECT setting, value, n AS successful_runs,
                   min(bin) FILTER (WHERE up_to >= (n + 1) // 2) AS lower_middle,
                   min(bin) FILTER (WHERE up_to >= n // 2 + 1) AS upper_middle,
                   min(bin) FILTER (WHERE up_to >= greatest(1, floor(n / 2 - $z * sqrt(n) / 2) + 1))
                       AS low,
                   min(bin) FILTER (WHERE up_to >= least(n, ceil(n / 2 + $z * sqrt(n) / 2)))
                       AS high
            FROM counted GROUP BY setting, value, n
        )
        SELECT setting, value, successful_runs,
               (exp((lower_middle + 0.5) * $width) + exp((upper_middle + 0.5) * $width)) / 2
                   AS median,
               exp((low + 0.5) * $width) AS low, exp((high + 0.5) * $width) AS high
        FROM picked ORDER BY setting, value
        """,
        {"z": Z95, "width": math.log(BIN_RATIO)},
    ).df()


def compare(exact: pd.DataFrame, approximate: pd.DataFrame) -> dict[str, float]:
    """The largest relative difference of each approximate median and bound from the exact
    one, over the values both give one for; raises if their run counts differ."""
    exact = exact[exact["successful_runs"] > 0]
    both = exact.merge(approximate, on=["setting", "value"], suffixes=("", "_binned"))
    counts = both["successful_runs"] == both["successful_runs_binned"]
    if len(both) != len(exact) or len(both) != len(approximate) or not counts.all():
        raise AssertionError("the bins do not count the runs the exact medians are taken over")
    return {
        name: float(((both[name] - both[column]).abs() / both[column]).max())
        for name, column in BOUNDS.items()
    }


def bench_approximate_medians(
    n_rows: int, workspace: Workspace | None = None, source_runs: int = 20_000
) -> dict:
    """Building the bins, merging them and the exact statistics on `n_rows` rows, timed;
    how far the approximate medians and bounds are from the exact ones."""
    workspace = workspace or temporary_workspace()
    source = workspace.crawl(source_runs).data_dir / "runcrawler.duckdb"
    target = workspace.root / f"approximate-medians-{n_rows}.duckdb"
    rows = replicate_runs(source, target, n_rows)
    load = load_average()
    with duckdb.connect(str(target)) as con:
        con.execute("SET enable_progress_bar = false")
        started = time.perf_counter()
        build_bins(con)
        built = time.perf_counter() - started
        started = time.perf_counter()
        approximate = merged_medians(con)
        merged = time.perf_counter() - started
        started = time.perf_counter()
        exact = value_statistics(con, RunFilter())
        exact_s = time.perf_counter() - started
        bins = con.execute("SELECT count(*) FROM bins").fetchone()[0]
    target.unlink()
    return {
        "rows": rows,
        "bin_ratio": BIN_RATIO,
        "bins": bins,
        "values": len(approximate),
        "build_bins_s": round(built, 3),
        "merge_and_read_s": round(merged, 3),
        "exact_s": round(exact_s, 3),
        "max_relative_error": compare(exact, approximate),
        "load_average": load,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = rows_parser(
        "python -m benchmarks.approximate_medians",
        "Per-user bins merged into medians, against the exact setting effects.",
    )
    parser.add_argument(
        "--source-runs", type=int, default=20_000, help="runs of the crawl replicated (20,000)"
    )
    args = parser.parse_args(argv)
    if args.source_runs < 1:
        parser.error(f"--source-runs {args.source_runs}: at least 1")
    workspace = rows_workspace(parser, args)  # last: it makes a temporary folder
    figures = bench_approximate_medians(args.rows, workspace, args.source_runs)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
