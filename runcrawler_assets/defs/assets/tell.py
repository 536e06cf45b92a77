"""Telling people (issue 19): the `hints` asset, and the `digests` the digest schedule sends.

`hints` evaluates the rules file (RUNCRAWLER_RULES, else the shipped set) over
every run after each `runs` update and keeps them in DuckDB (`hints`,
`hint_counts`); the report and the digests read them. A bad rules file fails
this asset alone, with the rule and the problem: nothing downstream of `runs`
waits for it (the report shows the hints last computed).

`digests` is materialized by `digest_schedule` (or by hand): it sends each
user the digest of their runs since the last one, and the managers their
summary; what was sent, skipped and what failed (after retries) is its
metadata, and the ledger keeps it, so a failed message goes with the next
round and none is sent twice.
"""

import time
from datetime import datetime
from functools import partial

from dagster import (
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from runcrawler_assets.analytics.store import within_memory
from runcrawler_assets.defs.assets import metadata
from runcrawler_assets.defs.assets.analytics import AFTER_RUNS_UPDATE
from runcrawler_assets.defs.assets.ingest import DUCKDB_POOL, OWNERS
from runcrawler_assets.defs.resources import ConfigResource, SmtpResource, WebhookResource
from runcrawler_assets.hints import load_rules, store_hints
from runcrawler_assets.warehouse.database import connect, run_count

GROUP = "tell_people"


@asset(
    deps=["runs", "fixes"],
    description="The rules (RUNCRAWLER_RULES, else runcrawler's default set) over every run: "
    "one hint per run a rule holds for, in `hints`; counts per rule in `hint_counts`.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    automation_condition=AFTER_RUNS_UPDATE,
)
def hints(context: AssetExecutionContext, settings: ConfigResource) -> MaterializeResult:
    started = time.monotonic()
    config = settings.config
    rules = load_rules(config.rules_file)
    with connect(config.duckdb_path) as con:
        # all written in one transaction: computed again on one thread if it ran out
        hinted = partial(store_hints, con, rules)
        memory = config.analytics_memory_for(run_count(con))
        stored = within_memory(con, memory, "the hints", hinted)
        counts = con.execute("SELECT * FROM hint_counts").df()
        latest = con.execute(
            """SELECT severity, rule, run_path, text FROM hints
               ORDER BY created_at DESC, run_path, rule LIMIT $rows""",
            {"rows": metadata.TABLE_ROWS},
        ).df()
    made = "all" if stored.made_again is None else stored.made_again
    context.log.info(
        f"{stored.hints} hints from {len(rules)} rules ({stored.made_of} made again: {made})"
    )
    return MaterializeResult(
        metadata={
            "hint_counts": metadata.table(counts),
            "latest_hints": metadata.table(latest),
            "rules_file": str(config.rules_file or "runcrawler's default rules"),
            "hints": stored.hints,
            # whose hints this refresh made again ("all": nothing kept, or new rules or fixes)
            f"{stored.made_of}_made_again": made,
            "duration_s": round(time.monotonic() - started, 3),
        }
    )


class DigestConfig(Config):
    """`since`: an ISO date to start the period at (default: the end of the last digest
    sent, else a week ago); `dry_run`: a folder to write the messages into, sending none."""

    since: str | None = None
    dry_run: str | None = None


@asset(
    deps=["hints", "report"],
    description="Each user's digest of their runs since the last one (failures, causes, hints, "
    "known fixes, CPU hours lost) and the managers' summary, sent by e-mail (and the summary "
    "to the chat webhook) once per period; what failed is retried at the next round.",
    group_name=GROUP,
    owners=OWNERS,
    kinds={"email"},
    pool=DUCKDB_POOL,
)
def digests(
    context: AssetExecutionContext,
    config: DigestConfig,
    settings: ConfigResource,
    smtp: SmtpResource,
    webhook: WebhookResource,
) -> MaterializeResult:
    from pathlib import Path

    from runcrawler_assets.digests import next_period
    from runcrawler_assets.digests.run import compose_round, send_round, write_messages

    paths = settings.config
    since = datetime.fromisoformat(config.since) if config.since else None
    period = next_period(paths, datetime.now(), since)
    composed = compose_round(paths, period)
    users = sum(1 for d in composed if d.login is not None)
    if config.dry_run:
        written = write_messages(composed, Path(config.dry_run))
        return MaterializeResult(
            metadata={"period": period.text, "user_digests": users, "written": len(written)}
        )
    outcome = send_round(paths, period, composed, smtp.settings(), webhook.settings())
    context.log.info(outcome.summary())
    for key, reason in outcome.report.failed:
        context.log.warning(f"not sent: {key}: {reason} (retried at the next round)")
    return MaterializeResult(
        metadata={
            "period": period.text,
            "user_digests": users,
            "users_without_address": len(outcome.without_address),
            **outcome.report.as_metadata(),
            "failures": MetadataValue.json(outcome.report.as_metadata()["failures"]),
        }
    )
