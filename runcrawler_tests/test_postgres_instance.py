"""The production instance (deploy/dagster.yaml) against a real PostgreSQL server.

The module starts its own throwaway server (initdb + pg_ctl in a temporary
folder, a free local port, fsync off) and stops it at the end. Each test
gets its own database. The instance is built from deploy/dagster.yaml
itself, so these tests also check that the shipped configuration loads.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from glob import glob
from importlib.util import find_spec
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    JobDefinition,
    define_asset_job,
    execute_job,
    multiprocess_executor,
    reconstructable,
)

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, INGEST_ASSETS
from runcrawler_assets.defs.partitions import register_partitions
from runcrawler_assets.defs.runner import crawl, refresh_partition, run_resources
from runcrawler_assets.demo import generate_archive
from runcrawler_tests.system_programs import free_port, require, wait_for

# dagster-postgres pins dagster's exact release: make test runs this module in .venv-lockstep.
pytestmark = [pytest.mark.slow, pytest.mark.lockstep]

REPO = Path(__file__).resolve().parents[1]
INSTALL = "apt-get install -y postgresql"
ALL_ASSETS = [*INGEST_ASSETS, analyses, report]
# The steps that write DuckDB: in the "duckdb" pool, so never two at a time.
DUCKDB_STEPS = {"runs_table", "report", analyses.op.name}
# Enough runs and step processes to overlap, few enough for a 2-core machine.
PARALLEL_PARTITIONS = 6
SOME_ANALYSES = sorted(analyses.keys)[:3]  # computed in one step


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: float(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server: one superuser with a password, TCP on 127.0.0.1."""

    port: int
    user: str
    password: str

    def create_database(self, name: str) -> dict[str, str]:
        """A new empty database; the DAGSTER_PG_* variables deploy/dagster.yaml reads."""
        import psycopg2  # dagster-postgres' driver: imported once the server is known to exist

        con = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
        )
        con.autocommit = True
        with con.cursor() as cursor:
            # UTF-8 as deploy/README.md asks: user and cluster names are not ASCII.
            cursor.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        con.close()
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": name,
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }


