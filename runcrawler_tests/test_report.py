"""The report is one offline page: every section, charts embedded, archive text escaped."""

from __future__ import annotations

import html
import re
from datetime import datetime

import pandas as pd

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter
from runcrawler_assets.reporting.charts import no_runs_chart
from runcrawler_assets.reporting.report import (
    MAX_CELL_CHARS,
    MAX_FINDING_CHARS,
    MAX_TITLE_CHARS,
    build_report,
)

GENERATED = datetime(2026, 11, 1, 8, 30)


def test_report_has_a_summary_and_every_section_with_its_charts(
    demo_results: dict[str, AnalysisResult],
) -> None:
    page = build_report(demo_results, RunFilter(cluster="kraken"), GENERATED)
    assert page.index("Summary") < page.index(f'id="{ANALYSES[0].name}"')
    for analysis in ANALYSES:
        assert f'<section id="{analysis.name}">' in page
        assert analysis.title.replace("'", "&#x27;") in page
    charts = sum(len(r.charts) for r in demo_results.values())
    assert page.count('src="data:image/png;base64,') == charts
    assert "cluster kraken" in page and "2026-11-01 08:30" in page


def test_report_needs_no_network(demo_results: dict[str, AnalysisResult]) -> None:
    page = build_report(demo_results, RunFilter(), GENERATED)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page


def test_archive_text_is_escaped_everywhere() -> None:
    hostile = "<script>alert('x')</script>"
    result = AnalysisResult(
        tables={"error_categories": pd.DataFrame({"user": [hostile], "runs": [1]})},
        charts={"err_type.png": no_runs_chart("x")},
        findings=[f"{hostile} fails a lot"],
    )
    page = build_report({"error_categories": result}, RunFilter(user=hostile), GENERATED)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") == 4  # filter, summary, section findings, table


def test_a_long_cell_is_shortened_with_its_value_bounded_in_a_tooltip() -> None:
    huge = "<b>" + "e" * 1_000_000
    result = AnalysisResult(
        tables={
            "error_signatures": pd.DataFrame({"error_signature": [huge, "short"], "runs": [3, 1]})
        },
        charts={},
        findings=[],
    )
    page = build_report({"error_categories": result}, RunFilter(), GENERATED)
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
    result = AnalysisResult(tables={"user_activity": frame}, charts={}, findings=[])
    page = build_report({"user_activity": result}, RunFilter(), GENERATED)
    assert "<th>user</th><th>runs</th><th>cpu_hours</th>" in page
    assert "<td>bob</td><td>1234</td><td>12,346</td>" in page
    assert "<td></td><td>5</td><td></td>" in page


def test_a_long_finding_is_shortened() -> None:
    finding = "Mixtures never run in 2D and 3D: " + ", ".join(["m" * 256] * 1000)
    result = AnalysisResult(tables={}, charts={}, findings=[finding])
    page = build_report({"run_settings": result}, RunFilter(), GENERATED)
    assert finding[: MAX_FINDING_CHARS - 1] + "…" in page
    assert len(page) < 3 * MAX_FINDING_CHARS + 5_000  # summary and section, plus the frame
