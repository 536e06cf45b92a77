"""Progress as a person reads it: a bar on a terminal, plain lines in a log."""

from __future__ import annotations

import fcntl
import io
import os
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runcrawler_assets.demo import generate_archive
from runcrawler_assets.progress import Progress
from runcrawler_tests.test_cli import COMMAND, REPO

# `parse: 5,000/20,000 runs (25%), 1,234 runs/s, ETA 12 s`
PERIODIC = re.compile(r"^parse: [\d,]+/200 runs \(\d+%\), [\d.,]+ runs/s, ETA \d+ (s|min \d\d s)$")


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_log_gets_periodic_lines_with_count_percent_rate_and_eta_then_a_last_line() -> None:
    stream = io.StringIO()
    with Progress("parse", 200, "runs", stream=stream, interval_s=0.01) as progress:
        for _ in range(200):
            time.sleep(0.0005)
            progress.advance()
    *periodic, last = _lines(stream)
    assert len(periodic) >= 2
    assert all(PERIODIC.match(line) for line in periodic), periodic
    assert "\r" not in stream.getvalue()  # no bar redrawn in a log
    counts = [int(line.split()[1].split("/")[0]) for line in periodic]
    assert counts == sorted(counts) and 0 < counts[0] < 200
    assert re.fullmatch(r"parse: 200/200 runs \(100%\), [\d.,]+ runs/s, done in \d+ s", last)


def test_lines_come_at_most_once_per_interval() -> None:
    interval = 0.05
    stream = io.StringIO()
    started = time.monotonic()
    with Progress("parse", 60, stream=stream, interval_s=interval) as progress:
        for _ in range(60):
            time.sleep(0.005)
            progress.advance()
    elapsed = time.monotonic() - started
    periodic = _lines(stream)[:-1]
    assert 1 <= len(periodic) <= elapsed / interval
    # a long interval: however many updates, only the last line
    quiet = io.StringIO()
    with Progress("parse", 10_000, stream=quiet, interval_s=60) as progress:
        for _ in range(10_000):
            progress.advance()
    assert _lines(quiet) == [quiet.getvalue().strip()]
    assert quiet.getvalue().startswith("parse: 10,000/10,000 runs (100%)")


def test_an_unknown_total_counts_without_percent_or_eta() -> None:
    stream = io.StringIO()
    with Progress("walk", None, "folders", stream=stream, interval_s=0.01) as progress:
        for _ in range(30):
            time.sleep(0.002)
            progress.advance(100)
    *periodic, last = _lines(stream)
    assert periodic and all(
        re.fullmatch(r"walk: [\d,]+ folders, [\d.,]+ folders/s", line) for line in periodic
    )
    assert re.fullmatch(r"walk: 3,000 folders, [\d.,]+ folders/s, done in \d+ s", last)


def test_update_to_a_count_and_a_note_and_a_failure_say_where_it_stopped() -> None:
    stream = io.StringIO()
    with (
        pytest.raises(RuntimeError),
        Progress("benchmarks", 11, "phases", stream=stream, interval_s=0) as progress,
    ):
        progress.note("memory, 2,000 runs")
        time.sleep(0.01)
        progress.update_to(3)
        raise RuntimeError("phase 4 failed")
    first, last = _lines(stream)
    assert first.startswith("benchmarks: 3/11 phases (27%), ")
    assert first.endswith("; memory, 2,000 runs") and "ETA" in first
    assert last.startswith("benchmarks: 3/11 phases (27%), ") and "stopped after" in last


