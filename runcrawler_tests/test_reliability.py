"""Issue 7: bad archives, crashes and hostile names never lose data or let anything out.

One test (or two) per promise of RELIABILITY.md; each prints a `RELIABILITY`
line with its figures (run `pytest -s` to see them).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from runcrawler_assets.archive.discovery import discover_partition, list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse, refresh_partitions
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, INGEST_ASSETS
from runcrawler_assets.defs.partitions import partition_key, register_partitions
from runcrawler_assets.defs.runner import crawl, dagster_instance, refresh_partition
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.idle import CrawlSummary
from runcrawler_assets.records import run_id_for
from runcrawler_assets.solvers.logtext import scan_log
from runcrawler_assets.swap import partition_rows
from runcrawler_assets.warehouse.database import (
    PartitionRows,
    column_chunks,
    connect,
    replace_partitions,
    write_table,
)
from runcrawler_tests.badarchive import (
    HOSTILE_NAMES,
    HUGE_LINE,
    HUGE_VALUE,
    HUGE_VALUES_RUN,
    ONE_GB,
    BadArchive,
    build_bad_archive,
    build_huge_values_archive,
)
from runcrawler_tests.spawned import map_spawned

REPO = Path(__file__).resolve().parents[1]
HOSTILE_SQL = "x'; DROP TABLE runs; --"


def report(promise: int, **figures: object) -> None:
    print("\nRELIABILITY promise", promise, " ".join(f"{k}={v}" for k, v in figures.items()))


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry below `root` (links not followed): mode, size, modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            info = os.lstat(os.path.join(folder, name))
            found[os.path.join(folder, name)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


@dataclass
class CrawledBadArchive:
    bad: BadArchive
    settings: Config
    summary: CrawlSummary
    output: str  # stdout, stderr, Python log records and Dagster's event log of the crawl
    seconds: float
    before: dict[str, tuple[int, int, int]]
    after: dict[str, tuple[int, int, int]]


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> CrawledBadArchive:
    """The bad archive, crawled once through Dagster, with everything the crawl printed."""
    base = tmp_path_factory.mktemp("bad")
    bad = build_bad_archive(base)
    settings = Config(archive_root=bad.root, data_dir=base / "data")
    before = snapshot(bad.root)
    printed, records = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(records)
    logging.getLogger().addHandler(handler)
    instance = DagsterInstance.ephemeral()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            summary = crawl(settings, INGEST_ASSETS, instance)
    finally:
        logging.getLogger().removeHandler(handler)
    seconds = time.monotonic() - started
    events = [repr(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
    output = "\n".join([printed.getvalue(), records.getvalue(), *events])
    return CrawledBadArchive(bad, settings, summary, output, seconds, before, snapshot(bad.root))


# ---------------------------------------------------------------- 1. nothing lost


@pytest.mark.timeout(120)
def test_every_run_directory_ends_as_a_row_or_a_quarantine_entry(crawled: CrawledBadArchive):
    bad, summary = crawled.bad, crawled.summary
    row_ids = [r[0] for r in query(crawled.settings.duckdb_path, "SELECT run_id FROM runs")]
    quarantined = {r[0] for r in query(crawled.settings.duckdb_path, "SELECT path FROM quarantine")}
    expected = {run_id_for(path): path for path in bad.run_dirs}
    lost = [p for i, p in expected.items() if i not in row_ids and p not in quarantined]
    assert lost == []
    assert len(row_ids) == len(set(row_ids))  # no run twice
    assert summary.success
    assert summary.discovered == summary.rows + summary.quarantined
    assert summary.discovered > len(bad.run_dirs)  # the links out are counted, not dropped
    report(
        1,
        run_dirs=len(bad.run_dirs),
        discovered=summary.discovered,
        rows=summary.rows,
        quarantined=summary.quarantined,
        runs_lost=len(lost),
    )


def test_a_run_deleted_or_truncated_while_the_crawl_runs_is_still_accounted(tmp_path: Path):
    root = tmp_path / "archive"
    generate_archive(root, runs=40, seed=11)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    pairs = list_partitions(settings)
    discoveries = [discover_partition(settings, c, u) for c, u in pairs]
    runs = [root / run.run_path for d in discoveries for run in d.runs]
    for run_dir in runs[:3]:  # deleted between discovery and parsing
        for child in sorted(run_dir.rglob("*"), reverse=True):
            child.unlink() if not child.is_dir() else child.rmdir()
        run_dir.rmdir()
    logs = [f for run_dir in runs[3:] for f in run_dir.iterdir() if f.name == "avbp.o"]
    for log in logs[:3]:  # truncated between discovery and parsing
        os.truncate(log, log.stat().st_size // 3)
    refresh_partitions(settings, discoveries, workers=1)
    parts = [partition_rows(settings, c, u) for c, u in pairs]
    rows = sum(len(c["run_id"]) for p in parts for c in column_chunks(p.records))  # read once
    vanished = [q.path for p in parts for q in p.quarantine if q.reason == "vanished"]
    assert len(vanished) == 3
    assert rows + len(vanished) == len(runs)
    report(2, faults="3 runs deleted + 3 logs truncated mid-crawl", runs_lost=0)


def test_a_log_truncated_while_it_is_read_gives_a_warning_not_an_error(tmp_path: Path):
    log = tmp_path / "avbp.o"
    log.write_bytes(b"Iteration # 1\n" * 400_000)

    def truncate_on_first_line(line: str, seen: list[str] = []) -> None:  # noqa: B006
        if not seen:
            os.truncate(log, 1000)
        seen.append(line)

    read = scan_log(log, truncate_on_first_line, head_until=None, scan_for=re.compile(b"error"))
    assert any("shrank" in w or "stopped" in w for w in read.warnings)


# ---------------------------------------------------------------- 2. never crash, never hang


@pytest.mark.timeout(120)
def test_a_bad_archive_is_crawled_without_crash_or_hang(crawled: CrawledBadArchive):
    by_path = dict(
        query(
            crawled.settings.duckdb_path,
            "SELECT run_path, list_aggregate(parse_warnings, 'string_agg', '; ') FROM runs",
        )
    )
    assert crawled.summary.success
    assert "not a regular file" in by_path["bad/special/fifo_log"]
    assert "not a regular file" in by_path["bad/special/socket_log"]
    # no parameter *file*, so not run directories (archive-format.md): never opened
    assert not {"bad/special/fifo_params", "bad/special/device", "bad/files/params_is_dir"} & set(
        by_path
    )
    huge = query(
        crawled.settings.duckdb_path, "SELECT log_bytes FROM runs WHERE run_path='bad/files/huge'"
    )
    assert huge == [(ONE_GB,)]
    report(
        2,
        cases=len(crawled.bad.cases),
        skipped=len(crawled.bad.skipped),
        run_dirs=len(crawled.bad.run_dirs),
        crawl_s=f"{crawled.seconds:.1f}",
        crashes=0,
        hangs=0,
    )


# ---------------------------------------------------------------- 3. stay inside the archive


def test_links_out_of_the_archive_are_quarantined_never_followed(crawled: CrawledBadArchive):
    reasons = dict(query(crawled.settings.duckdb_path, "SELECT path, reason FROM quarantine"))
    links = ("linked_user", "files/escape", "files/escape_relative", "files/leaky_params/avbp.o")
    for link in (*links, "files/leaky_params/run.params"):
        assert reasons[f"bad/{link}"] == "symlink_outside_archive"
    warnings = query(
        crawled.settings.duckdb_path,
        "SELECT parse_warnings FROM runs WHERE run_path = 'bad/files/leaky_log'",
    )
    assert warnings == [(["log.txt: symbolic link, not followed"],)]


def test_nothing_from_outside_the_archive_reaches_a_table_a_file_or_a_log(
    crawled: CrawledBadArchive,
):
    secret = crawled.bad.secret
    with duckdb.connect(str(crawled.settings.duckdb_path), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        dump = repr([con.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables])
    files = [p for p in crawled.settings.data_dir.rglob("*") if p.is_file()]
    leaking = [p for p in files if secret.encode() in p.read_bytes()]
    assert secret not in dump
    assert leaking == []
    assert secret not in crawled.output
    assert crawled.output  # the crawl's output was captured, so its absence means something
    report(3, places_checked=f"{len(tables)} tables + {len(files)} files + log/event text", leaks=0)


def test_the_archive_is_never_written_and_nothing_in_it_is_executed(crawled: CrawledBadArchive):
    assert crawled.after == crawled.before
    assert not crawled.bad.marker.exists()
    forbidden = re.compile(
        r"^\s*(?:import|from) (?:pickle|marshal|shelve|subprocess)\b"
        r"|\b(?:eval|exec|os\.system|os\.popen|os\.exec\w*)\(",
        re.M,
    )
    sources = list((REPO / "runcrawler_assets").rglob("*.py"))
    used = [p.name for p in sources if forbidden.search(p.read_text(encoding="utf-8"))]
    # The one exception: the sensor's own per-run state, written by it in the data folder
    # and checked by CRC before `marshal.loads` (which builds plain values, runs nothing).
    assert used == ["rescan.py"]
    assert "marshal.loads" in (REPO / "runcrawler_assets/archive/rescan.py").read_text()
    report(3, archive_entries=len(crawled.before), entries_changed=0, executed_or_unpickled=0)


# ---------------------------------------------------------------- 4. no injection


def test_hostile_names_are_just_names(crawled: CrawledBadArchive):
    users = {u for (u,) in query(crawled.settings.duckdb_path, 'SELECT DISTINCT "user" FROM runs')}
    assert HOSTILE_SQL in users
    assert {"caf\\xe9", "caf\\xe8"} <= users  # undecodable names stay distinct
    assert "new\nline" in users and "a|b,c[d]...e" in users
    report(4, hostile_names=len(HOSTILE_NAMES), tables_dropped=0)


def test_hostile_strings_reach_duckdb_only_as_values_or_quoted_identifiers(tmp_path: Path):
    hostile = (HOSTILE_SQL, '"; DROP TABLE quarantine; --', "a\\b", "\x00")
    with connect(tmp_path / "w.duckdb") as con:
        for name in hostile:
            replace_partitions(con, [PartitionRows(name, name, [], [])])
            write_table(con, name, con.execute("SELECT 1 AS one").df())
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"runs", "quarantine", *hostile} <= tables


# ---------------------------------------------------------------- 5. crash-safe

CRAWL_SCRIPT = """
import sys
from pathlib import Path

