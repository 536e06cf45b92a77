"""Sending digests by SMTP to a real local server (aiosmtpd), and the ledger that sends once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from runcrawler_assets.notify import (
    Delivery,
    DeliveryReport,
    Ledger,
    SmtpSettings,
    parse_security,
    send_messages,
)

SENDER = "runcrawler@hpc.example.org"
PERIOD_END = datetime(2026, 11, 30)


class Inbox:
    """An aiosmtpd handler keeping every message it accepted; it can be told to refuse."""

    def __init__(self, refuse_first: int = 0, drop_after_each: bool = False) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []  # (envelope from, to, data)
        self.sessions = 0  # EHLOs: one per connection
        self.refuse_first = refuse_first  # DATA answered "451 try again" that many times
        self.drop_after_each = drop_after_each  # close the connection after each message
        self.unknown: set[str] = set()  # addresses answered "550 no such user"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname  # aiosmtpd leaves it to a handler that has this hook
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.unknown:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_first:
            self.refuse_first -= 1
            return "451 try again"
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if self.drop_after_each:
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the 250
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve() -> Iterator[Callable[..., int]]:
    """Start an SMTP server on 127.0.0.1 for `inbox` (on `port`, else a free one); its port."""
    controllers: list[Controller] = []

    def start(inbox: Inbox, port: int | None = None, **server: Any) -> int:
        controller = Controller(inbox, hostname="127.0.0.1", port=port or _free_port(), **server)
        controller.start()
        controllers.append(controller)
        return controller.port

    yield start
    for controller in controllers:
        controller.stop()


class Sleeps(list[float]):
    """A `sleep` that only writes down how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _settings(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security="none", sender=SENDER, timeout=5)


def _delivery(user: str, domain: str = "example.org") -> Delivery:
    message = EmailMessage()
    message["Subject"] = f"Your runs this week, {user}"
    message.set_content(f"Hello {user},\n3 runs failed.\n")
    message.add_alternative(f"<p>Hello <b>{user}</b>, 3 runs failed.</p>\n", subtype="html")
    return Delivery(
        key=f"2026-11-23..2026-11-30/user/{user}",
        recipient=f"{user}@{domain}",
        message=message,
        kind="user",
        period_end=PERIOD_END,
    )


BATCH = [_delivery(user) for user in ("jdupont", "amartin", "o.neil")]


def test_each_message_is_delivered_once_with_its_text_and_html(
    serve: Callable[..., int], tmp_path: Path
) -> None:
    inbox = Inbox()
    ledger = Ledger(tmp_path / "digests" / "sent.jsonl")

    report = send_messages(_settings(serve(inbox)), BATCH, ledger, sleep=Sleeps())

    assert report == DeliveryReport(sent=[d.key for d in BATCH])
    assert inbox.sessions == 1  # one connection for the batch
    assert [(sender, to) for sender, to, _ in inbox.received] == [
        (SENDER, [d.recipient]) for d in BATCH
    ]
    for (_, _, data), delivery in zip(inbox.received, BATCH, strict=True):
        message = email.message_from_bytes(data, policy=email.policy.default)
        user = delivery.recipient.split("@")[0]
        assert message.get_content_type() == "multipart/alternative"
        assert message["From"] == SENDER and message["To"] == delivery.recipient
        assert message["Subject"] == f"Your runs this week, {user}"
        text, html = message.get_body(("plain",)), message.get_body(("html",))
        assert text is not None and html is not None
        # SMTP carries lines ended by CRLF: compare the lines.
        assert text.get_content().splitlines() == [f"Hello {user},", "3 runs failed."]
        assert html.get_content().splitlines() == [f"<p>Hello <b>{user}</b>, 3 runs failed.</p>"]
        assert ledger.was_sent(delivery.key)
    assert "From" not in BATCH[0].message  # the caller's message is left as it was
    lines = [json.loads(line) for line in ledger.path.read_text().splitlines()]
    ids = {email.message_from_bytes(data)["Message-ID"] for _, _, data in inbox.received}
    assert {line["message_id"] for line in lines} == ids and len(ids) == 3


