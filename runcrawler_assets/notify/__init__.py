"""Delivering digests: e-mail by SMTP, a summary to a chat webhook, each once (the ledger).

Plain Python: the digest's composition and the Dagster asset, schedule and
CLI command that send it call these functions; nothing here imports Dagster.
"""

from __future__ import annotations

from runcrawler_assets.notify.ledger import DeliveryReport, Ledger, LedgerEntry, LedgerError
from runcrawler_assets.notify.smtp import (
    SECURITIES,
    Delivery,
    SmtpSettings,
    parse_security,
    send_messages,
)
from runcrawler_assets.notify.webhook import (
    WEBHOOK_KINDS,
    WebhookSettings,
    parse_webhook_kind,
    payload,
    post_summary,
)

__all__ = [
    "SECURITIES",
    "WEBHOOK_KINDS",
    "Delivery",
    "DeliveryReport",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "SmtpSettings",
    "WebhookSettings",
    "parse_security",
    "parse_webhook_kind",
    "payload",
    "post_summary",
    "send_messages",
]
