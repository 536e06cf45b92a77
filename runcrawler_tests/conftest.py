"""Shared fixtures: warehouses built once per session and shared read-only by the tests."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from runcrawler_assets.analytics import ANALYSES, AnalysisResult, RunFilter, compute_results
from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import VARIABLES, Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.records import ERROR_CATEGORIES, RunRecord, Status, run_id_for
from runcrawler_assets.warehouse.database import (
    PartitionRows,
    connect,
    record_version,
    replace_partitions,
)

# Tests make their own archives, data folders and Dagster homes: a developer's
# shell settings must not leak into them (nor tests write into the developer's).
for _variable in VARIABLES:
    os.environ.pop(_variable, None)

DEMO_RUNS = 1800
DEMO_SEED = 0

SYNTHETIC_USERS = ("alice", "bob", "o'neil")
SYNTHETIC_CLUSTERS = ("kraken", "irene")


def synthetic_record(rng: random.Random, cluster: str, user: str, index: int) -> RunRecord:
    """A plausible run: random settings and outcome, consistent status and category."""
    category = rng.choice(ERROR_CATEGORIES)
    status = category.status if rng.random() > 0.1 else rng.choice(("running", "not_started"))
    finished = status not in (Status.RUNNING, Status.NOT_STARTED)
    n_procs = rng.choice((8, 36, 144, 576))
    n_nodes = rng.choice((40_000, 400_000, 3_000_000))
    created = datetime(2023, 1, 1) + timedelta(hours=rng.randrange(0, 2 * 365 * 24))
    run_path = f"{cluster}/{user}/case{index}/run"
    return RunRecord(
        run_id=run_id_for(run_path),
        cluster=cluster,
        user=user,
        run_path=run_path,
        solver="avbp",
        created_at=created,
        n_procs=n_procs,
        n_nodes=n_nodes,
        dimension=3 if n_nodes > 100_000 else 2,
        cpu_hours=rng.uniform(1, 500) if finished else None,
        efficiency=rng.uniform(1e-5, 3e-5) if status == Status.SUCCESS else None,
        status=str(status),
        stage_code=0 if status == Status.SUCCESS else rng.choice((110, 300, None)),
        error_category=category.name if finished else None,
        error_signature=None
        if category.name in ("none", "truncated") or not finished
        else f"ERROR : {category.name} at node <N>",
        mixture_name=rng.choice(("ch4-air-2s-bfer", "air")),
        les_model=rng.choice(("wale", "sigma", "smago")),
        artificial_viscosity_model=rng.choice(("colin", "jameson")),
        convection_scheme=rng.choice(("ttgc", "lw")),
        ncell_group=rng.choice((50, 100, 200)),
        reactive_flow=rng.random() < 0.5,
        cfl=rng.choice((0.5, 0.7, 0.9)),
        iterations_requested=rng.choice((10_000, 50_000)),
        fingerprint="synthetic",
    )


def packages_loaded_by(script: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `script`."""
    script += "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def swapped_again(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> None:
    """What the swap of the partitions of the runs `where` holds notes with their rows
    (`database.record_version`): a test changing `runs` in place does what a swap does."""
    pairs = con.execute(f'SELECT DISTINCT cluster, "user" FROM runs WHERE {where}', params)
    for cluster, user in pairs.fetchall():
        record_version(con, cluster, user, None)


def write_warehouse(path: Path, records: list[RunRecord]) -> Path:
    """A warehouse holding exactly `records`, partitioned by (cluster, user)."""
    partitions: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        partitions.setdefault((record.cluster, record.user), []).append(record)
    with connect(path) as con:
        replace_partitions(con, (PartitionRows(c, u, rs, []) for (c, u), rs in partitions.items()))
    return path


@pytest.fixture(scope="session")
def synthetic_records() -> list[RunRecord]:
    rng = random.Random(7)
    return [
        synthetic_record(rng, cluster, user, index)
        for cluster in SYNTHETIC_CLUSTERS
        for user in SYNTHETIC_USERS
        for index in range(60)
    ]


@pytest.fixture(scope="session")
def synthetic_warehouse(
    tmp_path_factory: pytest.TempPathFactory, synthetic_records: list[RunRecord]
) -> Path:
    return write_warehouse(tmp_path_factory.mktemp("synthetic") / "runs.duckdb", synthetic_records)


@pytest.fixture
def synthetic_con(synthetic_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(synthetic_warehouse), read_only=True) as con:
        yield con


@pytest.fixture
def empty_con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with connect(tmp_path / "empty.duckdb") as con:
        yield con


@dataclass(frozen=True)
class DemoWarehouse:
    """A crawled demo archive: its settings (data dir, DuckDB path) and its truth file."""

    settings: Config
    truth: Path


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> DemoWarehouse:
    """One demo archive of DEMO_RUNS runs, generated and crawled once per session."""
    base = tmp_path_factory.mktemp("demo")
    truth = base / "truth.jsonl"
    generate_archive(base / "archive", runs=DEMO_RUNS, seed=DEMO_SEED, truth=truth)
    settings = Config(archive_root=base / "archive", data_dir=base / "data")
    crawl_into_warehouse(settings, list_partitions(settings))
    return DemoWarehouse(settings, truth)


@pytest.fixture(scope="session")
def demo_results(demo_warehouse: DemoWarehouse) -> dict[str, AnalysisResult]:
    """Every analysis over the whole demo warehouse, computed once, as stored (read back from
    a scratch store, as a report for a filter gets them)."""
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        return compute_results(con, ANALYSES, RunFilter())


@pytest.fixture(scope="session")
def demo_charts(demo_results: dict[str, AnalysisResult]) -> dict[str, dict[str, bytes]]:
    """Every chart of `demo_results`, by analysis then file name, drawn once."""
    from runcrawler_assets.reporting.plans import draw_charts  # loads matplotlib: only if used

    return {name: draw_charts(name, result.tables) for name, result in demo_results.items()}


@pytest.fixture
def data_copy(demo_warehouse: DemoWarehouse, tmp_path: Path) -> Path:
    """A data folder of our own holding a copy of the demo warehouse: what a test writes
    beside it (an export, the digests' ledger) stays out of the shared one."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(demo_warehouse.settings.duckdb_path, data / "runcrawler.duckdb")
    return data


@pytest.fixture
def demo_con(demo_warehouse: DemoWarehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        yield con
