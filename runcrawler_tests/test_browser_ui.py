"""The Dagster UI in a real browser: Debian's headless Chromium driven by Playwright.

A small demo archive is crawled once, then `dagster-webserver` alone serves
it (no daemon: nothing writes while the browser looks). The screenshots land
in test-output/browser/ (git-ignored) for a human to look at.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from dagster import AssetKey, DagsterInstance

from runcrawler_assets.config import Config
from runcrawler_assets.defs.assets.analytics import analyses, report
from runcrawler_assets.defs.assets.ingest import INGEST_ASSETS
from runcrawler_assets.defs.assets.tell import digests, hints
from runcrawler_assets.defs.checks import CHECK_SPECS
from runcrawler_assets.defs.runner import crawl
from runcrawler_assets.demo import generate_archive
from runcrawler_tests.system_programs import (
    answers,
    free_port,
    require,
    stop_process_group,
    wait_for,
)

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "test-output" / "browser"
CRAWLED = [*INGEST_ASSETS, analyses, report, hints]  # what `runcrawler crawl` runs
ALL_ASSETS = [*CRAWLED, digests]
# Headless as root in a container: no sandbox, no GPU, nothing phoning home.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 60_000


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Chromium and Playwright, or skip (fail on CI); tests ask for it first, before the crawl."""
    executable = require(chromium(), "Chromium", "apt-get install -y chromium")
    require(importlib.util.find_spec("playwright"), "Playwright", "pip install -e '.[dev]'")
    return executable


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path]:
    """A demo archive crawled through the whole chain; its settings and DAGSTER_HOME."""
    base = tmp_path_factory.mktemp("browser")
    generate_archive(base / "archive", runs=30, seed=11)
    settings = Config(archive_root=base / "archive", data_dir=base / "data")
    home = settings.data_dir / "dagster_home"
    home.mkdir(parents=True)
    template = files("runcrawler_assets.defs").joinpath("dagster_local.yaml")
    (home / "dagster.yaml").write_bytes(template.read_bytes())
    with DagsterInstance.from_config(str(home)) as instance:
        assert crawl(settings, CRAWLED, instance).success
    return settings, home


@pytest.fixture(scope="module")
def webserver(demo: tuple[Config, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of `dagster-webserver` over the demo; its whole process group killed at the end."""
    settings, home = demo
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RUNCRAWLER_ARCHIVE": str(settings.archive_root),
        "RUNCRAWLER_DATA": str(settings.data_dir),
    }
    log_path = tmp_path_factory.mktemp("webserver") / "webserver.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: answers(f"{url}/server_info"), 120, "the webserver answered")
            yield url
        finally:
            stop_process_group(server)


@pytest.fixture(scope="module")
def browser(
    chromium_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    """A Chromium context with a fresh profile: a manager's first visit."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1600},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def snapshot(page: Page, name: str) -> None:
    """A screenshot once the page's data has arrived (statuses, colours) and nothing fades."""
    page.wait_for_load_state("networkidle")
    page.screenshot(path=SCREENSHOTS / f"{name}.png", animations="disabled")


def test_the_asset_graph_draws_every_asset_of_the_chain(
    chromium_path: str, webserver: str, browser: BrowserContext
):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{webserver}/asset-groups")
    expect(page.get_by_role("button", name="Materialize all…")).to_be_visible()
    # No newsletter sign-up on a first visit (the instance's `nux: enabled: false`): Dagster
    # opens it a second after the page, on a local address, unless the instance says not to.
    page.wait_for_timeout(2_000)
    expect(page.get_by_text("Join the Dagster community")).to_have_count(0)
    # The global graph starts with its groups folded: unfold them from its settings menu.
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    for name in (key.to_user_string() for asset in ALL_ASSETS for key in asset.keys):
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    snapshot(page, "asset_graph")
    page.close()


def test_the_error_categories_page_shows_its_charts(
    chromium_path: str, webserver: str, browser: BrowserContext, demo: tuple[Config, Path]
):
    from playwright.sync_api import expect

    _, home = demo
    with DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(AssetKey("error_categories"))
    charts = [key for key in event.asset_materialization.metadata if key.startswith("chart_")]
    assert charts

    page = browser.new_page()
    page.goto(f"{webserver}/assets/error_categories")
    expect(page.get_by_text("findings", exact=True)).to_be_visible()
    snapshot(page, "error_categories")
    for chart in charts:
        row = page.get_by_role("row").filter(has=page.get_by_text(chart, exact=True))
        row.get_by_text("[Show Markdown]").click()
        dialog = page.get_by_role("dialog")
        image = dialog.locator("img")
        expect(image).to_be_visible()
        # Decoded, not a broken-image icon: the browser knows its pixel size.
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), chart
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        snapshot(page, f"error_categories_{chart}")
        dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_have_count(0)
    page.close()


def test_the_runs_checks_tab_lists_the_ingest_checks(
    chromium_path: str, webserver: str, browser: BrowserContext
):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{webserver}/assets/runs")
    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text(f"Checks ({len(CHECK_SPECS)})")).to_be_visible()
    for spec in CHECK_SPECS:
        expect(page.get_by_text(spec.name, exact=True).first).to_be_visible()
    # The crawl ran them: each shows its latest result; the first one shown is blocking.
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(CHECK_SPECS))
    expect(page.get_by_text("This is a blocking asset check")).to_be_visible()
    snapshot(page, "runs_checks")
    page.close()


def test_the_hints_and_the_digest_schedule_show(
    chromium_path: str, webserver: str, browser: BrowserContext
):
    """Issue 19: the `hints` asset's counts per rule, and the digest schedule, stopped until
    an SMTP server is set."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{webserver}/assets/hints")
    expect(page.get_by_text("hint_counts", exact=True).first).to_be_visible()
    snapshot(page, "hints")
    page.goto(f"{webserver}/automation")
    page.wait_for_load_state("networkidle")
    snapshot(page, "automation")
    expect(page.get_by_text("digest_schedule", exact=True)).to_be_visible()
    page.close()
