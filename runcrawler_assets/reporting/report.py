"""The HTML report page: one self-contained page a manager can open offline or mail around.

It renders what it is given (results as stored, their charts); `assemble`
decides which results and draws the charts. Charts are embedded as base64
PNG and the style is inline, so the page needs no network and no other
file. Every text that comes from the archive (user names, error messages,
paths) is escaped: a run folder named `<script>` is shown, never run. And it
is shortened: a table cell shows at most `MAX_CELL_CHARS` characters (the
rest in its tooltip, itself bounded), a finding at most `MAX_FINDING_CHARS`,
so the page stays small whatever the table holds. Sections follow
`ANALYSES`, each with its findings, charts and tables (not the tables stored
only for drawing); the summary at the top gathers each analysis's first
findings.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter
from runcrawler_assets.warehouse.cleaning import LIMITS, shorten

MAX_TABLE_ROWS = 40
MAX_CELL_CHARS = 120  # shown in a cell; an error signature reads in one or two lines
MAX_TITLE_CHARS = LIMITS["message"]  # in the cell's tooltip: a whole error message
MAX_FINDING_CHARS = 2000  # a finding listing many names (mixtures never run in 2D and 3D)
SUMMARY_FINDINGS_PER_SECTION = 3

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; margin-top: 2.2em; }
h3 { margin-top: 1.6em; font-size: 1.05em; }
.meta { color: #666; } .summary { background: #f5f7fa; padding: 0.8em 1.4em; border-radius: 6px; }
.summary h3 { margin: 0.8em 0 0.2em; }
img { max-width: 100%; height: auto; display: block; margin: 1em 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.note { color: #666; font-size: 0.85em; }
nav a { margin-right: 1em; }
"""


def _number(value: float) -> str:
    """Counts and hours with thousands separators; small quantities with 3 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _text_html(text: str, limit: int = MAX_FINDING_CHARS) -> str:
    """Archive text, escaped and shortened to `limit` characters."""
    return html.escape(shorten(text, limit))


def _cell_html(value: object) -> str:
    """One table cell: numbers formatted, text escaped and shortened (longer in its tooltip)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_ | int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        return _number(float(value))
    if isinstance(value, list | tuple | np.ndarray):  # changed keywords, a campaign's runs
        value = ", ".join(str(item) for item in value)
    text = str(value)
    shown = shorten(text, MAX_CELL_CHARS)
    if shown == text:
        return html.escape(text)
    return f'<span title="{_text_html(text, MAX_TITLE_CHARS)}">{html.escape(shown)}</span>'


def _frame_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_text_html(str(column), MAX_CELL_CHARS)}</th>" for column in frame)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell_html(value)}</td>" for value in row) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _table_html(name: str, frame: pd.DataFrame, rows: int | None = None) -> str:
    """The table's first `MAX_TABLE_ROWS` rows; `rows`: its length, if `frame` is a preview."""
    rows = len(frame) if rows is None else rows
    if frame.empty:
        return f'<h3>{html.escape(name)}</h3><p class="note">No rows.</p>'
    shown = frame.head(MAX_TABLE_ROWS)
    note = (
        f'<p class="note">First {MAX_TABLE_ROWS} of {rows} rows; the full table is '
        f"<code>{html.escape(name)}</code> in DuckDB.</p>"
        if rows > MAX_TABLE_ROWS
        else ""
    )
    table = _frame_html(shown)
    return f'<h3>{html.escape(name)}</h3><div class="table-wrap">{table}</div>{note}'


def _chart_html(file_name: str, png: bytes) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(file_name)}" src="data:image/png;base64,{encoded}">'


def _findings_html(findings: list[str]) -> str:
    items = "".join(f"<li>{_text_html(f)}</li>" for f in findings)
    return f"<ul>{items}</ul>" if items else ""


@dataclass(frozen=True)
class HintsShown:
    """What the report shows of the hints of its runs: the counts per rule (most runs
    first), the first `MAX_TABLE_ROWS` hints (gravest, then newest, first), how many in all."""

    counts: pd.DataFrame  # severity, rule, runs, users
    first: pd.DataFrame  # severity, rule, user, text
    total: int


def _hints_html(hints: HintsShown | None) -> str:
    """The hints section: counts per rule, then the hints themselves, the gravest first."""
    if hints is None:
        return ""
    intro = (
        "What the rules (RUNCRAWLER_RULES, else runcrawler's default set) say of these runs, "
        "as last computed by the <code>hints</code> asset."
    )
    return (
        f'<section id="hints"><h2>Hints</h2><p>{intro}</p>'
        + _table_html("hint_counts", hints.counts)
        + _table_html("hints", hints.first, hints.total)
        + "</section>"
    )


def render_report(
    results: Mapping[str, AnalysisResult],
    charts: Mapping[str, Mapping[str, bytes]],
    run_filter: RunFilter,
    generated_at: datetime,
    source: str,
    hints: HintsShown | None = None,
) -> str:
    """The report page for `results` and their `charts` (both by analysis name); `source`
    says where the figures come from (stored by a refresh, or computed for this report);
    `hints` (None: no section) the hints of the runs shown."""
    analyses = [a for a in ANALYSES if a.name in results]
    summary = "".join(
        f"<h3>{html.escape(a.title)}</h3>"
        + _findings_html(results[a.name].findings[:SUMMARY_FINDINGS_PER_SECTION])
        for a in analyses
    )
    nav = "".join(f'<a href="#{a.name}">{html.escape(a.title)}</a>' for a in analyses)
    nav += '<a href="#hints">Hints</a>' if hints is not None else ""
    sections = []
    for analysis in analyses:
        result = results[analysis.name]
        shown = [name for name in result.tables if name not in analysis.chart_tables]
        sections.append(
            f'<section id="{analysis.name}"><h2>{html.escape(analysis.title)}</h2>'
            f"<p>{html.escape(analysis.description)}</p>"
            + _findings_html(result.findings)
            + "".join(_chart_html(name, png) for name, png in charts.get(analysis.name, {}).items())
            + "".join(_table_html(name, result.tables[name], result.rows(name)) for name in shown)
            + "</section>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>runcrawler report</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>runcrawler report: how the solver is used</h1>"
        f'<p class="meta">Runs: {_text_html(run_filter.describe())}. '
        f"Figures: {_text_html(source)}. "
        f"Generated {html.escape(generated_at.isoformat(sep=' ', timespec='minutes'))}.</p>"
        f"<nav>{nav}</nav>"
        f'<div class="summary"><h2 style="margin-top:0.4em">Summary</h2>{summary}</div>'
        + "".join(sections)
        + _hints_html(hints)
        + "</body></html>"
    )
