"""Reading OpenFOAM dictionaries (controlDict, fvSchemes, ...) into flat keyword maps.

An OpenFOAM dictionary is C++-flavoured: `//` and `/* */` comments, `key value;`
entries, `{ }` sub-dictionaries, `( )` lists and `[ ]` dimensions that may span
lines, quoted keys, keys with parentheses (`div(phi,U)`), `#include` directives
and `#{ ... #}` code blocks. runcrawler needs only the keywords and their values
as written, so this is a tokenizer and a flat walk, not an evaluator: `$macros`
and `#include`d files are kept as written / not followed (never read outside the
run directory). Nesting is tracked with a stack, never recursion, so a hostile
file cannot exhaust Python's stack; reading is bounded by `logtext.read_head`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runcrawler_assets.solvers.logtext import read_head

_PUNCTUATION = "{};"
_CLOSING = {"(": ")", "[": "]"}
# Directives that take one argument and are not entries of the dictionary.
_DIRECTIVE_ARGUMENTS = 1

Dictionary = dict[str, Any]  # values: str, or a nested Dictionary


def _balanced_end(text: str, start: int) -> int:
    """Index after the bracket that closes the one at `start` (or the end of the text)."""
    opening, depth, i = text[start], 0, start
    closing = _CLOSING[opening]
    while i < len(text):
        c = text[i]
        if c == '"':
            end = text.find('"', i + 1)
            i = len(text) if end == -1 else end + 1
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _word_end(text: str, start: int) -> int:
    """A word runs to white space or punctuation; parentheses inside it stay in it."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c.isspace() or c in _PUNCTUATION or c == '"' or text.startswith("//", i):
            break
        if c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        i += 1
    return max(i, start + 1)


def tokens(text: str) -> Iterator[str]:
    """Words, quoted strings, whole `( )`/`[ ]` groups, `#{ #}` blocks and `{`, `}`, `;`."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif text.startswith("#{", i):
            end = text.find("#}", i + 2)
            j = n if end == -1 else end + 2
            yield text[i:j]
            i = j
        elif c in _PUNCTUATION:
            yield c
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            j = n if end == -1 else end + 1
            yield text[i:j]
            i = j
        elif c in _CLOSING:
            j = _balanced_end(text, i)
            yield text[i:j]
            i = j
        else:
            j = _word_end(text, i)
            yield text[i:j]
            i = j


def _unquote(token: str) -> str:
    return token[1:-1] if len(token) >= 2 and token[0] == token[-1] == '"' else token


def parse_dictionary(text: str) -> tuple[Dictionary, list[str]]:
    """The entries of a dictionary file (the FoamFile header left out) and what looked wrong."""
    root: Dictionary = {}
    stack: list[Dictionary] = [root]
    pending: list[str] = []
    skip = 0
    warnings: list[str] = []

    def store() -> None:
        if pending:
            stack[-1][_unquote(pending[0])] = " ".join(" ".join(pending[1:]).split())
            pending.clear()

    for token in tokens(text):
        if skip:
            skip -= 1
        elif not pending and token.startswith("#") and not token.startswith("#{"):
            skip = _DIRECTIVE_ARGUMENTS
        elif token == "{":
            child: Dictionary = {}
            stack[-1][_unquote(pending[0]) if pending else ""] = child
            stack.append(child)
            pending.clear()
        elif token == "}":
            store()
            if len(stack) > 1:
                stack.pop()
            else:
                warnings.append("a '}' closes no dictionary")
        elif token == ";":
            store()
        else:
            pending.append(token)
    store()
    if len(stack) > 1:
        warnings.append(f"{len(stack) - 1} dictionary block(s) never closed")
    root.pop("FoamFile", None)
    return root, warnings


def flatten(dictionary: Dictionary, prefix: str) -> dict[str, str]:
    """`prefix.key.subkey` → value, keys lower-case (contract-notes 10), values as written."""
    flat: dict[str, str] = {}
    stack: list[tuple[str, Dictionary]] = [(prefix.lower(), dictionary)]
    while stack:
        path, current = stack.pop()
        for key, value in current.items():
            name = f"{path}.{key.lower()}"
            if isinstance(value, dict):
                stack.append((name, value))
            else:
                flat[name] = value
    return dict(sorted(flat.items()))


def read_dictionary(path: Path) -> tuple[Dictionary, list[str]]:
    """A dictionary file, bounded and never raising: missing or unreadable gives warnings."""
    head = read_head(path)
    entries, warnings = parse_dictionary(head.text)
    return entries, [*head.warnings, *(f"{path.name}: {w}" for w in warnings)]
