"""The `runcrawler` command as a new user runs it."""

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from runcrawler_assets.cli import main
from runcrawler_assets.demo.avbp import generate_archive


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One crawled demo archive for the module (DAGSTER_HOME unset: DATA/dagster_home)."""
    base = tmp_path_factory.mktemp("cli")
    archive, data = base / "archive", base / "data"
    generate_archive(archive, runs=80, seed=4)
    result = CliRunner().invoke(main, ["crawl", "--archive", str(archive), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "80 runs found" in result.stdout and "80 parsed" in result.stdout
    return data


def test_a_second_crawl_parses_nothing(crawled: Path):
    archive = crawled.parent / "archive"
    result = CliRunner().invoke(main, ["crawl", "--archive", str(archive), "--data", str(crawled)])
    assert result.exit_code == 0, result.output
    assert "0 parsed, 80 unchanged" in result.stdout


def test_the_crawl_is_recorded_in_the_dagster_instance(crawled: Path):
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(crawled / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert runs and all(r.tags.get("runcrawler/trigger") == "cli" for r in runs)


def test_crawl_builds_the_analytics_and_the_report(crawled: Path):
    with duckdb.connect(str(crawled / "runcrawler.duckdb"), read_only=True) as con:
        counted = con.execute("SELECT sum(runs) FROM error_categories").fetchone()[0]
        finished = "SELECT count(*) FROM runs WHERE error_category IS NOT NULL"
        assert counted == con.execute(finished).fetchone()[0] > 60
    assert (crawled / "charts" / "err_type.png").stat().st_size > 1000
    assert "<html" in (crawled / "report.html").read_text()


def test_report_narrows_to_a_user_and_a_period(crawled: Path, tmp_path: Path):
    out = tmp_path / "oneil.html"
    args = ["report", "--data", str(crawled), "--user", "o'neil", "--since", "2025-01-01"]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "user o&#x27;neil" in page and "since 2025-01-01" in page


def test_report_without_a_crawl_says_what_to_do(tmp_path: Path):
    result = CliRunner().invoke(main, ["report", "--data", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "run `runcrawler crawl` first" in result.output


def test_crawl_of_a_missing_archive_says_what_to_set(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["crawl", "--archive", str(tmp_path / "nope"), "--data", str(tmp_path / "d")]
    )
    assert result.exit_code == 1
    assert "RUNCRAWLER_ARCHIVE" in result.output


def test_every_command_has_help():
    for command in ([], ["crawl"], ["report"], ["demo-archive"]):
        result = CliRunner().invoke(main, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_export_writes_parquet_that_reads_back_as_the_table(crawled: Path, tmp_path: Path):
    out = tmp_path / "runs.parquet"
    args = ["export", "--data", str(crawled), "--format", "parquet", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with duckdb.connect() as con:
        exported = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchall()
    assert exported == [(80,)]


def test_export_of_an_unknown_table_lists_the_tables(crawled: Path):
    result = CliRunner().invoke(main, ["export", "--data", str(crawled), "--table", "nope"])
    assert result.exit_code == 1
    assert "error_categories" in result.output


def test_a_mixed_avbp_and_openfoam_archive_goes_through_crawl_and_report(tmp_path: Path):
    archive, data, truth = tmp_path / "mixed", tmp_path / "data", tmp_path / "truth.jsonl"
    runner = CliRunner()
    made = runner.invoke(
        main,
        ["demo-archive", str(archive), "--runs", "40", "--openfoam", "18", "--truth", str(truth)],
    )
    assert made.exit_code == 0, made.output
    assert len(truth.read_text().splitlines()) == 58
    crawled = runner.invoke(main, ["crawl", "--archive", str(archive), "--data", str(data)])
    assert crawled.exit_code == 0, crawled.output
    with duckdb.connect(str(data / "runcrawler.duckdb"), read_only=True) as con:
        solvers = dict(con.execute("SELECT solver, count(*) FROM runs GROUP BY ALL").fetchall())
    assert solvers == {"avbp": 40, "openfoam": 18}
    page = (data / "report.html").read_text()
    assert "Runs per solver: 40 avbp, 18 openfoam." in page
    assert (data / "charts" / "efficiency_vs_procs_openfoam.png").is_file()
    only = tmp_path / "foam.html"
    narrowed = runner.invoke(
        main, ["report", "--data", str(data), "--solver", "openfoam", "--out", str(only)]
    )
    assert narrowed.exit_code == 0, narrowed.output
    assert "solver openfoam" in only.read_text()
