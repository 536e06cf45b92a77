"""`runcrawler check`: a run's settings against the team's history, before the job is submitted.

A user about to submit a job wants one answer in the job's output: have runs like
this one failed before, and what fixed them? The answer rests on what the
warehouse already holds, read, never computed again:

- each setting value's failure ratio (`setting_effects`). The candidate's values
  are labelled by the analysis's own SQL (`SETTINGS`' `value_sql`), evaluated
  over a one-row `runs` table in a scratch DuckDB, so a CFL of 0.95 falls in the
  very bin the team's statistics speak of;
- the team's record for runs of the same solver whose labels are all the same;
- the nearest past failures (same solver, most labels alike, most recent), with
  their error and what fixed them (`fixes`, `error_fixes`);
- a regression of the solver version the job will use (`version_effects`).

An analytics table that is not there yet is named in the notes and its evidence
skipped. The warehouse is opened read-only for the time of the reads, waiting up
to `wait` seconds for a writer. The verdict is the exit code: 0, 1, 2 (ok,
warning, likely failure); 3 (`EXIT_ERROR`) when no check could be made.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from runcrawler_assets.analytics.core import FAILED_STATUSES, UNFINISHED_STATUSES
from runcrawler_assets.analytics.fixes import FIX, RERUN, RESTART
from runcrawler_assets.analytics.setting_effects.tables import SETTINGS
from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers.avbp.params import PARAMS_FILE, read_params
from runcrawler_assets.solvers.openfoam.case_settings import CONTROL_DICT, read_case_settings
from runcrawler_assets.warehouse.accounting_join import has_table
from runcrawler_assets.warehouse.cleaning import bound_record
from runcrawler_assets.warehouse.database import (
    LOCK_RETRY_SECONDS,
    WarehouseMissingError,
    connect,
    quote_identifier,
    runs_ddl,
)

VERDICTS: dict[str, int] = {"ok": 0, "warning": 1, "likely_failure": 2}
EXIT_ERROR = 3  # no check could be made: never read as a verdict
# Likely failure: the same settings failed at least this share of at least this many
# finished runs, or a flagged value (or version) fails at least this many times as often.
SAME_SETTINGS_MIN_RUNS = 5
SAME_SETTINGS_FAILED_SHARE = 0.5
LIKELY_RATIO = 2.0
NEAREST_FAILURES = 3
BINARY_PROBE_BYTES = 8192
SHOWN_CHANGES = 3  # of a fix, in the text; the JSON has them all
# How each kind of next success (`fixes`) reads before its run's path.
FIX_WORDS = {
    FIX: "fixed in",
    RERUN: "rerun unchanged, succeeded in",
    RESTART: "restarted from its solution in",
}
AVBP, OPENFOAM = "avbp", "openfoam"  # the solver names of the two parsers
HEADLINES = {
    "ok": "OK: nothing in the team's history speaks against these settings",
    "warning": "WARNING: some of these settings failed more often than others in the team's runs",
    "likely_failure": "LIKELY FAILURE: runs like this one often failed in the team's runs",
}


class CheckError(RuncrawlerError):
    """`check` was given no run settings it can read, or a warehouse it cannot read."""

    exit_code = EXIT_ERROR


@dataclass(frozen=True)
class Candidate:
    """The run about to be submitted: its solver and typed settings (RunRecord fields)."""

    path: Path
    solver: str
    settings: dict[str, Any]
    warnings: tuple[str, ...]


def _is_binary(path: Path) -> bool:
    """A NUL byte in the first bytes: the readers would read such a file as mangled text."""
    try:
        with path.open("rb") as stream:
            return b"\x00" in stream.read(BINARY_PROBE_BYTES)
    except OSError as error:
        raise CheckError(f"{path} cannot be read: {error.strerror or error}") from error


def _read_avbp(path: Path) -> Candidate:
    """A run.params file; where the reader read nothing (its warnings only), an error."""
    if not path.is_file():
        raise CheckError(f"{path} is not a regular file: give a run.params file or a run folder")
    if _is_binary(path):
        raise CheckError(f"{path} is a binary file, not an AVBP {PARAMS_FILE}")
    params = read_params(path.resolve())  # the crawl never follows a link; a user's file may be one
    if not params.values:
        raise CheckError(f"{path} holds no `keyword = value` line: not an AVBP {PARAMS_FILE}")
    if not params.settings:
        raise CheckError(
            f"{path} sets none of the settings runs are compared by (CFL, mixture_name, "
            f"LES_model, ...): not an AVBP {PARAMS_FILE}"
        )
    return Candidate(path, AVBP, params.settings, params.warnings)


def _read_openfoam(case: Path) -> Candidate:
    """An OpenFOAM case folder: its dictionaries, as the crawl reads them."""
    if _is_binary(case / CONTROL_DICT):
        raise CheckError(f"{case / CONTROL_DICT} is a binary file, not an OpenFOAM dictionary")
    settings = read_case_settings(case)
    if not settings.params:
        raise CheckError(f"{case / CONTROL_DICT} holds no keyword: not an OpenFOAM controlDict")
    return Candidate(case, OPENFOAM, settings.settings, settings.warnings)


def read_candidate(path: Path) -> Candidate:
    """The settings at `path`: a run.params file, a folder holding one, or an OpenFOAM case
    (its folder or its system/controlDict)."""
    if not path.exists():
        raise CheckError(
            f"{path} does not exist: give a {PARAMS_FILE} file, a run folder holding one, "
            "or an OpenFOAM case folder"
        )
    if path.name == CONTROL_DICT.name and path.parent.name == CONTROL_DICT.parent.name:
        return _read_openfoam(path.parent.parent)
    if not path.is_dir():
        return _read_avbp(path)
    if (path / PARAMS_FILE).is_file():
        return _read_avbp(path / PARAMS_FILE)
    if (path / CONTROL_DICT).is_file():
        return _read_openfoam(path)
    raise CheckError(f"{path} holds neither {PARAMS_FILE} (AVBP) nor {CONTROL_DICT} (OpenFOAM)")


def setting_labels(solver: str, settings: dict[str, Any]) -> dict[str, str]:
    """The candidate's value label of each setting of `SETTINGS`, by the analysis's own SQL.

    The settings are bounded as the crawl bounds a record, then put in a one-row `runs`
    table of a scratch DuckDB, typed by its DDL, where each `value_sql` is evaluated.
    """
    record = bound_record(RunRecord(run_id="candidate", solver=solver, **settings))
    columns = ["run_id", "solver", *settings]
    names = ", ".join(quote_identifier(c) for c in columns)
    select = ", ".join(f"{s.value_sql} AS {quote_identifier(s.name)}" for s in SETTINGS)
    with duckdb.connect() as scratch:
        scratch.execute(runs_ddl())
        scratch.execute(
            f"INSERT INTO runs ({names}) VALUES ({', '.join('?' for _ in columns)})",
            [getattr(record, c) for c in columns],
        )
        [row] = scratch.execute(f"SELECT {select} FROM runs").fetchall()
    return {s.name: label for s, label in zip(SETTINGS, row, strict=True)}


@dataclass(frozen=True)
class Risk:
    """A setting value's (or the version's) failures as the stored analysis tells them."""

    setting: str
    value: str
    finished_runs: int = 0  # 0: no finished run of the team had it
    failed_runs: int = 0
    failure_rate: float | None = None
    failure_ratio: float | None = None
    failure_ratio_ci_low: float | None = None
    failure_ratio_ci_high: float | None = None
    failure_flagged: bool = False
    finding: str = ""

    @property
    def raises_risk(self) -> bool:
        """Flagged (beyond the noise) and failing more than the rest."""
        return self.failure_flagged and (self.failure_ratio or 0) > 1


@dataclass(frozen=True)
class SameSettings:
    """The team's runs of the same solver whose every setting label is the candidate's."""

    runs: int
    finished_runs: int
    failed_runs: int

    @property
    def failure_rate(self) -> float | None:
        return self.failed_runs / self.finished_runs if self.finished_runs else None

    @property
    def likely_failure(self) -> bool:
        return (
            self.finished_runs >= SAME_SETTINGS_MIN_RUNS
            and self.failed_runs >= SAME_SETTINGS_FAILED_SHARE * self.finished_runs
        )


@dataclass(frozen=True)
class Fix:
    """The next success of a failed run's case (`fixes`): fix, rerun or restart."""

    kind: str
    changes: str
    fixing_run_path: str
    days_later: float | None


