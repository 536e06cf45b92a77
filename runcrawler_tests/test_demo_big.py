"""Big demo archives: most runs hard-linked copies of a few rendered ones, true to the truth."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runcrawler_assets.archive.discovery import DiscoveredRun, walk_runs
from runcrawler_assets.cli import main
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.solvers import parse_run
from runcrawler_tests.test_parser_truth import disagreements

RUNS, TEMPLATES = 3000, 200


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    base = tmp_path_factory.mktemp("big")
    generate_archive(base / "archive", runs=RUNS, seed=2, truth=base / "truth.jsonl",
                     templates=TEMPLATES)  # fmt: skip
    lines = (base / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    return base / "archive", [json.loads(line) for line in lines]


def test_the_truth_has_one_line_per_run_directory(big) -> None:
    root, truth = big
    paths = [t["run_path"] for t in truth]
    assert len(paths) == len(set(paths)) == RUNS
    assert all((root / path / "run.params").is_file() for path in paths)


def test_copies_files_are_hard_links_to_the_templates(big) -> None:
    root, truth = big
    files = [p for t in truth[TEMPLATES:] for p in (root / t["run_path"]).rglob("*") if p.is_file()]
    assert files and all(os.stat(p).st_nlink > 1 for p in files)
    inodes = {os.stat(p).st_ino for t in truth for p in (root / t["run_path"]).rglob("*")
              if p.is_file()}  # fmt: skip
    assert len(inodes) < len(files) / 5


def test_a_crawl_of_the_copies_agrees_with_the_truth(big) -> None:
    root, truth = big
    found = [r for r in walk_runs(root, root) if isinstance(r, DiscoveredRun)]
    assert len(found) == RUNS
    by_path = {t["run_path"]: t for t in truth}
    wrong = []
    for run in found:
        record = parse_run(root / run.run_path, root)
        expected = by_path[record.run_path]
        assert (record.status, record.error_category) == (
            expected["status"],
            expected["error_category"],
        )
        wrong += disagreements(expected, record)
    assert wrong == []


def test_as_many_templates_as_runs_is_the_rendered_archive(tmp_path: Path) -> None:
    generate_archive(tmp_path / "a", runs=40, seed=3, truth=tmp_path / "a.jsonl")
    generate_archive(tmp_path / "b", runs=40, seed=3, truth=tmp_path / "b.jsonl", templates=40)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert all(p.stat().st_nlink == 1 for p in (tmp_path / "b").rglob("*") if p.is_file())


def test_the_command_lays_out_copies_and_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo-archive", str(tmp_path / "a"), "--runs", "300", "--templates", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "270 runs are copies of 30 rendered ones" in result.output
    assert "hard link" in CliRunner().invoke(main, ["demo-archive", "--help"]).output
