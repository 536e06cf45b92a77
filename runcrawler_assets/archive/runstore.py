"""The JSON run store: one file per run under `<data>/runs/<cluster>/<user>/`.

Each partition folder holds `<run_id>.json` (a `RunRecord`), `_index.json`
(run path -> fingerprint and outcome, so a refresh knows what is unchanged
without opening every record) and `_quarantine.json` (the partition's runs
and folders that gave no record, with their reasons). Files are written to a
temporary name and renamed, so a killed crawl never leaves half a file; the
temporary name is unique to the writer, so two processes refreshing the same
partition at once never write into, or rename, each other's half file.

`content_digest` hashes the index and quarantine files as bytes (no JSON
parsing): a partition's rows in the warehouse come from exactly these two
files and the records the index lists, and every record written changes its
index entry (`parsed_at`), so an unchanged digest means unchanged rows and
the warehouse need not read or rewrite the partition (issue 16).

`_digests.json` keeps that digest and the digest of the index's runs and
fingerprints (what the archive's scan is compared with) for as long as the index
and quarantine files keep their inode, size and modification time: both are only
ever replaced whole, so a crawl with nothing to do reads neither (`digests`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from runcrawler_assets.archive.discovery import (
    DiscoveredRun,
    PartitionDiscovery,
    Problem,
    fingerprints_digest,
    partition_digest,
)
from runcrawler_assets.records import RunRecord

INDEX_FILE = "_index.json"
# Index entries serialized per piece of the index file (the whole index as one payload of
# dicts and one string doubled the partition's memory while it was written).
INDEX_WRITE_SLICE = 2_000
DISCOVERY_FILE = "_discovery.json"
QUARANTINE_FILE = "_quarantine.json"
DIGESTS_FILE = "_digests.json"
# What a partition's rows are made from (with the records its index lists), and so what
# its content digest hashes and what its kept digests are valid for.
CONTENT_FILES = (INDEX_FILE, QUARANTINE_FILE)


@dataclass(frozen=True)
class QuarantineEntry:
    """A file or run directory that could not become a row, and why."""

    cluster: str
    user: str
    path: str  # relative to the archive root
    reason: str
    detail: str
    seen_at: str  # ISO 8601


class IndexEntry(NamedTuple):
    """A run's line of the index: a tuple (the largest partition of a million runs holds
    ~150,000 of them while it is refreshed; as dataclasses they were ~4× larger)."""

    fingerprint: str
    run_id: str | None  # None when the run is in quarantine
    # When the run was last parsed: a re-parse with the same fingerprint (the nightly
    # reconciliation) still changes the index, hence the partition's content digest.
    parsed_at: str | None = None


class StoreDigests(NamedTuple):
    """What a partition's store holds, as digests: its index's runs and fingerprints
    (`fingerprints_digest`, as the archive's scan has them) and its index and quarantine
    files' bytes (`PartitionStore.content_digest`)."""

    fingerprints: str
    content: str


def read_text(path: Path) -> str:
    """A file runcrawler wrote (`write_atomic`), names with undecodable bytes included."""
    return path.read_text(encoding="utf-8", errors="surrogateescape")


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write `text` (or its pieces, in order) to a temporary file of this writer's own, then
    rename it: a reader sees the old file or the new one. Names from the archive with
    undecodable bytes are written as those bytes (`read_text` reads them back)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", errors="surrogateescape") as file:
            if isinstance(text, str):
                file.write(text)
            else:
                file.writelines(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _flat(items: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Flat dataclasses as dicts (what `asdict` gives, without its deep copies: an idle
    crawl serializes every discovered run once to compare)."""
    if not items:
        return []
    names = [f.name for f in fields(items[0])]
    return [{name: getattr(item, name) for name in names} for item in items]


def _discovery_text(discovery: PartitionDiscovery) -> str:
    """The discovery file: its head (`DiscoveryHead`) first, then the runs and problems."""
    payload = {
        "digest": partition_digest(discovery.runs),
        "n_runs": len(discovery.runs),
        "n_problems": len(discovery.problems),
        "runs": _flat(discovery.runs),
        "problems": _flat(discovery.problems),
    }
    return json.dumps(payload, ensure_ascii=False)


class DiscoveryHead(NamedTuple):
    """What the first bytes of a discovery file say of it: the archive sensor's digest of
    its runs and how many runs and problems it lists, read without parsing the rest (a
    million runs' discoveries took 2.7 s to parse for the digests of a first tick)."""

    digest: str
    n_runs: int
    n_problems: int
    # False for a file that is not a discovery (damaged by hand or by the disk): its digest
    # matches no partition's, so the sensor and the crawl refresh the partition, which
    # writes the file again; it counts nothing meanwhile.
    readable: bool = True


UNREADABLE = DiscoveryHead("", 0, 0, readable=False)

# The head as `json.dumps` writes it; a file written before it had none.
_HEAD = re.compile(r'\{"digest": "([0-9a-f]{40})", "n_runs": (\d+), "n_problems": (\d+), ')
_HEAD_BYTES = 120


class PartitionStore:
    """The JSON files of one cluster × user partition."""

    def __init__(self, runs_dir: Path, cluster: str, user: str) -> None:
        self.cluster = cluster
        self.user = user
        self.folder = runs_dir / cluster / user

    def read_index(self) -> dict[str, IndexEntry]:
        path = self.folder / INDEX_FILE
        if not path.is_file():
            return {}
        # Each entry becomes a tuple as it is decoded: no dict per run held until the end.
        index: dict[str, IndexEntry] = json.loads(read_text(path), object_hook=_index_entry)
        return index

    def write_index(self, index: dict[str, IndexEntry]) -> None:
        """The index as `json.dumps` of its sorted entries would write it (the same bytes,
        so the same content digest), serialized `INDEX_WRITE_SLICE` entries at a time."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ordered = sorted(index)

        def pieces() -> Iterator[str]:
            yield "{"
            for start in range(0, len(ordered), INDEX_WRITE_SLICE):
                piece = {
                    path: index[path]._asdict()
                    for path in ordered[start : start + INDEX_WRITE_SLICE]
                }
                yield (", " if start else "") + json.dumps(piece, ensure_ascii=False)[1:-1]
            yield "}"

        write_atomic(self.folder / INDEX_FILE, pieces())

    def content_digest(self) -> str:
        """A digest of the index and quarantine files' bytes: what the partition's rows are
        made from (see the module's docstring). Missing files hash as empty."""
        digest = hashlib.sha1()
        for name in CONTENT_FILES:
            with contextlib.suppress(FileNotFoundError):
                digest.update((self.folder / name).read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()

    def digests(self) -> StoreDigests:
        """The store's digests, read back from `_digests.json` while the index and quarantine
        files are those they were computed from (the same inode, size and modification time,
        as `_file_identities` gives them), else computed (the index read whole: at a million
        runs ~2.5 s of a crawl with nothing to do, issue 16) and kept there. Kept only when
        neither file changed while they were read, and never in a folder that does not
        exist yet (nothing is created)."""
        path = self.folder / DIGESTS_FILE
        identities = self._file_identities()
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            kept = json.loads(read_text(path))
            if kept["files"] == identities:
                return StoreDigests(kept["fingerprints"], kept["content"])
        index = self.read_index()
        fingerprints = fingerprints_digest((p, entry.fingerprint) for p, entry in index.items())
        del index
        digests = StoreDigests(fingerprints, self.content_digest())
        if self.folder.is_dir() and self._file_identities() == identities:
            with contextlib.suppress(OSError):
                write_atomic(path, json.dumps({"files": identities, **digests._asdict()}))
        return digests

    def _file_identities(self) -> list[list[int] | None]:
        """The index's and quarantine's inode, size and modification time (None: missing)."""
        identities: list[list[int] | None] = []
        for name in CONTENT_FILES:
            try:
                stat = (self.folder / name).stat()
            except FileNotFoundError:
                identities.append(None)
            else:
                identities.append([stat.st_ino, stat.st_size, stat.st_mtime_ns])
        return identities

    def write_record(self, record: RunRecord) -> None:
        """A new run's record is written in place: nothing reads it before the index lists
        it, written after (a crawl killed meanwhile leaves an orphan file, replaced when the
        run is parsed again). One that exists, which the index may list, is replaced whole
        (`write_atomic`). A cold crawl so creates one file per run, not two and a rename."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path, text = self.folder / f"{record.run_id}.json", record.to_json()
        try:
            with path.open("x", encoding="utf-8", errors="surrogateescape") as file:
                file.write(text)
        except FileExistsError:
            write_atomic(path, text)

    def remove_record(self, run_id: str) -> None:
        (self.folder / f"{run_id}.json").unlink(missing_ok=True)

    def run_ids(self) -> list[str]:
        """The ids of the partition's records, in the index's order of run paths; of the
        index only they are kept (150,000 entries are ~60 MB)."""
        entries = self.read_index()  # tuples as decoded: no dict per run, even briefly
        return [entry.run_id for entry in entries.values() if entry.run_id is not None]

    def parsed_runs(self) -> list[tuple[str, str | None]]:
        """Each record's run id and when it was parsed, as the index says."""
        entries = self.read_index().values()
        return [(e.run_id, e.parsed_at) for e in entries if e.run_id is not None]

    def records(self) -> Iterator[RunRecord]:
        """The partition's records, in the index's order, read one at a time."""
        return self.records_of(self.run_ids())

    def records_of(self, run_ids: Iterable[str]) -> Iterator[RunRecord]:
        """The records `run_ids`, read one at a time."""
        for run_id in run_ids:
            yield RunRecord.from_json(read_text(self.folder / f"{run_id}.json"))

    def read_quarantine(self) -> list[QuarantineEntry]:
        path = self.folder / QUARANTINE_FILE
        if not path.is_file():
            return []
        return [QuarantineEntry(**item) for item in json.loads(read_text(path))]

    def write_quarantine(self, entries: list[QuarantineEntry]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = [asdict(entry) for entry in sorted(entries, key=lambda e: e.path)]
        write_atomic(self.folder / QUARANTINE_FILE, json.dumps(payload, ensure_ascii=False))

    def write_discovery(self, discovery: PartitionDiscovery) -> None:
        """Keep what discovery found, for the parse step that follows."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / DISCOVERY_FILE, _discovery_text(discovery))

    def is_settled(self, discovery: PartitionDiscovery) -> bool:
        """Whether the store already holds exactly `discovery` and every run of it is
        indexed with its current fingerprint: nothing of this partition to parse or remove.
        (Compares text and fingerprints; no record is read.)"""
        path = self.folder / DISCOVERY_FILE
        if not path.is_file() or read_text(path) != _discovery_text(discovery):
            return False
        return self.indexes({run.run_path: run.fingerprint for run in discovery.runs})

    def indexes(self, fingerprints: dict[str, str]) -> bool:
        """Whether the index lists exactly these runs (path -> fingerprint), each parsed as
        it is: none of them to parse, none to remove."""
        indexed = {run_path: entry.fingerprint for run_path, entry in self.read_index().items()}
        return indexed == fingerprints

    def read_discovery(self) -> PartitionDiscovery:
        path = self.folder / DISCOVERY_FILE
        raw = (
            json.loads(read_text(path), object_hook=_discovered_item)
            if path.is_file()
            else {"runs": [], "problems": []}
        )
        return PartitionDiscovery(
            self.cluster, self.user, tuple(raw["runs"]), tuple(raw["problems"])
        )

    def reusable_discovery(self) -> PartitionDiscovery:
        """The last discovery, to take unchanged runs from: empty when its file is missing or
        damaged (then every run is walked again, and the file written again)."""
        try:
            return self.read_discovery()
        except (ValueError, KeyError, TypeError):
            return PartitionDiscovery(self.cluster, self.user, (), ())

    def recorded_head(self) -> DiscoveryHead:
        """The digest and counts of what discovery last recorded, from the file's head (a
        file without one, written by an earlier version, is read whole; one that is not a
        discovery file is `UNREADABLE`)."""
        path = self.folder / DISCOVERY_FILE
        try:
            with path.open("rb") as file:
                head = _HEAD.match(file.read(_HEAD_BYTES).decode("ascii", "replace"))
        except FileNotFoundError:
            head = None
        if head is not None:
            return DiscoveryHead(head[1], int(head[2]), int(head[3]))
        try:
            discovery = self.read_discovery()
        except (ValueError, KeyError, TypeError):  # not JSON, or not a discovery's
            return UNREADABLE
        runs, problems = discovery.runs, discovery.problems
        return DiscoveryHead(partition_digest(runs), len(runs), len(problems))

    def discovered_paths(self) -> list[str]:
        """The paths of the runs and problems discovery recorded, and nothing else of them."""
        path = self.folder / DISCOVERY_FILE
        if not path.is_file():
            return []
        raw = json.loads(read_text(path), object_hook=_item_path)
        return [*raw["runs"], *raw["problems"]]


def recorded_partitions(runs_dir: Path) -> list[tuple[str, str]]:
    """Every (cluster, user) whose discovery `run_files` recorded in the JSON run store."""
    return sorted(
        (f.parent.parent.name, f.parent.name) for f in runs_dir.glob(f"*/*/{DISCOVERY_FILE}")
    )


def recorded_runs(runs_dir: Path) -> int:
    """How many runs the last discoveries recorded, all partitions together: the archive's
    size as known without a walk or the warehouse (the discovery files' heads)."""
    return sum(
        PartitionStore(runs_dir, cluster, user).recorded_head().n_runs
        for cluster, user in recorded_partitions(runs_dir)
    )


def _index_entry(item: dict[str, Any]) -> Any:
    """`json.loads` hook: an index entry as an `IndexEntry` (the outer object, whose values
    are entries by then, stays a dict)."""
    return IndexEntry(**item) if isinstance(item.get("fingerprint"), str) else item


def _discovered_item(item: dict[str, Any]) -> Any:
    """`json.loads` hook: a discovered run or problem as its object as soon as it is read."""
    if "run_path" in item:
        return DiscoveredRun(**{**item, "solver": sys.intern(item["solver"])})
    if "reason" in item:
        return Problem(**item)
    return item


def _item_path(item: dict[str, Any]) -> Any:
    """`json.loads` hook: a discovered run or problem as its path alone."""
    return item.get("run_path", item.get("path", item))


class StoredDiscoveries(Collection[PartitionDiscovery]):
    """What discovery last found in these partitions, read from their stores each time it
    is iterated: one partition in memory at a time, however many runs they hold."""

    def __init__(self, runs_dir: Path, partitions: list[tuple[str, str]]) -> None:
        self.stores = [PartitionStore(runs_dir, cluster, user) for cluster, user in partitions]

    def __iter__(self) -> Iterator[PartitionDiscovery]:
        return (store.read_discovery() for store in self.stores)

    def __len__(self) -> int:
        return len(self.stores)

    def __contains__(self, item: object) -> bool:
        return any(item == discovery for discovery in self)
