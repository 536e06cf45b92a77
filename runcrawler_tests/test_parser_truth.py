"""The AVBP parser against the demo generator's truth: every field of 2,000 runs."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from runcrawler_assets.demo import generate_archive
from runcrawler_assets.demo.avbp_endings import VARYING_WORDS
from runcrawler_assets.demo.avbp_output import ERROR_TEMPLATES
from runcrawler_assets.records import RunRecord
from runcrawler_assets.solvers import parse_run

RUNS = 2000
TIMESTAMP_FIELDS = {"created_at", "started_at", "ended_at"}
FLOAT_FIELDS = {"cpu_time_s", "wall_time_s", "cpu_hours", "efficiency", "efficiency_printed", "cfl"}
NOT_RECORD_FIELDS = {"error_template", "remedy"}


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("truth") / "archive"


@pytest.fixture(scope="module")
def truth_and_records(archive_root: Path) -> tuple[list[dict[str, Any]], dict[str, RunRecord]]:
    """The truth lines and the parsed record of every run, by run_path."""
    root, truth_file = archive_root, archive_root.parent / "truth.jsonl"
    generate_archive(root, runs=RUNS, seed=7, truth=truth_file)
    truth = [json.loads(line) for line in truth_file.read_text(encoding="utf-8").splitlines()]
    records = {}
    for params_file in root.rglob("run.params"):
        record = parse_run(params_file.parent, root)  # cluster and user as discovery decides
        records[record.run_path] = record
    return truth, records


def agrees(field: str, expected: Any, actual: Any) -> bool:
    """Equal, with floats to a relative 1e-3 and timestamps read from ISO 8601."""
    if expected is None or actual is None:
        return expected is None and actual is None
    if field in TIMESTAMP_FIELDS:
        return datetime.fromisoformat(expected) == actual
    if field in FLOAT_FIELDS:
        return math.isclose(expected, actual, rel_tol=1e-3)
    return expected == actual


def disagreements(truth: dict[str, Any], record: RunRecord) -> list[str]:
    return [
        f"{truth['run_path']}: {field} truth={expected!r} parsed={getattr(record, field)!r}"
        for field, expected in truth.items()
        if field not in NOT_RECORD_FIELDS and not agrees(field, expected, getattr(record, field))
    ]


@pytest.mark.slow
def test_every_truth_run_is_found_and_parsed(truth_and_records) -> None:
    truth, records = truth_and_records
    assert len(truth) == RUNS
    assert {t["run_path"] for t in truth} == set(records)


@pytest.mark.slow
def test_every_truth_field_agrees_with_the_parsed_record(truth_and_records) -> None:
    truth, records = truth_and_records
    problems: list[str] = []
    checked = 0
    for expected in truth:
        record = records.get(expected["run_path"])
        if record is None:
            problems.append(f"{expected['run_path']}: not parsed")
            continue
        checked += len(expected) - len(NOT_RECORD_FIELDS)
        problems.extend(disagreements(expected, record))
    rate = 1 - len(problems) / max(checked, 1)
    print(f"\nparser vs truth: {checked - len(problems)}/{checked} fields agree ({rate:.4%})")
    assert not problems, "\n".join(problems[:30])


WORDS_VARY = {t.id for t in ERROR_TEMPLATES if any(f"{{{w}}}" in t.text for w in VARYING_WORDS)}


@pytest.mark.slow
def test_runs_sharing_an_error_template_share_one_signature(truth_and_records) -> None:
    """Masking numbers, paths and hosts groups a template's messages; those whose words vary
    (a routine's name) are grouped by the template miner (test_signature_ids.py)."""
    truth, records = truth_and_records
    signatures: dict[str, set[str | None]] = defaultdict(set)
    for expected in truth:
        if expected.get("error_template") in WORDS_VARY:
            continue
        if expected.get("error_template") and expected["run_path"] in records:
            signatures[expected["error_template"]].add(
                records[expected["run_path"]].error_signature
            )
    split = {template: sigs for template, sigs in signatures.items() if len(sigs) != 1}
    assert signatures
    assert not split, split


@pytest.mark.slow
def test_the_truth_archive_holds_real_logs_mess(truth_and_records, archive_root: Path) -> None:
    """So that the comparison above covers the logs of issue #14 too (demo/avbp_mess.py)."""
    truth, _ = truth_and_records
    templates = {run["error_template"] for run in truth}
    assert {
        "launch.executable_not_found",
        "launch.srun_fpe",
        "launch.signal_11",
        "launch.ms_mpi_init",
        "mpirun.killed_signal_9",
    } <= templates
    log_paths = [run["log_path"] for run in truth if run["log_path"]]
    assert any(f"/{folder}/" in path for path in log_paths for folder in ("logs", "log", "output"))
    assert any(path.endswith((".o.gz", ".out.gz", "_log.txt.gz")) for path in log_paths)
    failed = [run for run in truth if run["status"] == "failed" and run["solver_version"]]
    texts = [gunzipped(archive_root / run["log_path"]) for run in failed]
    for printed in (
        rb"^\[\d+\] \[\d+\] ",  # ranks printing at once, a wrapped error
        rb"^\[1,\d+\]<stdout>: ",
        rb"^(?:\[\d+\] )?(?:ERROR|Error|\*\*\* Fatal)[^\n]*\n(?:\[\d+\])? {8,}\S",
    ):
        assert any(re.search(printed, text, re.M) for text in texts), printed


def gunzipped(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
