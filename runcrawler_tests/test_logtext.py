"""Bounded log reading: what is read, what it costs, and that a bad file never raises."""

from __future__ import annotations

import gzip
import os
import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runcrawler_assets.solvers import logtext
from runcrawler_assets.solvers.logtext import (
    DEFAULT_LIMITS,
    ReadLimits,
    decode_line,
    read_head,
    scan_log,
)

LOOP = re.compile("temporal loop")
ERRORS = re.compile(rb"error")
SMALL = ReadLimits(head_bytes=64, scan_bytes=64, tail_bytes=64, chunk=16, max_line=200)


def read_lines(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> tuple[list[str], object]:
    lines: list[str] = []
    report = scan_log(path, lines.append, head_until=LOOP, scan_for=ERRORS, limits=limits)
    return lines, report


def test_a_small_log_is_read_whole_and_in_order(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"one\n----> Starts the temporal loop\ntwo\nthree\n")
    lines, report = read_lines(log)
    assert lines == ["one", "----> Starts the temporal loop", "two", "three"]
    assert report.warnings == ()


def test_crlf_line_endings_are_stripped(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"one\r\ntwo\r\n")
    assert read_lines(log)[0] == ["one", "two"]


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"caf\xe9 \xff\xfe ok\n")
    assert read_lines(log)[0] == ["caf\ufffd \ufffd\ufffd ok"]


def test_nul_bytes_are_dropped(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"\x00\x00abc\x00\n")
    assert read_lines(log)[0] == ["abc"]


def test_a_last_line_without_line_ending_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"one\ntwo")
    assert read_lines(log)[0] == ["one", "two"]


def test_an_empty_file_gives_no_lines_and_no_warning(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"")
    lines, report = read_lines(log)
    assert (lines, report.warnings) == ([], ())


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    log = tmp_path / "log1.txt.gz"
    log.write_bytes(gzip.compress(b"one\r\ntwo\n"))
    lines, report = read_lines(log)
    assert lines == ["one", "two"]
    assert report.compressed


def test_a_gzip_cut_while_copied_keeps_what_precedes_the_cut(tmp_path: Path) -> None:
    text = b"".join(b"Iteration # %d\n" % i for i in range(100_000))
    log = tmp_path / "log1.txt.gz"
    log.write_bytes(gzip.compress(text)[:-2000])
    lines, report = read_lines(log)
    assert lines[0] == "Iteration # 0"
    assert len(lines) > 1000
    assert any("before its end marker" in w for w in report.warnings)


def test_a_missing_file_is_a_warning(tmp_path: Path) -> None:
    lines, report = read_lines(tmp_path / "gone.o")
    assert lines == []
    assert "cannot open" in report.warnings[0]


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "avbp.o"
    os.mkfifo(fifo)
    lines, report = read_lines(fifo)
    assert lines == []
    assert "not a regular file" in report.warnings[0]


def test_a_directory_is_not_read(tmp_path: Path) -> None:
    _, report = read_lines(tmp_path)
    assert "not a regular file" in report.warnings[0]


def test_a_file_that_shrinks_while_read_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"one\ntwo\n")
    real_fstat = os.fstat

    def fstat_from_before_the_shrink(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((*st[:6], st.st_size + 100, *st[7:10]))

    monkeypatch.setattr(logtext.os, "fstat", fstat_from_before_the_shrink)
    lines, report = read_lines(log)
    assert lines == ["one", "two"]
    assert any("shrank" in w for w in report.warnings)


def test_an_endless_line_is_capped(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"x" * 10_000 + b"\nend\n")
    lines, _ = read_lines(log, ReadLimits(max_line=100))
    assert lines == ["x" * 100, "end"]


def test_a_big_log_passes_head_filtered_scan_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    middle = b"".join(b"Iteration # %d\n" % i for i in range(100))
    log.write_bytes(b"head\n----> Starts the temporal loop\n" + b"ERROR : early\n" + middle)
    lines, report = read_lines(log, SMALL)
    assert lines[:3] == ["head", "----> Starts the temporal loop", "ERROR : early"]
    assert lines[-1] == "Iteration # 99"
    assert "Iteration # 50" not in lines
    assert report.skipped_bytes > 0


def test_the_tail_starts_on_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    log.write_bytes(b"".join(b"Iteration # %d\n" % i for i in range(1000)))
    lines, _ = read_lines(log, SMALL)
    assert all(re.fullmatch(r"Iteration # \d+", line) for line in lines)


@pytest.mark.slow
def test_a_sparse_gigabyte_log_costs_a_bounded_read(tmp_path: Path) -> None:
    log = tmp_path / "avbp.o"
    with log.open("wb") as f:
        f.write(b"AVBP V7.12.0\n----> Starts the temporal loop\n")
        f.truncate(1 << 30)
        f.seek(0, os.SEEK_END)
        f.write(b"\n  Iteration #  50000\n ----> End of AVBP session\n")
    lines, report = read_lines(log)
    assert log.stat().st_size > 1 << 30
    assert report.bytes_read <= DEFAULT_LIMITS.max_plain_bytes
    assert lines[-2:] == ["  Iteration #  50000", " ----> End of AVBP session"]


@pytest.mark.slow
def test_a_gzip_log_of_many_megabytes_is_read_in_bounded_memory(tmp_path: Path) -> None:
    text = b"".join(b"  Iteration # %8d   Time [s] = 1.0E-05\n" % i for i in range(600_000))
    log = tmp_path / "log.txt.gz"
    log.write_bytes(gzip.compress(text, compresslevel=1))
    last: list[str] = [""]

    def keep_last(line: str) -> None:
        last[0] = line

    tracemalloc.start()
    try:
        report = scan_log(log, keep_last, head_until=LOOP, scan_for=ERRORS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.bytes_decoded == len(text) > 20_000_000
    assert last[0].startswith("  Iteration #   599999")
    assert peak < 6_000_000


def test_decode_line_caps_length_and_strips_carriage_return() -> None:
    assert decode_line(b"abcdef\r", max_line=3) == "abc"


def test_read_head_stops_at_its_bound_with_a_warning(tmp_path: Path) -> None:
    params = tmp_path / "run.params"
    params.write_bytes(b"a = 1\n" * 100)
    head = read_head(params, max_bytes=12)
    assert head.text == "a = 1\na = 1\n"
    assert "longer than" in head.warnings[0]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), compress=st.booleans())
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes, compress: bool) -> None:
    log = tmp_path / "any.o"
    log.write_bytes(gzip.compress(data) if compress else data)
    lines, report = read_lines(log, SMALL)
    assert all(isinstance(line, str) and "\x00" not in line for line in lines)
    assert report.bytes_read <= max(SMALL.max_plain_bytes, len(log.read_bytes()) + 2)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=2, max_size=400))
def test_corrupt_gzip_never_raises(tmp_path: Path, data: bytes) -> None:
    log = tmp_path / "any.o"
    log.write_bytes(b"\x1f\x8b" + data)
    _, report = read_lines(log, SMALL)
    assert report.compressed


def test_a_path_with_a_nul_byte_is_a_warning(tmp_path: Path) -> None:
    _, report = read_lines(tmp_path / "bad\x00name.o")
    assert "cannot open" in report.warnings[0]
