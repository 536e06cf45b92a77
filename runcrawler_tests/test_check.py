"""`runcrawler check`: a run's settings against a crawled demo team's history, as a job script
runs it: the verdict in the exit code, every error a one-line message and exit code 3."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.analytics.setting_effects.tables import SETTINGS
from runcrawler_assets.analytics.store import refresh
from runcrawler_assets.checking import EXIT_ERROR, NEAREST_FAILURES, VERDICTS
from runcrawler_assets.cli import main
from runcrawler_assets.demo import KNOBS
from runcrawler_assets.warehouse.database import connect
from runcrawler_tests.conftest import DemoWarehouse

# The analyses whose tables `check` reads (`runs` aside).
EVIDENCE_ANALYSES = ("setting_effects", "version_effects", "fixes")
WAREHOUSE = "runcrawler.duckdb"


def _copy_warehouse(demo: DemoWarehouse, data: Path) -> Path:
    """A data folder of its own holding a copy of the session's crawled demo warehouse."""
    data.mkdir(parents=True)
    shutil.copyfile(demo.settings.duckdb_path, data / WAREHOUSE)
    return data


@pytest.fixture(scope="module")
def analysed(demo_warehouse: DemoWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder: the demo warehouse with the analytics `check` reads, as a crawl leaves it."""
    data = _copy_warehouse(demo_warehouse, tmp_path_factory.mktemp("check") / "data")
    with connect(data / WAREHOUSE) as con:
        for analysis in ANALYSES:
            if analysis.name in EVIDENCE_ANALYSES:
                refresh(con, analysis)
    return data


def check(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["check", *map(str, args)])


def _labels_sql() -> str:
    return ", ".join(f'{s.value_sql} AS "{s.name}"' for s in SETTINGS)


def _one_row(data: Path, sql: str, params: list[object] | None = None) -> tuple:
    with duckdb.connect(str(data / WAREHOUSE), read_only=True) as con:
        rows = con.execute(sql, params or []).fetchall()
    assert rows, sql
    return rows[0]


def _risky_failure(data: Path) -> str:
    """A demo run that failed with both settings the demo makes fail: a high CFL, no_artvisc."""
    [path] = _one_row(
        data,
        "SELECT run_path FROM runs WHERE solver = 'avbp' AND status = 'failed' AND cfl > ? "
        "AND artificial_viscosity_model = 'no_artvisc' ORDER BY run_path LIMIT 1",
        [KNOBS.high_cfl_threshold],
    )
    return path


def _params_copy(demo: DemoWarehouse, run_path: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    target = into / "run.params"
    shutil.copyfile(demo.settings.archive_root / run_path / "run.params", target)
    return target


def _set_keyword(params: Path, keyword: str, value: str) -> None:
    """Edit `keyword = ...` (any case) in a run.params, as a user would."""
    text = params.read_text(encoding="utf-8")
    edited, count = re.subn(
        rf"^(\s*{re.escape(keyword)}\s*=\s*)[^!#\n]*", rf"\g<1>{value}", text, flags=re.I | re.M
    )
    assert count, keyword
    params.write_text(edited, encoding="utf-8")


def _flagged_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.lstrip().startswith("!")]


def _one_line_error(result: Result) -> str:
    assert result.exit_code == EXIT_ERROR, result.output
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()[-1:]
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [line], result.output
    return line


def test_a_run_that_failed_with_a_flagged_setting_is_warned_about(
    analysed: Path, demo_warehouse: DemoWarehouse, tmp_path: Path
):
    params = _params_copy(demo_warehouse, _risky_failure(analysed), tmp_path)
    result = check(params, "--data", analysed)
    assert result.exit_code in (VERDICTS["warning"], VERDICTS["likely_failure"]), result.output
    flagged = " ".join(_flagged_lines(result.output))
    assert "cfl" in flagged or "artificial_viscosity_model no_artvisc" in flagged, result.output
    assert result.output.splitlines()[0].startswith(("WARNING", "LIKELY FAILURE"))


def test_the_labels_are_those_the_team_s_run_has(
    analysed: Path, demo_warehouse: DemoWarehouse, tmp_path: Path
):
    run_path = _risky_failure(analysed)
    params = _params_copy(demo_warehouse, run_path, tmp_path)
    report = json.loads(check(params, "--data", analysed, "--json").output)
    theirs = _one_row(analysed, f"SELECT {_labels_sql()} FROM runs WHERE run_path = ?", [run_path])
    assert report["labels"] == dict(zip([s.name for s in SETTINGS], theirs, strict=True))
    # It is one of the team's runs: it is among its own nearest failures, every label alike.
    [nearest, *_] = report["evidence"]["nearest_failures"]
    assert nearest["settings_alike"] == len(SETTINGS) and not nearest["differing"]
    assert report["evidence"]["same_settings"]["failed_runs"] >= 1


def _safest_value(con: duckdb.DuckDBPyConnection, setting: str) -> str:
    """A run.params value of `setting` from a team's run whose label fails least."""
    rows = con.execute(
        f"""
        WITH safest AS (
            SELECT value FROM setting_effects
            WHERE setting = $setting AND failure_ratio < 1 AND NOT isnan(failure_ratio)
            ORDER BY failure_ratio LIMIT 1
        ),
        labelled AS (SELECT params, {_labels_sql()} FROM runs WHERE solver = 'avbp')
        SELECT json_extract_string(params, '$.' || $setting)
        FROM labelled UNPIVOT (label FOR setting IN ({", ".join(f'"{s.name}"' for s in SETTINGS)}))
        WHERE setting = $setting AND label = (SELECT value FROM safest)
              AND json_extract_string(params, '$.' || $setting) IS NOT NULL
        LIMIT 1
        """,
        {"setting": setting},
    ).fetchall()
    assert rows, setting
    return rows[0][0]


def test_settings_that_fail_least_are_ok(
    analysed: Path, demo_warehouse: DemoWarehouse, tmp_path: Path
):
    params = _params_copy(demo_warehouse, _risky_failure(analysed), tmp_path)
    with duckdb.connect(str(analysed / WAREHOUSE), read_only=True) as con:
        for setting in SETTINGS:
            _set_keyword(params, setting.name, _safest_value(con, setting.name))
        [(version,)] = con.execute(
            "SELECT solver_version FROM version_effects WHERE solver = 'avbp' "
            "AND failure_ratio < 1 ORDER BY failure_ratio LIMIT 1"
        ).fetchall()
    result = check(params, "--data", analysed, "--solver-version", version)
    assert result.exit_code == VERDICTS["ok"], result.output
    assert result.output.startswith("OK") and not _flagged_lines(result.output)


def test_json_holds_the_verdict_and_the_evidence(
    analysed: Path, demo_warehouse: DemoWarehouse, tmp_path: Path
):
    params = _params_copy(demo_warehouse, _risky_failure(analysed), tmp_path)
    result = check(params, "--data", analysed, "--json", "--solver-version", "7.14.0")
    report = json.loads(result.output)
    assert {"verdict", "path", "solver", "settings", "evidence"} <= set(report)
    assert VERDICTS[report["verdict"]] == result.exit_code
    assert report["solver"] == "avbp" and report["path"] == str(params)
    assert report["settings"]["cfl"] > KNOBS.high_cfl_threshold
    evidence = report["evidence"]
    assert [v["setting"] for v in evidence["setting_values"]] == [s.name for s in SETTINGS]
    assert evidence["version"]["value"] == "avbp 7.14.0"
    assert 0 < len(evidence["nearest_failures"]) <= NEAREST_FAILURES
    for failure in evidence["nearest_failures"]:
        assert failure["status"] in ("failed", "killed") and failure["error"]
        assert failure["fix"] is None or failure["fix"]["fixing_run_path"]
    assert evidence["missing"] == [] and report["reasons"]


def test_without_analytics_the_missing_tables_are_named_and_skipped(
    demo_warehouse: DemoWarehouse, tmp_path: Path
):
    data = _copy_warehouse(demo_warehouse, tmp_path / "data")
    params = _params_copy(demo_warehouse, _risky_failure(data), tmp_path / "run")
    result = check(params, "--data", data, "--solver-version", "7.14.0")
    assert result.exit_code in VERDICTS.values(), result.output
    for table in EVIDENCE_ANALYSES:
        assert f"not computed yet (run `runcrawler crawl` with its analytics): {table}" in (
            result.output
        )
    report = json.loads(check(params, "--data", data, "--json").output)
    assert report["evidence"]["setting_values"] is None
    assert report["evidence"]["same_settings"]["runs"] >= 1


def test_a_run_folder_is_read_as_its_run_params(
    analysed: Path, demo_warehouse: DemoWarehouse, tmp_path: Path
):
    params = _params_copy(demo_warehouse, _risky_failure(analysed), tmp_path)
    by_file = json.loads(check(params, "--data", analysed, "--json").output)
    by_folder = json.loads(check(tmp_path, "--data", analysed, "--json").output)
    assert by_folder == by_file


def test_an_openfoam_case_is_checked_against_its_solver_s_runs(analysed: Path, tmp_path: Path):
    control = tmp_path / "case" / "system" / "controlDict"
    control.parent.mkdir(parents=True)
    control.write_text(
        "application pimpleFoam;\nstartTime 0;\nendTime 0.1;\ndeltaT 1e-5;\n"
        "adjustTimeStep yes;\nmaxCo 0.5;\n",
        encoding="utf-8",
    )
    report = json.loads(check(tmp_path / "case", "--data", analysed, "--json").output)
    assert report["solver"] == "openfoam" and report["settings"]["cfl"] == 0.5
    assert report["labels"]["cfl"] == next(
        label for label in _cfl_labels() if label.startswith("≤")
    )
    # Only OpenFOAM runs are its record and its past failures (the demo may hold none).
    runs, failed = _one_row(
        analysed,
        "SELECT count(*), count(*) FILTER (WHERE status IN ('failed', 'killed')) FROM runs "
        "WHERE solver = 'openfoam'",
    )
    assert report["evidence"]["same_settings"]["runs"] <= runs
    assert len(report["evidence"]["nearest_failures"]) <= failed
    assert report["verdict"] in VERDICTS
    by_dictionary = json.loads(check(control, "--data", analysed, "--json").output)
    assert by_dictionary["labels"] == report["labels"]


def _cfl_labels() -> tuple[str, ...]:
    return next(s for s in SETTINGS if s.name == "cfl").order


def test_the_help_documents_the_exit_codes():
    result = CliRunner().invoke(main, ["check", "--help"])
    assert result.exit_code == 0
    for verdict, code in VERDICTS.items():
        assert re.search(rf"^\s+{code}\s+{verdict}:", result.output, re.M), verdict
    assert re.search(rf"^\s+{EXIT_ERROR}\s+no check", result.output, re.M)


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "run.params"
    path.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00CFL = 0.7\n" + bytes(range(256)))
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "run.params"
    path.touch()
    return path


def _no_keyword(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\nabout the run\n", encoding="utf-8")
    return path


def _empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "nothing").mkdir()
    return tmp_path / "nothing"


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_binary, "binary"),
        (_empty, "no `keyword = value`"),
        (_no_keyword, "no `keyword = value`"),
        (lambda tmp: tmp / "missing" / "run.params", "does not exist"),
        (_empty_folder, "neither run.params"),
    ],
    ids=["binary", "empty", "no-keyword", "missing", "empty-folder"],
)
def test_what_is_not_a_run_s_settings_ends_with_one_line_and_exit_3(
    make, said: str, analysed: Path, tmp_path: Path
):
    assert said in _one_line_error(check(make(tmp_path), "--data", analysed))


