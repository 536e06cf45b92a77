"""A partition store's digests are kept beside it while its files stay the same, so that a
crawl with nothing to do compares the archive's scan with each store without reading its
index (issue 16: at a million runs ~2.5 s of ~8.5 s), and a store that changed in any way
is digested again."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from runcrawler_assets.archive.discovery import fingerprints_digest, list_partitions
from runcrawler_assets.archive.rescan import SETTLE_NS, scan_partition
from runcrawler_assets.archive.runstore import (
    DIGESTS_FILE,
    PartitionStore,
    QuarantineEntry,
    StoreDigests,
)
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import check_archive, crawl_into_warehouse
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.idle import swap_versions

RUNS = 40
OLD = 1_600_000_000  # 2020: every run long finished, every folder settled


def _aged(root: Path) -> None:
    """Every file and folder below `root` last changed in 2020, as an archive's runs are."""
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            os.utime(Path(folder) / name, (OLD, OLD))
        os.utime(folder, (OLD, OLD))


def _settled() -> None:
    """Wait until the folders aged now count as settled for a scan (their ctime is now)."""
    time.sleep(SETTLE_NS / 1e9 + 0.1)


@pytest.fixture
def crawled(tmp_path: Path) -> Config:
    settings = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    generate_archive(settings.archive_root, runs=RUNS, seed=5)
    _aged(settings.archive_root)
    crawl_into_warehouse(settings, list_partitions(settings), workers=1)
    return settings


def _store(settings: Config) -> PartitionStore:
    return PartitionStore(settings.runs_dir, *list_partitions(settings)[0])


def _read_from_files(store: PartitionStore) -> StoreDigests:
    index = store.read_index()
    fingerprints = fingerprints_digest((path, entry.fingerprint) for path, entry in index.items())
    return StoreDigests(fingerprints, store.content_digest())


def _index_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The partitions whose index is read from now on."""
    reads: list[str] = []
    read_index = PartitionStore.read_index

    def counted(store: PartitionStore) -> dict:
        reads.append(store.user)
        return read_index(store)

    monkeypatch.setattr(PartitionStore, "read_index", counted)
    return reads


def _check(settings: Config):
    return check_archive(settings, list_partitions(settings), *swap_versions(settings))


def test_the_digests_are_the_files_and_are_kept_beside_them(crawled: Config, monkeypatch):
    store = _store(crawled)
    (store.folder / DIGESTS_FILE).unlink(missing_ok=True)
    assert store.digests() == _read_from_files(store)
    assert (store.folder / DIGESTS_FILE).is_file()
    reads = _index_reads(monkeypatch)
    assert store.digests() == _read_from_files(store)
    assert reads == [store.user]  # the comparison's own read: `digests` read none


def test_a_crawl_with_nothing_to_do_reads_no_index(crawled: Config, monkeypatch):
    _settled()
    first = _check(crawled)  # the first scan: its state saved, each partition walked
    assert first.stale == []
    reads = _index_reads(monkeypatch)
    again = _check(crawled)
    assert again.stale == [] and again.runs == first.runs == RUNS
    assert reads == []


def test_an_index_rewritten_is_digested_again(crawled: Config):
    store = _store(crawled)
    kept = store.digests()
    index = store.read_index()
    path = next(iter(index))
    index[path] = index[path]._replace(fingerprint="another")
    store.write_index(index)
    changed = store.digests()
    assert changed == _read_from_files(store)
    assert changed.fingerprints != kept.fingerprints and changed.content != kept.content
    assert _check(crawled).stale == [(store.cluster, store.user)]


def test_a_quarantine_rewritten_changes_the_content_digest_only(crawled: Config):
    store = _store(crawled)
    kept = store.digests()
    entry = QuarantineEntry(store.cluster, store.user, "x/y", "no_log", "", "2020-01-01")
    store.write_quarantine([*store.read_quarantine(), entry])
    changed = store.digests()
    assert changed == _read_from_files(store)
    assert changed.content != kept.content and changed.fingerprints == kept.fingerprints


@pytest.mark.parametrize("damage", ["not json", '{"files": 3}', '{"fingerprints": "x"}', ""])
def test_a_damaged_digests_file_is_computed_again_and_written_again(crawled: Config, damage: str):
    store = _store(crawled)
    (store.folder / DIGESTS_FILE).write_text(damage)
    assert store.digests() == _read_from_files(store)
    reads_back = store.digests()
    assert reads_back == _read_from_files(store)
    assert "files" in (store.folder / DIGESTS_FILE).read_text()


def test_runs_the_scan_saw_but_no_crawl_parsed_leave_the_partition_to_refresh(
    crawled: Config,
):
    """A sensor's tick (or a crawl killed before its parse) saved a scan newer than the
    store: the kept digests are the old index's, so the partition is still to refresh."""
    store = _store(crawled)
    store.digests()
    user_dir = crawled.archive_root / store.cluster / store.user
    run = sorted(p.parent for p in user_dir.rglob("run.params"))[0]
    shutil.copytree(run, run.with_name(run.name + "_copy"))
    _aged(user_dir)
    _settled()
    _, changed = scan_partition(crawled, store.cluster, store.user)
    assert changed
    assert _check(crawled).stale == [(store.cluster, store.user)]
    assert _check(crawled).stale == [(store.cluster, store.user)]  # scanned already: the same


def test_a_partition_without_a_store_folder_gets_none(crawled: Config):
    store = PartitionStore(crawled.runs_dir, "nowhere", "nobody")
    assert store.digests() == StoreDigests(fingerprints_digest([]), store.content_digest())
    assert not store.folder.exists()