class Terminal:
    """A pseudo-terminal 100 columns wide: `stream` to write to, `screen()` for what it showed."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.stream = os.fdopen(slave, "w", encoding="utf-8")
        self.shown: list[bytes] = []
        # drained as it goes: a full pty buffer would block the writer
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO once the slave side is closed
                return
            if not chunk:
                return
            self.shown.append(chunk)

    def screen(self) -> str:
        """Everything written, once the writer side is closed and the reader done."""
        if not self.stream.closed:
            self.stream.close()
            self.reader.join(timeout=10)
        return b"".join(self.shown).decode("utf-8")


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    opened = Terminal()
    assert opened.stream.isatty()
    yield opened
    opened.screen()
    os.close(opened.master)


def test_a_terminal_gets_a_bar_with_rate_and_eta(terminal: Terminal) -> None:
    with Progress("parse", 300, "runs", stream=terminal.stream, interval_s=0) as progress:
        for _ in range(300):
            time.sleep(0.001)
            progress.advance()
    screen = terminal.screen()
    assert "\r" in screen  # redrawn in place
    frames = [frame for frame in re.split(r"[\r\n]+", screen) if frame.strip()]
    middle = [frame for frame in frames if "300/300" not in frame and "/300" in frame]
    assert middle, frames
    # `parse:  49%|█████     | 147/300 [00:00<00:00, 479.00runs/s]`: elapsed<ETA, rate
    bar = r"parse: +\d+%\|.*\| \d+/300 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+runs/s\]"
    assert re.search(bar, middle[-1]), middle
    assert re.search(r"parse: 100%\|.*\| 300/300 \[", frames[-1]), frames
    assert "ETA" not in screen  # the terminal gets tqdm's bar, not the plain lines


def test_a_terminal_bar_with_an_unknown_total_counts(terminal: Terminal) -> None:
    with Progress("walk", None, "folders", stream=terminal.stream) as progress:
        for _ in range(50):
            time.sleep(0.002)
            progress.advance()
    screen = terminal.screen()
    assert re.search(r"walk: 50folders \[\d\d:\d\d, +[\d.]+folders/s\]", screen), screen


def test_demo_archive_shows_plain_progress_on_stderr_and_its_one_line_on_stdout(
    tmp_path: Path,
) -> None:
    args = ["demo-archive", str(tmp_path / "archive"), "--runs", "1500", "--progress-every", "0.05"]
    done = subprocess.run(
        [*COMMAND, *args],
        capture_output=True,  # stderr a pipe: not a terminal
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [done.stdout.strip()]
    assert done.stdout.startswith("wrote 1500 runs in ")
    lines = done.stderr.splitlines()
    periodic = [line for line in lines if "ETA" in line]
    assert periodic and all(
        re.fullmatch(r"writing runs: [\d,]+/1,500 runs \(\d+%\), [\d.,]+ runs/s, ETA .+", line)
        for line in periodic
    ), lines
    assert re.fullmatch(
        r"writing runs: 1,500/1,500 runs \(100%\), [\d.,]+ runs/s, done in \d+ s", lines[-1]
    )
    assert "\r" not in done.stderr


def test_the_default_stream_is_stderr_at_the_time_of_use(capsys: pytest.CaptureFixture) -> None:
    with Progress("parse", 2) as progress:
        progress.advance(2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("parse: 2/2 runs (100%)")


def test_crawl_draws_its_bar_on_the_terminal_while_dagster_captures_the_step(
    tmp_path: Path, terminal: Terminal
) -> None:
    """Dagster points stderr at the step's log file: the bar must still reach the terminal."""
    generate_archive(tmp_path / "archive", runs=80, seed=2)
    args = ["crawl", "--archive", "archive", "--data", "data", "--no-analytics"]
    done = subprocess.run(
        [*COMMAND, *args],
        stdout=subprocess.PIPE,
        stderr=terminal.stream,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)},
    )
    screen = terminal.screen()
    assert done.returncode == 0, screen
    assert done.stdout.startswith("80 runs found") and len(done.stdout.splitlines()) == 1
    assert re.search(r"\rparse: 100%\|.*\| 80/80 \[\d\d:\d\d<00:00, +[\d.]+runs/s\]", screen)
    assert "ETA" not in screen  # a bar, not the plain lines of a log
