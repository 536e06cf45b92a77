"""Digests: each user's runs of a period with what went wrong and what to do, and the managers'.

A user's digest lists their runs set up in the period; for each failure, its
cause (the error and its template), the hints the rules give, and a known
fix: the one they already made (`fixes`) or, else, the team's usual one
(`error_fixes`); then the CPU hours the failures cost. The managers'
digest gathers the report's summary (the stored findings), a line per user
and the most frequent hints, with the report attached; recipients outside
the team get it with users as pseudonyms, no path, no finding, no report.
Each message is a MIME message with a plain-text and an HTML part.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

import duckdb
import pandas as pd

from runcrawler_assets.analytics import ANALYSES, RunFilter, load_results
from runcrawler_assets.analytics.core import FAILED_STATUSES, query
from runcrawler_assets.digests.recipients import Recipients
from runcrawler_assets.hints import Rule, evaluate_rules
from runcrawler_assets.reporting.privacy import pseudonym
from runcrawler_assets.warehouse.accounting_join import has_table
from runcrawler_assets.warehouse.signatures import TEMPLATES_TABLE

USER, MANAGERS = "user", "managers"
TEAM, OUTSIDE = "team", "outside"
TOP_HINTS = 8
STYLE = "font-family: sans-serif; border-collapse: collapse"
CELL = "border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top"


@dataclass(frozen=True)
class Period:
    """The runs set up from `since` (included) to `until` (excluded)."""

    since: datetime
    until: datetime

    @property
    def text(self) -> str:
        return f"{self.since:%Y-%m-%d}..{self.until:%Y-%m-%d}"

    @property
    def run_filter(self) -> RunFilter:
        return RunFilter(since=self.since, until=self.until)


@dataclass(frozen=True)
class Digest:
    """One message: whom it is for (`login` for a user's, None for the managers'), the
    addresses it goes to (none: written, never sent), and its ledger key."""

    kind: str
    login: str | None
    addresses: tuple[str, ...]
    key: str
    message: EmailMessage


@dataclass(frozen=True)
class PeriodRuns:
    """What every digest of a period reads, gathered once: the runs and their hints."""

    period: Period
    runs: pd.DataFrame
    hints: pd.DataFrame


def gather(con: duckdb.DuckDBPyConnection, period: Period, rules: tuple[Rule, ...]) -> PeriodRuns:
    """The period's runs (with their errors and fixes) and their hints."""
    return PeriodRuns(period, _runs(con, period), evaluate_rules(con, rules, period.run_filter))


def _runs(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """The period's runs with their error's template, own fix and the team's usual fix."""
    joins, columns = [], []
    if has_table(con, TEMPLATES_TABLE):
        joins.append(f"LEFT JOIN {TEMPLATES_TABLE} t USING (signature_id)")
        columns.append("coalesce(t.template, r.error_signature) AS error")
    else:
        columns.append("r.error_signature AS error")
    if has_table(con, "fixes"):
        joins.append("LEFT JOIN fixes f ON f.failed_run_path = r.run_path")
        columns.append("f.kind AS fix_kind, f.fixing_run_path, f.changes")
    else:
        columns.append("NULL AS fix_kind, NULL AS fixing_run_path, NULL AS changes")
    if has_table(con, "error_fixes"):
        joins.append("LEFT JOIN error_fixes s ON s.signature_id = r.signature_id")
        columns.append("s.typical_fix")
    else:
        columns.append("NULL AS typical_fix")
    return query(
        con,
        f"""
        SELECT r.run_id, r."user", r.run_path, r.status, r.error_category, r.created_at,
               coalesce(r.cpu_hours, 0) AS cpu_hours, r.status IN $failed AS failed,
               {", ".join(columns)}
        FROM {{runs}} r {" ".join(joins)}
        ORDER BY r."user", r.created_at, r.run_path
        """,
        period.run_filter,
        failed=list(FAILED_STATUSES),
    )


def _fix_text(row: pd.Series) -> str:
    """The fix a failed run is known to have: the user's own next success, else the team's."""
    if isinstance(row["fixing_run_path"], str):
        how = {"rerun": "ran it again unchanged", "restart": "restarted from its solution"}
        return f"{how.get(row['fix_kind'], row['changes'])} in {row['fixing_run_path']}"
    if isinstance(row["typical_fix"], str):
        return f"the team usually fixed it: {row['typical_fix']}"
    return ""


def _message(subject: str, text: str, body_html: str, to: str, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = make_msgid(domain="runcrawler")
    message.set_content(text)
    page = f'<html><body style="{STYLE}">{body_html}</body></html>'
    message.add_alternative(page, subtype="html")
    return message


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f'<th style="{CELL}">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{html.escape(c)}</td>' for c in row) + "</tr>"
        for row in rows
    )
    return f'<table style="{STYLE}"><tr>{head}</tr>{body}</table>'


