"""The demo's remedies (issue 18): fixes, reruns, campaigns and a version regression,
planted in the archive with their truth, as the remedies analysis must recover them."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from runcrawler_assets.demo import KNOBS, TRUTH_FIELDS, generate_archive
from runcrawler_assets.demo.avbp_output import SOLVER_VERSIONS
from runcrawler_assets.solvers import parse_run

RUNS = 1500
FAILING = ("failed", "killed", "truncated")


@dataclass(frozen=True)
class Demo:
    root: Path
    truth: list[dict[str, Any]]

    @property
    def by_path(self) -> dict[str, dict[str, Any]]:
        return {run["run_path"]: run for run in self.truth}

    def remedies(self, kind: str) -> list[dict[str, Any]]:
        return [run for run in self.truth if (run["remedy"] or {}).get("kind") == kind]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One 1,500-run archive with its truth, shared read-only by the tests of this module."""
    base = tmp_path_factory.mktemp("remedies")
    generate_archive(base / "archive", runs=RUNS, seed=5, truth=base / "truth.jsonl")
    lines = (base / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    return Demo(base / "archive", [json.loads(line) for line in lines])


def parent(run_path: str) -> str:
    return run_path.rpartition("/")[0]


def folder(run_path: str) -> str:
    return run_path.rpartition("/")[2]


def previous_of(run: dict[str, Any]) -> str:
    remedy = run["remedy"]
    return remedy["continues"] if remedy["kind"] == "restart" else remedy["failed_run"]


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def params_lines(demo: Demo, run_path: str) -> list[str]:
    return (demo.root / run_path / "run.params").read_bytes().decode("utf-8").splitlines(True)


# ------------------------------------------------------------------ the truth


def test_every_truth_line_has_a_remedy_key_null_unless_planted(demo: Demo) -> None:
    assert "remedy" in TRUTH_FIELDS
    kinds = Counter((run["remedy"] or {}).get("kind") for run in demo.truth)
    assert set(kinds) == {None, "fix", "rerun", "restart", "campaign_start"}
    assert kinds[None] > 0.8 * RUNS
    assert len(demo.truth) == RUNS


def test_each_pattern_is_planted_often_enough_to_be_recovered(demo: Demo) -> None:
    assert len(demo.remedies("fix")) >= 20
    assert len(demo.remedies("rerun")) >= 10
    assert len(demo.remedies("campaign_start")) >= 8


# ------------------------------------------------------------------ follow-ups


def test_a_follow_up_is_the_next_run_of_its_folder_set_up_after_its_predecessor_ended(
    demo: Demo,
) -> None:
    folders: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in demo.truth:
        folders[parent(run["run_path"])].append(run)
    next_of = {}
    for runs in folders.values():
        runs.sort(key=lambda r: r["created_at"])
        next_of.update((a["run_path"], b["run_path"]) for a, b in pairwise(runs))
    by_path = demo.by_path
    follow_ups = [r for r in demo.truth if r["remedy"] and r["remedy"]["kind"] != "campaign_start"]
    for run in follow_ups:
        previous = by_path[previous_of(run)]
        assert next_of[previous["run_path"]] == run["run_path"]
        assert (run["user"], run["cluster"]) == (previous["user"], previous["cluster"])
        assert datetime.fromisoformat(run["created_at"]) > datetime.fromisoformat(
            previous["ended_at"]
        )


def test_a_fix_changes_only_its_keyword_and_succeeds(demo: Demo) -> None:
    by_path = demo.by_path
    for run in demo.remedies("fix"):
        remedy = run["remedy"]
        failed = by_path[remedy["failed_run"]]
        assert failed["status"] in FAILING
        assert failed["error_category"] in KNOBS.settings_failure_categories
        assert run["status"] == "success"
        assert changed(failed["params"], run["params"]) == {remedy["keyword"]} == {"cfl"}
        assert failed["params"]["cfl"] == remedy["before"]
        assert run["params"]["cfl"] == remedy["after"]
        assert float(remedy["after"]) < float(remedy["before"]) == failed["cfl"]


def test_a_rerun_changes_nothing_after_a_transient_failure_and_succeeds(demo: Demo) -> None:
    by_path = demo.by_path
    for run in demo.remedies("rerun"):
        failed = by_path[run["remedy"]["failed_run"]]
        assert failed["error_category"] in KNOBS.rerun_categories
        assert run["status"] == "success"
        assert run["params"] == failed["params"]


def test_run_params_files_differ_only_in_the_changed_line(demo: Demo) -> None:
    follow_ups = demo.remedies("fix") + demo.remedies("rerun") + demo.remedies("restart")
    for run in follow_ups:
        before = params_lines(demo, previous_of(run))
        after = params_lines(demo, run["run_path"])
        assert len(before) == len(after)
        differing = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(differing) == (0 if run["remedy"]["kind"] == "rerun" else 1)


def test_campaigns_restart_from_the_previous_run_solution(demo: Demo) -> None:
    by_path = demo.by_path
    chains: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in demo.remedies("restart"):
        chains[run["remedy"]["campaign"]].append(run)
        previous = by_path[run["remedy"]["continues"]]
        assert changed(previous["params"], run["params"]) == {"initial_solution_file"}
        solution = run["params"]["initial_solution_file"]
        assert solution.startswith(f"../{folder(previous['run_path'])}/SOLUT/")
    starts = demo.remedies("campaign_start")
    assert set(chains) == {run["run_path"] for run in starts}
    endings = Counter()
    for start in starts:
        assert start["remedy"]["campaign"] == start["run_path"]
        chain = [start, *sorted(chains[start["run_path"]], key=lambda r: r["created_at"])]
        assert 2 <= len(chain) <= 4
        for earlier, later in pairwise(chain):
            assert later["remedy"]["continues"] == earlier["run_path"]
        assert all(run["error_category"] == "time_limit" for run in chain[:-1])
        endings[chain[-1]["status"]] += 1
    assert endings["success"] > sum(endings.values()) / 2
    assert sum(endings.values()) > endings["success"]  # some never succeed


def test_the_parser_reads_the_planted_params(demo: Demo) -> None:
    for run in [demo.remedies(kind)[0] for kind in ("fix", "rerun", "restart")]:
        for path in (run["run_path"], previous_of(run)):
            record = parse_run(demo.root / path, demo.root)
            assert record is not None
            assert record.params == demo.by_path[path]["params"]


# ------------------------------------------------------------------ versions


def test_the_version_knobs_name_recent_versions(demo: Demo) -> None:
    versions = [v.version for v in SOLVER_VERSIONS]
    assert KNOBS.regressed_version in versions[-2:]
    assert KNOBS.neutral_version in versions[-2:]
    assert KNOBS.regressed_version != KNOBS.neutral_version


def test_the_regressed_version_fails_more_than_the_neutral_one(demo: Demo) -> None:
    def rate(version: str) -> float:
        runs = [r for r in demo.truth if r["solver_version"] == version and r["remedy"] is None]
        finished = [r for r in runs if r["status"] not in ("running", "not_started")]
        return sum(r["status"] in FAILING for r in finished) / len(finished)

    assert rate(KNOBS.regressed_version) > 1.15 * rate(KNOBS.neutral_version)


def test_a_follow_up_runs_its_predecessor_version(demo: Demo) -> None:
    by_path = demo.by_path
    pairs = [
        (run["solver_version"], by_path[previous_of(run)]["solver_version"])
        for run in demo.truth
        if run["remedy"] and run["remedy"]["kind"] != "campaign_start"
    ]
    printed = [(mine, theirs) for mine, theirs in pairs if mine and theirs]  # else no banner
    assert len(printed) > len(pairs) / 2
    assert all(mine == theirs for mine, theirs in printed)


# ------------------------------------------------------------------ other modes


def test_the_same_seed_plants_the_same_remedies(tmp_path: Path) -> None:
    def remedies(name: str) -> list[Any]:
        truth = tmp_path / f"{name}.jsonl"
        generate_archive(tmp_path / name, runs=400, seed=9, truth=truth)
        lines = truth.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["remedy"] for line in lines]

    first = remedies("a")
    assert any(first)
    assert first == remedies("b")


def test_hard_linked_copies_plant_no_remedy(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    generate_archive(tmp_path / "archive", runs=600, seed=9, truth=truth, templates=400)
    lines = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 600
    assert any(line["remedy"] for line in lines[:400])
    assert not any(line["remedy"] for line in lines[400:])
