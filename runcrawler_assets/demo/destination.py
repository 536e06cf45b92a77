"""Where a demo archive may be written, and the error that says why not.

Why apart: both generators (AVBP runs, OpenFOAM cases) refuse the same places, and the
command turns this one error into a message a user can act on. The accounting dumps have
their own folder, apart from the archive as at a site (RUNCRAWLER_ACCOUNTING).
"""

from __future__ import annotations

from pathlib import Path

from runcrawler_assets.errors import RuncrawlerError


class DemoArchiveError(RuncrawlerError, ValueError):
    """The demo archive cannot be written where asked; the message says what to do."""


def check_destination(root: Path, truth: Path | None) -> None:
    """Refuse to mix the demo with other files, or to put the truth where a crawl would see it."""
    if root.exists() and not root.is_dir():
        raise DemoArchiveError(f"{root} is a file; give a new or empty directory for the archive")
    if root.is_dir() and any(root.iterdir()):
        raise DemoArchiveError(
            f"{root} is not empty; give a new or empty directory (or delete this one first)"
        )
    if truth is not None and truth.resolve().is_relative_to(root.resolve()):
        raise DemoArchiveError(
            f"the truth file {truth} is inside the archive {root}; put it outside, "
            "where the crawl will not find it"
        )


def check_accounting_destination(directory: Path, root: Path) -> None:
    """Refuse to write the accounting dumps among other files, or in or around the archive."""
    if directory.exists() and not directory.is_dir():
        raise DemoArchiveError(
            f"{directory} is a file; give a new or empty directory for the accounting dumps"
        )
    if directory.is_dir() and any(directory.iterdir()):
        raise DemoArchiveError(
            f"the accounting directory {directory} is not empty; give a new or empty one"
        )
    where, archive = directory.resolve(), root.resolve()
    if where.is_relative_to(archive) or archive.is_relative_to(where):
        raise DemoArchiveError(
            f"the accounting directory {directory} and the archive {root} are inside one "
            "another; put the dumps beside the archive, where the crawl will not find them"
        )
