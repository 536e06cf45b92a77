import pytest

from runcrawler_assets.config import Layout, Settings, SettingsError


def test_settings_come_from_the_environment(tmp_path):
    env = {
        "RUNCRAWLER_ARCHIVE": str(tmp_path / "archive"),
        "RUNCRAWLER_DATA": str(tmp_path / "data"),
        "RUNCRAWLER_LAYOUT": "single",
        "RUNCRAWLER_CLUSTER": "kraken",
    }
    settings = Settings.from_env(env)
    assert settings.archive_root == tmp_path / "archive"
    assert settings.duckdb_path == tmp_path / "data" / "runcrawler.duckdb"
    assert settings.layout is Layout.SINGLE
    assert settings.user_name == "archive"


def test_an_unknown_layout_names_the_choices():
    with pytest.raises(SettingsError, match="cluster/user"):
        Settings.from_env({"RUNCRAWLER_LAYOUT": "flat"})


def test_a_missing_archive_is_an_actionable_error(tmp_path):
    settings = Settings(archive_root=tmp_path / "nope", data_dir=tmp_path / "data")
    with pytest.raises(SettingsError, match="RUNCRAWLER_ARCHIVE"):
        settings.check_archive()


def test_a_data_folder_inside_the_archive_is_refused(tmp_path):
    settings = Settings(archive_root=tmp_path, data_dir=tmp_path / "data")
    with pytest.raises(SettingsError, match="never writes into the archive"):
        settings.check_archive()


def test_the_longest_plausible_job_defaults_to_a_week_and_can_be_set():
    assert Settings.from_env({}).max_job_days == 7
    assert Settings.from_env({"RUNCRAWLER_MAX_JOB_DAYS": "30"}).max_job_duration.days == 30


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf"])
def test_a_bad_longest_job_names_the_variable(value):
    with pytest.raises(SettingsError, match="RUNCRAWLER_MAX_JOB_DAYS"):
        Settings.from_env({"RUNCRAWLER_MAX_JOB_DAYS": value})
