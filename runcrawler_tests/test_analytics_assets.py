"""The analytics assets and the report through Dagster: each analysis computed once per refresh,
the report assembled from what the analyses stored, and the CLI assembling the same page."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance

from runcrawler_assets.analytics import ANALYSES, RunFilter, compute_results, load_results
from runcrawler_assets.cli import main
from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.runner import crawl
from runcrawler_assets.demo import generate_archive, write_openfoam_cases


@dataclass(frozen=True)
class Refresh:
    """A mixed archive crawled once through Dagster, analytics and report included."""

    config: Config
    instance: DagsterInstance
    computed: Counter[str]  # compute (or refresh) calls per analysis during the crawl


def _counting(name: str, compute: Callable, calls: Counter[str]) -> Callable:
    def counted(*args: object, **kwargs: object) -> object:
        calls[name] += 1
        return compute(*args, **kwargs)

    return counted


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Refresh:
    base = tmp_path_factory.mktemp("refresh")
    generate_archive(base / "archive", runs=100, seed=6)
    write_openfoam_cases(base / "archive", 18, seed=6)
    config = Config(archive_root=base / "archive", data_dir=base / "data")
    calls: Counter[str] = Counter()
    instance = DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as patch:
        # `Analysis` is frozen; its instance dict still takes a stand-in for the duration,
        # so every caller (an asset, the report, anything) goes through the counter.
        # A refresh computes with `refresh` when the analysis has one (a memo), else `compute`.
        for analysis in ANALYSES:
            for way in ("compute", "refresh"):
                if (function := getattr(analysis, way)) is not None:
                    patch.setitem(vars(analysis), way, _counting(analysis.name, function, calls))
        summary = crawl(config, [*INGEST_ASSETS, analyses, report], instance)
    assert summary.success and summary.rows == 118
    return Refresh(config, instance, calls)


def _metadata(instance: DagsterInstance, asset: str) -> dict[str, object]:
    event = instance.get_latest_materialization_event(AssetKey(asset))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_one_refresh_computes_each_analysis_once(refreshed: Refresh) -> None:
    assert refreshed.computed == {analysis.name: 1 for analysis in ANALYSES}


def test_the_report_is_assembled_from_the_stored_analytics(refreshed: Refresh) -> None:
    figures = _metadata(refreshed.instance, "report")["figures"]
    assert str(figures).startswith("stored by the refresh of")
    page = (refreshed.config.data_dir / "report.html").read_text()
    assert f"Figures: {figures}." in page


def test_the_stored_analytics_are_what_computing_them_again_gives(refreshed: Refresh) -> None:
    with duckdb.connect(str(refreshed.config.duckdb_path), read_only=True) as con:
        stored = load_results(con, ANALYSES)
        computed = compute_results(con, ANALYSES, RunFilter())
    assert list(stored) == [a.name for a in ANALYSES]
    for name, again in computed.items():
        assert stored[name].result.findings == again.findings, name
        for table, frame in again.tables.items():
            pd.testing.assert_frame_equal(stored[name].result.tables[table], frame, obj=table)


def _without_generation_time(page: str) -> str:
    return re.sub(r"Generated [0-9: -]+\.", "", page)


def test_the_cli_report_for_all_runs_is_the_assets_report(
    refreshed: Refresh, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    data = str(refreshed.config.data_dir)
    result = CliRunner().invoke(main, ["report", "--data", data, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "figures stored by the refresh of" in result.output
    asset_page = (refreshed.config.data_dir / "report.html").read_text()
    assert _without_generation_time(out.read_text()) == _without_generation_time(asset_page)


def test_each_analysis_shows_its_findings_main_table_and_charts_in_the_ui(
    refreshed: Refresh,
) -> None:
    for analysis in ANALYSES:
        metadata = _metadata(refreshed.instance, analysis.name)
        assert {"findings", analysis.name, "tables"} <= set(metadata), analysis.name
        charts = [key for key in metadata if key.startswith("chart_")]
        assert charts, analysis.name
        assert all("data:image/png;base64," in str(metadata[key]) for key in charts)
        for key in charts:
            path = refreshed.config.charts_dir / (key.removeprefix("chart_") + ".png")
            assert path.is_file(), path
    stages = _metadata(refreshed.instance, "error_categories")["chart_failure_stages"]
    assert "data:image/png;base64," in str(stages)


def test_an_analysis_that_fails_leaves_the_others_materialized(tmp_path: Path) -> None:
    """One step computes every analysis: a failing one fails the step (and the report
    waits), but the others are stored, drawn and materialized as usual."""
    generate_archive(tmp_path / "archive", runs=40, seed=7)
    config = Config(archive_root=tmp_path / "archive", data_dir=tmp_path / "data")
    instance = DagsterInstance.ephemeral()
    broken = next(a for a in ANALYSES if a.name == "fixes")

    def fails(*_: object) -> None:
        raise RuntimeError("a bug in one analysis")

    with pytest.MonkeyPatch.context() as patch:
        for way in ("compute", "refresh"):  # however the step computes it
            patch.setitem(vars(broken), way, fails)
        summary = crawl(config, [*INGEST_ASSETS, analyses, report], instance, parse_workers=1)
    assert not summary.success
    others = {a.name for a in ANALYSES} - {"fixes"}
    for name in others:
        assert _metadata(instance, name)["findings"], name
        assert (config.charts_dir / f"{name}.charts.json").is_file(), name
    assert instance.get_latest_materialization_event(AssetKey("fixes")) is None
    assert instance.get_latest_materialization_event(AssetKey("report")) is None
    assert not (config.charts_dir / "fixes.charts.json").exists()
    assert summary.analyses_computed == len(others)
    failures = [
        event.dagster_event.step_failure_data.error.message
        for event in instance.all_logs(instance.get_run_records(limit=1)[0].dagster_run.run_id)
        if event.dagster_event is not None and event.dagster_event.is_step_failure
    ]
    assert len(failures) == 1 and "fixes" in failures[0]
