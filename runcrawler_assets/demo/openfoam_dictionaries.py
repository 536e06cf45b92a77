"""The dictionaries of an OpenFOAM case (controlDict, fvSchemes, the turbulence model,
decomposeParDict): drawn, edited after the run, rendered into files.

Why apart: they are kept as nested dicts, so that one drawing gives both the files (as
OpenFOAM writes them) and the truth's `params` (flattened as the parser flattens them);
and a user may edit them after the run (item 12 of issue #14), when the files no longer
say what ran.
"""

from __future__ import annotations

from runcrawler_assets.demo.openfoam_cases import OpenFoamCase
from runcrawler_assets.solvers.openfoam.dictionaries import Dictionary

_FOLDER = {"controlDict": "system", "fvSchemes": "system", "decomposeParDict": "system"}


def draw_dictionaries(case: OpenFoamCase, steps: int, delta_t: float) -> dict[str, Dictionary]:
    """The case's dictionaries as nested dicts: rendered into files, flattened for the truth."""
    control: Dictionary = {
        "application": case.application,
        "startFrom": "startTime",
        "startTime": "0",
        "stopAt": "endTime",
        "endTime": f"{steps * delta_t:g}",
        "deltaT": f"{delta_t:g}",
        "writeControl": "timeStep",
        "writeInterval": str(max(steps // 10, 1)),
    }
    if case.application == "foamRun":
        control["solver"] = "incompressibleFluid"
    div_u = case.rng.choice(
        ("bounded Gauss linearUpwind grad(U)", "Gauss linear", "bounded Gauss upwind")
    )
    schemes: Dictionary = {
        "ddtSchemes": {"default": "Euler" if case.transient else "steadyState"},
        "divSchemes": {
            "default": "none",
            "div(phi,U)": div_u,
            "div(phi,k)": "bounded Gauss upwind",
        },
    }
    model = case.rng.choice(("kOmegaSST", "kEpsilon", "realizableKE"))
    dicts = {"controlDict": control, "fvSchemes": schemes}
    if case.org:
        dicts["momentumTransport"] = {"simulationType": "RAS", "RAS": {"model": model}}
    else:
        dicts["turbulenceProperties"] = {"simulationType": "RAS", "RAS": {"RASModel": model}}
    if case.n_procs > 1:
        dicts["decomposeParDict"] = {"numberOfSubdomains": str(case.n_procs), "method": "scotch"}
    return dicts


def edit_after_run(case: OpenFoamCase, dicts: dict[str, Dictionary]) -> None:
    """Dictionaries edited after the run (item 12): the files say what the next run will do."""
    if case.has("application_edited"):
        others = {"simpleFoam": "pimpleFoam", "pimpleFoam": "simpleFoam", "foamRun": "simpleFoam"}
        dicts["controlDict"]["application"] = others[case.application]
    if case.has("subdomains_edited"):
        # Re-decomposed for the next run: half as many subdomains (at least 2), or twice.
        halved = case.n_procs // 2 if case.n_procs >= 4 else case.n_procs * 2
        edited = case.mess_rng.choice((halved, case.n_procs * 2))
        dicts["decomposeParDict"]["numberOfSubdomains"] = str(edited)


def dictionary_path(name: str) -> str:
    """Where the dictionary `name` lives in the case: system/ or constant/."""
    return f"{_FOLDER.get(name, 'constant')}/{name}"


def render_dictionary(name: str, entries: Dictionary, depth: int = 0) -> str:
    """A dictionary file as OpenFOAM writes them (FoamFile header at the top level)."""
    pad = "    " * depth
    out = []
    if depth == 0:
        out.append(
            f"FoamFile\n{{\n    format ascii;\n    class dictionary;\n    object {name};\n}}"
        )
        out.append("// * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * * //\n")
    for key, value in entries.items():
        if isinstance(value, dict):
            out.append(f"{pad}{key}\n{pad}{{\n{render_dictionary(name, value, depth + 1)}{pad}}}\n")
        else:
            out.append(f"{pad}{key:<15} {value};")
    return "\n".join(out) + "\n"


def turbulence_model(dicts: dict[str, Dictionary]) -> str:
    """The RAS model the case names, in lower case, whichever release wrote it."""
    ras = (dicts.get("momentumTransport") or dicts["turbulenceProperties"])["RAS"]
    return str(ras.get("model") or ras["RASModel"]).lower()