@dataclass(frozen=True)
class PastFailure:
    """A failed run like the candidate, its error and how (whether) it was fixed."""

    run_path: str
    created_at: datetime | None
    status: str
    error_category: str | None
    error: str | None
    signature_id: str | None
    settings_alike: int
    differing: dict[str, str]  # setting -> that run's label, where it is not the candidate's
    fix: Fix | None  # None: not fixed yet (or unknown, when `fixes` is missing)
    typical_fix: str | None


@dataclass(frozen=True)
class Evidence:
    """What the warehouse says; None where its table is missing (named in `missing`)."""

    setting_values: list[Risk] | None = None
    same_settings: SameSettings | None = None
    nearest_failures: list[PastFailure] | None = None
    version: Risk | None = None
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckResult:
    """The check of one run: its settings, the evidence, the verdict and its reasons."""

    path: Path
    solver: str
    solver_version: str | None
    settings: dict[str, Any]
    labels: dict[str, str]
    evidence: Evidence
    notes: tuple[str, ...]
    verdict: str
    reasons: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return VERDICTS[self.verdict]

    def to_json(self) -> str:
        """The result for scripts: verdict, path, solver, settings, evidence (and why)."""
        evidence = asdict(self.evidence)
        if self.evidence.same_settings is not None:
            evidence["same_settings"]["failure_rate"] = self.evidence.same_settings.failure_rate
        for failure in evidence["nearest_failures"] or []:
            created = failure["created_at"]
            failure["created_at"] = created.isoformat() if created else None
        document = {
            "verdict": self.verdict,
            "path": str(self.path),
            "solver": self.solver,
            "solver_version": self.solver_version,
            "settings": self.settings,
            "labels": self.labels,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "evidence": evidence,
        }
        return json.dumps(document, ensure_ascii=False, indent=2)

    def lines(self) -> list[str]:
        """A few lines for a job script's output: the verdict, then what it rests on."""
        version = f" {self.solver_version}" if self.solver_version else ""
        lines = [f"{HEADLINES[self.verdict]} ({self.path}: {self.solver}{version})"]
        ev = self.evidence
        if ev.setting_values is not None:
            risks = [*ev.setting_values, *([ev.version] if ev.version else [])]
            width = max(len(_subject(r)) for r in risks)
            lines.append("  failure ratio to the same users' other runs (! flagged, fails more):")
            lines += [f"  {'!' if r.raises_risk else ' '} {_risk_text(r, width)}" for r in risks]
        elif ev.version is not None:
            lines.append(f"  {'!' if ev.version.raises_risk else ' '} {_risk_text(ev.version, 0)}")
        if ev.same_settings is not None:
            lines.append(_same_text(ev.same_settings))
        if ev.nearest_failures:
            lines.append("  nearest past failures (same solver, most settings alike):")
            for failure in ev.nearest_failures:
                lines += _failure_lines(failure, len(self.labels))
        lines += [f"  note: {note}" for note in self.notes]
        return lines


