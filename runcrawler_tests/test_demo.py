"""The demo archive generator: deterministic, true to the archive spec, holding its effects."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runcrawler_assets.cli import main
from runcrawler_assets.demo import (
    CLUSTERS,
    KNOBS,
    TRUTH_FIELDS,
    USERS,
    DemoArchiveError,
    generate_archive,
)
from runcrawler_assets.records import CATEGORY_NAMES, RunRecord, run_id_for
from runcrawler_assets.solvers.avbp.milestones import MILESTONES

RUNS = 2000
# contract-notes 9: the names of solver logs and of scheduler outputs, each maybe `.gz`,
# in the run folder or one of its log folders.
SOLVER_LOG = re.compile(r"(?:avbp\.o|job\.out|avbp_log\.txt|.+\.o\d+|log.*\.txt)(?:\.gz)?")
SCHEDULER_FILE = re.compile(r"(?:slurm-\d+\.out|.+\.e\d+)(?:\.gz)?")
LOG_FOLDERS = ("logs", "log", "output")
FAILING = ("failed", "killed", "truncated")
# MPI rank prefixes at a line's start: `[3] `, `[2] [3] `, `[1,3]<stdout>: ` (demo/avbp_mess.py).
RANK_PREFIXES = re.compile(r"^(?:\[\d+(?:[-,]\d+)*\](?:<stdout>:)? ?)+", re.M)


@dataclass(frozen=True)
class Demo:
    root: Path
    truth: list[dict[str, Any]]
    written_after: float  # POSIX time just before generation


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One 2,000-run archive with its truth, shared read-only by the tests of this module."""
    base = tmp_path_factory.mktemp("demo")
    started = time.time()
    generate_archive(base / "archive", runs=RUNS, seed=0, truth=base / "truth.jsonl")
    lines = (base / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    return Demo(base / "archive", [json.loads(line) for line in lines], started)


def read_text(path: Path) -> str:
    """A file as a parser sees it: gunzipped, invalid bytes replaced, line endings kept."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def run_files(run_dir: Path) -> list[Path]:
    """The files of a run: in its folder and in its log folders."""
    folders = [run_dir, *(run_dir / name for name in LOG_FOLDERS)]
    return [p for folder in folders if folder.is_dir() for p in folder.iterdir() if p.is_file()]


def logs_of(run_dir: Path) -> list[Path]:
    return [p for p in run_files(run_dir) if SOLVER_LOG.fullmatch(p.name)]


def printed_in(message: str, text: str) -> bool:
    """Whether a parser's error message was printed in `text`, maybe as real logs print it.

    Several ranks prefix it (`[3] `), a long one wraps onto an indented line (so spaces
    and line ends are folded), MS-MPI's report joins `job aborted:` and its rank
    group's message over the lines between them.
    """
    folded = " ".join(RANK_PREFIXES.sub("", text).split())
    if message.startswith("job aborted: "):
        return all(part in folded for part in message.split(": ", 1))
    return " ".join(message.split()) in folded


def runs_with(demo: Demo, *statuses: str) -> list[dict[str, Any]]:
    return [run for run in demo.truth if run["status"] in statuses]


def failure_rate(runs: Iterable[dict[str, Any]]) -> float:
    outcomes = [run["status"] in FAILING for run in runs]
    return sum(outcomes) / len(outcomes)


def by(runs: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[Any, list]:
    groups: dict[Any, list] = defaultdict(list)
    for run in runs:
        groups[key(run)].append(run)
    return dict(groups)


def median_efficiency(runs: Iterable[dict[str, Any]]) -> float:
    return statistics.median(run["efficiency"] for run in runs)


def snapshot(root: Path, unstable_mtimes: set[str]) -> dict[str, tuple[str, int | None]]:
    """Every path under `root`: a hash of its contents and its mtime (files only)."""
    found: dict[str, tuple[str, int | None]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir():
            found[relative] = ("dir", None)
        else:
            mtime = None if relative in unstable_mtimes else path.stat().st_mtime_ns
            found[relative] = (hashlib.sha256(path.read_bytes()).hexdigest(), mtime)
    return found


def generate_with_truth(base: Path, runs: int, seed: int) -> tuple[Path, list[dict[str, Any]]]:
    root, truth = base / "archive", base / "truth.jsonl"
    generate_archive(root, runs=runs, seed=seed, truth=truth)
    return root, [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines()]


def running_logs(truth: list[dict[str, Any]]) -> set[str]:
    return {run["log_path"] for run in truth if run["status"] == "running"}


# ------------------------------------------------------------------ determinism


def test_the_same_seed_writes_the_same_paths_contents_and_mtimes(tmp_path: Path) -> None:
    first, truth = generate_with_truth(tmp_path / "a", runs=150, seed=3)
    second, _ = generate_with_truth(tmp_path / "b", runs=150, seed=3)
    assert snapshot(first, running_logs(truth)) == snapshot(second, running_logs(truth))


def test_the_same_seed_writes_the_same_truth(tmp_path: Path) -> None:
    _, first = generate_with_truth(tmp_path / "a", runs=100, seed=3)
    _, second = generate_with_truth(tmp_path / "b", runs=100, seed=3)
    assert first == second


def test_different_seeds_write_different_archives(tmp_path: Path) -> None:
    first, _ = generate_with_truth(tmp_path / "a", runs=100, seed=1)
    second, _ = generate_with_truth(tmp_path / "b", runs=100, seed=2)
    assert snapshot(first, set()) != snapshot(second, set())


def test_logs_of_running_runs_are_modified_at_the_time_of_writing(demo: Demo) -> None:
    running = runs_with(demo, "running")
    assert running
    for run in running:
        mtime = (demo.root / run["log_path"]).stat().st_mtime
        assert demo.written_after - 1 <= mtime <= time.time()


# ------------------------------------------------------------------ layout and formats


def test_the_truth_has_one_line_per_run_directory(demo: Demo) -> None:
    run_dirs = {p.parent.relative_to(demo.root).as_posix() for p in demo.root.rglob("run.params")}
    assert len(demo.truth) == RUNS
    assert {run["run_path"] for run in demo.truth} == run_dirs


def test_run_paths_start_with_cluster_then_user(demo: Demo) -> None:
    for run in demo.truth:
        parts = run["run_path"].split("/")
        assert parts[:2] == [run["cluster"], run["user"]]
        assert run["run_id"] == run_id_for(run["run_path"])


def test_project_folders_have_variable_depth(demo: Demo) -> None:
    depths = {len(run["run_path"].split("/")) - 3 for run in demo.truth}
    assert {0, 1, 2, 3} <= depths


def test_user_names_exercise_awkward_logins(demo: Demo) -> None:
    users = {run["user"] for run in demo.truth}
    assert len(users) >= 6
    for awkward in (".", "'", "-", " "):
        assert any(awkward in user for user in users), awkward
    assert any(not user.isascii() for user in users)


def test_every_file_of_a_run_is_a_kind_the_spec_names(demo: Demo) -> None:
    for run_dir in {demo.root / run["run_path"] for run in demo.truth}:
        for path in run_dir.iterdir():
            name = path.name
            if name in LOG_FOLDERS:  # only logs and scheduler files, never empty
                kinds = [
                    SOLVER_LOG.fullmatch(p.name) or SCHEDULER_FILE.fullmatch(p.name)
                    for p in path.iterdir()
                ]
                assert kinds and all(kinds), path
            elif path.is_dir():
                assert name in ("MESH", "SOLUT") and not any(path.iterdir())
            else:
                known = ("run.params", "mixture_database.dat")
                assert name in known or SOLVER_LOG.fullmatch(name) or SCHEDULER_FILE.fullmatch(name)


def test_logs_print_the_milestones_in_the_order_of_the_table(demo: Demo) -> None:
    for run in runs_with(demo, "success"):
        text = read_text(demo.root / run["log_path"]).lower()
        positions = [text.find(m.text.lower()) for m in MILESTONES]
        assert -1 not in positions, run["log_path"]
        assert positions == sorted(positions)


def test_the_truth_stage_is_the_last_milestone_the_log_printed(demo: Demo) -> None:
    for run in demo.truth:
        if run["log_path"] is None:
            assert run["stage_code"] is None
            continue
        text = read_text(demo.root / run["log_path"]).lower()
        printed = [m for m in MILESTONES if m.text.lower() in text]
        if not printed:  # a launch that failed before AVBP's banner
            assert (run["stage_code"], run["solver_version"], run["status"]) == (
                None,
                None,
                "failed",
            )
            continue
        assert (printed[-1].code, printed[-1].label) == (run["stage_code"], run["stage"])


def test_milestone_dashes_and_label_case_vary_between_solver_versions(demo: Demo) -> None:
    arrows, starts = set(), set()
    for run in runs_with(demo, "success")[:300]:
        text = read_text(demo.root / run["log_path"])
        arrows.add(re.search(r"(-+>) \S", text).group(1))
        starts.add(re.search(r"run started on", text, re.I).group(0))
    assert len(arrows) >= 3
    assert len(starts) >= 3
    assert len({run["solver_version"] for run in demo.truth} - {None}) >= 4


def test_gzip_logs_decompress_to_avbp_logs(demo: Demo) -> None:
    compressed = [r for r in demo.truth if (r["log_path"] or "").endswith(".gz")]
    assert compressed
    for run in compressed:
        text = read_text(demo.root / run["log_path"])
        assert "AVBP" in text.upper() or run["solver_version"] is None  # no banner: see below


def test_some_params_and_logs_use_crlf_line_endings(demo: Demo) -> None:
    params = [p for p in demo.root.rglob("run.params") if b"\r\n" in p.read_bytes()]
    logs = [r for r in runs_with(demo, "success") if "\r\n" in read_text(demo.root / r["log_path"])]
    assert params and logs


def test_some_logs_hold_invalid_utf8_bytes(demo: Demo) -> None:
    def invalid(path: Path) -> bool:
        try:
            read_text(path).encode()
            (gzip.decompress if path.suffix == ".gz" else bytes)(path.read_bytes()).decode()
        except UnicodeDecodeError:
            return True
        return False

    assert any(invalid(demo.root / r["log_path"]) for r in demo.truth if r["log_path"])


def test_params_use_blocks_comments_and_mixed_case_keywords(demo: Demo) -> None:
    texts = [p.read_text(encoding="utf-8") for p in list(demo.root.rglob("run.params"))[:400]]
    joined = "\n".join(texts)
    assert all(re.search(r"^\$end_run-control", t, re.I | re.M) for t in texts)
    for pattern in (r"^\s*CFL\b", r"^\s*cfl\b", r"!\s", r"#\s", r"\t", r"^\$run-control", r"^$"):
        assert re.search(pattern, joined, re.M), pattern


def test_restarted_runs_keep_older_logs_with_older_mtimes(demo: Demo) -> None:
    restarted = [r for r in demo.truth if r["n_restarts"] > 0]
    assert restarted
    for run in restarted:
        logs = logs_of(demo.root / run["run_path"])
        assert len(logs) == run["n_restarts"] + 1
        newest = max(logs, key=lambda p: p.stat().st_mtime)
        assert newest.relative_to(demo.root).as_posix() == run["log_path"]


def test_runs_that_never_started_have_no_log(demo: Demo) -> None:
    not_started = runs_with(demo, "not_started")
    assert not_started
    for run in not_started:
        assert not logs_of(demo.root / run["run_path"])


def test_scheduler_files_hold_some_verdicts(demo: Demo) -> None:
    verdicts = [p for p in demo.root.rglob("slurm-*.out") if "slurmstepd" in p.read_text()]
    assert verdicts


# ------------------------------------------------------------------ real logs' mess (issue #14)


def logged_runs(demo: Demo) -> list[dict[str, Any]]:
    return [run for run in demo.truth if run["log_path"]]


def before_banner(text: str) -> str:
    """What a log printed before AVBP's banner (all of it when there is none)."""
    banner = re.search(r"AVBP +V?\d", text)
    return text[: banner.start()] if banner else text


def a_few_percent(runs: list[dict[str, Any]], holds: Callable[[dict[str, Any]], Any]) -> bool:
    """A realistic share: some runs, not most of them."""
    return 0.005 <= sum(bool(holds(run)) for run in runs) / len(runs) <= 0.12


def test_some_runs_keep_their_logs_in_a_log_folder(demo: Demo) -> None:
    def folder(run: dict[str, Any]) -> str | None:
        parts = run["log_path"][len(run["run_path"]) + 1 :].split("/")
        return parts[0] if len(parts) > 1 else None

    runs = logged_runs(demo)
    assert a_few_percent(runs, folder)
    assert {folder(run) for run in runs} == {None, *LOG_FOLDERS}


def test_logs_and_scheduler_files_are_gzipped_under_every_accepted_name(demo: Demo) -> None:
    names = {Path(r["log_path"]).name for r in logged_runs(demo) if r["log_path"].endswith(".gz")}
    for pattern in (r"avbp\.o", r"job\.out", r"avbp_log\.txt", r".+\.o\d+", r"log.*\.txt"):
        assert any(re.fullmatch(pattern + r"\.gz", name) for name in names), pattern
    assert list(demo.root.rglob("slurm-*.out.gz")) and list(demo.root.rglob("*.e*.gz"))


def test_some_logs_hold_others_noise_before_the_banner(demo: Demo) -> None:
    def noisy(run: dict[str, Any]) -> bool:
        head = before_banner(read_text(demo.root / run["log_path"]))
        return any(word in head for word in ("Loading", "WARNING:", "ld.so", "libibverbs"))

    noisy_runs = [run for run in logged_runs(demo) if noisy(run)]
    assert a_few_percent(logged_runs(demo), noisy)
    assert any(run["status"] == "success" and run["host"] for run in noisy_runs)


def test_some_loops_hold_a_loader_warning_or_an_open_mpi_help_box(demo: Demo) -> None:
    def noise_in_loop(run: dict[str, Any]) -> bool:
        text = read_text(demo.root / run["log_path"])
        loop = text[text.lower().find("starts the temporal loop") :]
        return "ld.so" in loop or '"fork()"' in loop

    in_loop = [run for run in logged_runs(demo) if run["stage_code"] == 300 and noise_in_loop(run)]
    assert a_few_percent(logged_runs(demo), noise_in_loop)
    assert {"truncated", "failed"} <= {run["status"] for run in in_loop}


def test_some_errors_are_printed_by_several_ranks_at_once_in_each_way(demo: Demo) -> None:
    ways = {
        "prefixed": r"^\[\d+\] (?:ERROR|Error|\*\*\*|Selected)",
        "piled": r"^\[\d+\] \[\d+\] ",
        "tagged": r"^\[1,\d+\]<stdout>: ",
        "fused": r"^\[\d+\] \S.*\[\d+\] (?:ERROR|Error|\*\*\*)",
    }
    texts = [read_text(demo.root / run["log_path"]) for run in runs_with(demo, "failed")]
    for way, pattern in ways.items():
        assert any(re.search(pattern, text, re.M) for text in texts), way


def test_some_errors_wrap_onto_an_indented_second_line(demo: Demo) -> None:
    wrapped = re.compile(r"^(?:\[\d+\] )?(?:ERROR|Error|\*\*\* Fatal).*\n(?:\[\d+\])? {8,}\S", re.M)
    runs = runs_with(demo, "failed")
    assert any(wrapped.search(read_text(demo.root / run["log_path"])) for run in runs)


def test_some_progress_bars_redraw_a_line_with_bare_carriage_returns(demo: Demo) -> None:
    def redrawn(run: dict[str, Any]) -> bool:
        return re.search(r"%\r(?!\n)", read_text(demo.root / run["log_path"])) is not None

    assert a_few_percent(logged_runs(demo), redrawn)


def test_some_launches_fail_before_avbp_prints_anything(demo: Demo) -> None:
    no_banner = [r for r in logged_runs(demo) if r["solver_version"] is None]
    assert a_few_percent(logged_runs(demo), lambda r: r["solver_version"] is None)
    for run in no_banner:
        assert (run["status"], run["stage_code"], run["host"], run["wall_time_s"]) == (
            "failed",
            None,
            None,
            None,
        )
    templates = {run["error_template"]: run["error_category"] for run in no_banner}
    assert templates == {
        "launch.executable_not_found": "unknown",
        "launch.srun_fpe": "unknown",
        "launch.signal_11": "segfault",
        "launch.ms_mpi_init": "mpi_abort",
    }


def test_some_runs_killed_silently_are_told_only_by_mpirun(demo: Demo) -> None:
    silent = [r for r in demo.truth if r["error_template"] == "mpirun.killed_signal_9"]
    assert silent
    assert all((r["status"], r["stage_code"]) == ("failed", 300) for r in silent)


def test_some_crashes_are_followed_by_slurm_cancelling_the_step(demo: Demo) -> None:
    def step_cancelled(run: dict[str, Any]) -> bool:
        files = run_files(demo.root / run["run_path"])
        return any("*** STEP" in read_text(p) for p in files if p.name != "run.params")

    crashed = [run for run in runs_with(demo, "failed") if step_cancelled(run)]
    assert crashed
    assert {run["error_category"] for run in crashed} <= {"segfault", "unknown"}


def test_some_run_params_hold_windows_paths(demo: Demo) -> None:
    windows = [run for run in demo.truth if "save_directory" in run["params"]]
    assert a_few_percent(demo.truth, lambda run: "save_directory" in run["params"])
    assert all(run["params"]["save_directory"].startswith("C:\\Users\\") for run in windows)
    assert all(run["params"]["probe_file"].startswith("\\\\fileserver\\") for run in windows)


# ------------------------------------------------------------------ the truth


def test_truth_keys_are_run_record_fields_plus_error_template_and_remedy(demo: Demo) -> None:
    record_fields = [f.name for f in dataclasses.fields(RunRecord)]
    assert set(TRUTH_FIELDS) - set(record_fields) == {"error_template", "remedy"}
    assert [f for f in TRUTH_FIELDS if f not in ("error_template", "remedy")] == [
        f for f in record_fields if f in TRUTH_FIELDS
    ]
    assert all(list(run) == list(TRUTH_FIELDS) for run in demo.truth)


def test_every_error_category_appears(demo: Demo) -> None:
    categories = {run["error_category"] for run in demo.truth}
    assert set(CATEGORY_NAMES) <= categories
    assert runs_with(demo, "running")


def test_failures_are_a_quarter_to_a_third_of_runs(demo: Demo) -> None:
    assert 0.25 <= failure_rate(demo.truth) <= 1 / 3


def test_error_messages_are_printed_in_the_runs_files(demo: Demo) -> None:
    for run in runs_with(demo, "failed", "killed"):
        files = [p for p in run_files(demo.root / run["run_path"]) if p.name != "run.params"]
        lines = {line.strip() for p in files for line in read_text(p).splitlines()}
        if run["error_message"] not in lines:  # only as real logs print it
            texts = [read_text(p) for p in files]
            assert any(printed_in(run["error_message"], t) for t in texts), run["run_path"]


def test_runs_sharing_an_error_template_share_its_category(demo: Demo) -> None:
    categories = by(runs_with(demo, "failed", "killed"), lambda r: r["error_template"])
    for template, runs in categories.items():
        assert template is not None
        assert len({run["error_category"] for run in runs}) == 1, template


def test_params_mtime_is_created_at_and_newest_log_mtime_is_the_end(demo: Demo) -> None:
    def utc(path: Path) -> str:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None).isoformat()

    for run in demo.truth:
        assert utc(demo.root / run["run_path"] / "run.params") == run["created_at"]
        if run["status"] in ("success", "failed", "truncated") or run["error_category"] in (
            "time_limit",
            "cancelled",
        ):
            assert utc(demo.root / run["log_path"]) == run["ended_at"], run["run_path"]


