"""Where the archive and runcrawler's data live, read once from the environment.

Every entry point (CLI, Dagster resources, tests) builds a `Settings`; nothing
else reads environment variables. Defaults suit `make run` in a checkout.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path


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


class SettingsError(ValueError):
    """A setting a user must fix; the message says how."""


def _positive_days(text: str | None) -> float:
    """RUNCRAWLER_MAX_JOB_DAYS: a positive number of days (default when unset or empty)."""
    if not text:
        return DEFAULT_MAX_JOB_DAYS
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and days > 0):
        raise SettingsError(
            f"RUNCRAWLER_MAX_JOB_DAYS={text!r} is not a positive number of days "
            f"(the longest job your clusters run; default {DEFAULT_MAX_JOB_DAYS:g})"
        )
    return days


@dataclass(frozen=True)
class Settings:
    archive_root: Path
    data_dir: Path
    layout: Layout = Layout.CLUSTER_USER
    fixed_cluster: str = DEFAULT_CLUSTER
    fixed_user: str = field(default="")
    max_job_days: float = DEFAULT_MAX_JOB_DAYS

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        try:
            layout = Layout(env.get("RUNCRAWLER_LAYOUT", Layout.CLUSTER_USER.value))
        except ValueError:
            choices = ", ".join(item.value for item in Layout)
            raise SettingsError(
                f"RUNCRAWLER_LAYOUT={env['RUNCRAWLER_LAYOUT']!r} is not one of: {choices}"
            ) from None
        return cls(
            max_job_days=_positive_days(env.get("RUNCRAWLER_MAX_JOB_DAYS")),
            archive_root=Path(env.get("RUNCRAWLER_ARCHIVE", str(DEFAULT_ARCHIVE))).absolute(),
            data_dir=Path(env.get("RUNCRAWLER_DATA", str(DEFAULT_DATA))).absolute(),
            layout=layout,
            fixed_cluster=env.get("RUNCRAWLER_CLUSTER", DEFAULT_CLUSTER),
            fixed_user=env.get("RUNCRAWLER_USER", ""),
        )

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

    def check_archive(self) -> None:
        """Raise a `SettingsError` a user can act on when the archive is unusable."""
        if not self.archive_root.is_dir():
            raise SettingsError(
                f"archive folder {self.archive_root} does not exist: set RUNCRAWLER_ARCHIVE "
                "(or --archive) to the folder your users copy their runs into"
            )
        if self.data_dir.resolve().is_relative_to(self.archive_root.resolve()):
            raise SettingsError(
                f"data folder {self.data_dir} is inside the archive: runcrawler never writes "
                "into the archive; choose another RUNCRAWLER_DATA (or --data)"
            )
