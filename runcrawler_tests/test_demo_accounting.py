"""The demo's Slurm accounting (issue 17): `demo-archive --accounting` writes sacct dumps of
the runs' jobs, with their truth, and plants what a join must cope with.

These tests read the dumps as text, never the accounting reader: they check the generator
against what the issue asks of it, so that the reader and the join can be checked
against the truth."""

from __future__ import annotations

import gzip
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runcrawler_assets.cli import main
from runcrawler_assets.demo import ACCOUNTING_FIELDS, UNARCHIVED_FIELDS, USERS

RUNS, CASES, SEED = 300, 36, 5
HEADER = (
    "JobID|JobName|User|Account|Partition|State|ExitCode|Submit|Start|End|Elapsed|Timelimit|"
    "AllocCPUS|NNodes|ReqMem|MaxRSS|NodeList|WorkDir"
)
FIELDS = HEADER.split("|")
ARCHIVE_CLUSTERS = {"kraken", "irene", "jean-zay", "topaze"}
ID_IN_NAME = re.compile(r"(?:slurm-(\d+)\.out|.+\.[oe](\d+))(?:\.gz)?")


@dataclass(frozen=True)
class Sighting:
    """A job in one monthly dump: its job line and its steps' lines, as dicts."""

    file: str
    row: dict[str, str]
    steps: list[dict[str, str]]


@dataclass(frozen=True)
class Demo:
    root: Path
    dumps: Path
    truth: list[dict[str, Any]]
    unarchived: list[dict[str, Any]]
    sightings: dict[tuple[str, str], list[Sighting]]  # (cluster, JobID), in month order


