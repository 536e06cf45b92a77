"""The cleaning policy between parsed records and the `runs` table, column by column.

The seed dropped "rows with a few NaN values" and filled others with 0.0
"where that is meaningful". runcrawler makes that rule explicit: a record
missing what identifies it cannot be a row and goes to quarantine with the
reason; a missing value that means zero is filled with 0; every other
missing value stays NULL, because unknown is not zero (a failed run has no
wall time; averaging it as 0 s would flatter efficiency).

It also bounds what one run can bring into the table (`VALUE_LIMITS`,
contract-notes 16): text from the archive is cut to a length per kind of
value, with a visible `…` and a parse warning, and an integer that does not
fit its column is left NULL. A parser reads files written by anyone, and a
1 MB `mixture_name` would otherwise travel whole into every table, chart
label and report cell downstream. `bound_record` runs where the crawl turns
any solver's record (plugins included) into its stored JSON, and again in
`clean_record`, so records stored before the limits existed are bounded too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runcrawler_assets.records import RUN_COLUMNS, RunRecord, Status


@dataclass(frozen=True)
class ColumnRule:
    column: str
    rule: str  # "required", "zero", or NEVER_STARTED (zero for a run that never started)
    why: str


NEVER_STARTED = "zero if never started"


CLEANING_POLICY: tuple[ColumnRule, ...] = (
    ColumnRule("run_id", "required", "identifies the row"),
    ColumnRule("cluster", "required", "partition the row belongs to"),
    ColumnRule("user", "required", "partition the row belongs to"),
    ColumnRule("run_path", "required", "where the run lives in the archive"),
    ColumnRule("solver", "required", "which parser produced the row"),
    ColumnRule("status", "required", "every analysis groups by it"),
    ColumnRule("n_restarts", "zero", "no earlier log means no restart"),
    ColumnRule("log_bytes", "zero", "no log read means no byte read"),
    ColumnRule(
        "cpu_hours",
        NEVER_STARTED,
        "a run that never started (0 iterations) used no CPU; a not_started run whose "
        "solver ran, its log not copied (iterations unknown), stays unknown",
    ),
)


@dataclass(frozen=True)
class ValueLimit:
    kind: str
    limit: int
    unit: str  # "characters" (longer text is cut) or "entries" (extra entries are dropped)
    applies_to: str
    why: str


# The one table of limits (contract-notes 16). A cut text keeps `limit - 1` characters
# and ends with CUT_MARK, so it is exactly `limit` characters long.
VALUE_LIMITS: tuple[ValueLimit, ...] = (
    ValueLimit(
        "setting",
        256,
        "characters",
        "mixture_name, les_model, artificial_viscosity_model, convection_scheme; "
        "every params keyword and every text value in params",
        "the longest real mixture or model name is a few dozen characters",
    ),
    ValueLimit(
        "name",
        256,
        "characters",
        "every other text column read from the run's files: host, solver_version, stage, "
        "error_category, ... (new text columns too)",
        "host names and versions are short; a whole file pasted in one is not a name",
    ),
    ValueLimit(
        "message",
        1024,
        "characters",
        "error_message, error_signature",
        "room for a long solver error with a path in it",
    ),
    ValueLimit(
        "warning",
        512,
        "characters",
        "each parse warning",
        "a warning names a file and what went wrong; quoting a value in full is not needed",
    ),
    ValueLimit(
        "warnings",
        64,
        "entries",
        "parse warnings per run; the last one kept says how many more there were",
        "a run with more than a few dozen problems is read for the first ones",
    ),
    ValueLimit(
        "params",
        2048,
        "entries",
        "params keywords per run; the first ones in file order are kept",
        "an AVBP run.params holds a few hundred keywords, an OpenFOAM case about as many",
    ),
)
LIMITS: Mapping[str, int] = {limit.kind: limit.limit for limit in VALUE_LIMITS}
CUT_MARK = "…"
# Message columns by name; the four typed settings are the "setting" kind; every
# other VARCHAR column except the identities below is a "name".
MESSAGE_COLUMNS = frozenset({"error_message", "error_signature"})
SETTING_COLUMNS = frozenset(
    {"mixture_name", "les_model", "artificial_viscosity_model", "convection_scheme"}
)
# Never cut: hashes and paths the file system bounds (a name is at most 255 bytes),
# and cutting them could merge two runs into one row.
IDENTITY_COLUMNS = frozenset({"run_id", "cluster", "user", "run_path", "log_path", "fingerprint"})
INTEGER_RANGES: Mapping[str, tuple[int, int]] = {
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
}


def shorten(text: str, limit: int) -> str:
    """`text` if at most `limit` characters long, else its start and CUT_MARK (`limit` long)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + CUT_MARK


def _column_kind(name: str) -> str:
    if name in MESSAGE_COLUMNS:
        return "message"
    return "setting" if name in SETTING_COLUMNS else "name"


# (column, kind) for every text column that is cut; (column, SQL type) for integer columns.
_TEXT_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (c.name, _column_kind(c.name))
    for c in RUN_COLUMNS
    if c.sql_type == "VARCHAR" and c.name not in IDENTITY_COLUMNS
)
_INTEGER_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (c.name, c.sql_type) for c in RUN_COLUMNS if c.sql_type in INTEGER_RANGES
)


