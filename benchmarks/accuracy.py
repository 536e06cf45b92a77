"""Accuracy of the crawler against hand-read truth: `python -m benchmarks.accuracy CORPUS TRUTH`.

The other benchmarks measure speed on generated archives; this one measures
whether the rows are right, on real run directories (the evaluation corpus of
/work/shared/real-corpus, whose README defines the truth file and the scoring).
The corpus is copied into a temporary archive `<tmp>/archive/real/corpus/<case>/`
(old modification times kept, or re-applied when the copy is recent, so a log
with no end reads as truncated rather than running), crawled by the project's
own ingest chain into a temporary DuckDB file, and `runs` is joined to the
truth on the case name (the last part of `run_path`).

Each truth field is scored strictly (the truth value) and leniently (the truth
or a value of `also_acceptable`). The report lists, case by case, every field
that is wrong with what the crawler wrote and what was expected: the worklist
of the parser. A completed score exits 0 whatever the figures (it measures);
bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

CLUSTER, USER = "real", "corpus"
# The truth fields, in report order (`case` is the join key; `deciding_log` and
# `notes` are for diagnosis, not scored).
FIELDS = (
    "solver",
    "application",
    "solver_version",
    "n_procs",
    "status",
    "error_category",
    "error_message_contains",
    "iterations_done",
    "execution_time_s",
    "clock_time_s",
    "started_at",
)
HEADLINE_FIELDS = ("status", "error_category")
TIME_FIELDS = frozenset({"execution_time_s", "clock_time_s"})
REL_TOL = 1e-6
STARTED_AT_FORMAT = "%b %d %Y %H:%M:%S"
# Copies newer than this get OLD_MTIME: the parser reads a recent log with no end as running.
RECENT = timedelta(days=30)
OLD_MTIME = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
SHOWN_CHARS = 110


class TruthError(ValueError):
    """The truth file cannot be used; the message says where."""


# ---------------------------------------------------------------- scoring (pure)


@dataclass(frozen=True)
class Check:
    """One truth field of one case: what `runs` holds, what was expected, and the verdicts."""

    field: str
    expected: Any
    got: Any
    strict: bool
    lenient: bool
    also_acceptable: list[Any] = dataclasses.field(default_factory=list)
    detail: str | None = None  # how `got` was derived, when it is not a column as is


@dataclass(frozen=True)
class CaseResult:
    """Every scored field of one truth case, and what helps explain the wrong ones."""

    case: str
    found: bool
    checks: list[Check]
    run_path: str | None = None
    log_path: str | None = None
    deciding_log: str | None = None
    quarantine: list[str] = dataclasses.field(
        default_factory=list
    )  # "reason: detail" of matching entries
    notes: str | None = None

    @property
    def wrong(self) -> list[Check]:
        return [check for check in self.checks if not check.strict]


@dataclass(frozen=True)
class FieldScore:
    """Right answers of one field over the cases where it is scored."""

    field: str
    scored: int
    strict: int
    lenient: int
    not_scored_because: str | None = None

    @property
    def strict_pct(self) -> float | None:
        return 100 * self.strict / self.scored if self.scored else None

    @property
    def lenient_pct(self) -> float | None:
        return 100 * self.lenient / self.scored if self.scored else None


@dataclass(frozen=True)
class Score:
    """The whole measurement: per field, overall, per case, and the rows no truth line matched."""

    fields: list[FieldScore]
    overall: FieldScore
    cases: list[CaseResult]
    extra_rows: list[str]

    def field_score(self, name: str) -> FieldScore:
        return next(f for f in self.fields if f.field == name)

    @property
    def headline(self) -> dict[str, FieldScore]:
        """The README's headline: strict status and error_category over all cases."""
        return {name: self.field_score(name) for name in HEADLINE_FIELDS}

    def to_json_dict(self) -> dict[str, Any]:
        def figures(score: FieldScore) -> dict[str, Any]:
            rounded = {
                "strict_pct": _round(score.strict_pct),
                "lenient_pct": _round(score.lenient_pct),
            }
            return {**asdict(score), **rounded}

        cases = []
        for case in self.cases:
            entry = asdict(case)
            entry["wrong"] = [check.field for check in case.wrong]
            cases.append(entry)
        return {
            "fields": [figures(score) for score in self.fields],
            "overall": figures(self.overall),
            "headline": {name: figures(score) for name, score in self.headline.items()},
            "cases": cases,
            "extra_rows": self.extra_rows,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def case_of(path: str) -> str:
    """The join key: the last component of a `/`-separated path relative to the archive root."""
    return PurePosixPath(path).name


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def parse_started_at(text: str) -> datetime:
    """The banner's `Date` + `Time` as the truth spells them (`Jun 23 2026 16:21:50`)."""
    return datetime.strptime(" ".join(text.split()), STARTED_AT_FORMAT)


def got_value(name: str, row: dict[str, Any]) -> tuple[Any, str | None]:
    """The `runs` value a truth field compares with, and how it was derived if not as is."""
    if name == "error_message_contains":
        return row.get("error_message"), None
    if name == "clock_time_s":
        return row.get("wall_time_s"), None
    if name == "execution_time_s":
        # Contract: cpu_time_s = ExecutionTime × n_procs (a run with no banner counts as serial).
        cpu, procs = row.get("cpu_time_s"), row.get("n_procs")
        if cpu is None:
            return None, None
        return cpu / (procs or 1), f"cpu_time_s {cpu!r} / n_procs {procs!r}"
    if name == "started_at":
        return _as_datetime(row.get("started_at")), None
    return row.get(name), None


def matches(name: str, expected: Any, got: Any) -> bool:
    """Whether `got` (from `runs`) counts as `expected` for this field, as the README scores it."""
    if name == "error_message_contains":
        # A null truth means no error line: the message must be NULL too.
        return got is None if expected is None else got is not None and expected in str(got)
    if expected is None or got is None:
        return expected is None and got is None
    if name == "solver_version":
        return str(expected).removeprefix("v") == str(got).removeprefix("v")
    if name in TIME_FIELDS:
        return math.isclose(float(got), float(expected), rel_tol=REL_TOL)
    if name == "started_at":
        return parse_started_at(expected) == got.replace(tzinfo=None)
    return expected == got


def alternatives(truth: dict[str, Any], name: str) -> list[Any]:
    """The `also_acceptable` values of a field: one value or a list of them (null included)."""
    also = truth.get("also_acceptable") or {}
    if name not in also:
        return []
    value = also[name]
    return list(value) if isinstance(value, list) else [value]


def _pick_rows(
    runs_rows: Iterable[dict[str, Any]], cases: set[str]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """One row per truth case (the shallowest run_path on a tie), and the run_paths left over."""
    by_case: dict[str, dict[str, Any]] = {}
    extra: list[str] = []
    for row in sorted(runs_rows, key=lambda r: (r["run_path"].count("/"), r["run_path"])):
        case = case_of(row["run_path"])
        if case in cases and case not in by_case:
            by_case[case] = row
        else:
            extra.append(row["run_path"])
    return by_case, sorted(extra)


def _quarantine_for(case: str, quarantine_rows: Sequence[dict[str, Any]]) -> list[str]:
    """Quarantine entries of the case folder itself or of anything inside it."""
    found = []
    for entry in quarantine_rows:
        if case in PurePosixPath(str(entry.get("path") or "")).parts:
            found.append(f"{entry.get('reason')}: {entry.get('detail')} ({entry.get('path')})")
    return found


def _check(name: str, truth: dict[str, Any], row: dict[str, Any] | None) -> Check:
    expected, also = truth[name], alternatives(truth, name)
    if row is None:
        return Check(name, expected, None, False, False, also, "no row in runs")
    got, detail = got_value(name, row)
    strict = matches(name, expected, got)
    lenient = strict or any(matches(name, value, got) for value in also)
    return Check(name, expected, got, strict, lenient, also, detail)


def _not_scored(name: str, truth: dict[str, Any], has_application: bool) -> bool:
    if name not in truth:
        return True
    if name == "application" and not has_application:
        return True
    # The parser may derive wall time from mtimes where no ClockTime was printed.
    return name == "clock_time_s" and truth[name] is None


def score(
    runs_rows: Sequence[dict[str, Any]],
    truth_rows: Sequence[dict[str, Any]],
    quarantine_rows: Sequence[dict[str, Any]] = (),
) -> Score:
    """Score `runs` rows (dicts by column) against truth lines; no I/O, so tests build both.

    A truth case with no row fails every field it scores. `application` is scored
    only when the rows have an `application` column; `clock_time_s` only where the
    truth has a value.
    """
    has_application = any("application" in row for row in runs_rows)
    by_case, extra = _pick_rows(runs_rows, {t["case"] for t in truth_rows})
    cases = []
    for truth in truth_rows:
        row = by_case.get(truth["case"])
        checks = [
            _check(name, truth, row)
            for name in FIELDS
            if not _not_scored(name, truth, has_application)
        ]
        cases.append(
            CaseResult(
                case=truth["case"],
                found=row is not None,
                checks=checks,
                run_path=row["run_path"] if row else None,
                log_path=row.get("log_path") if row else None,
                deciding_log=truth.get("deciding_log"),
                quarantine=[] if row else _quarantine_for(truth["case"], quarantine_rows),
                notes=truth.get("notes"),
            )
        )
    fields = []
    for name in FIELDS:
        checks = [c for case in cases for c in case.checks if c.field == name]
        why = None
        if name == "application" and not has_application:
            why = "runs has no application column"
        fields.append(
            FieldScore(
                name,
                len(checks),
                sum(c.strict for c in checks),
                sum(c.lenient for c in checks),
                why,
            )
        )
    overall = FieldScore(
        "overall",
        sum(f.scored for f in fields),
        sum(f.strict for f in fields),
        sum(f.lenient for f in fields),
    )
    return Score(fields, overall, cases, extra)


# ---------------------------------------------------------------- truth file


def load_truth(path: Path) -> list[dict[str, Any]]:
    """The truth lines, checked enough that scoring cannot fail halfway (`TruthError` if not)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TruthError(f"cannot read truth file {path}: {error}") from error
    truth: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise TruthError(f"{path}:{number}: not a JSON line: {error}") from error
        if not isinstance(entry, dict) or not isinstance(entry.get("case"), str):
            raise TruthError(f"{path}:{number}: not a JSON object with a string 'case'")
        for started in (entry.get("started_at"), *alternatives(entry, "started_at")):
            try:
                if started is not None:
                    parse_started_at(started)
            except (TypeError, ValueError) as error:
                raise TruthError(
                    f"{path}:{number}: started_at {started!r} is not like 'Jun 23 2026 16:21:50'"
                ) from error
        truth.append(entry)
    if not truth:
        raise TruthError(f"truth file {path} holds no case")
    return truth


# ---------------------------------------------------------------- crawl


@dataclass(frozen=True)
class CrawledCorpus:
    """What the crawl wrote: `runs` and `quarantine` rows as dicts by column."""

    runs: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    seconds: float


def case_folders(corpus_dir: Path) -> list[Path]:
    return sorted(p for p in corpus_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _walk(root: Path) -> Iterator[Path]:
    for folder, _, names in os.walk(root):
        yield Path(folder)
        for name in names:
            yield Path(folder, name)


def age_if_recent(case: Path, now: float | None = None) -> bool:
    """Give every file of a freshly copied case OLD_MTIME; returns whether it did.

    A copy that lost the corpus's old mtimes would make a log with no error and no
    end read as running instead of truncated. A case keeps its own mtimes when
    they are old (they may order its logs).
    """
    now = time.time() if now is None else now
    paths = list(_walk(case))
    files = [p.lstat().st_mtime for p in paths if p.is_file() and not p.is_symlink()]
    if not files or now - max(files) > RECENT.total_seconds():
        return False
    for path in reversed(paths):  # files before their folder
        if not path.is_symlink():
            os.utime(path, (OLD_MTIME, OLD_MTIME))
    return True


def copy_corpus(corpus_dir: Path, archive: Path) -> list[str]:
    """Copy each case folder to `<archive>/real/corpus/<case>/` (copy2 keeps mtimes)."""
    users = archive / CLUSTER / USER
    users.mkdir(parents=True, exist_ok=True)
    names = []
    for case in case_folders(corpus_dir):
        target = users / case.name
        shutil.copytree(case, target, symlinks=True)
        age_if_recent(target)
        names.append(case.name)
    return names


def _read_table(con: Any, table: str) -> list[dict[str, Any]]:
    cursor = con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def crawl_corpus(corpus_dir: Path, workdir: Path) -> CrawledCorpus:
    """Copy the corpus under `workdir/archive`, crawl it into `workdir/data`, read the tables.

    The crawl is `crawl_into_warehouse`: the ingest chain the Dagster assets run
    (discover, parse, clean, swap into DuckDB) without Dagster, and without the
    analytics, which scoring does not read.
    """
    from runcrawler_assets.archive.discovery import list_partitions
    from runcrawler_assets.config import Config
    from runcrawler_assets.crawl import crawl_into_warehouse
    from runcrawler_assets.warehouse.database import connect

    archive, data = (workdir / "archive").absolute(), (workdir / "data").absolute()
    copy_corpus(corpus_dir, archive)
    settings = Config(archive_root=archive, data_dir=data)
    settings.check_archive()
    started = time.perf_counter()
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    seconds = time.perf_counter() - started
    with connect(settings.duckdb_path, read_only=True) as con:
        return CrawledCorpus(_read_table(con, "runs"), _read_table(con, "quarantine"), seconds)


# ---------------------------------------------------------------- report


def show(value: Any) -> str:
    """A value as the report prints it: NULL, timestamps plainly, long strings cut."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _show_expected(check: Check) -> str:
    def one(value: Any) -> str:
        if check.field == "started_at" and value is not None:
            return show(parse_started_at(value))
        if check.field == "error_message_contains":
            return "NULL" if value is None else f"contains {show(value)}"
        return show(value)

    text = one(check.expected)
    if check.also_acceptable:
        text += " (also acceptable: " + ", ".join(one(v) for v in check.also_acceptable) + ")"
    return text


def _jsonable(value: Any) -> Any:
    """What json cannot write itself: the timestamps of `runs`."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def field_table(result: Score) -> list[str]:
    lines = [
        f"{'field':<24}{'scored':>7}{'strict':>8}{'lenient':>9}{'strict %':>10}{'lenient %':>11}"
    ]
    for f in [*result.fields, result.overall]:
        if f.field == "overall":
            lines.append("-" * len(lines[0]))
        line = (
            f"{f.field:<24}{f.scored:>7}{f.strict:>8}{f.lenient:>9}"
            f"{_pct(f.strict_pct):>10}{_pct(f.lenient_pct):>11}"
        )
        if f.not_scored_because:
            line += f"   not scored: {f.not_scored_because}"
        lines.append(line)
    return lines


def _relative_log(case: CaseResult) -> str | None:
    if case.log_path and case.run_path and case.log_path.startswith(case.run_path + "/"):
        return case.log_path[len(case.run_path) + 1 :]
    return case.log_path


def case_lines(case: CaseResult) -> list[str]:
    """One case's wrong fields, got vs expected; the notes when status or category is wrong."""
    if case.found:
        head = f"{case.case}   log read: {_relative_log(case)}; deciding log: {case.deciding_log}"
    else:
        where = "; ".join(case.quarantine) or "not in quarantine either"
        head = f"{case.case}   NO ROW IN runs (quarantine: {where})"
    lines = [head]
    for check in case.wrong:
        ok = "   [lenient ok]" if check.lenient else ""
        got = show(check.got) + (f"  = {check.detail}" if check.detail and case.found else "")
        lines.append(f"    {check.field:<23} got      {got}{ok}")
        lines.append(f"    {'':<23} expected {_show_expected(check)}")
    if case.notes and any(c.field in HEADLINE_FIELDS for c in case.wrong):
        wrapped = textwrap.wrap(case.notes, width=96)
        lines += ["    notes: " + wrapped[0], *("           " + w for w in wrapped[1:])]
    return lines


def format_report(result: Score, corpus: str, crawl: CrawledCorpus | None = None) -> str:
    """The text report: field table, overall, headline, then every wrong field by case."""
    found = sum(case.found for case in result.cases)
    lines = [f"Accuracy against {corpus}: {len(result.cases)} truth cases, {found} with a row"]
    if crawl is not None:
        lines[0] += (
            f"; crawl: {len(crawl.runs)} rows, {len(crawl.quarantine)} quarantined, "
            f"{crawl.seconds:.1f} s"
        )
    lines += ["", *field_table(result), ""]
    o = result.overall
    lines.append(
        f"Overall: {o.strict}/{o.scored} fields right strict ({_pct(o.strict_pct)} %), "
        f"{o.lenient}/{o.scored} lenient ({_pct(o.lenient_pct)} %)"
    )
    headline = ", ".join(
        f"{name} {f.strict}/{f.scored} ({_pct(f.strict_pct)} %)"
        for name, f in result.headline.items()
    )
    lenient = ", ".join(f"{name} {f.lenient}/{f.scored}" for name, f in result.headline.items())
    lines.append(f"Headline (strict): {headline}; lenient: {lenient}")
    if result.extra_rows:
        lines.append(f"Rows matching no truth case: {', '.join(result.extra_rows)}")
    wrong = [case for case in result.cases if case.wrong]
    right = [case.case for case in result.cases if not case.wrong]
    lines += ["", f"Wrong fields by case ({len(wrong)} cases; strict, got vs expected):"]
    for case in wrong:
        lines += ["", *case_lines(case)]
    if right:
        lines += ["", f"All fields right ({len(right)}): {', '.join(right)}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.accuracy",
        description="Crawl a corpus of run directories into a scratch DuckDB file and score "
        "its `runs` against the truth JSONL, field by field, strict and lenient.",
        epilog="Exit status: 0 once the score is printed (whatever it is), 2 on bad arguments.",
    )
    parser.add_argument("corpus_dir", type=Path, help="folder holding one folder per case")
    parser.add_argument("truth", type=Path, help="truth JSONL, one object per case")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the result as JSON")
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the copied archive and the DuckDB file in this new folder "
        "(default: a temporary folder, removed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.corpus_dir.is_dir():
        parser.error(f"corpus folder {args.corpus_dir} does not exist")
    if not case_folders(args.corpus_dir):
        parser.error(f"corpus folder {args.corpus_dir} holds no case folder")
    if args.json is not None and not args.json.absolute().parent.is_dir():
        parser.error(f"--json: folder {args.json.absolute().parent} does not exist")
    from benchmarks.common import not_new_folder  # loads runcrawler: not needed to score

    if args.workdir is not None and (problem := not_new_folder(args.workdir)):
        parser.error(f"--workdir: {problem}")
    try:
        truth = load_truth(args.truth)
    except TruthError as error:
        parser.error(str(error))

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        crawl = crawl_corpus(args.corpus_dir, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="runcrawler-accuracy-") as workdir:
            crawl = crawl_corpus(args.corpus_dir, Path(workdir))
    result = score(crawl.runs, truth, crawl.quarantine)
    print(format_report(result, str(args.corpus_dir), crawl), end="")
    if args.json is not None:
        document = {
            "corpus": str(args.corpus_dir),
            "truth": str(args.truth),
            "rows": len(crawl.runs),
            "quarantined": len(crawl.quarantine),
            "crawl_seconds": round(crawl.seconds, 2),
            **result.to_json_dict(),
        }
        args.json.write_text(json.dumps(document, indent=1, default=_jsonable) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
