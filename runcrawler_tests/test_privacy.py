"""Pseudonymous reports: no login name leaves in a shared report, the warehouse is untouched."""

import duckdb
import pytest
from click.testing import CliRunner

from runcrawler_assets.cli import main
from runcrawler_assets.demo import USERS
from runcrawler_assets.reporting.privacy import PseudonymKeyError, pseudonym, pseudonymize_runs


def test_a_pseudonym_is_stable_for_a_key_and_changes_with_it():
    assert pseudonym("o'neil", "k1") == pseudonym("o'neil", "k1")
    assert pseudonym("o'neil", "k1") != pseudonym("o'neil", "k2")
    assert pseudonym("o'neil", "k1") != pseudonym("jdupont", "k1")
    assert "neil" not in pseudonym("o'neil", "k1")


def test_the_runs_view_shows_pseudonyms_and_the_table_keeps_names(demo_warehouse):
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        pseudonymize_runs(con, "secret")
        users = {u for (u,) in con.execute('SELECT DISTINCT "user" FROM runs').fetchall()}
        paths = [
            text
            for row in con.execute(
                "SELECT run_path, case_folder, mesh_case, points_into::VARCHAR FROM runs"
            ).fetchall()
            for text in row
            if text is not None
        ]
    assert users and all(u.startswith("user-") for u in users)
    assert not any(name.login in path for path in paths for name in USERS)
    with duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con:
        names = {u for (u,) in con.execute('SELECT DISTINCT "user" FROM runs').fetchall()}
    assert names and names <= {name.login for name in USERS}


def test_pseudonymizing_without_a_key_says_what_to_set(demo_warehouse):
    with (
        duckdb.connect(str(demo_warehouse.settings.duckdb_path), read_only=True) as con,
        pytest.raises(PseudonymKeyError, match="RUNCRAWLER_PSEUDONYM_KEY"),
    ):
        pseudonymize_runs(con, "")


def test_a_pseudonymous_report_names_no_user(demo_warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCRAWLER_PSEUDONYM_KEY", "team-secret")
    out = tmp_path / "shared.html"
    data = demo_warehouse.settings.data_dir
    result = CliRunner().invoke(
        main, ["report", "--data", str(data), "--out", str(out), "--pseudonymize"]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert pseudonym("jdupont", "team-secret") in page
    for name in USERS:
        assert name.login not in page and name.login.replace("'", "&#x27;") not in page
