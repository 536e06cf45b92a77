"""The Dagster definitions load, and say what a user of the UI needs to see."""

import ast
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus, FreshnessPolicy

import runcrawler_assets
from runcrawler_assets.config import Config
from runcrawler_assets.definitions import build_definitions
from runcrawler_tests.system_programs import require

PACKAGE = Path(runcrawler_assets.__file__).parent
REPO = PACKAGE.parent

INGEST = ["run_files", "parsed_runs", "runs", "quarantine"]


def defs(tmp_path):
    return build_definitions(Config(archive_root=tmp_path, data_dir=tmp_path / "data"))


def test_definitions_load_and_resolve(tmp_path):
    definitions = defs(tmp_path)
    definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert set(INGEST) <= keys


def test_the_definitions_load_without_a_warning():
    """What `make run`'s terminal shows when the UI loads the code: no notice of Dagster's
    about an API runcrawler uses knowingly (single-run backfills are beta), nor any other
    that Python's default filters show."""
    command = [sys.executable, "-c", "import runcrawler_assets.definitions"]
    loaded = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stderr == ""


def test_every_asset_has_a_description_a_group_and_an_owner(tmp_path):
    graph = defs(tmp_path).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        spec = graph.get(key)
        assert spec.description, key
        assert spec.group_name and spec.group_name != "default", key
        assert spec.owners, key


def test_the_ingest_chain_is_wired_in_order(tmp_path):
    graph = defs(tmp_path).resolve_asset_graph()
    assert graph.get(AssetKey("parsed_runs")).parent_keys == {AssetKey("run_files")}
    assert graph.get(AssetKey("runs")).parent_keys == {
        AssetKey("parsed_runs"),
        AssetKey("accounting"),
    }


def test_the_sensor_and_the_schedule_are_on_by_default(tmp_path):
    definitions = defs(tmp_path)
    sensor = definitions.resolve_sensor_def("archive_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 60
    schedule = definitions.resolve_schedule_def("nightly_reconciliation")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING


def test_automation_can_start_switched_off(tmp_path):
    code = (
        "from runcrawler_assets.definitions import defs;"
        "print(defs.resolve_sensor_def('archive_sensor').default_status.value,"
        "defs.resolve_schedule_def('nightly_reconciliation').default_status.value)"
    )
    env = {"RUNCRAWLER_AUTOMATION": "off", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["STOPPED", "STOPPED"], out.stderr


def test_analytics_follow_runs_on_their_own_and_ignore_unused_partitions(tmp_path):
    definitions = defs(tmp_path)
    graph = definitions.resolve_asset_graph()
    automation = definitions.resolve_sensor_def("runcrawler_automation")
    assert automation.default_status == DefaultSensorStatus.RUNNING
    for name in ("error_categories", "efficiency", "report"):
        condition = graph.get(AssetKey(name)).automation_condition
        assert condition is not None, name
        labels = [c.get_label() for c in condition.children]
        assert labels == ["eager", "all_deps_blocking_checks_passed"], name
        eager = condition.children[0]
        negated = [c.children[0].get_label() for c in eager.children if c.name == "NOT"]
        assert "any_deps_in_progress" in negated  # once per batch, not once per partition
        assert "any_deps_missing" not in negated  # unused cluster × user pairs never block


def test_the_checks_on_runs_are_assembled_and_the_report_must_be_fresh_within_26_hours(tmp_path):
    graph = defs(tmp_path).resolve_asset_graph()
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert {
        ("runs", "every_discovered_run_is_stored"),
        ("runs", "run_ids_are_unique"),
        ("runs", "parse_warnings_are_rare"),
    } <= checks
    policy = graph.get(AssetKey("report")).freshness_policy
    assert isinstance(policy, FreshnessPolicy)
    assert policy == FreshnessPolicy.time_window(fail_window=timedelta(hours=26))


# Dagster's private modules (and its internal shared package) change without notice.
PRIVATE_DAGSTER = re.compile(r"\bdagster\._|\bdagster_shared\b")


def test_only_dagsters_public_api_is_used():
    private = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if PRIVATE_DAGSTER.search(line)
    ]
    assert private == []


def test_definitions_py_is_the_one_place_that_builds_definitions():
    builders = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(
            isinstance(node, ast.Call)
            and "Definitions" in (getattr(node.func, "id", None), getattr(node.func, "attr", None))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    )
    assert builders == ["definitions.py"]


@pytest.mark.slow
@pytest.mark.lockstep  # dagster-dg-cli pins dagster's exact release
def test_dg_check_defs_passes(tmp_path):
    """`dg` finds the project from pyproject.toml's [tool.dg] and loads its definitions."""
    dg = Path(sys.executable).with_name("dg")
    require(dg if dg.exists() else None, "dagster-dg-cli", "pip install -e '.[dev,lockstep]'")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RUNCRAWLER_ARCHIVE": str(tmp_path / "archive"),
        "RUNCRAWLER_DATA": str(tmp_path / "data"),
        "VIRTUAL_ENV": sys.prefix,  # the venv dg finds in the project is the one running
    }
    done = subprocess.run(
        [str(dg), "check", "defs"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully." in done.stdout
