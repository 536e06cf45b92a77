"""The report is one offline page: every section, charts embedded, archive text escaped;
assembled from the stored analytics, or computed for a filter, the same way."""

from __future__ import annotations

import html
import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from runcrawler_assets.analytics import (
    ANALYSES,
    AnalysisResult,
    RunFilter,
    compute_results,
    refresh,
)
from runcrawler_assets.reporting.assemble import COMPUTED, assemble_report
from runcrawler_assets.reporting.charts import no_runs_chart
from runcrawler_assets.reporting.plans import draw_charts
from runcrawler_assets.reporting.privacy import pseudonym
from runcrawler_assets.reporting.report import (
    MAX_CELL_CHARS,
    MAX_FINDING_CHARS,
    MAX_TABLE_ROWS,
    MAX_TITLE_CHARS,
    render_report,
)
from runcrawler_assets.warehouse.database import connect

GENERATED = datetime(2026, 11, 1, 8, 30)


def build_report(
    results: dict[str, AnalysisResult],
    run_filter: RunFilter,
    charts: dict[str, dict[str, bytes]] | None = None,
) -> str:
    return render_report(results, charts or {}, run_filter, GENERATED, "computed for this test")


def test_report_has_a_summary_and_every_section_with_its_charts(
    demo_results: dict[str, AnalysisResult], demo_charts: dict[str, dict[str, bytes]]
) -> None:
    page = build_report(demo_results, RunFilter(cluster="kraken"), demo_charts)
    assert page.index("Summary") < page.index(f'id="{ANALYSES[0].name}"')
    for analysis in ANALYSES:
        assert f'<section id="{analysis.name}">' in page
        assert analysis.title.replace("'", "&#x27;") in page
    charts = sum(len(pngs) for pngs in demo_charts.values())
    assert page.count('src="data:image/png;base64,') == charts
    assert "cluster kraken" in page and "2026-11-01 08:30" in page
    assert "Figures: computed for this test." in page


def test_tables_kept_for_drawing_only_are_not_shown(
    demo_results: dict[str, AnalysisResult],
) -> None:
    page = build_report(demo_results, RunFilter())
    for analysis in ANALYSES:
        for name in analysis.tables:
            assert f"<h3>{name}</h3>" in page
        for name in analysis.chart_tables:
            assert f"<h3>{name}</h3>" not in page


def test_report_needs_no_network(
    demo_results: dict[str, AnalysisResult], demo_charts: dict[str, dict[str, bytes]]
) -> None:
    page = build_report(demo_results, RunFilter(), demo_charts)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page


def test_archive_text_is_escaped_everywhere() -> None:
    hostile = "<script>alert('x')</script>"
    result = AnalysisResult(
        tables={"error_categories": pd.DataFrame({"user": [hostile], "runs": [1]})},
        findings=[f"{hostile} fails a lot"],
    )
    charts = {"error_categories": {"err_type.png": no_runs_chart("x")}}
    page = build_report({"error_categories": result}, RunFilter(user=hostile), charts)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") == 4  # filter, summary, section findings, table


def test_a_long_cell_is_shortened_with_its_value_bounded_in_a_tooltip() -> None:
    huge = "<b>" + "e" * 1_000_000
    result = AnalysisResult(
        tables={
            "error_signatures": pd.DataFrame({"error_signature": [huge, "short"], "runs": [3, 1]})
        },
    )
    page = build_report({"error_categories": result}, RunFilter())
    cell = re.search(r'<td><span title="([^"]*)">([^<]*)</span></td>', page)
    assert cell is not None
    title, shown = (html.unescape(part) for part in cell.groups())
    assert shown == huge[: MAX_CELL_CHARS - 1] + "…" and len(shown) == MAX_CELL_CHARS
    assert title == huge[: MAX_TITLE_CHARS - 1] + "…"
    assert "<td>short</td><td>1</td>" in page and "<b>" not in page
    assert len(page) < 20_000


def test_numbers_and_empty_cells_read_as_before() -> None:
    frame = pd.DataFrame(
        {"user": ["bob", None], "runs": [1234, 5], "cpu_hours": [12345.6, float("nan")]}
    )
    result = AnalysisResult(tables={"user_activity": frame})
    page = build_report({"user_activity": result}, RunFilter())
    assert "<th>user</th><th>runs</th><th>cpu_hours</th>" in page
    assert "<td>bob</td><td>1234</td><td>12,346</td>" in page
    assert "<td></td><td>5</td><td></td>" in page


def test_a_long_finding_is_shortened() -> None:
    finding = "Mixtures never run in 2D and 3D: " + ", ".join(["m" * 256] * 1000)
    result = AnalysisResult(tables={}, findings=[finding])
    page = build_report({"run_settings": result}, RunFilter())
    assert finding[: MAX_FINDING_CHARS - 1] + "…" in page
    assert len(page) < 3 * MAX_FINDING_CHARS + 5_000  # summary and section, plus the frame


