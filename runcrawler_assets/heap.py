"""Python's cyclic garbage collector kept off the objects that live as long as the process.

A full collection walks every object the collector tracks. With Dagster, pandas and
DuckDB imported that is ~150,000 objects before a run has made one, and a sensor's
refresh of 10 runs triggered two full collections of ~80 ms each (issue 16). Frozen
(`gc.freeze`), the imported code is left out of every later collection, which then
walks only what the run made: ~10 ms each. Frozen objects are still freed by reference
counting; only a reference cycle among them would never be, and imported code is not
garbage.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_loaded() -> None:
    """Leave what this process holds now out of later collections; once per process (a
    second call would also freeze the objects of the work since the first).

    Called once the code is imported, before the work: as the first run or sensor tick of
    a process sets up its resources (no collection first: it would cost about what one
    saves, and what the imports left behind is little), and by the chart worker once
    matplotlib is loaded (`reporting.drawing`).
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
