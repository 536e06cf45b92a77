"""A realistic demo archive of AVBP runs, and the truth a correct parser must read from it.

Why: the crawl, the analytics and the report need an archive that looks like the real
one (archive-format.md) down to its awkward corners, and tests need to know what is in
it. `generate_archive` writes such an archive and, on request, one JSON line per run
with the values a correct parser must report (truth.py). Everything is drawn from
`random.Random` seeded per run, so a seed gives the same paths, contents and
modification times, except the logs of `running` runs, whose modification time is the
real time of writing so that a crawl sees them as recent. Plain Python: no Dagster here.

The pieces: who works how (team.py), the effects one can tune (knobs.py), what each
run will be (avbp_planning.py) and what users do after a failure (avbp_remedies.py),
its files and truth (avbp_writer.py and the modules it names). OpenFOAM cases are
added to an archive by openfoam_writer.py.

Big archives (`templates`): only that many runs are rendered, the archive `runs=templates`
would hold, and the others are hard-linked copies of them (linked_copies.py), so that a
million run directories take minutes and little more disk than their templates.

Slurm: every session is a batch job whose id comes from one `JobIds` per archive (jobs.py),
unique per cluster; with an `Accounting` (accounting.py), each run's jobs go to the
accounting dumps and its truth gets what the join with them must show.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from runcrawler_assets.demo.accounting import Accounting
from runcrawler_assets.demo.avbp_remedies import plan_archive
from runcrawler_assets.demo.avbp_writer import RenderedRun, render_run
from runcrawler_assets.demo.destination import DemoArchiveError, check_destination
from runcrawler_assets.demo.files import write_file
from runcrawler_assets.demo.jobs import JobIds
from runcrawler_assets.demo.knobs import KNOBS, DemoKnobs
from runcrawler_assets.demo.linked_copies import Template, linked_files, template_of, write_copies
from runcrawler_assets.demo.team import USERS, projects_of
from runcrawler_assets.records import Status


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_archive` wrote: run counts by status, files and bytes."""

    root: Path
    runs: int
    success: int
    failed: int
    killed: int
    running: int
    truncated: int
    not_started: int
    files: int
    bytes: int
    templates: int | None = None  # runs rendered, when the others are hard-linked copies
    linked_files: int = 0  # of `files`, hard links to the templates' files
    linked_bytes: int = 0  # of `bytes`, in those links (no disk space of their own)

    def describe(self) -> str:
        """One line for a human."""
        line = (
            f"{self.runs} runs in {self.root} ({self.success} success, {self.failed} failed, "
            f"{self.killed} killed, {self.truncated} truncated, {self.running} running, "
            f"{self.not_started} not started), {self.files} files, "
            f"{self.bytes / 1e6:.1f} MB"
        )
        if self.templates is None:
            return line
        return (
            f"{line}; {self.runs - self.templates} runs are copies of {self.templates} "
            f"rendered ones: {self.linked_files} hard links, so "
            f"{(self.bytes - self.linked_bytes) / 1e6:.1f} MB of data on disk"
        )


# The command renders every run of an archive up to this size, and this many templates above.
RENDER_ALL_UP_TO = 20_000
DEFAULT_TEMPLATES = 10_000


def default_templates(runs: int) -> int | None:
    """The command's default `templates` for an archive of `runs` runs (None: render all)."""
    return None if runs <= RENDER_ALL_UP_TO else DEFAULT_TEMPLATES


def copies_for(runs: int, templates: int | None) -> int:
    """How many of `runs` are hard-linked copies when `templates` runs are rendered."""
    return 0 if templates is None or templates >= runs else runs - templates


def generate_archive(
    root: Path,
    runs: int = 200,
    seed: int = 0,
    truth: Path | None = None,
    knobs: DemoKnobs = KNOBS,
    progress: Callable[[int], None] | None = None,
    templates: int | None = None,
    job_ids: JobIds | None = None,
    accounting: Accounting | None = None,
) -> DemoSummary:
    """Write a demo archive of `runs` run directories under `root` (new or empty).

    `truth`, outside the archive, receives one JSON line per run (`TRUTH_FIELDS`).
    `progress` is called with the number of runs written since its last call.
    `templates`: render only this many runs (the archive `runs=templates` would hold)
    and make the others hard-linked copies of them; None renders every run.
    `job_ids`: the archive's job ids so far (OpenFOAM cases added later share it);
    default: the accounting's, else new. `accounting` records every run's jobs (then
    each truth line gets its `accounting`); it refuses copies, which would share
    their template's jobs.
    """
    root, truth = Path(root), Path(truth) if truth is not None else None
    if runs < 1:
        raise DemoArchiveError(f"--runs must be at least 1, not {runs}")
    if templates is not None and templates < 1:
        raise DemoArchiveError(f"--templates must be at least 1, not {templates}")
    check_destination(root, truth)
    copies = copies_for(runs, templates)
    if accounting is not None and copies:
        raise DemoArchiveError(
            f"--accounting needs every run rendered, and {copies:,} runs would be hard-linked "
            "copies sharing their template's jobs: give --templates 0"
        )
    if job_ids is None:
        job_ids = accounting.job_ids if accounting is not None else JobIds()
    rendered = runs - copies
    projects = {user.login: projects_of(user, seed) for user in USERS}
    plans = plan_archive(rendered, seed, knobs, projects)
    root.mkdir(parents=True, exist_ok=True)
    statuses: Counter[str] = Counter()
    files = written = 0
    truth_lines: list[str] = []
    kept: list[Template] = []
    for plan in plans:
        run = render_run(plan, seed, knobs, job_ids)
        if accounting is not None:
            run.truth["accounting"] = accounting.add_run(run.truth, run.jobs, run.job_id_shown)
        written += _write_run(root, run)
        files += len(run.files)
        statuses[run.status] += 1
        if truth is not None:
            truth_lines.append(json.dumps(run.truth, ensure_ascii=False) + "\n")
        if copies:
            kept.append(template_of(root, plan, run))
        if progress is not None:
            progress(1)
    if truth is not None:
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text("".join(truth_lines), encoding="utf-8")
    links = link_bytes = 0
    if copies:  # a million truth lines do not fit in memory: written as they come
        with truth.open("a", encoding="utf-8") if truth is not None else nullcontext() as out:
            write = out.write if out is not None else None
            statuses += write_copies(root, kept, copies, write, progress)
        links, link_bytes = linked_files(kept, copies)
    return DemoSummary(
        root=root,
        runs=runs,
        success=statuses[Status.SUCCESS],
        failed=statuses[Status.FAILED],
        killed=statuses[Status.KILLED],
        running=statuses[Status.RUNNING],
        truncated=statuses[Status.TRUNCATED],
        not_started=statuses[Status.NOT_STARTED],
        files=files + links,
        bytes=written + link_bytes,
        templates=rendered if copies else None,
        linked_files=links,
        linked_bytes=link_bytes,
    )


def _write_run(root: Path, run: RenderedRun) -> int:
    """Write one run directory; returns the bytes written."""
    run_dir = root.joinpath(*run.run_path.split("/"))
    run_dir.mkdir(parents=True)
    for name in run.empty_dirs:
        (run_dir / name).mkdir()
    for file in run.files:
        write_file(run_dir / file.name, file.content, file.mtime)  # logs/, log/, output/ made
    return sum(len(f.content) for f in run.files)
