"""Each failed run's error signature id, learned once and kept (issue 18).

Why in the swap: an id must not change when more runs arrive or when a crawl
is repeated, so the templates learned so far are kept in the warehouse
(`signature_templates`) with the id given to each distinct masked message
(`signature_messages`), and a partition's rows take their ids in the
partition's own swap, in its transaction: a message seen before keeps its id;
a new one is given one by the template miner, which starts from the templates
kept. Messages a rule knows (`error_category` other than `unknown`) are
already grouped by their masked text, which is their template; `unknown` ones
are grouped by the miner (`template_miner`).
"""

from __future__ import annotations

import duckdb

from runcrawler_assets.warehouse.template_miner import (
    Template,
    TemplateMiner,
    other_id,
    signature_id_for,
)

TEMPLATES_TABLE = "signature_templates"
MESSAGES_TABLE = "signature_messages"
LEARNED_CATEGORY = "unknown"
OTHER_TEMPLATE = "(other messages, past the cap of learned templates)"
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TEMPLATES_TABLE} (signature_id VARCHAR PRIMARY KEY, "
    "solver VARCHAR, error_category VARCHAR, template VARCHAR, learned BOOLEAN, "
    "created_at TIMESTAMP)",
    f"CREATE TABLE IF NOT EXISTS {MESSAGES_TABLE} (solver VARCHAR, error_signature VARCHAR, "
    "signature_id VARCHAR, PRIMARY KEY (solver, error_signature))",
)


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        con.execute(statement)


def _learned(con: duckdb.DuckDBPyConnection, solvers: set[str]) -> list[Template]:
    rows = con.execute(
        f"SELECT signature_id, solver, template FROM {TEMPLATES_TABLE} "
        "WHERE learned AND list_contains($solvers, solver) ORDER BY created_at, signature_id",
        {"solvers": sorted(solvers)},
    ).fetchall()
    return [Template(sid, solver, text.split()) for sid, solver, text in rows]


def assign_signatures(con: duckdb.DuckDBPyConnection, cluster: str, user: str) -> int:
    """Give the partition's rows of `runs` their `signature_id`, learning what is new;
    returns how many new messages were seen. Runs inside the caller's transaction."""
    create_tables(con)
    where = 'r.cluster = $cluster AND r."user" = $user'
    names = {"cluster": cluster, "user": user}
    new = con.execute(
        f"""
        SELECT r.solver, r.error_signature, mode(r.error_category) AS category
        FROM runs r ANTI JOIN {MESSAGES_TABLE} m USING (solver, error_signature)
        WHERE {where} AND r.error_signature IS NOT NULL
        GROUP BY ALL ORDER BY min(r.created_at) NULLS LAST, r.solver, r.error_signature
        """,
        names,
    ).fetchall()
    if new:
        _learn(con, new)
    con.execute(
        f"""
        UPDATE runs AS r SET signature_id = m.signature_id FROM {MESSAGES_TABLE} m
        WHERE {where} AND m.solver = r.solver AND m.error_signature = r.error_signature
        """,
        names,
    )
    return len(new)


def _learn(con: duckdb.DuckDBPyConnection, new: list[tuple[str, str, str]]) -> None:
    """Ids for the new messages, and the templates they made or widened, written back."""
    learned = {solver for solver, _, category in new if category == LEARNED_CATEGORY}
    miner = TemplateMiner(_learned(con, learned))
    messages, known = [], {}
    for solver, signature, category in new:
        if category == LEARNED_CATEGORY:
            signature_id = miner.add(solver, signature)
            if signature_id == other_id(solver):
                known[signature_id] = (solver, category, OTHER_TEMPLATE)
        else:
            signature_id = signature_id_for(solver, signature)
            known[signature_id] = (solver, category, signature)
        messages.append((solver, signature, signature_id))
    con.executemany(f"INSERT INTO {MESSAGES_TABLE} VALUES (?, ?, ?)", messages)
    rows = [(sid, s, c, t, False) for sid, (s, c, t) in known.items()]
    rows += [
        (t.signature_id, t.solver, LEARNED_CATEGORY, t.text, True) for t in miner.changed.values()
    ]
    if not rows:  # the new messages all fit the templates as they were
        return
    con.executemany(
        f"""
        INSERT INTO {TEMPLATES_TABLE} VALUES (?, ?, ?, ?, ?, now())
        ON CONFLICT (signature_id) DO UPDATE SET template = excluded.template
        """,
        rows,
    )