def _subject(risk: Risk) -> str:
    return f"{risk.setting} {risk.value}"


def _risk_text(risk: Risk, width: int) -> str:
    subject = _subject(risk).ljust(width)
    if not risk.finished_runs:
        return f"{subject}  no finished run of the team had it"
    rate = f"{risk.failed_runs}/{risk.finished_runs} runs failed ({_percent(risk.failure_rate)})"
    if risk.failure_ratio is None:
        return f"{subject}  {rate}; too few runs to compare"
    ci = ""
    if risk.failure_ratio_ci_low is not None and risk.failure_ratio_ci_high is not None:
        ci = f" (95 % CI {risk.failure_ratio_ci_low:.2f}–{risk.failure_ratio_ci_high:.2f})"
    flag = ""
    if risk.failure_flagged:
        flag = " flagged, fails more" if risk.failure_ratio > 1 else " flagged, fails less"
    return f"{subject}  {risk.failure_ratio:.2f}×{ci}{flag}; {rate}"


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{100 * share:.0f} %"


def _same_text(same: SameSettings) -> str:
    mark = "!" if same.likely_failure else " "
    if not same.finished_runs:
        return f"  {mark} same settings: {same.runs} runs of the team, none finished"
    return (
        f"  {mark} same settings: {same.failed_runs} of {same.finished_runs} finished runs "
        f"failed ({_percent(same.failure_rate)})"
    )


