"""A hostile archive, built by code at test time: every bad input runcrawler promises to survive.

Each case is one small folder (most of them run directories) so that a
failure names its case. Nothing binary is committed: random bytes come from
a seeded generator, the 1 GB file is sparse, the 100,000 files are empty,
the 20 MB value is one repeated letter, and special files (FIFO, socket,
device node) are made with the system calls that make them. A folder
*outside* the archive holds a secret token, and symbolic links from inside
point at it: the token must never come out.
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

GOOD_PARAMS = """$RUN-CONTROL
  mixture_name = CH4-AIR-2S-BFER ! methane
  LES_model = wale
  ncell_group = 100
  CFL = 0.7
  simulation_end_iteration = 100
$end_RUN-CONTROL
"""
GOOD_LOG = """ __________________________________________________________
          AVBP  V7.12.0
 Run started on   : 2024-03-12 14:02:33
 Number of MPI processes :   36
 ----> Reading run parameters
 ----> Info on initial grid
       Dimension                :   3
       Number of nodes          :   20000
 ----> Starts the temporal loop
  Iteration #       100   Time [s] =  1.2345E-05   dt [s] =  1.2E-07
 ----> Integral values for boundary patches
 Elapsed wall time [s]     :   4.9479E+01
 Run ended on     : 2024-03-12 15:25:02
 ----> End of AVBP session
