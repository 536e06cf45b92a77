"""The OpenFOAM demo generator itself: the phenomena of real logs (issue #14) appear in a
modest archive, the archive is the same for the same seed, and the truth of a case with a
phenomenon says what docs/contract-notes.md (OpenFOAM) makes a correct parser report.

These tests read the generated files, never the parser: test_openfoam.py compares the
parser with the truth."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runcrawler_assets.demo import (
    PHENOMENA,
    PHENOMENON_NAMES,
    GeneratedCase,
    generate_openfoam_cases,
    write_openfoam_cases,
)
from runcrawler_assets.demo.openfoam_cases import OUTCOMES

N_CASES = 300
SEED = 7
KEEPS_TRUTH = frozenset(p.name for p in PHENOMENA if p.keeps_truth)
NAMING = frozenset({"name_app_dot_log", "name_suffixed", "name_logs_folder", "name_single_log"})
NAMING_AND_GZIP = NAMING | {"gzip_logs"}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[GeneratedCase]]:
    root = tmp_path_factory.mktemp("messy")
    return root, generate_openfoam_cases(root, N_CASES, SEED)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> list[GeneratedCase]:
    """The same cases without any phenomenon."""
    return generate_openfoam_cases(tmp_path_factory.mktemp("clean"), N_CASES, SEED, ())


def with_phenomenon(cases: list[GeneratedCase], name: str) -> list[GeneratedCase]:
    found = [case for case in cases if name in case.phenomena]
    assert found, f"no case has {name}"
    return found


def raw_log(root: Path, truth: dict[str, Any]) -> bytes:
    """The deciding log's bytes, gunzipped."""
    data = (root / truth["log_path"]).read_bytes()
    return gzip.decompress(data) if truth["log_path"].endswith(".gz") else data


def log_lines(root: Path, truth: dict[str, Any]) -> list[str]:
    return raw_log(root, truth).decode("utf-8", "replace").replace("\r\n", "\n").split("\n")


def banner_value(lines: list[str], key: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in lines if re.match(rf"{key}\s*:", line)]


# ---------------------------------------------------------------- the table and the archive


def test_every_phenomenon_has_a_name_an_item_of_the_issue_and_a_rule() -> None:
    assert len(set(PHENOMENON_NAMES)) == len(PHENOMENA)
    assert {p.item for p in PHENOMENA} == set(range(1, 13))
    assert all(0 < p.share < 1 and p.rule for p in PHENOMENA)


def test_every_phenomenon_appears_in_a_modest_archive(messy) -> None:
    _, cases = messy
    seen = Counter(name for case in cases for name in case.phenomena)
    assert set(seen) == set(PHENOMENON_NAMES), set(PHENOMENON_NAMES) - set(seen)


def test_each_phenomenon_stays_a_few_percent_and_most_cases_stay_clean(messy) -> None:
    _, cases = messy
    seen = Counter(name for case in cases for name in case.phenomena)
    assert max(seen.values()) <= 0.1 * N_CASES, seen.most_common(3)
    assert sum(1 for case in cases if not case.phenomena) >= 0.3 * N_CASES


def test_the_archive_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    first = generate_openfoam_cases(tmp_path / "a", 60, seed=11)
    second = generate_openfoam_cases(tmp_path / "b", 60, seed=11)
    assert [c.truth for c in first] == [c.truth for c in second]
    assert [c.phenomena for c in first] == [c.phenomena for c in second]
    running = {c.truth["log_path"] for c in first if c.truth["status"] == "running"}
    for path in (tmp_path / "a").rglob("*"):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        if path.is_file():
            assert path.read_bytes() == twin.read_bytes(), path
            if str(path.relative_to(tmp_path / "a")) not in running:
                assert path.stat().st_mtime == twin.stat().st_mtime, path
    assert {p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")} == {
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
    }


def test_another_seed_gives_another_archive(tmp_path: Path) -> None:
    first = generate_openfoam_cases(tmp_path / "a", 30, seed=11)
    other = generate_openfoam_cases(tmp_path / "b", 30, seed=12)
    assert [c.truth for c in first] != [c.truth for c in other]


def test_write_openfoam_cases_returns_the_truth_of_the_generated_cases(tmp_path: Path) -> None:
    truths = write_openfoam_cases(tmp_path / "a", 20, seed=4)
    assert truths == [c.truth for c in generate_openfoam_cases(tmp_path / "b", 20, seed=4)]