def test_truncated_runs_ended_more_than_30_days_before_the_archive_ends(demo: Demo) -> None:
    cutoff = datetime.combine(KNOBS.end, datetime.min.time()) - timedelta(days=30)
    for run in runs_with(demo, "truncated"):
        assert datetime.fromisoformat(run["ended_at"]) < cutoff


def test_truth_floats_are_the_numbers_the_log_prints(demo: Demo) -> None:
    for run in runs_with(demo, "success"):
        text = read_text(demo.root / run["log_path"])
        wall = re.search(r"elapsed wall time \[s\]\s*:\s*(\S+)", text, re.I).group(1)
        assert float(wall) == run["wall_time_s"]
        printed = re.search(r"reduced efficiency \[s\.proc/it/node\]\s*:\s*(\S+)", text, re.I)
        assert (float(printed.group(1)) if printed else None) == run["efficiency_printed"]


def test_printed_efficiency_agrees_with_the_recomputed_one(demo: Demo) -> None:
    for run in runs_with(demo, "success"):
        recomputed = run["wall_time_s"] * run["n_procs"] / (run["iterations_done"] * run["n_nodes"])
        assert run["efficiency"] == pytest.approx(recomputed, rel=1e-3)


# ------------------------------------------------------------------ the documented effects


def test_high_cfl_runs_fail_more_often(demo: Demo) -> None:
    finished = [r for r in demo.truth if r["status"] not in ("running", "not_started")]
    groups = by(finished, lambda r: r["cfl"] > KNOBS.high_cfl_threshold)
    assert failure_rate(groups[True]) > 1.5 * failure_rate(groups[False])


