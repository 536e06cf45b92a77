"""What Dagster alone costs a +10 crawl (issue 16, goal 2): the same run, doing nothing.

A fresh interpreter imports Dagster, opens a SQLite instance set up as `make run`'s
(runcrawler's `dagster.yaml`), and materializes a graph of the shape of a `runcrawler
crawl` run after 10 new runs: one cluster × user partition of `run_files` → `parsed_runs`
→ `runs` and `quarantine` (one step) and its three checks (one step), then the 11
analyses (one step), `hints` and `report`; 7 steps, 17 assets, one resource, a log line
in four of them. No asset reads or writes anything: the time is Dagster's own (the
interpreter, its imports, the instance, the job's plan, ~85 events written), the floor
under which no +10 crawl through Dagster can go, whatever runcrawler's code does.

`python -m benchmarks.dagster_floor <dagster home>` is that child; `bench_dagster_floor`
times it from its start to its exit, after one run that creates the instance's files.
"""

import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    ConfigurableResource,
    DagsterInstance,
    MaterializeResult,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
    materialize,
    multi_asset,
    multi_asset_check,
)

from runcrawler_assets.defs.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

CLUSTERS = ("irene", "jean-zay", "kraken", "topaze")
USERS = ("a", "b", "c", "d", "e", "f", "g")
ANALYSES = 11  # runcrawler's analyses: one asset each, refreshed in one step
CHECKS = ("every_discovered_run_is_stored", "run_ids_are_unique", "parse_warnings_are_rare")


class Settings(ConfigurableResource):
    data_dir: str


PARTITIONS = MultiPartitionsDefinition(
    {
        "cluster": StaticPartitionsDefinition(list(CLUSTERS)),
        "user": StaticPartitionsDefinition(list(USERS)),
    }
)
INGEST: dict[str, Any] = {
    "partitions_def": PARTITIONS,
    "backfill_policy": BackfillPolicy.single_run(),
}


@asset(**INGEST)
def run_files(settings: Settings) -> MaterializeResult:
    return MaterializeResult(metadata={"runs": 10})


@asset(deps=[run_files], **INGEST)
def parsed_runs(context: AssetExecutionContext, settings: Settings) -> MaterializeResult:
    context.log.info("parsed 10 runs")
    return MaterializeResult(metadata={"parsed": 10})


@multi_asset(
    specs=[AssetSpec("runs", deps=[parsed_runs]), AssetSpec("quarantine", deps=[parsed_runs])],
    **INGEST,
)
def runs_table(context: AssetExecutionContext, settings: Settings) -> Iterator[MaterializeResult]:
    context.log.info("swapped 1 of 1 partitions")
    yield MaterializeResult(asset_key="runs", metadata={"rows": 10})
    yield MaterializeResult(asset_key="quarantine", metadata={"rows": 0})


@multi_asset_check(specs=[AssetCheckSpec(name, asset="runs") for name in CHECKS])
def runs_checks(settings: Settings) -> Iterator[AssetCheckResult]:
    for name in CHECKS:
        yield AssetCheckResult(check_name=name, asset_key="runs", passed=True)


@multi_asset(specs=[AssetSpec(f"analysis_{i}", deps=["runs"]) for i in range(ANALYSES)])
def analyses(settings: Settings) -> Iterator[MaterializeResult]:
    for i in range(ANALYSES):
        yield MaterializeResult(asset_key=f"analysis_{i}", metadata={"rows": i})


@asset(deps=[f"analysis_{i}" for i in range(ANALYSES)])
def hints(context: AssetExecutionContext, settings: Settings) -> MaterializeResult:
    context.log.info("hints made")
    return MaterializeResult(metadata={"hints": 0})


@asset(deps=[hints])
def report(context: AssetExecutionContext, settings: Settings) -> MaterializeResult:
    context.log.info("report written")
    return MaterializeResult(metadata={"charts": 0})


RUN = [run_files, parsed_runs, runs_table, runs_checks, analyses, hints, report]


def main(home: str) -> None:
    """One run, as `runcrawler crawl` launches it; prints what it wrote, as JSON."""
    key = f"{CLUSTERS[0]}|{USERS[0]}"
    with DagsterInstance.from_config(home) as instance:
        result = materialize(
            RUN,
            instance=instance,
            resources={"settings": {"config": {"data_dir": home}}},
            tags={PARTITION_RANGE_START_TAG: key, PARTITION_RANGE_END_TAG: key},
        )
        events = len(instance.all_logs(result.run_id))
    materialized = len(result.get_asset_materialization_events())
    print(json.dumps({"events": events, "materialized": materialized}))


def _run_child(home: Path) -> tuple[float, dict[str, Any]]:
    from benchmarks.common import REPO  # here: the child imports Dagster and nothing else

    command = [sys.executable, "-m", "benchmarks.dagster_floor", str(home)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the floor's run failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def bench_dagster_floor(workdir: Path, repeats: int = 3) -> dict[str, Any]:
    """The floor's run `repeats` times in fresh interpreters, on an instance that already
    holds one (a crawl's instance has its files): seconds each, and what one wrote."""
    home = workdir / "dagster-floor"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    template = files("runcrawler_assets.defs").joinpath("dagster_local.yaml")
    (home / "dagster.yaml").write_bytes(template.read_bytes())
    _run_child(home)
    timed = [_run_child(home) for _ in range(repeats)]
    return {
        "seconds": [round(seconds, 2) for seconds, _ in timed],
        "median_s": round(statistics.median(seconds for seconds, _ in timed), 2),
        **timed[-1][1],
    }


if __name__ == "__main__":
    main(sys.argv[1])
