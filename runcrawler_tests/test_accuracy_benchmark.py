"""benchmarks.accuracy: the scoring rules of the real-corpus README, and one tiny corpus end to end.

The corpus here is written by hand (two small OpenFOAM cases); the real corpus
is evaluation data that never enters the repository.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.accuracy import OLD_MTIME, copy_corpus, load_truth, main, score

RUN_PATH = "real/corpus/{case}"


def row(case: str = "caseA", **columns: Any) -> dict[str, Any]:
    """A `runs` row of a successful serial run, with `columns` changed."""
    values: dict[str, Any] = {
        "run_path": RUN_PATH.format(case=case),
        "solver": "openfoam",
        "solver_version": "v2312",
        "n_procs": 4,
        "status": "success",
        "error_category": "none",
        "error_message": None,
        "iterations_done": 10,
        "cpu_time_s": 40.0,
        "wall_time_s": 12.0,
        "started_at": datetime(2024, 3, 12, 14, 2, 33),
        "log_path": RUN_PATH.format(case=case) + "/log.simpleFoam",
    }
    return {**values, **columns}


def truth(case: str = "caseA", **fields: Any) -> dict[str, Any]:
    """The truth line that `row(case)` matches in every field."""
    values: dict[str, Any] = {
        "case": case,
        "solver": "openfoam",
        "application": "simpleFoam",
        "solver_version": "2312",
        "n_procs": 4,
        "status": "success",
        "error_category": "none",
        "error_message_contains": None,
        "iterations_done": 10,
        "execution_time_s": 10.0,
        "clock_time_s": 12,
        "started_at": "Mar 12 2024 14:02:33",
        "deciding_log": "log.simpleFoam",
        "notes": "why this case is what it is",
    }
    return {**values, **fields}


def check(result, case: str, field: str):
    found = next(c for c in result.cases if c.case == case)
    return next(c for c in found.checks if c.field == field)


# ---------------------------------------------------------------- score


def test_a_matching_row_is_right_in_every_field_and_application_is_not_scored() -> None:
    result = score([row()], [truth()])
    assert result.cases[0].wrong == []
    application = result.field_score("application")
    assert application.scored == 0
    assert application.not_scored_because == "runs has no application column"
    assert result.overall.scored == result.overall.strict == 10
    assert result.extra_rows == []


def test_application_is_scored_when_runs_has_the_column() -> None:
    result = score([row(application="pimpleFoam")], [truth()])
    assert result.field_score("application").scored == 1
    assert check(result, "caseA", "application").strict is False


def test_also_acceptable_counts_for_lenient_only() -> None:
    line = truth(
        status="failed",
        error_category="numerical_instability",
        error_message_contains="GAMGSolver::scale",
        also_acceptable={
            "status": "killed",
            "error_category": "cancelled",
            "error_message_contains": ["sigFpe", "CANCELLED AT"],
        },
    )
    got = row(status="killed", error_category="cancelled", error_message="*** STEP CANCELLED AT x")
    result = score([got], [line])
    for field in ("status", "error_category", "error_message_contains"):
        assert (check(result, "caseA", field).strict, check(result, "caseA", field).lenient) == (
            False,
            True,
        )
    status = result.headline["status"]
    assert (status.scored, status.strict, status.lenient) == (1, 0, 1)


def test_an_also_acceptable_null_admits_null() -> None:
    result = score([row(solver_version=None)], [truth(also_acceptable={"solver_version": None})])
    version = check(result, "caseA", "solver_version")
    assert (version.strict, version.lenient) == (False, True)


def test_error_message_is_a_substring_test_and_must_be_null_when_the_truth_is() -> None:
    line = truth("failing", error_message_contains="cannot find file")
    rows = [
        row("failing", error_message='cannot find file "/case/0/U"'),
        row(error_message="FOAM Warning: something harmless"),
    ]
    result = score(rows, [line, truth()])
    assert check(result, "failing", "error_message_contains").strict
    assert not check(result, "caseA", "error_message_contains").strict
    miss = score([row("failing", error_message="Cannot find file")], [line])
    assert not check(miss, "failing", "error_message_contains").strict  # case-sensitive


def test_a_null_category_must_be_null() -> None:
    line = truth(status="not_started", error_category=None)
    assert check(
        score([row(status="not_started", error_category=None)], [line]), "caseA", "error_category"
    ).strict
    assert not check(score([row(status="not_started")], [line]), "caseA", "error_category").strict


def test_versions_compare_without_a_leading_v() -> None:
    for got, expected, right in [
        ("v2312", "2312", True),
        ("2012", "v2012", True),
        ("v2.4.x", "2.4.x", True),
        ("2312", "2412", False),
        (None, "13", False),
    ]:
        result = score([row(solver_version=got)], [truth(solver_version=expected)])
        assert check(result, "caseA", "solver_version").strict is right, (got, expected)


def test_times_compare_to_a_relative_1e6_and_execution_time_is_cpu_time_per_rank() -> None:
    close = row(cpu_time_s=4 * 10.000001, wall_time_s=12.0001)
    result = score([close], [truth()])
    assert check(result, "caseA", "execution_time_s").strict
    assert check(result, "caseA", "execution_time_s").got == pytest.approx(10.000001)
    assert not check(result, "caseA", "clock_time_s").strict  # 8e-6 relative is too far
    far = score([row(cpu_time_s=10.0)], [truth()])  # ExecutionTime not multiplied by ranks
    assert check(far, "caseA", "execution_time_s").got == 2.5
    assert not check(far, "caseA", "execution_time_s").strict


def test_clock_time_is_skipped_when_the_truth_is_null_but_other_nulls_are_scored() -> None:
    line = truth(clock_time_s=None, execution_time_s=None, iterations_done=None, started_at=None)
    result = score([row()], [line])
    names = [c.field for c in result.cases[0].checks]
    assert "clock_time_s" not in names
    assert result.field_score("clock_time_s").scored == 0
    wrong = {c.field for c in result.cases[0].wrong}
    assert wrong == {"execution_time_s", "iterations_done", "started_at"}


def test_started_at_is_read_as_the_banner_prints_it() -> None:
    assert check(score([row()], [truth()]), "caseA", "started_at").strict
    later = row(started_at=datetime(2024, 3, 12, 14, 2, 34))
    assert not check(score([later], [truth()]), "caseA", "started_at").strict
    iso = row(started_at="2024-03-12T14:02:33")
    assert check(score([iso], [truth()]), "caseA", "started_at").strict


def test_a_missing_row_fails_every_field_and_shows_its_quarantine() -> None:
    quarantine = [
        {"path": "real/corpus/lost", "reason": "parser_error", "detail": "boom"},
        {"path": "real/corpus/other", "reason": "unreadable", "detail": "denied"},
    ]
    result = score([row()], [truth(), truth("lost")], quarantine)
    lost = next(c for c in result.cases if c.case == "lost")
    assert not lost.found
    assert len(lost.wrong) == len(lost.checks) == 10
    assert not any(c.lenient for c in lost.checks)
    assert lost.quarantine == ["parser_error: boom (real/corpus/lost)"]
    assert result.overall.scored == 20 and result.overall.strict == 10
    assert result.headline["status"].strict == 1


def test_rows_of_no_truth_case_are_listed_and_the_shallowest_row_joins() -> None:
    rows = [row(), row(run_path="real/corpus/caseA/old/caseA", status="failed"), row("stray")]
    result = score(rows, [truth()])
    assert result.cases[0].wrong == []
    assert result.extra_rows == ["real/corpus/caseA/old/caseA", "real/corpus/stray"]


# ---------------------------------------------------------------- truth file and arguments


def test_bad_arguments_exit_2_with_a_message(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "cases"
    (corpus / "one").mkdir(parents=True)
    good = tmp_path / "truth.jsonl"
    good.write_text(json.dumps(truth()) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(truth()) + "\n{not json\n")
    cases = [
        ([str(tmp_path / "absent"), str(good)], "does not exist"),
        ([str(corpus), str(tmp_path / "absent.jsonl")], "cannot read truth file"),
        ([str(corpus), str(bad)], "bad.jsonl:2: not a JSON line"),
        ([str(corpus), str(good), "--json", str(tmp_path / "no" / "r.json")], "does not exist"),
        ([str(corpus), str(good), "--workdir", str(tmp_path)], "is not empty"),
        ([str(corpus), str(good), "--workdir", str(good)], "is not a folder"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "CORPUS" in capsys.readouterr().out.upper()


def test_truth_lines_are_checked_before_any_crawl(tmp_path: Path) -> None:
    path = tmp_path / "truth.jsonl"
    path.write_text(json.dumps(truth(started_at="2024-03-12 14:02:33")) + "\n")
    with pytest.raises(ValueError, match="started_at"):
        load_truth(path)
    path.write_text('["a list"]\n')
    with pytest.raises(ValueError, match="string 'case'"):
        load_truth(path)


def test_a_fresh_copy_gets_an_old_date_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    corpus = tmp_path / "cases"
    write(corpus / "fresh" / "log.simpleFoam", "End\n")
    old = write(corpus / "old" / "log.simpleFoam", "End\n")
    when = datetime(2019, 5, 6).timestamp()
    os.utime(old, (when, when))
    copy_corpus(corpus, tmp_path / "archive")
    users = tmp_path / "archive" / "real" / "corpus"
    assert (users / "fresh" / "log.simpleFoam").stat().st_mtime == OLD_MTIME
    assert (users / "old" / "log.simpleFoam").stat().st_mtime == when


# ---------------------------------------------------------------- end to end

BANNER = """\
/*---------------------------------------------------------------------------*\\
| =========                 |                                                 |
| \\\\      /  F ield         | OpenFOAM: The Open Source CFD Toolbox           |
|  \\\\    /   O peration     | Version:  v2312                                 |
|   \\\\  /    A nd           | Website:  www.openfoam.com                      |
|    \\\\/     M anipulation  |                                                 |
\\*---------------------------------------------------------------------------*/
Build  : _0123456789-20240101 OPENFOAM=2312 version=v2312
Arch   : "LSB;label=32;scalar=64"
Exec   : simpleFoam
Date   : Mar 12 2024
Time   : 14:02:33
Host   : node007
PID    : 4242
I/O    : uncollated
Case   : /scratch/someone/{case}
nProcs : 1
sigFpe : Enabling floating point exception trapping (FOAM_SIGFPE).

// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //
Create time

Create mesh for time = 0

"""
STEP = """\
Time = {step}

smoothSolver:  Solving for Ux, Initial residual = 0.5, Final residual = 0.01, No Iterations 2
GAMG:  Solving for p, Initial residual = 0.9, Final residual = 0.005, No Iterations 6
ExecutionTime = {execution:.2f} s  ClockTime = {step} s

"""
FATAL = """\
--> FOAM FATAL ERROR: (openfoam-2312)
cannot find file "/scratch/someone/broken/0/U"

    From Foam::fileOperations::uncollatedFileOperation::readStream(Foam::regIOobject&) const
    in file global/fileOperations/uncollatedFileOperation/uncollatedFileOperation.C at line 542.

FOAM exiting

"""
CONTROL_DICT = """\
FoamFile { version 2.0; format ascii; class dictionary; object controlDict; }
application     simpleFoam;
startTime       0;
endTime         3;
deltaT          1;
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tiny_corpus(root: Path) -> tuple[Path, Path]:
    """Two cases (one converged, one missing a field file) and a truth file with one error."""
    steps = "".join(STEP.format(step=n, execution=0.25 * n) for n in (1, 2, 3))
    write(root / "cases" / "converged" / "system" / "controlDict", CONTROL_DICT)
    write(
        root / "cases" / "converged" / "log.simpleFoam",
        BANNER.format(case="converged") + "Starting time loop\n\n" + steps + "End\n\n",
    )
    write(root / "cases" / "broken" / "system" / "controlDict", CONTROL_DICT)
    write(root / "cases" / "broken" / "log.simpleFoam", BANNER.format(case="broken") + FATAL)
    lines = [
        truth(
            "converged",
            solver_version="v2312",
            n_procs=8,  # wrong on purpose: the report must list it
            iterations_done=3,
            execution_time_s=0.75,
            clock_time_s=3,
        ),
        truth(
            "broken",
            status="failed",
            error_category="input_file",
            error_message_contains="cannot find file",
            iterations_done=0,
            execution_time_s=None,
            clock_time_s=None,
            n_procs=1,
        ),
    ]
    truth_file = write(root / "truth.jsonl", "".join(json.dumps(t) + "\n" for t in lines))
    return root / "cases", truth_file


def test_a_tiny_corpus_is_crawled_scored_and_reported(tmp_path: Path, capsys) -> None:
    cases, truth_file = tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "result.json"
    assert main([str(cases), str(truth_file), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())

    assert result["rows"] == 2 and result["quarantined"] == 0
    assert [c["found"] for c in result["cases"]] == [True, True]
    assert result["headline"]["status"]["strict"] == 2
    assert result["headline"]["error_category"]["strict"] == 2
    converged = next(c for c in result["cases"] if c["case"] == "converged")
    assert "n_procs" in converged["wrong"]
    wrong = next(c for c in converged["checks"] if c["field"] == "n_procs")
    assert wrong["expected"] == 8 and wrong["got"] != 8
    # 2 cases × 10 fields, less broken's null clock time; application once runs has the column.
    application = next(f for f in result["fields"] if f["field"] == "application")
    assert result["overall"]["scored"] == 19 + application["scored"]

    assert "Headline (strict): status 2/2 (100.0 %), error_category 2/2 (100.0 %)" in printed
    assert "converged   log read: log.simpleFoam" in printed
    assert "expected 8" in printed
    if not application["scored"]:
        assert "not scored: runs has no application column" in printed
