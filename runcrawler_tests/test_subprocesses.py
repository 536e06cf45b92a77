"""Worker processes never outlive their parent (`subprocesses.exit_with_parent`): a crawl or
a run killed alone (SIGKILL to its process, the OOM killer) leaves no parse or chart worker
behind, holding its memory forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

# A parent that starts its pool's workers, then waits, as a killed crawl or run would be.
PARSE_POOL = """
    import time
    from datetime import datetime
    from pathlib import Path
    from runcrawler_assets.archive.discovery import DiscoveredRun
    from runcrawler_assets.crawl import _parse_all
    from runcrawler_assets.parsing import ParseJob

    def jobs():
        nowhere, now = Path("/nonexistent"), datetime.now()
        for i in range(3000):  # runs gone since discovery: quick quarantine entries
            run = DiscoveredRun(f"gone/run_{i}", "avbp", "x", 0, 0)
            yield ParseJob(nowhere, nowhere, "c", "u", run, now)
        time.sleep(600)  # the crawl stops here, its workers started and idle

    for _ in _parse_all(jobs(), 2):
        pass
"""
CHART_POOL = """
    import time
    from runcrawler_assets.reporting.drawing import ChartDrawer

    drawer = ChartDrawer()
    drawer.start()
    time.sleep(600)
"""


def workers_of(parent: psutil.Process, count: int, timeout: float = 60) -> list[psutil.Process]:
    """The parent's `count` pool workers, once started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]
        if len(workers) >= count:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"{count} workers did not start in {timeout:.0f} s")


@pytest.mark.parametrize(
    ("script", "count"), [(PARSE_POOL, 2), (CHART_POOL, 1)], ids=["parse", "charts"]
)
def test_workers_exit_when_their_parent_is_killed(script: str, count: int):
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    workers: list[psutil.Process] = []
    try:
        workers = workers_of(psutil.Process(parent.pid), count)
        os.kill(parent.pid, signal.SIGKILL)  # the parent alone, not its process group
        parent.wait()
        gone, alive = psutil.wait_procs(workers, timeout=15)
        assert alive == [], f"workers left behind: {[p.pid for p in alive]}"
        assert len(gone) == count
    finally:  # only what this test started: the parent and the workers it saw
        parent.kill()
        for worker in workers:
            if worker.is_running():
                worker.kill()
