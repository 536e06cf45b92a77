"""Rules: a TOML file of conditions over a run's columns, each with a severity and a hint.

Why declarative: what deserves a word to a user (a CFL that diverges, a mesh
split too finely, the time limit hit twice in a row) is the team's knowledge,
so a team writes its own rules without touching the code; runcrawler ships a
documented default set (`default_rules.toml`).

A condition is a SQL expression over the columns of `RULE_VIEW` (the columns
of `runs` plus a few derived ones, `DERIVED_COLUMNS`), evaluated in DuckDB.
It is checked before it runs: only those columns, literals, operators and a
few functions (`FUNCTIONS`) are accepted, never a statement, a subquery or a
comment; DuckDB then binds it, so a typo in a column's type is caught too.
Every problem names the rule and says what is wrong.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.records import RUN_COLUMNS

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
DEFAULT_RULES = "default_rules.toml"
# Columns derived for rules, beside those of `runs` (hints/evaluate.py computes them).
DERIVED_COLUMNS: dict[str, str] = {
    "nodes_per_process": "mesh nodes per MPI process (n_nodes / n_procs)",
    "previous_status": "status of the case's run before this one (same user)",
    "previous_error_category": "error_category of the case's run before this one",
    "same_error_in_a_row": "how many of the case's runs in a row, this one included, ended "
    "with this run's error_category",
    "typical_fix": "the change that usually fixed this run's error (error_fixes)",
}
RULE_COLUMNS: frozenset[str] = frozenset({c.name for c in RUN_COLUMNS} | set(DERIVED_COLUMNS))
KEYWORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "is",
        "null",
        "in",
        "between",
        "like",
        "ilike",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "end",
    ]
)
FUNCTIONS = frozenset(
    [
        "lower",
        "upper",
        "coalesce",
        "abs",
        "length",
        "contains",
        "starts_with",
        "ends_with",
        "regexp_matches",
        "round",
        "least",
        "greatest",
    ]
)
_TOKEN = re.compile(
    r"""(?P<space>\s+)|(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"""
    r"""|(?P<quoted>"(?:[^"]|"")+")|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<operator><=|>=|<>|!=|\|\||[=<>+\-*/%(),])"""
)


class RulesError(RuncrawlerError, ValueError):
    """The rules file cannot be used; the message names the rule and the problem."""


@dataclass(frozen=True)
class Rule:
    """One rule: its name, condition (SQL over `RULE_COLUMNS`), severity and hint text."""

    name: str
    condition: str
    severity: str
    hint: str

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The columns the hint names, `{cfl}`, in order."""
        return tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(self.hint) if f))

    @property
    def columns(self) -> frozenset[str]:
        """The columns of `RULE_COLUMNS` its condition and its hint read (a checked rule
        reads no other: `condition_columns`)."""
        return frozenset(condition_columns(self.name, self.condition)) | set(self.placeholders)


def condition_columns(name: str, condition: str) -> list[str]:
    """The columns `condition` names, in order; a `RulesError` for anything but columns,
    literals, operators, keywords and `FUNCTIONS` (never `;`, `--`, a subquery or an unknown
    column), naming the rule and the first offending word."""
    if not condition.strip():
        raise RulesError(f"rule {name!r}: its condition ('when') is empty")
    outside_texts = re.sub(r"'(?:[^']|'')*'", "''", condition)
    if "--" in outside_texts or "/*" in outside_texts:
        raise RulesError(f"rule {name!r}: comments (-- or /*) are not allowed in a condition")
    position, tokens = 0, []
    while position < len(condition):
        match = _TOKEN.match(condition, position)
        if match is None:
            raise RulesError(
                f"rule {name!r}: unexpected {condition[position]!r} at character {position + 1} "
                "of its condition (allowed: columns, numbers, 'text', operators, parentheses)"
            )
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
        position = match.end()
    columns = []
    for index, (kind, text) in enumerate(tokens):
        if kind not in ("word", "quoted"):
            continue
        word = text.strip('"').replace('""', '"') if kind == "quoted" else text.lower()
        calls = index + 1 < len(tokens) and tokens[index + 1][1] == "("
        if kind == "word" and (word in KEYWORDS or (calls and word in FUNCTIONS)):
            continue
        if word not in RULE_COLUMNS:
            raise RulesError(
                f"rule {name!r}: {text!r} is not a column of runs, a derived column "
                f"({', '.join(DERIVED_COLUMNS)}) or an allowed function "
                f"({', '.join(sorted(FUNCTIONS))})"
            )
        columns.append(word)
    return columns


def _rule(index: int, entry: object) -> Rule:
    if not isinstance(entry, dict):
        raise RulesError(f"rule #{index}: expected a table [[rule]], got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"rule #{index}: 'name' is missing or not a text")
    unknown = set(entry) - {"name", "when", "severity", "hint"}
    if unknown:
        raise RulesError(f"rule {name!r}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("when", "hint"):
        if not isinstance(entry.get(key), str):
            raise RulesError(f"rule {name!r}: '{key}' is missing or not a text")
    severity = entry.get("severity", "warning")
    if severity not in SEVERITIES:
        raise RulesError(f"rule {name!r}: severity {severity!r} is not one of {SEVERITIES}")
    rule = Rule(name.strip(), entry["when"], severity, entry["hint"])
    condition_columns(rule.name, rule.condition)  # refuses anything else
    try:
        fields = list(string.Formatter().parse(rule.hint))
    except ValueError as error:
        raise RulesError(f"rule {name!r}: its hint is not a valid text ({error})") from None
    for _, placeholder, spec, conversion in fields:
        if placeholder is None:
            continue
        if placeholder not in RULE_COLUMNS:
            raise RulesError(f"rule {name!r}: the hint names {{{placeholder}}}, not a column")
        if spec or conversion:
            raise RulesError(
                f"rule {name!r}: write {{{placeholder}}} without a format: values are shown "
                "as the runs table holds them"
            )
    return rule


def parse_rules(text: str, source: str) -> tuple[Rule, ...]:
    """The rules of a TOML text (`[[rule]]` tables), checked; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"{source}: not valid TOML: {error}") from None
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise RulesError(f"{source}: no [[rule]] table")
    rules = tuple(_rule(i + 1, entry) for i, entry in enumerate(entries))
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RulesError(f"{source}: rule names must be unique: {', '.join(duplicates)}")
    return rules


def default_rules_text() -> str:
    return resources.files(__package__).joinpath(DEFAULT_RULES).read_text(encoding="utf-8")


def load_rules(path: Path | None) -> tuple[Rule, ...]:
    """The rules of `path`, or the shipped default set when `path` is None."""
    if path is None:
        return parse_rules(default_rules_text(), f"runcrawler's {DEFAULT_RULES}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError(f"rules file {path} cannot be read: {error}") from None
    return parse_rules(text, str(path))