def test_four_rounds_of_outcomes_meet_both_release_lines_serial_and_parallel(
    tmp_path: Path,
) -> None:
    cases = generate_openfoam_cases(tmp_path, 4 * len(OUTCOMES), SEED, ())
    kinds: dict[str, set[tuple[bool, bool]]] = {}
    for index, case in enumerate(cases):
        openfoam_com = case.truth["solver_version"].startswith("v")
        parallel = (tmp_path / case.truth["run_path"] / "system" / "decomposeParDict").exists()
        kinds.setdefault(OUTCOMES[index % len(OUTCOMES)], set()).add((openfoam_com, parallel))
    assert all(len(found) == 4 for found in kinds.values()), kinds


def test_phenomena_that_keep_the_truth_leave_the_clean_truth_as_it_was(messy, clean) -> None:
    _, cases = messy
    kept = [i for i, case in enumerate(cases) if case.phenomena and case.phenomena <= KEEPS_TRUTH]
    assert len(kept) >= 30
    assert all(cases[i].truth == clean[i].truth for i in kept)


def test_log_names_and_gzip_change_only_the_log_path(messy, clean) -> None:
    _, cases = messy
    renamed = [
        i for i, c in enumerate(cases) if c.phenomena & NAMING_AND_GZIP
        and c.phenomena <= KEEPS_TRUTH | NAMING_AND_GZIP
    ]  # fmt: skip
    assert renamed
    for i in renamed:
        messy_truth, clean_truth = dict(cases[i].truth), dict(clean[i].truth)
        moved, was = messy_truth.pop("log_path"), clean_truth.pop("log_path")
        assert messy_truth == clean_truth
        assert moved != was or clean_truth["status"] == "not_started"


# ---------------------------------------------------------------- items 1, 9: noise and look-alikes


def test_noise_comes_before_the_banner(messy) -> None:
    root, cases = messy
    markers = {
        "noise_container_warnings": "cannot open shared object file",
        "noise_openib_box": "Module: OpenFabrics (openib)",
        "noise_superseded": "has been superseded",
    }
    for name, marker in markers.items():
        for case in with_phenomenon(cases, name):
            lines = log_lines(root, case.truth)
            solver = case.truth["application"]
            banner = next(
                i for i, line in enumerate(lines) if re.match(rf"Exec\s*: {solver}", line)
            )
            box = next(i for i, line in enumerate(lines) if line.startswith("/*---"))
            first = box if "name_single_log" not in case.phenomena else banner
            assert any(marker in line for line in lines[:first]), name


def test_superseded_notices_are_printed_once_per_rank(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "noise_superseded"):
        text = raw_log(root, case.truth).decode("utf-8", "replace")
        expected = case.truth["n_procs"] if "serial_copies" not in case.phenomena else None
        if expected is not None:
            assert text.count("has been superseded") == min(expected, 64)


def test_harmless_lookalikes_are_printed(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "harmless_lookalikes"):
        text = "\n".join(log_lines(root, case.truth))
        assert "trapFpe: Floating point exception trapping enabled" in text
        assert "--> FOAM Warning" in text
        assert "cannot open shared object file" in text
        if case.truth["iterations_done"]:
            assert "time step continuity errors" in text
    bounding = [
        line
        for case in with_phenomenon(cases, "harmless_lookalikes")
        for line in log_lines(root, case.truth)
        if line.startswith("bounding ")
    ]
    assert bounding
    assert all(abs(float(v)) < 1e3 for line in bounding for v in re.findall(r"[-\d.e+]{3,}", line))


# ---------------------------------------------------------------- item 2: launcher failures


def test_a_launcher_failure_has_no_banner_and_a_truth_without_start_or_processes(messy) -> None:
    root, cases = messy
    failures = [c for c in cases if c.phenomena & {"launcher_missing_executable",
                                                    "launcher_singleton_processes"}]  # fmt: skip
    assert failures
    for case in failures:
        truth, lines = case.truth, log_lines(root, case.truth)
        assert not banner_value(lines, "Exec")
        assert (truth["status"], truth["error_category"]) == ("failed", "unknown")
        assert (truth["n_procs"], truth["started_at"], truth["host"]) == (None, None, None)
        assert (truth["iterations_done"], truth["wall_time_s"], truth["stage_code"]) == (
            0,
            None,
            None,
        )
        run_dir = root / truth["run_path"]
        meshing = next(p for p in run_dir.rglob("*") if "blockMesh" in p.name)
        meshing_lines = log_lines(root, {"log_path": str(meshing.relative_to(root))})
        printed = banner_value(meshing_lines, "Build")[0]
        assert truth["solver_version"].removeprefix("v") in printed


