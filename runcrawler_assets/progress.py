"""Progress a person can read, on a terminal and in a log.

Long work (a crawl's parse step, writing a demo archive, the benchmarks) runs
for minutes; whoever waits wants to know how far it is, how fast it goes and
when it ends. On a terminal that is a tqdm bar, redrawn in place with its rate
and ETA. A bar's carriage returns make a CI log or a redirected file unreadable,
so anywhere else the same figures come as plain lines, at most one every
`interval_s` seconds, plus one when the work ends. Progress goes to stderr:
stdout keeps the command's one-line result, for scripts.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

# Often enough to see a stalled job in a log, rarely enough not to flood it.
DEFAULT_INTERVAL_S = 10.0


def _duration(seconds: float) -> str:
    """`12 s`, `3 min 05 s`, `2 h 07 min`: what a person reads at a glance."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _rate(rate: float, unit: str) -> str:
    """`1,234 runs/s`, `2.5 runs/s`, or `95 s each` when one item takes more than a second."""
    if rate >= 10:
        return f"{rate:,.0f} {unit}/s"
    if rate >= 1:
        return f"{rate:.1f} {unit}/s"
    return f"{1 / rate:,.0f} s each"


def _screen(stream: TextIO) -> tuple[int, int]:
    """The terminal's columns and lines; 0 for what it does not say."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 0, 0
    return max(size.columns, 0), max(size.lines, 0)


class Progress:
    """How far one piece of work is: `done` of `total` items (total None: unknown).

    Use it as a context manager and call `advance(n)` or `update_to(done)` as work
    goes; both are cheap enough to call once per item. On a terminal (`stream.isatty()`)
    it draws a tqdm bar; otherwise it writes lines such as
    `parse: 5,000/20,000 runs (25%), 1,234 runs/s, ETA 12 s`, at most every
    `interval_s` seconds, and a last one when closed.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "runs",
        *,
        stream: TextIO | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        # Looked up now, not at import: click's test runner and pytest swap sys.stderr.
        self.stream = stream if stream is not None else sys.stderr
        self.label, self.total, self.unit, self.interval_s = label, total, unit, interval_s
        self.done = 0
        self._note = ""
        self._started = self._last_line = time.monotonic()
        self._closed = False
        isatty = getattr(self.stream, "isatty", None)
        self._bar: tqdm | None = None
        if isatty is not None and isatty():
            # Imported here: `runcrawler --help` and logs (no bar) do without its import time.
            from tqdm import tqdm

            # leave=None: a bar opened inside another one (an archive generated during a
            # benchmark phase) vanishes when done; the outermost bar stays on screen.
            # A terminal that reports no size (a bare pty, `script`) gets a blank bar from
            # tqdm, which then reads it again at every redraw: a fixed 80 × 20 then.
            columns, lines = _screen(self.stream)
            known = columns > 0 and lines > 0
            self._bar = tqdm(
                total=total,
                desc=label,
                unit=unit,
                file=self.stream,
                leave=None,
                dynamic_ncols=known,
                ncols=None if known else columns or 80,
                nrows=None if known else lines or 20,
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(failed=kind is not None)

    def advance(self, n: int = 1) -> None:
        """`n` more items done."""
        self.update_to(self.done + n)

    def update_to(self, done: int) -> None:
        """`done` items done so far (for callers that count themselves)."""
        step, self.done = done - self.done, done
        if self._bar is not None:
            self._bar.update(step)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval_s:
            self._last_line = now
            self._write(self.line(now))

    def note(self, text: str) -> None:
        """What is under way or just done (a benchmark phase), shown after the figures."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def line(self, now: float | None = None, end: str = "") -> str:
        """The plain line for this moment; `end` (`done in 16 s`) replaces the ETA."""
        elapsed = (time.monotonic() if now is None else now) - self._started
        if self.total is None:
            parts = [f"{self.label}: {self.done:,} {self.unit}"]
        else:
            share = 100 * self.done // self.total if self.total else 100
            parts = [f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({share}%)"]
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            parts.append(_rate(rate, self.unit))
        if end:
            parts.append(end)
        elif rate > 0 and self.total is not None and self.done < self.total:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        return ", ".join(parts) + (f"; {self._note}" if self._note and not end else "")

    def close(self, failed: bool = False) -> None:
        """End the display: the bar's last state, or a last plain line saying how long it took."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        elapsed = _duration(time.monotonic() - self._started)
        self._write(self.line(end=f"stopped after {elapsed}" if failed else f"done in {elapsed}"))

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