class _Cuts:
    """The cuts made to one record, each told as a parse warning."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def text(self, field: str, value: str, kind: str) -> str:
        limit = LIMITS[kind]
        if len(value) <= limit:
            return value
        self.warnings.append(f"{field}: {len(value):,} characters, cut to {limit} ({kind} limit)")
        return shorten(value, limit)

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Keywords and text values cut (at any depth); at most LIMITS["params"] keywords."""
        keep = LIMITS["params"]
        if len(params) > keep:
            self.warnings.append(f"params: {len(params):,} keywords, only the first {keep} kept")
        bounded: dict[str, Any] = {}
        for index, (key, value) in enumerate(params.items()):
            if index == keep:
                break
            name = self.text("params keyword", key, "setting") if isinstance(key, str) else key
            bounded[name] = self._param_value(value, name)
        return bounded

    def _param_value(self, value: Any, *path: object) -> Any:
        """`value` bounded; `path` (keyword, then nested keys) is named only if it is cut."""
        if isinstance(value, str):
            if len(value) <= LIMITS["setting"]:
                return value
            return self.text(".".join(map(str, ("params", *path))), value, "setting")
        if isinstance(value, list):
            return [self._param_value(item, *path) for item in value]
        if isinstance(value, dict):
            return {k: self._param_value(v, *path, k) for k, v in value.items()}
        return value


def bound_warnings(warnings: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """At most LIMITS["warnings"] warnings of at most LIMITS["warning"] characters each.

    The first ones are kept and the last kept one says how many were dropped.
    """
    most, longest = LIMITS["warnings"], LIMITS["warning"]
    kept = [shorten(w, longest) if isinstance(w, str) else w for w in warnings[:most]]
    if len(warnings) > most:
        kept[-1] = f"{len(warnings) - most + 1:,} more parse warnings not kept"
    return tuple(kept)


def _flat_and_short(params: dict[str, Any]) -> bool:
    """Whether `params` are within their limits at a glance: few enough keywords, each a
    short name with a short text or a plain value (every record is bounded twice, and nearly
    every one is such)."""
    limit = LIMITS["setting"]
    return len(params) <= LIMITS["params"] and all(
        isinstance(key, str)
        and len(key) <= limit
        and (len(value) <= limit if isinstance(value, str) else not isinstance(value, list | dict))
        for key, value in params.items()
    )


def bound_record(record: RunRecord) -> RunRecord:
    """The record with every value within `VALUE_LIMITS`; what was cut is a parse warning.

    Text longer than its limit keeps its start and ends with CUT_MARK; the warning
    names the column (or `params.<keyword>`) and the original length. An integer
    outside its column's SQL range (a log printing 3,000,000,000 MPI processes) is
    left NULL with a warning: DuckDB would refuse the row and, with it, the swap of
    the whole partition. Identities are never cut. A record already within the
    limits is returned as it is, so bounding twice changes nothing.
    """
    cuts = _Cuts()
    changes: dict[str, Any] = {}
    for name, kind in _TEXT_COLUMNS:
        value = getattr(record, name, None)
        if isinstance(value, str) and len(value) > LIMITS[kind]:
            changes[name] = cuts.text(name, value, kind)
    for name, sql_type in _INTEGER_COLUMNS:
        value = getattr(record, name, None)
        low, high = INTEGER_RANGES[sql_type]
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            shown = str(value) if value.bit_length() < 256 else f"a {value.bit_length()}-bit number"
            cuts.warnings.append(f"{name}: {shown} does not fit {sql_type}, left NULL")
            changes[name] = None
    if isinstance(record.params, dict) and not _flat_and_short(record.params):
        before = len(cuts.warnings)
        params = cuts.params(record.params)
        if len(cuts.warnings) > before:
            changes["params"] = params
    warnings = bound_warnings((*record.parse_warnings, *cuts.warnings))
    if warnings != tuple(record.parse_warnings):
        changes["parse_warnings"] = warnings
    return record.replace(**changes) if changes else record


_STATUSES = frozenset(s.value for s in Status)


def _never_started(record: RunRecord) -> bool:
    """Not started, and its parser counted 0 iterations: NULL iterations mean its solver
    ran, its log not copied (post-processing read its results)."""
    return record.status == Status.NOT_STARTED and record.iterations_done == 0


def clean_record(record: RunRecord) -> tuple[RunRecord | None, str]:
    """(the cleaned record, "") or (None, the reason it cannot be a row); always bounded."""
    record = bound_record(record)
    missing = [
        rule.column
        for rule in CLEANING_POLICY
        if rule.rule == "required" and getattr(record, rule.column) in (None, "")
    ]
    if missing:
        return None, f"missing required column(s): {', '.join(missing)}"
    if record.status not in _STATUSES:
        return None, f"unknown status {record.status!r}"
    never_started = _never_started(record)
    fills: dict[str, object] = {
        rule.column: 0
        for rule in CLEANING_POLICY
        if getattr(record, rule.column) is None
        and (rule.rule == "zero" or (rule.rule == NEVER_STARTED and never_started))
    }
    return (record.replace(**fills) if fills else record), ""
