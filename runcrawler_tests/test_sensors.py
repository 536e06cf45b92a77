"""archive_sensor and the nightly schedule, evaluated against a real ephemeral instance."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    evaluate_automation_conditions,
)

from runcrawler_assets.analytics import ANALYSES
from runcrawler_assets.archive.rescan import SETTLE_NS
from runcrawler_assets.config import Config
from runcrawler_assets.definitions import build_definitions
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.assets.tell import hints
from runcrawler_assets.defs.partitions import partition_key
from runcrawler_assets.defs.resources import ConfigResource
from runcrawler_assets.defs.runner import (
    crawl,
    launch_in_process,
    materialized_assets,
    refresh_partition,
)
from runcrawler_assets.defs.sensors import archive_sensor
from runcrawler_assets.demo import generate_archive


@pytest.fixture
def setup(tmp_path: Path):
    root = tmp_path / "archive"
    generate_archive(root, runs=60, seed=5)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    return settings, ConfigResource.from_config(settings), DagsterInstance.ephemeral()


def tick(instance: DagsterInstance, resource: ConfigResource, cursor: str | None):
    """One sensor evaluation, applying its partition requests as the daemon would."""
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"settings": resource}
    )
    result = archive_sensor(context)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def partition_folders(root: Path) -> list[tuple[str, str]]:
    return sorted(
        (cluster.name, user.name)
        for cluster in root.iterdir()
        for user in cluster.iterdir()
        if user.is_dir()
    )


def requested(result: SensorResult) -> list[str]:
    return sorted(r.partition_key for r in result.run_requests)


def test_first_tick_registers_and_requests_every_partition(setup):
    settings, resource, instance = setup
    result = tick(instance, resource, None)
    folders = partition_folders(settings.archive_root)
    assert requested(result) == sorted(str(partition_key(c, u)) for c, u in folders)
    assert set(instance.get_dynamic_partitions("cluster")) == {c for c, _ in folders}
    assert set(instance.get_dynamic_partitions("user")) == {u for _, u in folders}


def test_a_tick_with_no_change_skips_and_says_why(setup):
    _, resource, instance = setup
    first = tick(instance, resource, None)
    second = tick(instance, resource, first.cursor)
    assert isinstance(second, SkipReason)
    assert "no run added, changed or removed" in second.skip_message


def copy_a_run(settings: Config, cluster: str, user: str, suffix: str = "_new") -> None:
    """A run of that partition copied beside itself as a new run (its name + `suffix`)."""
    source = min((settings.archive_root / cluster / user).rglob("run.params")).parent
    shutil.copytree(source, source.with_name(source.name + suffix))


def test_a_new_run_requests_exactly_its_partition(setup):
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    cluster, user = partition_folders(settings.archive_root)[0]
    copy_a_run(settings, cluster, user)
    result = tick(instance, resource, first.cursor)
    assert requested(result) == [str(partition_key(cluster, user))]
    again = tick(instance, resource, first.cursor)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]


ANALYTICS = {AssetKey(a.name) for a in ANALYSES} | {AssetKey("report"), AssetKey("hints")}


def test_one_changed_partition_gets_one_run_carrying_the_analytics_several_get_ingest_runs(
    setup,
):
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    assert len(first.run_requests) > 1
    for request in first.run_requests:  # the analytics follow once, through the automation
        assert not set(request.asset_selection) & ANALYTICS
    cluster, user = partition_folders(settings.archive_root)[0]
    copy_a_run(settings, cluster, user)
    (request,) = tick(instance, resource, first.cursor).run_requests
    assert set(request.asset_selection) >= ANALYTICS | {AssetKey("runs"), AssetKey("run_files")}
    assert request.run_config["ops"][analyses.op.name] == {"config": {"only_if_runs_changed": True}}


def test_the_analytics_carried_by_the_sensors_run_leave_the_automation_nothing_to_do(setup):
    settings, resource, instance = setup
    assert crawl(settings, [*INGEST_ASSETS, analyses, report, hints], instance).success
    definitions = build_definitions(settings)
    automation = evaluate_automation_conditions(defs=definitions, instance=instance)
    cluster, user = partition_folders(settings.archive_root)[0]
    key = str(partition_key(cluster, user))

    copy_a_run(settings, cluster, user)  # a tick, then the run it asks for
    (request,) = tick(instance, resource, None).run_requests
    result = launch_in_process(settings, instance, request)
    assert result.success
    assert {e.check_name for e in result.get_asset_check_evaluations()} >= {"run_ids_are_unique"}
    assert materialized_assets(result) >= {a.to_user_string() for a in ANALYTICS} | {"runs"}
    automation = evaluate_automation_conditions(
        defs=definitions, instance=instance, cursor=automation.cursor
    )
    assert automation.total_requested == 0

    copy_a_run(settings, cluster, user, "_again")  # an ingest alone: the automation follows
    assert refresh_partition(settings, instance, key).success
    automation = evaluate_automation_conditions(
        defs=definitions, instance=instance, cursor=automation.cursor
    )
    assert automation.total_requested == len(ANALYTICS)


def test_a_removed_run_requests_its_partition(setup):
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    cluster, user = partition_folders(settings.archive_root)[-1]
    shutil.rmtree(next((settings.archive_root / cluster / user).rglob("run.params")).parent)
    result = tick(instance, resource, first.cursor)
    assert requested(result) == [str(partition_key(cluster, user))]


def test_a_new_user_folder_adds_a_partition(setup):
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    cluster, user = partition_folders(settings.archive_root)[0]
    source = next((settings.archive_root / cluster / user).rglob("run.params")).parent
    shutil.copytree(source, settings.archive_root / cluster / "new user|x" / "run1")
    result = tick(instance, resource, first.cursor)
    assert requested(result) == [str(partition_key(cluster, "new user|x"))]
    assert "new user%7Cx" in instance.get_dynamic_partitions("user")


def test_the_cursor_holds_one_short_digest_per_partition(setup):
    settings, resource, instance = setup
    result = tick(instance, resource, None)
    assert len(result.cursor) < 40 * len(partition_folders(settings.archive_root)) + 10


def test_after_a_crawl_the_first_tick_launches_nothing(setup):
    from runcrawler_assets.archive.discovery import list_partitions
    from runcrawler_assets.crawl import crawl_into_warehouse

    settings, resource, instance = setup
    crawl_into_warehouse(settings, list_partitions(settings))
    result = tick(instance, resource, None)
    assert isinstance(result, SensorResult)
    assert result.run_requests == []
    assert result.dynamic_partitions_requests  # the partitions are still registered


def test_after_a_crawl_by_an_earlier_version_the_first_tick_requests_only_what_changed(setup):
    """Discovery files written before they had a head are read whole for their digests:
    the first tick then launches nothing for the partitions as crawled, and a run for the
    one that gained a run since."""
    from runcrawler_assets.archive.discovery import list_partitions
    from runcrawler_assets.archive.runstore import DISCOVERY_FILE
    from runcrawler_assets.crawl import crawl_into_warehouse

    settings, resource, instance = setup
    crawl_into_warehouse(settings, list_partitions(settings))
    for path in settings.runs_dir.glob(f"*/*/{DISCOVERY_FILE}"):
        written = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({k: written[k] for k in ("runs", "problems")}), "utf-8")
    run = next(p.parent for p in sorted(settings.archive_root.rglob("run.params")))
    shutil.copytree(run, run.with_name(run.name + "_again"))
    result = tick(instance, resource, None)
    cluster, user = run.relative_to(settings.archive_root).parts[:2]
    assert requested(result) == [str(partition_key(cluster, user))]


def test_after_a_crawl_a_damaged_discovery_file_gets_its_partition_refreshed(setup):
    """A first tick that cannot read what discovery recorded of a partition requests that
    partition (whose run writes the file again), the others nothing."""
    from runcrawler_assets.archive.discovery import list_partitions
    from runcrawler_assets.archive.runstore import DISCOVERY_FILE
    from runcrawler_assets.crawl import crawl_into_warehouse

    settings, resource, instance = setup
    crawl_into_warehouse(settings, list_partitions(settings))
    damaged = sorted(settings.runs_dir.glob(f"*/*/{DISCOVERY_FILE}"))[0]
    damaged.write_text('{"runs": [broken', encoding="utf-8")
    cluster, user = damaged.parent.relative_to(settings.runs_dir).parts
    assert requested(tick(instance, resource, None)) == [str(partition_key(cluster, user))]


def test_a_running_runs_log_growing_in_place_requests_its_partition(setup):
    """Appending to a log leaves its folder's mtime alone; a run whose log was written
    lately (within the running window) has its files' sizes and mtimes checked every tick."""
    settings, resource, instance = setup
    cluster, user = partition_folders(settings.archive_root)[0]
    run = next((settings.archive_root / cluster / user).rglob("run.params")).parent
    log = next(run.glob("*.o*"))
    os.utime(log)  # written just now: the run may still be running
    first = tick(instance, resource, None)
    folder_mtime = run.stat().st_mtime_ns
    with log.open("a") as out:
        out.write(" ---> Iteration  9999\n")
    assert run.stat().st_mtime_ns == folder_mtime
    result = tick(instance, resource, first.cursor)
    assert requested(result) == [str(partition_key(cluster, user))]