def test_runs_without_artificial_viscosity_fail_more_often(demo: Demo) -> None:
    finished = [r for r in demo.truth if r["status"] not in ("running", "not_started")]
    groups = by(finished, lambda r: r["artificial_viscosity_model"] == "no_artvisc")
    assert failure_rate(groups[True]) > 1.5 * failure_rate(groups[False])


def test_the_no_effect_setting_shows_no_effect_on_failures(demo: Demo) -> None:
    finished = [r for r in demo.truth if r["status"] not in ("running", "not_started")]
    groups = by(finished, lambda r: r[KNOBS.no_effect_setting])
    overall = failure_rate(finished)
    chi_square = sum(
        (sum(r["status"] in FAILING for r in runs) - overall * len(runs)) ** 2
        / (overall * (1 - overall) * len(runs))
        for runs in groups.values()
    )
    assert len(groups) == 3
    assert chi_square < 13.8  # 2 degrees of freedom, p = 0.001


def test_the_no_effect_setting_shows_no_effect_on_efficiency(demo: Demo) -> None:
    medians = [
        median_efficiency(runs)
        for runs in by(runs_with(demo, "success"), lambda r: r[KNOBS.no_effect_setting]).values()
    ]
    assert max(medians) / min(medians) < 1.1


def test_each_user_runs_mostly_on_their_home_cluster(demo: Demo) -> None:
    for user in USERS:
        runs = [r for r in demo.truth if r["user"] == user.login]
        at_home = sum(r["cluster"] == user.home_cluster for r in runs) / len(runs)
        assert at_home > 0.5, user.login