"""
ONE_GB = 1 << 30
MANY_FILES = 100_000
HUGE_VALUE = 20 << 20  # characters of the hostile mixture_name
HUGE_LINE = 100_000  # characters of the hostile host name and error line (a log line is
# read up to 16 KiB, so these reach the record; a longer one is lost by the reader)
HUGE_VALUES_RUN = "bad/values/huge"
# Names a folder may hold that are hard on key syntax, SQL, JSON, markdown and logs.
HOSTILE_NAMES: tuple[str | bytes, ...] = (
    'o\'neil "q"',
    "with space",
    "new\nline",
    "café-ñ 日本",
    "a|b,c[d]...e",
    "x'; DROP TABLE runs; --",
    "100%",
    b"caf\xe9",  # Latin-1 names: undecodable as UTF-8
    b"caf\xe8",  # differs from the previous one only in an undecodable byte
)


@dataclass
class BadArchive:
    """The built archive and what a crawl of it must account for."""

    root: Path
    outside: Path  # holds the secret; reached only through symbolic links
    secret: str
    marker: Path  # created if anything from the archive is executed or unpickled
    run_dirs: list[str] = field(default_factory=list)  # relative, as discovery spells them
    cases: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _name(raw: str | bytes) -> str:
    return os.fsdecode(raw)


class _Builder:
    def __init__(self, base: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.secret = secret = f"RCSECRET{self.rng.getrandbits(48):012x}"
        self.archive = BadArchive(
            base / "archive", base / f"outside-{secret}", secret, base / "executed-or-unpickled"
        )

    def run(self, relative: str, params: bytes | None = GOOD_PARAMS.encode()) -> Path:
        """A run directory (with `params` as run.params unless None) counted as expected."""
        folder = self.archive.root / relative
        folder.mkdir(parents=True, exist_ok=True)
        if params is not None:
            (folder / "run.params").write_bytes(params)
        self.archive.run_dirs.append(relative)
        return folder

    def case(self, name: str) -> None:
        self.archive.cases.append(name)

    def skip(self, name: str, why: str) -> None:
        self.archive.skipped.append(f"{name}: {why}")


def _outside(b: _Builder) -> None:
    """The secret: a whole run, a params file and a log, all outside the archive."""
    run = b.archive.outside / "secretrun"
    run.mkdir(parents=True)
    (run / "run.params").write_text(GOOD_PARAMS.replace("wale", b.secret))
    (run / "avbp.o").write_text(
        GOOD_LOG.replace("Host", f"Host : {b.secret}\n") + f"ERROR : Cannot open file {b.secret}\n"
    )


def _files(b: _Builder) -> None:
    """Bad file contents, in run directories of cluster `bad`, user `files`."""
    base = "bad/files"
    b.case("empty files")
    run = b.run(f"{base}/empty", b"")
    (run / "avbp.o").write_bytes(b"")
    b.case("truncated log and params")
    run = b.run(f"{base}/truncated", GOOD_PARAMS.encode()[:70])
    (run / "avbp.o").write_bytes(GOOD_LOG.encode()[: len(GOOD_LOG) // 2])
    b.case("binary files")
    run = b.run(f"{base}/binary", b.rng.randbytes(4096))
    (run / "avbp.o").write_bytes(b.rng.randbytes(200_000))
    (run / "slurm-1.out").write_bytes(b.rng.randbytes(5000))
    b.case("huge sparse files (1 GiB log, 1 GiB params)")
    run = b.run(f"{base}/huge")
    for name in ("avbp.o", "run.params"):
        with open(run / name, "r+b" if name == "run.params" else "wb") as handle:
            handle.truncate(ONE_GB)
    b.case("half-written files (gzip and text cut mid-line)")
    run = b.run(f"{base}/half_written", GOOD_PARAMS.encode()[:-20])
    packed = gzip.compress(GOOD_LOG.encode() * 50)
    (run / "log1.txt.gz").write_bytes(packed[: len(packed) // 2])
    (run / "log2.txt").write_bytes(GOOD_LOG.encode()[:-15])
    b.case("invalid UTF-8 and NUL bytes")
    run = b.run(f"{base}/invalid_utf8", GOOD_PARAMS.encode().replace(b"wale", b"wa\xff\x00le"))
    (run / "avbp.o").write_bytes(
        GOOD_LOG.encode().replace(b"Run ended", b"\x00\x00\xc3\x28Run\xff ended") + b"\x00" * 4096
    )
    b.case("corrupt gzip")
    run = b.run(f"{base}/corrupt_gzip")
    (run / "log.txt.gz").write_bytes(b"\x1f\x8b\x08\x00" + b.rng.randbytes(3000))
    b.case("run.params is a directory (not a run directory: no parameter file)")
    run = b.archive.root / base / "params_is_dir"
    (run / "run.params").mkdir(parents=True)
    (run / "run.params" / "inner.txt").write_text("not a parameter file")
    (run / "avbp.o").write_text(GOOD_LOG)


def _special(b: _Builder) -> None:
    """FIFOs, a socket and a device node where files are expected: never opened."""
    base = "bad/special"
    b.case("FIFO as log, scheduler file and run.params")
    run = b.run(f"{base}/fifo_log")
    os.mkfifo(run / "avbp.o")
    os.mkfifo(run / "slurm-2.out")
    run = b.archive.root / base / "fifo_params"  # not a run directory: never opened
    run.mkdir()
    os.mkfifo(run / "run.params")
    b.case("socket as log")
    run = b.run(f"{base}/socket_log")
    short = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(short / "s"))
            os.replace(short / "s", run / "avbp.o")
    finally:
        shutil.rmtree(short, ignore_errors=True)
    if os.geteuid() != 0:
        b.skip("device node", "needs root for os.mknod")
        return
    b.case("device node (/dev/zero's numbers) as log and run.params")
    run = b.archive.root / base / "device"  # not a run directory: never opened
    run.mkdir()
    zero = os.makedev(1, 5)
    os.mknod(run / "avbp.o", 0o600 | stat.S_IFCHR, zero)
    os.mknod(run / "run.params", 0o600 | stat.S_IFCHR, zero)


def _symlinks(b: _Builder) -> None:
    """Loops, links out of the archive at every level, and linked files in a run."""
    root, outside = b.archive.root, b.archive.outside
    files = root / "bad" / "files"
    b.case("symbolic-link loops")
    os.symlink("loop_b", files / "loop_a")
    os.symlink("loop_a", files / "loop_b")
    os.symlink("..", files / "up")
    b.case("links out of the archive: cluster, user, folder (absolute and relative)")
    os.symlink(outside, root / "linked_cluster")
    os.symlink(outside, root / "bad" / "linked_user")
    os.symlink(outside, files / "escape")
    os.symlink(os.path.relpath(outside, files), files / "escape_relative")
    b.case("run files linked out of the archive")
    run = b.archive.root / "bad" / "files" / "leaky_params"  # the link is quarantined
    run.mkdir()
    os.symlink(outside / "secretrun" / "run.params", run / "run.params")
    os.symlink(outside / "secretrun" / "avbp.o", run / "avbp.o")
    os.symlink(outside / "secretrun" / "avbp.o", run / "slurm-9.out")
    run = b.run("bad/files/leaky_log")
    os.symlink(outside / "secretrun" / "avbp.o", run / "log.txt")


def _huge_values(b: _Builder) -> None:
    """A 20 MB mixture_name, a 100 KB host name and a 100 KB error line: bounded in the table."""
    b.case("huge values (20 MB mixture_name, 100 KB host name and error line)")
    params = GOOD_PARAMS.replace("  mixture_name = CH4-AIR-2S-BFER ! methane\n", "").replace(
        "$end_RUN-CONTROL", f"  mixture_name = {'x' * HUGE_VALUE}\n$end_RUN-CONTROL"
    )
    run = b.run(HUGE_VALUES_RUN, params.encode())
    log = GOOD_LOG.replace(" Number of MPI", f" Host : {'h' * HUGE_LINE}\n Number of MPI").replace(
        " ----> Integral values",
        f" ERROR : Cannot open file {'e' * HUGE_LINE}\n ----> Integral values",
    )
    (run / "avbp.o").write_text(log.replace(" ----> End of AVBP session\n", ""))


def _never_run(b: _Builder) -> None:
    """Files that would leave a mark if anything executed or unpickled them."""
    b.case("executable script and pickle in a run")
    run = b.run("bad/files/booby_trapped")
    script = run / "avbp.o"
    script.write_text(f"#!/bin/sh\ntouch '{b.archive.marker}'\n")
    script.chmod(0o755)
    (run / "data.pkl").write_bytes(pickle.dumps(_Touch(str(b.archive.marker))))
    (run / "mixture_database.dat").write_text(f"import os; os.mknod({str(b.archive.marker)!r})\n")


class _Touch:
    """Unpickling this creates the marker file (pickle calls `open(marker, 'w')`)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.marker, "w")