def write_demo(base: Path, runs: int, cases: int, seed: int, *extra: str) -> Any:
    args = ["demo-archive", str(base / "archive"), "--runs", str(runs), "--seed", str(seed),
            "--openfoam", str(cases), "--truth", str(base / "truth.jsonl"), *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def read_dumps(dumps: Path) -> dict[tuple[str, str], list[Sighting]]:
    """Every job line of every dump, its steps with it, checking each file's header."""
    sightings: dict[tuple[str, str], list[Sighting]] = defaultdict(list)
    for path in sorted(dumps.glob("*/sacct_*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == HEADER, path
        for text in lines[1:]:
            row = dict(zip(FIELDS, text.split("|"), strict=True))
            job_id, step, _ = row["JobID"].partition(".")
            if step:
                sightings[path.parent.name, job_id][-1].steps.append(row)
            else:
                sightings[path.parent.name, job_id].append(Sighting(path.name, row, []))
    return sightings


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    base = tmp_path_factory.mktemp("accounting")
    result = write_demo(base, RUNS, CASES, SEED, "--accounting", str(base / "sacct"))
    assert result.exit_code == 0, result.output
    truth = [json.loads(line) for line in (base / "truth.jsonl").read_text("utf-8").splitlines()]
    unarchived_file = base / "truth.unarchived.jsonl"
    unarchived = [json.loads(line) for line in unarchived_file.read_text("utf-8").splitlines()]
    sightings = read_dumps(base / "sacct")
    return Demo(base / "archive", base / "sacct", truth, unarchived, sightings)


def final(demo: Demo, cluster: str, job_id: str) -> dict[str, str]:
    """A job's line in the last dump that holds it: how it ended."""
    return demo.sightings[cluster, job_id][-1].row


def last_steps(demo: Demo, cluster: str, job_id: str) -> list[dict[str, str]]:
    return demo.sightings[cluster, job_id][-1].steps


def keys_of(demo: Demo, job: dict[str, Any]) -> list[tuple[str, str]]:
    """The job lines of a job of the truth: its own, or its heterogeneous components'."""
    return [
        (cluster, job_id)
        for cluster, job_id in demo.sightings
        if cluster == job["cluster"] and re.sub(r"\+\d+$", "", job_id) == job["job_id"]
    ]


def work_dir(run_path: str) -> str:
    """Where a run's job ran: /scratch/<user>/<the run's path below its user folder>."""
    return "/".join(("/scratch", *run_path.split("/")[1:]))


def month_list(names: list[str]) -> list[tuple[int, int]]:
    return [(int(name[6:10]), int(name[11:13])) for name in names]


def month_of(text: str) -> tuple[int, int]:
    moment = datetime.fromisoformat(text)
    return moment.year, moment.month


def months(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    found, (year, month) = [], first
    while (year, month) <= last:
        found.append(f"sacct_{year:04d}-{month:02d}.txt")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def seconds(duration: str) -> int:
    days, _, clock = duration.rpartition("-")
    hours, minutes, secs = (int(part) for part in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + secs


def megabytes(size: str, cpus: int, nodes: int) -> float:
    number, unit, scope = re.fullmatch(r"(\d+)([KMG]?)([nc]?)", size).groups()
    value = int(number) * {"K": 1 / 1024, "M": 1, "G": 1024, "": 1 / 1024**2}[unit]
    return value * {"n": nodes, "c": cpus, "": 1}[scope]


def accounting(demo: Demo, **wanted: Any) -> list[dict[str, Any]]:
    """The truth lines whose `accounting` has these values."""
    return [
        run
        for run in demo.truth
        if all(run["accounting"][key] == value for key, value in wanted.items())
    ]


def run_texts(run_dir: Path) -> list[str]:
    """The name and (gunzipped) content of each file of a run, in turn."""
    texts = []
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            texts += [path.name, (gzip.decompress(data) if path.suffix == ".gz" else data).decode(
                "utf-8", "replace")]  # fmt: skip
    return texts


# ---------------------------------------------------------------- the dumps


def test_dumps_exist_per_cluster_and_month_with_the_sacct_header(demo: Demo) -> None:
    assert {path.name for path in demo.dumps.iterdir()} == ARCHIVE_CLUSTERS | {"spare"}
    lasts = set()
    for cluster in ARCHIVE_CLUSTERS:
        names = sorted(path.name for path in (demo.dumps / cluster).iterdir())
        first, last = month_list([names[0], names[-1]])
        assert names == months(first, last)  # every month, those without a job too
        lasts.add(last)
        for name in names:
            assert (demo.dumps / cluster / name).read_text("utf-8").splitlines()[0] == HEADER
    assert len(lasts) == 1  # dumped together


def test_every_job_appears_in_exactly_the_dumps_of_its_months(demo: Demo) -> None:
    last = {
        c: max(month_list([p.name for p in (demo.dumps / c).iterdir()])) for c in ARCHIVE_CLUSTERS
    }
    overlapping = 0
    for (cluster, job_id), seen in demo.sightings.items():
        row = seen[-1].row
        end = month_of(row["End"]) if row["End"] != "Unknown" else last.get(cluster)
        assert [one.file for one in seen] == months(month_of(row["Submit"]), end), job_id
        assert {one.row["State"] for one in seen[:-1]} <= {"RUNNING", "PENDING"}, job_id
        assert not any(step["MaxRSS"] for one in seen[:-1] for step in one.steps), job_id
        overlapping += len(seen) > 1
    assert overlapping


def test_every_matched_run_has_its_last_job_in_the_dumps_and_no_other_run_does(
    demo: Demo,
) -> None:
    for run in demo.truth:
        found = run["accounting"]
        key = (run["cluster"], found["job_id"])
        if found["accounting_matched"]:
            row = final(demo, *key)
            assert (row["User"], row["WorkDir"]) == (run["user"], work_dir(run["run_path"]))
        else:
            assert found["matched_by"] is None
            assert key not in demo.sightings, key


def test_job_ids_are_unique_per_cluster_across_the_archive(demo: Demo) -> None:
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)  # the WorkDirs of an id
    for (cluster, job_id), seen in demo.sightings.items():
        owners[cluster, re.split(r"[_+]", job_id)[0]].add(seen[-1].row["WorkDir"])
    for run in demo.truth:
        for path in (demo.root / run["run_path"]).rglob("*"):
            if match := ID_IN_NAME.fullmatch(path.name):
                job_id = match.group(1) or match.group(2)
                owners[run["cluster"], job_id].add(work_dir(run["run_path"]))
    assert len(owners) > RUNS
    assert {key: where for key, where in owners.items() if len(where) > 1} == {}


def test_a_restarted_runs_last_job_has_its_largest_id(demo: Demo) -> None:
    restarted = [r for r in demo.truth if r["n_restarts"] and r["accounting"]["accounting_matched"]]
    assert restarted
    for run in restarted:
        wanted = work_dir(run["run_path"])
        ids = [int(j) for (c, j), seen in demo.sightings.items()
               if c == run["cluster"] and seen[-1].row["WorkDir"] == wanted]  # fmt: skip
        assert len(ids) == run["n_restarts"] + 1
        assert max(ids) == int(run["accounting"]["job_id"])


# ---------------------------------------------------------------- the truth


def test_every_run_has_the_accounting_truth_the_dumps_hold(demo: Demo) -> None:
    assert len(demo.truth) == RUNS + CASES
    for run in demo.truth:
        found = run["accounting"]
        assert list(found) == list(ACCOUNTING_FIELDS)
        if not found["accounting_matched"]:
            continue
        row = final(demo, run["cluster"], found["job_id"])
        cpus, nodes = int(row["AllocCPUS"]), int(row["NNodes"])
        steps = last_steps(demo, run["cluster"], found["job_id"])
        sizes = [megabytes(step["MaxRSS"], 0, 0) for step in steps if step["MaxRSS"]]
        assert found["queue"] == row["Partition"] and found["account"] == row["Account"]
        assert (found["alloc_cpus"], found["alloc_nodes"]) == (cpus, nodes)
        assert found["exit_code"] == row["ExitCode"]
        assert found["scheduler_state"] == row["State"].split()[0]
        assert found["req_mem_mb"] == pytest.approx(megabytes(row["ReqMem"], cpus, nodes))
        assert found["max_rss_mb"] == (pytest.approx(max(sizes)) if sizes else None)
        limit = row["Timelimit"]
        assert found["time_limit_s"] == (None if limit[0].isalpha() else seconds(limit))
        if row["Start"] != "Unknown":
            wait = datetime.fromisoformat(row["Start"]) - datetime.fromisoformat(row["Submit"])
            assert found["queue_wait_s"] == wait.total_seconds() > 0
        if "Unknown" not in (row["Start"], row["End"]):
            assert (found["started_at"], found["ended_at"]) == (row["Start"], row["End"])
        else:
            assert (found["started_at"], found["ended_at"]) == (run["started_at"], run["ended_at"])


def test_the_scheduler_decides_only_where_the_files_cannot(demo: Demo) -> None:
    changed = Counter()
    for run in demo.truth:
        found = run["accounting"]
        if (found["status"], found["error_category"]) == (run["status"], run["error_category"]):
            continue
        assert found["accounting_matched"]
        assert run["status"] in ("truncated", "running") or run["error_category"] == "unknown"
        assert found["status"] == "killed"
        changed[found["scheduler_state"], found["error_category"]] += 1
    assert changed[("TIMEOUT", "time_limit")] >= 2
    assert set(changed) <= {
        ("TIMEOUT", "time_limit"),
        ("NODE_FAIL", "cancelled"),
        ("OUT_OF_MEMORY", "out_of_memory"),
        ("CANCELLED", "cancelled"),
    }


def test_timeouts_ran_exactly_their_time_limit(demo: Demo) -> None:
    rows = [seen[-1].row for seen in demo.sightings.values()]
    timeouts = [row for row in rows if row["State"] == "TIMEOUT"]
    assert timeouts
    for row in timeouts:
        assert row["Timelimit"] == row["Elapsed"] or row["Timelimit"] == "UNLIMITED"
    for run in demo.truth:
        if run["error_category"] == "time_limit" and run["accounting"]["accounting_matched"]:
            assert run["accounting"]["scheduler_state"] == "TIMEOUT"


def test_states_exit_codes_and_memory_come_in_every_form(demo: Demo) -> None:
    rows = [seen[-1].row for seen in demo.sightings.values()]
    states = {row["State"].split()[0] for row in rows}
    assert {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "RUNNING"} <= states
    assert any(re.fullmatch(r"CANCELLED by \d+", row["State"]) for row in rows)
    assert {"0:0", "1:0"} <= {row["ExitCode"] for row in rows}
    assert {"Mn", "Mc", "G"} <= {re.sub(r"^\d+", "", row["ReqMem"]) for row in rows}
    assert any(row["End"] == "Unknown" and row["State"] == "RUNNING" for row in rows)
    assert any(row["Timelimit"] == "Partition_Limit" for row in rows)
    steps = [step for seen in demo.sightings.values() for step in seen[-1].steps]
    assert {step["JobID"].rpartition(".")[2] for step in steps} >= {"batch", "extern", "0"}


def test_big_jobs_and_irene_wait_longer_in_the_queue(demo: Demo) -> None:
    def median_wait(cluster: str, dimension: int) -> float:
        waits = [run["accounting"]["queue_wait_s"] for run in demo.truth
                 if run["cluster"] == cluster and run["dimension"] == dimension
                 and run["accounting"]["queue_wait_s"] is not None]  # fmt: skip
        return statistics.median(waits)

    assert median_wait("irene", 3) > 3 * 3600
    assert median_wait("irene", 3) > median_wait("irene", 2) > median_wait("topaze", 2)


def test_users_ask_for_time_by_habit(demo: Demo) -> None:
    def ratio(login: str) -> float:
        done = accounting(demo, scheduler_state="COMPLETED")
        return statistics.median(
            run["accounting"]["time_limit_s"]
            / (datetime.fromisoformat(run["accounting"]["ended_at"])
               - datetime.fromisoformat(run["accounting"]["started_at"])).total_seconds()
            for run in done
            if run["user"] == login and run["accounting"]["time_limit_s"]
        )  # fmt: skip

    assert ratio("jdupont") >= 3 and ratio("m.garcia") >= 3
    assert ratio("jérôme") < 2


# ---------------------------------------------------------------- planted


def test_some_runs_are_missing_from_the_dumps(demo: Demo) -> None:
    ran_jobs = [r for r in demo.truth if r["solver"] == "avbp" and r["status"] != "not_started"
                and r["error_template"] != "launch.ms_mpi_init"]  # fmt: skip
    missing = [r for r in ran_jobs if not r["accounting"]["accounting_matched"]]
    assert 2 <= len(missing) <= 0.05 * len(ran_jobs)


def test_runs_whose_files_name_no_job_are_matched_by_work_dir(demo: Demo) -> None:
    by_work_dir = accounting(demo, matched_by="work_dir")
    assert by_work_dir
    for run in by_work_dir:
        texts = run_texts(demo.root / run["run_path"])
        assert not any(ID_IN_NAME.fullmatch(text) for text in texts[::2])
        assert not any(run["accounting"]["job_id"] in text for text in texts[1::2])
    assert accounting(demo, matched_by="job_id")


def test_a_log_that_just_stops_is_a_timeout_only_the_dumps_know(demo: Demo) -> None:
    planted = [run for run in accounting(demo, matched_by="work_dir", scheduler_state="TIMEOUT")
               if run["status"] == "truncated"]  # fmt: skip
    assert len(planted) >= 2
    for run in planted:
        assert (run["accounting"]["status"], run["accounting"]["error_category"]) == (
            "killed",
            "time_limit",
        )
        assert not any("TIME LIMIT" in text for text in run_texts(demo.root / run["run_path"]))


def test_jobs_no_run_matches_are_planted_and_listed(demo: Demo) -> None:
    ours = [job for job in demo.unarchived if not job.get("other_users")]
    assert len(ours) >= 3
    logins = {user.login for user in USERS}
    run_dirs = {work_dir(run["run_path"]) for run in demo.truth}
    matched = {(r["cluster"], r["accounting"]["job_id"]) for r in demo.truth}
    for job in ours:
        assert list(job) == list(UNARCHIVED_FIELDS)
        assert job["user"] in logins and job["cluster"] in ARCHIVE_CLUSTERS
        seen = keys_of(demo, job)
        assert seen and not set(seen) & matched
        row = final(demo, *seen[0])
        assert row["WorkDir"] not in run_dirs
        assert (row["User"], row["State"].split()[0]) == (job["user"], job["state"])
    shapes = Counter(
        "array" if "_" in job["job_id"] else "never started" if job["start_at"] is None
        else "heterogeneous" if (job["cluster"], job["job_id"] + "+1") in demo.sightings
        else "single"
        for job in ours
    )  # fmt: skip
    assert shapes["heterogeneous"] == 1 and shapes["never started"] == 1 and shapes["array"] >= 2
    steps = {step["JobID"] for seen in demo.sightings.values() for step in seen[-1].steps}
    assert any(re.fullmatch(r"\d+_\d+\.batch", s) for s in steps)
    assert any(re.fullmatch(r"\d+\+1\.0", s) for s in steps)


def test_a_retired_cluster_holds_other_users_jobs(demo: Demo) -> None:
    assert [p.name for p in (demo.dumps / "spare").iterdir()] == ["sacct_2024-01.txt"]
    others = [job for job in demo.unarchived if job.get("other_users")]
    spare = [key for key in demo.sightings if key[0] == "spare"]
    assert len(others) == len(spare) >= 3
    assert {job["cluster"] for job in others} == {"spare"}
    assert not {job["user"] for job in others} & {user.login for user in USERS}
    assert any(final(demo, *key)["Timelimit"] == "UNLIMITED" for key in spare)


def test_cpu_hours_of_unarchived_jobs_are_cpus_times_elapsed(demo: Demo) -> None:
    for job in demo.unarchived:
        keys = keys_of(demo, job)
        hours = sum(int(final(demo, *k)["AllocCPUS"]) * seconds(final(demo, *k)["Elapsed"])
                    for k in keys) / 3600  # fmt: skip
        assert job["cpu_hours"] == round(hours, 3)


# ---------------------------------------------------------------- determinism and the CLI


def test_the_same_seed_writes_the_same_dumps_and_truth(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = write_demo(tmp_path / name, 80, 12, 3, "--accounting", str(tmp_path / name / "d"))
        assert result.exit_code == 0, result.output
    first = {p.relative_to(tmp_path / "a"): p for p in (tmp_path / "a" / "d").rglob("*.txt")}
    second = {p.relative_to(tmp_path / "b"): p for p in (tmp_path / "b" / "d").rglob("*.txt")}
    assert first and first.keys() == second.keys()
    for relative, path in first.items():
        assert path.read_bytes() == second[relative].read_bytes(), relative
        assert path.stat().st_mtime == second[relative].stat().st_mtime, relative
    for name in ("truth.jsonl", "truth.unarchived.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_accounting_leaves_the_archive_as_it_was(tmp_path: Path) -> None:
    assert write_demo(tmp_path / "a", 60, 9, 2).exit_code == 0
    assert write_demo(tmp_path / "b", 60, 9, 2, "--accounting", str(tmp_path / "d")).exit_code == 0
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*")
             if p.is_file() and p.parent != tmp_path / "a"}  # fmt: skip
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*")
              if p.is_file() and p.parent != tmp_path / "b"}  # fmt: skip
    assert first == second
    plain = [json.loads(line) for line in (tmp_path / "a" / "truth.jsonl").read_text().splitlines()]
    joined = [
        json.loads(line) for line in (tmp_path / "b" / "truth.jsonl").read_text().splitlines()
    ]
    assert [dict(run, accounting=None) for run in plain] == [
        dict(run, accounting=None) for run in joined
    ]


@pytest.mark.parametrize("where", ["archive/sacct", "."])
def test_the_cli_refuses_an_accounting_dir_inside_or_around_the_archive(
    tmp_path: Path, where: str
) -> None:
    result = write_demo(tmp_path, 5, 0, 0, "--accounting", str(tmp_path / where))
    assert result.exit_code == 1
    assert "inside one another" in result.output
    assert not (tmp_path / "archive").exists()


def test_the_cli_refuses_a_non_empty_accounting_dir(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("x")
    result = write_demo(tmp_path, 5, 0, 0, "--accounting", str(tmp_path / "d"))
    assert result.exit_code == 1 and "not empty" in result.output
    assert not (tmp_path / "archive").exists()


def test_the_cli_refuses_accounting_for_hard_linked_copies(tmp_path: Path) -> None:
    result = write_demo(tmp_path, 50, 0, 0, "--accounting", str(tmp_path / "d"),
                        "--templates", "10")  # fmt: skip
    assert result.exit_code == 1 and "--templates 0" in result.output
    assert not (tmp_path / "archive").exists() and not (tmp_path / "d").exists()
