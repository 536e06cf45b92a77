"""run.params as each user writes it, and the keywords a parser must read from it.

Why apart: run.params is the run's settings, written by hand: block names in any case,
keywords in the user's case, aligned or not, comments, blank lines, Windows paths
(avbp_mess.py); the truth takes its `params` from here.
"""

from __future__ import annotations

from runcrawler_assets.demo import avbp_mess
from runcrawler_assets.demo.avbp_planning import RunDraft


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
