"""run.params as each user writes it, and the keywords a parser must read from it.

Why apart: run.params is the run's settings, written by hand: block names in any case,
keywords in the user's case, aligned or not, comments, blank lines, Windows paths
(avbp_mess.py); the truth takes its `params` from here. A follow-up (avbp_remedies.py)
copies its predecessor's run.params, byte for byte but for the one value it changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runcrawler_assets.demo import avbp_mess
from runcrawler_assets.demo.avbp_planning import FollowUp, RunDraft, RunPlan, draft_run


@dataclass(frozen=True)
class ParamsFile:
    """run.params as written: its text, the keywords a parser must read, its line ends."""

    text: str
    params: dict[str, str]
    crlf: bool


def params_file(run: RunDraft, seed: int) -> ParamsFile:
    """The run's run.params: drawn from its render stream in the user's style, or, for a
    follow-up, its predecessor's (drafted again: the same draws) with its one change."""
    follows = run.plan.follows
    if follows is None:
        text, params = run_params(run)
        return ParamsFile(text, params, run.rng.random() < run.plan.user.crlf_share)
    previous = params_file(draft_run(follows.previous, seed, run.knobs), seed)
    keyword = follows.keyword
    if keyword is None:
        return previous
    value = _changed_value(run.plan, follows)
    text = _with_value(previous.text, keyword, previous.params[keyword], value)
    return ParamsFile(text, {**previous.params, keyword: value}, previous.crlf)


def _changed_value(plan: RunPlan, follows: FollowUp) -> str:
    """The value a follow-up writes for its keyword: a fix's lower CFL, a restart's
    solution in its predecessor's folder."""
    if follows.kind == "fix":
        return plan.settings.cfl
    folder = follows.previous.run_path.rpartition("/")[2]
    return f"../{folder}/SOLUT/{plan.project.case}_last.h5"


def _with_value(text: str, keyword: str, old: str, new: str) -> str:
    """`text` with the value of its one `keyword = old` line (any case, any spacing,
    a comment kept) replaced by `new`."""
    line = re.compile(
        rf"^([ \t]*{re.escape(keyword)}[ \t]*=[ \t]*){re.escape(old)}(?=[ \t]|$)",
        re.IGNORECASE | re.MULTILINE,
    )
    changed, count = line.subn(lambda m: m.group(1) + new, text)
    if count != 1:
        raise ValueError(f"{count} lines set {keyword} = {old} in run.params")
    return changed


def run_params(run: RunDraft) -> tuple[str, dict[str, str]]:
    """run.params in the user's style, and the keywords a parser must read from it."""
    rng, user, settings, project = run.rng, run.plan.user, run.plan.settings, run.plan.project
    truthy, falsy = rng.choice(
        (("yes", "no"), (".true.", ".false."), ("true", "false"), ("1", "0"))
    )
    run_control: list[tuple[str, str, str]] = [
        ("mesh_file", f"../MESH/{project.case}.mesh.h5", ""),
        ("initial_solution_file", f"../INIT/{project.case}_init.h5", ""),
        ("solutbound_file", f"../SOLUTBOUND/{project.case}.sol_bound.h5", ""),
        ("mixture_database", "./mixture_database.dat", ""),
        (
            "mixture_name",
            settings.mixture_name,
            "! 2-step chemistry" if rng.random() < 0.3 else "",
        ),
        ("equation_of_state", "pg", ""),
        ("reactive_flow", truthy if settings.reactive_flow else falsy, ""),
        ("simulation_end_iteration", str(run.requested), ""),
        ("save_solution.iteration", str(max(100, run.requested // 10)), ""),
        ("convection_scheme", settings.convection_scheme, ""),
        ("CFL", settings.cfl, "# stable so far" if rng.random() < 0.2 else ""),
        ("LES_model", settings.les_model, ""),
        ("artificial_viscosity_model", settings.artvisc, ""),
    ]
    if settings.artvisc != "no_artvisc":
        run_control += [
            ("artificial_viscosity_2nd_order", rng.choice(("0.1", "0.05", "0.2")), ""),
            ("artificial_viscosity_4th_order", rng.choice(("0.01", "0.005")), ""),
        ]
    run_control.append(("ncell_group", str(settings.ncell_group), ""))
    if rng.random() < 0.4:
        run_control.insert(
            rng.randrange(len(run_control)), ("fuel_injection_temperature", "300.0", "")
        )
    output_control = [
        ("save_average", rng.choice(("yes", "no")), ""),
        ("save_temporal.iteration", str(max(10, run.print_every)), ""),
        ("probe_x", "0.010  0.020   0.035" if rng.random() < 0.5 else "0.01 0.02 0.03", "! m"),
    ]
    if rng.random() < 0.3:
        output_control.append(("my_postproc_flag", "3", "# kept for the plotting script"))
    if run.mess.windows_params:
        output_control += avbp_mess.windows_paths(user.login, project.case)
    lines = [f"! run.params of {project.case}, set up by {user.login}\n"]
    params: dict[str, str] = {}
    for block, entries in (("RUN-CONTROL", run_control), ("OUTPUT-CONTROL", output_control)):
        opener, closer = rng.choice(
            ((block, block), (block.lower(), block.lower()), (block, block.lower()))
        )
        lines.append(f"${opener}\n")
        if rng.random() < 0.3:
            lines.append("! CFL = 1.0 diverged last time\n")
        align = rng.random() < 0.6
        for keyword, value, comment in entries:
            written = _in_users_case(run, keyword)
            indent = rng.choice(("  ", "\t", "   ", ""))
            gap = " " * max(1, 31 - len(written)) if align else rng.choice((" ", "\t", ""))
            tail = f"   {comment}" if comment else rng.choice(("", "", " ", "\t"))
            lines.append(f"{indent}{written}{gap}= {value}{tail}\n")
            params[keyword.lower()] = " ".join(value.split())
            if rng.random() < 0.05:
                lines.append("\n")
        end_word = rng.choice(("end", "END"))
        lines.append(f"${end_word}_{closer}\n\n")
    return "".join(lines), params


def _in_users_case(run: RunDraft, keyword: str) -> str:
    case = run.plan.user.keyword_case
    return keyword.lower() if case == "lower" else keyword.upper() if case == "upper" else keyword
