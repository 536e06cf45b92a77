"""What the benchmarks share: archives generated once, crawls in a child process, timers.

Archives come from the demo generator (log sizes as it makes them) plus a few
sparse 1 GB logs, and are kept in a `Workspace` so that several benchmarks
measure the same archive without generating it twice. A crawl runs in a child
process (`crawl_child`) whose process tree is sampled for peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runcrawler_assets.demo import generate_archive
from runcrawler_assets.demo.archive import DEFAULT_TEMPLATES
from runcrawler_assets.progress import Progress

REPO = Path(__file__).resolve().parent.parent
GIGABYTE = 1 << 30
BIG_LOG_HEADER = """ __________________________________________________________
          AVBP  V7.12.0  (build 2024-02-14, intel/2023.1)
 __________________________________________________________
 Run started on   : 2024-03-12 14:02:33
 Host             : kraken-node0042
 Number of MPI processes :   288
 ----> Reading run parameters
 ----> Reading boundary conditions
 ----> Info on initial grid
       Dimension                :   3
       Number of nodes          :   2345678
       Number of cells          :   12876543
 ----> Writes full parameters file
 ----> Info on initial solution
 ----> Reading probe coordinates file
 ----> Writing probe reference file
 ----> Wall distances stored in file
 ----> Starts the temporal loop
"""
BIG_LOG_TAIL = """  Iteration #     50000   Time [s] =  6.1725E-03   dt [s] =  1.2E-07
 ----> Integral values for boundary patches
 Total CPU time [s]        :   1.4250E+06
 Elapsed wall time [s]     :   4.9479E+03
 Reduced efficiency [s.proc/it/node] : 1.2152E-05
 Run ended on     : 2024-03-12 15:25:02
 ----> End of AVBP session
"""


def load_average() -> float:
    """The 1-minute load average: the machine is shared, so every figure carries it."""
    return round(os.getloadavg()[0], 2)


def timed(action: Callable[[], object]) -> float:
    """Wall-clock seconds of `action()`."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def add_gigabyte_logs(root: Path, count: int, size: int = GIGABYTE) -> list[Path]:
    """`count` extra runs whose avbp.o is 1 GB: a real header and tail around a sparse hole.

    `size` other than 1 GB is for the smoke test, which cannot afford the baselines' reads.
    Each copies the run.params of an existing run, in a `big_logs` case of its user.
    """
    params = sorted(root.glob("*/*/*/*/run.params"))[:count]
    logs = []
    for index, source in enumerate(params):
        run_dir = source.parent.parent / "big_logs" / f"run_{index}"
        run_dir.mkdir(parents=True)
        shutil.copy2(source, run_dir / "run.params")
        log = run_dir / "avbp.o"
        with log.open("wb") as f:
            f.write(BIG_LOG_HEADER.encode())
            f.truncate(size)
            f.seek(0, os.SEEK_END)
            f.write(("\n" + BIG_LOG_TAIL).encode())
        logs.append(log)
    return logs


def archive_files(root: Path) -> Iterator[Path]:
    """Every regular file of the archive."""
    for folder, _, names in os.walk(root):
        for name in names:
            yield Path(folder, name)


def evict_from_page_cache(paths: list[Path]) -> None:
    """Drop these files from the page cache (theirs only: the machine is shared).

    So a "cold" pass reads from the disk, as a crawl of a freshly copied archive would.
    """
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class CrawlRun:
    """One `runcrawler crawl` in a child process: its time, its peak RSS, where it wrote."""

    runs: int
    seconds: float
    main_rss_mb: float
    max_worker_rss_mb: float
    tree_peak_mb: float  # the process tree's summed RSS at its largest sample
    data_dir: Path
    summary: str
    load_average: float


def memory_mb(pid: int) -> dict[str, float]:
    """A live process's resident memory now (`VmRSS`) and its own peak (`VmHWM`: unlike
    ru_maxrss, not inherited at fork), read at once, in MB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        status = ""
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return {
        name: int(fields[name].split()[0]) / 1024 if name in fields else 0.0
        for name in ("VmRSS", "VmHWM")
    }


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (`memory_mb`)."""
    return memory_mb(pid)["VmHWM"]


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = Path(f"/proc/{parent}/task").iterdir()
            children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
        except OSError:
            continue
        found += children
        stack += children
    return found


