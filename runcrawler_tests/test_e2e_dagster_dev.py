"""End to end: `dagster dev` running, a run copied into the archive shows up on its own."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.runner import crawl, dagster_instance
from runcrawler_assets.demo import generate_archive
from runcrawler_tests.system_programs import answers, free_port, stop_process_group, wait_for

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")


def query(path: Path, sql: str, params: list) -> list[tuple] | None:
    """Read the warehouse if no writer holds it right now (else None, try again)."""
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(sql, params).fetchall()
    except duckdb.Error:
        return None


@pytest.mark.timeout(600)
def test_a_run_copied_into_the_archive_reaches_runs_and_error_categories(tmp_path):
    archive, truth_path = tmp_path / "archive", tmp_path / "truth.jsonl"
    generate_archive(archive, runs=40, seed=11, truth=truth_path)
    settings = Config(archive_root=archive, data_dir=tmp_path / "data")
    home = settings.data_dir / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dagster_instance(settings) as instance:
            assert crawl(settings, [*INGEST_ASSETS, analyses, report], instance).success
    finally:
        del os.environ["DAGSTER_HOME"]
    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    source = next(t for t in truth if t["status"] == "failed")
    category = source["error_category"]
    count_sql = "SELECT runs FROM error_categories WHERE category = ?"
    before = query(settings.duckdb_path, count_sql, [category])[0][0]

    port = free_port()
    env.update(
        RUNCRAWLER_ARCHIVE=str(archive),
        RUNCRAWLER_DATA=str(settings.data_dir),
        RUNCRAWLER_SENSOR_INTERVAL="5",
        RUNCRAWLER_AUTOMATION_INTERVAL="5",
    )
    log = (tmp_path / "dagster-dev.log").open("w")
    server = subprocess.Popen(
        [str(DAGSTER), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/server_info"), 180, "the UI answered")
        new_run = archive / Path(source["run_path"]).parent / "copied_run"
        shutil.copytree(archive / source["run_path"], new_run)
        new_path = new_run.relative_to(archive).as_posix()
        wait_for(
            lambda: query(
                settings.duckdb_path, "SELECT 1 FROM runs WHERE run_path = ?", [new_path]
            ),
            300,
            f"the copied run {new_path} reached the runs table",
        )
        wait_for(
            lambda: (
                (query(settings.duckdb_path, count_sql, [category]) or [(before,)])[0][0]
                == before + 1
            ),
            300,
            f"error_categories counted one more {category} run",
        )
    finally:
        stop_process_group(server)
        log.close()
    # The sensor's own run refreshed the analytics after the ingest and its checks (one
    # partition changed).
    with DagsterInstance.from_config(str(home)) as instance:
        tagged = RunsFilter(tags={"runcrawler/trigger": "archive_sensor"})
        events = [
            entry.dagster_event
            for run in instance.get_runs(filters=tagged)
            for entry in instance.all_logs(run.run_id)
            if entry.dagster_event
        ]
    materialized = {e.asset_key.to_user_string() for e in events if e.is_step_materialization}
    assert {"runs", "error_categories"} <= materialized
    checked = [e for e in events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    assert checked
