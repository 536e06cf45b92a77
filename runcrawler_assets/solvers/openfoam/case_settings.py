"""An OpenFOAM case's settings: its dictionaries → `params` and the typed RunRecord settings.

Every dictionary present (controlDict, fvSchemes, decomposeParDict, the turbulence
and thermophysical properties) is read by `dictionaries` and flattened into
`params` (`<file>.<key>...`); the few settings runs are grouped by (time steps
requested, CFL, turbulence model, convection scheme, reactive flow) are typed
from them by docs/contract-notes.md (OpenFOAM). The dictionaries may have been
edited since the run: what the log says wins where both speak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runcrawler_assets.solvers.openfoam.dictionaries import Dictionary, flatten, read_dictionary
from runcrawler_assets.solvers.rundir import is_regular_file, to_float

CONTROL_DICT = Path("system") / "controlDict"
# The dictionaries whose keywords become `params` (file stem = key prefix).
DICTIONARIES: tuple[Path, ...] = (
    CONTROL_DICT,
    Path("system") / "fvSchemes",
    Path("system") / "decomposeParDict",
    Path("constant") / "turbulenceProperties",
    Path("constant") / "momentumTransport",
    Path("constant") / "thermophysicalProperties",
    Path("constant") / "physicalProperties",
)


@dataclass(frozen=True)
class CaseSettings:
    """The dictionaries' keywords (flattened for `params`) and the typed RunRecord settings."""

    params: dict[str, str]
    settings: dict[str, Any]
    application: str | None
    n_subdomains: int | None
    warnings: tuple[str, ...]


def _lookup(dictionary: Dictionary, *path: str) -> Any:
    current: Any = dictionary
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    return current


def _is_yes(value: Any) -> bool:
    return isinstance(value, str) and value.lower() in {"yes", "on", "true", "y", "1"}


def _turbulence_model(dictionary: Dictionary) -> str | None:
    """The RAS/LES model (either keyword spelling), or `laminar`; lower-case."""
    kind = _lookup(dictionary, "simulationType")
    if not isinstance(kind, str):
        return None
    if kind.lower() == "laminar":
        return "laminar"
    for key in ("model", f"{kind}Model"):
        model = _lookup(dictionary, kind, key)
        if isinstance(model, str):
            return model.lower()
    return kind.lower()


_DIV_U = re.compile(r"div\(\s*\w*[pP]hi\w*\s*,\s*U\s*\)")


def _convection_scheme(fv_schemes: Dictionary) -> str | None:
    """The div scheme of U (`div(phi,U)`, `div(rhoPhi,U)`, ...), else a non-`none` default."""
    div = _lookup(fv_schemes, "divSchemes")
    if not isinstance(div, dict):
        return None
    for key, value in div.items():
        if _DIV_U.fullmatch(key) and isinstance(value, str):
            return " ".join(value.lower().split())
    default = div.get("default")
    return default.lower() if isinstance(default, str) and default != "none" else None


def _typed_settings(dicts: dict[str, Dictionary]) -> dict[str, Any]:
    """RunRecord settings from the dictionaries (contract-notes, OpenFOAM)."""
    control = dicts.get("controlDict", {})
    settings: dict[str, Any] = {}
    adjustable = _is_yes(control.get("adjustTimeStep"))
    end, delta = to_float(str(control.get("endTime"))), to_float(str(control.get("deltaT")))
    start = to_float(str(control.get("startTime", "0")))
    if not adjustable and end is not None and delta and start is not None:
        settings["iterations_requested"] = round((end - start) / delta)
    if adjustable and (max_co := to_float(str(control.get("maxCo")))) is not None:
        settings["cfl"] = max_co
    turbulence = dicts.get("momentumTransport") or dicts.get("turbulenceProperties") or {}
    settings["les_model"] = _turbulence_model(turbulence)
    settings["convection_scheme"] = _convection_scheme(dicts.get("fvSchemes", {}))
    thermo = dicts.get("thermophysicalProperties") or dicts.get("physicalProperties") or {}
    mixture = _lookup(thermo, "thermoType", "mixture")
    if isinstance(mixture, str):
        settings["reactive_flow"] = bool(re.search(r"reacting|multicomponent", mixture, re.I))
    return {k: v for k, v in settings.items() if v is not None}


def read_case_settings(run_dir: Path) -> CaseSettings:
    """Every dictionary present, flattened into `params` (`<file>.<key>...`), and typed."""
    params: dict[str, str] = {}
    dicts: dict[str, Dictionary] = {}
    warnings: list[str] = []
    for relative in DICTIONARIES:
        path = run_dir / relative
        if relative != CONTROL_DICT and not is_regular_file(path):
            continue
        entries, read_warnings = read_dictionary(path)
        warnings.extend(read_warnings)
        dicts[relative.name] = entries
        params.update(flatten(entries, relative.name))
    control = dicts.get("controlDict", {})
    application = control.get("application")
    subdomains = to_float(str(_lookup(dicts.get("decomposeParDict", {}), "numberOfSubdomains")))
    return CaseSettings(
        params=params,
        settings=_typed_settings(dicts),
        application=application if isinstance(application, str) else None,
        n_subdomains=int(subdomains) if subdomains is not None else None,
        warnings=tuple(warnings),
    )