def test_users_set_up_runs_at_their_habitual_hours_and_days(demo: Demo) -> None:
    def setups(login: str) -> list[datetime]:
        return [datetime.fromisoformat(r["created_at"]) for r in demo.truth if r["user"] == login]

    early, night_owl = setups("le-goff"), setups("o'neil")
    assert statistics.median(t.hour for t in early) < 11
    assert sum(t.hour >= 20 or t.hour < 3 for t in night_owl) / len(night_owl) > 0.5
    assert sum(t.weekday() >= 5 for t in early) / len(early) < 0.05


def test_3d_runs_are_less_efficient_than_2d_runs(demo: Demo) -> None:
    groups = by(runs_with(demo, "success"), lambda r: r["dimension"])
    assert median_efficiency(groups[3]) > 1.3 * median_efficiency(groups[2])


def test_median_efficiency_follows_cluster_speed(demo: Demo) -> None:
    groups = by(runs_with(demo, "success"), lambda r: r["cluster"])
    by_speed = [c.name for c in sorted(CLUSTERS, key=lambda c: c.speed)]
    assert sorted(groups, key=lambda name: median_efficiency(groups[name])) == by_speed


def test_too_few_nodes_per_process_lowers_efficiency(demo: Demo) -> None:
    groups = by(runs_with(demo, "success"), lambda r: r["n_nodes"] / r["n_procs"] < 1000)
    assert median_efficiency(groups[True]) > 1.5 * median_efficiency(groups[False])


