"""config.py: every variable read and checked in one place, and nothing read at import."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from runcrawler_assets.config import BIG_ARCHIVE_RUNS, VARIABLES, Config, ConfigError, Layout
from runcrawler_assets.errors import RuncrawlerError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "runcrawler_assets"

# Bad values of every variable that can have one; the others take any text.
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "RUNCRAWLER_LAYOUT": ("flat", "Cluster/User", "cluster/user/"),
    "RUNCRAWLER_MAX_JOB_DAYS": ("abc", "0", "-3", "nan", "inf"),
    "RUNCRAWLER_WORKERS": ("abc", "0", "-1", "1.5"),
    "RUNCRAWLER_ANALYTICS_MEMORY": (
        "abc",
        "256",
        "63MB",
        "0.06GB",
        "-1GB",
        "1 gigabyte",
        "80%",
        "automatic",
    ),
    "RUNCRAWLER_SENSOR_INTERVAL": ("abc", "4", "0", "1.5"),
    "RUNCRAWLER_AUTOMATION_INTERVAL": ("abc", "1", "-30"),
    "RUNCRAWLER_AUTOMATION": ("maybe", "offf", "2"),
    "RUNCRAWLER_DIGEST_CRON": ("weekly", "0 7 * *", "0 7 * * 1 *", "0 7 ; * 1"),
    "RUNCRAWLER_SMTP_PORT": ("abc", "0", "65536", "-25", "25.5"),
    "RUNCRAWLER_SMTP_SECURITY": ("ssl", "yes", "start tls"),
    "RUNCRAWLER_WEBHOOK_KIND": ("discord", "email", "slack,teams"),
}
ANY_TEXT = {
    "RUNCRAWLER_ARCHIVE",
    "RUNCRAWLER_DATA",
    "RUNCRAWLER_CLUSTER",
    "RUNCRAWLER_USER",
    "RUNCRAWLER_PSEUDONYM_KEY",
    "RUNCRAWLER_ACCOUNTING",  # a folder: checked to exist by `check_archive`
    "RUNCRAWLER_RULES",  # files: read (and refused with their problem) when used
    "RUNCRAWLER_RECIPIENTS",
    "RUNCRAWLER_SMTP_HOST",
    "RUNCRAWLER_SMTP_USER",
    "RUNCRAWLER_SMTP_PASSWORD",
    "RUNCRAWLER_SMTP_FROM",
    "RUNCRAWLER_WEBHOOK_URL",
    "DAGSTER_HOME",
}
BAD = [(name, value) for name, values in BAD_VALUES.items() for value in values]


def test_every_variable_is_tested_for_its_bad_values_or_takes_any_text():
    assert set(BAD_VALUES) | ANY_TEXT == set(VARIABLES)
    assert not set(BAD_VALUES) & ANY_TEXT


def test_the_config_comes_from_the_environment(tmp_path):
    env = {
        "RUNCRAWLER_ARCHIVE": str(tmp_path / "archive"),
        "RUNCRAWLER_DATA": str(tmp_path / "data"),
        "RUNCRAWLER_LAYOUT": "single",
        "RUNCRAWLER_CLUSTER": "kraken",
        "RUNCRAWLER_WORKERS": "4",
        "RUNCRAWLER_SENSOR_INTERVAL": "15",
        "RUNCRAWLER_AUTOMATION": "OFF",
        "RUNCRAWLER_ANALYTICS_MEMORY": " 1.5gib ",
    }
    config = Config.from_env(env)
    assert config.archive_root == tmp_path / "archive"
    assert config.duckdb_path == tmp_path / "data" / "runcrawler.duckdb"
    assert config.layout is Layout.SINGLE
    assert config.user_name == "archive"
    assert (config.parse_workers, config.sensor_interval_seconds) == (4, 15)
    assert config.automation_on is False
    assert config.analytics_memory == "1.5GiB"  # as DuckDB spells it
    assert config.analytics_memory_for(BIG_ARCHIVE_RUNS) == "1.5GiB"  # whatever the size


def test_unset_and_empty_variables_take_the_defaults():
    unset, empty = Config.from_env({}), Config.from_env(dict.fromkeys(VARIABLES, ""))
    assert unset == empty
    assert unset.archive_root == Path("demo_archive").absolute()
    assert unset.layout is Layout.CLUSTER_USER
    assert (unset.max_job_days, unset.parse_workers) == (7, 2)
    assert (unset.sensor_interval_seconds, unset.automation_interval_seconds) == (60, 30)
    assert unset.automation_on is True
    assert unset.analytics_memory is None  # auto
    assert unset == Config.from_env({"RUNCRAWLER_ANALYTICS_MEMORY": " Auto "})


@pytest.mark.parametrize(
    ("runs", "memory"),
    [
        (0, "256MB"),
        (20_000, "256MB"),
        (BIG_ARCHIVE_RUNS - 1, "256MB"),
        (BIG_ARCHIVE_RUNS, "128MB"),
        (1_000_000, "128MB"),
    ],
)
def test_the_analytics_memory_by_default_follows_the_archives_size(runs: int, memory: str):
    """Unset (`auto`), a big archive's analytics get less memory: a million runs within
    500 MB (issue 16); a smaller one's are quicker with more."""
    assert Config.from_env({}).analytics_memory_for(runs) == memory


