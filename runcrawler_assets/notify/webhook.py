"""Posting a digest's summary to a chat channel's incoming webhook (Slack, Mattermost, Teams).

Plain `urllib.request`, no client library: one JSON POST. A 2xx answer means
posted; 429, 5xx and network errors are worth another try; any other answer
(a wrong or revoked URL, a payload refused) fails at once. The ledger keeps
the key as for e-mail, so a summary is posted once per period. The URL holds
the channel's secret token: it is kept out of reprs, reasons and the ledger.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from runcrawler_assets.notify.ledger import DeliveryReport, Ledger, one_line, one_of

WEBHOOK_KINDS = ("slack", "mattermost", "teams")
# The longest wait a server's Retry-After may impose between two tries.
MAX_RETRY_AFTER_S = 60.0


parse_webhook_kind = one_of(WEBHOOK_KINDS)  # the settings' text, checked


@dataclass(frozen=True)
class WebhookSettings:
    """An incoming webhook: its URL (a secret) and the service behind it."""

    url: str = field(repr=False)
    kind: str  # "slack" | "mattermost" | "teams"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in WEBHOOK_KINDS:
            raise ValueError(f"webhook kind {self.kind!r} is not one of {', '.join(WEBHOOK_KINDS)}")
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError("a webhook URL starts with https:// (or http://)")


def payload(kind: str, title: str, text: str) -> dict[str, str]:
    """The JSON body each service expects, the title set apart in its own markup."""
    if kind == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title,
            "title": title,
            "text": text,
        }
    bold = "**" if kind == "mattermost" else "*"  # Mattermost's Markdown reads *x* as italics
    return {"text": f"{bold}{title}{bold}\n{text}"}


class _Refused(Exception):
    """An answer no retry changes (4xx other than 429)."""


class _Retryable(Exception):
    """A failure another try may not meet: 429, 5xx, the network."""

    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def post_summary(
    settings: WebhookSettings,
    title: str,
    text: str,
    ledger: Ledger,
    key: str,
    *,
    kind: str = "webhook",
    period_end: datetime | None = None,
    attempts: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
) -> DeliveryReport:
    """Post the summary unless `key` was sent; never raises for the post's failure.

    `kind` and `period_end` go to the ledger, for `Ledger.last_period_end(kind)`.
    Raises `LedgerError` only when the ledger cannot be written.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    report = DeliveryReport()
    # The ledger's recipient: the service and host, never the URL's secret path.
    recipient = f"{settings.kind}:{urllib.parse.urlsplit(settings.url).hostname}"
    body = json.dumps(payload(settings.kind, title, text)).encode("utf-8")
    with ledger.exclusive():
        if ledger.was_sent(key):
            report.skipped.append(key)
            return report
        reason = ""
        for attempt in range(1, attempts + 1):
            try:
                _post(settings, body)
            except _Refused as refused:
                reason = str(refused)
                break
            except _Retryable as failure:
                reason = str(failure)
                if attempt < attempts:
                    sleep(max(backoff_s * 2 ** (attempt - 1), failure.retry_after))
                continue
            ledger.record_sent(key, recipient, "", kind=kind, period_end=period_end)
            report.sent.append(key)
            return report
        ledger.record_failed(key, recipient, reason, attempt, kind=kind, period_end=period_end)
        report.failed.append((key, reason))
    return report


def _post(settings: WebhookSettings, body: bytes) -> None:
    """POST `body`; returns on 2xx, else raises `_Refused` or `_Retryable`."""
    request = urllib.request.Request(
        settings.url,
        data=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.timeout) as response:
            status = response.status  # the body is not needed: 2xx says it was posted
    except urllib.error.HTTPError as error:
        status = error.code
        try:
            answer = error.read()
        except OSError:
            answer = b""
        finally:
            error.close()
        reason = one_line(f"HTTP {status}: {answer[:200].decode('utf-8', 'replace')}")
        if status == 429 or status >= 500:
            raise _Retryable(reason, _retry_after(error.headers.get("Retry-After"))) from None
        raise _Refused(reason) from None
    except TimeoutError:
        raise _Retryable(f"no answer within {settings.timeout:g} s") from None
    except (urllib.error.URLError, OSError) as error:
        detail = error.reason if isinstance(error, urllib.error.URLError) else error
        raise _Retryable(one_line(f"cannot reach the webhook: {detail}")) from None
    if not 200 <= status < 300:
        raise _Refused(f"HTTP {status}")


def _retry_after(header: str | None) -> float:
    """The seconds a 429 or 503 asks to wait (a number of seconds only), bounded."""
    try:
        seconds = float(header or 0)
    except ValueError:
        return 0.0  # an HTTP date: the backoff will do
    return min(seconds, MAX_RETRY_AFTER_S) if math.isfinite(seconds) and seconds > 0 else 0.0
