"""What users do after a failed run, planted in the archive for the remedies analysis (issue 18).

Why apart: a follow-up depends on its predecessor (when it ended, what its run.params
say) and on its folder (it must be the folder's next run by created_at), so it is
planned once every other run of the archive is (`plan_archive`), from a random stream
of the failed run's own: fixes (CFL lowered), reruns (nothing changed) and campaigns
(restarts from the previous run's last solution), by the knobs in knobs.py. Its files
come from its predecessor's draft (avbp_planning.py) and run.params (avbp_params.py);
its truth's `remedy` says what it is (avbp_truth.py).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta

from runcrawler_assets.demo.avbp_planning import (
    FollowUp,
    RunPlan,
    draft_run,
    name_runs,
    plan_run,
    procs_to_fit,
)
from runcrawler_assets.demo.avbp_writer import render_run
from runcrawler_assets.demo.jobs import JobIds
from runcrawler_assets.demo.knobs import DemoKnobs
from runcrawler_assets.demo.team import Project, UserHabits

# How many runs continue a campaign's first one, and how often.
_CONTINUATIONS = ((1, 2, 3), (0.5, 0.3, 0.2))


def plan_archive(
    count: int, seed: int, knobs: DemoKnobs, projects: Mapping[str, tuple[Project, ...]]
) -> list[RunPlan]:
    """The archive's `count` runs, named: runs planned one by one (`plan_run`) and the
    follow-ups planted after some of their failures, which take the places of the
    last-planned runs that are no predecessor (fewer runs only widen a folder's gaps)."""
    planned = [plan_run(i, seed, knobs, projects) for i in range(count)]
    deadline = _next_in_folder(planned, knobs)
    predecessors: dict[int, RunPlan] = {}
    follow_ups: list[RunPlan] = []
    for plan in planned:
        chain = _follow_ups(plan, deadline[plan.index], count + len(follow_ups), seed, knobs)
        if not chain or len(predecessors) + len(follow_ups) + len(chain) + 1 > count:
            continue
        # A time_limit run is followed only by restarts: it starts a campaign.
        predecessors[plan.index] = replace(plan, starts_campaign=plan.outcome == "time_limit")
        follow_ups += chain
    others = [plan.index for plan in reversed(planned) if plan.index not in predecessors]
    dropped = set(others[: len(follow_ups)])
    kept = [predecessors.get(p.index, p) for p in planned if p.index not in dropped]
    return name_runs(kept + follow_ups)


def _next_in_folder(plans: list[RunPlan], knobs: DemoKnobs) -> dict[int, datetime]:
    """By plan index: the set-up time a follow-up must come before, the next run's of its
    folder, at most the archive's last set-up time for a finished run."""
    folders: defaultdict[tuple[str, ...], list[RunPlan]] = defaultdict(list)
    for plan in plans:
        folders[(plan.cluster.name, plan.user.login, *plan.project.folders)].append(plan)
    last = datetime.combine(knobs.end - timedelta(days=3), time())
    deadline: dict[int, datetime] = {}
    for runs in folders.values():
        runs.sort(key=lambda p: (p.created_at, p.index))
        for plan, following in zip(runs, [*runs[1:], None], strict=True):
            deadline[plan.index] = min(last, following.created_at) if following else last
    return deadline


def _follow_ups(
    plan: RunPlan, deadline: datetime, first_index: int, seed: int, knobs: DemoKnobs
) -> list[RunPlan]:
    """The runs planted after `plan`, each set up after the one before ended and before
    `deadline`; none when it is not drawn or when none fits. A campaign's runs are
    killed by the time limit but the last, which ends as drawn however many fit."""
    rng = random.Random(f"{seed}:{plan.index}:remedy")
    draw, settings = rng.random(), plan.settings
    if plan.outcome in knobs.settings_failure_categories and draw < knobs.fix_share:
        kind, last, runs = "fix", "none", 1
        settings = replace(settings, cfl=_lower_cfl(rng, settings.cfl, knobs))
    elif plan.outcome in knobs.rerun_categories and draw < knobs.rerun_share:
        kind, last, runs = "rerun", "none", 1
    elif plan.outcome == "time_limit" and draw < knobs.campaign_share:
        if procs_to_fit(draft_run(plan, seed, knobs)) is None:
            return []  # it could never succeed: not continued
        kind, runs = "restart", rng.choices(*_CONTINUATIONS)[0]
        failures = knobs.campaign_failure_categories
        last = rng.choices(list(failures), list(failures.values()))[0]
        if rng.random() < knobs.campaign_success:
            last = "none"
    else:
        return []
    chain: list[RunPlan] = []
    previous = plan
    for _ in range(runs):
        created = _next_setup(rng, plan.user, _ended_at(previous, seed, knobs))
        if created >= deadline:
            break
        previous = replace(
            plan,
            index=first_index + len(chain),
            settings=settings,
            outcome="time_limit",  # until the last
            created_at=created,
            follows=FollowUp(kind, previous),
        )
        chain.append(previous)
    return [*chain[:-1], replace(chain[-1], outcome=last)] if chain else []


def _lower_cfl(rng: random.Random, cfl: str, knobs: DemoKnobs) -> str:
    """A lower CFL as people write it: one decimal, at least 0.1 below."""
    lower = f"{float(cfl) * rng.choice(knobs.fix_cfl_factors):.1f}"
    return lower if float(lower) < float(cfl) - 0.05 else f"{float(cfl) - 0.1:.1f}"


def _ended_at(plan: RunPlan, seed: int, knobs: DemoKnobs) -> datetime:
    """When the run's last session ended, as its truth says: it is rendered (its streams
    give the same run again when the archive is written; job ids do not change times)."""
    ended = render_run(plan, seed, knobs, JobIds()).truth["ended_at"]
    return datetime.fromisoformat(ended)


def _next_setup(rng: random.Random, user: UserHabits, after: datetime) -> datetime:
    """The user's next set-up time by their habits, a little after `after` (they look at
    the failure at their usual hour on a day they work)."""
    earliest = after + timedelta(minutes=rng.uniform(20, 180))
    day, top = earliest.date(), max(user.weekday_weights)
    while True:
        if rng.random() * top < user.weekday_weights[day.weekday()]:
            hour = rng.gauss(user.launch_hour, user.launch_spread) % 24
            moment = datetime.combine(day, time()) + timedelta(seconds=int(hour * 3600))
            if moment >= earliest:
                return moment
        day += timedelta(days=1)
