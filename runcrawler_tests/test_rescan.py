"""The sensor's rescan (archive/rescan.py) on a real archive: what it skips, what it still sees.

Listings are observed with an audit hook on `os.scandir` (the real calls, not a stand-in).
Scans pass a clock `SETTLE_NS` ahead, so that folders made by the test just before count as
settled (except in the test of that guard itself).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runcrawler_assets.archive.discovery import discover_partition, partition_digest
from runcrawler_assets.archive.rescan import (
    SETTLE_NS,
    PartitionState,
    discovery_from_scan,
    load_state,
    rescan_partition,
    save_state,
    state_file,
)
from runcrawler_assets.config import Config

REPO = Path(__file__).resolve().parent.parent
OLD = time.time() - 10 * 86400  # older than the running window: a finished run
CLUSTER, USER = "kraken", "jdoe"

_recorders: list[list[str]] = []
_vanishing: list[str] = []  # a folder to remove as the code under test opens it


def _on_audit(event: str, args: tuple) -> None:
    if event == "os.scandir" and _recorders:
        _recorders[-1].append(os.fsdecode(args[0]))
    elif event == "open" and _vanishing and isinstance(args[0], str) and args[0] in _vanishing:
        _vanishing.remove(args[0])
        shutil.rmtree(args[0])


sys.addaudithook(_on_audit)  # for the whole session (hooks cannot be removed): acts rarely


@contextmanager
def listings() -> Iterator[list[str]]:
    """The folders listed inside the block."""
    listed: list[str] = []
    _recorders.append(listed)
    try:
        yield listed
    finally:
        _recorders.pop()


def make_run(folder: Path, running: bool = False) -> Path:
    """An AVBP run folder (its marker and a log), finished unless `running`."""
    folder.mkdir(parents=True)
    for name in ("run.params", "avbp.o"):
        (folder / name).write_text(f"{name} of {folder.name}\n")
        if not running:
            os.utime(folder / name, (OLD, OLD))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Config:
    user = tmp_path / "archive" / CLUSTER / USER
    for case, runs in (("caseA", 3), ("caseB", 1)):
        for index in range(runs):
            make_run(user / case / f"run_{index}")
    (user / "notes").mkdir()
    return Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")


def scan(settings: Config, previous: PartitionState, settle: bool = True) -> PartitionState:
    later = time.time_ns() + SETTLE_NS + 1_000_000_000 if settle else None
    return rescan_partition(settings, CLUSTER, USER, previous, now_ns=later)


def assert_right(state: PartitionState, settings: Config) -> None:
    """The runs and digest a full discovery (no saved state) finds now."""
    truth = discover_partition(settings, CLUSTER, USER).runs
    assert set(state.runs) == {run.run_path for run in truth}
    assert state.digest == partition_digest(truth)


def test_an_unchanged_partition_lists_nothing_and_is_its_previous_state(settings):
    first = scan(settings, PartitionState())
    assert_right(first, settings)
    with listings() as listed:
        again = scan(settings, first)
    assert listed == []  # one stat per folder above the runs and per run, no listing
    assert again is first  # nothing to save


@pytest.mark.parametrize("change", ["add", "remove", "rename", "add deeper"])
def test_a_run_added_removed_or_renamed_under_an_unchanged_parent_is_seen(settings, change):
    first = scan(settings, PartitionState())
    case = settings.archive_root / CLUSTER / USER / "caseA"
    if change == "add":
        make_run(case / "run_9")
    elif change == "remove":
        for file in (case / "run_1").iterdir():
            file.unlink()
        (case / "run_1").rmdir()
    elif change == "rename":
        (case / "run_1").rename(case / "run_1b")
    else:
        make_run(settings.archive_root / CLUSTER / USER / "notes" / "sweep" / "run_0")
    with listings() as listed:
        state = scan(settings, first)
    assert_right(state, settings)
    assert state.digest != first.digest
    untouched = str(case.parent / "caseB")
    assert not [folder for folder in listed if folder.startswith(untouched)]


def test_a_file_appended_in_a_running_run_is_seen(settings):
    run = make_run(settings.archive_root / CLUSTER / USER / "caseB" / "live", running=True)
    first = scan(settings, PartitionState())
    folder_key = run.stat().st_mtime_ns, run.stat().st_ctime_ns
    with (run / "avbp.o").open("a") as log:
        log.write(" ---> Iteration  9999\n")
    assert (run.stat().st_mtime_ns, run.stat().st_ctime_ns) == folder_key
    state = scan(settings, first)
    assert_right(state, settings)
    assert state.digest != first.digest


def test_a_folder_a_parser_could_claim_without_a_new_entry_is_listed_every_time(settings):
    """OpenFOAM's marker is system/controlDict: adding it leaves the case folder's key."""
    case = settings.archive_root / CLUSTER / USER / "foam_case"
    (case / "system").mkdir(parents=True)
    first = scan(settings, PartitionState())
    key = case.stat().st_mtime_ns, case.stat().st_ctime_ns
    (case / "system" / "controlDict").write_text("application simpleFoam;\n")
    assert (case.stat().st_mtime_ns, case.stat().st_ctime_ns) == key
    state = scan(settings, first)
    assert_right(state, settings)
    assert f"{CLUSTER}/{USER}/foam_case" in state.runs


def test_a_folder_changed_just_before_the_scan_is_listed_again(settings):
    """A change later in the same timestamp tick would keep the folder's key: not trusted."""
    first = scan(settings, PartitionState())
    run = make_run(settings.archive_root / CLUSTER / USER / "caseB" / "run_new")
    second = scan(settings, first, settle=False)  # caseB and run_new changed just now
    with listings() as listed:
        scan(settings, second, settle=False)
    assert {str(run.parent), str(run)} <= set(listed)