@pytest.mark.parametrize("wait", ["soon", "-1"])
def test_a_bad_wait_exits_3(wait: str, analysed: Path, tmp_path: Path):
    result = check(_empty(tmp_path), "--data", analysed, "--wait", wait)
    assert result.exit_code == EXIT_ERROR and "--wait" in result.output


def test_usage_errors_exit_3_not_the_likely_failure_code():
    assert CliRunner().invoke(main, ["check"]).exit_code == EXIT_ERROR
    assert CliRunner().invoke(main, ["check", "a", "--no-such-option"]).exit_code == EXIT_ERROR


def test_no_warehouse_says_to_crawl_first(
    demo_warehouse: DemoWarehouse, analysed: Path, tmp_path: Path
):
    params = _params_copy(demo_warehouse, _risky_failure(analysed), tmp_path)
    line = _one_line_error(check(params, "--data", tmp_path / "no-data"))
    assert "no warehouse at" in line and "runcrawler crawl" in line


def test_a_warehouse_held_by_a_writer_ends_within_the_wait(
    demo_warehouse: DemoWarehouse, analysed: Path, tmp_path: Path
):
    params = _params_copy(demo_warehouse, _risky_failure(analysed), tmp_path / "run")
    data = _copy_warehouse(demo_warehouse, tmp_path / "data")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            f"con = duckdb.connect({str(data / WAREHOUSE)!r})\n"
            "print('holding', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        line = _one_line_error(check(params, "--data", data, "--wait", "1"))
        assert time.monotonic() - started < 10
        assert "in use" in line
    finally:
        holder.kill()
        holder.wait()
