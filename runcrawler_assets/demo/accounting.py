"""Slurm accounting of the demo's jobs, and what the join with the runs must show.

Why: sites copy `sacct` dumps beside the archive (issue 17); the crawl joins a run to its
last job by job id (read from its files), else by the job's WorkDir, and believes the
scheduler where the files cannot tell (a log that just stops). `Accounting` takes each
run's jobs (jobs.py) as the generators render them, draws what Slurm saw of each (queue
wait, time limit, memory, state) from a random stream of the run's own, so that the
archive's files stay the same with or without it, and returns the run's truth
`accounting` (`ACCOUNTING_FIELDS`). `write` then plants the jobs no run matches and
writes the dumps (sacct_dump.py).

What the dumps hold, by name:
- Queue waits: lognormal around a median per cluster (irene longest), times the square
  root of the nodes: 3D runs wait about 6 h on irene, minutes on topaze.
- Time limits by user habit: the partition's maximum; three to six times what they
  expect; or 1.1 to 1.4 times (they keep hitting it). A TIMEOUT's Elapsed is its limit.
- ReqMem per CPU (`Mc`) or per node (`Mn`) before a cluster's Slurm upgrade (never on
  irene), the job's total (`180G`) after; MaxRSS per step, the largest on `.0`.
- Planted: runs missing from the dumps (`MISSING_SHARE`, and the 10th and 30th run
  with jobs); runs whose files name no job and end in a log that just stops, TIMEOUT
  in the dumps (half of them, the first two always) or NODE_FAIL; runs killed by
  signal 9 that only mpirun told, OUT_OF_MEMORY; a few `Partition_Limit` limits; jobs
  of the archive's users that no run matches (`UNARCHIVED_SHARE` of the runs, at
  least 3: one heterogeneous, one cancelled while pending over a month's end, array
  jobs); and a retired cluster (`spare/`) of other users, one job `UNLIMITED`.
- The join (`OVERRIDES`): TIMEOUT, OUT_OF_MEMORY, CANCELLED and NODE_FAIL make a run
  the files left truncated, running or unknown `killed` (NODE_FAIL: `cancelled`, the
  scheduler ended it); the run's times become its job's Start and End when both known.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from runcrawler_assets.demo.jobs import Job, JobIds, job_id_near
from runcrawler_assets.demo.knobs import KNOBS
from runcrawler_assets.demo.sacct_dump import SacctJob, SacctStep, node_list, write_dumps
from runcrawler_assets.demo.team import CLUSTERS, USERS, Cluster
from runcrawler_assets.records import Status

ACCOUNTING_FIELDS = (
    "job_id", "queue", "account", "time_limit_s", "queue_wait_s", "alloc_cpus", "alloc_nodes",
    "req_mem_mb", "max_rss_mb", "exit_code", "scheduler_state", "accounting_matched",
    "matched_by", "status", "error_category", "started_at", "ended_at",
)  # fmt: skip
UNARCHIVED_FIELDS = (
    "cluster", "user", "job_id", "name", "state", "submit_at", "start_at", "end_at", "cpu_hours",
)  # fmt: skip
MISSING_SHARE = 0.01
UNARCHIVED_SHARE = 0.02
# What a join makes of a run its files left truncated, running or unknown.
OVERRIDES = {
    "TIMEOUT": "time_limit",
    "OUT_OF_MEMORY": "out_of_memory",
    "CANCELLED": "cancelled",
    "NODE_FAIL": "cancelled",
}


@dataclass(frozen=True)
class SlurmHabits:
    """How one user asks Slurm for time and memory."""

    time_limit: str  # "max", "generous" (3-6x what they expect) or "tight" (1.1-1.4x)
    mem_flag: str  # "per_cpu" (--mem-per-cpu or the default) or "per_node" (--mem)
    mem_per_cpu_mb: int | None = None  # None: the cluster's default


_HABITS = {
    "jdupont": SlurmHabits("max", "per_node"),
    "m.garcia": SlurmHabits("generous", "per_cpu", 3000),
    "o'neil": SlurmHabits("tight", "per_cpu"),
    "le-goff": SlurmHabits("max", "per_node"),
    "jérôme": SlurmHabits("tight", "per_node", 4000),
    "li wei": SlurmHabits("generous", "per_cpu", 2000),
    "b.nguyen": SlurmHabits("generous", "per_cpu"),
}
_OTHERS_HABITS = SlurmHabits("max", "per_cpu")


@dataclass(frozen=True)
class Site:
    """A cluster's Slurm: partitions by size, queue, default memory, version."""

    partitions: tuple[tuple[int, str], ...]  # (up to this many nodes, partition), in order
    wait_median_s: float  # a one-node job's median queue wait
    mem_per_cpu_mb: int  # DefMemPerCPU
    new_reqmem_since: datetime | None  # from then ReqMem is the job's total (None: never)


