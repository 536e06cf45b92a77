"""The archive sensor: new clusters, users and runs are picked up on their own.

Each tick scans the archive with directory listings and `stat` only (the
same discovery the `run_files` asset uses, archive/rescan.py: a finished run
whose folder did not change costs one `stat`, an unchanged folder above the
runs is not listed again, running runs are listed in full) and keeps, as its
cursor, one digest per partition — small for any archive size; the per-run
memory behind the rescan lives in the data folder (`sensor_state/`), one file
per partition, rewritten only when it changed. Partitions whose digest
changed (runs added, modified or removed) get a run; new cluster and user
folders become partitions. A run key made of the previous and the new
digest keeps a repeated tick from launching the same work twice. Without a
cursor (a new deployment, or after `runcrawler crawl`), the state to compare
with is what the `run_files` asset last recorded in the data folder, so a
first tick after a crawl launches nothing.

A tick that finds one partition changed (the usual case: a user copied some
runs) launches one run that refreshes it and then what follows from `runs` —
the analyses, the hints and the report — as `runcrawler crawl`'s run does:
the analytics follow in the same run, not in a second one the automation
sensor launches up to its interval later (issue 16: one run process's start
saved; loading the code location alone takes ~1.1 s). A tick that finds
several launches one ingest run per partition, and the automation sensor
refreshes the analytics once after all.
"""

import json
from collections.abc import Iterable

from dagster import (
    AddDynamicPartitionsRequest,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.archive.rescan import scan_partition
from runcrawler_assets.archive.runstore import PartitionStore
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import analyses, only_what_changed, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.assets.tell import hints
from runcrawler_assets.defs.partitions import (
    cluster_partitions,
    names_of,
    partition_key,
    user_partitions,
)
from runcrawler_assets.defs.resources import ConfigResource

# Dagster needs these when it loads the code location: a bad value is logged and taken at its
# default, so that a typo never hides the definitions (see `Config.from_env_or_defaults`).
CONFIG_AT_LOAD = Config.from_env_or_defaults()
SENSOR_INTERVAL_SECONDS = CONFIG_AT_LOAD.sensor_interval_seconds
# RUNCRAWLER_AUTOMATION=off starts the sensors and the schedule stopped (switch them on in the UI).
AUTOMATION_ON = CONFIG_AT_LOAD.automation_on
SENSOR_STATUS = DefaultSensorStatus.RUNNING if AUTOMATION_ON else DefaultSensorStatus.STOPPED


# What follows an ingest in the run of a tick that found one partition changed (and in a
# crawl's run).
FOLLOWING = [analyses, report, hints]
INGEST_KEYS = [key for asset in INGEST_ASSETS for key in asset.keys]
FOLLOWING_KEYS = [key for asset in FOLLOWING for key in asset.keys]
# The runs the scan shows unchanged are not walked again; analyses that `runs` left unchanged
# (a run file touched, its record the same) are skipped.
INGEST_CONFIG = only_what_changed(["run_files"])
FOLLOWING_CONFIG = only_what_changed(
    ["run_files", *(key.to_user_string() for key in FOLLOWING_KEYS)]
)


def scan_digests(settings: ConfigResource) -> dict[str, str]:
    """Partition key -> digest of its runs, for every cluster × user folder present."""
    config = settings.config
    digests = {}
    for cluster, user in list_partitions(config):
        state, _ = scan_partition(config, cluster, user)
        digests[str(partition_key(cluster, user))] = state.digest[:16]
    return digests


def recorded_digests(settings: ConfigResource, keys: Iterable[str]) -> dict[str, str]:
    """The digests of what `run_files` last recorded for `keys`, from the data folder."""
    runs_dir = settings.config.runs_dir
    return {
        key: PartitionStore(runs_dir, *names_of(key)).recorded_head().digest[:16] for key in keys
    }


def _new_partitions(context: SensorEvaluationContext, digests: dict[str, str]):
    """Requests adding the clusters and users not yet registered."""
    requests = []
    for definition, index in ((cluster_partitions, 0), (user_partitions, 1)):
        assert definition.name is not None
        known = set(context.instance.get_dynamic_partitions(definition.name))
        seen = {key.split("|")[index] for key in digests}
        missing = sorted(seen - known)
        if missing:
            requests.append(AddDynamicPartitionsRequest(definition.name, missing))
    return requests


@sensor(
    name="archive_sensor",
    description="Scans the archive (listing and stat only) and refreshes the cluster × user "
    "partitions whose runs changed, and the analytics after one alone; registers new "
    "clusters and users.",
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=SENSOR_STATUS,
    asset_selection=[*INGEST_ASSETS, *FOLLOWING],
)
def archive_sensor(context: SensorEvaluationContext, settings: ConfigResource):
    current = scan_digests(settings)
    previous: dict[str, str] = (
        json.loads(context.cursor) if context.cursor else recorded_digests(settings, current)
    )
    changed = sorted(
        key for key in current.keys() | previous.keys() if current.get(key) != previous.get(key)
    )
    partition_requests = _new_partitions(context, current)
    alone = len(changed) == 1
    run_requests = [_run_request(key, previous, current, alone) for key in changed]
    if not run_requests and not partition_requests:
        runs = len(current)
        return SkipReason(f"no run added, changed or removed in the {runs} partitions scanned")
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps(current, sort_keys=True),
    )


def _run_request(
    key: str, previous: dict[str, str], current: dict[str, str], alone: bool
) -> RunRequest:
    """The run refreshing partition `key`, and the analytics after it when it is `alone` to
    have changed."""
    return RunRequest(
        partition_key=key,
        run_key=f"{key}:{previous.get(key, '-')}>{current.get(key, '-')}",
        asset_selection=[*INGEST_KEYS, *FOLLOWING_KEYS] if alone else INGEST_KEYS,
        run_config=FOLLOWING_CONFIG if alone else INGEST_CONFIG,
        tags={"runcrawler/trigger": "archive_sensor"},
    )


automation_sensor = AutomationConditionSensorDefinition(
    "runcrawler_automation",
    target=AssetSelection.all(),
    default_status=SENSOR_STATUS,
    minimum_interval_seconds=CONFIG_AT_LOAD.automation_interval_seconds,
    description="Refreshes the analytics and the report once per batch of `runs` updates.",
)
