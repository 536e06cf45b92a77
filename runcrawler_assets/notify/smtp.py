"""Sending digests by SMTP: each message once, retried, every outcome in the ledger.

A batch keeps one connection (reopened when the server dropped it), skips
the keys the ledger says were sent, and writes each key down as sent the
moment the server accepted it, so a crash never sends it twice. A message
that fails is retried with exponential backoff, then written down as failed,
and the batch goes on: one bad mailbox must not stop the others' digests.
What no retry can fix for the next message either stops the batch early,
each message left reported as failed: a session that could not be opened
(server unreachable, TLS or login refused) or a sender the server refuses.
"""

from __future__ import annotations

import copy
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from runcrawler_assets.notify.ledger import DeliveryReport, Ledger, one_line, one_of

SECURITIES = ("starttls", "tls", "none")


parse_security = one_of(SECURITIES)  # the settings' text, checked


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: `security` is "starttls" (587), "tls" (465) or "none" (25)."""

    host: str
    port: int
    security: str
    user: str = ""  # empty: no login
    password: str = field(default="", repr=False)
    sender: str = "runcrawler@localhost"
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ValueError(f"security {self.security!r} is not one of {', '.join(SECURITIES)}")


@dataclass(frozen=True)
class Delivery:
    """One message for one recipient, under the ledger key that makes it sent once.

    `kind` and `period_end` go to the ledger, for `Ledger.last_period_end(kind)`.
    """

    key: str  # e.g. "2026-11-23..2026-11-30/user/jdupont"
    recipient: str  # the address the message goes to, whatever its headers say
    message: EmailMessage
    kind: str = "email"
    period_end: datetime | None = None


class _SessionFailed(Exception):
    """Opening the session failed (connect, TLS, login): the same for every message."""


def send_messages(
    settings: SmtpSettings,
    messages: Sequence[Delivery],
    ledger: Ledger,
    *,
    attempts: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
) -> DeliveryReport:
    """Send each delivery not yet sent; never raises for one message's failure.

    Tries a message `attempts` times, sleeping `backoff_s`, then twice as long,
    between tries. Raises `LedgerError` only when the ledger cannot be written.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    report = DeliveryReport()
    session = _Session(settings)
    stopped = ""  # why the rest of the batch is not attempted
    with ledger.exclusive():
        try:
            for delivery in messages:
                if ledger.was_sent(delivery.key):
                    report.skipped.append(delivery.key)
                    continue
                if stopped:
                    _fail(ledger, report, delivery, f"not attempted: {stopped}", 0)
                    continue
                message = _addressed(delivery, settings.sender)
                tries, error = _send_with_retries(
                    session, message, delivery.recipient, attempts, backoff_s, sleep
                )
                if error is None:
                    ledger.record_sent(
                        delivery.key,
                        delivery.recipient,
                        str(message["Message-ID"]),
                        kind=delivery.kind,
                        period_end=delivery.period_end,
                    )
                    report.sent.append(delivery.key)
                    continue
                reason = _reason(error, settings)
                _fail(ledger, report, delivery, reason, tries)
                if isinstance(error, _SessionFailed) or _is_settings_error(error):
                    stopped = reason
        finally:
            session.close()
    return report


def _send_with_retries(
    session: _Session,
    message: EmailMessage,
    recipient: str,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], object],
) -> tuple[int, Exception | None]:
    """(tries made, the last error or None when the server accepted the message)."""
    error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            session.send(message, recipient)
            return attempt, None
        except (OSError, smtplib.SMTPException, _SessionFailed) as failure:
            if _is_settings_error(failure):
                return attempt, failure  # the same answer every time: do not insist
            error = failure
            if attempt < attempts:
                sleep(backoff_s * 2 ** (attempt - 1))
    return attempts, error


class _Session:
    """One SMTP connection kept across a batch, opened again when it broke."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, recipient: str) -> None:
        if self._smtp is not None:
            try:
                self._smtp.send_message(message, self.settings.sender, [recipient])
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                self.close()  # an idle connection the server closed: once more on a new one
            except BaseException:
                self.close()
                raise
        self._smtp = self._open()
        try:
            self._smtp.send_message(message, self.settings.sender, [recipient])
        except BaseException:
            self.close()  # a connection in an unknown state is not reused
            raise

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        context = ssl.create_default_context()
        try:
            if settings.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise _SessionFailed(_describe(error, settings)) from error
        try:
            if settings.security == "starttls":
                smtp.starttls(context=context)
            if settings.user:
                smtp.login(settings.user, settings.password)
        except (OSError, smtplib.SMTPException) as error:
            smtp.close()
            raise _SessionFailed(_describe(error, settings)) from error
        return smtp

    def close(self) -> None:
        if self._smtp is None:
            return
        smtp, self._smtp = self._smtp, None
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _addressed(delivery: Delivery, sender: str) -> EmailMessage:
    """A copy of the message with From, To and Message-ID filled in where absent."""
    message = copy.deepcopy(delivery.message)
    if "From" not in message:
        message["From"] = sender
    if "To" not in message:
        message["To"] = delivery.recipient
    if "Message-ID" not in message:
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    return message


def _fail(
    ledger: Ledger, report: DeliveryReport, delivery: Delivery, reason: str, tries: int
) -> None:
    ledger.record_failed(
        delivery.key,
        delivery.recipient,
        reason,
        tries,
        kind=delivery.kind,
        period_end=delivery.period_end,
    )
    report.failed.append((delivery.key, reason))


def _is_settings_error(error: BaseException) -> bool:
    """An answer no retry changes: a refused login, TLS or sender; it stops the batch."""
    if isinstance(error, _SessionFailed):
        error = error.__cause__ or error
    if isinstance(error, smtplib.SMTPSenderRefused):
        return error.smtp_code >= 500
    refused_tls = isinstance(error, ssl.SSLError) and not isinstance(error, ssl.SSLEOFError)
    return refused_tls or isinstance(
        error, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError
    )


def _reason(error: Exception, settings: SmtpSettings) -> str:
    if isinstance(error, _SessionFailed):
        return one_line(str(error))
    return one_line(_describe(error, settings))


def _describe(error: BaseException, settings: SmtpSettings) -> str:
    """What went wrong, in the words of the server when it answered."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address} refused: {code} {_text(answer)}"
            for address, (code, answer) in error.recipients.items()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection: {error}"
    if isinstance(error, TimeoutError):
        return f"no answer from {where} within {settings.timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(error, OSError):
        return f"{where}: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