def test_the_same_batch_twice_sends_nothing_the_second_time(
    serve: Callable[..., int], tmp_path: Path
) -> None:
    inbox = Inbox()
    settings = _settings(serve(inbox))
    path = tmp_path / "sent.jsonl"
    send_messages(settings, BATCH, Ledger(path), sleep=Sleeps())

    again = send_messages(settings, BATCH, Ledger(path), sleep=Sleeps())  # as another process

    assert again == DeliveryReport(skipped=[d.key for d in BATCH])
    assert len(inbox.received) == 3
    assert again.summary() == "0 sent, 3 already sent, 0 failed"


def test_a_refused_connection_is_retried_then_failed_and_a_later_run_sends_it(
    serve: Callable[..., int], tmp_path: Path
) -> None:
    port = _free_port()  # nothing listens there
    ledger = Ledger(tmp_path / "sent.jsonl")
    sleeps = Sleeps()

    report = send_messages(_settings(port), BATCH[:2], ledger, attempts=3, sleep=sleeps)

    assert sleeps == [1.0, 2.0]  # three tries for the first; the unreachable server stops the batch
    assert report.sent == [] and [key for key, _ in report.failed] == [d.key for d in BATCH[:2]]
    first, second = (reason for _, reason in report.failed)
    assert first == f"connection refused by 127.0.0.1:{port}"
    assert second == f"not attempted: connection refused by 127.0.0.1:{port}"
    assert [(f.key, f.attempts) for f in ledger.failures()] == [
        (BATCH[0].key, 3),
        (BATCH[1].key, 0),
    ]
    assert report.as_metadata() == {
        "sent": 0,
        "skipped": 0,
        "failed": 2,
        "failures": [{"key": key, "reason": reason} for key, reason in report.failed],
    }

    inbox = Inbox()
    serve(inbox, port)
    later = send_messages(_settings(port), BATCH[:2], ledger, sleep=Sleeps())

    assert later.sent == [d.key for d in BATCH[:2]] and len(inbox.received) == 2
    assert ledger.failures() == []


def test_a_451_is_retried_and_the_message_sent(serve: Callable[..., int], tmp_path: Path) -> None:
    inbox = Inbox(refuse_first=1)
    sleeps = Sleeps()

    report = send_messages(
        _settings(serve(inbox)),
        BATCH[:1],
        Ledger(tmp_path / "l.jsonl"),
        backoff_s=0.5,
        sleep=sleeps,
    )

    assert report.sent == [BATCH[0].key] and sleeps == [0.5]
    assert len(inbox.received) == 1


def test_a_refused_mailbox_fails_alone_and_the_batch_goes_on(
    serve: Callable[..., int], tmp_path: Path
) -> None:
    inbox = Inbox()
    inbox.unknown.add("ghost@example.org")
    batch = [BATCH[0], _delivery("ghost"), BATCH[1]]
    sleeps = Sleeps()

    report = send_messages(
        _settings(serve(inbox)), batch, Ledger(tmp_path / "l.jsonl"), sleep=sleeps
    )

    assert report.sent == [BATCH[0].key, BATCH[1].key]
    assert report.failed == [(batch[1].key, "ghost@example.org refused: 550 no such user here")]
    assert sleeps == [1.0, 2.0]
    assert [to for _, to, _ in inbox.received] == [[BATCH[0].recipient], [BATCH[1].recipient]]


def test_a_connection_the_server_closed_is_opened_again(
    serve: Callable[..., int], tmp_path: Path
) -> None:
    inbox = Inbox(drop_after_each=True)
    sleeps = Sleeps()

    report = send_messages(
        _settings(serve(inbox)), BATCH, Ledger(tmp_path / "l.jsonl"), sleep=sleeps
    )

    assert report.sent == [d.key for d in BATCH] and sleeps == []
    assert len(inbox.received) == 3 and inbox.sessions == 3