def _user_digest(
    login: str, runs: pd.DataFrame, hints: pd.DataFrame, period: Period, to: str, sender: str
) -> EmailMessage:
    failed = runs[runs["failed"]]
    lost = failed["cpu_hours"].sum()
    subject = (
        f"runcrawler: your runs {period.text}: {len(runs)} runs, {len(failed)} failed, "
        f"{lost:,.0f} CPU hours lost"
    )
    by_run = hints.groupby("run_id")["text"].apply(list).to_dict() if len(hints) else {}
    lines = [f"Hello {login},", "", f"{subject.split(': ', 1)[1]}.", ""]
    rows = []
    for _, run in runs.iterrows():
        lines.append(f"- {run['run_path']}: {run['status']}")
        cause = f"{run['error_category']}: {run['error']}" if run["failed"] else ""
        fix = _fix_text(run) if run["failed"] else ""
        notes = [("hint", text) for text in by_run.get(run["run_id"], [])]
        notes += [("fix", fix)] if fix else []
        if cause:
            lines.append(f"    cause: {cause}")
        lines += [f"    {label}: {text}" for label, text in notes]
        shown = "\n".join(f"{label}: {text}" for label, text in notes)
        rows.append([run["run_path"], str(run["status"]), cause, shown])
    lines += ["", f"CPU hours in failed or killed runs: {lost:,.0f}.", "", "-- runcrawler"]
    body = (
        f"<p>Hello {html.escape(login)},</p><p>{html.escape(subject.split(': ', 1)[1])}.</p>"
        + _table(["run", "status", "cause", "hints and fixes"], rows)
        + f"<p>CPU hours in failed or killed runs: {lost:,.0f}.</p>"
    )
    return _message(subject, "\n".join(lines), body, to, sender)


def user_digests(data: PeriodRuns, recipients: Recipients, sender: str) -> list[Digest]:
    """One digest per user with runs in the period (addressed to the login when the
    recipients file gives them no address)."""
    digests = []
    for login, user_runs in data.runs.groupby("user", sort=True):
        address = recipients.users.get(str(login))
        to = formataddr((str(login), address)) if address else str(login)
        user_hints = data.hints[data.hints["user"] == login]
        message = _user_digest(str(login), user_runs, user_hints, data.period, to, sender)
        key = f"{data.period.text}/{USER}/{login}"
        digests.append(Digest(USER, str(login), (address,) if address else (), key, message))
    return digests


def _per_user(runs: pd.DataFrame, hints: pd.DataFrame) -> pd.DataFrame:
    table = runs.groupby("user").agg(
        runs=("run_id", "size"),
        failed=("failed", "sum"),
        cpu_hours_lost=("cpu_hours", lambda h: h[runs.loc[h.index, "failed"]].sum()),
    )
    table["hints"] = hints.groupby("user").size().reindex(table.index, fill_value=0)
    return table.reset_index()


def manager_digests(
    con: duckdb.DuckDBPyConnection,
    data: PeriodRuns,
    recipients: Recipients,
    sender: str,
    report: Path | None,
    pseudonym_key: str,
) -> list[Digest]:
    """The managers' summary: to the team's managers (always written, sent when the file
    names some), and to those outside the team, pseudonymised, when the file names some
    (which needs the pseudonyms' key)."""
    per_user = _per_user(data.runs, data.hints)
    findings = [  # the findings alone: a million runs' fixes are not read to quote two lines
        finding
        for stored in load_results(con, ANALYSES, preview_rows=0).values()
        for finding in stored.result.findings[:2]
    ]
    hints = data.hints.groupby(["rule", "severity"]).size().sort_values(ascending=False)
    summary = _Summary(data.period, per_user, hints.head(TOP_HINTS))
    digests = [summary.digest(findings, recipients.team_managers, sender, report, TEAM)]
    if recipients.outside_managers:
        hidden = per_user.assign(user=[pseudonym(u, pseudonym_key) for u in per_user["user"]])
        outside = _Summary(data.period, hidden, summary.hints)
        digests.append(outside.digest([], recipients.outside_managers, sender, None, OUTSIDE))
    return digests


@dataclass(frozen=True)
class _Summary:
    """The managers' figures of a period: a line per user, the most frequent hints."""

    period: Period
    per_user: pd.DataFrame
    hints: pd.Series

    def digest(
        self,
        findings: list[str],
        addresses: tuple[str, ...],
        sender: str,
        report: Path | None,
        audience: str,
    ) -> Digest:
        per_user = self.per_user
        failed, lost = int(per_user["failed"].sum()), per_user["cpu_hours_lost"].sum()
        figures = f"{int(per_user['runs'].sum())} runs, {failed} failed, {lost:,.0f} CPU hours lost"
        subject = f"runcrawler: the team's runs {self.period.text}: {figures}"
        header = ["user", "runs", "failed", "CPU hours lost", "hints"]
        rows = [
            [str(r.user), str(r.runs), str(int(r.failed)), f"{r.cpu_hours_lost:,.0f}", str(r.hints)]
            for r in per_user.itertuples(index=False)
        ]
        hint_rows = [[rule, severity, str(n)] for (rule, severity), n in self.hints.items()]
        text = [f"The team's runs {self.period.text}: {figures}.", ""]
        text += [f"- {finding}" for finding in findings]
        text += ["", "Per user:"]
        text += ["  " + ", ".join(f"{h} {c}" for h, c in zip(header, r, strict=True)) for r in rows]
        text += ["", "Most frequent hints:"] + [f"  {r} ({s}): {n}" for r, s, n in hint_rows]
        items = "".join(f"<li>{html.escape(f)}</li>" for f in findings)
        body = (
            f"<p>The team's runs {self.period.text}: {html.escape(figures)}.</p>"
            + (f"<ul>{items}</ul>" if items else "")
            + _table(header, rows)
            + "<p>Most frequent hints:</p>"
            + _table(["rule", "severity", "runs"], hint_rows)
        )
        if audience == OUTSIDE:
            note = "Users are shown as pseudonyms; the full report is for the team."
            text.append("\n" + note)
            body += f"<p>{note}</p>"
        message = _message(
            subject, "\n".join(text), body, ", ".join(addresses) or "managers", sender
        )
        if report is not None and report.is_file():
            message.add_attachment(
                report.read_bytes(), maintype="text", subtype="html", filename="report.html"
            )
        return Digest(
            MANAGERS, None, addresses, f"{self.period.text}/{MANAGERS}/{audience}", message
        )