def test_a_finished_run_whose_folder_did_not_change_is_not_listed_again(setup, monkeypatch):
    """One stat per finished, unchanged run: a log of a finished run rewritten in place is
    left to the nightly reconciliation."""
    settings, resource, instance = setup
    time.sleep(SETTLE_NS / 1e9)  # folders changed just before a scan are listed again
    first = tick(instance, resource, None)
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path):
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert isinstance(tick(instance, resource, first.cursor), SkipReason)
    monkeypatch.undo()
    recent = time.time() - 2 * 86400
    runs = {p.parent for p in settings.archive_root.rglob("run.params")}
    finished = {
        r for r in runs if all(f.stat().st_mtime < recent for f in r.rglob("*") if f.is_file())
    }
    assert len(finished) > len(runs) / 2
    assert not finished & {Path(p) for p in listed}


def test_a_new_file_in_a_runs_log_folder_requests_its_partition(setup):
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    cluster, user = partition_folders(settings.archive_root)[0]
    run = next((settings.archive_root / cluster / user).rglob("run.params")).parent
    (run / "logs").mkdir(exist_ok=True)
    second = tick(instance, resource, first.cursor)
    assert requested(second) == [str(partition_key(cluster, user))]
    (run / "logs" / "avbp.o").write_text(" ---> Iteration  1\n")
    assert requested(tick(instance, resource, second.cursor)) == requested(second)


def test_without_its_saved_state_the_sensor_scans_everything_again(setup):
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    shutil.rmtree(settings.data_dir / "sensor_state")
    assert isinstance(tick(instance, resource, first.cursor), SkipReason)
    cluster, user = partition_folders(settings.archive_root)[-1]
    shutil.rmtree(next((settings.archive_root / cluster / user).rglob("run.params")).parent)
    shutil.rmtree(settings.data_dir / "sensor_state")
    result = tick(instance, resource, first.cursor)
    assert requested(result) == [str(partition_key(cluster, user))]


def test_what_lands_in_a_runs_subfolders_is_not_looked_at(setup):
    """MESH/ and SOLUT/ hold nothing a parser reads: the tick lists the run folder, not them."""
    settings, resource, instance = setup
    first = tick(instance, resource, None)
    run = next(settings.archive_root.rglob("run.params")).parent
    (run / "SOLUT" / "solut_0042.h5").write_bytes(b"\0" * 64)
    assert isinstance(tick(instance, resource, first.cursor), SkipReason)
