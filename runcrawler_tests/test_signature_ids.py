"""Error signature ids are learned once and kept: a second crawl with more runs keeps them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.demo import generate_archive
from runcrawler_assets.warehouse.signatures import MESSAGES_TABLE, TEMPLATES_TABLE
from runcrawler_tests.conftest import DemoWarehouse


def _ids(settings: Config) -> dict[str, str | None]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = con.execute(
            "SELECT run_path, signature_id FROM runs WHERE error_signature IS NOT NULL"
        ).fetchall()
    return dict(rows)


def _crawl(settings: Config) -> dict[str, str | None]:
    crawl_into_warehouse(settings, list_partitions(settings))
    return _ids(settings)


def test_signature_ids_survive_a_second_crawl_with_more_runs(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    generate_archive(archive, runs=400, seed=3)
    settings = Config(archive_root=archive, data_dir=tmp_path / "data")
    first = _crawl(settings)
    assert first and all(first.values()), "every run with an error message has an id"

    # More runs land: another team's year, copied under a folder of its own in each user's
    # folder, and every partition is swapped again (its version forgotten).
    more = tmp_path / "more"
    generate_archive(more, runs=600, seed=4)
    for user_dir in more.glob("*/*"):
        target = archive / user_dir.parent.name / user_dir.name / "imported"
        shutil.copytree(user_dir, target, dirs_exist_ok=True)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("DELETE FROM partition_versions")
    second = _crawl(settings)

    assert len(second) > len(first)
    assert {path: second[path] for path in first} == first
    assert all(second.values())
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        [(learned, templates)] = con.execute(
            f"SELECT count(*) FILTER (WHERE learned), count(*) FROM {TEMPLATES_TABLE}"
        ).fetchall()
        [(unmapped,)] = con.execute(
            f"SELECT count(*) FROM runs r ANTI JOIN {MESSAGES_TABLE} m "
            "USING (solver, error_signature) WHERE r.error_signature IS NOT NULL"
        ).fetchall()
        [(orphans,)] = con.execute(
            f"SELECT count(*) FROM runs ANTI JOIN {TEMPLATES_TABLE} USING (signature_id) "
            "WHERE signature_id IS NOT NULL"
        ).fetchall()
    assert learned > 0 and templates > learned
    assert unmapped == 0 and orphans == 0


def test_a_crawl_of_an_unchanged_archive_keeps_every_id(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    generate_archive(archive, runs=200, seed=5)
    settings = Config(archive_root=archive, data_dir=tmp_path / "data")
    first = _crawl(settings)
    shutil.rmtree(settings.runs_dir)  # parsed again from the files
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("DELETE FROM partition_versions")
    assert _crawl(settings) == first


def test_a_warehouse_from_before_signature_ids_gets_them_on_the_next_crawl(
    tmp_path: Path,
) -> None:
    """An upgraded warehouse gains the column and forgets its swapped versions, so the next
    crawl swaps every partition and fills it (nothing is parsed again)."""
    archive = tmp_path / "archive"
    generate_archive(archive, runs=150, seed=6)
    settings = Config(archive_root=archive, data_dir=tmp_path / "data")
    first = _crawl(settings)
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("ALTER TABLE runs DROP COLUMN signature_id")
    assert _crawl(settings) == first


def test_messages_no_rule_knows_are_grouped_one_template_each(
    demo_warehouse: DemoWarehouse,
) -> None:
    """The demo's `unknown` messages vary in their words (a routine, an array, a patch):
    each of its templates becomes one learned signature, and no two share one."""
    truth = [json.loads(line) for line in demo_warehouse.truth.read_text().splitlines()]
    template_of = {
        t["run_path"]: t["error_template"]
        for t in truth
        if (t["error_template"] or "").startswith("unknown.")
    }
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        rows = con.execute(
            "SELECT run_path, signature_id, error_signature FROM runs "
            "WHERE error_category = 'unknown' AND signature_id IS NOT NULL"
        ).fetchall()
    ids: dict[str, set[str]] = {}
    messages: dict[str, set[str]] = {}
    for run_path, signature_id, message in rows:
        if run_path in template_of:
            ids.setdefault(template_of[run_path], set()).add(signature_id)
            messages.setdefault(template_of[run_path], set()).add(message)
    varying = [t for t in ids if len(messages[t]) > 3]
    assert varying, messages  # the miner had work to do
    assert all(len(found) == 1 for found in ids.values()), ids
    assert len({next(iter(found)) for found in ids.values()}) == len(ids)