_SITES = {
    "kraken": Site(((2, "small"), (10**6, "prod")), 900, 5120, datetime(2025, 7, 1)),
    "irene": Site(((16, "skylake"), (10**6, "rome")), 10_000, 3840, None),
    "jean-zay": Site(((10**6, "cpu_p1"),), 1800, 4096, datetime(2020, 1, 1)),
    "topaze": Site(((8, "milan"), (10**6, "milan_large")), 600, 2048, datetime(2025, 3, 1)),
    "spare": Site(((10**6, "batch"),), 300, 4000, None),
}
# A cluster retired before the archive's span: its last dump, its users (none archived).
SPARE = Cluster("spare", 1.0, 48 * 3600, 32, "spare{n:03d}", 90_000)
_SPARE_USERS = ("bmartin", "kpetrov", "a.rossi")
_SPARE_DUMPED_AT = datetime(2024, 1, 31, 23)
# Jobs of the archive's users that no run matches: names and folders no run has.
_OTHER_NAMES = ("postproc", "mesh_adapt", "scaling_test", "interp_sol", "visu", "hit_box")
_OTHER_FOLDERS = ("tmp", "sandbox", "postprocessing", "old_runs", "mesh_tests")
_UIDS = {login: 10_001 + i for i, login in enumerate(u.login for u in USERS)}


def _ceil(seconds: float, step: int) -> int:
    return max(step, math.ceil(seconds / step) * step)


def work_dir(run_path: str) -> str:
    """Where the job ran: /scratch/<user>/<the run's path below its user folder>."""
    _cluster, user, *below = run_path.split("/")
    return "/".join(("/scratch", user, *below))


@dataclass(frozen=True)
class _Ending:
    """A job's state and exit code as sacct prints them, and its steps'."""

    state: str
    exit_code: str
    batch: tuple[str, str]
    step: tuple[str, str]
    extern: tuple[str, str] = ("COMPLETED", "0:0")


def _ending(kind: str, rng: random.Random, user: str) -> _Ending:
    """How sacct shows a job that ended so (`kind`, jobs.py; `timeout` for one planted)."""
    cancelled = ("CANCELLED", "0:15")
    if kind in ("completed", "running"):
        state = (kind.upper(), "0:0")
        return _Ending(state[0], "0:0", state, state, state)
    if kind in ("time_limit", "timeout"):
        return _Ending("TIMEOUT", "0:0", cancelled, cancelled)
    if kind in ("out_of_memory", "oom_killed"):
        oom = ("OUT_OF_MEMORY", "0:125")
        return _Ending("OUT_OF_MEMORY", "0:125", oom, oom)
    if kind == "cancelled":
        uid = _UIDS.get(user, 20_000) if rng.random() < 0.8 else 0  # the user, or root
        return _Ending(f"CANCELLED by {uid}", "0:0", cancelled, cancelled)
    if kind == "node_fail":
        return _Ending("NODE_FAIL", "0:0", cancelled, cancelled, cancelled)
    code = {
        "segfault": rng.choice(("0:11", "0:11", "139:0")),
        "fpe": rng.choice(("0:8", "136:0")),
        "stopped": "0:9",
    }.get(kind, rng.choice(("1:0", "1:0", "2:0")))
    return _Ending("FAILED", code, ("FAILED", code), ("FAILED", code))