def test_a_refused_login_stops_the_batch_without_retries(
    serve: Callable[..., int], tmp_path: Path
) -> None:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        ok = isinstance(auth, LoginPassword) and auth.password == b"right"
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    inbox = Inbox()
    port = serve(inbox, auth_require_tls=False, authenticator=authenticator)
    settings = SmtpSettings("127.0.0.1", port, "none", user="digest", password="wrong")
    sleeps = Sleeps()
    ledger = Ledger(tmp_path / "sent.jsonl")

    report = send_messages(settings, BATCH, ledger, sleep=sleeps)

    assert sleeps == [] and inbox.received == [] and report.sent == []
    reasons = [reason for _, reason in report.failed]
    assert reasons[0].startswith("SMTP 535") and len(reasons) == 3
    assert reasons[1:] == [f"not attempted: {reasons[0]}"] * 2

    good = SmtpSettings("127.0.0.1", port, "none", user="digest", password="right")
    assert send_messages(good, BATCH, ledger, sleep=sleeps).sent == [d.key for d in BATCH]


def test_security_names_are_checked() -> None:
    assert parse_security(" STARTTLS ") == "starttls"
    assert parse_security("none") == "none"
    with pytest.raises(ValueError, match="starttls, tls, none"):
        parse_security("ssl")
    with pytest.raises(ValueError):
        SmtpSettings(host="h", port=25, security="ssl")
    assert "hunter2" not in repr(SmtpSettings("h", 25, "none", user="u", password="hunter2"))


def test_the_ledger_skips_a_truncated_last_line_and_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    Ledger(path).record_sent("a", "a@x", "<1@x>", kind="user", period_end=PERIOD_END)
    with path.open("ab") as file:
        file.write(b'{"event": "sent", "key": "b", "recip')  # a crash in the middle of a write

    ledger = Ledger(path)
    assert ledger.was_sent("a") and not ledger.was_sent("b")
    ledger.record_sent("c", "c@x", "<3@x>", kind="user")
    assert Ledger(path).was_sent("c") and not Ledger(path).was_sent("b")


def test_last_period_end_is_the_latest_sent_of_its_kind(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sent.jsonl")
    assert ledger.last_period_end("user") is None
    ledger.record_sent("w2", "a@x", "", kind="user", period_end=datetime(2026, 11, 30))
    ledger.record_sent("w1", "a@x", "", kind="user", period_end=datetime(2026, 11, 23))
    ledger.record_sent("t", "m@x", "", kind="team", period_end=datetime(2026, 12, 7))
    ledger.record_failed("w3", "a@x", "down", 3, kind="user", period_end=datetime(2026, 12, 7))

    assert ledger.last_period_end("user") == datetime(2026, 11, 30)
    assert Ledger(ledger.path).last_period_end("team") == datetime(2026, 12, 7)


def test_failures_are_the_latest_of_each_key_not_sent_since(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sent.jsonl")
    other = Ledger(ledger.path)  # another process appending to the same file
    ledger.record_failed("a", "a@x", "first", 3, kind="user")
    other.record_failed("a", "a@x", "second", 3, kind="user")
    ledger.record_failed("b", "b@x", "down", 1, kind="user")
    other.record_sent("b", "b@x", "<b@x>", kind="user")

    assert [(f.key, f.reason) for f in ledger.failures()] == [("a", "second")]


def test_two_processes_appending_at_once_lose_no_line(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from runcrawler_assets.notify import Ledger\n"
        "ledger = Ledger(Path(sys.argv[1]))\n"
        "for i in range(200):\n"
        "    ledger.record_sent(f'{sys.argv[2]}-{i}', 'a@x', '<' + 'x' * 500 + '>', kind='user')\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(path), name]) for name in "ab"]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]

    lines = path.read_text().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["event"] == "sent" for line in lines)
    ledger = Ledger(path)
    assert all(ledger.was_sent(f"{name}-{i}") for name in "ab" for i in range(200))
