"""The schedules: the nightly reconciliation, and the digests.

The nightly reconciliation parses everything again, whatever the sensor saw.

The sensor compares names, sizes and modification times; a file edited in
place with the same size and time, or a clock skewed between cluster and
server, escapes it. Once a night this schedule rescans and re-parses every
partition in one run (a single-run backfill over the full key range).
"""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.partitions import all_partition_tags
from runcrawler_assets.defs.sensors import AUTOMATION_ON, CONFIG_AT_LOAD

SCHEDULE_STATUS = DefaultScheduleStatus.RUNNING if AUTOMATION_ON else DefaultScheduleStatus.STOPPED

reconcile_job = define_asset_job(
    "reconcile_archive",
    selection=INGEST_ASSETS,
    description="Rescan the whole archive and parse every run again.",
)


@schedule(
    job=reconcile_job,
    cron_schedule="30 2 * * *",
    default_status=SCHEDULE_STATUS,
    description="Nightly: rescan and re-parse every partition (what the sensor could miss).",
)
def nightly_reconciliation(context: ScheduleEvaluationContext):
    tags = all_partition_tags(context.instance)
    if not tags:
        return SkipReason("no partition registered yet: the archive sensor adds them")
    return RunRequest(
        run_key=None,
        tags={**tags, "runcrawler/trigger": "nightly_reconciliation"},
        run_config={"ops": {"parsed_runs": {"config": {"reparse_all": True}}}},
    )


send_digests_job = define_asset_job(
    "send_digests",
    selection=["digests"],
    description="Send each user the digest of their runs since the last one, and the managers "
    "their summary.",
)
# Stopped until an SMTP server is set: a schedule that can only fail is no help.
DIGEST_STATUS = (
    DefaultScheduleStatus.RUNNING
    if AUTOMATION_ON and CONFIG_AT_LOAD.smtp_host
    else DefaultScheduleStatus.STOPPED
)


@schedule(
    job=send_digests_job,
    cron_schedule=CONFIG_AT_LOAD.digest_cron,
    default_status=DIGEST_STATUS,
    description="Weekly by default (RUNCRAWLER_DIGEST_CRON): the digests since the last ones, "
    "each sent once; stopped until RUNCRAWLER_SMTP_HOST is set.",
)
def digest_schedule(context: ScheduleEvaluationContext):
    return RunRequest(run_key=None, tags={"runcrawler/trigger": "digest_schedule"})