def test_a_state_file_rewritten_by_another_process_is_read_again(settings):
    path = state_file(settings, CLUSTER, USER)
    first = scan(settings, PartitionState())
    save_state(path, first)
    assert load_state(path) == first
    make_run(settings.archive_root / CLUSTER / USER / "caseB" / "run_new")
    other_process = f"""
from pathlib import Path
from runcrawler_assets.archive.rescan import load_state, rescan_partition, save_state
from runcrawler_assets.config import Config
settings = Config(archive_root=Path({str(settings.archive_root)!r}), data_dir=Path("unused"))
path = Path({str(path)!r})
save_state(path, rescan_partition(settings, {CLUSTER!r}, {USER!r}, load_state(path)))
"""
    subprocess.run([sys.executable, "-c", other_process], cwd=REPO, check=True)
    loaded = load_state(path)
    assert f"{CLUSTER}/{USER}/caseB/run_new" in loaded.runs
    assert_right(loaded, settings)


@pytest.mark.parametrize("damage", ["truncated", "bit flipped", "empty", "not a state"])
def test_a_corrupt_state_file_means_one_full_scan_with_the_right_answer(settings, damage):
    first = scan(settings, PartitionState())
    path = state_file(settings, CLUSTER, USER)
    save_state(path, first)
    saved = path.read_bytes()
    at = saved.index(first.digest.encode())  # a flipped bit there still reads as a state
    damaged = {
        "truncated": saved[:-7],
        "bit flipped": saved[:at] + bytes([saved[at] ^ 1]) + saved[at + 1 :],
        "empty": b"",
        "not a state": b'[2, ["avbp"], "0123", {}]',  # the JSON of the previous format
    }[damage]
    corrupt = path.with_name("corrupt.state")  # a file this process never read nor wrote
    corrupt.write_bytes(damaged)
    previous = load_state(corrupt)
    assert previous == PartitionState()
    (settings.archive_root / CLUSTER / USER / "caseA" / "run_0" / "avbp.o").unlink()
    with listings() as listed:
        state = scan(settings, previous)
    assert_right(state, settings)
    relative = {Path(folder).relative_to(settings.archive_root).as_posix() for folder in listed}
    assert set(state.runs) <= relative  # every run listed


def test_a_discovery_from_the_scan_is_the_walk_s_and_walks_only_the_changed_runs(
    settings: Config,
):
    """`run_files` as the sensor and the crawl ask it: what changed since the last discovery
    (a run added, one changed, one removed, links beside the runs, one of them before the
    last scan) reads as a full walk reads it, and only the new and the changed run folders
    are walked."""
    last = discover_partition(settings, CLUSTER, USER)
    user = settings.archive_root / CLUSTER / USER
    (user / "newest").symlink_to(user / "caseB")  # seen by the scan, not by `last`
    save_state(state_file(settings, CLUSTER, USER), scan(settings, PartitionState()))
    make_run(user / "caseB" / "run_1")
    (user / "caseA" / "run_0" / "avbp.o2").write_text("restarted\n")
    for name in ("run.params", "avbp.o"):
        (user / "caseA" / "run_2" / name).unlink()
    (user / "caseA" / "run_2").rmdir()
    (user / "notes" / "latest").symlink_to(user / "caseA")
    patched, walked = discovery_from_scan(settings, CLUSTER, USER, last)
    assert patched == discover_partition(settings, CLUSTER, USER)
    assert walked == 2
    assert [problem.path.rpartition("/")[2] for problem in patched.problems] == ["newest", "latest"]


def test_a_folder_that_vanishes_between_its_stat_and_its_opening_is_reported_once(
    settings: Config,
):
    """The race of a remembered folder removed while the scan looks at it (its key stated,
    then its opening fails): one problem, as a walk that lost the same race reports it, and
    the folder not remembered, so that the next discovery is the walk's."""
    last = discover_partition(settings, CLUSTER, USER)
    save_state(state_file(settings, CLUSTER, USER), scan(settings, PartitionState()))
    vanishing = settings.archive_root / CLUSTER / USER / "caseA"
    _vanishing.append(str(vanishing))
    try:
        raced, _ = discovery_from_scan(settings, CLUSTER, USER, last)
    finally:
        _vanishing.clear()
    assert not vanishing.exists()  # the race happened, at the opening
    assert [(p.path, p.reason) for p in raced.problems] == [
        (f"{CLUSTER}/{USER}/caseA", "unreadable_folder")
    ]
    assert [run.run_path for run in raced.runs] == [f"{CLUSTER}/{USER}/caseB/run_0"]
    assert f"{CLUSTER}/{USER}/caseA" not in load_state(state_file(settings, CLUSTER, USER)).folders
    again, _ = discovery_from_scan(settings, CLUSTER, USER, raced)
    assert again == discover_partition(settings, CLUSTER, USER)
    assert again.problems == ()
