"""The template miner: messages no rule knows grouped into templates with stable ids."""

from __future__ import annotations

import random

from runcrawler_assets.warehouse.template_miner import (
    WILDCARD,
    Template,
    TemplateMiner,
    other_id,
)

ROUTINE = "ERROR in routine {r} : array {a} is not allocated on rank <n>"
SPECIES = "Reaction {k} references unknown third body {s}"


def _messages() -> list[str]:
    out = [ROUTINE.format(r=r, a=a) for r in ("lsqr", "grad_op", "visc") for a in ("w", "dw")]
    out += [SPECIES.format(k=k, s=s) for k, s in (("R1", "AR"), ("R7", "HE"), ("R9", "N2"))]
    return out


def test_messages_differing_in_a_few_words_share_one_template() -> None:
    miner = TemplateMiner()
    ids = [miner.add("avbp", m) for m in _messages()]
    assert len(set(ids[:6])) == 1 and len(set(ids[6:])) == 1 and ids[0] != ids[6]
    templates = {t.signature_id: t.text for t in miner.changed.values()}
    assert templates[ids[0]] == ROUTINE.format(r=WILDCARD, a=WILDCARD)
    assert templates[ids[6]] == SPECIES.format(k=WILDCARD, s=WILDCARD)


def test_unlike_messages_are_kept_apart_and_solvers_never_mix() -> None:
    miner = TemplateMiner()
    first = miner.add("avbp", "Solver diverged in the chemistry integrator")
    second = miner.add("avbp", "Mesh partition file has a wrong magic number")
    other_solver = miner.add("openfoam", "Solver diverged in the chemistry integrator")
    assert len({first, second, other_solver}) == 3


def test_a_message_keeps_its_id_whatever_order_later_messages_come_in() -> None:
    """Templates learned in a first crawl are reloaded: old messages keep their ids when new
    messages (in any order, more of them) arrive."""
    first_crawl = TemplateMiner()
    known = {m: first_crawl.add("avbp", m) for m in _messages()[:4] + _messages()[6:8]}
    kept = [
        Template(t.signature_id, t.solver, list(t.tokens)) for t in first_crawl.changed.values()
    ]
    for seed in range(5):
        later = _messages() + [f"Unexpected token {n} in input deck line <n>" for n in "abc"]
        random.Random(seed).shuffle(later)
        miner = TemplateMiner(kept)
        ids = {m: miner.add("avbp", m) for m in later}
        assert all(ids[m] == known[m] for m in known)


def test_past_the_cap_messages_join_the_nearest_template_or_other() -> None:
    miner = TemplateMiner(max_templates=2)
    a = miner.add("avbp", "alpha beta gamma")
    b = miner.add("avbp", "one two three four")
    assert miner.add("avbp", "alpha delta epsilon") == a  # same length: nearest, widened
    assert miner.add("avbp", "a message of another length entirely") == other_id("avbp")
    assert len({a, b}) == 2
