"""Every variable runcrawler reads from the environment, parsed and checked in one place.

Each field of `Config` declares the variable that sets it and what that
variable may hold; `Config.from_env` is the only reader of the environment.
The CLI's options, the Dagster resource and the README's table are derived
from these declarations, so they cannot drift from them. Nothing is read
when this module is imported: a typo must neither stop Dagster from loading
the code location nor `runcrawler --help` from printing. It is refused when
the value is needed, in one line that names the variable and what is allowed.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from runcrawler_assets.errors import RuncrawlerError
from runcrawler_assets.notify.smtp import parse_security
from runcrawler_assets.notify.webhook import parse_webhook_kind

log = logging.getLogger(__name__)


class Layout(StrEnum):
    """How the archive's first folder levels name the cluster and the user."""

    CLUSTER_USER = "cluster/user"  # <root>/<cluster>/<user>/.../<run>
    USER = "user"  # <root>/<user>/.../<run>, one fixed cluster
    SINGLE = "single"  # <root>/.../<run> is one user's folder on one cluster (the seed)


DEFAULT_ARCHIVE = Path("demo_archive")
DEFAULT_DATA = Path("data")
DEFAULT_CLUSTER = "default"
# The longest job the clusters run: a duration resting on a file's mtime beyond it is dropped.
DEFAULT_MAX_JOB_DAYS = 7.0
# DuckDB's memory while an analysis or the hints compute (and while an analysis's results are
# written, when below the writer's 256MB): past it DuckDB spills to disk, which costs time where
# an archive is big enough to need more. Up to 20,000 runs nothing does; a million runs' analyses
# (chart process included) peak at ~595 MB in 6.8 s under 256MB, at ~815 MB in 6.0 s under 1GB,
# and need 128MB at the least (BENCHMARKS.md, thirty-first round).
DEFAULT_ANALYTICS_MEMORY = "256MB"
# From this many runs in `runs`, the defaults keep the process tree small rather than quick
# (issue 16: a million runs within 500 MB): the analytics' memory is `BIG_ARCHIVE_MEMORY`
# unless RUNCRAWLER_ANALYTICS_MEMORY says otherwise, and a thread of the run's process draws
# the charts, no chart process (`defs.resources.ChartDrawing`). At a million runs the chart
# process saved no time (BENCHMARKS.md, thirty-first round).
BIG_ARCHIVE_RUNS = 300_000
BIG_ARCHIVE_MEMORY = "128MB"
AUTO = "auto"  # RUNCRAWLER_ANALYTICS_MEMORY: by the archive's size
MIN_ANALYTICS_BYTES = 64 * 1000**2
# Dagster's daemon looks at sensors every few seconds: a shorter interval only adds load.
MIN_INTERVAL_SECONDS = 5


def is_big_archive(runs: int) -> bool:
    """Whether `runs` runs make a big archive, for which the defaults save memory."""
    return runs >= BIG_ARCHIVE_RUNS


class ConfigError(RuncrawlerError, ValueError):
    """A variable (or the option standing for it) the user must fix; the message says how."""

    exit_code = 2  # as click's usage errors: a variable is an option given another way


@dataclass(frozen=True)
class Variable:
    """An environment variable: how its text is parsed and what it may hold."""

    name: str
    parse: Callable[[str], Any]  # raises ValueError for a text outside `allowed`
    allowed: str  # completes "NAME='text' is not ..."
    unset: str  # the text it stands for when unset or empty
    secret: bool = False  # never shown: not in repr, `to_env`, the Dagster UI

    def read(self, text: str | None) -> Any:
        """The value of `text` (None or empty: the default), or a `ConfigError` naming it."""
        text = text or self.unset
        try:
            return self.parse(text)
        except ValueError:
            raise ConfigError(f"{self.name}={text!r} is not {self.allowed}") from None


def _folder(text: str) -> Path:
    return Path(text).absolute()


def _optional_folder(text: str) -> Path | None:
    return _folder(text) if text else None


def _positive_days(text: str) -> float:
    days = float(text)
    if not (math.isfinite(days) and days > 0):
        raise ValueError(text)
    return days


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = int(text)
        if number < minimum:
            raise ValueError(text)
        return number

    return parse


_ON, _OFF = {"on", "true", "yes", "1"}, {"off", "false", "no", "0"}


