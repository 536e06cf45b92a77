"""walk_runs: markers answered from the listing, other parsers asked, links never followed."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from runcrawler_assets.archive.discovery import DiscoveredRun, Problem, walk_runs
from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers import registered_parsers
from runcrawler_assets.solvers.rundir import MarkerFileParser


class DetectOnly:
    """A third-party parser implementing only the protocol: a run holds a `case.toy` folder."""

    name = "toy"

    def __init__(self) -> None:
        self.asked: list[Path] = []

    def detect(self, run_dir: Path) -> bool:
        self.asked.append(run_dir)
        return (run_dir / "case.toy").is_dir()

    def parse(self, run_dir: Path, archive_root: Path, now: datetime | None = None) -> RunRecord:
        raise NotImplementedError


def _unused_body(*_args: object) -> RunRecord:
    raise NotImplementedError


def found(root: Path, parsers) -> list[tuple[str, str]]:
    return [
        (item.run_path, item.solver)
        if isinstance(item, DiscoveredRun)
        else (item.path, item.reason)
        for item in walk_runs(root, root, parsers)
    ]


def test_a_detect_only_parser_is_still_asked_after_the_marker_parsers(tmp_path: Path) -> None:
    (tmp_path / "u" / "avbp_run").mkdir(parents=True)
    (tmp_path / "u" / "avbp_run" / "run.params").write_text("")
    (tmp_path / "u" / "toy_run" / "case.toy").mkdir(parents=True)
    toy = DetectOnly()
    assert found(tmp_path, (*registered_parsers(), toy)) == [
        ("u/avbp_run", "avbp"),
        ("u/toy_run", "toy"),
    ]
    assert tmp_path / "u" / "avbp_run" not in toy.asked  # claimed from the listing first


def test_a_marker_reached_through_a_link_claims_nothing(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "system").mkdir(parents=True)
    (elsewhere / "system" / "controlDict").write_text("")
    (elsewhere / "run.params").write_text("")
    run = tmp_path / "archive" / "u" / "case"
    run.mkdir(parents=True)
    os.symlink(elsewhere / "system", run / "system")
    os.symlink(elsewhere / "run.params", run / "run.params")
    root = tmp_path / "archive"
    items = list(walk_runs(root, root, registered_parsers()))
    assert not any(isinstance(item, DiscoveredRun) for item in items)
    assert sorted(item.path for item in items if isinstance(item, Problem)) == [
        "u/case/run.params",
        "u/case/system",
    ]


def test_a_nested_marker_needs_a_regular_file_at_its_end(tmp_path: Path) -> None:
    nested = MarkerFileParser("nested", "inputs/deck.in", _unused_body)
    (tmp_path / "a" / "inputs").mkdir(parents=True)
    (tmp_path / "a" / "inputs" / "deck.in").write_text("")
    (tmp_path / "b" / "inputs" / "deck.in").mkdir(parents=True)
    assert found(tmp_path, (nested,)) == [("a", "nested")]


def test_the_fingerprint_follows_files_not_subfolder_contents(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "MESH").mkdir(parents=True)
    (run / "run.params").write_text("")
    (run / "avbp.o1").write_text("start\n")

    def current() -> DiscoveredRun:
        (item,) = walk_runs(tmp_path, tmp_path, registered_parsers())
        assert isinstance(item, DiscoveredRun)
        return item

    before = current()
    assert (before.n_files, before.n_bytes) == (2, 6)
    (run / "MESH" / "mesh.h5").write_bytes(b"\0" * 10)
    assert current().fingerprint == before.fingerprint
    with (run / "avbp.o1").open("a") as log:
        log.write("more\n")
    assert current().fingerprint != before.fingerprint