from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, INGEST_ASSETS
from runcrawler_assets.defs.runner import crawl, dagster_instance
from runcrawler_assets.config import Config

if __name__ == "__main__":
    settings = Config(archive_root=Path(sys.argv[1]), data_dir=Path(sys.argv[2]))
    with dagster_instance(settings) as instance:
        assert crawl(settings, INGEST_ASSETS, instance).success
"""
SWAP_SCRIPT = """
import sys, time
from pathlib import Path
from runcrawler_assets.warehouse.database import PartitionRows, connect, replace_partitions

def records():
    Path(sys.argv[2]).touch()  # read inside k/u's transaction, after its rows were deleted
    time.sleep(60)
    yield from ()

if __name__ == "__main__":
    with connect(Path(sys.argv[1])) as con:
        replace_partitions(con, [PartitionRows("k", "u", records(), [])])
"""
TABLES = (
    "SELECT * EXCLUDE (parsed_at) FROM runs ORDER BY run_id",
    "SELECT * EXCLUDE (seen_at) FROM quarantine ORDER BY ALL",
)


def tables_of(path: Path) -> tuple[list[tuple], ...]:
    with duckdb.connect(str(path), read_only=True) as con:
        return tuple(con.execute(sql).fetchall() for sql in TABLES)


def partitions_of(path: Path) -> dict[tuple[str, str], tuple[list[tuple], ...]]:
    """`tables_of`, partition by partition: (cluster, user) -> its rows of each table."""
    with duckdb.connect(str(path), read_only=True) as con:
        keys = con.execute(
            'SELECT DISTINCT cluster, "user" FROM runs UNION SELECT cluster, "user" FROM quarantine'
        ).fetchall()
        return {
            key: tuple(
                con.execute(
                    sql.replace("ORDER BY", 'WHERE cluster = ? AND "user" = ? ORDER BY'),
                    list(key),
                ).fetchall()
                for sql in TABLES
            )
            for key in keys
        }


def kill_group(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the crawl and its workers; False when it had already finished."""
    finished = process.poll() is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    return not finished