def _on_off(text: str) -> bool:
    word = text.strip().lower()
    if word not in _ON | _OFF:
        raise ValueError(text)
    return word in _ON


def _port(text: str) -> int:
    number = int(text)
    if not 1 <= number <= 65535:
        raise ValueError(text)
    return number


def _optional_file(text: str) -> Path | None:
    return Path(text).absolute() if text else None


_MEMORY_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt])(i?)b\s*", re.IGNORECASE)


def _memory_parts(text: str) -> tuple[str, str, str]:
    """A DuckDB memory size (`256MB`, `1.5GB`, `512MiB`): its number, unit prefix and `i`
    for binary units; kB to TB (powers of 1000) or KiB to TiB (of 1024)."""
    match = _MEMORY_SIZE.fullmatch(text)
    if match is None:
        raise ValueError(text)
    number, prefix, binary = match.groups()
    return number, prefix, binary


def memory_bytes(text: str) -> float:
    """The bytes of a DuckDB memory size (`_memory_parts`); ValueError if it is none."""
    number, prefix, binary = _memory_parts(text)
    return float(number) * (1024 if binary else 1000) ** ("kmgt".index(prefix.lower()) + 1)


def _memory_size(text: str) -> str:
    """A DuckDB memory limit of at least 64 MB, as DuckDB spells it."""
    number, prefix, binary = _memory_parts(text)
    if memory_bytes(text) < MIN_ANALYTICS_BYTES:
        raise ValueError(text)
    return f"{number}{prefix.upper()}{'i' if binary else ''}B"


def _memory_size_or_auto(text: str) -> str | None:
    """`_memory_size`, or None for `auto` (`Config.analytics_memory_for`)."""
    return None if text.strip().lower() == AUTO else _memory_size(text)


def _cron(text: str) -> str:
    """Five cron fields (minute hour day month weekday): what Dagster's schedules take."""
    parts = text.split()
    if len(parts) != 5 or not all(re.fullmatch(r"[\d*/,\-A-Za-z]+", part) for part in parts):
        raise ValueError(text)
    return " ".join(parts)


_VARIABLE = "variable"  # the metadata key holding a field's `Variable`


def _variable(
    name: str,
    parse: Callable[[str], Any],
    allowed: str,
    unset: str,
    *,
    required: bool = False,
    secret: bool = False,
) -> Any:
    """A `Config` field set by the variable `name`; its default is the value of `unset`."""
    metadata = {_VARIABLE: Variable(name, parse, allowed, unset, secret)}
    if required:  # the folders: no default when a Config is built in code
        return field(metadata=metadata)
    return field(default=parse(unset), metadata=metadata, repr=not secret)


