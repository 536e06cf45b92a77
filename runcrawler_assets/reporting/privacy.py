"""Pseudonymous reports: user names replaced by a stable keyed hash, for sharing outside the team.

The same key gives the same pseudonym for a user in every report (so trends
can be compared), and without the key a pseudonym cannot be traced back to a
login by hashing candidate names. It works by shadowing the `runs` table of a
connection with a temporary view, so every analysis reads pseudonyms without
knowing it; the warehouse itself is never changed.
"""

import hashlib
import hmac

import duckdb

from runcrawler_assets.config import Config
from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.warehouse.database import quote_identifier

PSEUDONYM_KEY_VARIABLE = "RUNCRAWLER_PSEUDONYM_KEY"


class PseudonymKeyError(RuncrawlerError, ValueError):
    """Pseudonymization was asked for without a key."""


def pseudonym(user: str, key: str) -> str:
    """`user-` and 8 hex digits of HMAC-SHA256(key, user)."""
    digest = hmac.new(key.encode("utf-8"), user.encode("utf-8", "replace"), hashlib.sha256)
    return "user-" + digest.hexdigest()[:8]


def key_from_env() -> str:
    """The key, from the environment only: a secret has no place in run config or the UI."""
    return Config.from_env().pseudonym_key


def pseudonymize_runs(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Make `runs` on this connection show pseudonyms in `user`, `run_path`, its case,
    messages and parameters."""
    if not key:
        raise PseudonymKeyError(
            f"set {PSEUDONYM_KEY_VARIABLE} to a secret of your choice: the same key gives "
            "the same pseudonyms in every report"
        )

    def hide(user: str) -> str:
        return pseudonym(user, key)

    def hide_in(text: str | None, user: str) -> str | None:
        return None if text is None else text.replace(user, hide(user))

    con.create_function("rc_pseudonym", hide, ["VARCHAR"], "VARCHAR")
    con.create_function(
        "rc_hide_in", hide_in, ["VARCHAR", "VARCHAR"], "VARCHAR", null_handling="special"
    )
    database = con.execute("SELECT current_database()").fetchall()[0][0]
    source = ".".join(quote_identifier(part) for part in (database, "main", "runs"))
    con.execute(
        "CREATE OR REPLACE TEMP VIEW runs AS SELECT * REPLACE ("
        ' rc_pseudonym("user") AS "user",'
        ' rc_hide_in(run_path, "user") AS run_path,'
        ' rc_hide_in(log_path, "user") AS log_path,'
        # a case is named by its folders (`cluster/<login>/jet`, `mesh.h5|<login>`)
        ' rc_hide_in(case_folder, "user") AS case_folder,'
        ' rc_hide_in(mesh_case, "user") AS mesh_case,'
        ' list_transform(points_into, lambda folder: rc_hide_in(folder, "user")) AS points_into,'
        ' rc_hide_in(error_message, "user") AS error_message,'
        ' rc_hide_in(error_signature, "user") AS error_signature,'
        # parameters name users' folders too (C:\\Users\\<login>\\...), and fixes show them
        ' TRY_CAST(rc_hide_in(params::VARCHAR, "user") AS JSON) AS params'
        f") FROM {source}"
    )
