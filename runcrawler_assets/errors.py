"""`RuncrawlerError`, the root of every error a user can see.

A bad variable, a demo archive that cannot be written, a warehouse another
process holds, a table that does not exist: each module raises its own
subclass with a one-line message saying what to do, and each edge (the CLI,
a notebook) catches this root once instead of a list of classes that drifts.
Anything else that escapes is a bug, and keeps its traceback.
"""

from __future__ import annotations


class RuncrawlerError(Exception):
    """An error the user can act on; its message says how, in one line.

    `exit_code` is what the `runcrawler` command exits with: 1, as click's own
    errors; `ConfigError` says 2, as click's usage errors (a bad option value).
    """

    exit_code: int = 1
