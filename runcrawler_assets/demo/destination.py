"""Where a demo archive may be written, and the error that says why not.

Why apart: both generators (AVBP runs, OpenFOAM cases) refuse the same places, and the
command turns this one error into a message a user can act on.
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