class Accounting:
    """The jobs of an archive's runs as Slurm's accounting has them, gathered run by run
    (`add_run`), then written once (`write`). `job_ids` must be the archive's: the jobs
    no run matches take theirs from it too."""

    def __init__(self, seed: int, job_ids: JobIds | None = None) -> None:
        self.seed = seed
        self.job_ids = job_ids if job_ids is not None else JobIds()
        self._jobs: list[SacctJob] = []
        self._work_dirs: set[tuple[str, str]] = set()  # (cluster, WorkDir) of the runs
        self._runs = 0
        self._asked: Counter[str] = Counter()  # runs asked whether to plant, by what
        self._accounts: dict[tuple[str, str], tuple[str, ...]] = {}

    def add_run(
        self, truth: dict[str, Any], jobs: Sequence[Job], shown_job_id: int | None
    ) -> dict[str, Any]:
        """Record a run's jobs (oldest first); returns its truth `accounting`.

        `shown_job_id`: the last job's id when the run's files tell it (else only the
        job's WorkDir leads to the run).
        """
        self._runs += 1
        run_path = truth["run_path"]
        self._work_dirs.add((truth["cluster"], work_dir(run_path)))
        rng = random.Random(f"{self.seed}:{run_path}:accounting")
        unmatched = _unmatched(truth, shown_job_id)
        if not jobs or self._plant("missing", rng, MISSING_SHARE, at=(9, 29)):
            return unmatched
        written = []
        for job in jobs:
            kind = job.kind
            if kind == "stopped" and shown_job_id is None:
                # Files that name no job, a log that just stops: Slurm knows why.
                if self._plant("timeout", rng, 0.5, at=(0, 1)):
                    kind = "timeout"
                elif rng.random() < 0.3:
                    kind = "node_fail"
            written.append(self._sacct(job, kind, rng, work_dir(run_path)))
        self._jobs.extend(written)
        return _matched(truth, written[-1], shown_job_id)

    def _plant(self, what: str, rng: random.Random, share: float, at: tuple[int, ...]) -> bool:
        """Whether to plant `what` in this run, the how-manieth asked: at those, else by
        `share`, so that an archive of a few hundred runs holds some."""
        asked = self._asked[what]
        self._asked[what] += 1
        return rng.random() < share or asked in at

    def _account(self, cluster: str, user: str, project: str) -> str:
        """The account a user charges a project to: one of their one or two on the cluster."""
        if (cluster, user) not in self._accounts:
            rng = random.Random(f"{self.seed}:accounts:{cluster}:{user}")
            self._accounts[cluster, user] = tuple(
                _new_account(cluster, rng) for _ in range(rng.randint(1, 2))
            )
        accounts = self._accounts[cluster, user]
        pick = random.Random(f"{self.seed}:{cluster}:{user}:{project}:account")
        return pick.choice(accounts)

    def _sacct(self, job: Job, kind: str, rng: random.Random, run_dir: str) -> SacctJob:
        """What Slurm's accounting holds of one job that ended so."""
        cluster, site = job.cluster, _SITES[job.cluster.name]
        habits = _HABITS.get(job.user, _OTHERS_HABITS)
        nodes = math.ceil(job.n_procs / cluster.cores_per_node)
        # Whole nodes, but for a job smaller than one, which shares its node.
        alloc = (
            nodes * cluster.cores_per_node if job.n_procs >= cluster.cores_per_node else job.n_procs
        )
        ending = _ending(kind, rng, job.user)
        start = job.started - timedelta(seconds=rng.randint(3, 90))  # modules, mpirun
        end = None if job.ended is None else job.ended + timedelta(seconds=rng.randint(1, 30))
        limit: int | None
        if kind == "time_limit" and job.ended is not None:
            # Killed at its limit, when its files say (CANCELLED AT); a limit in quarter
            # hours: an AVBP run's log started with its job and ran the cluster's maximum.
            end = job.ended
            ran = (end - job.started).total_seconds()
            limit = int(ran) if ran % 900 == 0 else _ceil((end - start).total_seconds(), 900)
            start = end - timedelta(seconds=limit)
        elif kind == "timeout" and job.ended is not None:  # killed after its log stopped
            limit = _ceil((job.ended - start).total_seconds() + rng.uniform(60, 1800), 1800)
            end = start + timedelta(seconds=limit)
        else:
            if kind == "cancelled" and job.ended is not None:
                end = job.ended  # CANCELLED AT, as printed
            elapsed = (end - start).total_seconds() if end else 0.0
            limit = _time_limit(habits, cluster, max(job.planned_s, elapsed), rng)
            limit = max(limit, _ceil(elapsed + 60, 600))
            if kind != "running" and rng.random() < 0.01:
                limit = None  # no -t: sacct says Partition_Limit
        wait = rng.lognormvariate(math.log(site.wait_median_s * nodes**0.5), 0.9)
        if job.not_before is not None:  # resubmitted once the attempt before it ended
            wait = min(wait, max(30.0, (start - job.not_before).total_seconds() - 30))
        submit = start - timedelta(seconds=int(min(4 * 86400, max(5.0, wait))))
        per_cpu = habits.mem_per_cpu_mb or site.mem_per_cpu_mb
        oom = kind in ("out_of_memory", "oom_killed")
        if not oom and job.rss_mb * 1.1 > per_cpu:  # they learnt to ask for more
            per_cpu = _ceil(job.rss_mb * 1.3, 1024)
        req_mem, req_mem_mb = _req_mem(site, habits, submit, per_cpu, alloc, nodes)
        rss_mb = (
            per_cpu * rng.uniform(0.97, 0.999)
            if oom
            else min(job.rss_mb * rng.uniform(0.85, 1.05), 0.95 * per_cpu)
        )
        hosts = node_list(job.host, nodes)
        steps = (
            SacctStep("batch", "batch", *ending.batch, alloc // nodes, 1,
                      rng.randint(4_000, 40_000), job.host),
            SacctStep("extern", "extern", *ending.extern, alloc, nodes,
                      0 if rng.random() < 0.3 else rng.randint(500, 2_000), hosts),
            SacctStep("0", job.step_name, *ending.step, job.n_procs, nodes,
                      int(rss_mb * 1024), hosts),
        )  # fmt: skip
        project = "/".join(job.run_path.split("/")[2:-1])
        return SacctJob(
            cluster=cluster.name,
            job_id=str(job.job_id),
            name=job.name,
            user=job.user,
            account=self._account(cluster.name, job.user, project),
            partition=next(name for most, name in site.partitions if nodes <= most),
            state=ending.state,
            exit_code=ending.exit_code,
            submit=submit,
            start=start,
            end=end,
            time_limit_s=limit,
            no_limit="Partition_Limit",
            alloc_cpus=alloc,
            nodes=nodes,
            req_mem=req_mem,
            req_mem_mb=req_mem_mb,
            node_list=hosts,
            work_dir=run_dir,
            steps=steps,
        )

    def write(self, directory: Path) -> AccountingDumps:
        """Plant the jobs no run matches, write every cluster's dumps under `directory`;
        returns what was written, with the planted jobs' truth (`UNARCHIVED_FIELDS`)."""
        planted = self._unarchived()
        spare = self._spare()
        jobs = [*self._jobs, *(job for found, _ in planted for job in found)]
        moments = [t for job in jobs for t in (job.submit, job.start, job.end) if t is not None]
        last = max(moments, default=datetime.combine(KNOBS.end, time()))
        dumped_at = last.replace(minute=0, second=0) + timedelta(hours=2)
        directory.mkdir(parents=True, exist_ok=True)
        spare_jobs = [job for found, _ in spare for job in found]
        files = write_dumps(directory, SPARE.name, spare_jobs, _SPARE_DUMPED_AT)
        for cluster in sorted({job.cluster for job in jobs}):
            mine = [job for job in jobs if job.cluster == cluster]
            files += write_dumps(directory, cluster, mine, dumped_at)
        lines = [line for _, found in planted for line in found]
        lines += [dict(line, other_users=True) for _, found in spare for line in found]
        return AccountingDumps(files, len(jobs) + len(spare_jobs), lines)

    def _unarchived(self) -> list[tuple[list[SacctJob], list[dict[str, Any]]]]:
        """Jobs of the archive's users in folders no run has (each with its truth lines):
        one heterogeneous, one cancelled before it started, array jobs, single ones."""
        rng = random.Random(f"{self.seed}:accounting:unarchived")
        first = datetime.combine(KNOBS.end - timedelta(days=KNOBS.span_days), time())
        planted = []
        for k in range(max(3, round(UNARCHIVED_SHARE * self._runs))):
            user = rng.choices(USERS, [u.activity for u in USERS])[0]
            home = next(c for c in CLUSTERS if c.name == user.home_cluster)
            cluster = home if rng.random() < 0.8 else rng.choice(CLUSTERS)
            started = first + timedelta(seconds=rng.randint(0, (KNOBS.span_days - 3) * 86400))
            shape = _SHAPES[k] if k < len(_SHAPES) else "single"
            if shape == "single" and rng.random() < 0.15:
                shape = "array"
            planted.append(
                _shaped(self._other_job(rng, cluster, user.login, started, k), shape, rng)
            )
        return planted

    def _spare(self) -> list[tuple[list[SacctJob], list[dict[str, Any]]]]:
        """The retired cluster's last month: other users' jobs, one without a time limit."""
        rng = random.Random(f"{self.seed}:accounting:spare")
        planted = []
        for k in range(6):
            started = datetime(2024, 1, 6) + timedelta(seconds=rng.randint(0, 19 * 86400))
            job = self._other_job(rng, SPARE, rng.choice(_SPARE_USERS), started, k)
            if k == 0:
                job = replace(job, time_limit_s=None, no_limit="UNLIMITED")
            planted.append(_shaped(job, "single", rng))
        return planted

    def _other_job(
        self, rng: random.Random, cluster: Cluster, user: str, started: datetime, k: int
    ) -> SacctJob:
        """A job of `user` on `cluster`, started then, in a folder no run of the archive has."""
        name = rng.choice(_OTHER_NAMES)
        run_path = f"{cluster.name}/{user}/{rng.choice(_OTHER_FOLDERS)}/{name}_{k:02d}"
        while (cluster.name, work_dir(run_path)) in self._work_dirs:
            run_path += "_b"
        kind = rng.choices(("completed", "failed", "time_limit"), (0.7, 0.15, 0.15))[0]
        planned = rng.uniform(600, 8 * 3600)
        # A time limit's job ran for a whole number of quarter hours: its limit.
        ran = _ceil(planned, 900) if kind == "time_limit" else planned * rng.uniform(0.3, 1.0)
        host = cluster.host_format.format(
            n=rng.randint(1, 2400), a=rng.randint(1, 8), b=rng.randint(0, 7), c=rng.randint(0, 8)
        )
        job = Job(
            job_id=self.job_ids.take(
                cluster.name, job_id_near(cluster, started, rng.randrange(40))
            ),
            cluster=cluster,
            user=user,
            run_path=run_path,
            name=name,
            step_name=name,
            host=host,
            started=started,
            ended=started + timedelta(seconds=int(ran)),
            n_procs=rng.choice((1, 2, 4, 8)) * cluster.cores_per_node,
            kind=kind,
            planned_s=planned,
            rss_mb=rng.uniform(200, 2000),
        )
        return self._sacct(job, kind, rng, work_dir(run_path))


