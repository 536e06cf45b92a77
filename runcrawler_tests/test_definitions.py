"""The Dagster definitions load, and say what a user of the UI needs to see."""

from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus

from runcrawler_assets.config import Settings
from runcrawler_assets.definitions import build_definitions

INGEST = ["run_files", "parsed_runs", "runs", "quarantine"]


def defs(tmp_path):
    return build_definitions(Settings(archive_root=tmp_path, data_dir=tmp_path / "data"))


def test_definitions_load_and_resolve(tmp_path):
    definitions = defs(tmp_path)
    definitions.validate_loadable(definitions)
    graph = definitions.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert set(INGEST) <= keys


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
    assert graph.get(AssetKey("runs")).parent_keys == {AssetKey("parsed_runs")}


def test_the_sensor_and_the_schedule_are_on_by_default(tmp_path):
    definitions = defs(tmp_path)
    sensor = definitions.resolve_sensor_def("archive_sensor")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 60
    schedule = definitions.resolve_schedule_def("nightly_reconciliation")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING


def test_automation_can_start_switched_off(tmp_path):
    import subprocess
    import sys

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
        assert condition is not None and condition.get_label() == "eager", name
        negated = [c.children[0].get_label() for c in condition.children if c.name == "NOT"]
        assert "any_deps_in_progress" in negated  # once per batch, not once per partition
        assert "any_deps_missing" not in negated  # unused cluster × user pairs never block
