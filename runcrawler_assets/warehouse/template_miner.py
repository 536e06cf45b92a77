"""Learned error templates: messages no rule knows, grouped as the Drain log-template miner does.

Why: a message that matches no rule of `solvers.verdicts` is `unknown`, and
its masked text (`error_signature`) still carries words that vary between
runs (a variable's name, a routine, a file's stem). Drain (He et al., ICWS
2017) groups such messages without knowing them: messages of the same length
whose tokens agree at least `similarity` of the time share a template, the
tokens where they differ becoming `<*>`. Here the tree of the original is
reduced to its first level (messages of the same length and first token are
compared), which is all a few thousand distinct messages need.

Ids are stable: a template's id is a hash of the first message that made it,
and the miner starts from the templates it made before (`Template`), so a
message keeps its id when more runs arrive, whatever their order; only new
messages make new templates, at most `max_templates` per solver (past it, a
message joins the nearest template of its length, or `other_id`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

WILDCARD = "<*>"
DEFAULT_SIMILARITY = 0.5
DEFAULT_MAX_TEMPLATES = 200


@dataclass
class Template:
    """One learned template: its id, solver and tokens (`<*>` where messages differ)."""

    signature_id: str
    solver: str
    tokens: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def signature_id_for(solver: str, text: str) -> str:
    """A short id for the template first made from `text`: `<solver>-<10 hex digits>`."""
    digest = hashlib.sha1(f"{solver}\0{text}".encode("utf-8", "surrogateescape")).hexdigest()
    return f"{solver}-{digest[:10]}"


def other_id(solver: str) -> str:
    """The id of the messages past a solver's template cap."""
    return f"{solver}-other"


def _similarity(template: list[str], tokens: list[str]) -> float:
    """Share of positions where the template's token equals the message's (`<*>` never does)."""
    same = sum(1 for a, b in zip(template, tokens, strict=True) if a == b and a != WILDCARD)
    return same / len(tokens)


class TemplateMiner:
    """Assigns each masked message a template id, learning templates as messages come."""

    def __init__(
        self,
        templates: Iterable[Template] = (),
        similarity: float = DEFAULT_SIMILARITY,
        max_templates: int = DEFAULT_MAX_TEMPLATES,
    ) -> None:
        self.similarity = similarity
        self.max_templates = max_templates
        self._groups: dict[tuple[str, int, str], list[Template]] = {}
        self._count: dict[str, int] = {}
        self.changed: dict[str, Template] = {}  # made or generalized since loaded, by id
        for template in templates:
            self._keep(template)

    def _key(self, solver: str, tokens: list[str]) -> tuple[str, int, str]:
        return solver, len(tokens), tokens[0] if tokens else ""

    def _keep(self, template: Template) -> None:
        self._groups.setdefault(self._key(template.solver, template.tokens), []).append(template)
        self._count[template.solver] = self._count.get(template.solver, 0) + 1

    def add(self, solver: str, message: str) -> str:
        """The id of `message`'s template: the most similar one (generalized to cover it),
        or a new one."""
        tokens = message.split() or [""]
        group = self._groups.get(self._key(solver, tokens), [])
        best, score = None, -1.0
        for template in group:
            value = _similarity(template.tokens, tokens)
            if value > score:
                best, score = template, value
        if best is not None and score >= self.similarity:
            self._generalize(best, tokens)
            return best.signature_id
        if self._count.get(solver, 0) >= self.max_templates:
            if best is not None:
                self._generalize(best, tokens)
                return best.signature_id
            return other_id(solver)
        template = Template(signature_id_for(solver, " ".join(tokens)), solver, tokens)
        self._keep(template)
        self.changed[template.signature_id] = template
        return template.signature_id

    def _generalize(self, template: Template, tokens: list[str]) -> None:
        merged = [a if a == b else WILDCARD for a, b in zip(template.tokens, tokens, strict=True)]
        if merged != template.tokens:
            template.tokens = merged
            self.changed[template.signature_id] = template