@dataclass(frozen=True)
class AccountingDumps:
    """What `Accounting.write` wrote: dump files, job lines (array tasks and components
    each one), and the truth of the jobs no run matches (`UNARCHIVED_FIELDS`)."""

    files: int
    jobs: int
    unarchived: list[dict[str, Any]]


def unarchived_path(truth: Path) -> Path:
    """Where the truth of the jobs no run matches goes, beside the runs' truth."""
    return truth.with_suffix(".unarchived.jsonl")


_SHAPES = ("heterogeneous", "never_started", "array")


def _shaped(
    job: SacctJob, shape: str, rng: random.Random
) -> tuple[list[SacctJob], list[dict[str, Any]]]:
    """A planted job as sacct lists it (`single`, `array` tasks `<id>_<k>`, `heterogeneous`
    components `<id>+0` and `<id>+1`, `never_started`: cancelled while pending, submitted
    without -t), and its truth lines: one per job the reader folds them into."""
    if shape == "never_started":  # pending over a month's end: in both months' dumps
        month_end = (job.submit.replace(day=1) + timedelta(days=32)).replace(
            day=1, hour=0, minute=0, second=0
        )
        never = replace(
            job,
            state=f"CANCELLED by {_UIDS.get(job.user, 20_000)}",
            exit_code="0:0",
            submit=month_end - timedelta(seconds=rng.randint(3600, 2 * 86400)),
            start=None,
            end=month_end + timedelta(seconds=rng.randint(600, 86400)),
            time_limit_s=None,
            steps=(),
        )
        return [never], [_unarchived_line(never, never.job_id, 0.0)]
    if shape == "array":
        tasks = []
        for task in range(1, rng.randint(2, 4) + 1):
            shift = timedelta(seconds=(task - 1) * rng.randint(0, 900))
            assert job.start is not None and job.end is not None
            tasks.append(
                replace(job, job_id=f"{job.job_id}_{task}", start=job.start + shift,
                        end=job.end + shift)
            )  # fmt: skip
        return tasks, [_unarchived_line(task, task.job_id, _cpu_hours(task)) for task in tasks]
    if shape == "heterogeneous":
        # Component 0 runs the batch script; component 1, on the next nodes, only its step.
        nodes = rng.randint(2, 4)
        cpus = nodes * (job.alloc_cpus // job.nodes)
        batch, extern, step = job.steps
        hosts = node_list(batch.node_list, nodes, offset=job.nodes)
        req_mem_mb = job.req_mem_mb / job.alloc_cpus * cpus
        req_mem = job.req_mem if job.req_mem[-1] in "nc" else _total(int(req_mem_mb))
        second = replace(
            job, job_id=f"{job.job_id}+1", alloc_cpus=cpus, nodes=nodes, node_list=hosts,
            req_mem=req_mem, req_mem_mb=req_mem_mb,
            steps=(replace(extern, cpus=cpus, nodes=nodes, node_list=hosts),
                   replace(step, cpus=cpus, nodes=nodes, node_list=hosts)),
        )  # fmt: skip
        first = replace(job, job_id=f"{job.job_id}+0")
        cpu_hours = _cpu_hours(first) + _cpu_hours(second)
        return [first, second], [_unarchived_line(job, job.job_id, cpu_hours)]
    return [job], [_unarchived_line(job, job.job_id, _cpu_hours(job))]


def _cpu_hours(job: SacctJob) -> float:
    if job.start is None or job.end is None:
        return 0.0
    return job.alloc_cpus * (job.end - job.start).total_seconds() / 3600


def _unarchived_line(job: SacctJob, job_id: str, cpu_hours: float) -> dict[str, Any]:
    """The truth of one job no run matches, as the reader folds its lines into one."""

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "cluster": job.cluster,
        "user": job.user,
        "job_id": job_id,
        "name": job.name,
        "state": job.state.split()[0],
        "submit_at": iso(job.submit),
        "start_at": iso(job.start),
        "end_at": iso(job.end),
        "cpu_hours": round(cpu_hours, 3),
    }