def test_a_config_built_in_code_has_the_defaults_of_an_empty_environment(tmp_path):
    built = Config(archive_root=tmp_path, data_dir=tmp_path / "data")
    read = Config.from_env(
        {"RUNCRAWLER_ARCHIVE": str(tmp_path), "RUNCRAWLER_DATA": str(built.data_dir)}
    )
    assert built == read


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_bad_value_is_refused_in_one_line_naming_the_variable_and_what_it_may_hold(name, value):
    with pytest.raises(ConfigError) as refused:
        Config.from_env({name: value})
    message = str(refused.value)
    assert message == f"{name}={value!r} is not {VARIABLES[name].allowed}"
    assert "\n" not in message


@pytest.mark.parametrize("name", sorted(ANY_TEXT))
def test_a_variable_that_takes_any_text_takes_odd_text(name):
    Config.from_env({name: "odd value: ünïcode, spaces/and ' quotes"})


def test_every_bad_variable_is_named_in_the_one_error():
    with pytest.raises(ConfigError) as refused:
        Config.from_env({"RUNCRAWLER_LAYOUT": "flat", "RUNCRAWLER_WORKERS": "0"})
    message = str(refused.value)
    assert "RUNCRAWLER_LAYOUT='flat'" in message and "RUNCRAWLER_WORKERS='0'" in message
    assert "\n" not in message


def test_a_config_error_is_a_runcrawler_error_the_cli_exits_2_for():
    assert issubclass(ConfigError, RuncrawlerError)
    assert ConfigError.exit_code == 2
    assert issubclass(ConfigError, ValueError)  # what callers caught before


def test_a_multi_line_value_still_gives_a_one_line_error():
    with pytest.raises(ConfigError, match="RUNCRAWLER_LAYOUT") as refused:
        Config.from_env({"RUNCRAWLER_LAYOUT": "cluster/user\nuser"})
    assert "\n" not in str(refused.value)


def test_overrides_replace_the_environment_which_is_then_not_read():
    config = Config.from_env({"RUNCRAWLER_LAYOUT": "flat"}, overrides={"RUNCRAWLER_LAYOUT": "user"})
    assert config.layout is Layout.USER
    with pytest.raises(TypeError, match="RUNCRAWLER_NOPE"):
        Config.from_env({}, overrides={"RUNCRAWLER_NOPE": "1"})


def test_a_missing_archive_is_an_actionable_error(tmp_path):
    config = Config(archive_root=tmp_path / "nope", data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match="RUNCRAWLER_ARCHIVE"):
        config.check_archive()


def test_a_data_folder_inside_the_archive_is_refused(tmp_path):
    config = Config(archive_root=tmp_path, data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match="never writes into the archive"):
        config.check_archive()


def test_the_longest_plausible_job_defaults_to_a_week_and_can_be_set():
    assert Config.from_env({}).max_job_days == 7
    assert Config.from_env({"RUNCRAWLER_MAX_JOB_DAYS": "30"}).max_job_duration.days == 30


def test_dagster_home_defaults_to_the_data_folder_and_follows_it(tmp_path):
    config = Config.from_env({"RUNCRAWLER_DATA": str(tmp_path / "data")})
    assert config.dagster_home == tmp_path / "data" / "dagster_home"
    moved = replace(config, data_dir=tmp_path / "elsewhere")
    assert moved.dagster_home == tmp_path / "elsewhere" / "dagster_home"
    explicit = Config.from_env({"DAGSTER_HOME": str(tmp_path / "home")})
    assert replace(explicit, data_dir=tmp_path / "x").dagster_home == tmp_path / "home"