def _as_server_owner(command: list[str], owner: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as `owner`."""
    return ["runuser", "-u", owner, "--", *command] if owner else command


def _server_owner() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            continue
    pytest.fail("running as root, and neither a postgres nor a nobody user to run PostgreSQL as")


def running(pid: int) -> bool:
    """Whether `pid` runs; a zombie waiting for init to reap it has stopped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for this module, stopped (immediate) at the end."""
    bin_dir = require(postgres_bin(), "The PostgreSQL server (initdb, pg_ctl)", INSTALL)
    require(find_spec("dagster_postgres"), "dagster-postgres", "pip install -e '.[dev,lockstep]'")
    owner = _server_owner()
    # Not under pytest's tmp_path: its parents are private to root, the server runs as `owner`.
    root = Path(tempfile.mkdtemp(prefix="runcrawler-pg-"))
    data, log = root / "data", root / "server.log"
    server = PostgresServer(port=free_port(), user="runcrawler", password=secrets.token_hex(16))
    (root / "password").write_text(server.password)
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chown(root / "password", entry.pw_uid, entry.pw_gid)

    def run(*command: str) -> None:
        done = subprocess.run(
            _as_server_owner(list(command), owner), capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            server_log = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(command)}: {done.stderr}{server_log}", pytrace=False)

    password_file = f"--pwfile={root / 'password'}"
    run(
        str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, password_file,
        "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync",
    )  # fmt: skip
    with (data / "postgresql.conf").open("a") as conf:
        # Throwaway: TCP on loopback only, no socket in /var/run, no waiting for the disk.
        conf.write(
            f"port = {server.port}\nlisten_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n"
            "full_page_writes = off\n"
        )
    try:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
        yield server
    finally:
        pid_file = data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        try:
            if pid:
                run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
                wait_for(lambda: not running(pid), 30, f"the PostgreSQL server (pid {pid}) exited")
        finally:
            shutil.rmtree(root)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Config, Path]:
    root, truth = tmp_path / "archive", tmp_path / "truth.jsonl"
    generate_archive(root, runs=60, seed=5, truth=truth)
    return Config(archive_root=root, data_dir=tmp_path / "data"), truth


def production_home(
    tmp_path: Path, postgres: PostgresServer, database: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A DAGSTER_HOME holding deploy/dagster.yaml, its variables pointing at `database`."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for name, value in postgres.create_database(database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return str(home)


def truth_rows(truth: Path) -> int:
    return sum(1 for _ in truth.read_text().splitlines())


def test_the_chain_on_postgres_is_read_back_through_dagster(
    postgres: PostgresServer, archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings, truth = archive
    home = production_home(tmp_path, postgres, "chain", monkeypatch)
    with DagsterInstance.from_config(home) as instance:
        storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
        assert [type(s).__name__ for s in storages] == [
            "PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage",
        ]  # fmt: skip
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        summary = crawl(settings, ALL_ASSETS, instance)
    assert summary.success and summary.rows + summary.quarantined == truth_rows(truth)

    # A new instance reads only what the server holds.
    with DagsterInstance.from_config(home) as instance:
        [run] = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["runcrawler/trigger"] == "cli"
        clusters = instance.get_dynamic_partitions("cluster")
        users = instance.get_dynamic_partitions("user")
        every_pair = {f"{c}|{u}" for c in clusters for u in users}
        assert clusters and users
        for asset in ("run_files", "parsed_runs", "runs", "quarantine"):
            assert instance.get_materialized_partitions(AssetKey(asset)) == every_pair, asset
        runs_event = instance.get_latest_materialization_event(AssetKey("runs"))
        assert runs_event.run_id == run.run_id
        assert runs_event.asset_materialization.metadata["rows_in_table"].value == summary.rows
        for asset in (*analyses.keys, report.key):
            [record] = instance.fetch_materializations(asset, limit=5).records
            assert record.run_id == run.run_id, asset.to_user_string()
        errors = instance.fetch_materializations(AssetKey("error_categories"), limit=1).records[0]
        metadata = errors.asset_materialization.metadata
        assert any("data:image/png;base64," in str(v.value) for v in metadata.values())


def materialize_one_partition(home: str, settings: Config, key: str) -> str:
    """One partition's ingest, as the daemon launches it: a process and an instance of its own."""
    with DagsterInstance.from_config(home) as instance:
        result = refresh_partition(
            settings, instance, key, tags={"runcrawler/trigger": "test_parallel"}
        )
    failures = [
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.is_step_failure and event.event_specific_data.error
    ]
    assert result.success, "\n".join(failures)
    return result.run_id


def analytics_job() -> JobDefinition:
    """Some analytics on the multiprocess executor, at most 2 step processes.

    Module level, and settings from the environment, so that each step process
    rebuilds it (`reconstructable`).
    """
    job = define_asset_job(
        "analytics_in_parallel",
        selection=AssetSelection.assets(*SOME_ANALYSES),
        executor_def=multiprocess_executor.configured({"max_concurrent": 2}),
    )
    return Definitions(
        assets=ALL_ASSETS, jobs=[job], resources=run_resources(Config.from_env(), parse_workers=1)
    ).resolve_job_def(job.name)


class StepWindow(NamedTuple):
    """One step's time on the clock, and whether the pool ever made it wait."""

    start: float
    end: float
    name: str
    waited: bool


def step_windows(instance: DagsterInstance, run_id: str) -> dict[str, StepWindow]:
    """Step key -> its window, from the run's event log."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    waited: set[str] = set()
    kinds = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
    for entry in instance.all_logs(run_id, of_type={*kinds, DagsterEventType.ENGINE_EVENT}):
        if entry.dagster_event_type == DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif entry.dagster_event_type == DagsterEventType.STEP_SUCCESS:
            ends[entry.step_key] = entry.timestamp
        elif entry.step_key and entry.message.startswith("Step blocked by limit for pool"):
            waited.add(entry.step_key)
    return {
        step: StepWindow(starts[step], end, f"{step} of run {run_id[:8]}", step in waited)
        for step, end in ends.items()
    }


def overlapping(windows: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Overlapping neighbours in start order (a window: its start, its end, then anything
    naming it): empty exactly when no two windows share time."""
    return [(a, b) for a, b in pairwise(sorted(windows)) if b[0] < a[1]]


def test_partitions_run_in_parallel_and_duckdb_writes_take_turns(
    postgres: PostgresServer, archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings, truth = archive
    home = production_home(tmp_path, postgres, "parallel", monkeypatch)
    monkeypatch.setenv("RUNCRAWLER_ARCHIVE", str(settings.archive_root))
    monkeypatch.setenv("RUNCRAWLER_DATA", str(settings.data_dir))
    pairs = list_partitions(settings)[:PARALLEL_PARTITIONS]
    with DagsterInstance.from_config(home) as instance:
        keys = [str(k) for k in register_partitions(instance, pairs)]
        # Set the pool's slots before runs start side by side: two first runs that
        # both initialize the default limit race on Postgres (one aborts). deploy/README
        # sets it once with `dagster instance concurrency set duckdb 1`.
        instance.event_log_storage.set_concurrency_slots(DUCKDB_POOL, 1)
    n = len(keys)

    # One run per partition, two processes at a time, as the daemon launches them.
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        ingest_ids = list(pool.map(materialize_one_partition, [home] * n, [settings] * n, keys))
    with DagsterInstance.from_config(home) as instance:
        analytics = execute_job(reconstructable(analytics_job), instance)
        assert analytics.success
        records = instance.get_run_records()
        assert {r.dagster_run.status for r in records} == {DagsterRunStatus.SUCCESS}
        ingest = [r for r in records if r.dagster_run.run_id in ingest_ids]
        assert len(ingest) == len(keys)
        # Runs did overlap in time: the parallelism was real.
        assert overlapping([(r.start_time, r.end_time) for r in ingest])
        # ... but the DuckDB-writing steps took turns, across runs and step processes.
        steps = [
            window
            for run_id in [*ingest_ids, analytics.run_id]
            for step, window in step_windows(instance, run_id).items()
            if step in DUCKDB_STEPS
        ]
        assert len(steps) == n + 1  # the analyses step
        assert any(s.waited for s in steps), "the pool never made a DuckDB step wait"
        # One exception is Dagster's, not ours (1.13.27, seen in CI): two steps that claim the
        # pool's one free slot in the same instant can both get it. `_claim_concurrency_slot`
        # selects the slot `FOR UPDATE SKIP LOCKED` on an autocommit connection, so the lock
        # ends with the SELECT and the UPDATE does not check the slot is still free. The later
        # of such a pair started without waiting; DuckDB's own lock (`connect` waits for it)
        # then keeps the writes apart, which the complete warehouse below shows.
        overlaps = [(a.name, b.name) for a, b in overlapping(steps) if b.waited]
        assert overlaps == []
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        categories = con.execute("SELECT count(*) FROM error_categories").fetchone()[0]
    in_pairs = [
        t
        for t in map(json.loads, truth.read_text().splitlines())
        if (t["cluster"], t["user"]) in pairs
    ]
    assert rows + quarantined == len(in_pairs)
    assert categories > 0
