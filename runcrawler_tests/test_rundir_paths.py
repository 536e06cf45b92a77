"""A run's path and its log's path relative to the archive: the string shortcut answers
as `Path.relative_to` does, for paths below the root and for every odd pair."""

from __future__ import annotations

from itertools import product
from pathlib import Path

from runcrawler_assets.solvers.rundir import relative_to_archive, run_path_of

PATHS = (
    *("/", "//", "///a/b", "/a", "/a/b", "/a/b/c", "/a/b/", "/ab", "/a/bc", "/a//b", "/./a/b"),
    *("//a", "//a/b", "a", "a/b", "a/b/c", ".", "", "../a", "a/../b", "/a/b/c/d"),
)


def _by_pathlib(path: Path, root: Path) -> tuple[str, str, bool]:
    try:
        relative = path.relative_to(root)
    except ValueError:
        return path.as_posix(), "/".join(path.parts), True
    return relative.as_posix(), "/".join(relative.parts), False


def test_paths_relative_to_the_archive_are_as_pathlib_gives_them() -> None:
    for path, root in product(map(Path, PATHS), map(Path, PATHS)):
        as_posix, joined, outside = _by_pathlib(path, root)
        warnings: list[str] = []
        assert relative_to_archive(path, root) == as_posix, (path, root)
        assert run_path_of(path, root, warnings) == joined, (path, root)
        assert bool(warnings) == outside, (path, root)
