"""One digest round, for the CLI and the Dagster asset alike: compose, then write or send.

`--dry-run` writes every message that would be sent, one `.eml` per user with
runs in the period plus `managers.eml` (and `managers-outside.eml`), and
sends nothing. Otherwise each message goes by SMTP to each of its addresses
under a ledger key (`<period>/<kind>/<who>/<address>`), so a period is never
sent twice and a failed send is retried, then recorded and reported (the next
round sends it); users the recipients file gives no address are skipped and
counted. The managers' summary also goes to the chat webhook when one is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from runcrawler_assets.analytics.core import counted
from runcrawler_assets.config import Config
from runcrawler_assets.digests.compose import (
    MANAGERS,
    OUTSIDE,
    USER,
    Digest,
    Period,
    gather,
    manager_digests,
    user_digests,
)
from runcrawler_assets.digests.recipients import load_recipients
from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.hints import load_rules
from runcrawler_assets.notify import (
    Delivery,
    DeliveryReport,
    Ledger,
    SmtpSettings,
    WebhookSettings,
    post_summary,
    send_messages,
)
from runcrawler_assets.warehouse.database import connect

DEFAULT_DAYS = 7  # the first round, with no digest sent before: the last week


class DigestError(RuncrawlerError, ValueError):
    """A digest round that cannot start; the message says what to set."""


@dataclass
class DigestRound:
    """What a round did: the period, the digests composed, what was written or sent."""

    period: Period
    digests: list[Digest]
    written: list[Path] = field(default_factory=list)
    report: DeliveryReport = field(default_factory=DeliveryReport)
    without_address: list[str] = field(default_factory=list)

    def summary(self) -> str:
        users = sum(1 for d in self.digests if d.kind == USER)
        line = f"period {self.period.text}: {users} user digests and the managers' summary"
        if self.written:
            return f"{line}; {len(self.written)} messages written, nothing sent"
        skipped = f"; {counted(len(self.without_address), 'user')} without an address skipped"
        return f"{line}; {self.report.summary()}{skipped if self.without_address else ''}"


def ledger_of(settings: Config) -> Ledger:
    return Ledger(settings.data_dir / "digests" / "sent.jsonl")


def next_period(settings: Config, now: datetime, since: datetime | None = None) -> Period:
    """From `since`, else the end of the last period sent, else a week ago, until `now`."""
    start = since or ledger_of(settings).last_period_end(USER) or now - timedelta(DEFAULT_DAYS)
    if start >= now:
        raise DigestError(f"the period starts {start:%Y-%m-%d %H:%M}, not before its end")
    return Period(start, now)


def _file_name(digest: Digest) -> str:
    if digest.kind == MANAGERS:
        return "managers-outside.eml" if digest.key.endswith(OUTSIDE) else "managers.eml"
    login = digest.login or ""
    safe = login not in ("", ".", "..") and "/" not in login and "\0" not in login
    return f"{login if safe else login.encode().hex()}.eml"


def compose_round(settings: Config, period: Period, wait: float = 10.0) -> list[Digest]:
    """Every digest of `period`, from the warehouse (only read), the rules and recipients."""
    rules = load_rules(settings.rules_file)
    recipients = load_recipients(settings.recipients_file)
    if recipients.outside_managers and not settings.pseudonym_key:
        raise DigestError(
            "the recipients file names managers outside the team: set RUNCRAWLER_PSEUDONYM_KEY "
            "so that their summary shows pseudonyms"
        )
    if not settings.duckdb_path.is_file():
        raise DigestError(f"no warehouse at {settings.duckdb_path}: run `runcrawler crawl` first")
    with connect(settings.duckdb_path, read_only=True, wait=wait) as con:
        data = gather(con, period, rules)
        sender = settings.smtp_sender
        report = settings.data_dir / "report.html"
        return [
            *user_digests(data, recipients, sender),
            *manager_digests(con, data, recipients, sender, report, settings.pseudonym_key),
        ]


def write_messages(digests: list[Digest], directory: Path) -> list[Path]:
    """Each digest as `<login>.eml` / `managers.eml` in `directory`: what would be sent."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for digest in digests:
        path = directory / _file_name(digest)
        path.write_bytes(digest.message.as_bytes())
        paths.append(path)
    return paths


def smtp_settings(settings: Config) -> SmtpSettings | None:
    """The SMTP server of the settings; None when no host is set."""
    if not settings.smtp_host:
        return None
    return SmtpSettings(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_security,
        settings.smtp_user,
        settings.smtp_password,
        settings.smtp_sender,
    )


def webhook_settings(settings: Config) -> WebhookSettings | None:
    """The chat webhook of the settings; None when no URL is set."""
    if not settings.webhook_url:
        return None
    try:
        return WebhookSettings(settings.webhook_url, settings.webhook_kind)
    except ValueError as error:
        raise DigestError(f"RUNCRAWLER_WEBHOOK_URL: {error}") from None


def send_round(
    settings: Config,
    period: Period,
    digests: list[Digest],
    smtp: SmtpSettings | None,
    webhook: WebhookSettings | None,
) -> DigestRound:
    """Send every digest to its addresses (SMTP), and the managers' summary to the webhook."""
    if smtp is None:
        raise DigestError("no SMTP server: set RUNCRAWLER_SMTP_HOST, or use --dry-run DIR")
    ledger = ledger_of(settings)
    deliveries = [
        Delivery(f"{d.key}/{address}", address, d.message, d.kind, period.until)
        for d in digests
        for address in d.addresses
    ]
    outcome = DigestRound(period, digests)
    outcome.without_address = [d.login or "" for d in digests if d.kind == USER and not d.addresses]
    outcome.report = send_messages(smtp, deliveries, ledger)
    if webhook is not None:
        team = next(d for d in digests if d.kind == MANAGERS)
        body = team.message.get_body(("plain",))
        posted = post_summary(
            webhook,
            str(team.message["Subject"]),
            body.get_content() if body is not None else "",
            ledger,
            f"{period.text}/webhook",
            period_end=period.until,
        )
        outcome.report.sent += posted.sent
        outcome.report.skipped += posted.skipped
        outcome.report.failed += posted.failed
    return outcome


def digest_round(
    settings: Config, period: Period, dry_run: Path | None = None, wait: float = 10.0
) -> DigestRound:
    """Compose the period's digests, then write them (`dry_run`) or send them."""
    digests = compose_round(settings, period, wait)
    if dry_run is not None:
        return DigestRound(period, digests, written=write_messages(digests, dry_run))
    return send_round(
        settings, period, digests, smtp_settings(settings), webhook_settings(settings)
    )
