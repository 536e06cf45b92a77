"""The delivery ledger: what was sent and what failed, one JSON line per event.

A digest must reach each recipient once, even when the schedule and the CLI
run together or a run is killed half-way. So every delivery is written down
the moment the server took it, in a file that is only ever appended to: one
`os.write` per line on a descriptor opened with `O_APPEND`, under a short
`flock` (two processes' lines never interleave), flushed to disk before the
next delivery starts.
A crash in the middle of a write leaves a truncated last line; reading skips
it, and the next write starts on a new line so it cannot swallow one.
`exclusive()` makes a whole batch one process's at a time, so two runs
started together send each digest once rather than both sending it.

Each line: `event` ("sent" or "failed"), `key`, `recipient`, `kind` (the
series, e.g. "user" or "webhook", for `last_period_end`), `period_end` (ISO
8601 or null), `at` (UTC, ISO 8601), and `message_id` (sent) or `reason` and
`attempts` (failed).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runcrawler_assets.errors import RuncrawlerError


class LedgerError(RuncrawlerError):
    """The ledger cannot be read or written: sending stops, or it could send twice."""


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the ledger."""

    event: str  # "sent" | "failed"
    key: str
    recipient: str
    kind: str
    period_end: datetime | None
    at: datetime
    message_id: str = ""
    reason: str = ""
    attempts: int = 0


@dataclass
class DeliveryReport:
    """What one batch did, by key: for the run's log line and its Dagster metadata."""

    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already sent before this batch
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, one-line reason)

    def summary(self) -> str:
        """One line: the counts, and the first failure's reason when there is one."""
        line = f"{len(self.sent)} sent, {len(self.skipped)} already sent, {len(self.failed)} failed"
        if self.failed:
            key, reason = self.failed[0]
            line += f" (first: {key}: {reason})"
        return line

    def as_metadata(self) -> dict[str, Any]:
        """Counts and failures as plain JSON-able values."""
        return {
            "sent": len(self.sent),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "failures": [{"key": key, "reason": reason} for key, reason in self.failed],
        }


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A parser of settings' texts: the choice named (any case), or ValueError."""

    def parse(text: str) -> str:
        word = text.strip().lower()
        if word not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return word

    return parse


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters: a reason fit for a log and the ledger."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Ledger:
    """The JSON-lines file at `path` (created on the first record, folders included).

    Reads are incremental: each query reads only the lines appended since the
    last one, whoever appended them, so a batch of many messages stays cheap.
    `kind` names a series of digests (e.g. "user", "team", "webhook"); give
    `period_end` as naive or aware datetimes, the same for a kind.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._reset()

    def _reset(self) -> None:
        self._offset = 0  # bytes of the file already read, up to a line's end
        self._sent: dict[str, LedgerEntry] = {}
        self._failed: dict[str, LedgerEntry] = {}
        self._period_end: dict[str, datetime] = {}

    def was_sent(self, key: str) -> bool:
        """Whether a delivery with this key was ever accepted, by any process."""
        self._refresh()
        return key in self._sent

    def record_sent(
        self,
        key: str,
        recipient: str,
        message_id: str,
        *,
        kind: str = "",
        period_end: datetime | None = None,
    ) -> None:
        """Write down that `key` was accepted by the server (call it at once after)."""
        self._append(
            {"event": "sent", "key": key, "recipient": recipient, "kind": kind}
            | {"period_end": _iso(period_end), "message_id": message_id}
        )

    def record_failed(
        self,
        key: str,
        recipient: str,
        reason: str,
        attempts: int,
        *,
        kind: str = "",
        period_end: datetime | None = None,
    ) -> None:
        """Write down that `key` could not be delivered after `attempts` tries, and why."""
        self._append(
            {"event": "failed", "key": key, "recipient": recipient, "kind": kind}
            | {"period_end": _iso(period_end), "reason": reason, "attempts": attempts}
        )

    def last_period_end(self, kind: str) -> datetime | None:
        """The latest `period_end` sent for `kind`: where "since the last digest" starts."""
        self._refresh()
        return self._period_end.get(kind)

    def failures(self) -> list[LedgerEntry]:
        """The latest failure of each key never sent, oldest first."""
        self._refresh()
        return sorted(self._failed.values(), key=lambda entry: entry.at)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the ledger's lock file for a batch: a second process waits, then skips.

        Not re-entrant: `send_messages` and `post_summary` take it themselves.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LedgerError(f"cannot open the lock file {lock_path}: {error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _append(self, fields: dict[str, Any]) -> None:
        line = json.dumps(fields | {"at": datetime.now(UTC).isoformat()}, ensure_ascii=False)
        data = (line + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)  # the check below sees whole lines only
                if _ends_mid_line(descriptor):
                    data = b"\n" + data  # a crash's truncated line: leave it on its own
                while data:
                    data = data[os.write(descriptor, data) :]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise LedgerError(f"cannot write the delivery ledger {self.path}: {error}") from None
        self._refresh()

    def _refresh(self) -> None:
        """Read the complete lines appended since the last read."""
        try:
            with self.path.open("rb") as file:
                if os.fstat(file.fileno()).st_size < self._offset:
                    self._reset()  # replaced by a shorter file: start over
                file.seek(self._offset)
                chunk = file.read()
        except FileNotFoundError:
            return
        except OSError as error:
            raise LedgerError(f"cannot read the delivery ledger {self.path}: {error}") from None
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line without its end is being written
        self._offset += len(complete)
        for raw in complete.splitlines():
            entry = _parse(raw)
            if entry is not None:
                self._add(entry)

    def _add(self, entry: LedgerEntry) -> None:
        if entry.event == "sent":
            self._sent[entry.key] = entry
            self._failed.pop(entry.key, None)
            latest = self._period_end.get(entry.kind)
            if entry.period_end is not None and (latest is None or entry.period_end > latest):
                self._period_end[entry.kind] = entry.period_end
        elif entry.event == "failed" and entry.key not in self._sent:
            self._failed[entry.key] = entry


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _ends_mid_line(descriptor: int) -> bool:
    size = os.fstat(descriptor).st_size
    return size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"


def _parse(raw: bytes) -> LedgerEntry | None:
    """The entry of one line, or None for a blank or truncated one (a crash mid-write)."""
    try:
        fields = json.loads(raw)
        period_end = fields.get("period_end")
        return LedgerEntry(
            event=str(fields["event"]),
            key=str(fields["key"]),
            recipient=str(fields.get("recipient", "")),
            kind=str(fields.get("kind", "")),
            period_end=None if period_end is None else datetime.fromisoformat(period_end),
            at=datetime.fromisoformat(fields["at"]),
            message_id=str(fields.get("message_id", "")),
            reason=str(fields.get("reason", "")),
            attempts=int(fields.get("attempts", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