def test_a_missing_executable_reports_mpiruns_line(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "launcher_missing_executable"):
        lines = [line.strip() for line in log_lines(root, case.truth)]
        assert case.truth["error_message"] in lines
        assert case.truth["error_message"].startswith(
            "mpirun was unable to find the specified executable"
        )


def test_singleton_processes_report_the_informative_line_of_their_fatal_error(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "launcher_singleton_processes"):
        lines = log_lines(root, case.truth)
        headers = [i for i, line in enumerate(lines) if "--> FOAM FATAL ERROR" in line]
        assert len(headers) >= 2
        informative = lines[headers[0] + 1].strip()
        assert informative.endswith("attempt to run parallel on 1 processor")
        assert case.truth["error_message"] == f"FOAM FATAL ERROR: {informative}"


# ---------------------------------------------------------------- item 3: serial copies


def test_serial_copies_count_the_steps_of_one_copy_on_one_process(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "serial_copies"):
        truth, lines = case.truth, log_lines(root, case.truth)
        commands = banner_value(lines, "Exec")
        copies = len(commands)
        assert copies >= 2
        assert all("-parallel" not in command for command in commands)
        assert set(banner_value(lines, "nProcs")) <= {"1"}
        assert truth["n_procs"] == 1
        steps = Counter(line for line in lines if line.startswith("Time = "))
        assert set(steps.values()) <= {copies}
        assert truth["iterations_done"] == len(steps)
        assert sum(line == "End" for line in lines) == (
            copies if truth["status"] == "success" else 0
        )
        last_clock = [line for line in lines if line.startswith("ExecutionTime")]
        if last_clock:
            execution = float(last_clock[-1].split()[2])
            assert truth["cpu_time_s"] == pytest.approx(execution)


# ---------------------------------------------------------------- items 4, 5: parallel errors


def first_fatal_message(lines: list[str]) -> str:
    """The message of the first FATAL header, read from the lines of the header's own rank."""
    ranked = [
        (re.findall(r"\[(\d+)\] ", line[: line.find("-->") + 1 or None]), line) for line in lines
    ]
    header = next(i for i, (_, line) in enumerate(ranked) if "--> FOAM FATAL" in line)
    rank = ranked[header][0][-1]
    kind = re.search(r"FOAM FATAL (IO )?ERROR", lines[header]).group(0)
    parts = []
    for line in lines[header + 1 :]:
        prefixes = re.match(r"^(?:\[(\d+)\] ?)+", line)
        if prefixes is None or re.findall(r"\[(\d+)\]", prefixes.group(0))[-1] != rank:
            continue
        content = line[prefixes.end() :].strip()
        if not content or content.startswith(("From", "file:")):
            break
        parts.append(content)
    return f"{kind}: {' '.join(parts)}"


def test_interleaved_ranks_report_the_message_of_the_first_header(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "ranks_interleaved"):
        lines = log_lines(root, case.truth)
        assert len({line[:5] for line in lines if "--> FOAM FATAL" in line}) >= 2
        assert case.truth["error_message"] == first_fatal_message(lines)
        assert case.truth["error_category"] == "input_file"


def test_interleaved_ranks_fuse_lines_and_tear_version_tags(messy) -> None:
    root, cases = messy
    text = "\n".join(
        line
        for case in with_phenomenon(cases, "ranks_interleaved")
        for line in log_lines(root, case.truth)
    )
    assert re.search(r"^\[\d+\] \[\d+\] ", text, re.M)
    assert re.search(r"\(openfoam-\(openfoam-\d+\)", text)


def test_every_rank_names_its_own_processor_directory(messy) -> None:
    root, cases = messy
    missing_field = [
        c for c in with_phenomenon(cases, "ranks_interleaved")
        if "cannot find file" in c.truth["error_message"]
    ]  # fmt: skip
    assert missing_field
    for case in missing_field:
        lines = log_lines(root, case.truth)
        for line in lines:
            if found := re.match(r"^(?:\[\d+\] )*\[(\d+)\] \s*\"?.*processor(\d+)", line):
                assert found.group(1) == found.group(2)


