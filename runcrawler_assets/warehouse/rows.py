"""A partition's records as the rows of `runs`, a column at a time: what a swap inserts.

Kept apart from `database.py` and light on imports (no pandas, no DuckDB): a
swap's worker processes read a partition's JSON store, clean its records and
make their rows here, while the swap's own process inserts the rows made
before (issue 16). Columns travel back, not records nor a dict per row: 2,000 rows
pickle and unpickle in ~11 ms as columns, ~17 ms as dicts, ~56 ms as records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runcrawler_assets.archive.runstore import PartitionStore, QuarantineEntry
from runcrawler_assets.records import RUN_COLUMNS, RunRecord
from runcrawler_assets.warehouse.cases import CASE_COLUMNS
from runcrawler_assets.warehouse.cleaning import clean_record

Columns = dict[str, list[Any]]  # column name -> its values, one per row

# The columns of `runs` a swap inserts from its records (the case columns are derived by SQL
# as they go in), and among them those read as they are (params) or cleaned (text).
INSERTED = tuple((c.name, c.sql_type) for c in RUN_COLUMNS if c.name not in CASE_COLUMNS)
_NOT_PARAMS = tuple(name for name, _ in INSERTED if name != "params")
_TEXT = frozenset(name for name, sql_type in INSERTED if sql_type.startswith("VARCHAR"))


def clean_text(value: object) -> object:
    """Strings as valid UTF-8, and two different names never as the same text.

    A name holding undecodable bytes (a Latin-1 `caf\\xe9`) shows them as `\\xe9`.
    It must stay distinct from every other name, or swapping one partition would
    delete the rows of another whose name reads the same: so in such a name and in
    any name holding a backslash, backslashes are doubled. Other names are unchanged.
    """
    if isinstance(value, list):  # parse_warnings name files too
        return [clean_text(item) for item in value]
    if not isinstance(value, str) or (value.isascii() and "\\" not in value):
        return value  # the common case, decided without encoding
    raw = value.encode("utf-8", "surrogateescape")
    undecodable = raw.decode("utf-8", "ignore") != value
    if not undecodable and "\\" not in value:
        return value
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def _readable(value: object) -> object:
    """Strings of a JSON-ready value as valid UTF-8, undecodable bytes as `\\xNN`."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_readable(k): _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    return value


def record_columns(records: Iterable[RunRecord]) -> Columns:
    """Records as the columns of `runs` a swap inserts (`INSERTED`), their text valid."""
    columns: Columns = {name: [] for name, _ in INSERTED}
    text = [(name, columns[name].append) for name in _NOT_PARAMS if name in _TEXT]
    other = [(name, columns[name].append) for name in _NOT_PARAMS if name not in _TEXT]
    add_params = columns["params"].append
    for record in records:
        row = record.to_json_dict()
        for name, append in text:
            append(clean_text(row[name]))
        for name, append in other:
            append(row[name])
        # Parameter values are text, not identities: JSON escapes keep quotes and
        # backslashes as they are; an undecodable byte reads `\xNN`.
        params = json.dumps(row["params"], ensure_ascii=False)
        if not params.isascii():  # only then can it hold an undecodable byte
            params = json.dumps(_readable(row["params"]), ensure_ascii=False)
        add_params(params)
    return columns


def stored_columns(
    runs_dir: Path, cluster: str, user: str, run_ids: Sequence[str]
) -> tuple[Columns, list[QuarantineEntry]]:
    """The records `run_ids` of a partition's JSON store, cleaned, as columns, and a
    quarantine entry for each record the cleaning rejects (with its reason)."""
    rejects: list[QuarantineEntry] = []

    def cleaned() -> Iterable[RunRecord]:
        for record in PartitionStore(runs_dir, cluster, user).records_of(run_ids):
            kept, reason = clean_record(record)
            if kept is not None:
                yield kept
                continue
            seen = (record.parsed_at or datetime.now(UTC).replace(tzinfo=None)).isoformat()
            entry = QuarantineEntry(cluster, user, record.run_path, "cleaning", reason, seen)
            rejects.append(entry)

    return record_columns(cleaned()), rejects
