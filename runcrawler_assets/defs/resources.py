"""The Dagster resource that tells every asset where the archive and the data live."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from runcrawler_assets.config import Layout, Settings


class RuncrawlerSettings(ConfigurableResource):
    """Archive root, data folder and layout; built from the environment in `definitions.py`."""

    archive_root: str
    data_dir: str
    layout: str = Layout.CLUSTER_USER.value
    fixed_cluster: str = "default"
    fixed_user: str = ""
    parse_workers: int = 2

    @classmethod
    def from_settings(cls, settings: Settings, parse_workers: int = 2) -> RuncrawlerSettings:
        return cls(
            archive_root=str(settings.archive_root),
            data_dir=str(settings.data_dir),
            layout=settings.layout.value,
            fixed_cluster=settings.fixed_cluster,
            fixed_user=settings.fixed_user,
            parse_workers=parse_workers,
        )

    @property
    def settings(self) -> Settings:
        return Settings(
            archive_root=Path(self.archive_root),
            data_dir=Path(self.data_dir),
            layout=Layout(self.layout),
            fixed_cluster=self.fixed_cluster,
            fixed_user=self.fixed_user,
        )


class CrawlProgress(ConfigurableResource):
    """Where long steps report progress: nowhere by default; the CLI draws a bar."""

    def update(self, step: str, done: int, total: int) -> None:
        """Called as work advances; `done` of `total` items of `step`."""