def _new_account(cluster: str, rng: random.Random) -> str:
    """An account name as the cluster's centre spells them."""
    if cluster == "kraken":
        return f"{rng.choice(('cfd', 'comb', 'aero'))}_{rng.choice(('anr', 'eu', 'ind'))}"
    if cluster == "jean-zay":
        return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=3)) + "@cpu"
    prefix = {"irene": "gen", "topaze": "ra"}.get(cluster, "grp")
    return f"{prefix}{rng.randint(1000, 9999)}"


def _time_limit(
    habits: SlurmHabits, cluster: Cluster, expected_s: float, rng: random.Random
) -> int:
    """The wall time a user asks for a job they expect to take `expected_s`."""
    if habits.time_limit == "generous":
        return min(cluster.time_limit_s, _ceil(expected_s * rng.uniform(3, 6), 3600))
    if habits.time_limit == "tight":
        return min(cluster.time_limit_s, _ceil(expected_s * rng.uniform(1.1, 1.4), 600))
    return cluster.time_limit_s


def _req_mem(
    site: Site, habits: SlurmHabits, submit: datetime, per_cpu: int, cpus: int, nodes: int
) -> tuple[str, float]:
    """ReqMem as the cluster's Slurm prints it then, and the whole job's request in MiB."""
    total = per_cpu * cpus
    if site.new_reqmem_since is not None and submit >= site.new_reqmem_since:
        return _total(total), float(total)
    if habits.mem_flag == "per_node":
        return f"{per_cpu * (cpus // nodes)}Mn", float(total)
    return f"{per_cpu}Mc", float(total)