def _failure_lines(failure: PastFailure, settings: int) -> list[str]:
    day = failure.created_at.date().isoformat() if failure.created_at else "date unknown"
    differs = ", ".join(f"{k} {v}" for k, v in failure.differing.items())
    alike = f"{failure.settings_alike}/{settings} alike" + (
        f" (differs: {differs})" if differs else ""
    )
    error = failure.error or "no error message"
    lines = [
        f"    {failure.run_path} ({day}, {alike}): {failure.error_category or failure.status} "
        f"“{error}”"
    ]
    if failure.fix is None:
        typical = f" (typically fixed by: {failure.typical_fix})" if failure.typical_fix else ""
        lines.append(f"      not fixed yet{typical}")
    else:
        done = FIX_WORDS.get(failure.fix.kind, failure.fix.kind)
        changes = _first_changes(failure.fix.changes)
        lines.append(
            f"      {done} {failure.fix.fixing_run_path}" + (f": {changes}" if changes else "")
        )
    return lines


def _first_changes(changes: str) -> str:
    """A fix's changes, those of compared settings first, at most `SHOWN_CHANGES` of them."""
    parts = [part for part in changes.split("; ") if part]
    names = {s.name for s in SETTINGS}
    parts.sort(key=lambda part: part.split(":", 1)[0] not in names)
    more = len(parts) - SHOWN_CHANGES
    return "; ".join(parts[:SHOWN_CHANGES]) + (f"; and {more} more" if more > 0 else "")


def _number(value: float | None) -> float | None:
    """A stored number, None for NULL and NaN (pandas stores a missing ratio as NaN)."""
    return None if value is None or math.isnan(value) else float(value)


def _risk(setting: str, value: str, row: Sequence[Any] | None) -> Risk:
    """A `Risk` from a row of `_RISK_COLUMNS` (None: no run had the value)."""
    if row is None:
        return Risk(setting, value)
    finished, failed, rate, ratio, low, high, flagged, finding = row
    return Risk(
        setting,
        value,
        int(finished or 0),
        int(failed or 0),
        _number(rate),
        _number(ratio),
        _number(low),
        _number(high),
        bool(flagged) if flagged is not None else False,
        finding or "",
    )


_RISK_COLUMNS = (
    "finished_runs, failed_runs, failure_rate, failure_ratio, failure_ratio_ci_low, "
    "failure_ratio_ci_high, failure_flagged, finding"
)
_MISSING = "not computed yet (run `runcrawler crawl` with its analytics): {}"


