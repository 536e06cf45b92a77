"""Benchmark 2, the sensor path as deployed: `dagster dev` running, 10 runs land.

`bench_incremental` executes the sensor's run in its own process, warm. Deployed,
the daemon hands each run to the code server, which spawns a fresh Python process
for it (Dagster's run worker): that process imports Dagster and runcrawler and
opens the instance before the run starts. This benchmark starts `dagster dev` on
a crawled archive, waits for the archive sensor's first tick, copies the runs in,
and reads what the path cost from the instance's own records:

- the tick that requested the run (the daemon's, in the code server);
- the run worker's start: STARTING → START (launch, spawn, imports, instance);
- the run: START → SUCCESS.

The wait in the queue (ENQUEUED → STARTING: the daemon dequeues every few
seconds) is latency, not work: reported apart, left out of the total.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from benchmarks.common import REPO, Workspace, load_average
from benchmarks.incremental import add_runs, what_was_done
from runcrawler_assets.config import Config
from runcrawler_assets.defs.sensors import archive_sensor

T = TypeVar("T")
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
# The events that bound each stage of a run, in order.
STAGES = (
    DagsterEventType.RUN_ENQUEUED,
    DagsterEventType.RUN_STARTING,
    DagsterEventType.RUN_START,
    DagsterEventType.RUN_SUCCESS,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _waited(
    check: Callable[[], T | None], server: subprocess.Popen, timeout_s: float, what: str
) -> T:
    """Poll `check` every half second until it gives something, or raise saying what: at
    once if `server` (`dagster dev`) exited meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (found := check()) is not None:
            return found
        if server.poll() is not None:
            raise RuntimeError(f"dagster dev exited ({server.returncode}) while waiting for {what}")
        time.sleep(0.5)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


def _newest_tick(
    instance: DagsterInstance, after: int = -1, since: float | None = None
) -> Any | None:
    """The archive sensor's newest finished tick after the tick `after`; with `since` (a
    time), the newest that started since and requested runs."""
    for state in instance.all_instigator_state():
        if state.name == archive_sensor.name:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
            for tick in ticks:  # newest first
                if tick.end_timestamp is None or tick.tick_id <= after:
                    continue
                if since is None or (tick.timestamp >= since and tick.run_ids):
                    return tick
    return None


def _stage_times(instance: DagsterInstance, run_id: str) -> dict[DagsterEventType, float]:
    """When each of `STAGES` happened in a run, by its event's timestamp."""
    times = {}
    for entry in instance.all_logs(run_id, of_type=set(STAGES)):
        if entry.dagster_event is not None:
            times[entry.dagster_event.event_type] = entry.timestamp
    return times


def _dagster_dev(workspace_env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).with_name("dagster")),
        *("dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(_free_port())),
    ]
    with log.open("w") as out:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, **workspace_env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(server: subprocess.Popen) -> None:
    """Stop `dagster dev` and its children (webserver, daemon, code servers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(60)


def bench_daemon_path(
    n_runs: int,
    workspace: Workspace,
    added: int = 10,
    sensor_interval_s: int = Config.sensor_interval_seconds,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """`added` runs copied into the crawled archive of `n_runs` while `dagster dev` runs:
    what the tick that sees them, the run worker's start and the run cost, against the
    cold crawl of the same archive.

    The sensor ticks every `sensor_interval_s` (by default as deployed: a tick of a
    million-run archive keeps a core busy ~4.5 s, which ticks every few seconds would take
    from the run being timed)."""
    crawl = workspace.crawl(n_runs)
    home = crawl.data_dir / "dagster_home"
    env = {
        "RUNCRAWLER_ARCHIVE": str(workspace.archive(n_runs)),
        "RUNCRAWLER_DATA": str(crawl.data_dir),
        "DAGSTER_HOME": str(home),
        "RUNCRAWLER_SENSOR_INTERVAL": str(sensor_interval_s),
    }
    load = load_average()
    with DagsterInstance.from_config(str(home)) as instance:
        known = {run.run_id for run in instance.get_runs()}
        earlier = _newest_tick(instance)  # of an earlier `dagster dev` on this instance
        server = _dagster_dev(env, crawl.data_dir / "dagster-dev.log")
        try:
            # The daemon's first tick; landed right after it, the runs are all seen by the next.
            first = _waited(
                lambda: _newest_tick(instance, after=earlier.tick_id if earlier else -1),
                server,
                timeout_s,
                "the sensor's first tick (its log: dagster-dev.log in the data folder)",
            )
            copied_at = time.time()
            new_runs = add_runs(workspace, n_runs, added, prefix="daemon_added")
            tick = _waited(
                lambda: _newest_tick(instance, after=first.tick_id, since=copied_at),
                server,
                timeout_s,
                "a tick of the sensor requesting a run",
            )
            sensor_filter = RunsFilter(run_ids=list(tick.run_ids))
            _waited(
                lambda: all(r.status in FINISHED for r in instance.get_runs(sensor_filter)) or None,
                server,
                timeout_s,
                "the sensor's runs to finish",
            )
            stages = [_stage_times(instance, run_id) for run_id in tick.run_ids]
        finally:
            _stop(server)
    done = what_was_done(crawl.data_dir, known)
    enqueued, starting, start, success = (
        [stage.get(event) for stage in stages] for event in STAGES
    )
    if not all(success):  # a failed run has no RUN_SUCCESS
        raise RuntimeError(f"the sensor's runs did not all succeed: see {home.parent}")
    tick_s = tick.end_timestamp - tick.timestamp
    worker_start_s = sum(b - a for a, b in zip(starting, start, strict=True))
    run_s = sum(b - a for a, b in zip(start, success, strict=True))
    total = tick_s + worker_start_s + run_s
    return {
        "runs": n_runs,
        "added": len(new_runs),
        "sensor_runs": len(tick.run_ids),
        **done,  # of every run since the runs landed (one: the sensor's carries the analytics)
        "tick_s": round(tick_s, 3),
        "queue_wait_s": round(sum(b - a for a, b in zip(enqueued, starting, strict=True)), 3),
        "worker_start_s": round(worker_start_s, 3),
        "run_s": round(run_s, 3),
        "total_s": round(total, 3),
        "cold_crawl_s": round(crawl.seconds, 2),
        "vs_cold_crawl": round(total / crawl.seconds, 4),
        "load_average": load,
    }
