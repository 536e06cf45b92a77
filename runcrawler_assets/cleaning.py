"""The cleaning policy between parsed records and the `runs` table, column by column.

The seed dropped "rows with a few NaN values" and filled others with 0.0
"where that is meaningful". runcrawler makes that rule explicit: a record
missing what identifies it cannot be a row and goes to quarantine with the
reason; a missing value that means zero is filled with 0; every other
missing value stays NULL, because unknown is not zero (a failed run has no
wall time; averaging it as 0 s would flatter efficiency).
"""

from __future__ import annotations

from dataclasses import dataclass

from runcrawler_assets.records import RunRecord, Status


@dataclass(frozen=True)
class ColumnRule:
    column: str
    rule: str  # "required", or "zero"
    why: str


CLEANING_POLICY: tuple[ColumnRule, ...] = (
    ColumnRule("run_id", "required", "identifies the row"),
    ColumnRule("cluster", "required", "partition the row belongs to"),
    ColumnRule("user", "required", "partition the row belongs to"),
    ColumnRule("run_path", "required", "where the run lives in the archive"),
    ColumnRule("solver", "required", "which parser produced the row"),
    ColumnRule("status", "required", "every analysis groups by it"),
    ColumnRule("iterations_done", "zero", "no iteration line printed means no iteration done"),
    ColumnRule("n_restarts", "zero", "no earlier log means no restart"),
    ColumnRule("log_bytes", "zero", "no log read means no byte read"),
)


def _zero_when_not_started(record: RunRecord) -> dict[str, float]:
    """A run that never started used no CPU: zero, not unknown."""
    if record.status == Status.NOT_STARTED and record.cpu_hours is None:
        return {"cpu_hours": 0.0}
    return {}


def clean_record(record: RunRecord) -> tuple[RunRecord | None, str]:
    """(the cleaned record, "") or (None, the reason it cannot be a row)."""
    missing = [
        rule.column
        for rule in CLEANING_POLICY
        if rule.rule == "required" and getattr(record, rule.column) in (None, "")
    ]
    if missing:
        return None, f"missing required column(s): {', '.join(missing)}"
    if record.status not in {s.value for s in Status}:
        return None, f"unknown status {record.status!r}"
    fills: dict[str, object] = {
        rule.column: 0
        for rule in CLEANING_POLICY
        if rule.rule == "zero" and getattr(record, rule.column) is None
    }
    fills.update(_zero_when_not_started(record))
    return (record.replace(**fills) if fills else record), ""