def _label_sql() -> str:
    """Each setting's label over `runs`, as `label_<i>` in `SETTINGS` order."""
    return ", ".join(f"{s.value_sql} AS label_{i}" for i, s in enumerate(SETTINGS))


def _alike_sql() -> str:
    """How many of a run's labels are the candidate's ($s<i>)."""
    return " + ".join(f"(label_{i} = $s{i})::INTEGER" for i in range(len(SETTINGS)))


def _setting_values(con: duckdb.DuckDBPyConnection, labels: dict[str, str]) -> list[Risk]:
    rows = con.execute(f"SELECT setting, value, {_RISK_COLUMNS} FROM setting_effects").fetchall()
    stored = {(setting, value): row for setting, value, *row in rows}
    return [_risk(name, label, stored.get((name, label))) for name, label in labels.items()]


def _version(con: duckdb.DuckDBPyConnection, solver: str, version: str) -> Risk:
    rows = con.execute(
        f"SELECT {_RISK_COLUMNS} FROM version_effects WHERE solver = ? AND solver_version = ?",
        [solver, version],
    ).fetchall()
    return _risk("version", f"{solver} {version}", rows[0] if rows else None)


def _label_params(solver: str, labels: dict[str, str]) -> dict[str, Any]:
    values = {f"s{i}": labels[s.name] for i, s in enumerate(SETTINGS)}
    return {"solver": solver, "failed": list(FAILED_STATUSES), **values}


def _same_settings(
    con: duckdb.DuckDBPyConnection, solver: str, labels: dict[str, str]
) -> SameSettings:
    same = " AND ".join(f"label_{i} = $s{i}" for i in range(len(SETTINGS)))
    [row] = con.execute(
        f"""
        WITH labelled AS (SELECT status, {_label_sql()} FROM runs WHERE solver = $solver)
        SELECT count(*), count(*) FILTER (WHERE status NOT IN $unfinished),
               count(*) FILTER (WHERE status IN $failed)
        FROM labelled WHERE {same}
        """,
        {**_label_params(solver, labels), "unfinished": list(UNFINISHED_STATUSES)},
    ).fetchall()
    return SameSettings(*row)


def _past_failure(
    con: duckdb.DuckDBPyConnection, row: Sequence[Any], labels: dict[str, str], tables: set[str]
) -> PastFailure:
    """A failed run's row with its error's template and its fix, where those tables exist."""
    path, created, status, category, masked, signature, alike, their_labels = row
    template = typical = None
    if "error_fixes" in tables and signature is not None:
        found = con.execute(
            "SELECT template, typical_fix FROM error_fixes WHERE signature_id = ?",
            [signature],
        ).fetchall()
        template, typical = found[0] if found else (None, None)
    fix = None
    if "fixes" in tables:
        found = con.execute(
            "SELECT kind, changes, fixing_run_path, days_later FROM fixes "
            "WHERE failed_run_path = ?",
            [path],
        ).fetchall()
        fix = Fix(*found[0][:3], _number(found[0][3])) if found else None
    differing = {
        s.name: theirs
        for s, theirs in zip(SETTINGS, their_labels, strict=True)
        if theirs != labels[s.name]
    }
    return PastFailure(
        path,
        created,
        status,
        category,
        template or masked,
        signature,
        alike,
        differing,
        fix,
        typical if isinstance(typical, str) else None,  # NaN when no fix was typical
    )


def _nearest_failures(
    con: duckdb.DuckDBPyConnection, solver: str, labels: dict[str, str], tables: set[str]
) -> list[PastFailure]:
    """The failed runs of `solver` with the most labels alike, most recent first."""
    all_labels = ", ".join(f"label_{i}" for i in range(len(SETTINGS)))
    rows = con.execute(
        f"""
        WITH labelled AS (
            SELECT run_path, created_at, status, error_category, error_signature, signature_id,
                   {_label_sql()}
            FROM runs WHERE solver = $solver AND status IN $failed
        )
        SELECT run_path, created_at, status, error_category, error_signature, signature_id,
               {_alike_sql()} AS alike, [{all_labels}]
        FROM labelled ORDER BY alike DESC, created_at DESC NULLS LAST, run_path LIMIT $n
        """,
        {**_label_params(solver, labels), "n": NEAREST_FAILURES},
    ).fetchall()
    return [_past_failure(con, row, labels, tables) for row in rows]


