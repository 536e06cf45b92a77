"""The archive layouts besides cluster/user: one cluster (`user`), one user's folder (`single`)."""

import shutil
from pathlib import Path

import duckdb

from runcrawler_assets.archive.discovery import list_partitions
from runcrawler_assets.config import Config, Layout
from runcrawler_assets.crawl import crawl_into_warehouse
from runcrawler_assets.demo import generate_archive


def rows(settings: Config) -> list[tuple]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        sql = 'SELECT cluster, "user", count(*) FROM runs GROUP BY ALL ORDER BY ALL'
        return con.execute(sql).fetchall()


def one_cluster(tmp_path: Path) -> Path:
    """A demo archive reduced to one cluster's folder: <root>/<user>/.../<run>."""
    generate_archive(tmp_path / "full", runs=40, seed=6)
    cluster = sorted((tmp_path / "full").iterdir())[0]
    return Path(shutil.move(str(cluster), str(tmp_path / "kraken-only")))


def test_the_user_layout_takes_users_from_the_first_level_and_a_fixed_cluster(tmp_path):
    root = one_cluster(tmp_path)
    settings = Config(root, tmp_path / "data", Layout.USER, fixed_cluster="kraken")
    crawl_into_warehouse(settings, list_partitions(settings))
    users = sorted(p.name for p in root.iterdir())
    expected_runs = {u: sum(1 for _ in (root / u).rglob("run.params")) for u in users}
    got = rows(settings)
    assert [(c, u) for c, u, _ in got] == [("kraken", u) for u in users if expected_runs[u]]
    assert {u: n for _, u, n in got} == {u: n for u, n in expected_runs.items() if n}


def test_the_single_layout_is_the_seeds_one_user_folder(tmp_path):
    root = one_cluster(tmp_path)
    user_folder = sorted(root.iterdir())[0]
    settings = Config(user_folder, tmp_path / "data", Layout.SINGLE, fixed_cluster="irene")
    assert list_partitions(settings) == [("irene", user_folder.name)]
    crawl_into_warehouse(settings, list_partitions(settings))
    runs = sum(1 for _ in user_folder.rglob("run.params"))
    assert rows(settings) == [("irene", user_folder.name, runs)]