@dataclass(frozen=True)
class Config:
    """Where the archive and the data live, how to read the archive, when Dagster looks at it."""

    archive_root: Path = _variable(
        "RUNCRAWLER_ARCHIVE", _folder, "a folder", str(DEFAULT_ARCHIVE), required=True
    )
    data_dir: Path = _variable(
        "RUNCRAWLER_DATA", _folder, "a folder", str(DEFAULT_DATA), required=True
    )
    layout: Layout = _variable(
        "RUNCRAWLER_LAYOUT",
        Layout,
        "one of: " + ", ".join(item.value for item in Layout),
        Layout.CLUSTER_USER.value,
    )
    fixed_cluster: str = _variable("RUNCRAWLER_CLUSTER", str, "a cluster name", DEFAULT_CLUSTER)
    # The user of a SINGLE layout; empty: the archive folder's name.
    fixed_user: str = _variable("RUNCRAWLER_USER", str, "a user name", "")
    max_job_days: float = _variable(
        "RUNCRAWLER_MAX_JOB_DAYS",
        _positive_days,
        "a positive number of days (the longest job your clusters run)",
        f"{DEFAULT_MAX_JOB_DAYS:g}",
    )
    parse_workers: int = _variable(
        "RUNCRAWLER_WORKERS", _whole_number(1), "a whole number of processes (>= 1)", "2"
    )
    sensor_interval_seconds: int = _variable(
        "RUNCRAWLER_SENSOR_INTERVAL",
        _whole_number(MIN_INTERVAL_SECONDS),
        f"a whole number of seconds (>= {MIN_INTERVAL_SECONDS})",
        "60",
    )
    automation_interval_seconds: int = _variable(
        "RUNCRAWLER_AUTOMATION_INTERVAL",
        _whole_number(MIN_INTERVAL_SECONDS),
        f"a whole number of seconds (>= {MIN_INTERVAL_SECONDS})",
        "30",
    )
    # None (`auto`): by the archive's size (`analytics_memory_for`).
    analytics_memory: str | None = _variable(
        "RUNCRAWLER_ANALYTICS_MEMORY",
        _memory_size_or_auto,
        f"a memory size of at least 64MB, such as 256MB or 2GB, or {AUTO}",
        AUTO,
    )
    # Off: the sensors and the schedule start stopped (switch them on in the UI).
    automation_on: bool = _variable("RUNCRAWLER_AUTOMATION", _on_off, "on or off", "on")
    # Keys the report's pseudonyms; a secret, so never in run config or the UI.
    pseudonym_key: str = _variable(
        "RUNCRAWLER_PSEUDONYM_KEY", str, "a secret of your choice", "", secret=True
    )
    # Dagster's own storage; None: <data>/dagster_home (see `dagster_home`).
    explicit_dagster_home: Path | None = _variable("DAGSTER_HOME", _optional_folder, "a folder", "")
    # Slurm accounting dumps, <dir>/<cluster>/*.txt (issue 17); None: no accounting joined.
    accounting_dir: Path | None = _variable(
        "RUNCRAWLER_ACCOUNTING", _optional_folder, "a folder of <cluster>/*.txt sacct dumps", ""
    )
    # Telling people (issue 19). The rules behind the hints; None: runcrawler's default set.
    rules_file: Path | None = _variable(
        "RUNCRAWLER_RULES", _optional_file, "a TOML rules file (README, Tell people)", ""
    )
    # Who receives the digests: logins to addresses, the managers (README, Tell people).
    recipients_file: Path | None = _variable(
        "RUNCRAWLER_RECIPIENTS", _optional_file, "a TOML recipients file", ""
    )
    digest_cron: str = _variable(
        "RUNCRAWLER_DIGEST_CRON",
        _cron,
        "five cron fields: minute hour day month weekday",
        "0 7 * * 1",
    )
    # Empty: no SMTP server, the digest schedule starts stopped and digests are only written.
    smtp_host: str = _variable("RUNCRAWLER_SMTP_HOST", str, "a host name", "")
    smtp_port: int = _variable("RUNCRAWLER_SMTP_PORT", _port, "a port number (1-65535)", "587")
    smtp_security: str = _variable(
        "RUNCRAWLER_SMTP_SECURITY",
        parse_security,
        "one of: starttls, tls, none",
        "starttls",
    )
    smtp_user: str = _variable("RUNCRAWLER_SMTP_USER", str, "a login on the SMTP server", "")
    smtp_password: str = _variable(
        "RUNCRAWLER_SMTP_PASSWORD", str, "the SMTP login's password", "", secret=True
    )
    smtp_sender: str = _variable(
        "RUNCRAWLER_SMTP_FROM", str, "an e-mail address", "runcrawler@localhost"
    )
    # An incoming webhook (its URL holds a token: a secret) for the managers' summary.
    webhook_url: str = _variable(
        "RUNCRAWLER_WEBHOOK_URL", str, "an incoming-webhook URL", "", secret=True
    )
    webhook_kind: str = _variable(
        "RUNCRAWLER_WEBHOOK_KIND",
        parse_webhook_kind,
        "one of: slack, mattermost, teams",
        "slack",
    )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        overrides: Mapping[str, str] | None = None,
    ) -> Config:
        """The config of `environ` (default: the process's), `overrides` replacing its values.

        `overrides` maps variable names to texts given another way (the CLI's
        options, the Dagster resource). Raises one `ConfigError` naming every
        bad variable.
        """
        values, problems = _read(environ, overrides)
        if problems:
            raise ConfigError("; ".join(str(problem) for problem in problems.values()))
        return cls(**values)

    @classmethod
    def from_env_or_defaults(cls, environ: Mapping[str, str] | None = None) -> Config:
        """`from_env`, each bad variable logged as a warning and taken at its default.

        Only for what Dagster must fix when it loads the code location (the
        sensors' intervals, whether automation starts on): a typo there should
        not hide every asset from the UI. Ticks and runs read `from_env`, and
        fail with the same message until the variable is fixed.
        """
        values, problems = _read(environ, None)
        for name, problem in problems.items():
            variable = VARIABLES[name]
            log.warning(
                "%s; Dagster loads the definitions with the default (%r), and the runs that "
                "read it fail until it is fixed",
                problem,
                variable.unset,
            )
            values[FIELDS[name]] = variable.read(None)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables that give this config back through `from_env`, secrets left out."""
        return {
            variable.name: _as_text(getattr(self, field_name))
            for field_name, variable in _declared()
            if not variable.secret
        }

    def analytics_memory_for(self, runs: int) -> str:
        """DuckDB's memory for the analytics of `runs` runs: RUNCRAWLER_ANALYTICS_MEMORY when
        set to a size, else the default for an archive of that size."""
        if self.analytics_memory is not None:
            return self.analytics_memory
        return BIG_ARCHIVE_MEMORY if is_big_archive(runs) else DEFAULT_ANALYTICS_MEMORY

    @property
    def max_job_duration(self) -> timedelta:
        return timedelta(days=self.max_job_days)

    @property
    def user_name(self) -> str:
        """The user of a SINGLE layout: the setting, else the archive folder's name."""
        return self.fixed_user or self.archive_root.name

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "runcrawler.duckdb"

    @property
    def runs_dir(self) -> Path:
        """One JSON file per run: runs/<cluster key>/<user key>/<run_id>.json."""
        return self.data_dir / "runs"

    @property
    def charts_dir(self) -> Path:
        return self.data_dir / "charts"

    @property
    def dagster_home(self) -> Path:
        """`DAGSTER_HOME` when set, else `<data>/dagster_home` (it follows `--data`)."""
        return (self.explicit_dagster_home or self.data_dir / "dagster_home").absolute()

    def check_archive(self) -> None:
        """Raise a `ConfigError` a user can act on when the archive is unusable."""
        if not self.archive_root.is_dir():
            raise ConfigError(
                f"archive folder {self.archive_root} does not exist: set RUNCRAWLER_ARCHIVE "
                "(or --archive) to the folder your users copy their runs into"
            )
        if self.data_dir.resolve().is_relative_to(self.archive_root.resolve()):
            raise ConfigError(
                f"data folder {self.data_dir} is inside the archive: runcrawler never writes "
                "into the archive; choose another RUNCRAWLER_DATA (or --data)"
            )
        if self.accounting_dir is not None and not self.accounting_dir.is_dir():
            raise ConfigError(
                f"accounting folder {self.accounting_dir} does not exist: set "
                "RUNCRAWLER_ACCOUNTING (or --accounting) to the folder holding <cluster>/*.txt "
                "sacct dumps, or leave it unset"
            )
        if self.accounting_dir is not None and self.accounting_dir.resolve().is_relative_to(
            self.archive_root.resolve()
        ):
            raise ConfigError(
                f"accounting folder {self.accounting_dir} is inside the archive, where its "
                "folders would be read as clusters: keep the dumps beside the archive"
            )


