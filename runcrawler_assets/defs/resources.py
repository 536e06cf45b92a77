"""The Dagster resources: runcrawler's `Config` for every asset and sensor, progress, the
analytics' chart drawing, and where digests go (SMTP, a chat webhook).

`ConfigResource` holds the variables as text, exactly as given, and parses
them with `Config.from_env` only when a tick or a run asks for `.config`. So
a bad value fails that tick or run with the one line naming it, and never
keeps Dagster from loading the code location; and the resource has no field
of its own to keep in step with `Config` (a new variable needs no change
here). Secrets are not held (Dagster shows resources in the UI): `.config`
takes them from the process environment.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from runcrawler_assets.archive.runstore import recorded_runs
from runcrawler_assets.config import Config, is_big_archive, variables_set
from runcrawler_assets.digests.run import smtp_settings, webhook_settings
from runcrawler_assets.heap import freeze_loaded
from runcrawler_assets.notify import SmtpSettings, WebhookSettings
from runcrawler_assets.reporting.drawing import ChartDrawer


class ConfigResource(ConfigurableResource):
    """The RUNCRAWLER_* variables this code location runs with, parsed on use."""

    variables: dict[str, str]

    @classmethod
    def from_env(cls) -> ConfigResource:
        """The variables set in the environment (secrets left out), unparsed."""
        return cls(variables=variables_set())

    @classmethod
    def from_config(cls, config: Config, parse_workers: int | None = None) -> ConfigResource:
        """A resource giving `config` back (`parse_workers` in place of its own, when given)."""
        if parse_workers is not None:
            config = replace(config, parse_workers=parse_workers)
        return cls(variables=config.to_env())

    @property
    def config(self) -> Config:
        """The parsed config; a `ConfigError` naming the variable when one is bad."""
        return Config.from_env(overrides=self.variables)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Every run and sensor tick sets this resource up before its work: the process's
        code is loaded by then, and is left out of Python's later garbage collections
        (`heap`)."""
        freeze_loaded()


class CrawlProgress(ConfigurableResource):
    """Where long steps report progress: nowhere by default; the CLI draws a bar."""

    def update(self, step: str, done: int, total: int) -> None:
        """Called as work advances; `done` of `total` items of `step`."""


class ChartDrawing(ConfigurableResource):
    """One `ChartDrawer` for a run's analyses: a spare worker process draws charts beside the
    run's own (`reporting.drawing`) when `RUNCRAWLER_WORKERS` is 2 or more, a thread of the
    run's process when it is 1 or the archive is big (`config.BIG_ARCHIVE_RUNS`: the
    process's ~120 MB kept out of a million runs' 500 MB); it stops with the run.

    Only the analyses ask for it, so a run without them never starts it. A worker process
    starts with the run (Dagster sets up a run's resources before its first step, in one
    process) when the archive's size is known and not big (the launcher's scan, else the
    runs the last discoveries recorded): it takes
    ~0.6 s to import matplotlib, which the steps refreshing partitions cover, so that it
    draws from the first analysis on (issue 16: +10 runs, 0.3 s less). Else (a thread, or a
    run that knows neither, such as a first materialization from the UI) it starts with the
    first analysis, which counts `runs`; a thread's imports would weigh on the run's own
    process while it ingests."""

    spare_workers: int = 1
    runs_dir: str = ""  # the JSON run store, whose discoveries tell the archive's size
    archive_runs: int = 0  # the runs the run's launcher found in the archive (0: unknown)
    _drawer: ChartDrawer | None = PrivateAttr(default=None)

    @classmethod
    def from_config(cls, config: Config, archive_runs: int = 0) -> ChartDrawing:
        """Spare workers for `config`'s process count: all but one, at most 1."""
        return cls(
            spare_workers=min(1, config.parse_workers - 1),
            runs_dir=str(config.runs_dir),
            archive_runs=archive_runs,
        )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.spare_workers > 0 and self.runs_dir:
            runs = self.archive_runs or recorded_runs(Path(self.runs_dir))
            if runs and not is_big_archive(runs):
                self.drawer(runs)

    def drawer(self, runs: int) -> ChartDrawer:
        """The run's drawer for an archive of `runs` runs, its worker starting in the
        background on the first call (a worker started for a smaller archive is stopped,
        and a thread draws, once the archive is big)."""
        spare_workers = 0 if is_big_archive(runs) else self.spare_workers
        if self._drawer is not None and not (spare_workers or self._drawer.in_a_thread):
            self._drawer.close()
            self._drawer = None
        if self._drawer is None:
            self._drawer = ChartDrawer(spare_workers)
        self._drawer.start()
        return self._drawer

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._drawer is not None:
            self._drawer.close()


class SmtpResource(ConfigurableResource):
    """The SMTP server digests go through (RUNCRAWLER_SMTP_*; no host: none). The password
    is never held here (Dagster shows resources in the UI): it is read from the environment
    when the digests are sent."""

    host: str = ""
    port: int = 587
    security: str = "starttls"
    user: str = ""
    sender: str = "runcrawler@localhost"

    @classmethod
    def from_config(cls, config: Config) -> SmtpResource:
        return cls(
            host=config.smtp_host,
            port=config.smtp_port,
            security=config.smtp_security,
            user=config.smtp_user,
            sender=config.smtp_sender,
        )

    def settings(self) -> SmtpSettings | None:
        """The server to send through, password included; None without a host."""
        return smtp_settings(
            replace(
                Config.from_env(),
                smtp_host=self.host,
                smtp_port=self.port,
                smtp_security=self.security,
                smtp_user=self.user,
                smtp_sender=self.sender,
            )
        )


class WebhookResource(ConfigurableResource):
    """The chat webhook the managers' summary goes to (RUNCRAWLER_WEBHOOK_KIND); its URL
    holds a token, so it is read from the environment when used, never held here."""

    kind: str = "slack"

    @classmethod
    def from_config(cls, config: Config) -> WebhookResource:
        return cls(kind=config.webhook_kind)

    def settings(self) -> WebhookSettings | None:
        """The webhook to post to; None when RUNCRAWLER_WEBHOOK_URL is not set."""
        return webhook_settings(replace(Config.from_env(), webhook_kind=self.kind))
