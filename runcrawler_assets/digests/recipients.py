"""Who receives the digests: a TOML file mapping logins to addresses, and the managers.

```toml
[users]                       # a user's own digest; a login without an address is skipped
jdupont = "jean.dupont@lab.example"
"o'neil" = "p.oneil@lab.example"

[managers]
team = ["head.of.cfd@lab.example"]      # the team's summary, with names
outside = ["partner@agency.example"]    # the same summary, users as pseudonyms
```
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from runcrawler_assets.errors import RuncrawlerError

_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


class RecipientsError(RuncrawlerError, ValueError):
    """The recipients file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Recipients:
    """Addresses by login, and the managers inside and outside the team."""

    users: dict[str, str] = field(default_factory=dict)
    team_managers: tuple[str, ...] = ()
    outside_managers: tuple[str, ...] = ()


def _address(text: object, where: str) -> str:
    if not isinstance(text, str) or not _ADDRESS.fullmatch(text.strip()):
        raise RecipientsError(f"{where}: {text!r} is not an e-mail address")
    return text.strip()


def _addresses(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RecipientsError(f"{where}: expected a list of addresses")
    return tuple(_address(item, where) for item in value)


def parse_recipients(text: str, source: str) -> Recipients:
    """The recipients of a TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RecipientsError(f"{source}: not valid TOML: {error}") from None
    unknown = set(data) - {"users", "managers"}
    if unknown:
        raise RecipientsError(f"{source}: unknown table(s) {', '.join(sorted(unknown))}")
    users = data.get("users", {})
    managers = data.get("managers", {})
    if not isinstance(users, dict) or not isinstance(managers, dict):
        raise RecipientsError(f"{source}: [users] and [managers] must be tables")
    extra = set(managers) - {"team", "outside"}
    if extra:
        raise RecipientsError(f"{source}: [managers] takes team and outside, not {sorted(extra)}")
    return Recipients(
        users={login: _address(a, f"{source} [users] {login}") for login, a in users.items()},
        team_managers=_addresses(managers.get("team", []), f"{source} [managers] team"),
        outside_managers=_addresses(managers.get("outside", []), f"{source} [managers] outside"),
    )


def load_recipients(path: Path | None) -> Recipients:
    """The recipients of `path`; none at all when no file is set (digests are only written)."""
    if path is None:
        return Recipients()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RecipientsError(f"recipients file {path} cannot be read: {error}") from None
    return parse_recipients(text, str(path))
