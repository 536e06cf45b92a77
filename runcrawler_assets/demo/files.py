"""Bytes on disk, for both generators: text encoded, gzip, modification times.

Why one module: AVBP runs and OpenFOAM cases write their files the same way (UTF-8 with
invalid bytes carried as surrogates, maybe CRLF, maybe gzip, times as naive UTC), and a
seed must give the same bytes and times whichever generator wrote them.
"""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path


def posix_time(moment: datetime) -> float:
    """A naive UTC datetime (the archive's convention, contract-notes 8) as a POSIX time."""
    return moment.replace(tzinfo=UTC).timestamp()


def encoded(text: str, *, crlf: bool = False) -> bytes:
    """UTF-8, the surrogates that stand for invalid bytes written back as those bytes;
    Windows line endings when `crlf`."""
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8", "surrogateescape")


def gzipped(data: bytes, *, level: int) -> bytes:
    """gzip with no time stamp in the header, so that a seed writes the same bytes.

    `level`: each generator keeps the one it always used (AVBP 6, the gzip command's
    default; OpenFOAM 9, Python's), so that a seed's archive stays byte for byte the same.
    """
    return gzip.compress(data, compresslevel=level, mtime=0)


def write_file(path: Path, content: bytes, mtime: float | None) -> None:
    """Write one file (its folder made if needed), modified at `mtime` (None: now)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