def test_the_mpi_abort_box_comes_before_the_foam_error_that_decides(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "mpi_abort_first"):
        lines = log_lines(root, case.truth)
        abort = next(i for i, line in enumerate(lines) if "MPI_ABORT was invoked" in line)
        fatal = next(i for i, line in enumerate(lines) if "--> FOAM FATAL" in line)
        assert abort < fatal
        assert any("orte_base_help_aggregate" in line for line in lines[fatal:])
        assert case.truth["error_message"].startswith("FOAM FATAL")
        assert case.truth["error_category"] == "input_file"


# ---------------------------------------------------------------- item 6: Slurm after a crash


def test_a_step_cancelled_after_a_crash_leaves_the_crash_deciding(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "step_cancelled_after_crash"):
        run_dir = root / case.truth["run_path"]
        (scheduler,) = run_dir.glob("slurm-*.out")
        text = scheduler.read_text()
        assert re.search(r"\*\*\* STEP \d+\.0 ON \S+ CANCELLED AT \S+ \*\*\*", text)
        assert "TIME LIMIT" not in text
        assert case.truth["status"] == "failed"
        assert case.truth["error_category"] in {"input_file", "numerical_instability", "segfault"}


def test_a_job_cancelled_for_its_time_limit_is_still_killed(messy) -> None:
    _, cases = messy
    limited = [c for c in cases if "DUE TO TIME LIMIT" in (c.truth["error_message"] or "")]
    assert limited
    assert {(c.truth["status"], c.truth["error_category"]) for c in limited} == {
        ("killed", "time_limit")
    }


# ---------------------------------------------------------------- item 7: wrapped messages


def test_a_wrapped_message_is_its_lines_joined_by_one_space(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "wrapped_message"):
        if "ranks_interleaved" in case.phenomena:
            continue  # its lines are read per rank, above
        lines = [re.sub(r"^\[\d+\] ", "", line) for line in log_lines(root, case.truth)]
        header = next(i for i, line in enumerate(lines) if "--> FOAM FATAL" in line)
        end = lines.index("", header)
        message_lines = [line.strip() for line in lines[header + 1 : end]]
        assert 2 <= len(message_lines) <= 4
        kind = case.truth["error_message"].split(": ", 1)[0]
        assert case.truth["error_message"] == f"{kind}: {' '.join(message_lines)}"
        assert any(line.strip().startswith("From function") for line in lines[end:])


# ---------------------------------------------------------------- item 8: crash layouts


def first_foam_frame_after_the_handler(lines: list[str]) -> str:
    handler = next(i for i, line in enumerate(lines) if "::sigHandler" in line)
    for line in lines[handler + 1 :]:
        frame = re.match(r"^(?:\[\d+\] )?#\d+\s+(Foam::\S+?)\(", line)
        if frame:
            return frame.group(1)
    raise AssertionError("no Foam:: frame after the handler")


def test_a_stack_trace_header_reports_the_first_foam_frame_after_the_handler(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "crash_stack_trace_header"):
        lines = log_lines(root, case.truth)
        assert any(line.endswith("[stack trace]") for line in lines)
        assert any(line.endswith("=============") for line in lines)
        frame = first_foam_frame_after_the_handler(lines)
        assert case.truth["error_message"] == f"Floating point exception (sigFpe) in {frame}"
        assert case.truth["error_category"] == "numerical_instability"


def test_without_a_stack_the_shells_or_mpiruns_line_is_the_message(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "crash_shell_line_only"):
        lines = log_lines(root, case.truth)
        assert not any(re.match(r"^(\[\d+\] )?#\d+ ", line) for line in lines)
        assert case.truth["error_message"] in lines
        assert case.truth["error_message"] in (
            "Floating point exception (core dumped)",
            *(line for line in lines if line.startswith("mpirun noticed")),
        )
        assert case.truth["error_category"] == "numerical_instability"


def test_a_segfault_is_the_runtime_verdict_of_its_first_sigsegv_line(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "crash_sigsegv"):
        lines = [re.sub(r"^\[\d+\] ", "", line) for line in log_lines(root, case.truth)]
        first = next(line for line in lines if re.search(r"sigsegv|segmentation fault", line, re.I))
        assert first.startswith("#1  Foam::sigSegv::sigHandler")
        assert case.truth["error_message"] == first.strip()
        assert case.truth["error_category"] == "segfault"


def test_a_crash_inside_a_step_counts_that_step(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "crash_mid_step"):
        lines = log_lines(root, case.truth)
        solver = max(i for i, line in enumerate(lines) if re.match(r"Exec\s*:", line))
        steps = [i for i, line in enumerate(lines) if line.startswith("Time = ") and i > solver]
        clocks = [i for i, line in enumerate(lines) if line.startswith("ExecutionTime")]
        assert case.truth["iterations_done"] == len(steps)
        assert steps[-1] > clocks[-1]
        assert case.truth["wall_time_s"] == float(lines[clocks[-1]].split()[-2])


