"""run.params, AVBP's parameter file: every keyword as written, and the typed settings.

The schema wants one flat `params` map and a few typed columns to group runs by
(mixture, LES model, scheme, CFL, ...), so this is a keyword reader that only
checks the nesting of `$BLOCK` / `$end_BLOCK` marks, and a table of conversions.
A file that is missing, unreadable or odd gives warnings, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runcrawler_assets.solvers.logtext import read_head
from runcrawler_assets.solvers.rundir import to_float

PARAMS_FILE = "run.params"


@dataclass(frozen=True)
class RunParams:
    """Every keyword of run.params (lower-case keys, values as written) and the typed settings."""

    values: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


_COMMENT = re.compile(r"[!#]")
_BLOCK_MARK = re.compile(r"\$\s*(end_)?\s*(\S*)", re.I)
_STRING_SETTINGS = {
    "mixture_name": "mixture_name",
    "les_model": "les_model",
    "artificial_viscosity_model": "artificial_viscosity_model",
    "convection_scheme": "convection_scheme",
}
_TRUE = {"yes", "true", ".true.", "1", "y", "t", ".t."}
_FALSE = {"no", "false", ".false.", "0", "n", "f", ".f."}


def parse_params_text(text: str) -> tuple[dict[str, str], list[str]]:
    """Keywords and values of a parameter file; blocks only check their own nesting.

    The schema wants one flat `params` map, so a keyword is kept whichever
    block holds it (or none); when a keyword repeats, the last one wins.
    """
    values: dict[str, str] = {}
    warnings: list[str] = []
    open_block: str | None = None
    for raw in text.splitlines():
        # Most lines hold no comment: the `in` tests spare them the regex.
        line = _COMMENT.split(raw, maxsplit=1)[0] if "!" in raw or "#" in raw else raw
        line = line.strip()
        if line.startswith("$"):
            open_block = _check_block(_BLOCK_MARK.match(line), open_block, warnings)
            continue
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if sep and key:
            values[key] = " ".join(value.split())
    if open_block is not None:
        warnings.append(f"{PARAMS_FILE}: block ${open_block} is never closed")
    return values, warnings


def _check_block(
    mark: re.Match[str] | None, open_block: str | None, warnings: list[str]
) -> str | None:
    """The block open after a `$NAME` / `$end_NAME` line; mismatches become warnings."""
    if mark is None:
        return open_block
    closing, name = bool(mark.group(1)), mark.group(2)
    if not closing:
        if open_block is not None:
            warnings.append(f"{PARAMS_FILE}: block ${open_block} is not closed before ${name}")
        return name
    if open_block is None or open_block.lower() != name.lower():
        warnings.append(f"{PARAMS_FILE}: $end_{name} does not close an open block")
    return None


def _to_int(text: str) -> int | None:
    value = to_float(text)
    return int(value) if value is not None and value.is_integer() else None


def _to_bool(text: str) -> bool | None:
    word = text.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else None


def typed_settings(values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The grouping settings as RunRecord fields; a value that does not parse is a warning."""
    settings: dict[str, Any] = {}
    for key, name in _STRING_SETTINGS.items():
        if values.get(key):
            settings[name] = values[key].lower()
    warnings: list[str] = []
    converters = (
        ("ncell_group", "ncell_group", _to_int),
        ("cfl", "cfl", to_float),
        ("reactive_flow", "reactive_flow", _to_bool),
        ("simulation_end_iteration", "iterations_requested", _to_int),
    )
    for key, name, convert in converters:
        if key not in values:
            continue
        typed = convert(values[key])
        if typed is None:
            warnings.append(f"{PARAMS_FILE}: {key} = {values[key]!r} is not a valid value")
        settings[name] = typed
    return settings, warnings


def read_params(path: Path) -> RunParams:
    """Read and type run.params; a missing or unreadable file gives warnings, never an error."""
    head = read_head(path)
    values, warnings = parse_params_text(head.text)
    settings, type_warnings = typed_settings(values)
    return RunParams(values, settings, (*head.warnings, *warnings, *type_warnings))
