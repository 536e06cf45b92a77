"""Digests: one MIME message per user with runs plus the managers', written or sent once."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from runcrawler_assets.cli import main
from runcrawler_assets.config import Config
from runcrawler_assets.digests import DigestError, Period, RecipientsError, digest_round
from runcrawler_assets.digests.recipients import parse_recipients
from runcrawler_assets.digests.run import ledger_of
from runcrawler_tests.conftest import DemoWarehouse
from runcrawler_tests.test_notify_smtp import Inbox, _free_port, serve  # noqa: F401 (fixture)

SINCE, UNTIL = datetime(2026, 8, 1), datetime(2026, 11, 1)


@pytest.fixture(scope="module")
def period_users(demo_warehouse: DemoWarehouse) -> dict[str, int]:
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        rows = con.execute(
            'SELECT "user", count(*) FROM runs WHERE created_at >= ? AND created_at < ? '
            "GROUP BY ALL",
            [SINCE, UNTIL],
        ).fetchall()
    return dict(rows)


def _recipients(tmp_path: Path, users: dict[str, str]) -> Path:
    path = tmp_path / "recipients.toml"
    lines = ["[users]"] + [f"{json.dumps(login)} = {json.dumps(a)}" for login, a in users.items()]
    lines += ["[managers]", 'team = ["head@lab.example"]']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _parts(raw: bytes) -> tuple[email.message.EmailMessage, str, str]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text, page = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and page is not None
    return message, text.get_content(), page.get_content()


def test_a_dry_run_writes_one_message_per_user_with_runs_and_the_managers(
    data_copy: Path, tmp_path: Path, period_users: dict[str, int]
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["digest", "--data", str(data_copy), "--since", "2026-08-01", "--until", "2026-11-01",
         "--dry-run", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = {p.name for p in out.iterdir()}
    assert written == {f"{login}.eml" for login in period_users} | {"managers.eml"}
    hinted = 0
    for login, runs in period_users.items():
        message, text, page = _parts((out / f"{login}.eml").read_bytes())
        assert str(message["To"]).strip('"') == login  # no recipients file: to the login
        assert f"{runs} runs" in message["Subject"] and f"Hello {login}" in text
        assert text.count("\n- ") == runs
        hinted += "hint: " in text
        assert ("hint: " in text) == ("hint: " in page)
    assert hinted >= len(period_users) - 1
    managers, text, page = _parts((out / "managers.eml").read_bytes())
    assert f"{sum(period_users.values())} runs" in managers["Subject"]
    assert all(login in text for login in period_users) and "Most frequent hints" in page
    assert not ledger_of(Config(data_copy, data_copy)).path.exists(), "a dry run sends nothing"


def test_sending_delivers_each_message_once_even_when_run_twice(
    data_copy: Path,
    tmp_path: Path,
    period_users: dict[str, int],
    serve,  # noqa: F811
) -> None:
    inbox = Inbox()
    port = serve(inbox)
    addressed = sorted(period_users)[:-1]  # the last user has no address: skipped, counted
    recipients = _recipients(tmp_path, {login: f"u{i}@lab.example" for i, login in
                                        enumerate(addressed)})  # fmt: skip
    settings = Config(
        data_copy, data_copy, recipients_file=recipients, smtp_host="127.0.0.1", smtp_port=port,
        smtp_security="none",
    )  # fmt: skip
    first = digest_round(settings, Period(SINCE, UNTIL))
    assert first.report.failed == [] and first.without_address == [sorted(period_users)[-1]]
    assert len(first.report.sent) == len(addressed) + 1  # and the team's manager
    received = sorted(to for _, tos, _ in inbox.received for to in tos)
    assert received == sorted([*(f"u{i}@lab.example" for i in range(len(addressed))),
                               "head@lab.example"])  # fmt: skip
    for _, _, raw in inbox.received:
        _parts(raw)
    again = digest_round(settings, Period(SINCE, UNTIL))
    assert again.report.sent == [] and len(again.report.skipped) == len(first.report.sent)
    assert len(inbox.received) == len(addressed) + 1


def test_a_refused_connection_is_retried_then_reported_and_sent_next_time(
    data_copy: Path,
    tmp_path: Path,
    period_users: dict[str, int],
    serve,  # noqa: F811
) -> None:
    port = _free_port()  # nothing listens there yet
    recipients = _recipients(tmp_path, {login: "x@lab.example" for login in period_users})
    settings = Config(
        data_copy, data_copy, recipients_file=recipients, smtp_host="127.0.0.1", smtp_port=port,
        smtp_security="none",
    )  # fmt: skip
    result = CliRunner().invoke(
        main,
        ["digest", "--data", str(data_copy), "--since", "2026-08-01", "--until", "2026-11-01"],
        env=settings.to_env(),
    )  # fmt: skip
    assert result.exit_code == 1 and "could not be sent" in result.output
    assert "failed" in result.output
    failures = ledger_of(settings).failures()
    assert failures and all(f.attempts >= 1 or "not attempted" in f.reason for f in failures)
    inbox = Inbox()
    serve(inbox, port=port)
    later = digest_round(settings, Period(SINCE, UNTIL))
    assert later.report.failed == [] and len(inbox.received) == len(period_users) + 1


def test_the_managers_summary_goes_to_the_webhook_once(
    data_copy: Path,
    tmp_path: Path,
    serve,  # noqa: F811
) -> None:
    posts: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = Config(
            data_copy, data_copy, smtp_host="127.0.0.1", smtp_port=serve(Inbox()),
            smtp_security="none", webhook_url=f"http://127.0.0.1:{server.server_port}/hook",
            webhook_kind="mattermost",
        )  # fmt: skip
        digest_round(settings, Period(SINCE, UNTIL))
        digest_round(settings, Period(SINCE, UNTIL))
    finally:
        server.shutdown()
    assert len(posts) == 1 and "the team's runs 2026-08-01..2026-11-01" in posts[0]["text"]


def test_the_next_round_starts_where_the_last_one_ended(
    data_copy: Path,
    tmp_path: Path,
    serve,  # noqa: F811
) -> None:
    from runcrawler_assets.digests import next_period

    settings = Config(
        data_copy, data_copy, smtp_host="127.0.0.1", smtp_port=serve(Inbox()), smtp_security="none",
        recipients_file=_recipients(tmp_path, {"jdupont": "j@lab.example"}),
    )  # fmt: skip
    assert next_period(settings, UNTIL).since == datetime(2026, 10, 25)  # a week, the first time
    digest_round(settings, Period(SINCE, UNTIL))
    assert next_period(settings, datetime(2026, 11, 8)) == Period(UNTIL, datetime(2026, 11, 8))
    with pytest.raises(DigestError, match="not before its end"):
        next_period(settings, UNTIL)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--since", "last week", "--dry-run", "x"], ["--since", "last week"]),
        (["--since", "2026-08-01"], ["RUNCRAWLER_SMTP_HOST", "--dry-run"]),
        (["--since", "2026-12-01", "--until", "2026-11-01", "--dry-run", "x"], ["before its end"]),
    ],
)
def test_bad_digest_options_are_clear_errors(
    data_copy: Path, tmp_path: Path, args: list[str], words: list[str]
) -> None:
    result = CliRunner().invoke(main, ["digest", "--data", str(data_copy), *args])
    assert result.exit_code != 0 and all(w in result.output for w in words), result.output
    assert "Traceback" not in result.output


def test_no_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["digest", "--data", str(tmp_path / "none"), "--dry-run", str(tmp_path / "x")]
    )
    assert result.exit_code == 1 and "run `runcrawler crawl` first" in result.output


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[users]\njdupont = "not an address"\n', ["jdupont", "not an e-mail address"]),
        ('[managers]\nteam = "head@lab.example"\n', ["team", "list"]),
        ("[managers]\nboss = []\n", ["boss"]),
        ("[people]\n", ["people"]),
        ("[users\n", ["not valid TOML"]),
    ],
)
def test_a_bad_recipients_file_says_where(text: str, words: list[str]) -> None:
    with pytest.raises(RecipientsError) as raised:
        parse_recipients(text, "recipients.toml")
    assert all(w in str(raised.value) for w in ["recipients.toml", *words]), str(raised.value)


def test_outside_managers_need_the_pseudonym_key(data_copy: Path, tmp_path: Path) -> None:
    recipients = tmp_path / "r.toml"
    recipients.write_text('[managers]\noutside = ["partner@agency.example"]\n')
    with pytest.raises(DigestError, match="RUNCRAWLER_PSEUDONYM_KEY"):
        unkeyed = Config(data_copy, data_copy, recipients_file=recipients)
        digest_round(unkeyed, Period(SINCE, UNTIL), tmp_path)
    keyed = Config(data_copy, data_copy, recipients_file=recipients, pseudonym_key="s3cret")
    digest_round(keyed, Period(SINCE, UNTIL), tmp_path / "out")
    _, text, page = _parts((tmp_path / "out" / "managers-outside.eml").read_bytes())
    assert "jdupont" not in text and "jdupont" not in page and "user-" in text
