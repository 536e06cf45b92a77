"""The batch jobs behind the demo's runs: their Slurm ids, and what the generator knows of each.

Why apart: both generators (AVBP runs, OpenFOAM cases) submit jobs to the same clusters,
so their ids are handed out by one `JobIds` per archive (unique per cluster, as Slurm's
are, and growing with time within a run, so that a restarted run's last job has the
largest id), and the accounting dumps (accounting.py) are written from the `Job`s both
describe the same way.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runcrawler_assets.demo.team import Cluster

_ID_EPOCH = datetime(2023, 1, 1)
# How Slurm's own messages print a job id.
_PRINTED_ID = re.compile(r"\bJOB (\d+) ON\b|\bStepId=(\d+)\.|\bSTEP (\d+)\.|\bSLURM_JOB_ID=(\d+)\b")


def job_id_near(cluster: Cluster, moment: datetime, jitter: int) -> int:
    """The id Slurm would about give a job submitted at `moment`: one more every ~40 s."""
    return cluster.first_jobid + int((moment - _ID_EPOCH).total_seconds() / 40) + jitter


class JobIds:
    """The ids already given, per cluster: each job gets the first free one from its wish.

    One per archive, shared by both generators; the order of the requests (the runs'
    rendering order, then the cases') makes it deterministic for a seed.
    """

    def __init__(self) -> None:
        self._taken: defaultdict[str, set[int]] = defaultdict(set)

    def take(self, cluster: str, wanted: int, after: int = 0) -> int:
        """A free id of `cluster`, `wanted` or the next free one, above `after`."""
        taken = self._taken[cluster]
        job_id = max(wanted, after + 1)
        while job_id in taken:
            job_id += 1
        taken.add(job_id)
        return job_id


@dataclass(frozen=True, slots=True)
class Job:
    """One batch job of a run, as the generator knows it before Slurm's accounting says it.

    `started` and `ended` are the solver's (its log's) times; `ended` None: still running.
    `kind` is how the job ended (`final_kind` for a run's last job; `failed` or
    `node_fail` for an earlier attempt). `planned_s` is how long the user expected it
    to run (their time-limit request is sized on it). `rss_mb` is what one task holds.
    """

    job_id: int
    cluster: Cluster
    user: str
    run_path: str
    name: str
    step_name: str
    host: str
    started: datetime
    ended: datetime | None
    n_procs: int
    kind: str
    planned_s: float
    rss_mb: float
    not_before: datetime | None = None  # an attempt is submitted after the one before it ended


def final_kind(truth: dict[str, Any]) -> str:
    """How a run's last job ended, from the run's truth (what its files say)."""
    status, category = truth["status"], truth["error_category"]
    template = truth["error_template"] or ""
    if status in ("success", "running"):
        return {"success": "completed", "running": "running"}[status]
    if status == "truncated":
        return "stopped"  # the log just stops: what Slurm saw is drawn in accounting.py
    if status == "killed":
        return category  # time_limit, out_of_memory, cancelled
    if template == "mpirun.killed_signal_9":
        return "oom_killed"  # SIGKILL from the cgroup's OOM killer; only mpirun told
    if category == "segfault":
        return "segfault"
    if template == "launch.srun_fpe" or template.startswith("openfoam:fpe"):
        return "fpe"
    return "failed"


def shown_job_id(job_id: int, in_file_names: bool, texts: Iterable[str]) -> int | None:
    """`job_id` when a run's files tell it: a file named after it, or Slurm printing it in
    their `texts` (`*** JOB <id> ON`, `StepId=<id>.0`, `STEP <id>.0`); else None, and
    then only the job's WorkDir leads to the run."""
    if in_file_names:
        return job_id
    printed = (match.groups() for text in texts for match in _PRINTED_ID.finditer(text))
    return job_id if any(str(job_id) in groups for groups in printed) else None