def crawl_in_child(archive: Path, data_dir: Path, analytics: bool = True) -> CrawlRun:
    """`runcrawler crawl` as users run it, in a child process whose tree is sampled for RSS.

    The peaks are VmHWM, sampled every 50 ms while each process lives: the main
    process's, and the largest of its children's (the parse workers); and the largest
    sum of the tree's RSS at one sample (issue 16's 500 MB is the whole tree's).
    """
    env = {**os.environ, "DAGSTER_HOME": str(data_dir / "dagster_home")}
    command = [sys.executable, "-m", "benchmarks.crawl_child", str(archive), str(data_dir)]
    if not analytics:
        command.append("--no-analytics")
    load = load_average()
    peaks: dict[int, float] = {}
    tree_peak = 0.0
    started = time.perf_counter()
    # Files, not pipes: nobody reads a pipe while sampling, and a full one would block the crawl.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err) as child:
            while child.poll() is None:
                tree = {pid: memory_mb(pid) for pid in (child.pid, *descendants(child.pid))}
                for pid, memory in tree.items():
                    peaks[pid] = max(peaks.get(pid, 0.0), memory["VmHWM"])
                tree_peak = max(tree_peak, sum(memory["VmRSS"] for memory in tree.values()))
                time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"crawl failed:\n{stdout}\n{stderr[-3000:]}")
    report = json.loads(stdout.strip().splitlines()[-1])
    workers = [peak for pid, peak in peaks.items() if pid != child.pid]
    return CrawlRun(
        runs=report["runs"],
        seconds=seconds,
        main_rss_mb=round(max(peaks.get(child.pid, 0.0), report["main_rss_mb"]), 1),
        max_worker_rss_mb=round(max(workers, default=0.0), 1),
        tree_peak_mb=round(tree_peak, 1),
        data_dir=data_dir,
        summary=report["summary"],
        load_average=load,
    )


@dataclass
class Workspace:
    """Archives (by number of runs) and their crawls, made once and shared by the benchmarks."""

    root: Path
    gigabyte_logs: int = 3
    big_log_bytes: int = GIGABYTE
    seed: int = 1
    # Bigger archives are laid out as hard links to DEFAULT_TEMPLATES rendered runs
    # (demo/linked_copies.py): a million runs in ~3 min and ~10 GB (folders), not ~10 min.
    render_all_up_to: int = 100_000
    archives: dict[int, Path] = field(default_factory=dict)
    crawls: dict[int, CrawlRun] = field(default_factory=dict)

    def archive(self, runs: int) -> Path:
        """The demo archive of `runs` runs (plus the 1 GB logs), generated on first use."""
        if runs not in self.archives:
            path = self.root / f"archive-{runs}"
            templates = DEFAULT_TEMPLATES if runs > self.render_all_up_to else None
            with Progress(f"archive of {runs:,} runs", runs, "runs") as bar:
                generate_archive(
                    path, runs=runs, seed=self.seed, templates=templates, progress=bar.advance
                )
            add_gigabyte_logs(path, self.gigabyte_logs, self.big_log_bytes)
            self.archives[runs] = path
        return self.archives[runs]

    def crawl(self, runs: int) -> CrawlRun:
        """The first `runcrawler crawl` of that archive, cold (page cache dropped first)."""
        if runs not in self.crawls:
            archive = self.archive(runs)
            evict_from_page_cache(list(archive_files(archive)))
            self.crawls[runs] = crawl_in_child(archive, self.root / f"data-{runs}")
        return self.crawls[runs]

    def remove(self, runs: int) -> None:
        """Free the disk an archive and its data took."""
        shutil.rmtree(self.root / f"archive-{runs}", ignore_errors=True)
        shutil.rmtree(self.root / f"data-{runs}", ignore_errors=True)
        self.archives.pop(runs, None)
        self.crawls.pop(runs, None)


def not_new_folder(path: Path) -> str | None:
    """Why `path` cannot be a benchmark's new working folder (None: it can): a benchmark
    generates its archive there, and refuses to write into what is already there."""
    if path.exists() and not path.is_dir():
        return f"{path} is not a folder"
    if path.is_dir() and any(path.iterdir()):
        return f"{path} is not empty; give a new or empty folder"
    return None


def rows_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The command line of a benchmark on a `runs` table of N replicated rows: `--rows` and
    `--workdir`, which `rows_workspace` checks; the benchmark adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of `runs` (1,000,000)")
    parser.add_argument(
        "--workdir", type=Path, help="a new folder for the source crawl (default: a temporary one)"
    )
    return parser


def rows_workspace(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Workspace:
    """The workspace `rows_parser`'s arguments name, or a usage error for a bad one."""
    if args.rows < 1:
        parser.error(f"--rows {args.rows}: at least 1")
    if args.workdir is not None and (problem := not_new_folder(args.workdir)):
        parser.error(f"--workdir: {problem}")
    return Workspace(args.workdir) if args.workdir else temporary_workspace()


def temporary_workspace() -> Workspace:
    """A workspace in a fresh temporary folder, for a benchmark called on its own."""
    return Workspace(Path(tempfile.mkdtemp(prefix="runcrawler-bench-")))