def _names(b: _Builder) -> None:
    """Hostile names as clusters, users and run directories."""
    b.case(f"{len(HOSTILE_NAMES)} hostile names as cluster, user and run folder")
    for raw in HOSTILE_NAMES:
        name = _name(raw)
        run = b.run(f"names/{name}/{name}")
        (run / "avbp.o").write_text(GOOD_LOG)
        b.run(f"{name}/plain/run")


def _crowd(b: _Builder) -> None:
    """One run directory holding 100,000 files (created empty, fast)."""
    b.case(f"{MANY_FILES:,} files in one folder")
    run = b.run("bad/crowd/many")
    (run / "avbp.o").write_text(GOOD_LOG)
    folder = os.fspath(run)
    for index in range(MANY_FILES):
        os.close(os.open(f"{folder}/f{index:06d}", os.O_CREAT | os.O_WRONLY, 0o644))


def build_bad_archive(base: Path, seed: int = 7, many_files: bool = True) -> BadArchive:
    """Build `<base>/archive` (every case) and `<base>/outside-<secret>` (the secret)."""
    builder = _Builder(base, seed)
    builder.archive.root.mkdir(parents=True)
    _outside(builder)
    _files(builder)
    _special(builder)
    _symlinks(builder)
    _never_run(builder)
    _names(builder)
    _huge_values(builder)
    if many_files:
        _crowd(builder)
    return builder.archive


def build_huge_values_archive(base: Path) -> BadArchive:
    """`<base>/archive` holding only the huge-values run (`HUGE_VALUES_RUN`)."""
    builder = _Builder(base, seed=7)
    builder.archive.root.mkdir(parents=True)
    _huge_values(builder)
    return builder.archive