EVIDENCE_TABLES = ("runs", "setting_effects", "version_effects", "fixes", "error_fixes")


def gather_evidence(
    con: duckdb.DuckDBPyConnection,
    solver: str,
    labels: dict[str, str],
    solver_version: str | None,
) -> Evidence:
    """Everything the warehouse says about runs like the candidate; missing tables skipped."""
    tables = {name for name in EVIDENCE_TABLES if has_table(con, name)}
    wanted = [n for n in EVIDENCE_TABLES if n != "version_effects" or solver_version]
    has_runs = "runs" in tables
    return Evidence(
        setting_values=_setting_values(con, labels) if "setting_effects" in tables else None,
        same_settings=_same_settings(con, solver, labels) if has_runs else None,
        nearest_failures=_nearest_failures(con, solver, labels, tables) if has_runs else None,
        version=(
            _version(con, solver, solver_version)
            if solver_version and "version_effects" in tables
            else None
        ),
        missing=[name for name in wanted if name not in tables],
    )


def _verdict(evidence: Evidence) -> tuple[str, tuple[str, ...]]:
    """The verdict and the reasons for it, in words."""
    risks = [
        risk
        for risk in [*(evidence.setting_values or []), evidence.version]
        if risk is not None and risk.raises_risk
    ]
    reasons = [
        f"{_subject(r)} fails {r.failure_ratio:.1f}× as often as the rest (flagged)" for r in risks
    ]
    same = evidence.same_settings
    if same is not None and same.likely_failure:
        reasons.insert(
            0,
            f"runs with the same settings failed {same.failed_runs} of {same.finished_runs} times",
        )
    if (same is not None and same.likely_failure) or any(
        (r.failure_ratio or 0) >= LIKELY_RATIO for r in risks
    ):
        return "likely_failure", tuple(reasons)
    return ("warning" if risks else "ok"), tuple(reasons)


def check_run(
    path: Path,
    duckdb_path: Path,
    solver_version: str | None = None,
    wait: float = LOCK_RETRY_SECONDS,
) -> CheckResult:
    """Check the run at `path` against the warehouse at `duckdb_path` (read-only).

    Raises `CheckError` for a path that holds no readable settings or an unreadable
    warehouse, `WarehouseMissingError` before the first crawl and `WarehouseLockedError`
    when a writer holds the file for more than `wait` seconds.
    """
    candidate = read_candidate(path)
    labels = setting_labels(candidate.solver, candidate.settings)
    if not duckdb_path.is_file():
        raise WarehouseMissingError(
            f"no warehouse at {duckdb_path}; run `runcrawler crawl --data "
            f"{duckdb_path.parent}` first (or point --data / RUNCRAWLER_DATA at its folder)"
        )
    try:
        with connect(duckdb_path, read_only=True, wait=wait) as con:
            evidence = gather_evidence(con, candidate.solver, labels, solver_version)
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckError(f"could not read the warehouse {duckdb_path}: {first}") from error
    notes = [
        *candidate.warnings,
        *(_MISSING.format(name) for name in evidence.missing),
    ]
    if solver_version is None:
        notes.append("no --solver-version given: the version was not checked")
    verdict, reasons = _verdict(evidence)
    return CheckResult(
        path=candidate.path,
        solver=candidate.solver,
        solver_version=solver_version,
        settings=candidate.settings,
        labels=labels,
        evidence=evidence,
        notes=tuple(notes),
        verdict=verdict,
        reasons=reasons,
    )
