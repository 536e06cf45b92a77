"""The asset checks on `runs`, with a real Dagster instance and a real DuckDB file.

A small demo archive is crawled through Dagster, then the warehouse is broken
behind Dagster's back (a row deleted, a run_id duplicated) and a run holding
the checks and a downstream analysis shows the blocking: the check fails, the
run fails, and the analysis is not materialized.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    materialize,
)

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.definitions import build_definitions
from runcrawler_assets.defs.assets.analytics import analyses
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, INGEST_ASSETS
from runcrawler_assets.defs.checks import ASSET_CHECKS, CHECK_SPECS
from runcrawler_assets.defs.partitions import partition_key
from runcrawler_assets.defs.runner import crawl, run_resources
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.warehouse.health import coverage, open_warehouse

ANALYSIS = analyses  # error_categories among them, all computed in one step
BLOCKING = {"every_discovered_run_is_stored", "run_ids_are_unique"}


@pytest.fixture
def crawled(tmp_path: Path) -> tuple[Config, DagsterInstance]:
    """A demo archive crawled with the ingest chain, one analysis and the checks."""
    generate_archive(tmp_path / "archive", runs=30, seed=5)
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    instance = DagsterInstance.ephemeral()
    assert crawl(settings, [*INGEST_ASSETS, ANALYSIS], instance, parse_workers=1).success
    return settings, instance


def sql(settings: Config, statement: str) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path)) as con:
        return con.execute(statement).fetchall()


def checks_and_analysis(settings: Config, instance: DagsterInstance) -> ExecuteInProcessResult:
    """The checks on `runs` (run alone: every partition) and the analysis downstream, without
    refreshing `runs` itself, whose swap would repair what was broken."""
    return materialize(
        [*INGEST_ASSETS, *ASSET_CHECKS, ANALYSIS],
        selection=AssetSelection.checks(*ASSET_CHECKS) | AssetSelection.assets(ANALYSIS),
        instance=instance,
        resources=run_resources(settings),
        raise_on_error=False,
    )


def outcomes(result: ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(result: ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_good_crawl_passes_every_check_on_runs_in_one_step(crawled):
    _, instance = crawled
    (run,) = instance.get_runs()
    steps = [
        entry.step_key
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
    ]
    assert steps.count("runs_checks") == 1 and not any("warnings" in s for s in steps), steps
    evaluations = [
        entry.dagster_event.event_specific_data
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert {e.check_name: e.passed for e in evaluations} == {
        "every_discovered_run_is_stored": True,
        "run_ids_are_unique": True,
        "parse_warnings_are_rare": True,
    }
    coverage_metadata = next(
        e.metadata for e in evaluations if e.check_name == "every_discovered_run_is_stored"
    )
    assert coverage_metadata["discovered"].value == 30
    assert coverage_metadata["rows_and_quarantine_entries"].value == 30
    unique = next(e.metadata for e in evaluations if e.check_name == "run_ids_are_unique")
    assert unique["guaranteed_by_primary_key"].value is True  # no run read to know it


def test_the_ui_can_run_one_check_alone(crawled):
    settings, instance = crawled
    result = materialize(
        [*INGEST_ASSETS, *ASSET_CHECKS],
        selection=AssetSelection.checks(AssetCheckKey(AssetKey("runs"), "run_ids_are_unique")),
        instance=instance,
        resources=run_resources(settings),
    )
    assert outcomes(result) == {"run_ids_are_unique": True}


def test_the_blocking_checks_are_blocking_and_the_warning_check_only_warns():
    blocking = {spec.name for spec in CHECK_SPECS if spec.blocking}
    assert blocking == BLOCKING
    assert {spec.name for spec in CHECK_SPECS} == {*BLOCKING, "parse_warnings_are_rare"}


def test_the_checks_on_runs_read_duckdb_inside_the_duckdb_pool():
    for check in ASSET_CHECKS:
        assert check.op.pool == DUCKDB_POOL, check.op.name


def test_a_row_removed_behind_dagsters_back_fails_the_check_and_blocks_the_analysis(crawled):
    settings, instance = crawled
    (path,) = sql(
        settings,
        "DELETE FROM runs WHERE run_id = (SELECT min(run_id) FROM runs) RETURNING run_path",
    )[0]
    result = checks_and_analysis(settings, instance)
    assert not result.success
    assert outcomes(result)["every_discovered_run_is_stored"] is False
    assert outcomes(result)["run_ids_are_unique"] is True
    evaluation = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "every_discovered_run_is_stored"
    )
    assert evaluation.metadata["missing"].value == 1
    assert evaluation.metadata["missing_examples"].value == [path]
    assert "error_categories" not in materialized(result)


def _drop_primary_key(settings: Config) -> None:
    """`runs` as a hand-made copy would be: same columns, no PRIMARY KEY to refuse duplicates."""
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("CREATE TABLE runs_without_key AS SELECT * FROM runs")
        con.execute("DROP TABLE runs")
        con.execute("ALTER TABLE runs_without_key RENAME TO runs")


def test_a_duplicated_run_id_fails_the_check_and_blocks_the_analysis(crawled):
    settings, instance = crawled
    _drop_primary_key(settings)
    cluster, user, run_id = sql(
        settings, 'SELECT cluster, "user", run_id FROM runs ORDER BY cluster, "user", run_id'
    )[0]
    sql(settings, f"INSERT INTO runs SELECT * FROM runs WHERE run_id = '{run_id}'")
    # A sensor-like run of another partition: its swap leaves the broken partition alone.
    other = next(p for p in list_partitions(settings) if p != (cluster, user))
    result = materialize(
        [*INGEST_ASSETS, *ASSET_CHECKS, ANALYSIS],
        instance=instance,
        partition_key=str(partition_key(*other)),
        resources=run_resources(settings, parse_workers=1),
        raise_on_error=False,
    )
    assert not result.success
    assert outcomes(result)["run_ids_are_unique"] is False
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "run_ids_are_unique"
    )
    assert evaluation.metadata["examples"].value == {run_id: 2}
    assert evaluation.metadata["guaranteed_by_primary_key"].value is False
    assert "runs" in materialized(result)  # the ingest of the other partition went through
    assert "error_categories" not in materialized(result)


def test_many_parse_warnings_warn_without_blocking_the_analysis(crawled):
    settings, instance = crawled
    sql(settings, "UPDATE runs SET parse_warnings = ['log truncated']")
    result = checks_and_analysis(settings, instance)
    assert result.success
    warning = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "parse_warnings_are_rare"
    )
    assert not warning.passed and warning.severity == AssetCheckSeverity.WARN
    assert warning.metadata["share"].value == 1.0
    assert warning.metadata["most_frequent"].value == {"log truncated": 30}
    assert "error_categories" in materialized(result)


def test_names_with_undecodable_bytes_and_backslashes_are_covered(tmp_path: Path):
    root = tmp_path / "archive"
    generate_archive(root, runs=6, seed=2)
    source = next(p.parent for p in sorted(root.rglob("run.params")))
    cluster = source.relative_to(root).parts[0]
    odd_user = b"caf\xe9\\x".decode("utf-8", "surrogateescape")
    shutil.copytree(source, root / cluster / odd_user / "case" / "run")
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    with open_warehouse(settings.duckdb_path) as con:
        everything = coverage(con, settings.runs_dir)
        odd = coverage(con, settings.runs_dir, [(cluster, odd_user)])
    assert everything.complete and everything.discovered == 7
    assert odd.complete and odd.discovered == odd.stored == 1


def test_the_sensor_and_the_nightly_runs_include_the_blocking_checks(tmp_path: Path):
    definitions = build_definitions(Config(archive_root=tmp_path, data_dir=tmp_path / "data"))
    graph = definitions.resolve_asset_graph()
    sensor = definitions.resolve_sensor_def("archive_sensor")
    nightly = definitions.resolve_job_def("reconcile_archive")
    for checks in (
        sensor.asset_selection.resolve_checks(graph),
        nightly.asset_layer.asset_graph.asset_check_keys,
    ):
        assert {key.name for key in checks} >= BLOCKING