@pytest.fixture(scope="module")
def refreshed(synthetic_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the synthetic warehouse whose analytics are stored, as after a refresh."""
    path = tmp_path_factory.mktemp("refreshed") / "refreshed.duckdb"
    shutil.copy(synthetic_warehouse, path)
    with connect(path) as con:
        for analysis in ANALYSES:
            refresh(con, analysis)
    return path


def _assemble(path: Path, run_filter: RunFilter, key: str | None = None):
    with duckdb.connect(str(path), read_only=True) as con:
        return assemble_report(con, run_filter, GENERATED, pseudonym_key=key)


def test_a_report_over_all_runs_reads_the_stored_analytics(refreshed: Path) -> None:
    report = _assemble(refreshed, RunFilter())
    assert report.from_store and report.source.startswith("stored by the refresh of")
    assert f"Figures: {report.source}." in report.html


def test_the_stored_report_is_the_one_computed_for_all_runs(refreshed: Path) -> None:
    stored = _assemble(refreshed, RunFilter())
    with duckdb.connect(str(refreshed), read_only=True) as con:
        computed = compute_results(con, ANALYSES, RunFilter())
    for name, result in stored.results.items():
        assert computed[name].findings == result.findings, name
        for table, frame in result.tables.items():
            pd.testing.assert_frame_equal(computed[name].tables[table], frame, obj=table)
    charts = {name: draw_charts(name, result.tables) for name, result in computed.items()}
    page = render_report(computed, charts, RunFilter(), GENERATED, stored.source)
    assert page == stored.html


def test_a_filter_is_computed_for_the_report(refreshed: Path) -> None:
    report = _assemble(refreshed, RunFilter(user="o'neil"))
    assert report.source == COMPUTED and not report.from_store
    users = report.results["user_activity"].tables["user_activity"]["user"]
    assert list(users) == ["o'neil"]


def test_analytics_older_than_runs_are_computed_again(refreshed: Path, tmp_path: Path) -> None:
    changed = Path(shutil.copy(refreshed, tmp_path / "changed.duckdb"))
    with connect(changed) as con:
        con.execute("DELETE FROM runs WHERE \"user\" = 'bob'")
    report = _assemble(changed, RunFilter())
    assert report.source == COMPUTED
    assert "bob" not in set(report.results["user_activity"].tables["user_activity"]["user"])


def test_a_pseudonymous_report_never_reads_the_stored_names(refreshed: Path) -> None:
    report = _assemble(refreshed, RunFilter(), key="secret")
    assert report.source == COMPUTED
    users = set(report.results["user_activity"].tables["user_activity"]["user"])
    assert users == {pseudonym(u, "secret") for u in ("alice", "bob", "o'neil")}


def test_the_report_shows_the_stored_hints_counted_and_gravest_first(data_copy: Path) -> None:
    from runcrawler_assets.hints import load_rules, store_hints
    from runcrawler_assets.reporting.assemble import stored_hints

    path = data_copy / "runcrawler.duckdb"
    with connect(path) as con:
        store_hints(con, load_rules(None))
        found = con.execute("SELECT * FROM hints").df()
    assert len(found) > MAX_TABLE_ROWS
    with duckdb.connect(str(path), read_only=True) as con:
        shown = stored_hints(con, RunFilter())
        assert shown is not None
        page = assemble_report(con, RunFilter(), GENERATED)
    by_rule = found.groupby(["severity", "rule"]).agg(
        runs=("run_id", "size"), users=("user", "nunique")
    )
    counted = shown.counts.set_index(["severity", "rule"])[["runs", "users"]]
    pd.testing.assert_frame_equal(counted.sort_index(), by_rule.sort_index(), check_dtype=False)
    assert list(shown.counts["runs"]) == sorted(shown.counts["runs"], reverse=True)
    assert shown.total == len(found) and len(shown.first) == MAX_TABLE_ROWS
    gravest_first = found.assign(
        gravity=found["severity"].map({"critical": 0, "warning": 1, "info": 2})
    ).sort_values(["gravity", "created_at", "run_path", "rule"], ascending=[1, 0, 1, 1])
    expected = gravest_first[["severity", "rule", "user", "text"]].head(MAX_TABLE_ROWS)
    pd.testing.assert_frame_equal(shown.first, expected.reset_index(drop=True), check_dtype=False)
    assert f"First {MAX_TABLE_ROWS} of {len(found)} rows" in page.html


def test_a_report_from_the_store_reads_under_the_analytics_memory_limit(
    refreshed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the stored results and counting the hints run under RUNCRAWLER_ANALYTICS_MEMORY,
    not DuckDB's default of most of the RAM; the connection's own limit is set back after."""
    from runcrawler_assets.reporting import assemble

    seen = []
    read_hints = assemble.stored_hints

    def probed(con: duckdb.DuckDBPyConnection, run_filter: RunFilter):
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        return read_hints(con, run_filter)

    monkeypatch.setattr(assemble, "stored_hints", probed)
    with duckdb.connect(str(refreshed), read_only=True) as con:
        con.execute("SET memory_limit = '512MiB'")
        report = assemble_report(con, RunFilter(), GENERATED, memory="96MB")
        after = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert report.from_store
    assert (seen, after) == (["91.5 MiB"], "512.0 MiB")