@pytest.mark.timeout(150)
def test_a_crawl_killed_at_any_moment_loses_nothing(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    root = tmp_path / "archive"
    generate_archive(root, runs=120, seed=5)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    crawl_into_warehouse(settings, list_partitions(settings))
    before = tables_of(settings.duckdb_path)
    logs = sorted(root.rglob("avbp.o"))[:80]
    for log in logs:  # 80 changed runs: the killed crawls have real parsing to do
        with log.open("a") as handle:
            handle.write(" ----> End of AVBP session\n")
    reference = Config(archive_root=root, data_dir=tmp_path / "reference")
    crawl_into_warehouse(reference, list_partitions(reference))
    after = tables_of(reference.duckdb_path)
    assert after != before
    old_parts = partitions_of(settings.duckdb_path)
    new_parts = partitions_of(reference.duckdb_path)
    changed = sum(new_parts[key] != old_parts[key] for key in new_parts)
    script = tmp_path / "crawl.py"
    script.write_text(CRAWL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("DAGSTER_HOME", None)
    states: list[str] = []
    for delay in (1.0, 2.5, 3.5, 4.5, 5.0):
        process = subprocess.Popen(
            [sys.executable, str(script), str(root), str(settings.data_dir)],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        killed = kill_group(process)
        state = partitions_of(settings.duckdb_path)  # readable after every kill
        # Each partition is committed on its own: all old or all new, whatever the others.
        assert all(rows in (old_parts.get(key), new_parts.get(key)) for key, rows in state.items())
        assert state.keys() == old_parts.keys() | new_parts.keys()
        news = sum(rows == new_parts[key] != old_parts[key] for key, rows in state.items())
        states.append(f"{delay}s:{'killed' if killed else 'done'}:{news}/{changed} new")
    with DagsterInstance.from_config(str(settings.data_dir / "dagster_home")) as instance:
        assert crawl(settings, INGEST_ASSETS, instance).success
    assert tables_of(settings.duckdb_path) == after
    report(5, kills=sum("killed" in s for s in states), runs_lost=0, rounds=" ".join(states))


def test_a_record_left_half_written_by_a_killed_crawl_is_replaced_never_read(tmp_path: Path):
    """A new run's record is written in place (not through a renamed temporary file): a crawl
    killed while writing it leaves a partial file that no index lists, and the next parse of
    the run replaces it whole."""
    root = tmp_path / "archive"
    generate_archive(root, runs=6, seed=8)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    crawl_into_warehouse(settings, list_partitions(settings))
    run = next(p.parent for p in sorted(root.rglob("run.params")))
    new_run = run.with_name(run.name + "_new")
    shutil.copytree(run, new_run)
    cluster, user = new_run.relative_to(root).parts[:2]
    run_id = run_id_for(new_run.relative_to(root).as_posix())
    partial = settings.runs_dir / cluster / user / f"{run_id}.json"
    partial.write_text('{"schema_version": 1, "run_id": "cut her')  # as a kill leaves it
    crawl_into_warehouse(settings, list_partitions(settings))
    record = json.loads(partial.read_text())
    assert record["run_id"] == run_id and record["run_path"] == new_run.relative_to(root).as_posix()
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone() == (
            1,
        )


@pytest.mark.timeout(60)
def test_a_swap_killed_inside_its_transaction_leaves_the_previous_rows(tmp_path: Path):
    from runcrawler_tests.test_warehouse import record

    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        replace_partitions(con, [PartitionRows("k", "u", [record("k", "u", "r1")], [])])
    script, inside = tmp_path / "swap.py", tmp_path / "inside"
    script.write_text(SWAP_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(path), str(inside)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not inside.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inside.exists()
    assert kill_group(process)
    assert query(path, "SELECT run_path FROM runs") == [("k/u/r1",)]
    report(5, kill="inside the DuckDB transaction", previous_rows_intact=True)


@pytest.mark.timeout(60)
def test_a_pool_slot_left_by_a_killed_crawl_does_not_block_the_next(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    root = tmp_path / "archive"
    generate_archive(root, runs=10, seed=2)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    with dagster_instance(settings) as instance:  # the CLI's instance: the duckdb pool holds 1
        instance.event_log_storage.claim_concurrency_slot(DUCKDB_POOL, "killed-run", "runs_table")
        summary = crawl(settings, INGEST_ASSETS, instance)
        info = instance.event_log_storage.get_concurrency_info(DUCKDB_POOL)
    assert summary.success and summary.rows == 10
    assert info.claimed_slots == [] and info.pending_steps == []
    report(5, fault="pool slot held by a dead run", next_crawl="succeeded")


# ---------------------------------------------------------------- 6. concurrent writers


def _materialize(args: tuple[str, str, str, str, str, bool]) -> bool:
    home, archive_root, data_dir, cluster, user, reparse_all = args
    settings = Config(archive_root=Path(archive_root), data_dir=Path(data_dir))
    with DagsterInstance.from_config(home) as instance:
        key = str(partition_key(cluster, user))
        return refresh_partition(settings, instance, key, reparse_all=reparse_all).success


@pytest.mark.timeout(120)
def test_an_overlapping_manual_materialization_writes_no_duplicate(tmp_path: Path):
    root = tmp_path / "archive"
    generate_archive(root, runs=120, seed=3)
    settings = Config(archive_root=root, data_dir=tmp_path / "data")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    pairs = sorted(
        list_partitions(settings),
        key=lambda p: -len(list((root / p[0] / p[1]).rglob("run.params"))),
    )[:2]
    with DagsterInstance.from_config(str(home)) as instance:
        register_partitions(instance, pairs)
    jobs = [
        (str(home), str(root), str(settings.data_dir), *pairs[0], False),
        (str(home), str(root), str(settings.data_dir), *pairs[1], False),
        (str(home), str(root), str(settings.data_dir), *pairs[0], True),  # the manual one
    ]
    assert map_spawned(_materialize, jobs, 3) == [True, True, True]
    counts = query(settings.duckdb_path, "SELECT count(*), count(DISTINCT run_id) FROM runs")
    expected = sum(len(list((root / c / u).rglob("run.params"))) for c, u in pairs)
    assert counts == [(expected, expected)]
    report(6, writers=3, overlapping=1, rows=expected, duplicates=0, lock_errors=0)


# ---------------------------------------------------------------- 7. local by default


def test_the_ui_binds_to_localhost_and_the_readme_says_how_to_expose_it():
    makefile = (REPO / "Makefile").read_text()
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", makefile, re.M)
    assert "-h $(HOST)" in makefile
    assert "## Security" in readme and "reverse proxy" in readme
    assert "RELIABILITY.md" in readme
    assert stat.S_ISREG(os.stat(REPO / "RELIABILITY.md").st_mode)


# ---------------------------------------------------------------- 9. bounded values

HUGE_CRAWL_MAX_S = 60
HUGE_CRAWL_MAX_MB = 1536


def _vm_hwm_mb(pid: int) -> float:
    """The peak RSS of a live process (VmHWM), 0 when it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    return next((int(x.split()[1]) / 1024 for x in lines if x.startswith("VmHWM:")), 0.0)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc/<pid>/task/*/children."""
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        found.append(parent)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
    return found


def crawl_measured(archive: Path, data: Path, log: Path) -> tuple[float, float, int]:
    """`runcrawler crawl` (analytics, charts and report too) in a child process.

    Returns (seconds, peak RSS of the process tree in MB, exit status); its output
    goes to `log`. The peak is the sum of each process's VmHWM, sampled every
    50 ms: an upper bound. A crawl past twice the bounds is killed, so that a
    regression fails the test instead of taking the machine's memory for minutes.
    """
    command = [sys.executable, "-c", "from runcrawler_assets.cli import main; main()"]
    command += ["crawl", "--archive", str(archive), "--data", str(data)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(data / "dagster_home")}
    peaks: dict[int, float] = {}
    started = time.monotonic()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, start_new_session=True, stdout=stderr, stderr=stderr
        )
    try:
        while process.poll() is None:
            for pid in _tree(process.pid):
                peaks[pid] = max(peaks.get(pid, 0.0), _vm_hwm_mb(pid))
            too_long = time.monotonic() - started > 2 * HUGE_CRAWL_MAX_S
            if too_long or sum(peaks.values()) > 2 * HUGE_CRAWL_MAX_MB:
                kill_group(process)
            time.sleep(0.05)
    finally:
        kill_group(process)
    return time.monotonic() - started, sum(peaks.values()), process.returncode


@pytest.mark.timeout(300)
def test_a_run_with_megabyte_values_is_crawled_fast_with_its_values_cut(tmp_path: Path):
    archive = build_huge_values_archive(tmp_path)
    data = tmp_path / "data"
    log = tmp_path / "crawl.log"
    seconds, peak_mb, status = crawl_measured(archive.root, data, log)
    assert status == 0, log.read_text(errors="replace")[-3000:]
    assert seconds < HUGE_CRAWL_MAX_S and peak_mb < HUGE_CRAWL_MAX_MB
    (row,) = query(
        data / "runcrawler.duckdb",
        "SELECT mixture_name, host, error_message, error_signature, parse_warnings,"
        f" params->>'mixture_name' FROM runs WHERE run_path = '{HUGE_VALUES_RUN}'",
    )
    mixture, host, message, signature, warnings, param = row
    assert (len(mixture), len(host), len(message)) == (256, 256, 1024)
    assert len(signature) <= 1024  # read from the message's first 1,024 characters
    assert mixture == param == "x" * 255 + "…"
    assert host.startswith("hhh") and message.startswith("ERROR : Cannot open file eee")
    cut = [w for w in warnings if "cut to" in w]
    assert any(w.startswith("mixture_name: ") and "characters, cut to 256" in w for w in cut)
    assert {w.split(":")[0] for w in cut} == {
        "mixture_name",
        "params.mixture_name",
        "host",
        "error_message",
    }
    page = (data / "report.html").read_bytes()
    assert len(page) < 2_000_000 and b"x" * 300 not in page
    report(
        9,
        mixture_name_chars=f"{HUGE_VALUE:,}",
        host_and_error_chars=f"{HUGE_LINE:,}",
        crawl_s=f"{seconds:.1f}",
        peak_rss_mb=f"{peak_mb:.0f}",
        report_kb=len(page) // 1024,
        cuts=len(cut),
    )


def test_the_huge_values_run_of_the_bad_archive_is_a_row_with_cut_values(
    crawled: CrawledBadArchive,
):
    (row,) = query(
        crawled.settings.duckdb_path,
        "SELECT length(mixture_name), length(host), length(error_message), parse_warnings"
        f" FROM runs WHERE run_path = '{HUGE_VALUES_RUN}'",
    )
    assert row[:3] == (256, 256, 1024)
    assert any(w.startswith("mixture_name: ") for w in row[3])
