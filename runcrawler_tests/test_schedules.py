"""The nightly reconciliation: one run over every partition, parsing everything again."""

from dagster import RunRequest, SkipReason, build_schedule_context, instance_for_test

from runcrawler_assets.archive.discovery import discover_partition, list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse, refresh_partitions
from runcrawler_assets.defs.partitions import register_partitions
from runcrawler_assets.defs.schedules import nightly_reconciliation
from runcrawler_assets.demo import generate_archive


def test_with_no_partition_the_schedule_skips_and_says_why():
    with instance_for_test() as instance:
        result = nightly_reconciliation(build_schedule_context(instance=instance))
    assert isinstance(result, SkipReason)
    assert "no partition registered" in result.skip_message


def test_the_schedule_requests_one_run_over_every_partition_reparsing_all():
    with instance_for_test() as instance:
        pairs = [("irene", "bob"), ("kraken", "alice"), ("kraken", "bob")]
        register_partitions(instance, pairs)
        request = nightly_reconciliation(build_schedule_context(instance=instance))
    assert isinstance(request, RunRequest)
    assert request.partition_key_range is not None
    # the dense cluster × user product, first to last: every partition, one run
    assert (request.partition_key_range.start, request.partition_key_range.end) == (
        "irene|alice",
        "kraken|bob",
    )
    assert request.run_config["ops"]["parsed_runs"]["config"] == {"reparse_all": True}


def test_reparse_all_parses_unchanged_runs_again(tmp_path):
    generate_archive(tmp_path / "archive", runs=30, seed=2)
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    pairs = list_partitions(settings)
    crawl_into_warehouse(settings, pairs)
    discoveries = [discover_partition(settings, c, u) for c, u in pairs]
    again = refresh_partitions(settings, discoveries, workers=1)
    assert sum(r.parsed for r in again) == 0
    forced = refresh_partitions(settings, discoveries, workers=1, reparse_all=True)
    assert sum(r.parsed for r in forced) == 30