def test_a_config_comes_back_from_its_variables_without_its_secret(tmp_path):
    config = Config.from_env(
        {
            "RUNCRAWLER_ARCHIVE": str(tmp_path),
            "RUNCRAWLER_LAYOUT": "user",
            "RUNCRAWLER_MAX_JOB_DAYS": "2.5",
            "RUNCRAWLER_AUTOMATION": "no",
            "RUNCRAWLER_PSEUDONYM_KEY": "team-secret",
            "DAGSTER_HOME": str(tmp_path / "home"),
        }
    )
    variables = config.to_env()
    assert "RUNCRAWLER_PSEUDONYM_KEY" not in variables
    assert Config.from_env(variables) == replace(config, pseudonym_key="")
    assert "team-secret" not in repr(config)


def test_bad_variables_at_load_are_logged_and_taken_at_their_defaults(caplog):
    with caplog.at_level(logging.WARNING, logger="runcrawler_assets.config"):
        config = Config.from_env_or_defaults(
            {"RUNCRAWLER_SENSOR_INTERVAL": "abc", "RUNCRAWLER_AUTOMATION": "off"}
        )
    assert (config.sensor_interval_seconds, config.automation_on) == (60, False)
    assert "RUNCRAWLER_SENSOR_INTERVAL='abc' is not a whole number of seconds (>= 5)" in caplog.text


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
    )


def test_nothing_is_read_when_config_is_imported():
    code = (
        "import runcrawler_assets.config as config\nprint('imported')\nconfig.Config.from_env()\n"
    )
    done = _python(code, RUNCRAWLER_LAYOUT="flat", RUNCRAWLER_SENSOR_INTERVAL="abc")
    assert done.stdout == "imported\n"
    assert "ConfigError: RUNCRAWLER_LAYOUT='flat'" in done.stderr


def test_the_code_location_loads_with_bad_variables_and_says_so():
    code = (
        "from runcrawler_assets.definitions import defs\n"
        "print(defs.resolve_sensor_def('archive_sensor').minimum_interval_seconds)\n"
    )
    done = _python(code, RUNCRAWLER_SENSOR_INTERVAL="abc", RUNCRAWLER_LAYOUT="flat")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["60"]
    assert "RUNCRAWLER_SENSOR_INTERVAL='abc' is not a whole number of seconds" in done.stderr
    assert "RUNCRAWLER_LAYOUT='flat' is not one of" in done.stderr


def test_the_resource_holds_the_variables_as_given_and_refuses_a_bad_one_on_use(monkeypatch):
    from runcrawler_assets.defs.resources import ConfigResource

    monkeypatch.setenv("RUNCRAWLER_LAYOUT", "flat")
    monkeypatch.setenv("RUNCRAWLER_PSEUDONYM_KEY", "team-secret")
    resource = ConfigResource.from_env()
    assert resource.variables == {"RUNCRAWLER_LAYOUT": "flat"}  # the secret is not shown
    with pytest.raises(ConfigError, match="RUNCRAWLER_LAYOUT='flat' is not one of"):
        _ = resource.config


def test_a_sensor_tick_with_a_bad_variable_fails_with_its_message():
    from dagster import DagsterInstance, build_sensor_context

    from runcrawler_assets.defs.resources import ConfigResource
    from runcrawler_assets.defs.sensors import archive_sensor

    resource = ConfigResource(variables={"RUNCRAWLER_LAYOUT": "flat"})
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(), resources={"settings": resource}
    )
    with pytest.raises(ConfigError, match="RUNCRAWLER_LAYOUT='flat' is not one of"):
        archive_sensor(context)


def test_the_resource_gives_its_config_back_and_the_secret_from_the_environment(
    tmp_path, monkeypatch
):
    from runcrawler_assets.defs.resources import ConfigResource

    monkeypatch.setenv("RUNCRAWLER_PSEUDONYM_KEY", "team-secret")
    config = Config(tmp_path, tmp_path / "data", Layout.USER, max_job_days=3.0)
    resource = ConfigResource.from_config(config, parse_workers=1)
    assert resource.config == replace(config, parse_workers=1, pseudonym_key="team-secret")
    assert "team-secret" not in str(resource.variables)


def test_only_config_reads_the_environment():
    readers = [
        path.relative_to(REPO)
        for path in PACKAGE.rglob("*.py")
        if path.name != "config.py" and re.search(r"\bos\.environ\b|getenv\(", path.read_text())
    ]
    assert readers == []


def _readme_variables() -> set[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("| variable | meaning | default |", 1)[1].split("\n\n", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([A-Z_]+)`", cell)}


def test_the_readme_table_lists_every_variable_config_reads():
    assert _readme_variables() == set(VARIABLES)
