"""The `runcrawler` command as a new user runs it."""

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from runcrawler_assets.cli import main
from runcrawler_assets.demo import generate_archive
from runcrawler_tests.test_config import BAD_VALUES

REPO = Path(__file__).resolve().parents[1]
# The installed command when there is one, else the same entry point through Python.
SCRIPT = Path(sys.executable).with_name("runcrawler")
COMMAND = (
    [str(SCRIPT)]
    if SCRIPT.is_file()
    else [sys.executable, "-c", "from runcrawler_assets.cli import main; main()"]
)
COMMANDS = sorted(main.commands)
# The commands that read the config (demo-archive reads no variable).
CONFIG_COMMANDS = ["crawl", "export", "report"]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`runcrawler ARGS` in a clean environment: only `env` among runcrawler's variables."""
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), **env},
    )


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


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


def test_a_failed_step_is_named_with_its_error_and_made_by_the_next_crawl(tmp_path: Path):
    """A rules file with a rule lacking its hint fails the hints step: the crawl exits 1
    saying which asset failed and why (the asset's own error, not Dagster's wrapper around
    it), and calls nothing "unchanged" (the hints were not: they failed). The next crawl,
    though no run changed, makes them: a crawl does not rest while a step owes its asset."""
    archive, data, rules = tmp_path / "archive", tmp_path / "data", tmp_path / "rules.toml"
    generate_archive(archive, runs=20, seed=5)
    rules.write_text('[[rule]]\nname = "no_hint"\nwhen = "x"\n', encoding="utf-8")
    result = CliRunner(env={"RUNCRAWLER_RULES": str(rules)}).invoke(
        main, ["crawl", "--archive", str(archive), "--data", str(data)]
    )
    assert result.exit_code == 1, result.output
    assert "20 runs found" in result.stdout  # the ingest before it was done
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith(
        "Error: hints failed (RulesError: rule 'no_hint': 'hint' is missing or not a text)"
    )
    assert "skipped" not in result.stderr
    with duckdb.connect(str(data / "runcrawler.duckdb"), read_only=True) as con:
        tables = {
            name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
    assert "hints" not in tables

    # The rules mended, the next crawl makes the hints (nothing else changed), then rests.
    crawl = ["crawl", "--archive", str(archive), "--data", str(data)]
    again = CliRunner().invoke(main, crawl)
    assert again.exit_code == 0, again.output
    with duckdb.connect(str(data / "runcrawler.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM hints").fetchone()[0] > 0
    rest = CliRunner().invoke(main, crawl)
    assert rest.exit_code == 0, rest.output
    assert "skipped: nothing changed since the last crawl" in rest.stderr


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
    assert "crawl the archive first" in result.output and "RUNCRAWLER_DATA" in result.output


def test_a_pseudonymized_report_without_a_key_says_what_to_set(crawled: Path):
    result = CliRunner().invoke(main, ["report", "--data", str(crawled), "--pseudonymize"])
    assert result.exit_code == 1
    assert "set RUNCRAWLER_PSEUDONYM_KEY" in result.output


def test_crawl_of_a_missing_archive_says_what_to_set(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["crawl", "--archive", str(tmp_path / "nope"), "--data", str(tmp_path / "d")]
    )
    assert result.exit_code == 2
    assert "RUNCRAWLER_ARCHIVE" in result.output


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_every_command_has_help(command: list[str]):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_version_comes_from_the_package_metadata():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"runcrawler, version {version('runcrawler')}"


def test_help_lists_the_variable_each_option_stands_for():
    for name, command in main.commands.items():
        result = CliRunner().invoke(main, [name, "--help"], terminal_width=400)
        for param in command.params:
            if param.envvar:
                assert f"env var: {param.envvar}" in result.output, (name, param.name)
    crawl_help = CliRunner().invoke(main, ["crawl", "--help"], terminal_width=400).output
    for variable in ("ARCHIVE", "DATA", "LAYOUT", "WORKERS"):
        assert f"env var: RUNCRAWLER_{variable}" in crawl_help


def test_help_imports_neither_dagster_nor_pandas():
    code = (
        "import sys\n"
        "from runcrawler_assets.cli import main\n"
        "try:\n"
        "    main(['crawl', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('LOADED', *sorted(m for m in ('dagster', 'pandas', 'duckdb') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.stdout.splitlines()[-1] == "LOADED", done.stderr


def _readme_commands() -> set[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return {
        m for line in block.splitlines() for m in re.findall(r"runcrawler ([a-z][a-z-]*)", line)
    }


def test_the_readme_lists_the_commands_help_lists(tmp_path: Path):
    done = run_cli("--help", cwd=tmp_path)
    listed = done.stdout.split("Commands:", 1)[1].splitlines()
    commands = {line.split()[0] for line in listed if line.strip()}
    assert commands == set(COMMANDS)
    assert _readme_commands() == commands


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
@pytest.mark.parametrize(("name", "value"), [(n, values[0]) for n, values in BAD_VALUES.items()])
def test_a_bad_variable_ends_every_command_with_one_line_naming_it(
    command: str, name: str, value: str, tmp_path: Path
):
    done = run_cli(command, cwd=tmp_path, **{name: value})
    assert done.returncode == 2
    [error] = error_lines(done.stderr)
    assert name in error and repr(value) in error


@pytest.mark.parametrize(
    ("command", "name", "code"),
    [
        ("crawl", "RUNCRAWLER_ARCHIVE", 2),
        ("report", "RUNCRAWLER_DATA", 1),
        ("export", "RUNCRAWLER_DATA", 1),
    ],
)
def test_a_missing_folder_ends_the_command_with_one_line_naming_its_variable(
    command: str, name: str, code: int, tmp_path: Path
):
    done = run_cli(command, cwd=tmp_path, **{name: str(tmp_path / "nope")})
    assert done.returncode == code
    [error] = error_lines(done.stderr)
    assert name in error


def test_demo_archive_into_a_non_empty_folder_ends_with_one_line(tmp_path: Path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    done = run_cli("demo-archive", "taken", cwd=tmp_path)
    assert done.returncode == 1
    [error] = error_lines(done.stderr)
    assert "is not empty" in error


def test_demo_archive_reads_no_variable(tmp_path: Path):
    bad = {name: values[0] for name, values in BAD_VALUES.items()}
    done = run_cli("demo-archive", "archive", "--runs", "3", cwd=tmp_path, **bad)
    assert done.returncode == 0, done.stderr


def test_a_bad_option_value_names_the_option_and_its_variable():
    result = CliRunner().invoke(main, ["crawl", "--layout", "flat"])
    assert result.exit_code == 2
    assert "'--layout' (env var: 'RUNCRAWLER_LAYOUT'): 'flat' is not one of" in result.output


def test_an_option_given_wins_over_its_bad_variable(tmp_path: Path):
    result = CliRunner(env={"RUNCRAWLER_LAYOUT": "flat"}).invoke(
        main, ["crawl", "--layout", "user", "--archive", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2
    assert "archive folder" in result.output and "flat" not in result.output


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