def test_a_classic_floating_point_exception_names_its_frame(messy) -> None:
    root, cases = messy
    classic = [
        c for c in cases if c.truth["error_template"] and c.truth["error_template"].startswith(
            "openfoam:fpe:Foam::") and "crash_stack_trace_header" not in c.phenomena
    ]  # fmt: skip
    assert classic
    for case in classic:
        lines = log_lines(root, case.truth)
        assert any(re.match(r"^(\[0\] )?#0  Foam::error::printStack", line) for line in lines)
        frame = first_foam_frame_after_the_handler(lines)
        assert case.truth["error_message"] == f"Floating point exception (sigFpe) in {frame}"


# ---------------------------------------------------------------- item 10: names and places


def test_renamed_moved_and_compressed_logs_are_where_the_truth_says(messy) -> None:
    root, cases = messy
    shapes = {
        "name_app_dot_log": r"[A-Za-z]+\.log",
        "name_suffixed": r"log\.[A-Za-z]+_\w+",
        "name_logs_folder": r"logs/[A-Za-z]+\.log",
        "name_single_log": r"log",
    }
    for name, shape in shapes.items():
        for case in with_phenomenon(cases, name):
            if case.truth["log_path"] is None:
                continue
            relative = case.truth["log_path"].removeprefix(case.truth["run_path"] + "/")
            assert re.fullmatch(shape + r"(\.gz)?", relative), (name, relative)
            assert (root / case.truth["log_path"]).is_file()


def test_a_single_log_holds_the_whole_pipeline(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "name_single_log"):
        run_dir = root / case.truth["run_path"]
        assert not [p for p in run_dir.iterdir() if p.name.startswith("log.")]
        if case.truth["log_path"]:
            commands = banner_value(log_lines(root, case.truth), "Exec")
            assert commands[0] == "blockMesh"


def test_gzip_compresses_every_log(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "gzip_logs"):
        run_dir = root / case.truth["run_path"]
        logs = [p for p in run_dir.rglob("*") if p.is_file() and "log" in p.name]
        assert logs
        assert all(p.name.endswith(".gz") and p.read_bytes()[:2] == b"\x1f\x8b" for p in logs)


# ---------------------------------------------------------------- item 11: bytes


def test_a_crlf_log_has_crlf_on_every_line(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "crlf_line_endings"):
        data = raw_log(root, case.truth)
        assert data.count(b"\n") == data.count(b"\r\n") > 0


def test_progress_output_redraws_with_bare_carriage_returns(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "carriage_return_progress"):
        assert re.search(rb"\r[^\n]", raw_log(root, case.truth))


def test_invalid_utf8_does_not_decode(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "invalid_utf8"):
        with pytest.raises(UnicodeDecodeError):
            raw_log(root, case.truth).decode("utf-8")


def test_windows_paths_are_in_the_message_as_printed(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "windows_paths"):
        message = case.truth["error_message"]
        assert re.search(r'"C:\\Users\\[^"]+\\(?:0|system)\\\w+"', message), message
        assert message.split(": ", 1)[1] in " ".join(
            re.sub(r"^(\[\d+\] )+", "", line).strip() for line in log_lines(root, case.truth)
        )


# ---------------------------------------------------------------- item 12: edited dictionaries


def test_an_edited_application_leaves_the_log_deciding(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "application_edited"):
        truth = case.truth
        commands = banner_value(log_lines(root, truth), "Exec")
        assert commands[-1].split()[0] == truth["application"]
        assert truth["params"]["controldict.application"] != truth["application"]


def test_edited_subdomains_leave_n_procs_to_the_banner(messy) -> None:
    root, cases = messy
    for case in with_phenomenon(cases, "subdomains_edited"):
        truth = case.truth
        printed = banner_value(log_lines(root, truth), "nProcs")[-1]
        assert truth["n_procs"] == int(printed)
        assert truth["params"]["decomposepardict.numberofsubdomains"] != printed


def test_outcomes_still_cycle_whatever_the_phenomena(messy) -> None:
    _, cases = messy
    assert len(cases) >= len(OUTCOMES)
    statuses = Counter(c.truth["status"] for c in cases)
    assert set(statuses) == {"success", "failed", "killed", "truncated", "running", "not_started"}