def _declared() -> list[tuple[str, Variable]]:
    """(field name, its variable) for every field of `Config`, in order."""
    return [(item.name, item.metadata[_VARIABLE]) for item in fields(Config)]


# Variable name -> its declaration, and -> the field it sets; every variable runcrawler reads.
VARIABLES: dict[str, Variable] = {variable.name: variable for _, variable in _declared()}
FIELDS: dict[str, str] = {variable.name: name for name, variable in _declared()}


def variables_set(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables set (not empty) in `environ`, as text, secrets left out: to show, unparsed."""
    environ = os.environ if environ is None else environ
    return {
        name: environ[name]
        for name, variable in VARIABLES.items()
        if environ.get(name) and not variable.secret
    }


def _read(
    environ: Mapping[str, str] | None, overrides: Mapping[str, str] | None
) -> tuple[dict[str, Any], dict[str, ConfigError]]:
    """Field values, and the problem of each bad variable by name."""
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(VARIABLES))
    if unknown:
        raise TypeError(f"not runcrawler variables: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    problems: dict[str, ConfigError] = {}
    for name, variable in VARIABLES.items():
        text = overrides[name] if name in overrides else environ.get(name)
        try:
            values[FIELDS[name]] = variable.read(text)
        except ConfigError as problem:
            problems[name] = problem
    return values, problems


def _as_text(value: object) -> str:
    """A field's value as its variable would hold it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return repr(value)
    return str(value)
