"""Big demo archives in minutes: more run directories laid out as hard links to a few templates.

Why: rendering a run (plan, logs, gzip, truth) costs ~0.5 ms, so a million runs would
take the better part of ten minutes and ~7 GB; benchmarks of the crawl and the sensor at
that size need many run *directories*, not many distinct logs. So a few thousand runs
are rendered as usual (the templates: exactly the archive `--runs T` would write) and
every further run is a new folder next to its template (same cluster, user and project
folders, the next number in the user's naming) whose files are hard links to the
template's files (`os.link`) and whose empty folders (MESH/, SOLUT/) are made anew.

A copy's files share the template's inodes: same bytes, same modification times (a
running template's log is recent, so its copies are running too), and no data blocks of
their own; each copy costs its directory entries and the inodes of its folders. Its
truth is the template's, with the fields that come from the path changed: `run_id`,
`run_path` and `log_path` (cluster and user are the template's, since the copy sits in
the same user's folder), and no `remedy`: a copy is not its folder's next run after
the template's predecessor, so it plants no pattern.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runcrawler_assets.demo.avbp_planning import RunPlan
from runcrawler_assets.demo.avbp_writer import RenderedRun
from runcrawler_assets.records import run_id_for

# Placeholders in a template's truth line, replaced per copy (json.dumps keeps them intact).
_RUN_ID, _RUN_PATH, _LOG_PATH = "\x00run_id\x00", "\x00run_path\x00", "\x00log_path\x00"


@dataclass(frozen=True)
class Template:
    """A rendered run whose files copies link to, and how to name its copies."""

    plan: RunPlan
    folders: tuple[str, ...]  # subfolders to make in each copy, parents first
    files: tuple[tuple[str, str], ...]  # (template file, name relative to the run folder)
    truth_line: str  # with the placeholders above
    log_name: str | None  # the truth's log_path below the run folder
    status: str
    size: int  # bytes of its files


def template_of(root: Path, plan: RunPlan, run: RenderedRun) -> Template:
    """What copying this rendered (and written) run needs."""
    run_dir = os.path.join(root, *plan.run_path.split("/"))
    files = [file.name for file in run.files]
    folders = {name.rpartition("/")[0] for name in files if "/" in name} | set(run.empty_dirs)
    prefix = plan.run_path + "/"
    truth = run.truth
    log_path = truth.get("log_path")
    log_name = log_path[len(prefix) :] if log_path else None
    line = dict(truth, run_id=_RUN_ID, run_path=_RUN_PATH, remedy=None)
    if log_name is not None:
        line["log_path"] = _LOG_PATH
    return Template(
        plan=plan,
        folders=tuple(sorted(folders, key=lambda f: (f.count("/"), f))),
        files=tuple((os.path.join(run_dir, name), name) for name in files),
        truth_line=json.dumps(line, ensure_ascii=False) + "\n",
        log_name=log_name,
        status=run.status,
        size=sum(len(file.content) for file in run.files),
    )


def _copy_names(templates: Sequence[Template], copies: int) -> Iterator[tuple[Template, str]]:
    """(template, run path) of each copy: templates in turn, numbered on in each folder."""
    counters: Counter[str] = Counter()
    for template in templates:
        counters[template.plan.run_path.rpartition("/")[0]] += 1
    for index in range(copies):
        template = templates[index % len(templates)]
        plan = template.plan
        parent = plan.run_path.rpartition("/")[0]
        counters[parent] += 1
        name = plan.user.run_dir_format.format(k=counters[parent], case=plan.project.case)
        yield template, f"{parent}/{name}"


def truth_line(template: Template, run_path: str) -> str:
    """The copy's truth: the template's, with the path's fields of the copy."""
    line = template.truth_line.replace(
        json.dumps(_RUN_ID), json.dumps(run_id_for(run_path))
    ).replace(json.dumps(_RUN_PATH), json.dumps(run_path, ensure_ascii=False))
    if template.log_name is not None:
        log_path = f"{run_path}/{template.log_name}"
        line = line.replace(json.dumps(_LOG_PATH), json.dumps(log_path, ensure_ascii=False))
    return line


def write_copies(
    root: Path,
    templates: Sequence[Template],
    copies: int,
    write_truth: Callable[[str], object] | None,
    progress: Callable[[int], None] | None = None,
) -> Counter[str]:
    """Lay out `copies` run folders of hard links; returns their statuses, counted.

    `write_truth`, if given, is called with each copy's truth line; `progress` is called every
    1,000 copies (and at the end) with the number written since its last call.
    """
    statuses: Counter[str] = Counter()
    pending = 0
    for template, run_path in _copy_names(templates, copies):
        run_dir = os.path.join(root, *run_path.split("/"))
        os.mkdir(run_dir)
        for folder in template.folders:
            os.mkdir(os.path.join(run_dir, folder))
        for source, name in template.files:
            os.link(source, os.path.join(run_dir, name))
        statuses[template.status] += 1
        if write_truth is not None:
            write_truth(truth_line(template, run_path))
        pending += 1
        if progress is not None and pending == 1000:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return statuses


def linked_files(templates: Sequence[Template], copies: int) -> tuple[int, int]:
    """(files, bytes) the copies hold: hard links, so bytes that take no space of their own."""
    rounds, rest = divmod(copies, len(templates))
    files = rounds * sum(len(t.files) for t in templates)
    size = rounds * sum(t.size for t in templates)
    files += sum(len(t.files) for t in templates[:rest])
    return files, size + sum(t.size for t in templates[:rest])
