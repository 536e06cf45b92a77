"""Hints (issue 19): the team's rules over each run, and the words they give its user."""

from runcrawler_assets.hints.evaluate import HINT_COLUMNS, evaluate_rules, store_hints
from runcrawler_assets.hints.rules import Rule, RulesError, load_rules, parse_rules

__all__ = [
    "HINT_COLUMNS",
    "Rule",
    "RulesError",
    "evaluate_rules",
    "load_rules",
    "parse_rules",
    "store_hints",
]
