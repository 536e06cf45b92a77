"""The Dagster resources: runcrawler's `Config` for every asset and sensor, and progress.

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

from dagster import ConfigurableResource

from runcrawler_assets.config import Config, variables_set


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


class CrawlProgress(ConfigurableResource):
    """Where long steps report progress: nowhere by default; the CLI draws a bar."""

    def update(self, step: str, done: int, total: int) -> None:
        """Called as work advances; `done` of `total` items of `step`."""
