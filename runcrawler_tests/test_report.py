"""The report is one offline page: every section, charts embedded, archive text escaped."""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter
from runcrawler_assets.charts import no_runs_chart
from runcrawler_assets.report import build_report

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
