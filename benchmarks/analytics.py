"""Benchmark 4, analytics: rebuild every analysis on a `runs` table of N rows.

The rows are a crawled demo warehouse replicated (new run ids, users spread
over more names, dates shifted) up to N, so the distributions stay realistic.
Each analysis is computed, stored and read back, and its charts drawn from the
stored tables and written with their manifest, as the analytics step does; compared
with the same rebuild on the source warehouse. Then the report is assembled
from what was stored, reading those charts back, as the `report` asset does
after a refresh. Then 10 runs of one user are added and the same refresh runs
again, as after a crawl of +10 runs (issue 16: its cost should not grow with N).
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import duckdb

from benchmarks.common import Workspace, load_average, temporary_workspace
from runcrawler_assets.analytics import ANALYSES, RunFilter
from runcrawler_assets.defs.assets.metadata import TABLE_ROWS
from runcrawler_assets.reporting.assemble import assemble_report, refresh_analyses
from runcrawler_assets.reporting.drawing import ChartDrawer
from runcrawler_assets.warehouse.database import connect, record_version

BUDGET_S = 10.0


def replicate_runs(source: Path, target: Path, n_rows: int) -> int:
    """A warehouse at `target` whose `runs` holds `n_rows` rows made from those of `source`."""
    target.unlink(missing_ok=True)
    with connect(target) as con:
        con.execute(f"ATTACH '{source}' AS source (READ_ONLY)")
        source_rows = con.execute("SELECT count(*) FROM source.runs").fetchone()[0]
        copies = -(-n_rows // source_rows)
        con.execute(
            """
            INSERT INTO runs
            SELECT * EXCLUDE (k) REPLACE (
                run_id || '-' || k AS run_id,
                run_path || '#' || k AS run_path,
                "user" || '_' || (k % 8) AS "user",
                created_at + to_days(CAST(k % 365 AS INTEGER)) AS created_at
            )
            FROM source.runs, range($copies) AS copy(k)
            LIMIT $rows
            """,
            {"copies": copies, "rows": n_rows},
        )
        con.execute("DETACH source")
        _note_swapped(con, "TRUE", {})
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]


def _note_swapped(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, object]) -> None:
    """What the swaps of the partitions of the runs `where` holds note with their rows
    (`database.record_version`), as those rows were written here."""
    pairs = con.execute(f'SELECT DISTINCT cluster, "user" FROM runs WHERE {where}', params)
    for cluster, user in pairs.fetchall():
        record_version(con, cluster, user, None)


def rebuild(database: Path, charts: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of the analyses' refresh (compute and store each, draw and write its charts
    with their manifest, on two cores as the analytics step does), then the report's (which
    reads those charts back); and the seconds of each analysis's SQL within the refresh."""
    started = time.perf_counter()
    with connect(database) as con, closing(ChartDrawer()) as drawer:
        drawer.start()  # as the analytics step does, before the first analysis computes
        refreshed = list(refresh_analyses(con, ANALYSES, charts, drawer, preview_rows=TABLE_ROWS))
    assert all(done.error is None for done in refreshed), "an analysis failed"
    seconds = {"analyses": round(time.perf_counter() - started, 3)}
    started = time.perf_counter()
    with connect(database, read_only=True) as con:
        page = assemble_report(con, RunFilter(), datetime.now(), charts_dir=charts)
    assert page.from_store, "the report should read the stored analytics"
    assert page.charts_reused == len(ANALYSES), "the report should read the charts back"
    seconds["report"] = round(time.perf_counter() - started, 3)
    sql = {done.analysis.name: round(done.seconds, 3) for done in refreshed}  # as they were done
    return seconds, {analysis.name: sql[analysis.name] for analysis in ANALYSES}


def add_runs_of_one_user(database: Path, count: int = 10) -> str:
    """`count` new runs of the user with the most (copies of their latest, new ids, a day
    later), as the swap of a partition with `count` new runs leaves `runs`; the user."""
    with connect(database) as con:
        [(user,)] = con.execute(
            'SELECT "user" FROM runs GROUP BY "user" ORDER BY count(*) DESC, "user" LIMIT 1'
        ).fetchall()
        con.execute(
            """
            INSERT INTO runs
            SELECT * EXCLUDE (k) REPLACE (
                run_id || '+' || k AS run_id,
                run_path || '+' || k AS run_path,
                created_at + INTERVAL 1 DAY AS created_at
            )
            FROM (SELECT *, row_number() OVER (ORDER BY created_at DESC, run_id) AS k
                  FROM runs WHERE "user" = $user)
            WHERE k <= $count
            """,
            {"user": user, "count": count},
        )
        _note_swapped(con, "run_id LIKE '%+%'", {})
    return user


def bench_analytics(
    n_rows: int, workspace: Workspace | None = None, source_runs: int = 2000
) -> dict:
    """Rebuild time of every analysis on `n_rows` rows, against the source warehouse's."""
    workspace = workspace or temporary_workspace()
    source = workspace.crawl(source_runs).data_dir / "runcrawler.duckdb"
    target = workspace.root / f"analytics-{n_rows}.duckdb"
    rows = replicate_runs(source, target, n_rows)
    load = load_average()
    small_copy = workspace.root / "analytics-source.duckdb"
    replicate_runs(source, small_copy, source_runs)
    on_source, _ = rebuild(small_copy, workspace.root / "charts-source")
    on_target, sql = rebuild(target, workspace.root / f"charts-{n_rows}")
    add_runs_of_one_user(target)
    after, sql_after = rebuild(target, workspace.root / f"charts-{n_rows}")
    total, source_total = sum(on_target.values()), sum(on_source.values())
    return {
        "rows": rows,
        "source_rows": source_runs,
        "seconds": on_target,
        "sql_seconds_by_analysis": sql,
        "plus_10_runs_s": after,
        "plus_10_sql_seconds_by_analysis": sql_after,
        "total_s": round(total, 2),
        "source_total_s": round(source_total, 2),
        "vs_source": round(total / source_total, 2),
        "vs_budget": round(total / BUDGET_S, 2),
        "load_average": load,
    }
