"""The environment variables are the public contract: defaults and clear errors."""

from pathlib import Path

import pytest

from census_assets.settings import DEFAULT_ACCURACY_THRESHOLD, SettingsError, load_environment


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_environment({})
    assert settings.source == "bundled"
    assert settings.storage_url == str(tmp_path / "census_storage")
    assert settings.accuracy_threshold == DEFAULT_ACCURACY_THRESHOLD == 0.8
    assert (settings.deployment, settings.executor, settings.workers) == ("local", "in_process", 0)


def test_values_are_read():
    settings = load_environment(
        {
            "CENSUS_SOURCE": "gs://b/census.parquet",
            "CENSUS_STORAGE_URL": "gs://bucket/prefix",
            "CENSUS_ACCURACY_THRESHOLD": "0.85",
            "CENSUS_WORKERS": "1",
        }
    )
    assert settings.source == "gs://b/census.parquet"
    assert settings.storage_url == "gs://bucket/prefix"
    assert settings.accuracy_threshold == 0.85 and settings.workers == 1


def test_relative_storage_is_made_absolute():
    assert Path(load_environment({"CENSUS_STORAGE_URL": "out"}).storage_url).is_absolute()


@pytest.mark.parametrize(
    "env,message",
    [
        ({"CENSUS_ACCURACY_THRESHOLD": "high"}, "CENSUS_ACCURACY_THRESHOLD='high' is not a number"),
        ({"CENSUS_ACCURACY_THRESHOLD": "1.5"}, "must be between 0 and 1"),
        ({"CENSUS_DEPLOYMENT": "aws"}, "CENSUS_DEPLOYMENT='aws' is not one of local, gcp"),
        ({"CENSUS_EXECUTOR": "celery"}, "CENSUS_EXECUTOR='celery'"),
        ({"CENSUS_WORKERS": "-1"}, "CENSUS_WORKERS='-1' must be a whole number"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_environment(env)
