"""Posting a summary to a chat webhook: a real local HTTP server, scripted answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runcrawler_assets.notify import (
    DeliveryReport,
    Ledger,
    WebhookSettings,
    parse_webhook_kind,
    post_summary,
)

TITLE = "Runs of week 48"
TEXT = "120 runs, 14 failed.\nTop error: CFL too high (6 runs)."
KEY = "2026-11-23..2026-11-30/webhook"


class Channel:
    """A webhook endpoint on 127.0.0.1 answering the scripted statuses in turn (then 200)."""

    def __init__(self, *statuses: int, body: bytes = b"ok", retry_after: str = "") -> None:
        self.statuses = list(statuses)
        self.body = body
        self.retry_after = retry_after  # the Retry-After header of the answers not 200
        self.received: list[tuple[str, str, Any]] = []  # (path, content type, JSON)
        channel = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                channel.received.append((self.path, self.headers["Content-Type"], json.loads(data)))
                status = channel.statuses.pop(0) if channel.statuses else 200
                self.send_response(status)
                if status != 200 and channel.retry_after:
                    self.send_header("Retry-After", channel.retry_after)
                self.send_header("Content-Length", str(len(channel.body)))
                self.end_headers()
                self.wfile.write(channel.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `received`."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hooks/T0/B0/secret") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Channel]]:
    """Channels closed after the test; no proxy of the developer's shell in the way."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    opened: list[Channel] = []
    yield opened
    for channel in opened:
        channel.close()


def _open(channels: list[Channel], *statuses: int, **answer: Any) -> Channel:
    channel = Channel(*statuses, **answer)
    channels.append(channel)
    return channel


class Sleeps(list[float]):
    """A `sleep` that only writes down how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("slack", {"text": f"*{TITLE}*\n{TEXT}"}),
        ("mattermost", {"text": f"**{TITLE}**\n{TEXT}"}),
        (
            "teams",
            {
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": TITLE,
                "title": TITLE,
                "text": TEXT,
            },
        ),
    ],
)
def test_each_kind_receives_its_payload(
    channels: list[Channel], tmp_path: Path, kind: str, expected: dict[str, str]
) -> None:
    channel = _open(channels)
    ledger = Ledger(tmp_path / "sent.jsonl")

    report = post_summary(
        WebhookSettings(channel.url(), kind), TITLE, TEXT, ledger, KEY, sleep=Sleeps()
    )

    assert report == DeliveryReport(sent=[KEY])
    assert channel.received == [
        ("/hooks/T0/B0/secret", "application/json; charset=utf-8", expected)
    ]
    assert ledger.was_sent(KEY)


def test_a_500_is_retried_and_the_summary_posted(channels: list[Channel], tmp_path: Path) -> None:
    channel = _open(channels, 500)
    sleeps = Sleeps()

    report = post_summary(
        WebhookSettings(channel.url(), "slack"),
        TITLE,
        TEXT,
        Ledger(tmp_path / "sent.jsonl"),
        KEY,
        sleep=sleeps,
    )

    assert report.sent == [KEY] and sleeps == [1.0] and len(channel.received) == 2


def test_a_429_waits_what_the_server_asks(channels: list[Channel], tmp_path: Path) -> None:
    channel = _open(channels, 429, 429, retry_after="3")
    sleeps = Sleeps()
    settings = WebhookSettings(channel.url(), "slack")

    report = post_summary(settings, TITLE, TEXT, Ledger(tmp_path / "l.jsonl"), KEY, sleep=sleeps)

    assert report.sent == [KEY] and sleeps == [3.0, 3.0]  # the longer of Retry-After and backoff


def test_a_404_fails_at_once_with_its_status_and_body(
    channels: list[Channel], tmp_path: Path
) -> None:
    channel = _open(channels, 404, 404, 404, body=b"no_service " + b"x" * 500)
    sleeps = Sleeps()
    ledger = Ledger(tmp_path / "sent.jsonl")
    period_end = datetime(2026, 11, 30)

    report = post_summary(
        WebhookSettings(channel.url(), "mattermost"),
        TITLE,
        TEXT,
        ledger,
        KEY,
        period_end=period_end,
        sleep=sleeps,
    )

    reason = "HTTP 404: no_service " + "x" * 189
    assert report == DeliveryReport(failed=[(KEY, reason)])
    assert sleeps == [] and len(channel.received) == 1
    [failure] = ledger.failures()
    assert (failure.reason, failure.attempts, failure.period_end) == (reason, 1, period_end)
    assert "secret" not in ledger.path.read_text()  # the URL's token stays out of the ledger
    assert ledger.last_period_end("webhook") is None


def test_an_unreachable_webhook_is_retried_then_failed(
    channels: list[Channel], tmp_path: Path
) -> None:
    channel = _open(channels)
    url = channel.url()
    channel.close()
    channels.remove(channel)
    sleeps = Sleeps()

    report = post_summary(
        WebhookSettings(url, "teams", timeout=5),
        TITLE,
        TEXT,
        Ledger(tmp_path / "sent.jsonl"),
        KEY,
        attempts=3,
        sleep=sleeps,
    )

    assert sleeps == [1.0, 2.0]
    [(key, reason)] = report.failed
    assert key == KEY and reason.startswith("cannot reach the webhook:") and "refused" in reason


def test_a_key_is_posted_once(channels: list[Channel], tmp_path: Path) -> None:
    channel = _open(channels)
    settings = WebhookSettings(channel.url(), "slack")
    path = tmp_path / "sent.jsonl"
    period_end = datetime(2026, 11, 30)
    post_summary(settings, TITLE, TEXT, Ledger(path), KEY, period_end=period_end, sleep=Sleeps())

    again = post_summary(settings, TITLE, TEXT, Ledger(path), KEY, sleep=Sleeps())

    assert again == DeliveryReport(skipped=[KEY]) and len(channel.received) == 1
    assert Ledger(path).last_period_end("webhook") == period_end


def test_webhook_settings_are_checked() -> None:
    assert parse_webhook_kind(" Teams") == "teams"
    with pytest.raises(ValueError, match="slack, mattermost, teams"):
        parse_webhook_kind("discord")
    with pytest.raises(ValueError):
        WebhookSettings("file:///etc/passwd", "slack")
    assert "secret" not in repr(WebhookSettings("https://hooks.example.org/secret", "slack"))