def _total(megabytes: int) -> str:
    """A job's whole memory request as new Slurm prints it: in G when it is whole gigabytes."""
    return f"{megabytes // 1024}G" if megabytes % 1024 == 0 else f"{megabytes}M"


def _unmatched(truth: dict[str, Any], shown_job_id: int | None) -> dict[str, Any]:
    """No job joined: the files' id if any, the parser's values."""
    found = dict.fromkeys(ACCOUNTING_FIELDS)
    found.update(
        job_id=None if shown_job_id is None else str(shown_job_id),
        accounting_matched=False,
        status=truth["status"],
        error_category=truth["error_category"],
        started_at=truth["started_at"],
        ended_at=truth["ended_at"],
    )
    return found


def _matched(truth: dict[str, Any], job: SacctJob, shown_job_id: int | None) -> dict[str, Any]:
    """The run's last job joined: the scheduler's values, and its word on how the run
    ended where the files left it truncated, running or unknown."""
    state = job.state.split()[0]
    status, category = truth["status"], truth["error_category"]
    undecided = status in (Status.TRUNCATED, Status.RUNNING) or category == "unknown"
    if state in OVERRIDES and undecided:
        status, category = Status.KILLED.value, OVERRIDES[state]
    both = job.start is not None and job.end is not None
    return {
        "job_id": job.job_id,
        "queue": job.partition,
        "account": job.account,
        "time_limit_s": job.time_limit_s,
        "queue_wait_s": (
            None if job.start is None else int((job.start - job.submit).total_seconds())
        ),
        "alloc_cpus": job.alloc_cpus,
        "alloc_nodes": job.nodes,
        "req_mem_mb": job.req_mem_mb,
        "max_rss_mb": job.max_rss_mb if job.end is not None else None,
        "exit_code": job.exit_code,
        "scheduler_state": state,
        "accounting_matched": True,
        "matched_by": "work_dir" if shown_job_id is None else "job_id",
        "status": status,
        "error_category": category,
        "started_at": job.start.isoformat() if both else truth["started_at"],
        "ended_at": job.end.isoformat() if both else truth["ended_at"],
    }