def test_reactive_runs_are_less_efficient(demo: Demo) -> None:
    groups = by(runs_with(demo, "success"), lambda r: r["reactive_flow"])
    assert median_efficiency(groups[True]) > 1.2 * median_efficiency(groups[False])


# ------------------------------------------------------------------ refusals and the CLI


def test_generation_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoArchiveError, match="not empty"):
        generate_archive(tmp_path, runs=5)


def test_cli_writes_an_archive_and_prints_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["demo-archive", str(tmp_path / "archive"), "--runs", "30", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "30 runs" in result.stdout
    assert len(list((tmp_path / "archive").rglob("run.params"))) == 30


def test_cli_writes_the_truth_file(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    args = ["demo-archive", str(tmp_path / "archive"), "--runs", "12", "--truth", str(truth)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(truth.read_text(encoding="utf-8").splitlines()) == 12


def test_cli_help_lists_the_demo_archive_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "demo-archive" in result.output


def test_demo_archive_help_describes_its_options() -> None:
    result = CliRunner().invoke(main, ["demo-archive", "--help"])
    assert result.exit_code == 0
    for option in ("--runs", "--seed", "--truth", "PATH"):
        assert option in result.output


def test_cli_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["demo-archive", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cli_refuses_a_truth_file_inside_the_archive(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    result = CliRunner().invoke(main, ["demo-archive", str(root), "--truth", str(root / "t.jsonl")])
    assert result.exit_code == 1
    assert "inside the archive" in result.output
    assert not root.exists()
